//! The SQLite fixture: a fresh store (or job queue) in a fresh temporary
//! directory per test, deleted when the test is done with it; and the
//! paths of the files a store keeps there, for tests that look at them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::BoxFuture;
use saas_core::jobs::JobQueue;
use saas_core::store::Store;
use saas_core::tenancy::Slug;
use saas_store_sqlite::{SqliteOptions, SqliteQueue, SqliteStore};
use tempfile::TempDir;

use crate::backend::{Backend, Fixture};

/// A fresh store in its own temporary directory; the store's files live as
/// long as the [`TempDir`].
pub fn store() -> (TempDir, SqliteStore) {
    store_with(SqliteOptions::default())
}

/// A fresh store with `options`, as [`store`].
pub fn store_with(options: SqliteOptions) -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::with_options(dir.path(), options).expect("the SQLite store opens");
    (dir, store)
}

/// A job queue on a fresh root; the directory lives as long as the queue,
/// which the value dereferences to.
#[derive(Debug)]
pub struct FreshQueue {
    /// The queue.
    pub queue: SqliteQueue,
    _dir: TempDir,
}

impl std::ops::Deref for FreshQueue {
    type Target = SqliteQueue;

    fn deref(&self) -> &SqliteQueue {
        &self.queue
    }
}

/// A job queue alone (no store) in a new temporary directory.
pub fn queue() -> FreshQueue {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let queue = SqliteQueue::open(dir.path()).expect("the SQLite queue opens");
    FreshQueue { queue, _dir: dir }
}

/// The file of the tenant with `slug` in the store at `root`.
pub fn tenant_file(root: &Path, slug: &Slug) -> PathBuf {
    root.join("tenants")
        .join(format!("{}.sqlite", slug.as_str()))
}

/// The names of the files in the tenants directory of the store at `root`,
/// sorted.
pub fn tenant_dir_files(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("tenants"))
        .expect("the tenants directory")
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// The SQLite backend of the conformance suite: every fixture is a new
/// store in a new temporary directory, deleted when the fixture is dropped.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sqlite;

struct SqliteFixture {
    store: Arc<SqliteStore>,
    // Declared after the store so the files outlive its connections.
    _dir: TempDir,
}

impl Fixture for SqliteFixture {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store) as Arc<dyn Store>
    }

    fn queue(&self) -> BoxFuture<'_, Arc<dyn JobQueue>> {
        Box::pin(async { Arc::new(self.store.queue()) as Arc<dyn JobQueue> })
    }
}

impl Backend for Sqlite {
    fn fixture(&self) -> BoxFuture<'_, Option<Box<dyn Fixture>>> {
        Box::pin(async {
            // Opening does file I/O, which async tests keep off their executor.
            let (dir, store) = tokio::task::spawn_blocking(store)
                .await
                .expect("opening does not panic");
            Some(Box::new(SqliteFixture {
                store: Arc::new(store),
                _dir: dir,
            }) as Box<dyn Fixture>)
        })
    }
}
