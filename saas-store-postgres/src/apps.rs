//! Host applications' migrations ([`saas_core::apps`]) on PostgreSQL.
//!
//! A tenant's host migrations run inside the transaction that provisions
//! or migrates it, after ours, with `SET LOCAL search_path` to its schema
//! (so their unqualified names are the tenant's tables, and nothing
//! outlives the transaction behind a pooler). Each tenant's ledger is the
//! table `saas_app_migrations` in its own schema, so it goes wherever the
//! schema goes. Shared-scope migrations run in the catalog database with
//! the connection's default `search_path`, recorded in
//! `saas_shared.app_migrations`.

use std::sync::Arc;

use futures::future::BoxFuture;
use saas_core::apps::{Apps, Dialect, MigrationFailed, Step, StepFn};
use saas_core::error::Result;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::error::{PgError, SqlxResultExt};
use crate::schema::quote_ident;

/// Advisory lock key serializing shared-scope host migrations.
const SHARED_APPS_LOCK: i64 = 0x5aa5_0000_0000_0002;

/// A function step's type: given the migration's connection, inside its
/// transaction.
type StepFunction =
    dyn for<'c> Fn(&'c mut PgConnection) -> BoxFuture<'c, Result<(), sqlx::Error>> + Send + Sync;

/// A PostgreSQL function step, as [`step`] wraps it.
struct PgStepFn(Arc<StepFunction>);

/// A migration step that is a function: it gets the connection of the
/// migration's transaction (for a tenant-scope migration with the tenant's
/// schema as `search_path`), and its error fails the migration.
///
/// ```
/// use saas_core::apps::Migration;
///
/// let backfill = Migration::new("0003_backfill").postgres(saas_store_postgres::step(|tx| {
///     Box::pin(async move {
///         sqlx::query("UPDATE notes SET body = title WHERE body = ''")
///             .execute(&mut *tx)
///             .await?;
///         Ok(())
///     })
/// }));
/// # let _ = backfill;
/// ```
pub fn step<F>(f: F) -> Step
where
    F: for<'c> Fn(&'c mut PgConnection) -> BoxFuture<'c, Result<(), sqlx::Error>>
        + Send
        + Sync
        + 'static,
{
    Step::Function(StepFn::new(PgStepFn(Arc::new(f))))
}

/// Refuses a registry with a migration lacking a PostgreSQL step, or whose
/// step is another backend's function.
pub(crate) fn check(apps: &Apps) -> Result<(), PgError> {
    apps.check_dialect(Dialect::Postgres, |f| {
        f.downcast_ref::<PgStepFn>().is_some()
    })
    .map_err(|source| PgError::Apps { source })
}

/// Runs one step on `conn`.
async fn run(conn: &mut PgConnection, step: &Step) -> Result<(), sqlx::Error> {
    match step {
        // The host's own SQL, registered in code.
        Step::Sql(sql) => sqlx::raw_sql(AssertSqlSafe(sql.clone()))
            .execute(&mut *conn)
            .await
            .map(|_| ()),
        Step::Function(f) => match f.downcast_ref::<PgStepFn>() {
            Some(PgStepFn(f)) => f(conn).await,
            // `check` refused it when the store was configured.
            None => Err(sqlx::Error::Protocol(
                "a migration step made for another backend".to_owned(),
            )),
        },
    }
}

/// Applies the tenant-scope migrations `schema` lacks, on `conn`, which
/// must be in the transaction that provisions or migrates the tenant.
/// Returns whether any ran. Leaves `search_path` as it found it.
pub(crate) async fn apply_tenant(
    conn: &mut PgConnection,
    apps: &Apps,
    schema: &str,
) -> Result<bool> {
    if apps.no_tenant_migrations() {
        return Ok(false);
    }
    let set = format!(
        "SET LOCAL search_path TO {}, pg_temp; \
         CREATE TABLE IF NOT EXISTS saas_app_migrations (\
             app text NOT NULL, name text NOT NULL, \
             applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (app, name))",
        quote_ident(schema)
    );
    // The quoted schema name of a validated slug; constant otherwise.
    sqlx::raw_sql(AssertSqlSafe(set))
        .execute(&mut *conn)
        .await
        .db()?;
    // Unnamed: the same text means another table in every schema.
    let applied: Vec<(String, String)> =
        sqlx::query_as("SELECT app, name FROM saas_app_migrations")
            .persistent(false)
            .fetch_all(&mut *conn)
            .await
            .db()?;
    let pending = apps.pending_tenant(&applied);
    for (app, migration) in &pending {
        let Some(step) = migration.step(Dialect::Postgres) else {
            continue;
        };
        run(conn, step)
            .await
            .map_err(|e| MigrationFailed::error(app, migration.name(), e))?;
        sqlx::query("INSERT INTO saas_app_migrations (app, name) VALUES ($1, $2)")
            .persistent(false)
            .bind(*app)
            .bind(migration.name())
            .execute(&mut *conn)
            .await
            .db()?;
    }
    sqlx::raw_sql("SET LOCAL search_path TO DEFAULT")
        .execute(&mut *conn)
        .await
        .db()?;
    Ok(!pending.is_empty())
}

/// Applies the shared-scope migrations not yet applied, in one transaction
/// under an advisory lock (any number of processes may start at once).
pub(crate) async fn apply_shared(conn: &mut PgConnection, apps: &Apps, named: bool) -> Result<()> {
    if apps.iter().all(|a| a.shared_migrations().is_empty()) {
        return Ok(());
    }
    let mut tx = conn.begin().await.db()?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .persistent(named)
        .bind(SHARED_APPS_LOCK)
        .execute(&mut *tx)
        .await
        .db()?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS saas_shared.app_migrations (\
             app text NOT NULL, name text NOT NULL, \
             applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (app, name))",
    )
    .execute(&mut *tx)
    .await
    .db()?;
    let applied: Vec<(String, String)> =
        sqlx::query_as("SELECT app, name FROM saas_shared.app_migrations")
            .persistent(named)
            .fetch_all(&mut *tx)
            .await
            .db()?;
    for (app, migration) in apps.pending_shared(&applied) {
        let Some(step) = migration.step(Dialect::Postgres) else {
            continue;
        };
        run(&mut tx, step)
            .await
            .map_err(|e| MigrationFailed::error(app, migration.name(), e))?;
        sqlx::query("INSERT INTO saas_shared.app_migrations (app, name) VALUES ($1, $2)")
            .persistent(named)
            .bind(app)
            .bind(migration.name())
            .execute(&mut *tx)
            .await
            .db()?;
    }
    tx.commit().await.db()
}
