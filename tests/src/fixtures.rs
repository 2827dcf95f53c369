//! The backends under test: SQLite in a fresh temporary directory, and
//! PostgreSQL at `SAAS_TEST_DATABASE_URL`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::future::BoxFuture;
use saas_core::Result;
use saas_core::store::{
    MigrationReport, Page, PageRequest, ProgressFn, Store, Superuser, TenantStore,
};
use saas_core::tenancy::{Domain, Hostname, NewTenant, Slug, Tenant, TenantId, TenantStatus};
use saas_core::users::{Email, NewUserRecord, User, Username};
use saas_store_postgres::PgStore;
use saas_store_sqlite::SqliteStore;

use crate::{Backend, Fixture};

/// The database URL used when `SAAS_TEST_DATABASE_URL` is not set.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The SQLite backend: every fixture is a new store in a new temporary
/// directory, deleted when the fixture is dropped.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sqlite;

struct SqliteFixture {
    store: Arc<dyn Store>,
    // Declared after the store so the files outlive its connections.
    _dir: tempfile::TempDir,
}

impl Fixture for SqliteFixture {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }
}

impl Backend for Sqlite {
    fn fixture(&self) -> BoxFuture<'_, Option<Box<dyn Fixture>>> {
        Box::pin(async {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let root = dir.path().join("data");
            let store = tokio::task::spawn_blocking(move || SqliteStore::open(root))
                .await
                .expect("opening does not panic")
                .expect("the SQLite store opens");
            Some(Box::new(SqliteFixture {
                store: Arc::new(store),
                _dir: dir,
            }) as Box<dyn Fixture>)
        })
    }
}

/// The PostgreSQL backend at `SAAS_TEST_DATABASE_URL` (default
/// [`DEFAULT_DATABASE_URL`]). Every fixture is a new connection pool; tenants
/// get fresh random slugs, so runs never collide. When the database is
/// unreachable the case is skipped with a note, unless
/// `SAAS_REQUIRE_POSTGRES=1`, in which case it fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct Postgres;

struct PgFixture {
    store: Arc<Recording>,
}

impl Fixture for PgFixture {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store) as Arc<dyn Store>
    }

    fn cleanup(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {
            let created =
                std::mem::take(&mut *self.store.created.lock().unwrap_or_else(|e| e.into_inner()));
            for id in created {
                // Cases delete some tenants themselves; NotFound is expected.
                let _ = self.store.inner.delete_tenant(id).await;
            }
        })
    }
}

/// A store that remembers the tenants created through it, so a case on a
/// shared database can delete them afterwards.
#[derive(Debug)]
struct Recording {
    inner: Arc<dyn Store>,
    created: Mutex<Vec<TenantId>>,
}

#[async_trait]
impl Store for Recording {
    async fn create_tenant(
        &self,
        tenant: &NewTenant,
        admin: &NewUserRecord,
    ) -> Result<(Tenant, User)> {
        let created = self.inner.create_tenant(tenant, admin).await?;
        self.created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(created.0.id);
        Ok(created)
    }

    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
        self.inner.tenant(id).await
    }

    async fn tenant_by_slug(&self, slug: &Slug) -> Result<Option<Tenant>> {
        self.inner.tenant_by_slug(slug).await
    }

    async fn tenant_by_domain(&self, hostname: &Hostname) -> Result<Option<Tenant>> {
        self.inner.tenant_by_domain(hostname).await
    }

    async fn list_tenants(&self, page: PageRequest) -> Result<Page<Tenant>> {
        self.inner.list_tenants(page).await
    }

    async fn domains(&self, tenant: TenantId) -> Result<Vec<Domain>> {
        self.inner.domains(tenant).await
    }

    async fn add_domain(
        &self,
        tenant: TenantId,
        hostname: &Hostname,
        is_primary: bool,
    ) -> Result<Domain> {
        self.inner.add_domain(tenant, hostname, is_primary).await
    }

    async fn remove_domain(&self, tenant: TenantId, hostname: &Hostname) -> Result<()> {
        self.inner.remove_domain(tenant, hostname).await
    }

    async fn set_plan(&self, tenant: TenantId, plan: &str) -> Result<Tenant> {
        self.inner.set_plan(tenant, plan).await
    }

    async fn set_status(&self, tenant: TenantId, status: TenantStatus) -> Result<Tenant> {
        self.inner.set_status(tenant, status).await
    }

    async fn delete_tenant(&self, tenant: TenantId) -> Result<()> {
        self.inner.delete_tenant(tenant).await
    }

    async fn open(&self, tenant: &Tenant) -> Result<Arc<dyn TenantStore>> {
        self.inner.open(tenant).await
    }

    async fn create_superuser(
        &self,
        username: &Username,
        email: &Email,
        password_hash: &str,
    ) -> Result<Superuser> {
        self.inner
            .create_superuser(username, email, password_hash)
            .await
    }

    async fn superuser_credentials(
        &self,
        username_key: &str,
    ) -> Result<Option<(Superuser, String)>> {
        self.inner.superuser_credentials(username_key).await
    }

    async fn migrate(&self, progress: ProgressFn<'_>) -> Result<MigrationReport> {
        self.inner.migrate(progress).await
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
}

/// Whether the environment demands PostgreSQL (`SAAS_REQUIRE_POSTGRES=1`).
pub fn postgres_required() -> bool {
    std::env::var("SAAS_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// The URL of the test database.
pub fn database_url() -> String {
    std::env::var("SAAS_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned())
}

/// Set once a connection failed, so the remaining cases skip at once
/// instead of each waiting for the pool's timeout.
static POSTGRES_DOWN: AtomicBool = AtomicBool::new(false);

impl Backend for Postgres {
    fn fixture(&self) -> BoxFuture<'_, Option<Box<dyn Fixture>>> {
        Box::pin(async {
            if POSTGRES_DOWN.load(Ordering::Relaxed) {
                assert!(
                    !postgres_required(),
                    "PostgreSQL (SAAS_TEST_DATABASE_URL) is required by SAAS_REQUIRE_POSTGRES=1 \
                     but was unavailable"
                );
                eprintln!("skipped: PostgreSQL (SAAS_TEST_DATABASE_URL) is unavailable");
                return None;
            }
            let url = database_url();
            match PgStore::connect_url(&url).await {
                Ok(store) => Some(Box::new(PgFixture {
                    store: Arc::new(Recording {
                        inner: Arc::new(store),
                        created: Mutex::new(Vec::new()),
                    }),
                }) as Box<dyn Fixture>),
                Err(e) if !postgres_required() => {
                    POSTGRES_DOWN.store(true, Ordering::Relaxed);
                    eprintln!(
                        "skipped: PostgreSQL (SAAS_TEST_DATABASE_URL) is unavailable ({e}); \
                         set SAAS_REQUIRE_POSTGRES=1 to fail instead"
                    );
                    None
                }
                Err(e) => {
                    POSTGRES_DOWN.store(true, Ordering::Relaxed);
                    panic!(
                        "PostgreSQL (SAAS_TEST_DATABASE_URL) is required by \
                     SAAS_REQUIRE_POSTGRES=1 but unavailable: {e:?}"
                    )
                }
            }
        })
    }
}
