//! PostgreSQL backend of `saas`: one schema per tenant, a shared schema for
//! the catalog.
//!
//! # Layout
//!
//! - `saas_shared` holds the catalog (`tenants`, `domains`, `superusers`)
//!   and the ledger of tenant schema versions (`tenant_schemas`). It is
//!   created on [`PgStore::connect`], idempotently, under an advisory lock so
//!   any number of processes may start at once.
//! - Each tenant lives in its own schema `t_<slug>_<12 hex digits of its
//!   id>` ([`tenant_schema_name`]). The prefix means a tenant schema can
//!   never be `public`, `pg_*`, `information_schema` or the shared schema;
//!   the slug is validated by [`saas_core::tenancy::Slug`] and quoted
//!   anyway. The id means a handle of a deleted tenant (in this process or
//!   any other) can never reach a later tenant registered with the same
//!   slug: its schema is gone, and its statements fail with
//!   `NotFound { entity: Tenant }`.
//! - With several databases ([`PgConfig::with_database`]) the catalog lives
//!   in the first; every database has its own `saas_shared` ledger so a
//!   tenant's migration and its ledger row commit together.
//!
//! # Routing
//!
//! A [`TenantStore`](saas_core::store::TenantStore) handle routes its
//! statements to the tenant schema without any session state that could
//! outlive one unit of work (see [`Routing`]). Behind a transaction-mode
//! pooler such as PgBouncer, set [`PgConfig::transaction_pooler`]: no named
//! prepared statements, and every unit of work in a transaction, so that a
//! statement's round trips all reach the same server connection.
//!
//! # Connections
//!
//! Each database has a pool for the catalog and the shared schema
//! (provisioning, fleet migrations, the job queue), and its tenants'
//! connections apart, split into [`PgConfig::tenant_subpools`] sub-pools:
//! each tenant runs on its own two of them, so that each PostgreSQL backend
//! keeps a bounded share of the tenants' schemas warm and their statements
//! prepared.
//!
//! ```no_run
//! # async fn demo() -> Result<(), saas_store_postgres::PgError> {
//! use saas_store_postgres::{PgConfig, PgStore, Placement};
//!
//! let store = PgStore::connect(
//!     PgConfig::new("postgres://postgres@127.0.0.1/app")
//!         .with_database("eu", "postgres://postgres@127.0.0.1/app_eu")
//!         .with_placement(Placement::FewestTenants),
//! )
//! .await?;
//! # let _ = store; Ok(()) }
//! ```

mod access;
mod affinity;
mod apps;
mod audit;
mod catalog;
mod error;
mod hot;
mod import;
mod listing;
mod pooling;
mod queue;
mod rows;
mod schema;
mod tenant;
mod unit;

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lru::LruCache;
use saas_core::telemetry;
use saas_core::tenancy::TenantId;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub use access::with_tenant_tx;
pub use apps::step;
pub use error::PgError;
pub use queue::PgQueue;

use affinity::TenantPools;
use tenant::{PgTenant, Statements};

/// How a tenant handle points its statements at the tenant's schema.
///
/// No strategy leaves a session-level `search_path` behind, so a pooled
/// connection never carries one tenant into the next unit of work. Behind
/// a transaction pooler see [`PgConfig::transaction_pooler`], which turns
/// every statement unnamed whatever the strategy.
///
/// The default was chosen by measurement (`saas-bench routing`, see
/// BENCHMARKS.md): its cost per request is bounded whatever the number of
/// tenants, and its busiest tenants run at the cost of a single-schema
/// application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Routing {
    /// Every table name is qualified with the quoted tenant schema (SQL
    /// rendered once per handle, handles cached). The statements of each
    /// tenant sub-pool's busiest tenants ([`PgConfig::tenant_subpools`]),
    /// as many as the statement cache holds
    /// ([`PgConfig::statement_cache_capacity`] / [`STATEMENTS_PER_TENANT`]),
    /// are named prepared statements on that sub-pool's connections (one
    /// round trip, no parsing); every other tenant's are unnamed (parsed
    /// and planned each time, two round trips), so the cache never thrashes
    /// however many tenants are active. A unit of work that spilled to its
    /// tenant's second sub-pool runs unnamed too, whatever the routing, so
    /// that no connection prepares another sub-pool's tenants.
    ///
    /// Busy means opened often lately: each
    /// [`Store::open`](saas_core::store::Store::open) counts as one request
    /// and decides for the handle it returns, so open a handle per request
    /// (it is cheap: handles are cached) rather than keeping one forever.
    #[default]
    QualifiedSql,
    /// Qualified SQL, always unnamed: the same cost for every tenant, and
    /// nothing accumulates per tenant on any connection.
    QualifiedUnnamed,
    /// Qualified SQL, always named prepared statements in sqlx's
    /// per-connection LRU cache: the cheapest while every connection's
    /// active tenants fit the cache, the most expensive beyond (parse,
    /// plan, and an eviction round trip for every statement).
    QualifiedPrepared,
    /// Unqualified SQL inside a transaction opened with
    /// `BEGIN; SET LOCAL search_path TO <schema>`: the same prepared
    /// statements serve every tenant, at the price of a transaction (two more
    /// round trips) around every unit of work, and PostgreSQL re-plans a
    /// cached statement whenever `search_path` differs from its last run.
    SetLocalSearchPath,
}

/// Prepared statement cache slots budgeted per busy tenant by
/// [`Routing::QualifiedSql`]: its fixed statements in common use plus the
/// task list and count variants of typical filters.
pub const STATEMENTS_PER_TENANT: usize = 16;

/// Where new tenants are placed when several databases are configured.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Placement {
    /// The database holding the fewest tenants (ties: the first configured).
    #[default]
    FewestTenants,
    /// Always the named database.
    Database(String),
}

/// Configuration of a [`PgStore`].
#[derive(Clone)]
pub struct PgConfig {
    /// Databases by name, with their connection URLs. The first holds the
    /// catalog. Names are recorded in the catalog (`Tenant::database`), so
    /// keep them stable; URLs may change.
    pub databases: Vec<(String, String)>,
    /// Placement policy for new tenants.
    pub placement: Placement,
    /// Pool size per database: the catalog's and shared schema's pool has
    /// this many connections, and the tenants' sub-pools as many together
    /// (opened as needed, so an idle store holds few).
    pub max_connections: u32,
    /// Tenant-affine connections: each database's tenant connections
    /// ([`PgConfig::max_connections`] of them) are split into this many
    /// sub-pools (at most one per connection). A tenant is bound, by
    /// rendezvous hashing of its id, to two of them: its units of work run
    /// on the first, or on the second while the first has no connection
    /// free and the second has one idle, and otherwise wait for the first
    /// (for at most [`PgConfig::acquire_timeout`], the same error as any
    /// pool timeout). Each PostgreSQL backend then sees about
    /// `2 × tenants / tenant_subpools` schemas instead of all of them, so
    /// their relation and catalog caches stay warm and bounded, and each
    /// sub-pool prepares the statements of its own busiest tenants (see
    /// [`Routing::QualifiedSql`]). A tenant gets at most two sub-pools'
    /// connections at once: fewer sub-pools suit a few very busy tenants,
    /// more suit many tenants. 1 (the default): every tenant on one pool,
    /// apart from the catalog's. Measured (BENCHMARKS.md, "Tenant scale"):
    /// at 3,000 tenants, 10 sub-pools cut the backends' private memory by
    /// more than half, but made requests slower, whether spread over all
    /// tenants or over ten (a request waits for its two sub-pools while
    /// other connections may be idle, and a spilled unit runs unnamed), so
    /// it is not the default.
    pub tenant_subpools: usize,
    /// How long to wait for a pooled connection.
    pub acquire_timeout: Duration,
    /// Tenant connections are replaced as they serve tenants whose
    /// statements they do not keep prepared: one connection of a sub-pool
    /// is closed (when given back) and a fresh one opened for every this
    /// many such units of work run there; 0: never. A PostgreSQL backend
    /// keeps what it compiled for every tenant whose tables it wrote (the
    /// tenant's trigger functions and foreign-key checks, about nine saved
    /// plans and 270 KB a tenant) until it exits, and walks all its saved
    /// plans on each of the hundreds of catalog invalidations every new
    /// tenant schema sends: without recycling, backends serving many
    /// tenants grow without bound and provisioning slows down as they do
    /// (BENCHMARKS.md, "Provisioning while tenants are in use"). Units of
    /// the busiest tenants (the ones whose statements are prepared, see
    /// [`Routing::QualifiedSql`]) are not counted, so a few busy tenants
    /// never cause a reconnect. Default 250: each backend holds at most a
    /// few hundred tenants' compiled state, and pays one reconnect (a few
    /// milliseconds) per 250 requests of tenants outside the busiest.
    pub recycle_after: u64,
    /// How handles route to tenant schemas.
    pub routing: Routing,
    /// Prepared statements kept per connection (sqlx's LRU cache). With
    /// [`Routing::QualifiedSql`] it also decides how many busy tenants are
    /// prepared (this / [`STATEMENTS_PER_TENANT`]). Each cached statement
    /// costs server memory on every connection (tens of KB with its plan).
    pub statement_cache_capacity: usize,
    /// Tenant handles (with their rendered SQL) kept by the store.
    pub handle_cache_capacity: usize,
    /// Tenants migrated at once by [`saas_core::store::Store::migrate`].
    pub migrate_concurrency: usize,
    /// The databases are reached through a transaction-mode pooler such as
    /// PgBouncer (without prepared statement support, as in 1.18): no named
    /// prepared statements at all (the statement cache is off), and every
    /// unit of work, reads included, is a transaction, so each statement's
    /// round trips stay on one server connection. Works with every
    /// [`Routing`]; costs a `BEGIN` and a `COMMIT` round trip per store
    /// call that would otherwise autocommit.
    pub transaction_pooler: bool,
    /// Host applications whose migrations run with ours
    /// ([`saas_core::apps`]): their tenant-scope migrations at provisioning
    /// and by `migrate`, their shared-scope ones in the catalog database on
    /// [`PgStore::connect`] and `migrate`.
    pub apps: saas_core::apps::Apps,
    /// Test knob: run all tenant schema migrations but the last this many
    /// (0, the default, in production), so that this build behaves as the
    /// previous one: it provisions and migrates tenant schemas to the
    /// older version, and serves schemas at the newer one with the older
    /// statements, as the compatibility rule lets it (see
    /// [`saas_core::migration`]). For rolling-deploy tests and
    /// `saas-bench migrate-live`.
    #[doc(hidden)]
    pub withhold_tenant_migrations: usize,
}

impl PgConfig {
    /// One database, named `default`, with default settings.
    pub fn new(url: impl Into<String>) -> Self {
        PgConfig {
            databases: vec![("default".to_owned(), url.into())],
            ..PgConfig::default()
        }
    }

    /// Adds a database tenants may be placed in.
    pub fn with_database(mut self, name: impl Into<String>, url: impl Into<String>) -> Self {
        self.databases.push((name.into(), url.into()));
        self
    }

    /// Sets the placement policy.
    pub fn with_placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }

    /// Sets the pool size per database.
    pub fn with_max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// Sets the number of tenant sub-pools per database (see
    /// [`PgConfig::tenant_subpools`]).
    pub fn with_tenant_subpools(mut self, n: usize) -> Self {
        self.tenant_subpools = n;
        self
    }

    /// Sets how many unprepared units of work a tenant sub-pool runs per
    /// connection it replaces (see [`PgConfig::recycle_after`]; 0: never).
    pub fn with_recycle_after(mut self, units: u64) -> Self {
        self.recycle_after = units;
        self
    }

    /// Sets the routing strategy.
    pub fn with_routing(mut self, routing: Routing) -> Self {
        self.routing = routing;
        self
    }

    /// Declares that the databases are reached through a transaction-mode
    /// pooler (see [`PgConfig::transaction_pooler`]).
    pub fn with_transaction_pooler(mut self, yes: bool) -> Self {
        self.transaction_pooler = yes;
        self
    }

    /// Sets the host applications whose migrations run with ours.
    pub fn with_apps(mut self, apps: saas_core::apps::Apps) -> Self {
        self.apps = apps;
        self
    }

    /// Whether any statement may be a named prepared statement. sqlx
    /// names a statement even with a cache of capacity 0 (and then never
    /// closes it), so "no cache" must also mean "no names".
    fn named_statements(&self) -> bool {
        !self.transaction_pooler && self.statement_cache_capacity > 0
    }

    /// Sets the number of prepared statements kept per connection.
    pub fn with_statement_cache_capacity(mut self, n: usize) -> Self {
        self.statement_cache_capacity = n;
        self
    }
}

impl Default for PgConfig {
    /// No database (add some), ten connections each, the default routing.
    fn default() -> Self {
        PgConfig {
            databases: Vec::new(),
            placement: Placement::default(),
            max_connections: 10,
            tenant_subpools: 1,
            acquire_timeout: Duration::from_secs(30),
            recycle_after: 250,
            routing: Routing::default(),
            statement_cache_capacity: 256,
            handle_cache_capacity: 4096,
            migrate_concurrency: 8,
            transaction_pooler: false,
            apps: saas_core::apps::Apps::new(),
            withhold_tenant_migrations: 0,
        }
    }
}

impl fmt::Debug for PgConfig {
    /// URLs may carry passwords: only database names are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConfig")
            .field(
                "databases",
                &self.databases.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("placement", &self.placement)
            .field("max_connections", &self.max_connections)
            .field("tenant_subpools", &self.tenant_subpools)
            .field("recycle_after", &self.recycle_after)
            .field("routing", &self.routing)
            .field("statement_cache_capacity", &self.statement_cache_capacity)
            .field("handle_cache_capacity", &self.handle_cache_capacity)
            .field("migrate_concurrency", &self.migrate_concurrency)
            .field("transaction_pooler", &self.transaction_pooler)
            .field(
                "withhold_tenant_migrations",
                &self.withhold_tenant_migrations,
            )
            .field(
                "apps",
                &self.apps.iter().map(|a| a.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The name of the schema holding `tenant`'s tables, for operators
/// (`psql`, backups, monitoring). Nothing in this crate accepts a schema
/// name: handles come from [`Store::open`](saas_core::store::Store::open).
pub fn tenant_schema_name(tenant: &saas_core::tenancy::Tenant) -> String {
    schema::schema_name(&tenant.slug, tenant.id)
}

/// The SQL of tenant schema migration `version` alone, rendered for
/// `tenant`'s schema, or `None` if there is no such version. Only for tests
/// that put a tenant back at an older version to exercise
/// [`Store::migrate`](saas_core::store::Store::migrate).
#[doc(hidden)]
pub fn tenant_migration_step_sql(
    tenant: &saas_core::tenancy::Tenant,
    version: i32,
) -> Option<String> {
    schema::tenant_migration_step_sql(&schema::schema_name(&tenant.slug, tenant.id), version)
}

/// One configured database.
struct Database {
    name: String,
    /// The catalog's and shared schema's connections.
    pool: PgPool,
    /// The tenants' connections.
    tenants: TenantPools,
    options: PgConnectOptions,
}

impl Database {
    /// Sets the pool gauges ([`saas_core::telemetry::PG_POOL_CONNECTIONS`])
    /// to what the pool holds now.
    fn observe_pool(&self) {
        let (tenant_size, tenant_idle) = self.tenants.size_and_idle();
        let size = f64::from(self.pool.size().saturating_add(tenant_size));
        // sqlx's idle count can wrap below zero for an instant (a connection
        // taken between its return and the count's increment): saturate.
        let idle = (self.pool.num_idle().saturating_add(tenant_idle) as f64).min(size);
        let db = self.name.clone();
        metrics::gauge!(telemetry::PG_POOL_CONNECTIONS, "database" => db.clone(), "state" => "idle")
            .set(idle);
        metrics::gauge!(telemetry::PG_POOL_CONNECTIONS, "database" => db.clone(), "state" => "busy")
            .set((size - idle).max(0.0));
        metrics::gauge!(telemetry::PG_POOL_MAX, "database" => db).set(f64::from(
            self.pool.options().get_max_connections() + self.tenants.max_connections(),
        ));
    }
}

struct Inner {
    /// The first one holds the catalog.
    databases: Vec<Database>,
    config: PgConfig,
    /// Statements rendered without a schema, shared by search-path handles:
    /// for schemas before and from [`schema::STARTED_AT_VERSION`].
    unqualified: [Arc<Statements>; 2],
    /// The tenant migrations this store runs
    /// (`config.withhold_tenant_migrations`).
    tenant_schema: schema::TenantSchema,
    handles: Mutex<LruCache<TenantId, Arc<PgTenant>>>,
}

/// The PostgreSQL [`Store`](saas_core::store::Store). Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl PgStore {
    /// Connects to every configured database and creates or upgrades the
    /// shared schema in each (idempotent, safe under concurrent starts).
    pub async fn connect(config: PgConfig) -> Result<Self, PgError> {
        if config.databases.is_empty() {
            return Err(PgError::Config {
                reason: "no database configured",
            });
        }
        for (i, (name, _)) in config.databases.iter().enumerate() {
            if name.is_empty() || config.databases[..i].iter().any(|(n, _)| n == name) {
                return Err(PgError::Config {
                    reason: "database names must be non-empty and distinct",
                });
            }
        }
        if let Placement::Database(name) = &config.placement
            && !config.databases.iter().any(|(n, _)| n == name)
        {
            return Err(PgError::Config {
                reason: "the placement names a database that is not configured",
            });
        }
        if config.max_connections == 0
            || config.migrate_concurrency == 0
            || config.tenant_subpools == 0
        {
            return Err(PgError::Config {
                reason: "max_connections, tenant_subpools and migrate_concurrency must be positive",
            });
        }
        apps::check(&config.apps)?;
        let mut databases = Vec::with_capacity(config.databases.len());
        for (name, url) in &config.databases {
            let mut options: PgConnectOptions = url
                .parse::<PgConnectOptions>()?
                .statement_cache_capacity(config.statement_cache_capacity)
                .application_name("saas");
            if config.transaction_pooler {
                // Nothing is cached (statements are unnamed, see
                // `named_statements`). PgBouncer refuses unknown startup
                // parameters, and this backend reads no floating point values.
                options = options.statement_cache_capacity(0).extra_float_digits(None);
            }
            // The catalog's backends serve no tenant's tables: nothing to
            // recycle for (its count of cold units stays at zero).
            let pool = pooling::pool_options(config.recycle_after, Default::default())
                .max_connections(config.max_connections)
                .acquire_timeout(config.acquire_timeout)
                .connect_with(options.clone())
                .await?;
            let mut conn = pool.acquire().await?;
            schema::setup_shared(&mut conn, config.named_statements()).await?;
            if databases.is_empty() {
                apps::apply_shared(&mut conn, &config.apps, config.named_statements())
                    .await
                    .map_err(|source| PgError::Apps { source })?;
            }
            drop(conn);
            let tenants = TenantPools::new(
                &options,
                config.tenant_subpools,
                config.max_connections,
                config.acquire_timeout,
                config.statement_cache_capacity / STATEMENTS_PER_TENANT,
                config.recycle_after,
            );
            databases.push(Database {
                name: name.clone(),
                pool,
                tenants,
                options,
            });
        }
        let capacity = NonZeroUsize::new(config.handle_cache_capacity).unwrap_or(NonZeroUsize::MIN);
        Ok(PgStore {
            inner: Arc::new(Inner {
                databases,
                unqualified: [false, true].map(|started| Arc::new(Statements::render("", started))),
                tenant_schema: schema::TenantSchema::new(config.withhold_tenant_migrations),
                handles: Mutex::new(LruCache::new(capacity)),
                config,
            }),
        })
    }

    /// [`PgStore::connect`] with one database and default settings.
    pub async fn connect_url(url: &str) -> Result<Self, PgError> {
        Self::connect(PgConfig::new(url)).await
    }

    /// Names of the configured databases; the first holds the catalog.
    pub fn database_names(&self) -> Vec<String> {
        self.inner
            .databases
            .iter()
            .map(|d| d.name.clone())
            .collect()
    }

    /// The connection pool of the catalog database, for host applications
    /// that keep their own tables next to it (and for tests).
    pub fn catalog_pool(&self) -> &PgPool {
        &self.inner.databases[0].pool
    }

    /// The tenant sub-pools of the catalog database, in order (for tests
    /// of tenant affinity).
    #[doc(hidden)]
    pub fn tenant_pools(&self) -> Vec<PgPool> {
        self.catalog()
            .tenants
            .subpools()
            .map(|s| s.pool.clone())
            .collect()
    }

    /// The indexes of `tenant`'s home and spare sub-pools in its database's
    /// [`PgStore::tenant_pools`] (for tests of tenant affinity).
    #[doc(hidden)]
    pub fn tenant_subpools_of(&self, tenant: &saas_core::tenancy::Tenant) -> (usize, usize) {
        self.database(&tenant.database)
            .map_or((0, 0), |db| db.tenants.choices(tenant.id))
    }

    /// Whether the store was configured for a transaction-mode pooler
    /// ([`PgConfig::transaction_pooler`]).
    pub fn transaction_pooler(&self) -> bool {
        self.inner.config.transaction_pooler
    }

    /// The routing strategy of this store's handles.
    pub fn routing(&self) -> Routing {
        self.inner.config.routing
    }

    /// A handle to `tenant` that behaves like a single-schema application:
    /// unqualified SQL on a separate small pool whose connections have the
    /// tenant schema as their session `search_path`, without transactions.
    ///
    /// Only for benchmarks (it is the baseline the routing strategies are
    /// measured against) and only for one tenant per pool: it is exactly the
    /// session state that must never be used behind a shared pooler.
    #[doc(hidden)]
    pub async fn single_schema_baseline(
        &self,
        tenant: &saas_core::tenancy::Tenant,
        max_connections: u32,
    ) -> saas_core::Result<Arc<dyn saas_core::store::TenantStore>> {
        let db = self.database(&tenant.database)?;
        let schema = schema::quote_ident(&schema::schema_name(&tenant.slug, tenant.id));
        let options = db.options.clone().options([("search_path", schema)]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await
            .map_err(|e| saas_core::Error::from(PgError::from(e)))?;
        Ok(Arc::new(PgTenant::baseline(
            tenant.id,
            pool,
            &self.inner.unqualified[1],
        )))
    }

    fn database(&self, name: &str) -> saas_core::Result<&Database> {
        self.inner
            .databases
            .iter()
            .find(|d| d.name == name)
            .ok_or_else(|| {
                PgError::UnknownDatabase {
                    name: name.to_owned(),
                }
                .into()
            })
    }

    fn catalog(&self) -> &Database {
        &self.inner.databases[0]
    }
}
