//! A unit of work: what one store call holds on to while it talks to the
//! database, and the one place that decides whether it is a transaction.
//!
//! Behind a transaction-mode pooler (PgBouncer before 1.21, or with
//! `max_prepared_statements = 0`) a server connection belongs to a client
//! only until the server reports it idle. sqlx runs a statement with
//! parameters in two exchanges (parse and describe, then bind and execute),
//! each ending in a `Sync` after which the server is idle: outside a
//! transaction the second half may reach another server connection, where
//! the statement was never parsed (or, worse, where another client's
//! unnamed statement sits). Inside a transaction the pooler keeps the
//! server connection until `COMMIT`, so in pooler mode every unit of work
//! is one.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use saas_core::error::Result;
use sqlx::pool::{PoolConnection, PoolConnectionMetadata};
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool, Postgres, Transaction};

use crate::affinity::Lease;
use crate::error::SqlxResultExt;

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

/// A unit of work on one pooled connection: a plain checkout (one
/// autocommitted statement, or several reads) or a transaction.
pub(crate) struct Unit {
    on: On,
    /// Whether this unit's statements become named prepared statements in
    /// the connection's cache (or stay unnamed).
    pub(crate) prepared: bool,
    /// The tenant sub-pool's count of this unit, if it runs on one.
    pub(crate) lease: Option<Lease>,
}

enum On {
    Conn(PoolConnection<Postgres>),
    Tx(Transaction<'static, Postgres>),
}

impl Unit {
    /// A unit for reads or one autocommitted statement: a plain checkout,
    /// or a transaction when `pooler` (see the module documentation).
    pub(crate) async fn auto(pool: &PgPool, pooler: bool) -> Result<Unit> {
        if pooler {
            Self::tx(pool).await
        } else {
            Ok(Unit {
                on: On::Conn(pool.acquire().await.db()?),
                prepared: true,
                lease: None,
            })
        }
    }

    /// A transaction.
    pub(crate) async fn tx(pool: &PgPool) -> Result<Unit> {
        Ok(Unit {
            on: On::Tx(pool.begin().await.db()?),
            prepared: true,
            lease: None,
        })
    }

    /// A transaction opened with `begin`, a constant `BEGIN; …` statement
    /// (one round trip, simple protocol).
    pub(crate) async fn begin_with(pool: &PgPool, begin: &Arc<str>) -> Result<Unit> {
        Ok(Unit {
            on: On::Tx(
                pool.begin_with(AssertSqlSafe(Arc::clone(begin)))
                    .await
                    .db()?,
            ),
            prepared: true,
            lease: None,
        })
    }

    /// The connection to run statements on.
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        match &mut self.on {
            On::Conn(c) => c,
            On::Tx(t) => t,
        }
    }

    /// Commits a transaction; returns a plain checkout to the pool.
    /// Dropping a unit instead rolls a transaction back.
    pub(crate) async fn finish(self) -> Result<()> {
        if let On::Tx(t) = self.on {
            t.commit().await.db()?;
        }
        Ok(())
    }
}
