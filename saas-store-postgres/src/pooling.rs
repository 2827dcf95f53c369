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
/// With `recycle_after` above 0, every `recycle_after`-th connection given
/// back to the pool is closed instead (see [`crate::PgConfig::recycle_after`]):
/// connections are used about evenly, so each serves about that many units
/// of work before the pool opens a fresh one.
pub(crate) fn pool_options(recycle_after: u64) -> PgPoolOptions {
    let releases = Arc::new(AtomicU64::new(0));
    PgPoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(ping_if_idle)
        .after_release(move |_conn, _meta| {
            let keep = !recycles(&releases, recycle_after);
            Box::pin(async move { Ok(keep) })
        })
}

/// Counts one release; whether it is the `every`-th (never when `every`
/// is 0).
fn recycles(releases: &AtomicU64, every: u64) -> bool {
    every > 0 && (releases.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(every)
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
    fn every_nth_release_recycles_and_zero_never_does() {
        let releases = AtomicU64::new(0);
        let closed: Vec<u64> = (1..=10).filter(|_| recycles(&releases, 4)).collect();
        assert_eq!(closed, [4, 8]);
        assert_eq!(releases.load(Ordering::Relaxed), 10);
        let never = AtomicU64::new(0);
        assert!((0..1000).all(|_| !recycles(&never, 0)));
    }
}
