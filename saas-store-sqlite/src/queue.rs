//! [`SqliteQueue`]: the durable [`JobQueue`] on SQLite. The design is
//! documented on the type; the SQL and why each statement has its shape are
//! next to the statements.

use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use saas_core::jobs::listing::sort_counts;
use saas_core::jobs::queue::{LEASE_EXPIRED_ON_FINAL_ATTEMPT, json_text, validate_extra_attempts};
use saas_core::jobs::{
    ClaimRequest, Enqueued, JobCount, JobFilter, JobId, JobQueue, JobRecord, JobStatus, LeasedJob,
    NewJob, QueueError, QueueResult,
};
use saas_core::tenancy::TenantId;
use serde_json::Value;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::SqliteOptions;
use crate::codec::{micros, opt_micros, opt_ts, ts};
use crate::db::{self, ConnSettings, Db, FileKind};
use crate::error::{Failure, R, SqliteError};
use crate::schema::{self, job_code};

/// Name of the queue's file under the store's root.
pub const JOBS_FILE: &str = "jobs.sqlite";

/// Most finished jobs one prune transaction deletes, so a large prune lets
/// claims and completions in between its chunks.
const PRUNE_CHUNK: i64 = 5_000;

fn status_from_code(code: i64) -> Option<JobStatus> {
    JobStatus::ALL
        .iter()
        .copied()
        .find(|s| job_code(*s) == code)
}

/// A durable, multi-process [`JobQueue`] in `<root>/jobs.sqlite`.
///
/// Cloning is cheap and shares the connections and the in-process wake-ups.
/// Several processes (or several `SqliteQueue`s) may open the same root:
/// they share the jobs through SQLite's locking, and claim disjoint jobs.
///
/// Jobs live in their own file, apart from the catalog and the tenant
/// files: job traffic (a write per claim, per completion) never waits
/// behind a tenant registration, nor a registration behind a burst of
/// completions. The file gets the same connection hardening as every other
/// file of the crate (WAL, busy timeout, ATTACH refused, defensive mode) and
/// the same pool: one writer, which takes SQLite's lock with
/// `BEGIN IMMEDIATE`, and a few readers. All SQLite work runs on tokio's
/// blocking pool.
///
/// - **Claims** run in one `BEGIN IMMEDIATE` transaction: expired leases on
///   their final attempt become dead, the fair batch is picked with one
///   statement, and each picked job is leased, before the commit. Other
///   processes on the same root wait for the lock, so no two claimers get
///   the same job for the same attempt.
/// - **The fair pick** ranks only what it can pick: a loose index scan
///   finds the tenants with waiting jobs, each tenant's first ready jobs
///   come from a partial index of waiting jobs in claim order (stopping
///   early), expired leases from a partial index of running jobs, and
///   `row_number() OVER (PARTITION BY tenant …)` ranks that small set. It
///   first takes only `ceil(limit / tenants)` jobs per tenant, which is
///   exact whenever it fills the batch, and otherwise `limit` per tenant.
///   A claim of 100 with 100,000 jobs queued takes about a millisecond.
/// - **Completions, failures and heartbeats** are one `UPDATE` by primary
///   key with the attempt fence in the `WHERE` clause; only when it changes
///   nothing is the job looked up, to tell [`QueueError::LeaseLost`] from
///   [`QueueError::NotFound`]. [`JobQueue::complete_many`] (what workers
///   use) records a batch in one transaction, each entry fenced and answered
///   on its own.
/// - **Unique keys** are a partial unique index over `(tenant, unique_key)`
///   for jobs not cancelled; an enqueue whose key is taken inserts nothing
///   (`ON CONFLICT DO NOTHING`) and returns the holder.
/// - **Wake-ups**: enqueues, retries and failures in this process wake
///   [`JobQueue::wait_for_work`] at once; work enqueued by another process
///   is found when the waiter's timeout (the worker's poll interval) passes.
/// - **Batches** beyond the trait: [`SqliteQueue::enqueue_many`] and
///   [`SqliteQueue::complete_many`] do many jobs in one transaction.
///
/// Times are stored as INTEGER microseconds, ids as their hyphenated text
/// (which sorts like the UUIDs themselves, so `ORDER BY id` is enqueue
/// order).
///
/// ```
/// use saas_core::jobs::{ClaimRequest, JobQueue, NewJob};
/// use saas_store_sqlite::SqliteQueue;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let queue = SqliteQueue::open(dir.path())?;
/// let now = chrono::DateTime::from_timestamp_micros(chrono::Utc::now().timestamp_micros())
///     .expect("now");
///
/// let job = queue.enqueue(&NewJob::new("hello", serde_json::json!({"to": "world"})), now).await?;
/// let request = ClaimRequest {
///     worker: "w1".into(),
///     lease: std::time::Duration::from_secs(60),
///     limit: 10,
///     kinds: vec![],
/// };
/// let leased = queue.claim(&request, now).await?;
/// assert_eq!(leased[0].id, job.id);
/// queue.complete(job.id, leased[0].attempt, &serde_json::json!("done"), now).await?;
/// assert!(queue.job(job.id).await?.expect("stored").ready());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteQueue {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Arc<Db>,
    notify: Notify,
}

impl SqliteQueue {
    /// Opens (creating if needed) the queue under `root` with default
    /// options: creates the directory and creates or migrates
    /// `<root>/jobs.sqlite`.
    ///
    /// This does blocking file I/O; call it at start-up or from
    /// `tokio::task::spawn_blocking`. A [`crate::SqliteStore`] opens its
    /// queue itself: see [`crate::SqliteStore::queue`].
    pub fn open(root: impl AsRef<Path>) -> Result<SqliteQueue, SqliteError> {
        Self::with_options(root, &SqliteOptions::default())
    }

    /// Like [`SqliteQueue::open`], taking the busy timeout and the number of
    /// connections (`catalog_connections`: one writer, the rest readers)
    /// from `options`.
    pub fn with_options(
        root: impl AsRef<Path>,
        options: &SqliteOptions,
    ) -> Result<SqliteQueue, SqliteError> {
        Self::build(root.as_ref(), options, Arc::new(AtomicUsize::new(0)))
    }

    /// Opens the queue counting its connections in `gauge` (the store's).
    pub(crate) fn build(
        root: &Path,
        options: &SqliteOptions,
        gauge: Arc<AtomicUsize>,
    ) -> Result<SqliteQueue, SqliteError> {
        std::fs::create_dir_all(root).map_err(|source| SqliteError::Io {
            path: root.to_owned(),
            source,
        })?;
        let path = root.join(JOBS_FILE);
        let settings = ConnSettings {
            busy_timeout: options.busy_timeout,
        };
        {
            let mut conn = db::open_connection(&path, FileKind::Jobs, settings, false)?;
            schema::migrate(&mut conn, &path, schema::JOBS, &[])?;
        }
        let db = Db::new(
            path,
            FileKind::Jobs,
            settings,
            options.catalog_connections.max(2) - 1,
            gauge,
        );
        Ok(SqliteQueue {
            inner: Arc::new(Inner {
                db: Arc::new(db),
                notify: Notify::new(),
            }),
        })
    }

    /// The queue's database file.
    pub fn path(&self) -> &Path {
        self.inner.db.path()
    }

    /// Enqueues every job of `jobs` in one transaction, with the semantics of
    /// [`JobQueue::enqueue`] for each (in order: a later job whose unique key
    /// an earlier one took gets that job's id with `created = false`).
    /// All-or-nothing: when any job is invalid, nothing is stored.
    pub async fn enqueue_many(
        &self,
        jobs: &[NewJob],
        now: DateTime<Utc>,
    ) -> QueueResult<Vec<Enqueued>> {
        let rows = jobs
            .iter()
            .map(|job| Insert::new(job, now))
            .collect::<QueueResult<Vec<_>>>()?;
        self.store(rows, now).await
    }

    /// Inserts `rows` in one write transaction (each unless its unique key
    /// is taken) and wakes this process's waiters when any was stored.
    async fn store(&self, rows: Vec<Insert>, now: DateTime<Utc>) -> QueueResult<Vec<Enqueued>> {
        let at = micros(now);
        let out = finish(
            self.inner
                .db
                .write(move |conn| {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let mut out = Vec::with_capacity(rows.len());
                    for row in &rows {
                        match insert(&tx, row, at)? {
                            Ok(e) => out.push(e),
                            // Dropping the transaction rolls back the batch.
                            Err(refused) => return Ok(Err(refused)),
                        }
                    }
                    tx.commit()?;
                    Ok(Ok(out))
                })
                .await,
        )?;
        if out.iter().any(|e| e.created) {
            self.inner.notify.notify_waiters();
        }
        Ok(out)
    }

    /// How many jobs are stored in each status (statuses with none are
    /// left out), for metrics and operators. Reads every row: poll it
    /// seldom on a large queue.
    pub async fn counts(&self) -> QueueResult<Vec<(JobStatus, u64)>> {
        finish(
            self.inner
                .db
                .read(|conn| {
                    let mut stmt = conn.prepare_cached(&SQL.counts)?;
                    let rows = stmt.query_map([], |row| {
                        let code: i64 = row.get(0)?;
                        let status = status_from_code(code)
                            .ok_or_else(|| corrupt(0, Type::Integer, "status"))?;
                        let n: i64 = row.get(1)?;
                        Ok((status, u64::try_from(n).unwrap_or(0)))
                    })?;
                    Ok(Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?))
                })
                .await,
        )
    }
}

/// Turns the pool's result (backend failures outside, queue outcomes
/// inside) into the trait's.
fn finish<T>(r: R<QueueResult<T>>) -> QueueResult<T> {
    match r {
        Ok(r) => r,
        Err(Failure::Db(e)) => Err(QueueError::backend(e)),
        Err(Failure::Core(e)) => Err(QueueError::backend(e)),
    }
}

/// The stored form of a tenant group: the id, or `''` for platform jobs.
fn group(tenant: Option<TenantId>) -> String {
    tenant.map(|t| t.to_string()).unwrap_or_default()
}

/// A validated job, ready to insert.
#[derive(Debug)]
struct Insert {
    id: JobId,
    kind: String,
    tenant: String,
    payload: String,
    status: i64,
    priority: i32,
    max_attempts: u32,
    run_at: i64,
    unique_key: Option<String>,
    /// A holder of the key finished before this (micros) lets it go.
    key_expired_before: Option<i64>,
    max_pending: Option<u32>,
}

impl Insert {
    fn new(job: &NewJob, now: DateTime<Utc>) -> QueueResult<Insert> {
        let prepared = job.prepare(now)?;
        Ok(Insert {
            id: prepared.id,
            kind: job.kind.clone(),
            tenant: group(job.tenant),
            payload: json_text(&job.payload)?,
            status: job_code(prepared.status),
            priority: job.priority,
            max_attempts: job.max_attempts,
            run_at: micros(prepared.run_at),
            unique_key: job.unique_key.clone(),
            key_expired_before: prepared.key_expired_before.map(micros),
            max_pending: job.max_pending,
        })
    }
}

/// Inserts `row` unless its unique key is taken, in which case the holder
/// is returned, or its tenant group has `max_pending` pending jobs. Runs
/// inside the caller's write transaction, so the holder found is the one
/// that refused the insert, and no other writer counts pending jobs
/// meanwhile.
fn insert(conn: &Connection, row: &Insert, now: i64) -> R<QueueResult<Enqueued>> {
    if let Some(cut) = row.key_expired_before {
        conn.prepare_cached(&SQL.release_key)?
            .execute(params![row.tenant, row.unique_key, cut])?;
    }
    if let Some(limit) = row.max_pending {
        if row.unique_key.is_some()
            && let Some(holder) = conn
                .prepare_cached(&SQL.key_holder)?
                .query_row(params![row.tenant, row.unique_key], |r| job_id(r, 0))
                .optional()?
        {
            return Ok(Ok(Enqueued {
                id: holder,
                created: false,
            }));
        }
        let pending: i64 = conn
            .prepare_cached(&SQL.count_pending)?
            .query_row(params![row.tenant, limit], |r| r.get(0))?;
        if pending >= i64::from(limit) {
            return Ok(Err(QueueError::TooManyPending { limit }));
        }
    }
    let inserted = conn.prepare_cached(&SQL.insert)?.execute(params![
        row.id.to_string(),
        row.kind,
        row.tenant,
        row.payload,
        row.status,
        row.priority,
        row.max_attempts,
        row.run_at,
        row.unique_key,
        now,
    ])?;
    if inserted == 1 {
        return Ok(Ok(Enqueued {
            id: row.id,
            created: true,
        }));
    }
    // Only the unique key can have refused the row (the conflict target).
    let holder = conn
        .prepare_cached(&SQL.key_holder)?
        .query_row(params![row.tenant, row.unique_key], |r| job_id(r, 0))?;
    Ok(Ok(Enqueued {
        id: holder,
        created: false,
    }))
}

/// Columns of a full record, in the order [`record`] reads them.
macro_rules! record_columns {
    () => {
        "id, kind, tenant, payload, status, priority, attempts, \
         max_attempts, run_at, unique_key, worker, lease_until, result, last_error, created_at, \
         updated_at, started_at, finished_at"
    };
}

fn corrupt(idx: usize, ty: Type, column: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        idx,
        ty,
        Box::new(SqliteError::Corrupt {
            column: column.to_owned(),
        }),
    )
}

fn job_id(row: &Row<'_>, idx: usize) -> rusqlite::Result<JobId> {
    let s: String = row.get(idx)?;
    Uuid::parse_str(&s)
        .map(JobId)
        .map_err(|_| corrupt(idx, Type::Text, "id"))
}

fn tenant(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<TenantId>> {
    let s: String = row.get(idx)?;
    if s.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(&s)
        .map(|u| Some(TenantId(u)))
        .map_err(|_| corrupt(idx, Type::Text, "tenant"))
}

fn json(row: &Row<'_>, idx: usize, column: &str) -> rusqlite::Result<Value> {
    let s: String = row.get(idx)?;
    serde_json::from_str(&s).map_err(|_| corrupt(idx, Type::Text, column))
}

fn opt_json(row: &Row<'_>, idx: usize, column: &str) -> rusqlite::Result<Option<Value>> {
    match row.get::<_, Option<String>>(idx)? {
        None => Ok(None),
        Some(s) => serde_json::from_str(&s)
            .map(Some)
            .map_err(|_| corrupt(idx, Type::Text, column)),
    }
}

fn int<T: TryFrom<i64>>(row: &Row<'_>, idx: usize, column: &str) -> rusqlite::Result<T> {
    let v: i64 = row.get(idx)?;
    T::try_from(v).map_err(|_| corrupt(idx, Type::Integer, column))
}

fn status(row: &Row<'_>, idx: usize) -> rusqlite::Result<JobStatus> {
    let code: i64 = row.get(idx)?;
    status_from_code(code).ok_or_else(|| corrupt(idx, Type::Integer, "status"))
}

/// A record read from [`record_columns`].
fn record(row: &Row<'_>) -> rusqlite::Result<JobRecord> {
    Ok(JobRecord {
        id: job_id(row, 0)?,
        kind: row.get(1)?,
        tenant: tenant(row, 2)?,
        payload: json(row, 3, "payload")?,
        status: status(row, 4)?,
        priority: int(row, 5, "priority")?,
        attempts: int(row, 6, "attempts")?,
        max_attempts: int(row, 7, "max_attempts")?,
        run_at: ts(row, 8)?,
        unique_key: row.get(9)?,
        worker: row.get(10)?,
        lease_until: opt_ts(row, 11)?,
        result: opt_json(row, 12, "result")?,
        last_error: row.get(13)?,
        created_at: ts(row, 14)?,
        updated_at: ts(row, 15)?,
        started_at: opt_ts(row, 16)?,
        finished_at: opt_ts(row, 17)?,
    })
}

/// The tenants with waiting jobs, as a loose index scan: one `jobs_waiting`
/// seek per tenant instead of reading every waiting job to find the
/// distinct tenants.
macro_rules! waiting_tenants {
    () => {
        "tenants(t) AS (
             SELECT (SELECT min(tenant) FROM jobs WHERE status < {running})
             UNION ALL
             SELECT (SELECT min(tenant) FROM jobs WHERE status < {running} AND tenant > tenants.t)
             FROM tenants WHERE tenants.t IS NOT NULL
         )"
    };
}

/// Declares the queue's statements: templates naming job statuses as
/// `{status}` placeholders (see `schema::render`), rendered once, on first
/// use, into the text every call then prepares (and finds in the cache).
macro_rules! statements {
    ($($(#[$doc:meta])* $name:ident = $template:expr;)*) => {
        /// The queue's statements, rendered.
        struct Statements {
            $($(#[$doc])* $name: String,)*
        }

        static SQL: LazyLock<Statements> = LazyLock::new(|| Statements {
            $($name: schema::render(&$template),)*
        });
    };
}

statements! {
    /// Stores a job unless its unique key is taken.
    insert = "INSERT INTO jobs (id, kind, tenant, payload, status, priority, attempts,
                 max_attempts, run_at, unique_key, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9, ?10, ?10)
             ON CONFLICT (tenant, unique_key) WHERE unique_key IS NOT NULL AND status <> {cancelled}
             DO NOTHING";
    /// Takes a windowed unique key (`?2`) from its holder in group `?1`
    /// when the holder finished before `?3`.
    release_key = "UPDATE jobs SET unique_key = NULL
             WHERE tenant = ?1 AND unique_key = ?2 AND unique_key IS NOT NULL
               AND status <> {cancelled} AND finished_at < ?3";
    /// Pending jobs of a tenant group `?1`, counted up to `?2`.
    count_pending = "SELECT count(*) FROM (SELECT 1 FROM jobs
             WHERE tenant = ?1 AND status <= {running} LIMIT ?2)";
    /// The job holding a unique key in a tenant group.
    key_holder = "SELECT id FROM jobs
             WHERE tenant = ?1 AND unique_key = ?2 AND unique_key IS NOT NULL AND status <> {cancelled}";
    /// Turns expired leases on their final attempt into dead jobs (first
    /// step of a claim). `?1` now, `?2` the kinds as a JSON array or NULL
    /// for any.
    expire_final = "UPDATE jobs
     SET status = {dead}, last_error = ?3, lease_until = NULL, finished_at = ?1, updated_at = ?1
     WHERE status = {running} AND lease_until <= ?1 AND attempts >= max_attempts
       AND (?2 IS NULL OR kind IN (SELECT value FROM json_each(?2)))";
    /// How many tenants have waiting jobs.
    count_tenants = concat!(
        "WITH RECURSIVE ",
        waiting_tenants!(),
        " SELECT count(*) FROM tenants WHERE t IS NOT NULL"
    );
    /// The fair pick: ids of up to `?3` ready jobs in claim order, among
    /// the jobs ranked at most `?4` in their tenant. `?1` now, `?2` the
    /// kinds as a JSON array or NULL for any.
    ///
    /// `candidates` holds each tenant's first `?4` ready waiting jobs (one
    /// walk of `jobs_waiting` per tenant, in claim order, stopped at `?4`)
    /// plus every expired lease; the window ranks them per tenant and the
    /// round-robin order picks. Within a tenant the candidates are its true
    /// first `?4` ready jobs (an expired lease ranked after them may be
    /// among the candidates with too small a rank, hence `rank <= ?4`), so
    /// with `?4 = ?3` the pick is exact (no rank above the batch size can be
    /// picked), and with a smaller `?4` it is exact whenever it fills the
    /// batch: every job left out ranks after all candidates.
    pick = concat!(
        "WITH RECURSIVE ",
        waiting_tenants!(),
        ",
     candidates(id, tenant, priority, run_at) AS (
         SELECT j.id, j.tenant, j.priority, j.run_at
         FROM tenants, jobs AS j
         WHERE tenants.t IS NOT NULL AND j.id IN (
             SELECT w.id FROM jobs AS w
             WHERE w.tenant = tenants.t AND w.status < {running} AND w.run_at <= ?1
               AND (?2 IS NULL OR w.kind IN (SELECT value FROM json_each(?2)))
             ORDER BY w.priority DESC, w.run_at, w.id
             LIMIT ?4)
         UNION ALL
         SELECT id, tenant, priority, run_at FROM jobs
         WHERE status = {running} AND lease_until <= ?1
           AND (?2 IS NULL OR kind IN (SELECT value FROM json_each(?2)))
     ),
     ranked AS (
         SELECT id, priority, run_at,
                row_number() OVER (PARTITION BY tenant ORDER BY priority DESC, run_at, id) AS rank
         FROM candidates
     )
     SELECT id FROM ranked WHERE rank <= ?4
     ORDER BY rank, priority DESC, run_at, id LIMIT ?3"
    );
    /// Leases one picked job. `?1` lease end, `?2` worker, `?3` now, `?4` id.
    lease = "UPDATE jobs
     SET status = {running}, attempts = attempts + 1, lease_until = ?1, worker = ?2,
         started_at = ?3, updated_at = ?3
     WHERE id = ?4
     RETURNING id, kind, payload, tenant, priority, attempts, max_attempts, created_at";
    /// Extends a lease (fenced).
    heartbeat = "UPDATE jobs SET lease_until = ?3
                         WHERE id = ?1 AND status = {running} AND attempts = ?2";
    /// Records a success (fenced).
    complete = "UPDATE jobs
     SET status = {succeeded}, result = ?3, lease_until = NULL, finished_at = ?4, updated_at = ?4
     WHERE id = ?1 AND status = {running} AND attempts = ?2";
    /// Records a failure (fenced). SET expressions all see the row as it
    /// was, so the three CASEs agree on whether attempts are left.
    fail = "UPDATE jobs
                         SET last_error = ?3, lease_until = NULL, updated_at = ?5,
                             status = CASE WHEN ?4 IS NOT NULL AND attempts < max_attempts
                                           THEN {retrying} ELSE {dead} END,
                             run_at = CASE WHEN ?4 IS NOT NULL AND attempts < max_attempts
                                           THEN ?4 ELSE run_at END,
                             finished_at = CASE WHEN ?4 IS NOT NULL AND attempts < max_attempts
                                                THEN finished_at ELSE ?5 END
                         WHERE id = ?1 AND status = {running} AND attempts = ?2";
    /// Whether a job exists.
    exists = "SELECT 1 FROM jobs WHERE id = ?1";
    /// A job's status.
    status_of = "SELECT status FROM jobs WHERE id = ?1";
    /// A job's record.
    get = concat!("SELECT ", record_columns!(), " FROM jobs WHERE id = ?1");
    /// Cancels a waiting job.
    cancel = concat!(
        "UPDATE jobs SET status = {cancelled}, finished_at = ?2, updated_at = ?2
                             WHERE id = ?1 AND status < {running}
                             RETURNING ",
        record_columns!()
    );
    /// Makes a dead job runnable again.
    retry = format!(
        "UPDATE jobs
                             SET max_attempts = min(attempts + ?2, {max}), run_at = ?3,
                                 status = CASE WHEN ?3 > ?4 THEN {{scheduled}} ELSE {{queued}} END,
                                 finished_at = NULL, result = NULL, updated_at = ?4
                             WHERE id = ?1 AND status = {{dead}}
                             RETURNING {columns}",
        max = u32::MAX,
        columns = record_columns!()
    );
    /// Deletes a chunk of finished jobs.
    prune = "DELETE FROM jobs WHERE rowid IN (
                                     SELECT rowid FROM jobs
                                     WHERE finished_at < ?1 AND status >= {succeeded}
                                     LIMIT ?2)";
    /// Jobs by status.
    counts = "SELECT status, count(*) FROM jobs GROUP BY status ORDER BY status";
    /// Gives a running job back (fenced): queued now, the attempt not counted.
    release = format!(
        "UPDATE jobs
         SET status = {{queued}}, run_at = ?3, lease_until = NULL,
             max_attempts = min(max_attempts + 1, {max}), updated_at = ?3
         WHERE id = ?1 AND status = {{running}} AND attempts = ?2",
        max = u32::MAX
    );
    /// A page of jobs, newest first. `?1` status code, `?2` kind, `?3`
    /// tenant group, `?4` the id to list before (each NULL for any), `?5`
    /// the limit. Walks the primary key backwards, filtering.
    list = concat!(
        "SELECT ",
        record_columns!(),
        " FROM jobs
         WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR kind = ?2)
           AND (?3 IS NULL OR tenant = ?3) AND (?4 IS NULL OR id < ?4)
         ORDER BY id DESC LIMIT ?5"
    );
    /// Jobs by kind and status.
    stats = "SELECT kind, status, count(*) FROM jobs GROUP BY kind, status";
}

/// Picks the batch (see `Statements::pick`). Many tenants with many ready jobs
/// would mean ranking `tenants × limit` candidates for `limit` picks, so
/// the first try takes only the ranks a full round-robin batch can reach,
/// `ceil(limit / tenants)`; if that does not fill the batch (few tenants
/// have jobs ready, or some have only a few), the exact pick follows.
fn pick(conn: &Connection, now: i64, kinds: &Option<String>, limit: i64) -> R<Vec<String>> {
    let run = |cap: i64| -> R<Vec<String>> {
        Ok(conn
            .prepare_cached(&SQL.pick)?
            .query_map(params![now, kinds, limit, cap], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?)
    };
    if limit <= 0 {
        return Ok(Vec::new());
    }
    let tenants: i64 = conn
        .prepare_cached(&SQL.count_tenants)?
        .query_row([], |row| row.get(0))?;
    if tenants > 1 {
        let cap = (limit + tenants - 1) / tenants;
        if cap < limit {
            let ids = run(cap)?;
            if ids.len() as i64 == limit {
                return Ok(ids);
            }
        }
    }
    run(limit)
}

/// After a fenced statement changed nothing: lease lost, or no such job.
fn fenced_off(conn: &Connection, id: JobId, attempt: u32) -> R<QueueError> {
    let exists = conn
        .prepare_cached(&SQL.exists)?
        .query_row([id.to_string()], |_| Ok(()))
        .optional()?
        .is_some();
    Ok(QueueError::fenced_off(id, attempt, exists))
}

/// Applies a statement fenced by `id = ?1 AND status = running AND attempts =
/// ?2`; maps "changed nothing" to the right error.
fn fenced(
    conn: &Connection,
    sql: &str,
    id: JobId,
    attempt: u32,
    rest: &[&dyn rusqlite::ToSql],
) -> R<QueueResult<()>> {
    let id_text = id.to_string();
    let mut args: Vec<&dyn rusqlite::ToSql> = vec![&id_text, &attempt];
    args.extend_from_slice(rest);
    let changed = conn.prepare_cached(sql)?.execute(args.as_slice())?;
    if changed == 1 {
        Ok(Ok(()))
    } else {
        Ok(Err(fenced_off(conn, id, attempt)?))
    }
}

fn complete_one(
    conn: &Connection,
    id: JobId,
    attempt: u32,
    result: &str,
    now: i64,
) -> R<QueueResult<()>> {
    fenced(conn, &SQL.complete, id, attempt, &[&result, &now])
}

/// The statement refused an action on a job in the wrong status: which
/// error that is.
fn refused(conn: &Connection, id: JobId, action: &'static str) -> R<QueueError> {
    let found = conn
        .prepare_cached(&SQL.status_of)?
        .query_row([id.to_string()], |row| status(row, 0))
        .optional()?;
    Ok(QueueError::refused(id, action, found))
}

/// Runs a statement guarded by the job's status that returns the changed
/// record, in its own write transaction; when it changed nothing, the
/// error [`refused`] finds.
fn guarded(
    conn: &mut Connection,
    sql: &str,
    args: impl rusqlite::Params,
    id: JobId,
    action: &'static str,
) -> R<QueueResult<JobRecord>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let done = tx.prepare_cached(sql)?.query_row(args, record).optional()?;
    let out = match done {
        Some(r) => Ok(r),
        None => Err(refused(&tx, id, action)?),
    };
    tx.commit()?;
    Ok(out)
}

#[async_trait]
impl JobQueue for SqliteQueue {
    async fn enqueue(&self, job: &NewJob, now: DateTime<Utc>) -> QueueResult<Enqueued> {
        let row = Insert::new(job, now)?;
        // One row in, one outcome out.
        self.store(vec![row], now).await?.pop().ok_or_else(|| {
            QueueError::backend(std::io::Error::other("an enqueue reported no outcome"))
        })
    }

    async fn claim(
        &self,
        request: &ClaimRequest,
        now: DateTime<Utc>,
    ) -> QueueResult<Vec<LeasedJob>> {
        let lease_until = request.lease_until(now)?;
        let kinds = if request.kinds.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&request.kinds).map_err(QueueError::backend)?)
        };
        let worker = request.worker.clone();
        let limit = i64::from(request.limit);
        let (at, until) = (micros(now), micros(lease_until));
        finish(
            self.inner
                .db
                .write(move |conn| {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    tx.prepare_cached(&SQL.expire_final)?.execute(params![
                        at,
                        kinds,
                        LEASE_EXPIRED_ON_FINAL_ATTEMPT
                    ])?;
                    let ids = pick(&tx, at, &kinds, limit)?;
                    let mut out = Vec::with_capacity(ids.len());
                    {
                        let mut lease = tx.prepare_cached(&SQL.lease)?;
                        for id in &ids {
                            out.push(lease.query_row(params![until, worker, at, id], |row| {
                                Ok(LeasedJob {
                                    id: job_id(row, 0)?,
                                    kind: row.get(1)?,
                                    payload: json(row, 2, "payload")?,
                                    tenant: tenant(row, 3)?,
                                    priority: int(row, 4, "priority")?,
                                    attempt: int(row, 5, "attempts")?,
                                    max_attempts: int(row, 6, "max_attempts")?,
                                    lease_until,
                                    created_at: ts(row, 7)?,
                                })
                            })?);
                        }
                    }
                    tx.commit()?;
                    Ok(Ok(out))
                })
                .await,
        )
    }

    async fn heartbeat(
        &self,
        id: JobId,
        attempt: u32,
        lease_until: DateTime<Utc>,
    ) -> QueueResult<()> {
        let until = micros(lease_until);
        finish(
            self.inner
                .db
                .write(move |conn| fenced(conn, &SQL.heartbeat, id, attempt, &[&until]))
                .await,
        )
    }

    async fn complete(
        &self,
        id: JobId,
        attempt: u32,
        result: &Value,
        now: DateTime<Utc>,
    ) -> QueueResult<()> {
        // Workers complete in batches through `complete_many`; one
        // completion is one fenced update.
        let result = json_text(result)?;
        let at = micros(now);
        finish(
            self.inner
                .db
                .write(move |conn| complete_one(conn, id, attempt, &result, at))
                .await,
        )
    }

    // One write transaction for the whole batch.
    async fn complete_many(
        &self,
        done: &[(JobId, u32, Value)],
        now: DateTime<Utc>,
    ) -> QueueResult<Vec<QueueResult<()>>> {
        let rows = done
            .iter()
            .map(|(id, attempt, result)| Ok((*id, *attempt, json_text(result)?)))
            .collect::<QueueResult<Vec<_>>>()?;
        let at = micros(now);
        finish(
            self.inner
                .db
                .write(move |conn| {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let mut out = Vec::with_capacity(rows.len());
                    for (id, attempt, result) in &rows {
                        out.push(complete_one(&tx, *id, *attempt, result, at)?);
                    }
                    tx.commit()?;
                    Ok(Ok(out))
                })
                .await,
        )
    }

    async fn fail(
        &self,
        id: JobId,
        attempt: u32,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> QueueResult<()> {
        let error = error.to_owned();
        let (retry, at) = (opt_micros(retry_at), micros(now));
        finish(
            self.inner
                .db
                .write(move |conn| fenced(conn, &SQL.fail, id, attempt, &[&error, &retry, &at]))
                .await,
        )?;
        self.inner.notify.notify_waiters();
        Ok(())
    }

    async fn job(&self, id: JobId) -> QueueResult<Option<JobRecord>> {
        finish(
            self.inner
                .db
                .read(move |conn| {
                    let found = conn
                        .prepare_cached(&SQL.get)?
                        .query_row([id.to_string()], record)
                        .optional()?;
                    Ok(Ok(found))
                })
                .await,
        )
    }

    async fn cancel(&self, id: JobId, now: DateTime<Utc>) -> QueueResult<JobRecord> {
        let at = micros(now);
        finish(
            self.inner
                .db
                .write(move |conn| {
                    guarded(conn, &SQL.cancel, params![id.to_string(), at], id, "cancel")
                })
                .await,
        )
    }

    async fn retry(
        &self,
        id: JobId,
        extra_attempts: u32,
        run_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> QueueResult<JobRecord> {
        validate_extra_attempts(extra_attempts)?;
        let (run, at) = (micros(run_at), micros(now));
        let record = finish(
            self.inner
                .db
                .write(move |conn| {
                    let args = params![id.to_string(), extra_attempts, run, at];
                    guarded(conn, &SQL.retry, args, id, "retry")
                })
                .await,
        )?;
        self.inner.notify.notify_waiters();
        Ok(record)
    }

    async fn prune(&self, before: DateTime<Utc>) -> QueueResult<u64> {
        let cutoff = micros(before);
        let mut total = 0u64;
        loop {
            let n = finish(
                self.inner
                    .db
                    .write(move |conn| {
                        let n = conn
                            .prepare_cached(&SQL.prune)?
                            .execute(params![cutoff, PRUNE_CHUNK])?;
                        Ok(Ok(n))
                    })
                    .await,
            )?;
            total += n as u64;
            if (n as i64) < PRUNE_CHUNK {
                return Ok(total);
            }
        }
    }

    async fn release(&self, id: JobId, attempt: u32, now: DateTime<Utc>) -> QueueResult<()> {
        let at = micros(now);
        finish(
            self.inner
                .db
                .write(move |conn| fenced(conn, &SQL.release, id, attempt, &[&at]))
                .await,
        )?;
        self.inner.notify.notify_waiters();
        Ok(())
    }

    async fn list(&self, filter: &JobFilter) -> QueueResult<Vec<JobRecord>> {
        filter.validate()?;
        let status = filter.status.map(job_code);
        let kind = filter.kind.clone();
        let tenant = filter.tenant.map(|t| group(Some(t)));
        let before = filter.before.map(|b| b.to_string());
        let limit = i64::from(filter.limit);
        finish(
            self.inner
                .db
                .read(move |conn| {
                    let mut stmt = conn.prepare_cached(&SQL.list)?;
                    let rows =
                        stmt.query_map(params![status, kind, tenant, before, limit], record)?;
                    Ok(Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?))
                })
                .await,
        )
    }

    async fn stats(&self) -> QueueResult<Vec<JobCount>> {
        let mut counts = finish(
            self.inner
                .db
                .read(|conn| {
                    let mut stmt = conn.prepare_cached(&SQL.stats)?;
                    let rows = stmt.query_map([], |row| {
                        Ok(JobCount {
                            kind: row.get(0)?,
                            status: status(row, 1)?,
                            count: int(row, 2, "count")?,
                        })
                    })?;
                    Ok(Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?))
                })
                .await,
        )?;
        sort_counts(&mut counts);
        Ok(counts)
    }

    async fn wait_for_work(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.inner.notify.notified()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query plan as `(id, parent, detail)` rows.
    fn plan(
        conn: &Connection,
        sql: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Vec<(i64, i64, String)> {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("explain");
        stmt.query_map(args, |row| Ok((row.get(0)?, row.get(1)?, row.get(3)?)))
            .expect("query")
            .map(|r| r.expect("row"))
            .collect()
    }

    /// The plan indented as the sqlite3 shell shows it.
    fn show(plan: &[(i64, i64, String)]) -> String {
        let mut depth = std::collections::HashMap::new();
        let mut out = Vec::new();
        for (id, parent, detail) in plan {
            let d = depth.get(parent).map_or(0, |d| d + 1);
            depth.insert(*id, d);
            out.push(format!("{}{detail}", "  ".repeat(d)));
        }
        out.join("\n")
    }

    fn conn() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("dir");
        let queue = SqliteQueue::open(dir.path()).expect("queue");
        let conn = db::open_connection(
            queue.path(),
            FileKind::Jobs,
            ConnSettings {
                busy_timeout: Duration::from_secs(1),
            },
            false,
        )
        .expect("open");
        (dir, conn)
    }

    /// The statements on the hot paths use the indexes meant for them, and
    /// the pick never sorts or scans the whole table.
    #[test]
    fn hot_statements_use_their_indexes() {
        let (_dir, conn) = conn();
        let kinds: Option<String> = Some("[\"a\"]".into());
        let pick = plan(&conn, &SQL.pick, &[&0i64, &kinds, &100i64, &10i64]);
        let shown = show(&pick);
        println!("{shown}");
        let has = |needle: &str| pick.iter().any(|(_, _, d)| d.contains(needle));
        assert!(
            has("SEARCH jobs USING INDEX jobs_waiting (tenant>?)"),
            "the loose scan of tenants seeks: {shown}"
        );
        assert!(
            has("SEARCH w USING INDEX jobs_waiting (tenant=?)"),
            "each tenant's walk seeks: {shown}"
        );
        let walk = pick
            .iter()
            .find(|(_, _, d)| d.starts_with("CORRELATED LIST SUBQUERY"))
            .map(|(id, _, _)| *id)
            .expect("the per-tenant walk is a correlated subquery");
        assert!(
            !pick
                .iter()
                .any(|(_, parent, d)| *parent == walk && d.contains("TEMP B-TREE")),
            "each tenant's walk reads the index in claim order, without sorting: {shown}"
        );
        assert!(
            has("SEARCH jobs USING INDEX jobs_leased (lease_until<?)"),
            "expired leases by index: {shown}"
        );
        assert!(
            !pick
                .iter()
                .any(|(_, _, d)| ["SCAN j", "SCAN w", "SCAN jobs"]
                    .iter()
                    .any(|scan| d == scan || d.starts_with(&format!("{scan} ")))),
            "no scan of the jobs table: {shown}"
        );
        let expire = show(&plan(&conn, &SQL.expire_final, &[&0i64, &kinds, &"x"]));
        assert!(expire.contains("jobs_leased"), "{expire}");
        let complete = show(&plan(&conn, &SQL.complete, &[&"id", &1i64, &"1", &0i64]));
        assert!(
            complete.contains("sqlite_autoindex_jobs_1 (id=?)"),
            "{complete}"
        );
        let holder = show(&plan(&conn, &SQL.key_holder, &[&"", &"k"]));
        assert!(holder.contains("jobs_unique_key"), "{holder}");
    }

    #[test]
    fn status_codes_round_trip() {
        for s in JobStatus::ALL {
            assert_eq!(status_from_code(job_code(*s)), Some(*s));
            assert_eq!(s.is_waiting(), job_code(*s) < 3, "{s}");
            assert_eq!(s.is_finished(), job_code(*s) >= 4, "{s}");
        }
        assert_eq!(status_from_code(7), None);
    }
}
