//! How the store's pools hand out connections: the options every pool of
//! the store (catalog, tenant sub-pools) is built with.

use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::pool::PoolConnectionMetadata;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection};

/// How long a pooled connection may have been idle and still be handed
/// out without a ping first.
pub(crate) const TRUSTED_IDLE: Duration = Duration::from_secs(1);

/// Options of the store's pools. sqlx pings every connection when it goes
/// back to the pool (and drops it if the ping fails) and, by default,
/// again when it is taken out: a round trip before every unit of work.
/// Here only a connection idle for longer than [`TRUSTED_IDLE`] is pinged
/// when taken out; one that broke within that second fails its unit of
/// work (a backend that went away is `Unavailable`, as if it had gone
/// during the unit) and is dropped by its release ping.
pub(crate) fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(ping_if_idle)
}

/// Pings `conn` before it is handed out if it sat idle for longer than
/// [`TRUSTED_IDLE`]; an error drops it and sqlx takes another.
fn ping_if_idle(
    conn: &mut PgConnection,
    meta: PoolConnectionMetadata,
) -> BoxFuture<'_, std::result::Result<bool, sqlx::Error>> {
    Box::pin(async move {
        if meta.idle_for > TRUSTED_IDLE {
            conn.ping().await?;
        }
        Ok(true)
    })
}
