//! The catalog (tenants, domains, superusers) and the life cycle of tenant
//! files: [`Store`] for [`SqliteStore`].

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use saas_core::audit::{AuditEntry, AuditQuery, NewAuditEntry};
use saas_core::error::chain;
use saas_core::import::TenantImport;
use saas_core::migration::{FleetTenant, migrate_fleet};
use saas_core::store::{
    MigrationReport, Page, PageRequest, ProgressFn, Store, Superuser, TenantStore,
};
use saas_core::telemetry;
use saas_core::tenancy::{
    Domain, Hostname, NewTenant, Slug, Tenant, TenantId, TenantName, TenantStatus,
};
use saas_core::tenant_query::TenantQuery;
use saas_core::users::{Email, NewUserRecord, User, Username};
use saas_core::{Entity, Error, Result};
use uuid::Uuid;

use saas_core::apps::Apps;

use crate::apps::{self, Scope};
use crate::db::{self, ConnSettings, Db, FileKind, blocking, run_off_runtime};
use crate::error::{Failure, R, SqliteError, conflict_on, io_error, not_found};
use crate::import;
use crate::schema::TenantSchema;
use crate::tenant::{self, SqliteTenant, immediate};
use crate::{Handles, SqliteStore, audit, codec, listing, schema};

mod lifecycle;

/// The `database` every SQLite tenant reports: all files live under one root.
const DATABASE: &str = "default";

/// Temporary files older than this are leftovers of a crashed registration
/// (a live one takes milliseconds).
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

macro_rules! tenant_columns {
    () => {
        "t.id, t.name, t.slug, t.plan, t.status, t.database, t.created_at, t.deleted_at"
    };
}

fn tenant_row(r: &Row<'_>) -> rusqlite::Result<Tenant> {
    let deleted_at = codec::opt_ts(r, 7)?;
    Ok(Tenant {
        id: TenantId(codec::parsed(r, 0, parse_uuid)?),
        name: codec::parsed(r, 1, TenantName::parse)?,
        slug: codec::parsed(r, 2, Slug::parse)?,
        plan: r.get(3)?,
        // Deletion is the mark, over the status kept for a restore.
        status: match deleted_at {
            Some(_) => TenantStatus::Deleted,
            None => codec::tenant_status(r, 4)?,
        },
        database: r.get(5)?,
        created_at: codec::ts(r, 6)?,
        deleted_at,
    })
}

fn parse_uuid(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|_| Error::invalid("id", "not a uuid"))
}

fn load_tenant(conn: &Connection, id: TenantId) -> rusqlite::Result<Option<Tenant>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        tenant_columns!(),
        " FROM tenants t WHERE t.id = ?1"
    ))?
    .query_row([id.to_string()], tenant_row)
    .optional()
}

fn tenant_exists(conn: &Connection, id: TenantId) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM tenants WHERE id = ?1")?
        .query_row([id.to_string()], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
}

fn superuser_row(r: &Row<'_>) -> rusqlite::Result<Superuser> {
    Ok(Superuser {
        id: r.get(0)?,
        username: codec::parsed(r, 1, Username::parse)?,
        email: codec::parsed(r, 2, Email::parse)?,
        created_at: codec::ts(r, 3)?,
        is_active: r.get(4)?,
        token_version: r.get(5)?,
    })
}

/// The columns [`superuser_row`] reads.
const SUPERUSER_COLUMNS: &str = "id, username, email, created_at, is_active, token_version";

fn load_superuser(conn: &Connection, id: i64) -> rusqlite::Result<Option<Superuser>> {
    conn.prepare_cached(&format!(
        "SELECT {SUPERUSER_COLUMNS} FROM superusers WHERE id = ?1"
    ))?
    .query_row([id], superuser_row)
    .optional()
}

// --- files -----------------------------------------------------------------

/// The file of the tenant with `slug`. A `Slug` is `[a-z][a-z0-9_]*`, so the
/// name cannot leave the directory or collide with a temporary name.
pub(crate) fn tenant_file(dir: &Path, slug: &Slug) -> PathBuf {
    dir.join(format!("{}.sqlite", slug.as_str()))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The files SQLite may keep next to a database.
const COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

fn remove_if_exists(path: &Path) -> R<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(io_error(path)(e)),
        _ => Ok(()),
    }
}

fn remove_companions(path: &Path) -> R<()> {
    for suffix in COMPANIONS {
        remove_if_exists(&with_suffix(path, suffix))?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> R<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

fn remove_db_files(path: &Path) -> R<()> {
    remove_if_exists(path)?;
    remove_companions(path)
}

/// Removes a database file and its companions when dropped, unless kept:
/// the undo of a tenant registration that did not finish.
#[derive(Debug)]
struct FileGuard {
    path: PathBuf,
    armed: bool,
    /// Set while the guard is held by async code, where a drop (a cancelled
    /// registration) must not do file I/O on the executor.
    off_runtime: bool,
}

impl FileGuard {
    fn new(path: PathBuf) -> Self {
        FileGuard {
            path,
            armed: true,
            off_runtime: false,
        }
    }

    fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for FileGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let path = std::mem::take(&mut self.path);
        let remove = move || {
            if let Err(e) = remove_db_files(&path) {
                tracing::warn!(path = %path.display(), error = ?e, "could not remove an abandoned tenant file");
            }
        };
        if self.off_runtime {
            run_off_runtime(remove);
        } else {
            remove();
        }
    }
}

/// Builds a complete tenant file under a temporary name: every table, the
/// tenant's id, and its admin. Nothing else can see it until it is renamed.
fn build_tenant_file<T>(
    dir: &Path,
    tenant: &NewTenant,
    fill: impl FnOnce(&Connection) -> R<T>,
    settings: ConnSettings,
    apps: &Apps,
    tenant_schema: TenantSchema,
) -> R<(FileGuard, T)> {
    // The dot keeps temporary names out of the slug namespace.
    let path = dir.join(format!(
        "{}.{}.tmp",
        tenant.slug.as_str(),
        Uuid::new_v4().simple()
    ));
    let guard = FileGuard::new(path.clone());
    let mut conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    db::configure(&conn, settings)?;
    // Nobody else sees this file and a failed build is thrown away, so it is
    // built without a journal file or per-commit syncs, and synced once at
    // the end.
    conn.pragma_update(None, "journal_mode", "MEMORY")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    tenant_schema.migrate(&mut conn, &path)?;
    let tx = immediate(&mut conn)?;
    tx.execute(
        "INSERT INTO tenant_meta (singleton, tenant_id, slug) VALUES (1, ?1, ?2)",
        params![tenant.id.to_string(), tenant.slug.as_str()],
    )?;
    let filled = fill(&tx)?;
    tx.commit()?;
    apps::apply(&mut conn, apps, Scope::Tenant)?;
    // Switched to WAL here, where it costs no sync, rather than on the
    // first open. Closing the last connection checkpoints and removes the
    // `-wal`, so a single file is renamed into place.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.close().map_err(|(_, e)| e)?;
    for suffix in COMPANIONS {
        let companion = with_suffix(&path, suffix);
        if companion.exists() {
            return Err(Failure::Db(SqliteError::Io {
                path: companion,
                source: std::io::Error::other("database companion file left after close"),
            }));
        }
    }
    std::fs::File::open(&path)
        .and_then(|f| f.sync_all())
        .map_err(io_error(&path))?;
    Ok((guard, filled))
}

/// Checks that the file at `path` was built for tenant `id`.
fn verify_owner(
    conn: &Connection,
    path: &Path,
    id: TenantId,
) -> std::result::Result<(), SqliteError> {
    let owner: Option<String> = conn
        .query_row(
            "SELECT tenant_id FROM tenant_meta WHERE singleton = 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if owner.as_deref() == Some(id.to_string().as_str()) {
        Ok(())
    } else {
        Err(SqliteError::TenantMismatch {
            path: path.to_owned(),
        })
    }
}

/// Migrates one tenant file on a connection of its own; true when it was
/// behind.
fn migrate_tenant_file(
    path: &Path,
    id: TenantId,
    settings: ConnSettings,
    apps: &Apps,
    tenant_schema: TenantSchema,
) -> R<bool> {
    if !path.exists() {
        return Err(Failure::Db(SqliteError::Io {
            path: path.to_owned(),
            source: std::io::Error::new(ErrorKind::NotFound, "tenant file is missing"),
        }));
    }
    let mut conn = db::open_connection(path, FileKind::Tenant, settings, false)?;
    let before = tenant_schema.migrate(&mut conn, path)?;
    verify_owner(&conn, path, id)?;
    let theirs = apps::apply(&mut conn, apps, Scope::Tenant)?;
    Ok(before < tenant_schema.known() || theirs)
}

/// Removes temporary files that a registration interrupted by a crash left
/// in the tenants directory. Best effort: a failure only leaves litter.
pub(crate) fn sweep_temp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_temp = COMPANIONS
            .iter()
            .fold(name.as_ref(), |n, s| n.strip_suffix(s).unwrap_or(n))
            .ends_with(".tmp");
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > STALE_TEMP_AGE);
        if is_temp
            && stale
            && let Err(e) = std::fs::remove_file(entry.path())
        {
            tracing::warn!(path = %entry.path().display(), error = %e, "could not remove a stale temporary file");
        }
    }
}

fn is_cant_open(f: &Failure) -> bool {
    matches!(f, Failure::Db(SqliteError::Sqlite { source })
        if source.sqlite_error_code() == Some(rusqlite::ErrorCode::CannotOpen))
}

// --- the handle cache ------------------------------------------------------

impl Handles {
    /// The live handle of `id`, refreshing its place in the cache.
    pub(crate) fn lookup(&mut self, id: TenantId) -> Option<Arc<SqliteTenant>> {
        if let Some(handle) = self.lru.get(&id) {
            return Some(Arc::clone(handle));
        }
        let alive = self.evicted.remove(&id)?.upgrade()?;
        self.insert(id, Arc::clone(&alive));
        Some(alive)
    }

    fn insert(&mut self, id: TenantId, handle: Arc<SqliteTenant>) {
        if let Some((old_id, old)) = self.lru.push(id, handle)
            && old_id != id
        {
            metrics::counter!(telemetry::SQLITE_HANDLES_EVICTED).increment(1);
            if Arc::strong_count(&old) > 1 {
                self.evicted.insert(old_id, Arc::downgrade(&old));
            }
            // Dropping the last reference closes its connections, which the
            // pool does on the blocking pool.
            drop(old);
        }
        if self.evicted.len() > self.lru.cap().get() {
            self.evicted.retain(|_, weak| weak.strong_count() > 0);
        }
    }

    /// Every live handle of `id`, out of the cache.
    fn take(&mut self, id: TenantId) -> Vec<Arc<SqliteTenant>> {
        let cached = self.lru.pop(&id);
        let evicted = self.evicted.remove(&id).and_then(|w| w.upgrade());
        cached.into_iter().chain(evicted).collect()
    }
}

impl SqliteStore {
    /// Builds the tenant's file (schema, then `fill` in its first
    /// transaction) and enters it in the catalog, all or nothing: the
    /// shared part of creating and importing a tenant.
    async fn add_tenant<T: Send + 'static>(
        &self,
        tenant: &NewTenant,
        fill: impl FnOnce(&Connection) -> R<T> + Send + 'static,
    ) -> Result<(Tenant, T)> {
        let dir = self.inner.tenants_dir.clone();
        let settings = self.inner.settings;
        let new = tenant.clone();
        let apps = Arc::clone(&self.inner.apps);
        let tenant_schema = self.inner.tenant_schema;
        // The file is built before the catalog lock is taken, so a slow
        // registration does not hold up every other one.
        let (mut temp, filled) =
            blocking(move || build_tenant_file(&dir, &new, fill, settings, &apps, tenant_schema))
                .await?;
        temp.off_runtime = true;

        let final_path = self.tenant_path(&tenant.slug);
        let dir = self.inner.tenants_dir.clone();
        let row = tenant.to_tenant(DATABASE);
        let new = tenant.clone();
        self.catalog_write(move |conn| {
            let mut temp = temp;
            temp.off_runtime = false;
            let tx = immediate(conn)?;
            let slug_taken = tx
                .prepare_cached("SELECT 1 FROM tenants WHERE slug = ?1")?
                .query_row([new.slug.as_str()], |_| Ok(()))
                .optional()?
                .is_some();
            if slug_taken {
                return Err(Failure::Core(Error::Conflict {
                    entity: Entity::Tenant,
                    field: "slug",
                }));
            }
            let host_taken = tx
                .prepare_cached("SELECT 1 FROM domains WHERE hostname = ?1")?
                .query_row([new.domain.as_str()], |_| Ok(()))
                .optional()?
                .is_some();
            if host_taken {
                return Err(Failure::Core(Error::Conflict {
                    entity: Entity::Domain,
                    field: "hostname",
                }));
            }
            tx.prepare_cached(
                "INSERT INTO tenants (id, name, slug, plan, status, database, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                new.id.to_string(),
                new.name.as_str(),
                new.slug.as_str(),
                new.plan,
                codec::tenant_status_rank(TenantStatus::Active)?,
                DATABASE,
                codec::micros(new.created_at),
            ])
            .map_err(conflict_on(Entity::Tenant, "id"))?;
            tx.prepare_cached(
                "INSERT INTO domains (hostname, tenant_id, is_primary) VALUES (?1, ?2, 1)",
            )?
            .execute(params![new.domain.as_str(), new.id.to_string()])
            .map_err(conflict_on(Entity::Domain, "hostname"))?;
            // The slug is free in the catalog and we hold its write lock, so
            // anything at the final name is the orphan of a crash between
            // rename and commit; its companions must not be replayed into
            // the new file.
            if final_path.exists() {
                tracing::warn!(path = %final_path.display(), "replacing an orphaned tenant file");
            }
            remove_companions(&final_path)?;
            std::fs::rename(&temp.path, &final_path).map_err(io_error(&final_path))?;
            temp.keep();
            let placed = FileGuard::new(final_path);
            // The rename must be durable before the catalog says the tenant
            // exists.
            sync_dir(&dir)?;
            tx.commit()?;
            placed.keep();
            Ok(())
        })
        .await?;
        Ok((row, filled))
    }

    fn tenant_path(&self, slug: &Slug) -> PathBuf {
        tenant_file(&self.inner.tenants_dir, slug)
    }

    /// Shuts down every live handle of `id`, waiting for its calls in flight.
    async fn shut_down_handles(&self, id: TenantId) -> Result<()> {
        let handles = self.inner.cache.lock().take(id);
        for handle in handles {
            handle.shutdown().await?;
        }
        Ok(())
    }

    async fn catalog_write<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut Connection) -> R<T> + Send + 'static,
        T: Send + 'static,
    {
        Ok(self.inner.catalog.write(f).await?)
    }

    async fn catalog_read<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut Connection) -> R<T> + Send + 'static,
        T: Send + 'static,
    {
        Ok(self.inner.catalog.read(f).await?)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_tenant(
        &self,
        tenant: &NewTenant,
        admin: &NewUserRecord,
    ) -> Result<(Tenant, User)> {
        let admin = admin.clone();
        self.add_tenant(tenant, move |tx| tenant::insert_user(tx, &admin))
            .await
    }

    async fn import_tenant(&self, tenant: &NewTenant, data: &TenantImport) -> Result<Tenant> {
        let data = data.clone();
        let (row, ()) = self
            .add_tenant(tenant, move |tx| import::write_rows(tx, &data))
            .await?;
        Ok(row)
    }

    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
        self.catalog_read(move |conn| Ok(load_tenant(conn, id)?))
            .await
    }

    async fn tenant_by_slug(&self, slug: &Slug) -> Result<Option<Tenant>> {
        let slug = slug.as_str().to_owned();
        self.catalog_read(move |conn| {
            Ok(conn
                .prepare_cached(concat!(
                    "SELECT ",
                    tenant_columns!(),
                    " FROM tenants t WHERE t.slug = ?1"
                ))?
                .query_row([slug], tenant_row)
                .optional()?)
        })
        .await
    }

    async fn tenant_by_domain(&self, hostname: &Hostname) -> Result<Option<Tenant>> {
        let hostname = hostname.as_str().to_owned();
        self.catalog_read(move |conn| {
            Ok(conn
                .prepare_cached(concat!(
                    "SELECT ",
                    tenant_columns!(),
                    " FROM domains d JOIN tenants t ON t.id = d.tenant_id WHERE d.hostname = ?1"
                ))?
                .query_row([hostname], tenant_row)
                .optional()?)
        })
        .await
    }

    async fn list_tenants(&self, page: PageRequest) -> Result<Page<Tenant>> {
        let (limit, offset) = page.limit_offset();
        self.catalog_read(move |conn| {
            let tx = conn.transaction()?;
            let total: i64 = tx.query_row("SELECT count(*) FROM tenants", [], |r| r.get(0))?;
            let items = tx
                .prepare_cached(concat!(
                    "SELECT ",
                    tenant_columns!(),
                    " FROM tenants t ORDER BY t.id ASC LIMIT ?1 OFFSET ?2"
                ))?
                .query_map([limit, offset], tenant_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Page {
                count: u64::try_from(total).unwrap_or(0),
                items,
            })
        })
        .await
    }

    async fn search_tenants(&self, query: &TenantQuery, page: PageRequest) -> Result<Page<Tenant>> {
        let query = query.clone();
        self.catalog_read(move |conn| {
            listing::search(conn, &query, page, tenant_columns!(), tenant_row)
        })
        .await
    }

    async fn domains(&self, tenant: TenantId) -> Result<Vec<Domain>> {
        self.catalog_read(move |conn| {
            let domains = conn
                .prepare_cached(
                    "SELECT hostname, is_primary FROM domains WHERE tenant_id = ?1 \
                     ORDER BY is_primary DESC, hostname ASC",
                )?
                .query_map([tenant.to_string()], |r| {
                    Ok(Domain {
                        hostname: codec::parsed(r, 0, Hostname::parse)?,
                        tenant_id: tenant,
                        is_primary: r.get(1)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(domains)
        })
        .await
    }

    async fn add_domain(
        &self,
        tenant: TenantId,
        hostname: &Hostname,
        is_primary: bool,
    ) -> Result<Domain> {
        let hostname = hostname.clone();
        self.catalog_write(move |conn| {
            let tx = immediate(conn)?;
            if !tenant_exists(&tx, tenant)? {
                return Err(not_found(Entity::Tenant));
            }
            if is_primary {
                tx.prepare_cached("UPDATE domains SET is_primary = 0 WHERE tenant_id = ?1")?
                    .execute([tenant.to_string()])?;
            }
            tx.prepare_cached(
                "INSERT INTO domains (hostname, tenant_id, is_primary) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![hostname.as_str(), tenant.to_string(), is_primary])
            .map_err(conflict_on(Entity::Domain, "hostname"))?;
            tx.commit()?;
            Ok(Domain {
                hostname,
                tenant_id: tenant,
                is_primary,
            })
        })
        .await
    }

    async fn set_primary_domain(&self, tenant: TenantId, hostname: &Hostname) -> Result<()> {
        let hostname = hostname.as_str().to_owned();
        self.catalog_write(move |conn| {
            let tx = immediate(conn)?;
            if !tenant_exists(&tx, tenant)? {
                return Err(not_found(Entity::Tenant));
            }
            let known = tx
                .prepare_cached("SELECT 1 FROM domains WHERE hostname = ?1 AND tenant_id = ?2")?
                .query_row(params![hostname, tenant.to_string()], |_| Ok(()))
                .optional()?;
            if known.is_none() {
                return Err(not_found(Entity::Domain));
            }
            // Demote first: the one-primary index is checked row by row.
            tx.prepare_cached("UPDATE domains SET is_primary = 0 WHERE tenant_id = ?1")?
                .execute([tenant.to_string()])?;
            tx.prepare_cached("UPDATE domains SET is_primary = 1 WHERE hostname = ?1")?
                .execute([hostname])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn remove_domain(&self, tenant: TenantId, hostname: &Hostname) -> Result<()> {
        let hostname = hostname.as_str().to_owned();
        self.catalog_write(move |conn| {
            let tx = immediate(conn)?;
            if !tenant_exists(&tx, tenant)? {
                return Err(not_found(Entity::Tenant));
            }
            let primary: Option<bool> = tx
                .prepare_cached(
                    "SELECT is_primary FROM domains WHERE hostname = ?1 AND tenant_id = ?2",
                )?
                .query_row(params![hostname, tenant.to_string()], |r| r.get(0))
                .optional()?;
            match primary {
                None => return Err(not_found(Entity::Domain)),
                Some(true) => {
                    return Err(Failure::Core(Error::State(
                        "cannot remove the primary domain",
                    )));
                }
                Some(false) => {}
            }
            tx.prepare_cached("DELETE FROM domains WHERE hostname = ?1")?
                .execute([hostname])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn set_plan(&self, tenant: TenantId, plan: &str) -> Result<Tenant> {
        let plan = plan.to_owned();
        self.catalog_write(move |conn| {
            let tx = immediate(conn)?;
            tx.prepare_cached("UPDATE tenants SET plan = ?1 WHERE id = ?2")?
                .execute([plan, tenant.to_string()])?;
            let row = load_tenant(&tx, tenant)?.ok_or_else(|| not_found(Entity::Tenant))?;
            tx.commit()?;
            Ok(row)
        })
        .await
    }

    async fn set_status(&self, tenant: TenantId, status: TenantStatus) -> Result<Tenant> {
        let rank = codec::tenant_status_rank(status)?;
        self.catalog_write(move |conn| {
            let tx = immediate(conn)?;
            tx.prepare_cached(
                "UPDATE tenants SET status = ?1 WHERE id = ?2 AND deleted_at IS NULL",
            )?
            .execute(params![rank, tenant.to_string()])?;
            let row = load_tenant(&tx, tenant)?
                .filter(|t| t.deleted_at.is_none())
                .ok_or_else(|| not_found(Entity::Tenant))?;
            tx.commit()?;
            Ok(row)
        })
        .await
    }

    async fn delete_tenant(&self, tenant: TenantId, at: DateTime<Utc>) -> Result<Tenant> {
        let at = codec::micros(at);
        self.catalog_write(move |conn| lifecycle::mark_deleted(conn, tenant, at))
            .await
    }

    async fn restore_tenant(&self, tenant: TenantId) -> Result<Tenant> {
        self.catalog_write(move |conn| lifecycle::restore(conn, tenant))
            .await
    }

    async fn purge_tenant(
        &self,
        tenant: TenantId,
        deleted_before: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        // Close every connection to the file first: a connection that
        // outlived the file would, when it finally closed, delete whatever
        // `-wal` then carried the name.
        self.shut_down_handles(tenant).await?;
        let dir = self.inner.tenants_dir.clone();
        let before = deleted_before.map(codec::micros);
        let purged = self
            .catalog_write(move |conn| lifecycle::purge(conn, &dir, tenant, before))
            .await?;
        // A handle opened while the rows were being deleted points at a file
        // that is gone; close it too.
        self.shut_down_handles(tenant).await?;
        Ok(purged)
    }

    async fn purge_orphans(&self) -> Result<u64> {
        let dir = self.inner.tenants_dir.clone();
        self.catalog_write(move |conn| lifecycle::orphans(conn, &dir))
            .await
    }

    async fn open(&self, tenant: &Tenant) -> Result<Arc<dyn TenantStore>> {
        let cached = self.inner.cache.lock().lookup(tenant.id);
        telemetry::cache_lookup("handle", cached.is_some());
        if let Some(handle) = cached {
            return Ok(handle);
        }
        let path = self.tenant_path(&tenant.slug);
        let db = Arc::new(Db::new(
            path.clone(),
            FileKind::Tenant,
            self.inner.settings,
            self.inner.options.max_connections_per_tenant.max(2) - 1,
            Arc::clone(&self.inner.gauge),
        ));
        let id = tenant.id;
        // Checked on a reader, which the request's first read reuses: a
        // current file (the common case) never opens the writer for a
        // request that only reads. A missing file cannot be opened (no
        // CREATE flag), so it stays missing: not found.
        let owner_path = path.clone();
        let probe_path = path.clone();
        let tenant_schema = self.inner.tenant_schema;
        let checked = db
            .read(move |conn| {
                if !schema::usable(conn, &owner_path, tenant_schema.known())? {
                    return Ok(false);
                }
                verify_owner(conn, &owner_path, id)?;
                Ok(true)
            })
            .await;
        let opened = match checked {
            Ok(true) => Ok(()),
            Ok(false) => {
                db.write(move |conn| {
                    tenant_schema.migrate(conn, &path)?;
                    verify_owner(conn, &path, id)?;
                    Ok(())
                })
                .await
            }
            Err(f) => Err(f),
        };
        match opened {
            Ok(()) => {}
            Err(f) if is_cant_open(&f) => {
                // Missing, or present but not openable now (out of file
                // descriptors, permissions): only the first is "not found".
                let exists = blocking(move || Ok(probe_path.exists())).await?;
                return Err(if exists {
                    f.into()
                } else {
                    Error::not_found(Entity::Tenant)
                });
            }
            Err(f) => return Err(f.into()),
        }
        let handle = Arc::new(SqliteTenant::new(
            tenant.id,
            db,
            self.inner.options.durable_security_writes,
            tenant_schema.started_at(),
        ));
        let mut cache = self.inner.cache.lock();
        // Another caller may have opened the same tenant meanwhile; one
        // handle per tenant keeps one writer per file.
        if let Some(existing) = cache.lookup(tenant.id) {
            return Ok(existing);
        }
        cache.insert(tenant.id, Arc::clone(&handle));
        metrics::counter!(telemetry::SQLITE_HANDLES_OPENED).increment(1);
        Ok(handle)
    }

    async fn create_superuser(
        &self,
        username: &Username,
        email: &Email,
        password_hash: &str,
    ) -> Result<Superuser> {
        let username = username.clone();
        let email = email.clone();
        let hash = password_hash.to_owned();
        // The trait passes no time; store what it would round-trip as.
        let now = Utc::now();
        let created_at = DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
        self.catalog_write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO superusers (username, username_key, email, password_hash, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                username.as_str(),
                username.key(),
                email.as_str(),
                hash,
                codec::micros(created_at),
            ])
            .map_err(conflict_on(Entity::Superuser, "username"))?;
            Ok(Superuser {
                id: conn.last_insert_rowid(),
                username,
                email,
                created_at,
                is_active: true,
                token_version: 0,
            })
        })
        .await
    }

    async fn superuser_credentials(
        &self,
        username_key: &str,
    ) -> Result<Option<(Superuser, String)>> {
        let key = username_key.to_owned();
        self.catalog_read(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {SUPERUSER_COLUMNS}, password_hash FROM superusers WHERE username_key = ?1"
                ))?
                .query_row([key], |r| Ok((superuser_row(r)?, r.get(6)?)))
                .optional()?)
        })
        .await
    }

    async fn append_audit(&self, entry: &NewAuditEntry) -> Result<AuditEntry> {
        let entry = entry.clone();
        self.catalog_write(move |conn| audit::append(conn, entry))
            .await
    }

    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let query = query.clone();
        self.catalog_read(move |conn| audit::list(conn, &query))
            .await
    }

    async fn superuser(&self, id: i64) -> Result<Option<Superuser>> {
        self.catalog_read(move |conn| Ok(load_superuser(conn, id)?))
            .await
    }

    async fn set_superuser_active(&self, id: i64, active: bool) -> Result<Superuser> {
        self.catalog_write(move |conn| {
            // SET expressions see the old is_active: only deactivating an
            // active superuser bumps the version.
            let n = conn
                .prepare_cached(
                    "UPDATE superusers SET is_active = ?1, token_version = token_version + \
                     (CASE WHEN is_active = 1 AND ?1 = 0 THEN 1 ELSE 0 END) WHERE id = ?2",
                )?
                .execute(params![active, id])?;
            if n == 0 {
                return Err(not_found(Entity::Superuser));
            }
            load_superuser(conn, id)?.ok_or_else(|| not_found(Entity::Superuser))
        })
        .await
    }

    async fn set_superuser_password(&self, id: i64, password_hash: &str) -> Result<()> {
        let hash = password_hash.to_owned();
        self.catalog_write(move |conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE superusers SET password_hash = ?1, token_version = token_version + 1 \
                     WHERE id = ?2",
                )?
                .execute(params![hash, id])?;
            if n == 0 {
                return Err(not_found(Entity::Superuser));
            }
            Ok(())
        })
        .await
    }

    async fn delete_superuser(&self, id: i64) -> Result<()> {
        self.catalog_write(move |conn| {
            if conn
                .prepare_cached("DELETE FROM superusers WHERE id = ?1")?
                .execute([id])?
                == 0
            {
                return Err(not_found(Entity::Superuser));
            }
            Ok(())
        })
        .await
    }

    async fn migrate(&self, progress: ProgressFn<'_>) -> Result<MigrationReport> {
        let catalog_path = self.inner.catalog.path().to_owned();
        let apps = Arc::clone(&self.inner.apps);
        self.catalog_write(move |conn| {
            schema::migrate(conn, &catalog_path, schema::CATALOG, &[])?;
            apps::apply(conn, &apps, Scope::Shared)?;
            Ok(())
        })
        .await?;
        let tenants: Vec<(TenantId, String)> = self
            .catalog_read(|conn| {
                let rows = conn
                    .prepare_cached("SELECT id, slug FROM tenants ORDER BY id")?
                    .query_map([], |r| {
                        Ok((
                            TenantId(codec::parsed(r, 0, parse_uuid)?),
                            r.get::<_, String>(1)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await?;

        // Every file is opened to learn its version: a tenant file knows
        // its version itself, and checking it is the migration's first step.
        let dir = &self.inner.tenants_dir;
        let fleet = tenants
            .into_iter()
            .map(|(id, slug)| match Slug::parse(&slug) {
                Ok(parsed) => FleetTenant::Pending {
                    work: (id, tenant_file(dir, &parsed)),
                    slug,
                },
                Err(_) => FleetTenant::Failed {
                    reason: chain(&SqliteError::Corrupt {
                        column: "slug".to_owned(),
                    }),
                    slug,
                },
            })
            .collect();
        let settings = self.inner.settings;
        let concurrency = self.inner.options.migration_concurrency;
        let tenant_schema = self.inner.tenant_schema;
        let report = migrate_fleet(fleet, concurrency, progress, |(id, path)| {
            let apps = Arc::clone(&self.inner.apps);
            blocking(move || migrate_tenant_file(&path, id, settings, &apps, tenant_schema))
        })
        .await;
        Ok(report)
    }

    async fn ping(&self) -> Result<()> {
        self.catalog_read(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    async fn pending_migrations(&self) -> Result<u64> {
        // Tenant files migrate when opened; the catalog is what can lag
        // (a file another, older or newer, process left behind).
        let version = self.catalog_read(|conn| Ok(schema::version(conn)?)).await?;
        Ok(u64::from(version < schema::CATALOG_SCHEMA_VERSION))
    }
}
