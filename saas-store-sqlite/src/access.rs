//! Host applications' access to a tenant's own tables.

use rusqlite::Transaction;
use saas_core::Error;
use saas_core::store::TenantScope;

use crate::tenant::SqliteTenant;

/// Runs `f` in a `BEGIN IMMEDIATE` transaction on the tenant's file (the
/// tenant of `scope`: a [`Session`](saas_core::Session), or the
/// `Arc<dyn TenantStore>` of a job's context), on tokio's blocking pool,
/// queued behind the tenant's other writes; commits it when `f` succeeds,
/// rolls it back on its error.
///
/// No path is taken from the caller, and the file's connection refuses
/// `ATTACH`, so nothing run here reaches another tenant's file. A handle
/// of a deleted tenant fails with `NotFound { Tenant }`.
///
/// Fails with a backend error when `scope` is not a SQLite tenant.
///
/// ```no_run
/// # async fn demo(session: saas_core::Session) -> Result<(), saas_core::Error> {
/// let titles: Vec<String> = saas_store_sqlite::with_tenant_tx(&session, |tx| {
///     let mut stmt = tx.prepare("SELECT title FROM notes ORDER BY id").map_err(saas_core::Error::backend)?;
///     let rows = stmt.query_map([], |r| r.get(0)).map_err(saas_core::Error::backend)?;
///     rows.collect::<Result<Vec<String>, _>>().map_err(saas_core::Error::backend)
/// })
/// .await?;
/// # let _ = titles; Ok(()) }
/// ```
pub async fn with_tenant_tx<S, T, E, F>(scope: &S, f: F) -> Result<T, E>
where
    S: TenantScope + ?Sized,
    F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<Error> + Send + 'static,
{
    let Some(tenant) = scope.tenant_store().as_any().downcast_ref::<SqliteTenant>() else {
        return Err(Error::backend("not a SQLite tenant handle").into());
    };
    tenant.host_write(f).await?
}
