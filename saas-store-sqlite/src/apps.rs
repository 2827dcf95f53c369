//! Host applications' migrations ([`saas_core::apps`]) on SQLite.
//!
//! A tenant's host migrations run on its file, after ours, in one
//! `BEGIN IMMEDIATE` transaction with their ledger rows (the table
//! `saas_app_migrations` of the file): all of a run or none of it.
//! Provisioning runs them on the file before it is renamed into place, so
//! a failure discards the tenant. Shared-scope migrations run the same way
//! on the catalog file.

use std::sync::Arc;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use saas_core::apps::{Apps, Dialect, MigrationFailed, Step, StepFn};

use crate::error::{Failure, R};

/// A function step's type: given the migration's transaction.
type StepFunction = dyn Fn(&Transaction<'_>) -> rusqlite::Result<()> + Send + Sync;

/// A SQLite function step, as [`step`] wraps it.
struct SqliteStepFn(Arc<StepFunction>);

/// A migration step that is a function: it gets the migration's
/// transaction on the tenant's file (or, for a shared-scope migration, the
/// catalog's), on the blocking pool; its error fails the migration.
///
/// ```
/// use saas_core::apps::Migration;
///
/// let backfill = Migration::new("0003_backfill").sqlite(saas_store_sqlite::step(|tx| {
///     tx.execute("UPDATE notes SET body = title WHERE body = ''", [])?;
///     Ok(())
/// }));
/// # let _ = backfill;
/// ```
pub fn step<F>(f: F) -> Step
where
    F: Fn(&Transaction<'_>) -> rusqlite::Result<()> + Send + Sync + 'static,
{
    Step::Function(StepFn::new(SqliteStepFn(Arc::new(f))))
}

/// Refuses a registry with a migration lacking a SQLite step, or whose step
/// is another backend's function.
pub(crate) fn check(apps: &Apps) -> saas_core::Result<()> {
    apps.check_dialect(Dialect::Sqlite, |f| {
        f.downcast_ref::<SqliteStepFn>().is_some()
    })
}

/// Which ledger a run reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// A tenant file.
    Tenant,
    /// The catalog file.
    Shared,
}

/// Applies the migrations of `scope` the file on `conn` lacks, in one
/// transaction. Returns whether any ran.
pub(crate) fn apply(conn: &mut Connection, apps: &Apps, scope: Scope) -> R<bool> {
    let none = match scope {
        Scope::Tenant => apps.no_tenant_migrations(),
        Scope::Shared => apps.iter().all(|a| a.shared_migrations().is_empty()),
    };
    if none {
        return Ok(false);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS saas_app_migrations (
             app TEXT NOT NULL, name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT (datetime('now')),
             PRIMARY KEY (app, name)
         )",
    )?;
    let applied = tx
        .prepare("SELECT app, name FROM saas_app_migrations")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<(String, String)>>>()?;
    let pending = match scope {
        Scope::Tenant => apps.pending_tenant(&applied),
        Scope::Shared => apps.pending_shared(&applied),
    };
    for (app, migration) in &pending {
        let Some(step) = migration.step(Dialect::Sqlite) else {
            continue;
        };
        let ran = match step {
            Step::Sql(sql) => tx.execute_batch(sql),
            Step::Function(f) => match f.downcast_ref::<SqliteStepFn>() {
                Some(SqliteStepFn(f)) => f(&tx),
                // `check` refused it when the store was opened.
                None => Err(rusqlite::Error::InvalidQuery),
            },
        };
        ran.map_err(|e| Failure::Core(MigrationFailed::error(app, migration.name(), e)))?;
        tx.execute(
            "INSERT INTO saas_app_migrations (app, name) VALUES (?1, ?2)",
            [*app, migration.name()],
        )?;
    }
    tx.commit()?;
    Ok(!pending.is_empty())
}
