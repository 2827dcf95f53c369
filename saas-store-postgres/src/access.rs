//! Host applications' access to a tenant's own tables.

use futures::future::BoxFuture;
use saas_core::Error;
use saas_core::store::TenantScope;
use sqlx::{AssertSqlSafe, PgConnection};

use crate::error::map_sqlx;
use crate::tenant::PgTenant;

/// Runs `f` in a transaction whose unqualified table names are the tenant's
/// (the tenant of `scope`: a [`Session`](saas_core::Session), or the
/// `Arc<dyn TenantStore>` of a job's context), and commits it when `f`
/// succeeds; an error of `f` rolls it back.
///
/// The transaction opens with `BEGIN; SET LOCAL search_path TO <the
/// tenant's schema>, pg_temp` in one round trip: nothing is left on the
/// connection afterwards, so it is safe behind a transaction-mode pooler.
/// No schema name is taken from the caller; a handle of a deleted tenant
/// reaches no table at all. Raw SQL can still name another schema
/// explicitly: keep host SQL unqualified.
///
/// Behind a transaction-mode pooler ([`crate::PgConfig::transaction_pooler`])
/// make every statement unnamed, `sqlx::query(…).persistent(false)`, as
/// this crate does: sqlx names prepared statements otherwise, and server
/// connections shared by the pooler's clients then collide on the names.
///
/// Fails with a backend error when `scope` is not a PostgreSQL tenant.
///
/// ```no_run
/// # async fn demo(session: saas_core::Session) -> Result<(), saas_core::Error> {
/// let titles: Vec<String> = saas_store_postgres::with_tenant_tx(&session, |tx| {
///     Box::pin(async move {
///         sqlx::query_scalar("SELECT title FROM notes ORDER BY id")
///             .fetch_all(&mut *tx)
///             .await
///             .map_err(saas_core::Error::backend)
///     })
/// })
/// .await?;
/// # let _ = titles; Ok(()) }
/// ```
pub async fn with_tenant_tx<S, T, E, F>(scope: &S, f: F) -> Result<T, E>
where
    S: TenantScope + ?Sized,
    F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T, E>>,
    E: From<Error>,
{
    let tenant = scope
        .tenant_store()
        .as_any()
        .downcast_ref::<PgTenant>()
        .and_then(PgTenant::scoped);
    let Some((pick, begin)) = tenant else {
        return Err(Error::backend("not a PostgreSQL tenant handle").into());
    };
    // The lease counts this transaction on its sub-pool until it ends. The
    // host's statements may write any of the tenant's tables, compiling
    // its triggers and foreign-key checks on the backend: a cold unit.
    let lease = pick.lease;
    lease.count_cold();
    let mut tx = pick
        .pool
        .begin_with(AssertSqlSafe(std::sync::Arc::clone(begin)))
        .await
        .map_err(map_sqlx)?;
    let value = f(&mut tx).await?;
    tx.commit().await.map_err(map_sqlx)?;
    drop(lease);
    Ok(value)
}
