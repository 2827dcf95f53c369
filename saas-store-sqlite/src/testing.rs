//! A fresh tenant in one call, for host applications' tests (the seed's
//! `TenantTestCase`). Behind the `testing` feature, so that `tempfile` is
//! no runtime dependency: take it in `[dev-dependencies]` as
//! `saas-store-sqlite = { version = "…", features = ["testing"] }`.
//!
//! [`TestTenant::builder`] takes the plan catalog, the plan, listeners and
//! the host applications' migrations:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> saas_core::Result<()> {
//! use saas_core::plans::{Plan, PlanCatalog};
//! use saas_store_sqlite::testing::TestTenant;
//!
//! let plans = PlanCatalog::new([Plan::new("tiny", Some(1), None, None, false)], "tiny")?;
//! let t = TestTenant::builder().plans(plans).plan("tiny").build().await?;
//! assert_eq!(t.session.plan().code, "tiny");
//! # Ok(()) }
//! ```
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

use saas_core::apps::Apps;
use saas_core::commands::{NewUser, Registration};
use saas_core::plans::PlanCatalog;
use saas_core::service::{Listener, Saas};
use saas_core::tenancy::Tenant;
use saas_core::users::{Role, User};
use saas_core::{Error, Result, Session};
use tempfile::TempDir;

use crate::{SqliteOptions, SqliteStore};

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
        Self::builder().build().await
    }

    /// A tenant on the given plan of the built-in catalog.
    pub async fn with_plan(plan: &str) -> Result<Self> {
        Self::builder().plan(plan).build().await
    }

    /// A tenant made to measure.
    pub fn builder() -> TestTenantBuilder {
        TestTenantBuilder::default()
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

/// How [`TestTenant::builder`] makes its tenant. Unset, it is
/// [`TestTenant::new`]'s: the built-in catalog, `enterprise`, no listener,
/// no host migrations.
#[derive(Debug, Default)]
pub struct TestTenantBuilder {
    plans: Option<PlanCatalog>,
    plan: Option<String>,
    listeners: Vec<Arc<dyn Listener>>,
    apps: Apps,
}

impl TestTenantBuilder {
    /// The plan catalog of the service.
    pub fn plans(mut self, plans: PlanCatalog) -> Self {
        self.plans = Some(plans);
        self
    }

    /// The tenant's plan (a code of the catalog).
    pub fn plan(mut self, code: impl Into<String>) -> Self {
        self.plan = Some(code.into());
        self
    }

    /// Adds a listener of the service's events (the tenant's own creation
    /// included).
    pub fn listener(mut self, listener: Arc<dyn Listener>) -> Self {
        self.listeners.push(listener);
        self
    }

    /// The host applications whose migrations the store runs.
    pub fn apps(mut self, apps: Apps) -> Self {
        self.apps = apps;
        self
    }

    /// Registers the tenant on a fresh temporary store.
    pub async fn build(self) -> Result<TestTenant> {
        let dir = tempfile::tempdir().map_err(Error::backend)?;
        let options = SqliteOptions {
            apps: self.apps,
            ..SqliteOptions::default()
        };
        let store = SqliteStore::with_options(dir.path(), options).map_err(Error::from)?;
        let mut builder =
            Saas::builder(Arc::new(store)).secret(b"saas testing secret, not for production use!");
        let plan = match (&self.plans, self.plan) {
            (_, Some(plan)) => plan,
            (Some(plans), None) => plans.default_plan().code.clone(),
            (None, None) => "enterprise".to_owned(),
        };
        if let Some(plans) = self.plans {
            builder = builder.plans(plans);
        }
        for l in self.listeners {
            builder = builder.listener(l);
        }
        let saas = builder.build()?;
        let (tenant, admin) = saas
            .register(Registration {
                company_name: "Test Tenant".into(),
                schema_name: "test_tenant".into(),
                domain_url: "test.localhost".into(),
                admin_username: "admin".into(),
                admin_email: "admin@test.localhost".into(),
                admin_password: TEST_PASSWORD.into(),
                subscription_plan: Some(plan),
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
}
