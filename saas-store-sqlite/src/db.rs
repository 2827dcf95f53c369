//! Connections to one database file: how each is configured, a small pool
//! (one writer, a few readers), and running their work off the async executor.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::limits::Limit;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{Mutex as AsyncMutex, Semaphore};

use crate::error::{Failure, R, SqliteError};

/// Runs blocking database work on tokio's blocking pool when a runtime is
/// present (object_store's `maybe_spawn_blocking`), so a slow disk or a busy
/// lock never stalls the async executor; inline otherwise.
pub(crate) async fn blocking<T, F>(f: F) -> R<T>
where
    F: FnOnce() -> R<T> + Send + 'static,
    T: Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => runtime
            .spawn_blocking(f)
            .await
            .map_err(|source| Failure::Db(SqliteError::Blocking { source }))?,
        Err(_) => f(),
    }
}

/// Runs `f` on the blocking pool, without waiting, when a runtime is
/// present; inline otherwise. For clean-up from `Drop`, which cannot await.
pub(crate) fn run_off_runtime(f: impl FnOnce() + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn_blocking(f);
        }
        Err(_) => f(),
    }
}

/// Drops `value` on the blocking pool when a runtime is present: dropping a
/// connection closes it, which may checkpoint the WAL and touch the disk.
pub(crate) fn drop_off_runtime<T: Send + 'static>(value: T) {
    run_off_runtime(move || drop(value));
}

/// Which kind of file a [`Db`] holds; decides whether opening may create it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// The catalog: created on first open; every commit synced (`FULL`).
    Catalog,
    /// The job queue's file: created on first open; `NORMAL`, since a job
    /// lost to a power loss is one a caller can ask for again.
    Jobs,
    /// A tenant file: only ever created by tenant registration, so a missing
    /// file stays missing (a late connection of a deleted tenant must not
    /// bring an empty file back to life).
    Tenant,
}

/// Settings every connection gets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnSettings {
    pub(crate) busy_timeout: Duration,
}

/// Opens and configures one connection.
///
/// Every connection: WAL, `busy_timeout`, `foreign_keys=ON`,
/// `synchronous=NORMAL` (durable at checkpoints, safe under WAL) but
/// `FULL` on the catalog (every commit synced: a registration, a
/// suspension or a deletion survives a power loss), ATTACH refused
/// (`SQLITE_LIMIT_ATTACHED` = 0, so no statement can reach another tenant's
/// file), defensive mode and untrusted schema (no schema tricks from a
/// tampered file).
pub(crate) fn open_connection(
    path: &Path,
    kind: FileKind,
    settings: ConnSettings,
    read_only: bool,
) -> rusqlite::Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if kind != FileKind::Tenant {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)?;
    configure(&conn, settings)?;
    // Closing the last connection of a file would checkpoint the WAL and
    // delete it, and the next open would create it again: with a bounded
    // handle cache over many tenants, that is most opens. The WAL stays and
    // is checkpointed as it grows (SQLite's automatic checkpoints).
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    // One batch: each pragma separately would be a prepare and step each.
    // Readers never write; saying so (query_only) turns a bug into an error
    // instead of a second writer racing the first.
    conn.execute_batch(match (read_only, kind) {
        (true, _) => "PRAGMA journal_mode = WAL; PRAGMA query_only = ON;",
        (false, FileKind::Catalog) => "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;",
        (false, _) => "PRAGMA journal_mode = WAL;",
    })?;
    Ok(conn)
}

/// Runs `f` (a write transaction on a tenant's writer) with
/// `synchronous=FULL`, then puts `NORMAL` back: the commit is on disk when
/// `f` returns, so a power loss cannot roll it back. For the writes whose
/// loss would reopen a door: a password change, a role or active flag
/// change, a refresh token marked used. Other writes keep `NORMAL`, whose
/// commits become durable at the next checkpoint (BENCHMARKS.md measures
/// the difference).
pub(crate) fn durably<T>(conn: &mut Connection, f: impl FnOnce(&mut Connection) -> R<T>) -> R<T> {
    conn.execute_batch("PRAGMA synchronous = FULL;")?;
    let out = f(conn);
    let restored = conn.execute_batch("PRAGMA synchronous = NORMAL;");
    let out = out?;
    restored?;
    Ok(out)
}

/// The most page cache one connection keeps, in KiB (`PRAGMA cache_size`;
/// SQLite's default is 2,000 KiB). Every open connection has its own, and
/// a store holds up to `handle_cache_capacity × max_connections_per_tenant`
/// of them: at the default, 40 connections of 10 busy tenants held 80 MiB
/// of cache. Pages past it are read again from the operating system's
/// file cache (BENCHMARKS.md, "Memory under load").
pub(crate) const PAGE_CACHE_KIB: u32 = 256;

/// The settings shared by pooled connections and the one that builds a new
/// tenant file (which differs only in its journal mode).
pub(crate) fn configure(conn: &Connection, settings: ConnSettings) -> rusqlite::Result<()> {
    conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    conn.busy_timeout(settings.busy_timeout)?;
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -{PAGE_CACHE_KIB};"
    ))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// A connection that counts itself in the store-wide open-connection gauge.
#[derive(Debug)]
pub(crate) struct Conn {
    conn: Connection,
    gauge: Arc<AtomicUsize>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.gauge.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One database file and its connections: a single writer (writes are
/// serialized in-process before they reach SQLite's lock, so they queue
/// without spinning in the busy handler) and up to `readers` readers, which
/// run in parallel under WAL. Connections are opened lazily.
#[derive(Debug)]
pub(crate) struct Db {
    path: PathBuf,
    kind: FileKind,
    settings: ConnSettings,
    writer: Arc<AsyncMutex<Option<Conn>>>,
    readers: u32,
    reader_permits: Arc<Semaphore>,
    idle_readers: parking_lot::Mutex<Vec<Conn>>,
    gauge: Arc<AtomicUsize>,
    /// Set by [`Db::shutdown`]: no connection is opened or lent again.
    shut: AtomicBool,
}

impl Db {
    /// A pool for `path`; nothing is opened yet.
    pub(crate) fn new(
        path: PathBuf,
        kind: FileKind,
        settings: ConnSettings,
        readers: usize,
        gauge: Arc<AtomicUsize>,
    ) -> Self {
        let readers = u32::try_from(readers.clamp(1, 1024)).unwrap_or(1);
        Db {
            path,
            kind,
            settings,
            writer: Arc::new(AsyncMutex::new(None)),
            readers,
            reader_permits: Arc::new(Semaphore::new(readers as usize)),
            idle_readers: parking_lot::Mutex::new(Vec::new()),
            gauge,
            shut: AtomicBool::new(false),
        }
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn connect(&self, read_only: bool) -> R<Conn> {
        if self.shut.load(Ordering::Acquire) {
            return Err(Failure::Db(SqliteError::PoolClosed));
        }
        let conn = open_connection(&self.path, self.kind, self.settings, read_only)?;
        self.gauge.fetch_add(1, Ordering::Relaxed);
        Ok(Conn {
            conn,
            gauge: Arc::clone(&self.gauge),
        })
    }

    /// Runs `f` on the writer connection, on the blocking pool. `f` opens its
    /// own transaction (normally `BEGIN IMMEDIATE`).
    pub(crate) async fn write<T, F>(self: &Arc<Self>, f: F) -> R<T>
    where
        F: FnOnce(&mut Connection) -> R<T> + Send + 'static,
        T: Send + 'static,
    {
        let mut slot = Arc::clone(&self.writer).lock_owned().await;
        let db = Arc::clone(self);
        // The guard moves into the blocking task: if the caller is cancelled,
        // the lock is held until the work really ends.
        blocking(move || {
            if db.shut.load(Ordering::Acquire) {
                return Err(Failure::Db(SqliteError::PoolClosed));
            }
            let conn = match slot.as_mut() {
                Some(conn) => conn,
                None => slot.insert(db.connect(false)?),
            };
            f(&mut conn.conn)
        })
        .await
    }

    /// Runs `f` on a reader connection, on the blocking pool.
    pub(crate) async fn read<T, F>(self: &Arc<Self>, f: F) -> R<T>
    where
        F: FnOnce(&mut Connection) -> R<T> + Send + 'static,
        T: Send + 'static,
    {
        let permit = Arc::clone(&self.reader_permits)
            .acquire_owned()
            .await
            .map_err(|_| Failure::Db(SqliteError::PoolClosed))?;
        let db = Arc::clone(self);
        blocking(move || {
            let _permit = permit;
            if db.shut.load(Ordering::Acquire) {
                return Err(Failure::Db(SqliteError::PoolClosed));
            }
            let idle = db.idle_readers.lock().pop();
            let mut conn = match idle {
                Some(conn) => conn,
                None => db.connect(true)?,
            };
            let result = f(&mut conn.conn);
            db.idle_readers.lock().push(conn);
            result
        })
        .await
    }

    /// Refuses new work, waits for the work in flight, and closes every
    /// connection before returning, so the file can be removed without an
    /// open connection later deleting a successor's `-wal` by name.
    pub(crate) async fn shutdown(self: &Arc<Self>) -> R<()> {
        self.shut.store(true, Ordering::Release);
        let writer = self.writer.lock().await.take();
        let permits = self
            .reader_permits
            .acquire_many(self.readers)
            .await
            .map_err(|_| Failure::Db(SqliteError::PoolClosed))?;
        let idle = std::mem::take(&mut *self.idle_readers.lock());
        drop(permits);
        blocking(move || {
            drop(writer);
            drop(idle);
            Ok(())
        })
        .await
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let mut conns: Vec<Conn> = std::mem::take(self.idle_readers.get_mut());
        // Every task that could hold the writer keeps an `Arc<Db>`, so at
        // drop time the lock is free.
        if let Ok(mut writer) = self.writer.try_lock()
            && let Some(conn) = writer.take()
        {
            conns.push(conn);
        }
        if !conns.is_empty() {
            drop_off_runtime(conns);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ConnSettings {
        ConnSettings {
            busy_timeout: Duration::from_millis(1234),
        }
    }

    #[test]
    fn every_connection_is_configured_and_refuses_attach() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("a.sqlite");
        let other = dir.path().join("b.sqlite");
        for read_only in [false, true] {
            let conn =
                open_connection(&path, FileKind::Catalog, settings(), read_only).expect("open");
            let mode: String = conn
                .pragma_query_value(None, "journal_mode", |r| r.get(0))
                .expect("journal_mode");
            assert_eq!(mode, "wal");
            let fk: i64 = conn
                .pragma_query_value(None, "foreign_keys", |r| r.get(0))
                .expect("fk");
            assert_eq!(fk, 1);
            let sync: i64 = conn
                .pragma_query_value(None, "synchronous", |r| r.get(0))
                .expect("sync");
            assert_eq!(
                sync,
                if read_only { 1 } else { 2 },
                "the catalog writes FULL"
            );
            let timeout: i64 = conn
                .pragma_query_value(None, "busy_timeout", |r| r.get(0))
                .expect("timeout");
            assert_eq!(timeout, 1234);
            assert_eq!(conn.limit(Limit::SQLITE_LIMIT_ATTACHED).expect("limit"), 0);
            let err = conn
                .execute_batch(&format!("ATTACH DATABASE '{}' AS other", other.display()))
                .expect_err("ATTACH must fail");
            assert!(
                err.to_string().contains("too many attached databases"),
                "{err}"
            );
            assert!(!other.exists());
        }
    }

    #[test]
    fn tenant_writers_are_normal_and_durable_writes_full_then_normal_again() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("t.sqlite");
        open_connection(&path, FileKind::Catalog, settings(), false).expect("create");
        let mut conn = open_connection(&path, FileKind::Tenant, settings(), false).expect("open");
        let sync = |c: &Connection| -> i64 {
            c.pragma_query_value(None, "synchronous", |r| r.get(0))
                .expect("sync")
        };
        assert_eq!(sync(&conn), 1, "NORMAL");
        let inside = durably(&mut conn, |c| Ok(sync(c))).expect("durable write");
        assert_eq!(inside, 2, "FULL for the write");
        assert_eq!(sync(&conn), 1, "NORMAL after it");
        let failed: R<()> = durably(&mut conn, |_| Err(Failure::Db(SqliteError::PoolClosed)));
        assert!(failed.is_err());
        assert_eq!(sync(&conn), 1, "NORMAL after a failed write too");
    }

    #[test]
    fn tenant_files_are_never_created_by_opening() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("gone.sqlite");
        assert!(open_connection(&path, FileKind::Tenant, settings(), false).is_err());
        assert!(!path.exists());
    }

    #[test]
    fn readers_cannot_write() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("a.sqlite");
        let writer = open_connection(&path, FileKind::Catalog, settings(), false).expect("open");
        writer
            .execute_batch("CREATE TABLE t (x INTEGER)")
            .expect("create");
        let reader = open_connection(&path, FileKind::Catalog, settings(), true).expect("open");
        assert!(reader.execute("INSERT INTO t VALUES (1)", []).is_err());
    }
}
