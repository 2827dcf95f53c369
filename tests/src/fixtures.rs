//! The backends under test: SQLite in a fresh temporary directory, and
//! PostgreSQL at `SAAS_TEST_DATABASE_URL`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::future::BoxFuture;
use saas_core::store::Store;
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
    store: Arc<dyn Store>,
}

impl Fixture for PgFixture {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
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
                    store: Arc::new(store),
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
