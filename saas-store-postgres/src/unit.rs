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

use saas_core::error::Result;
use sqlx::pool::PoolConnection;
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Postgres, Transaction};

use crate::affinity::Lease;
use crate::error::SqlxResultExt;

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
