//! Where a benchmark's data lives: the backend, its options, and the
//! opened store ([`Env`]).
//!
//! PostgreSQL fixtures live in their own database and are reused by later
//! runs (slugs name their shape); SQLite fixtures live in a fresh temporary
//! directory unless `--sqlite-dir` names one to reuse.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, ValueEnum};
use saas_core::store::Store;
use saas_core::tenancy::Tenant;
use saas_store_postgres::{PgConfig, PgStore, Routing};
use saas_store_sqlite::SqliteStore;

use crate::database;
use crate::error::Res;
use crate::measure::ms;

/// The password of every benchmark user.
pub const PASSWORD: &str = "bench-password-123";

/// Storage backend of a benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// One file per tenant.
    Sqlite,
    /// One schema per tenant.
    Postgres,
}

impl Backend {
    /// The backend's name in results.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// `saas_store_postgres::Routing`, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoutingArg {
    /// `Routing::QualifiedSql` (the default): unnamed statements.
    Qualified,
    /// `Routing::QualifiedPrepared`: named statements in sqlx's cache.
    QualifiedPrepared,
    /// `Routing::SetLocalSearchPath`.
    SetLocal,
}

impl RoutingArg {
    fn routing(self) -> Routing {
        match self {
            RoutingArg::Qualified => Routing::QualifiedSql,
            RoutingArg::QualifiedPrepared => Routing::QualifiedPrepared,
            RoutingArg::SetLocal => Routing::SetLocalSearchPath,
        }
    }
}

/// Where the data lives.
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// Storage backend.
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: Backend,
    /// PostgreSQL database of the HTTP benchmarks (created when missing;
    /// never the test database, and not `saas_bench`, which `provision`
    /// drops and recreates).
    #[arg(
        long,
        env = "SAAS_BENCH_HTTP_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/saas_bench_http"
    )]
    pub database_url: String,
    /// SQLite root to create or reuse (default: a fresh temporary directory).
    #[arg(long)]
    pub sqlite_dir: Option<PathBuf>,
    /// Connections of the PostgreSQL pool (the store's and the baseline's).
    #[arg(long, default_value_t = 10)]
    pub pool: u32,
    /// How PostgreSQL handles reach tenant schemas.
    #[arg(long, value_enum, default_value = "qualified")]
    pub routing: RoutingArg,
    /// Tenant sub-pools of the PostgreSQL store
    /// (`PgConfig::tenant_subpools`; default: the library's).
    #[arg(long)]
    pub tenant_subpools: Option<usize>,
    /// Units of work a pooled PostgreSQL connection serves before it is
    /// replaced (`PgConfig::recycle_after`; 0: never; default: the
    /// library's).
    #[arg(long)]
    pub recycle_after: Option<u64>,
    /// Open tenant handles kept by the SQLite store.
    #[arg(long, default_value_t = 256)]
    pub sqlite_handle_cache: usize,
    /// Keep SQLite's security-relevant tenant writes at `synchronous=NORMAL`
    /// (`SqliteOptions::durable_security_writes = false`), to measure what
    /// syncing them costs.
    #[arg(long)]
    pub sqlite_normal_security_writes: bool,
    /// How long the server reuses an authenticated user's record, in
    /// milliseconds (`SaasBuilder::user_cache_ttl`; 0 reads it on every
    /// request). Default: the library's default.
    #[arg(long)]
    pub user_cache_ms: Option<u64>,
    /// Tenant schema migrations the store withholds (the stores' hidden
    /// `withhold_tenant_migrations`: 1 emulates the previous build); set
    /// by `migrate-live`, never from the command line.
    #[arg(skip)]
    pub withhold_tenant_migrations: usize,
    /// Tenants `Store::migrate` migrates at once (the store's default when
    /// unset); set by `migrate-live`.
    #[arg(skip)]
    pub migrate_concurrency: Option<usize>,
}

/// The opened storage.
pub struct Env {
    /// Which backend.
    pub backend: Backend,
    /// The store, whichever the backend.
    pub store: Arc<dyn Store>,
    /// The SQLite store, on SQLite.
    pub sqlite: Option<SqliteStore>,
    /// The PostgreSQL store, on PostgreSQL.
    pub pg: Option<PgStore>,
    /// The SQLite root directory.
    pub root: Option<PathBuf>,
    /// The PostgreSQL database (empty on SQLite).
    pub database_url: String,
    /// The one password hash every fixture user gets.
    pub hash: String,
    /// How long computing that hash took, in milliseconds.
    pub hash_ms: f64,
    /// `SaasBuilder::user_cache_ttl` of the server.
    pub user_cache_ttl: std::time::Duration,
    _tmp: Option<tempfile::TempDir>,
}

impl Env {
    /// Opens (on PostgreSQL, creating the database when missing) the
    /// storage `args` describe, and hashes the fixtures' password once.
    pub async fn open(args: &StorageArgs) -> Res<Env> {
        let start = Instant::now();
        let hash = saas_core::auth::Passwords::new().hash(PASSWORD).await?;
        let hash_ms = ms(start.elapsed());
        let user_cache_ttl = args.user_cache_ms.map_or(
            saas_core::service::DEFAULT_USER_CACHE_TTL,
            std::time::Duration::from_millis,
        );
        match args.backend {
            Backend::Sqlite => {
                let (root, tmp) = match &args.sqlite_dir {
                    Some(dir) => (dir.clone(), None),
                    None => {
                        let tmp = tempfile::Builder::new().prefix("saas-bench-").tempdir()?;
                        (tmp.path().to_owned(), Some(tmp))
                    }
                };
                let defaults = saas_store_sqlite::SqliteOptions::default();
                let options = saas_store_sqlite::SqliteOptions {
                    handle_cache_capacity: args.sqlite_handle_cache,
                    durable_security_writes: !args.sqlite_normal_security_writes,
                    withhold_tenant_migrations: args.withhold_tenant_migrations,
                    migration_concurrency: args
                        .migrate_concurrency
                        .unwrap_or(defaults.migration_concurrency),
                    ..defaults
                };
                let opened = root.clone();
                let store =
                    tokio::task::spawn_blocking(move || SqliteStore::with_options(opened, options))
                        .await??;
                Ok(Env {
                    backend: Backend::Sqlite,
                    store: Arc::new(store.clone()),
                    sqlite: Some(store),
                    pg: None,
                    root: Some(root),
                    database_url: String::new(),
                    hash,
                    hash_ms,
                    user_cache_ttl,
                    _tmp: tmp,
                })
            }
            Backend::Postgres => {
                database::prepare(&args.database_url, false).await?;
                let mut config = PgConfig::new(args.database_url.clone())
                    .with_max_connections(args.pool)
                    .with_routing(args.routing.routing());
                config.withhold_tenant_migrations = args.withhold_tenant_migrations;
                if let Some(n) = args.migrate_concurrency {
                    config.migrate_concurrency = n;
                }
                if let Some(n) = args.tenant_subpools {
                    config = config.with_tenant_subpools(n);
                }
                if let Some(n) = args.recycle_after {
                    config = config.with_recycle_after(n);
                }
                let store = PgStore::connect(config).await?;
                Ok(Env {
                    backend: Backend::Postgres,
                    store: Arc::new(store.clone()),
                    sqlite: None,
                    pg: Some(store),
                    root: None,
                    database_url: args.database_url.clone(),
                    hash,
                    hash_ms,
                    user_cache_ttl,
                    _tmp: None,
                })
            }
        }
    }

    /// The SQLite file of `tenant` (`<root>/tenants/<slug>.sqlite`).
    pub fn tenant_file(&self, tenant: &Tenant) -> Res<PathBuf> {
        let root = self.root.as_ref().ok_or("no SQLite root")?;
        Ok(root
            .join("tenants")
            .join(format!("{}.sqlite", tenant.slug.as_str())))
    }
}
