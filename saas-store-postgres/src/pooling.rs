//! How the store's pools hand out connections: the options every pool of
//! the store (catalog, tenant sub-pools) is built with.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
///
/// With `recycle_after` above 0, one connection given back to the pool is
/// closed instead for every `recycle_after` units of work counted in
/// `cold` (see [`crate::PgConfig::recycle_after`]): the pool's connections
/// are handed out in turn, so each serves about that many of them before
/// the pool opens a fresh one. A pool whose `cold` is never counted never
/// recycles.
pub(crate) fn pool_options(recycle_after: u64, cold: Arc<AtomicU64>) -> PgPoolOptions {
    PgPoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(ping_if_idle)
        .after_release(move |_conn, _meta| {
            let keep = !recycles(&cold, recycle_after);
            Box::pin(async move { Ok(keep) })
        })
}

/// Whether `every` units have been counted in `cold` since the last
/// recycling; if so, takes them off the count (never when `every` is 0).
fn recycles(cold: &AtomicU64, every: u64) -> bool {
    every > 0
        && cold
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                n.checked_sub(every)
            })
            .is_ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_recycles_once_per_every_units_counted() {
        let cold = AtomicU64::new(0);
        assert!(!recycles(&cold, 4), "nothing counted yet");
        cold.fetch_add(9, Ordering::Relaxed);
        let recycled = (0..5).filter(|_| recycles(&cold, 4)).count();
        assert_eq!(recycled, 2);
        assert_eq!(cold.load(Ordering::Relaxed), 1);
        let never = AtomicU64::new(1000);
        assert!((0..100).all(|_| !recycles(&never, 0)));
    }
}
