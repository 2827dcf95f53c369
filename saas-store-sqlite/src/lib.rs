//! SQLite backend for `saas`: a catalog file plus one database file per tenant.
//!
//! Layout under the root directory:
//!
//! ```text
//! <root>/catalog.sqlite          tenants, domains, superusers
//! <root>/jobs.sqlite             the job queue (see [`SqliteQueue`])
//! <root>/tenants/<slug>.sqlite   one file per tenant (the slug is a validated Slug)
//! ```
//!
//! [`SqliteStore`] implements [`saas_core::store::Store`]; its `open` returns a
//! handle implementing [`saas_core::store::TenantStore`] that can reach only
//! that tenant's file.
//!
//! - Every connection runs in WAL mode with `foreign_keys=ON`,
//!   `synchronous=NORMAL` (`FULL` for the catalog, and for a tenant's
//!   security-relevant writes: passwords, user roles and active flags,
//!   used refresh tokens), a busy timeout, and ATTACH refused
//!   (`SQLITE_LIMIT_ATTACHED` = 0), so no statement on a tenant's connection
//!   can reach another file.
//! - All SQLite work runs on tokio's blocking pool, never on the async executor.
//! - Open tenant handles live in a bounded LRU cache
//!   ([`SqliteOptions::handle_cache_capacity`]), so ten thousand tenants do not
//!   mean ten thousand open files. A handle evicted while in use keeps working
//!   for its holder and closes its connections when dropped.
//! - Each tenant handle has one writer connection (writes queue in-process,
//!   then take SQLite's lock with `BEGIN IMMEDIATE`) and a few readers that
//!   run in parallel under WAL.
//! - Plan limits: the count and the insert happen in one `BEGIN IMMEDIATE`
//!   transaction, so concurrent creates never overshoot.
//! - Tenant registration is all-or-nothing: the file is built under a
//!   temporary name, then, under the catalog's write lock, the catalog rows
//!   are inserted, the file renamed into place, and the transaction
//!   committed; any failure removes the file and rolls back.
//! - Each file records its schema version in `PRAGMA user_version`; files are
//!   migrated when opened, and [`saas_core::store::Store::migrate`] brings every tenant
//!   forward, reporting the ones that fail and going on.
//!
//! # Example
//!
//! Register a tenant, open its handle, and work inside it. (Services in
//! `saas-core` normally do this; they validate input and hash passwords
//! first.)
//!
//! ```
//! use saas_core::store::{PageRequest, Store};
//! use saas_core::projects::{NewProjectRecord, ProjectStatus, Scope};
//! use saas_core::tenancy::{Hostname, NewTenant, Slug, TenantId, TenantName};
//! use saas_core::users::{Email, NewUserRecord, Role, Username};
//! use saas_store_sqlite::SqliteStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = SqliteStore::open(dir.path())?;
//!
//! let now = chrono::Utc::now();
//! let (tenant, admin) = store
//!     .create_tenant(
//!         &NewTenant {
//!             id: TenantId::new(),
//!             name: TenantName::parse("Acme Corp")?,
//!             slug: Slug::parse("acme")?,
//!             plan: "basic".into(),
//!             domain: Hostname::parse("acme.localhost")?,
//!             created_at: now,
//!         },
//!         &NewUserRecord {
//!             username: Username::parse("admin")?,
//!             email: Email::parse("admin@acme.com")?,
//!             password_hash: "$argon2id$...".into(),
//!             first_name: String::new(),
//!             last_name: String::new(),
//!             role: Role::Admin,
//!             department: String::new(),
//!             is_owner: true,
//!             date_joined: now,
//!         },
//!     )
//!     .await?;
//! assert!(dir.path().join("tenants/acme.sqlite").exists());
//!
//! let acme = store.open(&tenant).await?;
//! let project = NewProjectRecord {
//!     name: "Launch".into(),
//!     description: String::new(),
//!     status: ProjectStatus::Planning,
//!     start_date: None,
//!     end_date: None,
//!     owner: admin.id,
//!     created_at: now,
//! };
//! acme.create_project(&project, Some(10)).await?;
//! let projects = acme.list_projects(Scope::All, PageRequest::first()).await?;
//! assert_eq!(projects.count, 1);
//! # Ok(())
//! # }
//! ```

/// Columns of a full user for a table aliased `u`, in the order
/// `codec::user` reads them.
macro_rules! user_columns {
    () => {
        "u.id, u.username, u.email, u.first_name, u.last_name, u.role, u.department, \
         u.is_active, u.is_owner, u.last_login, u.date_joined, u.token_version"
    };
}

/// Columns of a user summary for a table aliased `$a`, in the order
/// `codec::opt_summary` reads them.
macro_rules! summary_columns {
    ($a:literal) => {
        concat!(
            $a,
            ".id, ",
            $a,
            ".username, ",
            $a,
            ".email, ",
            $a,
            ".first_name, ",
            $a,
            ".last_name, ",
            $a,
            ".role"
        )
    };
}

mod access;
mod apps;
mod audit;
mod catalog;
mod codec;
mod db;
mod error;
mod import;
mod listing;
mod queue;
mod schema;
mod tenant;
#[cfg(feature = "testing")]
pub mod testing;

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lru::LruCache;
use saas_core::tenancy::TenantId;

pub use access::with_tenant_tx;
pub use apps::step;
pub use error::SqliteError;
pub use queue::{JOBS_FILE, SqliteQueue};
pub use schema::{CATALOG_SCHEMA_VERSION, JOBS_SCHEMA_VERSION, TENANT_SCHEMA_VERSION};

use db::{ConnSettings, Db, FileKind};
use error::Failure;
use tenant::SqliteTenant;

/// Tuning of a [`SqliteStore`]. Start from [`SqliteOptions::default`] and
/// change what you need:
///
/// ```
/// use std::time::Duration;
/// use saas_store_sqlite::SqliteOptions;
///
/// let options = SqliteOptions {
///     handle_cache_capacity: 1024,
///     busy_timeout: Duration::from_secs(10),
///     ..SqliteOptions::default()
/// };
/// assert_eq!(options.max_connections_per_tenant, 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Most tenant handles kept open at once (default 256; at least 1). Each
    /// holds up to `max_connections_per_tenant` connections, and every
    /// connection holds the file and its `-wal`/`-shm` open.
    pub handle_cache_capacity: usize,
    /// How long a statement waits for another connection's lock before
    /// failing with "database is busy" (default 5 s).
    pub busy_timeout: Duration,
    /// Most connections per tenant handle (default 4; at least 2): one writer
    /// and the rest readers, opened only when needed.
    pub max_connections_per_tenant: usize,
    /// Most connections to the catalog (default 8; at least 2): one writer
    /// and the rest readers.
    pub catalog_connections: usize,
    /// Tenant files migrated at once by [`saas_core::store::Store::migrate`] (default 4; at least 1).
    pub migration_concurrency: usize,
    /// Sync a tenant's security-relevant writes to disk before they return
    /// (`synchronous=FULL` for password changes, user updates and used
    /// refresh tokens; default true), so a power loss cannot roll back a
    /// deactivation or let a used refresh token be replayed. False keeps
    /// them at `NORMAL` like every other tenant write: faster (see
    /// BENCHMARKS.md, "Durable security writes"), but the last of them may
    /// be lost with the power. The catalog is always `FULL`.
    pub durable_security_writes: bool,
    /// Host applications whose migrations run with ours
    /// ([`saas_core::apps`]): their tenant-scope migrations at registration
    /// and by `migrate`, their shared-scope ones on the catalog file when
    /// the store is opened and by `migrate`. None by default.
    pub apps: saas_core::apps::Apps,
    /// Test knob: run all tenant schema steps but the last this many (0,
    /// the default, in production), so that this build behaves as the
    /// previous one: it provisions and migrates tenant files to the older
    /// version, and serves files at the newer one with the older
    /// statements, as the compatibility rule lets it (see
    /// [`saas_core::migration`]). For rolling-deploy tests and
    /// `saas-bench migrate-live`.
    #[doc(hidden)]
    pub withhold_tenant_migrations: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            handle_cache_capacity: 256,
            busy_timeout: Duration::from_secs(5),
            max_connections_per_tenant: 4,
            catalog_connections: 8,
            migration_concurrency: 4,
            durable_security_writes: true,
            apps: saas_core::apps::Apps::new(),
            withhold_tenant_migrations: 0,
        }
    }
}

/// Figures about a [`SqliteStore`]'s open resources, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteStats {
    /// Tenant handles in the cache.
    pub cached_handles: usize,
    /// SQLite connections open right now, catalog and job queue included
    /// (closing happens on the blocking pool, so a just-dropped handle may
    /// count for a moment).
    pub open_connections: usize,
}

/// The SQLite backend: a catalog file plus one database file per tenant,
/// under one root directory. Cloning is cheap and shares everything.
///
/// See the [crate documentation](crate) for the layout and the guarantees.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tenants_dir: PathBuf,
    catalog: Arc<Db>,
    settings: ConnSettings,
    options: SqliteOptions,
    /// Recently used handles; eviction drops only the cache's reference.
    cache: parking_lot::Mutex<Handles>,
    gauge: Arc<AtomicUsize>,
    /// The job queue in `<root>/jobs.sqlite`, shared by every clone.
    queue: SqliteQueue,
    /// The host applications' migrations (`options.apps`), shared with
    /// the blocking tasks that run them.
    apps: Arc<saas_core::apps::Apps>,
    /// The tenant schema steps this store runs
    /// (`options.withhold_tenant_migrations`).
    tenant_schema: schema::TenantSchema,
}

/// The cache of open handles, plus weak references to handles that were
/// evicted but are still held somewhere: reopening such a tenant reuses the
/// live handle instead of opening the file a second time, and deleting it
/// can shut that handle down.
#[derive(Debug)]
struct Handles {
    lru: LruCache<TenantId, Arc<SqliteTenant>>,
    evicted: std::collections::HashMap<TenantId, std::sync::Weak<SqliteTenant>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store rooted at `root` with default
    /// options: creates the directories, creates or migrates
    /// `catalog.sqlite`, and removes temporary files that registrations
    /// interrupted by a crash left behind.
    ///
    /// This does blocking file I/O; call it at start-up or from
    /// `tokio::task::spawn_blocking`.
    ///
    /// ```
    /// use saas_store_sqlite::SqliteStore;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = SqliteStore::open(dir.path().join("data"))?;
    /// assert!(dir.path().join("data/catalog.sqlite").exists());
    /// # drop(store);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(root: impl AsRef<Path>) -> Result<SqliteStore, SqliteError> {
        Self::with_options(root, SqliteOptions::default())
    }

    /// Like [`SqliteStore::open`], with `options`.
    ///
    /// ```
    /// use saas_store_sqlite::{SqliteOptions, SqliteStore};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = SqliteStore::with_options(
    ///     dir.path(),
    ///     SqliteOptions { handle_cache_capacity: 16, ..SqliteOptions::default() },
    /// )?;
    /// assert_eq!(store.options().handle_cache_capacity, 16);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_options(
        root: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<SqliteStore, SqliteError> {
        let root = root.as_ref().to_owned();
        let tenants_dir = root.join("tenants");
        std::fs::create_dir_all(&tenants_dir).map_err(|source| SqliteError::Io {
            path: tenants_dir.clone(),
            source,
        })?;
        let settings = ConnSettings {
            busy_timeout: options.busy_timeout,
        };
        apps::check(&options.apps).map_err(|source| SqliteError::Apps { source })?;
        let catalog_path = root.join("catalog.sqlite");
        {
            let mut conn = db::open_connection(&catalog_path, FileKind::Catalog, settings, false)?;
            schema::migrate(&mut conn, &catalog_path, schema::CATALOG, &[])?;
            apps::apply(&mut conn, &options.apps, apps::Scope::Shared).map_err(|f| match f {
                Failure::Core(source) => SqliteError::Apps { source },
                Failure::Db(e) => e,
            })?;
        }
        catalog::sweep_temp_files(&tenants_dir);
        let gauge = Arc::new(AtomicUsize::new(0));
        let queue = SqliteQueue::build(&root, &options, Arc::clone(&gauge))?;
        let catalog = Arc::new(Db::new(
            catalog_path,
            FileKind::Catalog,
            settings,
            options.catalog_connections.max(2) - 1,
            Arc::clone(&gauge),
        ));
        let capacity =
            NonZeroUsize::new(options.handle_cache_capacity).unwrap_or(NonZeroUsize::MIN);
        let apps = Arc::new(options.apps.clone());
        let options_withheld = options.withhold_tenant_migrations;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                tenants_dir,
                catalog,
                settings,
                options,
                cache: parking_lot::Mutex::new(Handles {
                    lru: LruCache::new(capacity),
                    evicted: std::collections::HashMap::new(),
                }),
                gauge,
                queue,
                apps,
                tenant_schema: schema::TenantSchema::new(options_withheld),
            }),
        })
    }

    /// The job queue stored under this store's root (`<root>/jobs.sqlite`),
    /// opened with the store. Every clone of the store returns a handle on
    /// the same queue, so enqueues wake workers of the whole process.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use saas_core::jobs::JobQueue;
    /// use saas_store_sqlite::SqliteStore;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = SqliteStore::open(dir.path())?;
    /// let queue: Arc<dyn JobQueue> = Arc::new(store.queue());
    /// assert!(dir.path().join("jobs.sqlite").exists());
    /// # drop(queue);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn queue(&self) -> SqliteQueue {
        self.inner.queue.clone()
    }

    /// The options this store was opened with.
    pub fn options(&self) -> &SqliteOptions {
        &self.inner.options
    }

    /// Open handles and connections right now.
    pub fn stats(&self) -> SqliteStats {
        SqliteStats {
            cached_handles: self.inner.cache.lock().lru.len(),
            open_connections: self.inner.gauge.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use saas_core::store::Store;
    use saas_core::tenancy::{Hostname, NewTenant, Slug, TenantName};
    use saas_core::users::{Email, NewUserRecord, Role, Username};

    use super::*;

    #[tokio::test]
    async fn attach_fails_on_a_tenant_handles_connections() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SqliteStore::open(dir.path()).expect("store");
        let now = chrono::DateTime::from_timestamp_micros(chrono::Utc::now().timestamp_micros())
            .expect("now");
        let (tenant, _) = store
            .create_tenant(
                &NewTenant {
                    id: TenantId::new(),
                    name: TenantName::parse("Acme").expect("name"),
                    slug: Slug::parse("acme").expect("slug"),
                    plan: "free".to_owned(),
                    domain: Hostname::parse("acme.localhost").expect("host"),
                    created_at: now,
                },
                &NewUserRecord {
                    username: Username::parse("admin").expect("username"),
                    email: Email::parse("admin@acme.com").expect("email"),
                    password_hash: "x".to_owned(),
                    first_name: String::new(),
                    last_name: String::new(),
                    role: Role::Admin,
                    department: String::new(),
                    is_owner: true,
                    date_joined: now,
                },
            )
            .await
            .expect("create");
        let _handle = store.open(&tenant).await.expect("open");
        let handle = store.inner.cache.lock().lookup(tenant.id).expect("cached");
        let catalog = dir.path().join("catalog.sqlite").display().to_string();
        let sql = format!("ATTACH DATABASE '{catalog}' AS catalog");
        let on_writer = {
            let sql = sql.clone();
            handle
                .db()
                .write(move |conn| Ok(conn.execute_batch(&sql)?))
                .await
        };
        assert!(on_writer.is_err(), "ATTACH on the writer connection");
        let on_reader = handle
            .db()
            .read(move |conn| Ok(conn.execute_batch(&sql)?))
            .await;
        assert!(on_reader.is_err(), "ATTACH on a reader connection");
    }
}
