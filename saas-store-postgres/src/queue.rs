//! [`PgQueue`]: the durable [`JobQueue`] on PostgreSQL.
//!
//! Jobs live in one table of the shared schema, `saas_shared.jobs`, next to
//! the catalog. Every statement is static SQL; nothing a caller passes is
//! ever part of a statement's text.
//!
//! - **Claims** are one statement. It finds the tenant groups that have ready
//!   jobs of the requested kinds with a loose index scan (a recursive CTE
//!   hopping from one tenant to the next in the `jobs_waiting` partial
//!   index), reads each group's best jobs in claim order with a `LATERAL …
//!   LIMIT`, adds expired leases from `jobs_lease_until`, ranks the lot with
//!   `row_number() OVER (PARTITION BY tenant …)`, and then locks jobs in
//!   `(rank, priority DESC, run_at, id)` order with `FOR UPDATE SKIP LOCKED`
//!   until it holds `limit` of them, which it leases (`UPDATE … FROM`). In the
//!   same statement, expired leases on their final attempt become dead.
//!   Locking comes *after* ranking because `FOR UPDATE` cannot sit under a
//!   window function, and because locking each group's candidates would write
//!   a lock for every row read; locking the ranked list under a `LIMIT` writes
//!   locks only for the jobs handed out. The lock re-checks readiness on the
//!   current row version, so a job another claimer leased in the meantime is
//!   skipped, never handed out twice.
//! - **How much a claim reads.** It ranks a *window* of [`CLAIM_WINDOW`]
//!   times the limit, which leaves room for concurrent claimers (who see the
//!   same order) to skip each other's rows. With `G` tenant groups ready, it
//!   first reads `ceil(window / G)` jobs per group; when the jobs among those
//!   whose rank is within that depth fill the window (every group had enough
//!   jobs), the window is exact. Otherwise (some groups have only a few jobs)
//!   it reads again, `window - G + 1` deep, a bound no picked rank can pass
//!   since every other group's first job precedes a group's second. So a
//!   claim reads about `2 G + window` index entries however many jobs are
//!   queued, and at worst `G × (window - G + 1)`.
//! - **No JIT.** The planner cannot know those depths, so its cost estimate
//!   can pass `jit_above_cost`, and compiling the statement would cost a
//!   second where running it costs milliseconds: a claim runs in a
//!   transaction opened with `BEGIN; SET LOCAL jit = off` (one round trip),
//!   and commits. Three round trips in all, for a whole batch of jobs.
//! - **Completions, failures and heartbeats** are one `UPDATE` by primary key
//!   fenced by `attempts = $n AND status = 'running'`; only when it changes
//!   nothing is the job looked up, to tell [`QueueError::LeaseLost`] from
//!   [`QueueError::NotFound`]. [`PgQueue::complete_many`] fences a whole
//!   batch in one statement.
//! - **Unique keys** are a partial unique index over `(tenant_id,
//!   unique_key)` for jobs that are not cancelled; an enqueue whose key is
//!   taken inserts nothing (`ON CONFLICT DO NOTHING`) and returns the holder.
//! - **Wake-ups**: an enqueue of a job that is ready now sends
//!   `pg_notify('saas_jobs', kind)` in its own statement, so it is delivered
//!   when the enqueue commits (with the caller's transaction, for
//!   [`PgQueue::enqueue_in`]). Each queue shares one `LISTEN`ing connection
//!   among its [`JobQueue::wait_for_work`] callers, started on first use; the
//!   timeout is the polling fallback when a notification is lost.
//!
//! Platform jobs (tenant `None`) are stored with the nil UUID as their
//! tenant, so that tenant groups compare with `=` and sort in the index,
//! which the loose index scan needs. Tenant ids are UUIDv7 and never nil;
//! enqueueing for a nil tenant id is refused.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use saas_core::jobs::listing::sort_counts;
use saas_core::jobs::queue::{
    LEASE_EXPIRED_ON_FINAL_ATTEMPT, MAX_ATTEMPTS_LIMIT, json_text, validate_extra_attempts,
};
use saas_core::jobs::{
    ClaimRequest, Enqueued, JobCount, JobFilter, JobId, JobQueue, JobRecord, JobStatus, LeasedJob,
    NewJob, QueueError, QueueResult,
};
use saas_core::tenancy::TenantId;
use serde_json::Value;
use sqlx::postgres::{PgArguments, PgListener, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::{Connection, PgConnection, PgPool, Postgres, Row};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::unit::Unit;
use crate::{PgError, PgStore};

/// The channel enqueues notify and waiting workers listen on. The payload
/// is the job's kind.
pub(crate) const NOTIFY_CHANNEL: &str = "saas_jobs";

/// A claim ranks up to this many times its limit, so that concurrent
/// claimers, which see the same order, find enough unlocked jobs past the
/// ones the others are taking.
pub(crate) const CLAIM_WINDOW: u32 = 4;

/// Advisory lock key serializing the queue's table setup between processes
/// (the shared schema's setup uses `…0001`).
const QUEUE_SETUP_LOCK: i64 = 0x5aa5_0000_0000_0002;

/// Most finished jobs one prune statement deletes, so a large prune does not
/// hold locks on (or write WAL for) millions of rows at once.
const PRUNE_CHUNK: i64 = 10_000;

/// How long the listener waits before reconnecting after an error.
const LISTEN_RETRY: Duration = Duration::from_secs(1);

/// The queue's table and indexes; every statement is idempotent.
const SETUP: &str = r#"
CREATE SCHEMA IF NOT EXISTS saas_shared;
CREATE TABLE IF NOT EXISTS saas_shared.jobs (
    id uuid NOT NULL,
    kind text NOT NULL,
    tenant_id uuid NOT NULL,
    payload json NOT NULL,
    status text NOT NULL,
    priority integer NOT NULL,
    attempts integer NOT NULL,
    max_attempts integer NOT NULL,
    run_at timestamptz NOT NULL,
    unique_key text,
    worker text,
    lease_until timestamptz,
    result json,
    last_error text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    started_at timestamptz,
    finished_at timestamptz,
    CONSTRAINT jobs_pkey PRIMARY KEY (id),
    CONSTRAINT jobs_status_check CHECK (status IN
        ('queued', 'scheduled', 'running', 'succeeded', 'retrying', 'dead', 'cancelled'))
) WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
COMMENT ON TABLE saas_shared.jobs IS 'The saas job queue (saas_store_postgres::PgQueue).';
COMMENT ON COLUMN saas_shared.jobs.tenant_id IS
    'The tenant the job runs for; the nil UUID for platform jobs.';
-- Claims: the loose index scan over (kind, tenant_id) and each group's jobs
-- in claim order.
CREATE INDEX IF NOT EXISTS jobs_waiting ON saas_shared.jobs
    (kind, tenant_id, priority DESC, run_at, id)
    WHERE status IN ('queued', 'scheduled', 'retrying');
-- Claims: leases that ran out. The predicate is `lease_until IS NOT NULL`
-- (which holds exactly for running jobs) rather than the status, so that the
-- fenced single-row updates (`… AND status = 'running'`) cannot mistake it
-- for an index of theirs and scan every lease instead of the primary key.
CREATE INDEX IF NOT EXISTS jobs_lease_until ON saas_shared.jobs (lease_until)
    WHERE lease_until IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS jobs_unique_key ON saas_shared.jobs (tenant_id, unique_key)
    WHERE unique_key IS NOT NULL AND status <> 'cancelled';
-- The per-tenant cap of pending jobs (NewJob::max_pending).
CREATE INDEX IF NOT EXISTS jobs_pending ON saas_shared.jobs (tenant_id)
    WHERE status IN ('queued', 'scheduled', 'retrying', 'running');
"#;

/// Columns of a full record, in the order [`record`] reads them.
macro_rules! record_columns {
    () => {
        "id, kind, tenant_id, payload, status, priority, attempts, max_attempts, run_at, \
         unique_key, worker, lease_until, result, last_error, created_at, updated_at, \
         started_at, finished_at"
    };
}

const INSERT: &str = "
WITH ins AS (
    INSERT INTO saas_shared.jobs (id, kind, tenant_id, payload, status, priority, attempts,
        max_attempts, run_at, unique_key, created_at, updated_at)
    VALUES ($1, $2, $3, $4::json, $5, $6, 0, $7, $8, $9, $10, $10)
    ON CONFLICT (tenant_id, unique_key) WHERE unique_key IS NOT NULL AND status <> 'cancelled'
    DO NOTHING
    RETURNING id, kind, status
)
SELECT ins.id,
       (CASE WHEN ins.status = 'queued' THEN pg_notify('saas_jobs', ins.kind) END)::text AS woke
  FROM ins";

const KEY_HOLDER: &str = "
SELECT id FROM saas_shared.jobs
 WHERE tenant_id = $1 AND unique_key = $2 AND unique_key IS NOT NULL AND status <> 'cancelled'";

/// Takes a windowed unique key (`$2`) from its holder in group `$1` when the
/// holder finished before `$3`.
const RELEASE_KEY: &str = "
UPDATE saas_shared.jobs SET unique_key = NULL
 WHERE tenant_id = $1 AND unique_key = $2 AND unique_key IS NOT NULL AND status <> 'cancelled'
   AND finished_at < $3";

/// Serializes capped enqueues of one tenant group (`$1`) until the
/// transaction ends.
const LOCK_GROUP: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('saas_jobs:' || $1::text, 0))";

/// Pending jobs of a tenant group `$1`, counted up to `$2`.
const COUNT_PENDING: &str = "
SELECT count(*) FROM (SELECT 1 FROM saas_shared.jobs
 WHERE tenant_id = $1 AND status IN ('queued', 'scheduled', 'retrying', 'running') LIMIT $2) p";

const INSERT_MANY: &str = "
WITH ins AS (
    INSERT INTO saas_shared.jobs (id, kind, tenant_id, payload, status, priority, attempts,
        max_attempts, run_at, unique_key, created_at, updated_at)
    SELECT u.id, u.kind, u.tenant_id, u.payload::json, u.status, u.priority, 0,
           u.max_attempts, u.run_at, NULL, $8, $8
      FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::int4[],
                  $7::int4[], $9::timestamptz[])
           AS u(id, kind, tenant_id, payload, status, priority, max_attempts, run_at)
    RETURNING kind, status
)
SELECT pg_notify('saas_jobs', k.kind)::text
  FROM (SELECT DISTINCT ins.kind FROM ins WHERE ins.status = 'queued') k";

/// Kinds that have waiting jobs or expired leases, for claims of any kind.
const READY_KINDS: &str = "
WITH RECURSIVE waiting(kind) AS (
    (SELECT j.kind FROM saas_shared.jobs j
      WHERE j.status IN ('queued', 'scheduled', 'retrying')
      ORDER BY j.kind LIMIT 1)
    UNION ALL
    SELECT (SELECT j.kind FROM saas_shared.jobs j
             WHERE j.status IN ('queued', 'scheduled', 'retrying') AND j.kind > w.kind
             ORDER BY j.kind LIMIT 1)
      FROM waiting w WHERE w.kind IS NOT NULL
)
SELECT kind FROM waiting WHERE kind IS NOT NULL
UNION
SELECT j.kind FROM saas_shared.jobs j WHERE j.status = 'running' AND j.lease_until <= $1";

/// The claim SQL (a macro so that [`EXPLAIN_CLAIM`] can prefix it).
macro_rules! claim_sql {
    () => {
        "
WITH RECURSIVE
kinds(kind) AS (SELECT DISTINCT u.k FROM unnest($1::text[]) AS u(k)),
-- One row per (kind, tenant) with a ready job: a loose index scan.
groups(kind, tenant_id) AS (
    SELECT k.kind, (SELECT j.tenant_id FROM saas_shared.jobs j
                     WHERE j.kind = k.kind AND j.status IN ('queued', 'scheduled', 'retrying')
                       AND j.run_at <= $2
                     ORDER BY j.tenant_id LIMIT 1)
      FROM kinds k
    UNION ALL
    SELECT g.kind, (SELECT j.tenant_id FROM saas_shared.jobs j
                     WHERE j.kind = g.kind AND j.tenant_id > g.tenant_id
                       AND j.status IN ('queued', 'scheduled', 'retrying') AND j.run_at <= $2
                     ORDER BY j.tenant_id LIMIT 1)
      FROM groups g WHERE g.tenant_id IS NOT NULL
),
ready_groups AS (SELECT g.kind, g.tenant_id FROM groups g WHERE g.tenant_id IS NOT NULL),
-- How deep to read each group: `shallow` spreads the window evenly; `deep`
-- is the rank no picked job can exceed (every other group's first job
-- precedes a group's second).
depth(shallow, deep) AS (
    SELECT (($6::int8 + count(DISTINCT r.tenant_id) - 1) / greatest(count(DISTINCT r.tenant_id), 1)),
           greatest(1, $6::int8 - count(DISTINCT r.tenant_id) + 1)
      FROM ready_groups r
),
shallow AS (
    SELECT c.id, c.tenant_id, c.priority, c.run_at, c.pos
      FROM depth d
     CROSS JOIN ready_groups g
     CROSS JOIN LATERAL (
        SELECT j.id, j.tenant_id, j.priority, j.run_at,
               row_number() OVER (ORDER BY j.priority DESC, j.run_at, j.id) AS pos
          FROM saas_shared.jobs j
         WHERE j.kind = g.kind AND j.tenant_id = g.tenant_id
           AND j.status IN ('queued', 'scheduled', 'retrying') AND j.run_at <= $2
         ORDER BY j.priority DESC, j.run_at, j.id
         LIMIT d.shallow) c
),
shallow_ranked AS (
    SELECT s.id, s.tenant_id, s.priority, s.run_at, s.pos,
           row_number() OVER (PARTITION BY s.tenant_id
                              ORDER BY s.priority DESC, s.run_at, s.id) AS rank
      FROM shallow s
),
-- The shallow read holds the whole window when its jobs of rank <= shallow
-- fill it (those are exact), or when it read every ready job.
enough(yes) AS (
    SELECT (SELECT count(*) FROM shallow_ranked s, depth d WHERE s.rank <= d.shallow) >= $6::int8
        OR NOT EXISTS (SELECT 1 FROM shallow s, depth d WHERE s.pos = d.shallow)
),
deep AS (
    SELECT c.id, c.tenant_id, c.priority, c.run_at
      FROM enough e
     CROSS JOIN depth d
     CROSS JOIN ready_groups g
     CROSS JOIN LATERAL (
        SELECT j.id, j.tenant_id, j.priority, j.run_at FROM saas_shared.jobs j
         WHERE j.kind = g.kind AND j.tenant_id = g.tenant_id
           AND j.status IN ('queued', 'scheduled', 'retrying') AND j.run_at <= $2
         ORDER BY j.priority DESC, j.run_at, j.id
         LIMIT d.deep) c
     WHERE NOT e.yes
),
candidates AS (
    SELECT s.id, s.tenant_id, s.priority, s.run_at FROM shallow s, enough e WHERE e.yes
    UNION ALL
    SELECT * FROM deep
    UNION ALL
    SELECT x.id, x.tenant_id, x.priority, x.run_at FROM (
        SELECT x.id, x.tenant_id, x.priority, x.run_at,
               row_number() OVER (PARTITION BY x.tenant_id
                                  ORDER BY x.priority DESC, x.run_at, x.id) AS r
          FROM saas_shared.jobs x
         WHERE x.status = 'running' AND x.lease_until <= $2 AND x.attempts < x.max_attempts
           AND x.kind = ANY($1::text[])
    ) x WHERE x.r <= $6::int8
),
ranked AS (
    SELECT c.id, c.priority, c.run_at,
           row_number() OVER (PARTITION BY c.tenant_id
                              ORDER BY c.priority DESC, c.run_at, c.id) AS rank
      FROM candidates c
),
-- Lock in claim order until `limit` are held, re-checking readiness on the
-- current row version; rows other claimers hold are skipped.
picked AS (
    SELECT j.id, r.rank FROM (
        SELECT * FROM ranked r0 ORDER BY r0.rank, r0.priority DESC, r0.run_at, r0.id LIMIT $6
    ) r
      JOIN saas_shared.jobs j ON j.id = r.id
     WHERE (j.status IN ('queued', 'scheduled', 'retrying') AND j.run_at <= $2)
        OR (j.status = 'running' AND j.lease_until <= $2 AND j.attempts < j.max_attempts)
     ORDER BY r.rank, r.priority DESC, r.run_at, r.id
     LIMIT $3
     FOR UPDATE OF j SKIP LOCKED
),
buried AS (
    UPDATE saas_shared.jobs j
       SET status = 'dead', last_error = $7, lease_until = NULL, finished_at = $2,
           updated_at = $2
     WHERE j.id IN (
        SELECT x.id FROM saas_shared.jobs x
         WHERE x.status = 'running' AND x.lease_until <= $2 AND x.attempts >= x.max_attempts
           AND x.kind = ANY($1::text[])
         FOR UPDATE SKIP LOCKED)
    RETURNING j.id
),
leased AS (
    UPDATE saas_shared.jobs j
       SET status = 'running', attempts = j.attempts + 1, lease_until = $4, worker = $5,
           started_at = $2, updated_at = $2
      FROM picked p
     WHERE j.id = p.id
    RETURNING j.id, j.kind, j.payload, j.tenant_id, j.priority, j.attempts, j.max_attempts,
              j.lease_until, j.created_at, j.run_at, p.rank
)
SELECT l.id, l.kind, l.payload, l.tenant_id, l.priority, l.attempts, l.max_attempts,
       l.lease_until, l.created_at
  FROM leased l
 ORDER BY l.rank, l.priority DESC, l.run_at, l.id"
    };
}

/// The claim. `$1` kinds (distinct, non-empty), `$2` now, `$3` limit,
/// `$4` lease end, `$5` worker, `$6` the ranking window (see the module docs),
/// `$7` the error recorded on jobs whose final lease expired.
const CLAIM: &str = claim_sql!();

/// Opens a claim's transaction in the same round trip as the `BEGIN`. The
/// planner cannot know how deep the claim will read each tenant group (that
/// is decided at run time), so its cost estimate can pass `jit_above_cost`,
/// and compiling the statement would then cost far more than running it.
///
/// The commit stays synchronous: a claim lost in a crash would hand its
/// attempt number out a second time, and a worker still running the first
/// lease could then act on the second.
const BEGIN_CLAIM: &str = "BEGIN; SET LOCAL jit = off";

const EXPLAIN_CLAIM: &str = concat!("EXPLAIN (ANALYZE, BUFFERS) ", claim_sql!());

const HEARTBEAT: &str = "
UPDATE saas_shared.jobs SET lease_until = $3
 WHERE id = $1 AND attempts = $2 AND status = 'running'";

const COMPLETE: &str = "
UPDATE saas_shared.jobs
   SET status = 'succeeded', result = $3::json, lease_until = NULL, finished_at = $4,
       updated_at = $4
 WHERE id = $1 AND attempts = $2 AND status = 'running'";

/// Completes a batch whose ids are distinct. The rows are found through the
/// primary key with `id = ANY($1)` and each row's attempt and result are
/// looked up by position: a join with `unnest` would leave the join order to
/// row estimates, and a wrong guess costs a scan per row.
const COMPLETE_MANY: &str = "
UPDATE saas_shared.jobs j
   SET status = 'succeeded', result = ($3::text[])[array_position($1::uuid[], j.id)]::json,
       lease_until = NULL, finished_at = $4, updated_at = $4
 WHERE j.id = ANY($1::uuid[]) AND j.status = 'running'
   AND j.attempts = ($2::int4[])[array_position($1::uuid[], j.id)]
RETURNING j.id";

const FAIL: &str = "
UPDATE saas_shared.jobs
   SET last_error = $3, lease_until = NULL, updated_at = $5,
       status = CASE WHEN $4::timestamptz IS NOT NULL AND attempts < max_attempts
                     THEN 'retrying' ELSE 'dead' END,
       run_at = CASE WHEN $4::timestamptz IS NOT NULL AND attempts < max_attempts
                     THEN $4::timestamptz ELSE run_at END,
       finished_at = CASE WHEN $4::timestamptz IS NOT NULL AND attempts < max_attempts
                          THEN finished_at ELSE $5 END
 WHERE id = $1 AND attempts = $2 AND status = 'running'";

const STATUS_OF: &str = "SELECT status FROM saas_shared.jobs WHERE id = $1";

const EXISTING: &str = "SELECT id FROM saas_shared.jobs WHERE id = ANY($1::uuid[])";

const GET: &str = concat!(
    "SELECT ",
    record_columns!(),
    " FROM saas_shared.jobs WHERE id = $1"
);

const CANCEL: &str = concat!(
    "UPDATE saas_shared.jobs SET status = 'cancelled', finished_at = $2, updated_at = $2 \
     WHERE id = $1 AND status IN ('queued', 'scheduled', 'retrying') RETURNING ",
    record_columns!()
);

const RETRY: &str = concat!(
    "WITH r AS (UPDATE saas_shared.jobs \
        SET max_attempts = least(attempts::int8 + $2, 2147483647)::int4, run_at = $3, \
            status = CASE WHEN $3 > $4 THEN 'scheduled' ELSE 'queued' END, \
            finished_at = NULL, result = NULL, updated_at = $4 \
      WHERE id = $1 AND status = 'dead' RETURNING ",
    record_columns!(),
    ") SELECT r.*, (CASE WHEN r.status = 'queued' THEN pg_notify('saas_jobs', r.kind) END)::text \
       AS woke FROM r"
);

const PRUNE: &str = "
DELETE FROM saas_shared.jobs WHERE id IN (
    SELECT id FROM saas_shared.jobs
     WHERE status IN ('succeeded', 'dead', 'cancelled') AND finished_at < $1
     LIMIT $2)";

const COUNTS: &str =
    "SELECT status, count(*) FROM saas_shared.jobs GROUP BY status ORDER BY status";

/// Gives a running job back (fenced): queued now, the attempt not counted;
/// wakes listening workers.
const RELEASE: &str = "
WITH r AS (
    UPDATE saas_shared.jobs
       SET status = 'queued', run_at = $3, lease_until = NULL,
           max_attempts = least(max_attempts::int8 + 1, 2147483647)::int4, updated_at = $3
     WHERE id = $1 AND attempts = $2 AND status = 'running'
    RETURNING kind)
SELECT pg_notify('saas_jobs', r.kind)::text AS woke FROM r";

/// A page of jobs, newest first: `$1` status, `$2` kind, `$3` tenant, `$4`
/// the id to list before (each NULL for any), `$5` the limit. Walks the
/// primary key backwards, filtering.
const LIST: &str = concat!(
    "SELECT ",
    record_columns!(),
    " FROM saas_shared.jobs
     WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR kind = $2)
       AND ($3::uuid IS NULL OR tenant_id = $3) AND ($4::uuid IS NULL OR id < $4)
     ORDER BY id DESC LIMIT $5"
);

const STATS: &str = "SELECT kind, status, count(*) FROM saas_shared.jobs GROUP BY kind, status";

/// A durable, multi-process [`JobQueue`] in `saas_shared.jobs`.
///
/// Cloning is cheap and shares the pool and the listener. Any number of
/// processes may run queues on one database: they claim disjoint jobs.
///
/// The first [`JobQueue::wait_for_work`] takes one connection of the pool
/// for `LISTEN saas_jobs` and keeps it while the queue lives (it is given
/// back, and the listener stopped, when the last clone is dropped); size the
/// pool with that in mind.
///
/// ```no_run
/// use saas_core::jobs::{ClaimRequest, JobQueue, NewJob};
/// use saas_store_postgres::PgQueue;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let queue = PgQueue::connect("postgres://postgres@127.0.0.1/app").await?;
/// let now = chrono::DateTime::from_timestamp_micros(chrono::Utc::now().timestamp_micros())
///     .expect("now");
/// let job = queue.enqueue(&NewJob::new("hello", serde_json::json!({"to": "world"})), now).await?;
/// let request = ClaimRequest {
///     worker: "w1".into(),
///     lease: std::time::Duration::from_secs(60),
///     limit: 10,
///     kinds: vec!["hello".into()],
/// };
/// let leased = queue.claim(&request, now).await?;
/// queue.complete(job.id, leased[0].attempt, &serde_json::json!("done"), now).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PgQueue {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    /// Whether statements may be named (prepared once per connection); not
    /// behind a transaction-mode pooler.
    named: bool,
    /// Whether `wait_for_work` LISTENs; not behind a transaction-mode
    /// pooler, which cannot keep a session's LISTEN.
    listen: bool,
    /// Woken by the listener; shared with its task.
    notify: Arc<Notify>,
    /// The listening task, started by the first `wait_for_work`.
    listener: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let handle = self
            .listener
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(handle) = handle {
            handle.abort();
        }
    }
}

impl fmt::Debug for PgQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgQueue")
            .field("pool_size", &self.inner.pool.size())
            .field("named_statements", &self.inner.named)
            .field("listen", &self.inner.listen)
            .finish_non_exhaustive()
    }
}

/// Runs `$query` (made persistent or not as the queue says) with its method
/// `$run` (`execute`, `fetch_optional`, …) as its own unit of work of the
/// queue `$queue`, and evaluates to what it returned.
macro_rules! in_own_unit {
    ($queue:expr, $query:expr, $run:ident) => {{
        let mut unit = $queue.unit().await?;
        let out = $query
            .persistent($queue.inner.named)
            .$run(unit.conn())
            .await
            .map_err(backend)?;
        finish(unit).await?;
        out
    }};
}

fn backend(e: sqlx::Error) -> QueueError {
    QueueError::backend(PgError::from(e))
}

/// Ends a unit of work (commits it when it is a transaction).
async fn finish(unit: Unit) -> QueueResult<()> {
    unit.finish().await.map_err(QueueError::backend)
}

fn corrupt(column: &'static str) -> QueueError {
    QueueError::backend(PgError::Corrupt { column })
}

impl PgQueue {
    /// A queue on `pool`, creating its table and indexes if they are missing
    /// (idempotent, and safe when many processes start at once).
    pub async fn new(pool: PgPool) -> Result<PgQueue, PgError> {
        Self::open(pool, false).await
    }

    /// A queue on `pool` whose connections go through a transaction-mode
    /// pooler such as PgBouncer (see
    /// [`PgConfig::transaction_pooler`](crate::PgConfig::transaction_pooler)): every
    /// statement is unnamed, and workers poll (their `poll_interval`)
    /// instead of `LISTEN`ing, which a pooler cannot keep for a session.
    pub async fn behind_transaction_pooler(pool: PgPool) -> Result<PgQueue, PgError> {
        Self::open(pool, true).await
    }

    async fn open(pool: PgPool, pooler: bool) -> Result<PgQueue, PgError> {
        let mut conn = pool.acquire().await?;
        setup(&mut conn).await?;
        drop(conn);
        Ok(PgQueue {
            inner: Arc::new(Inner {
                pool,
                named: !pooler,
                listen: !pooler,
                notify: Arc::new(Notify::new()),
                listener: Mutex::new(None),
            }),
        })
    }

    /// Connects a pool of ten connections to `url` and calls
    /// [`PgQueue::new`].
    pub async fn connect(url: &str) -> Result<PgQueue, PgError> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect(url)
            .await?;
        Self::new(pool).await
    }

    /// The queue in `store`'s catalog database, on the store's pool.
    /// Follows the store's [`PgConfig::transaction_pooler`](crate::PgConfig::transaction_pooler).
    pub async fn for_store(store: &PgStore) -> Result<PgQueue, PgError> {
        Self::open(store.catalog_pool().clone(), store.transaction_pooler()).await
    }

    /// The pool this queue runs on.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Enqueues `job` on `conn`, which may be inside the caller's
    /// transaction (pass `&mut *tx`): the job then exists, and its wake-up is
    /// sent, only if that transaction commits, so a job can never refer to
    /// tenant data that was rolled back. Semantics of [`JobQueue::enqueue`].
    ///
    /// Inside a `REPEATABLE READ` or `SERIALIZABLE` transaction, a unique key
    /// taken by a job that a concurrent transaction committed fails with a
    /// serialization error (a backend error): retry the transaction. A
    /// pending cap ([`NewJob::max_pending`]) holds exactly only when `conn`
    /// is in a transaction (its lock lasts until the transaction ends).
    ///
    /// Its statements are unnamed (parsed on each call), so `conn` may come
    /// through a transaction-mode pooler.
    pub async fn enqueue_in(
        conn: &mut PgConnection,
        job: &NewJob,
        now: DateTime<Utc>,
    ) -> QueueResult<Enqueued> {
        Self::enqueue_on(conn, job, now, false).await
    }

    /// [`PgQueue::enqueue_in`] with named (prepared, cached) statements
    /// when `named`.
    async fn enqueue_on(
        conn: &mut PgConnection,
        job: &NewJob,
        now: DateTime<Utc>,
        named: bool,
    ) -> QueueResult<Enqueued> {
        let row = Insert::new(job, now)?;
        if let Some(cut) = row.key_expired_before {
            sqlx::query(RELEASE_KEY)
                .persistent(named)
                .bind(row.tenant)
                .bind(&row.unique_key)
                .bind(cut)
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
        }
        if let Some(limit) = job.max_pending {
            sqlx::query(LOCK_GROUP)
                .persistent(named)
                .bind(row.tenant)
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
            if row.unique_key.is_some()
                && let Some(held) = key_holder(conn, &row, named).await?
            {
                return Ok(held);
            }
            let pending: i64 = sqlx::query_scalar(COUNT_PENDING)
                .persistent(named)
                .bind(row.tenant)
                .bind(i64::from(limit))
                .fetch_one(&mut *conn)
                .await
                .map_err(backend)?;
            if pending >= i64::from(limit) {
                return Err(QueueError::TooManyPending { limit });
            }
        }
        // A holder can vanish (cancelled, pruned) between the refused insert
        // and the lookup; then the insert is tried again.
        for _ in 0..8 {
            let inserted = sqlx::query(INSERT)
                .persistent(named)
                .bind(row.id.0)
                .bind(&row.kind)
                .bind(row.tenant)
                .bind(&row.payload)
                .bind(row.status.as_str())
                .bind(row.priority)
                .bind(row.max_attempts)
                .bind(row.run_at)
                .bind(&row.unique_key)
                .bind(now)
                .fetch_optional(&mut *conn)
                .await
                .map_err(backend)?;
            if inserted.is_some() {
                return Ok(Enqueued {
                    id: row.id,
                    created: true,
                });
            }
            if let Some(held) = key_holder(conn, &row, named).await? {
                return Ok(held);
            }
        }
        Err(QueueError::backend(PgError::Corrupt {
            column: "jobs.unique_key (holder keeps vanishing)",
        }))
    }

    /// Enqueues every job of `jobs` in one transaction, with the semantics of
    /// [`JobQueue::enqueue`] for each, in order (a later job whose unique key
    /// an earlier one took gets that job's id with `created = false`).
    /// All-or-nothing: when any job is invalid, nothing is stored. Jobs
    /// without unique keys go in with one statement.
    pub async fn enqueue_many(
        &self,
        jobs: &[NewJob],
        now: DateTime<Utc>,
    ) -> QueueResult<Vec<Enqueued>> {
        let rows = jobs
            .iter()
            .map(|job| Insert::new(job, now))
            .collect::<QueueResult<Vec<_>>>()?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.inner.pool.acquire().await.map_err(backend)?;
        let mut tx = conn.begin().await.map_err(backend)?;
        let out = if rows.iter().all(|r| r.unique_key.is_none())
            && jobs.iter().all(|j| j.max_pending.is_none())
        {
            sqlx::query(INSERT_MANY)
                .persistent(self.inner.named)
                .bind(rows.iter().map(|r| r.id.0).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.tenant).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.payload.as_str()).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.status.as_str()).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.priority).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.max_attempts).collect::<Vec<_>>())
                .bind(now)
                .bind(rows.iter().map(|r| r.run_at).collect::<Vec<_>>())
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            rows.iter()
                .map(|r| Enqueued {
                    id: r.id,
                    created: true,
                })
                .collect()
        } else {
            let mut out = Vec::with_capacity(jobs.len());
            for job in jobs {
                out.push(Self::enqueue_on(&mut tx, job, now, self.inner.named).await?);
            }
            out
        };
        tx.commit().await.map_err(backend)?;
        Ok(out)
    }

    /// How many jobs are stored in each status (statuses with none are left
    /// out), for metrics and operators.
    pub async fn counts(&self) -> QueueResult<Vec<(JobStatus, u64)>> {
        let rows = in_own_unit!(self, sqlx::query(COUNTS), fetch_all);
        rows.iter()
            .map(|row| {
                let status: String = row.try_get(0).map_err(backend)?;
                let n: i64 = row.try_get(1).map_err(backend)?;
                Ok((parse_status(&status)?, u64::try_from(n).unwrap_or(0)))
            })
            .collect()
    }

    /// The plan of a claim with `request` at `now`, as `EXPLAIN (ANALYZE,
    /// BUFFERS)` prints it, for operators checking that claims stay cheap on
    /// their data. The claim really runs, inside a transaction that is rolled
    /// back, so nothing changes. Claims of any kind are explained with the
    /// kinds ready at `now`.
    pub async fn explain_claim(
        &self,
        request: &ClaimRequest,
        now: DateTime<Utc>,
    ) -> QueueResult<String> {
        let lease_until = request.lease_until(now)?;
        let kinds = self.claim_kinds(request, now).await?;
        let mut conn = self.inner.pool.acquire().await.map_err(backend)?;
        let mut tx = conn.begin_with(BEGIN_CLAIM).await.map_err(backend)?;
        let rows = self
            .claim_query(EXPLAIN_CLAIM, request, &kinds, now, lease_until)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        tx.rollback().await.map_err(backend)?;
        let lines = rows
            .iter()
            .map(|row| row.try_get::<String, _>(0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        Ok(lines.join("\n"))
    }

    /// `sql` ([`CLAIM`], or [`EXPLAIN_CLAIM`]) with a claim's parameters
    /// bound: `request`'s limit, worker and ranking window, its `kinds`
    /// (distinct), `now` and the lease end.
    fn claim_query<'q>(
        &self,
        sql: &'static str,
        request: &'q ClaimRequest,
        kinds: &'q [String],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Query<'q, Postgres, PgArguments> {
        let limit = i64::from(request.limit);
        sqlx::query(sql)
            .persistent(self.inner.named)
            .bind(kinds)
            .bind(now)
            .bind(limit)
            .bind(lease_until)
            .bind(sanitize(&request.worker).as_ref())
            .bind(limit * i64::from(CLAIM_WINDOW))
            .bind(LEASE_EXPIRED_ON_FINAL_ATTEMPT)
    }

    /// The claim's kinds: the request's, deduplicated, or for a claim of any
    /// kind those with waiting jobs or expired leases.
    async fn claim_kinds(
        &self,
        request: &ClaimRequest,
        now: DateTime<Utc>,
    ) -> QueueResult<Vec<String>> {
        if request.kinds.is_empty() {
            Ok(in_own_unit!(
                self,
                sqlx::query_scalar(READY_KINDS).bind(now),
                fetch_all
            ))
        } else {
            let mut kinds = request.kinds.clone();
            kinds.sort();
            kinds.dedup();
            Ok(kinds)
        }
    }

    /// A unit of work: a plain checkout, or a transaction behind a pooler,
    /// which keeps one server connection only while a transaction is open
    /// (see `unit.rs`).
    async fn unit(&self) -> QueueResult<Unit> {
        Unit::auto(&self.inner.pool, !self.inner.named)
            .await
            .map_err(QueueError::backend)
    }

    /// Runs one statement as its own unit of work; returns the rows it
    /// changed.
    async fn execute(&self, query: Query<'_, Postgres, PgArguments>) -> QueueResult<u64> {
        Ok(in_own_unit!(self, query, execute).rows_affected())
    }

    /// Runs one statement as its own unit of work; returns its row, if any.
    async fn fetch_optional(
        &self,
        query: Query<'_, Postgres, PgArguments>,
    ) -> QueueResult<Option<PgRow>> {
        Ok(in_own_unit!(self, query, fetch_optional))
    }

    /// Runs a statement fenced by `attempt` (built by `query` from the
    /// attempt as stored); `LeaseLost` or `NotFound` when it changed nothing.
    /// An attempt beyond i32 was never handed out: it matches no row.
    async fn fenced<'q>(
        &self,
        id: JobId,
        attempt: u32,
        query: impl FnOnce(i32) -> Query<'q, Postgres, PgArguments>,
    ) -> QueueResult<()> {
        if let Ok(a) = i32::try_from(attempt)
            && self.execute(query(a)).await? == 1
        {
            return Ok(());
        }
        Err(self.refused(id, attempt).await)
    }

    /// Fails with `LeaseLost` or `NotFound` after a fenced statement changed
    /// nothing.
    async fn refused(&self, id: JobId, attempt: u32) -> QueueError {
        match self.status_of(id).await {
            Ok(status) => QueueError::fenced_off(id, attempt, status.is_some()),
            Err(e) => e,
        }
    }

    async fn status_of(&self, id: JobId) -> QueueResult<Option<JobStatus>> {
        let query = sqlx::query_scalar(STATUS_OF).bind(id.0);
        let status: Option<String> = in_own_unit!(self, query, fetch_optional);
        status.as_deref().map(parse_status).transpose()
    }

    /// `InvalidState` (or `NotFound`) after a status-guarded statement
    /// changed nothing.
    async fn wrong_state(&self, id: JobId, action: &'static str) -> QueueError {
        match self.status_of(id).await {
            Ok(status) => QueueError::refused(id, action, status),
            Err(e) => e,
        }
    }

    fn start_listener(&self) {
        let mut slot = self
            .inner
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let pool = self.inner.pool.clone();
        let notify = Arc::clone(&self.inner.notify);
        *slot = Some(tokio::spawn(listen(pool, notify)));
    }
}

/// Wakes every waiter, and leaves a permit so that a worker that is between
/// an empty claim and its wait does not sleep through this wake-up.
fn wake(notify: &Notify) {
    notify.notify_waiters();
    notify.notify_one();
}

/// The listening task: wakes waiters on every notification and after every
/// reconnect (notifications sent while disconnected are lost). Ends when the
/// pool is closed; aborted when the queue is dropped.
async fn listen(pool: PgPool, notify: Arc<Notify>) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(sqlx::Error::PoolClosed) => return,
            Err(error) => {
                tracing::warn!(%error, "job queue listener cannot connect; retrying");
                tokio::time::sleep(LISTEN_RETRY).await;
                continue;
            }
        };
        if let Err(error) = listener.listen(NOTIFY_CHANNEL).await {
            tracing::warn!(%error, "job queue listener cannot LISTEN; retrying");
            tokio::time::sleep(LISTEN_RETRY).await;
            continue;
        }
        wake(&notify);
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => wake(&notify),
                // The connection was lost and will be re-established.
                Ok(None) => wake(&notify),
                Err(sqlx::Error::PoolClosed) => return,
                Err(error) => {
                    tracing::warn!(%error, "job queue listener failed; reconnecting");
                    tokio::time::sleep(LISTEN_RETRY).await;
                    break;
                }
            }
        }
    }
}

/// Creates the queue's table and indexes under the queue's advisory lock.
/// `CREATE SCHEMA IF NOT EXISTS` can still race a store creating the shared
/// schema under its own lock; the loser of that race tries again.
async fn setup(conn: &mut PgConnection) -> Result<(), PgError> {
    let mut tries = 0;
    loop {
        tries += 1;
        match setup_once(conn).await {
            Err(e) if tries < 3 && is_create_race(&e) => continue,
            other => return other.map_err(PgError::from),
        }
    }
}

fn is_create_race(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "23505" || c == "42P06" || c == "42P07")
}

async fn setup_once(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .persistent(false)
        .bind(QUEUE_SETUP_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(SETUP).execute(&mut *tx).await?;
    tx.commit().await
}

/// PostgreSQL `text` cannot hold NUL; a worker name or an error message
/// carrying one must not make the job unfinishable.
fn sanitize(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        std::borrow::Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// The stored tenant group: the id, or the nil UUID for platform jobs.
fn group(tenant: Option<TenantId>) -> Uuid {
    tenant.map_or(Uuid::nil(), |t| t.0)
}

fn tenant_of(group: Uuid) -> Option<TenantId> {
    (!group.is_nil()).then_some(TenantId(group))
}

fn parse_status(s: &str) -> QueueResult<JobStatus> {
    s.parse::<JobStatus>().map_err(|_| corrupt("jobs.status"))
}

fn count(row: &PgRow, column: &'static str) -> QueueResult<u32> {
    let n: i32 = row.try_get(column).map_err(backend)?;
    u32::try_from(n).map_err(|_| corrupt(column))
}

/// A validated job, ready to insert.
#[derive(Debug)]
struct Insert {
    id: JobId,
    kind: String,
    tenant: Uuid,
    payload: String,
    status: JobStatus,
    priority: i32,
    max_attempts: i32,
    run_at: DateTime<Utc>,
    unique_key: Option<String>,
    /// A holder of the key finished before this lets it go.
    key_expired_before: Option<DateTime<Utc>>,
}

impl Insert {
    fn new(job: &NewJob, now: DateTime<Utc>) -> QueueResult<Insert> {
        let prepared = job.prepare(now)?;
        if job.tenant.is_some_and(|t| t.0.is_nil()) {
            return Err(QueueError::Invalid {
                field: "tenant",
                message: "the nil UUID is not a tenant id".into(),
            });
        }
        Ok(Insert {
            id: prepared.id,
            kind: job.kind.clone(),
            tenant: group(job.tenant),
            payload: json_text(&job.payload)?,
            status: prepared.status,
            priority: job.priority,
            // validate() bounds it to 1..=MAX_ATTEMPTS_LIMIT.
            max_attempts: i32::try_from(job.max_attempts).map_err(|_| QueueError::Invalid {
                field: "max_attempts",
                message: format!("must be between 1 and {MAX_ATTEMPTS_LIMIT}"),
            })?,
            run_at: prepared.run_at,
            unique_key: job.unique_key.clone(),
            key_expired_before: prepared.key_expired_before,
        })
    }
}

/// The job holding `row`'s unique key, as the answer to an enqueue that
/// stores nothing (`created = false`); `None` when no job holds it.
async fn key_holder(
    conn: &mut PgConnection,
    row: &Insert,
    named: bool,
) -> QueueResult<Option<Enqueued>> {
    let holder: Option<Uuid> = sqlx::query_scalar(KEY_HOLDER)
        .persistent(named)
        .bind(row.tenant)
        .bind(&row.unique_key)
        .fetch_optional(conn)
        .await
        .map_err(backend)?;
    Ok(holder.map(|id| Enqueued {
        id: JobId(id),
        created: false,
    }))
}

fn record(row: &PgRow) -> QueueResult<JobRecord> {
    let get = |e: sqlx::Error| backend(e);
    let status: String = row.try_get("status").map_err(get)?;
    Ok(JobRecord {
        id: JobId(row.try_get("id").map_err(get)?),
        kind: row.try_get("kind").map_err(get)?,
        tenant: tenant_of(row.try_get("tenant_id").map_err(get)?),
        payload: row.try_get("payload").map_err(get)?,
        status: parse_status(&status)?,
        priority: row.try_get("priority").map_err(get)?,
        attempts: count(row, "attempts")?,
        max_attempts: count(row, "max_attempts")?,
        run_at: row.try_get("run_at").map_err(get)?,
        unique_key: row.try_get("unique_key").map_err(get)?,
        worker: row.try_get("worker").map_err(get)?,
        lease_until: row.try_get("lease_until").map_err(get)?,
        result: row.try_get("result").map_err(get)?,
        last_error: row.try_get("last_error").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        updated_at: row.try_get("updated_at").map_err(get)?,
        started_at: row.try_get("started_at").map_err(get)?,
        finished_at: row.try_get("finished_at").map_err(get)?,
    })
}

fn leased(row: &PgRow) -> QueueResult<LeasedJob> {
    let get = |e: sqlx::Error| backend(e);
    Ok(LeasedJob {
        id: JobId(row.try_get("id").map_err(get)?),
        kind: row.try_get("kind").map_err(get)?,
        payload: row.try_get("payload").map_err(get)?,
        tenant: tenant_of(row.try_get("tenant_id").map_err(get)?),
        priority: row.try_get("priority").map_err(get)?,
        attempt: count(row, "attempts")?,
        max_attempts: count(row, "max_attempts")?,
        lease_until: row.try_get("lease_until").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
    })
}

#[async_trait]
impl JobQueue for PgQueue {
    async fn enqueue(&self, job: &NewJob, now: DateTime<Utc>) -> QueueResult<Enqueued> {
        // Validate before taking a connection.
        Insert::new(job, now)?;
        // A capped enqueue holds its tenant's lock until it commits.
        let mut unit = if job.max_pending.is_some() {
            Unit::tx(&self.inner.pool)
                .await
                .map_err(QueueError::backend)?
        } else {
            self.unit().await?
        };
        let enqueued = Self::enqueue_on(unit.conn(), job, now, self.inner.named).await?;
        finish(unit).await?;
        Ok(enqueued)
    }

    async fn claim(
        &self,
        request: &ClaimRequest,
        now: DateTime<Utc>,
    ) -> QueueResult<Vec<LeasedJob>> {
        let lease_until = request.lease_until(now)?;
        let kinds = self.claim_kinds(request, now).await?;
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.inner.pool.acquire().await.map_err(backend)?;
        let mut tx = conn.begin_with(BEGIN_CLAIM).await.map_err(backend)?;
        let rows = self
            .claim_query(CLAIM, request, &kinds, now, lease_until)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        rows.iter().map(leased).collect()
    }

    async fn heartbeat(
        &self,
        id: JobId,
        attempt: u32,
        lease_until: DateTime<Utc>,
    ) -> QueueResult<()> {
        self.fenced(id, attempt, |a| {
            sqlx::query(HEARTBEAT).bind(id.0).bind(a).bind(lease_until)
        })
        .await
    }

    async fn complete(
        &self,
        id: JobId,
        attempt: u32,
        result: &Value,
        now: DateTime<Utc>,
    ) -> QueueResult<()> {
        let result = json_text(result)?;
        self.fenced(id, attempt, |a| {
            sqlx::query(COMPLETE)
                .bind(id.0)
                .bind(a)
                .bind(result)
                .bind(now)
        })
        .await
    }

    // One statement per batch. A job listed more than once takes one more
    // statement per repetition; at most one of its entries holds the lease.
    async fn complete_many(
        &self,
        done: &[(JobId, u32, Value)],
        now: DateTime<Utc>,
    ) -> QueueResult<Vec<QueueResult<()>>> {
        let mut entries = Vec::with_capacity(done.len());
        for (id, attempt, result) in done {
            // An attempt beyond i32 was never handed out: it matches no row.
            entries.push((
                id.0,
                i32::try_from(*attempt).unwrap_or(-1),
                json_text(result)?,
            ));
        }
        let mut ok = vec![false; done.len()];
        let mut pending: Vec<usize> = (0..done.len()).collect();
        let mut unit = self.unit().await?;
        while !pending.is_empty() {
            let mut ids_in_round = HashSet::new();
            let (round, rest): (Vec<usize>, Vec<usize>) = pending
                .iter()
                .partition(|&&i| ids_in_round.insert(entries[i].0));
            let completed: HashSet<Uuid> = sqlx::query_scalar::<_, Uuid>(COMPLETE_MANY)
                .persistent(self.inner.named)
                .bind(round.iter().map(|&i| entries[i].0).collect::<Vec<_>>())
                .bind(round.iter().map(|&i| entries[i].1).collect::<Vec<_>>())
                .bind(
                    round
                        .iter()
                        .map(|&i| entries[i].2.as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(now)
                .fetch_all(unit.conn())
                .await
                .map_err(backend)?
                .into_iter()
                .collect();
            for &i in &round {
                ok[i] = completed.contains(&entries[i].0);
            }
            pending = rest;
        }
        let refused: Vec<Uuid> = (0..done.len())
            .filter(|&i| !ok[i])
            .map(|i| entries[i].0)
            .collect();
        let existing: HashSet<Uuid> = if refused.is_empty() {
            HashSet::new()
        } else {
            sqlx::query_scalar::<_, Uuid>(EXISTING)
                .persistent(self.inner.named)
                .bind(&refused)
                .fetch_all(unit.conn())
                .await
                .map_err(backend)?
                .into_iter()
                .collect()
        };
        finish(unit).await?;
        Ok(done
            .iter()
            .zip(ok)
            .map(|((id, attempt, _), ok)| {
                if ok {
                    Ok(())
                } else {
                    Err(QueueError::fenced_off(
                        *id,
                        *attempt,
                        existing.contains(&id.0),
                    ))
                }
            })
            .collect())
    }

    async fn fail(
        &self,
        id: JobId,
        attempt: u32,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> QueueResult<()> {
        let error = sanitize(error);
        self.fenced(id, attempt, |a| {
            sqlx::query(FAIL)
                .bind(id.0)
                .bind(a)
                .bind(error.as_ref())
                .bind(retry_at)
                .bind(now)
        })
        .await
    }

    async fn job(&self, id: JobId) -> QueueResult<Option<JobRecord>> {
        let row = self.fetch_optional(sqlx::query(GET).bind(id.0)).await?;
        row.as_ref().map(record).transpose()
    }

    async fn cancel(&self, id: JobId, now: DateTime<Utc>) -> QueueResult<JobRecord> {
        let row = self
            .fetch_optional(sqlx::query(CANCEL).bind(id.0).bind(now))
            .await?;
        match row {
            Some(row) => record(&row),
            None => Err(self.wrong_state(id, "cancel").await),
        }
    }

    async fn retry(
        &self,
        id: JobId,
        extra_attempts: u32,
        run_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> QueueResult<JobRecord> {
        validate_extra_attempts(extra_attempts)?;
        let query = sqlx::query(RETRY)
            .bind(id.0)
            .bind(i64::from(extra_attempts))
            .bind(run_at)
            .bind(now);
        let row = self.fetch_optional(query).await?;
        match row {
            Some(row) => record(&row),
            None => Err(self.wrong_state(id, "retry").await),
        }
    }

    async fn prune(&self, before: DateTime<Utc>) -> QueueResult<u64> {
        let mut total = 0u64;
        loop {
            let deleted = self
                .execute(sqlx::query(PRUNE).bind(before).bind(PRUNE_CHUNK))
                .await?;
            total += deleted;
            if deleted < PRUNE_CHUNK as u64 {
                return Ok(total);
            }
        }
    }

    async fn release(&self, id: JobId, attempt: u32, now: DateTime<Utc>) -> QueueResult<()> {
        // An attempt beyond i32 was never handed out: it matches no row.
        if let Ok(a) = i32::try_from(attempt) {
            let query = sqlx::query(RELEASE).bind(id.0).bind(a).bind(now);
            if self.fetch_optional(query).await?.is_some() {
                return Ok(());
            }
        }
        Err(self.refused(id, attempt).await)
    }

    async fn list(&self, filter: &JobFilter) -> QueueResult<Vec<JobRecord>> {
        filter.validate()?;
        let query = sqlx::query(LIST)
            .bind(filter.status.map(JobStatus::as_str))
            .bind(filter.kind.as_deref())
            .bind(filter.tenant.map(|t| group(Some(t))))
            .bind(filter.before.map(|b| b.0))
            .bind(i64::from(filter.limit));
        let rows = in_own_unit!(self, query, fetch_all);
        rows.iter().map(record).collect()
    }

    async fn stats(&self) -> QueueResult<Vec<JobCount>> {
        let rows = in_own_unit!(self, sqlx::query(STATS), fetch_all);
        let mut counts = rows
            .iter()
            .map(|row| {
                let status: String = row.try_get(1).map_err(backend)?;
                let n: i64 = row.try_get(2).map_err(backend)?;
                Ok(JobCount {
                    kind: row.try_get(0).map_err(backend)?,
                    status: parse_status(&status)?,
                    count: u64::try_from(n).unwrap_or(0),
                })
            })
            .collect::<QueueResult<Vec<_>>>()?;
        sort_counts(&mut counts);
        Ok(counts)
    }

    async fn wait_for_work(&self, timeout: Duration) {
        if !self.inner.listen {
            tokio::time::sleep(timeout).await;
            return;
        }
        self.start_listener();
        let _ = tokio::time::timeout(timeout, self.inner.notify.notified()).await;
    }
}
