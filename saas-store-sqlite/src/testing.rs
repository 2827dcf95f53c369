//! A fresh tenant in one call, for host applications' tests (the seed's
//! `TenantTestCase`).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> saas_core::Result<()> {
//! use saas_core::commands::NewProject;
//! use saas_store_sqlite::testing::TestTenant;
//!
//! let t = TestTenant::new().await?;
//! let project = t
//!     .session
//!     .create_project(NewProject { name: "Test Project".into(), ..Default::default() })
//!     .await?;
//! assert_eq!(project.name, "Test Project");
//! assert_eq!(project.owner.id, t.admin.id);
//! # Ok(()) }
//! ```

use std::path::Path;
use std::sync::Arc;

use saas_core::commands::{NewUser, Registration};
use saas_core::service::Saas;
use saas_core::tenancy::Tenant;
use saas_core::users::{Role, User};
use saas_core::{Error, Result, Session};
use tempfile::TempDir;

use crate::SqliteStore;

/// Password of every user [`TestTenant`] creates.
pub const TEST_PASSWORD: &str = "test-password-123";

/// A tenant with an admin on a temporary SQLite root, removed on drop.
#[derive(Debug)]
pub struct TestTenant {
    /// The service over the temporary store.
    pub saas: Saas,
    /// The tenant (slug `test_tenant`, domain `test.localhost`).
    pub tenant: Tenant,
    /// Its admin and owner (username `admin`, password [`TEST_PASSWORD`]).
    pub admin: User,
    /// A session acting as the admin.
    pub session: Session,
    dir: TempDir,
}

impl TestTenant {
    /// A tenant on the unlimited `enterprise` plan.
    pub async fn new() -> Result<Self> {
        Self::with_plan("enterprise").await
    }

    /// A tenant on the given plan of the built-in catalog.
    pub async fn with_plan(plan: &str) -> Result<Self> {
        let dir = tempfile::tempdir().map_err(Error::backend)?;
        let store = SqliteStore::open(dir.path()).map_err(Error::from)?;
        let saas = Saas::builder(Arc::new(store))
            .secret(b"saas testing secret, not for production use!")
            .build()?;
        let (tenant, admin) = saas
            .register(Registration {
                company_name: "Test Tenant".into(),
                schema_name: "test_tenant".into(),
                domain_url: "test.localhost".into(),
                admin_username: "admin".into(),
                admin_email: "admin@test.localhost".into(),
                admin_password: TEST_PASSWORD.into(),
                subscription_plan: Some(plan.into()),
            })
            .await?;
        let session = saas.session(&tenant, admin.id).await?;
        Ok(TestTenant {
            saas,
            tenant,
            admin,
            session,
            dir,
        })
    }

    /// Registers a user with `role` (email `<username>@test.localhost`,
    /// password [`TEST_PASSWORD`]) and returns a session acting as it.
    pub async fn user(&self, username: &str, role: Role) -> Result<Session> {
        let user = self
            .session
            .register_user(NewUser {
                username: username.into(),
                email: format!("{username}@test.localhost"),
                password: TEST_PASSWORD.into(),
                role: Some(role),
                ..NewUser::default()
            })
            .await?;
        self.saas.session(&self.tenant, user.id).await
    }

    /// The temporary root holding the tenant's files.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}
