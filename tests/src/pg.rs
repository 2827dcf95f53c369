//! The PostgreSQL fixture, for every crate's tests: the database at
//! `SAAS_TEST_DATABASE_URL` (default [`DEFAULT_DATABASE_URL`]).
//!
//! Tests share that database, so each makes what it touches fresh: tenants
//! with random slugs ([`Postgres`], [`crate::records`]), job kinds of its
//! own ([`queue`]), or a database of its own ([`ensure_database`],
//! [`drop_database`]). When PostgreSQL does not answer, [`available`] says
//! so on stderr and the test skips, unless `SAAS_REQUIRE_POSTGRES=1`
//! (CI), where it fails instead.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use saas_core::Result;
use saas_core::audit::{AuditEntry, AuditQuery, NewAuditEntry};
use saas_core::import::TenantImport;
use saas_core::jobs::JobQueue;
use saas_core::store::{
    MigrationReport, Page, PageRequest, ProgressFn, Store, Superuser, TenantStore,
};
use saas_core::tenancy::{Domain, Hostname, NewTenant, Slug, Tenant, TenantId, TenantStatus};
use saas_core::tenant_query::TenantQuery;
use saas_core::users::{Email, NewUserRecord, User, Username};
use saas_store_postgres::{PgConfig, PgQueue, PgStore, Routing};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection};
use tokio::sync::OnceCell;

use crate::backend::{Backend, Fixture};

/// The database URL used when `SAAS_TEST_DATABASE_URL` is not set.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// How long the first connection may take before PostgreSQL counts as
/// unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The URL of the test database.
pub fn url() -> String {
    std::env::var("SAAS_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned())
}

/// The URL of a test's own database `db`: [`url`] with its database
/// replaced by [`database_name`]`(db)`.
pub fn url_for(db: &str) -> String {
    let base = url();
    let (head, _) = base.rsplit_once('/').expect("a database URL has a path");
    format!("{head}/{}", database_name(db))
}

/// The name in the cluster of a test's own database `db`: the test
/// database's name, `_`, then `db`. A test's own databases live as long as
/// the test database they belong to, so a run on a fresh test database (as
/// `.ci/run` makes) never meets one left, at an older schema, by a run of
/// other code.
pub fn database_name(db: &str) -> String {
    let base = url();
    let (_, base_db) = base.rsplit_once('/').expect("a database URL has a path");
    let base_db = base_db.split('?').next().unwrap_or(base_db);
    format!("{base_db}_{db}")
}

/// Whether the environment demands PostgreSQL (`SAAS_REQUIRE_POSTGRES=1`).
pub fn required() -> bool {
    std::env::var("SAAS_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// Whether the test database answered, asked once per process: later
/// callers neither wait for a connection timeout again nor open a
/// connection just to ask.
static ANSWERED: OnceCell<std::result::Result<(), String>> = OnceCell::const_new();

/// Whether PostgreSQL is there. When it is not, says so on stderr and
/// answers `false` (the caller skips), or panics when
/// `SAAS_REQUIRE_POSTGRES=1`.
pub async fn available() -> bool {
    let answered = ANSWERED
        .get_or_init(|| async {
            match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(&url())).await {
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                    Ok(())
                }
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {CONNECT_TIMEOUT:?}")),
            }
        })
        .await;
    match answered {
        Ok(()) => true,
        Err(why) if required() => panic!(
            "PostgreSQL at {} is unavailable ({why}) and SAAS_REQUIRE_POSTGRES=1",
            url()
        ),
        Err(why) => {
            eprintln!(
                "skipped: PostgreSQL at {} is unavailable ({why}); \
                 set SAAS_REQUIRE_POSTGRES=1 to fail instead",
                url()
            );
            false
        }
    }
}

/// A store on the test database with `config`, or `None` (skip) when
/// PostgreSQL is not there.
pub async fn store_with(config: PgConfig) -> Option<PgStore> {
    if !available().await {
        return None;
    }
    Some(
        PgStore::connect(config)
            .await
            .expect("connect to the test database"),
    )
}

/// A store on the test database with the default settings and `routing`.
pub async fn store(routing: Routing) -> Option<PgStore> {
    store_with(PgConfig::new(url()).with_routing(routing)).await
}

/// A queue on a pool of its own at `url`, as one process would have.
pub async fn queue_at(url: &str) -> PgQueue {
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(url)
        .await
        .expect("connect to the test database");
    PgQueue::new(pool).await.expect("queue setup")
}

/// Job kinds of the tests on the shared queue start with one of these
/// (`conf_`: the JobQueue suite; `pgq_`: the PostgreSQL queue's own tests),
/// so what an earlier run left behind can be told apart from real jobs.
pub const TEST_KIND_PREFIXES: [&str; 2] = ["conf_", "pgq_"];

static SWEPT: AtomicBool = AtomicBool::new(false);

/// Deletes the jobs of test kinds ([`TEST_KIND_PREFIXES`]) that earlier
/// runs left on the shared queue, once per process: only jobs created over
/// an hour ago, judged by their UUIDv7 ids, so no test still running loses
/// a job.
async fn sweep_old_runs(queue: &PgQueue) {
    if SWEPT.swap(true, Ordering::SeqCst) {
        return;
    }
    let hour_ago = Utc::now() - chrono::Duration::hours(1);
    let secs = u64::try_from(hour_ago.timestamp()).expect("after 1970");
    let boundary = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, secs, 0));
    let [a, b] = TEST_KIND_PREFIXES.map(|p| format!("{}%", p.replace('_', "\\_")));
    sqlx::query("DELETE FROM saas_shared.jobs WHERE (kind LIKE $1 OR kind LIKE $2) AND id < $3")
        .bind(a)
        .bind(b)
        .bind(boundary)
        .execute(queue.pool())
        .await
        .expect("sweep old test jobs");
}

/// A queue on the shared test database ([`queue_at`]), after sweeping what
/// earlier runs left; `None` (skip) when PostgreSQL is not there.
pub async fn queue() -> Option<PgQueue> {
    if !available().await {
        return None;
    }
    let q = queue_at(&url()).await;
    sweep_old_runs(&q).await;
    Some(q)
}

/// Panics unless `name` is `[a-z0-9_]+`: it is spliced into SQL, quoted.
fn check_database_name(name: &str) {
    assert!(
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "a test database name is [a-z0-9_]+: {name:?}"
    );
}

/// The pid of the PostgreSQL backend serving the next unit of work on
/// `pool` (one checkout of it).
pub async fn backend_pid(pool: &sqlx::PgPool) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .persistent(false)
        .fetch_one(pool)
        .await
        .expect("pid")
}

/// Creates the test's own database `name` ([`database_name`]) if missing,
/// tolerating a concurrent creator.
pub async fn ensure_database(name: &str) {
    check_database_name(name);
    let name = &database_name(name);
    let mut conn = PgConnection::connect(&url()).await.expect("connect");
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut conn)
        .await
        .expect("query pg_database");
    if exists.is_none() {
        let sql = format!("CREATE DATABASE \"{name}\"");
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
        {
            let code = e
                .as_database_error()
                .and_then(|d| d.code())
                .map(|c| c.into_owned());
            // 42P04: it exists; 23505: a concurrent CREATE DATABASE won the race.
            assert!(
                matches!(code.as_deref(), Some("42P04") | Some("23505")),
                "create database: {e}"
            );
        }
    }
}

/// Drops the test's own database `name` ([`database_name`]; a test's cleanup).
pub async fn drop_database(name: &str) {
    check_database_name(name);
    let name = &database_name(name);
    let mut conn = PgConnection::connect(&url()).await.expect("connect");
    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .expect("drop database");
}

/// Whether any tenant schema of `slug` (`t_<slug>_<12 hex digits>`, whatever
/// the tenant id) exists in the database at `url`.
pub async fn schema_exists(url: &str, slug: &Slug) -> bool {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    // A slug is [a-z0-9_]: nothing in it means anything to a regex.
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM pg_namespace WHERE nspname ~ $1 LIMIT 1")
            .bind(format!("^t_{}_[0-9a-f]{{12}}$", slug.as_str()))
            .fetch_optional(&mut conn)
            .await
            .expect("query pg_namespace");
    found.is_some()
}

/// The PostgreSQL backend of the conformance suite: every fixture is a new
/// connection pool on the test database; tenants get fresh random slugs, so
/// runs never collide, and a case that passed has its tenants deleted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Postgres;

struct PgFixture {
    pg: PgStore,
    store: Arc<Recording>,
}

impl Fixture for PgFixture {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store) as Arc<dyn Store>
    }

    fn queue(&self) -> BoxFuture<'_, Arc<dyn JobQueue>> {
        Box::pin(async {
            Arc::new(
                PgQueue::for_store(&self.pg)
                    .await
                    .expect("open the PostgreSQL job queue"),
            ) as Arc<dyn JobQueue>
        })
    }

    fn cleanup(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {
            let created =
                std::mem::take(&mut *self.store.created.lock().unwrap_or_else(|e| e.into_inner()));
            for id in created {
                // Cases delete some tenants themselves; NotFound is expected.
                let _ = self.store.inner.purge_tenant(id, None).await;
            }
        })
    }
}

impl Backend for Postgres {
    fn fixture(&self) -> BoxFuture<'_, Option<Box<dyn Fixture>>> {
        Box::pin(async {
            let pg = store_with(PgConfig::new(url())).await?;
            Some(Box::new(PgFixture {
                store: Arc::new(Recording {
                    inner: Arc::new(pg.clone()),
                    created: Mutex::new(Vec::new()),
                }),
                pg,
            }) as Box<dyn Fixture>)
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

    async fn import_tenant(&self, tenant: &NewTenant, data: &TenantImport) -> Result<Tenant> {
        let created = self.inner.import_tenant(tenant, data).await?;
        self.created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(created.id);
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

    async fn search_tenants(&self, query: &TenantQuery, page: PageRequest) -> Result<Page<Tenant>> {
        self.inner.search_tenants(query, page).await
    }

    async fn domains(&self, tenant: TenantId) -> Result<Vec<Domain>> {
        self.inner.domains(tenant).await
    }

    async fn set_primary_domain(&self, tenant: TenantId, hostname: &Hostname) -> Result<()> {
        self.inner.set_primary_domain(tenant, hostname).await
    }

    async fn append_audit(&self, entry: &NewAuditEntry) -> Result<AuditEntry> {
        self.inner.append_audit(entry).await
    }

    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        self.inner.audit_log(query).await
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

    async fn delete_tenant(&self, tenant: TenantId, at: DateTime<Utc>) -> Result<Tenant> {
        self.inner.delete_tenant(tenant, at).await
    }

    async fn restore_tenant(&self, tenant: TenantId) -> Result<Tenant> {
        self.inner.restore_tenant(tenant).await
    }

    async fn purge_tenant(
        &self,
        tenant: TenantId,
        deleted_before: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        self.inner.purge_tenant(tenant, deleted_before).await
    }

    async fn purge_orphans(&self) -> Result<u64> {
        self.inner.purge_orphans().await
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

    async fn superuser(&self, id: i64) -> Result<Option<Superuser>> {
        self.inner.superuser(id).await
    }

    async fn set_superuser_active(&self, id: i64, active: bool) -> Result<Superuser> {
        self.inner.set_superuser_active(id, active).await
    }

    async fn set_superuser_password(&self, id: i64, password_hash: &str) -> Result<()> {
        self.inner.set_superuser_password(id, password_hash).await
    }

    async fn delete_superuser(&self, id: i64) -> Result<()> {
        self.inner.delete_superuser(id).await
    }

    async fn migrate(&self, progress: ProgressFn<'_>) -> Result<MigrationReport> {
        self.inner.migrate(progress).await
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }

    async fn pending_migrations(&self) -> Result<u64> {
        self.inner.pending_migrations().await
    }
}
