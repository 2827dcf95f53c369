//! The durable queue contract: [`JobQueue`] and the values it stores
//! (written in `values.rs`, re-exported here: this is their path).
//!
//! Backends (`saas-store-postgres`, `saas-store-sqlite`) implement
//! [`JobQueue`]; [`super::memory::MemoryQueue`] is the reference model, and
//! the workspace's unpublished test kit (the `tests` crate) holds the
//! behaviour suite every backend must pass. The semantics below are the
//! contract; where a backend and `MemoryQueue` disagree, `MemoryQueue` is
//! right.
//!
//! # Time
//!
//! Every time a queue compares against ("now", lease ends, run-at times)
//! comes from the **caller** — the worker's or scheduler's [`crate::clock::Clock`],
//! truncated to microseconds. Backends never read their own clock. This
//! keeps backends identical and lets the conformance suite simulate hours
//! of leases and retries in milliseconds. Store and return times exactly.
//!
//! # States
//!
//! ```text
//! enqueue ──► queued / scheduled ──claim──► running ──complete──► succeeded
//!                 ▲     │                     │  │
//!                 │     └──cancel──► cancelled │  └─fail(retry_at)──► retrying ──claim──► running …
//!                 │                            └─fail(None) / out of attempts──► dead
//!                 └──────────────────retry(dead job)────────────────────────────────┘
//!                 ▲                           │
//!                 └──────release(running)─────┘   (a worker shutting down gives its job back)
//! ```
//!
//! `scheduled` is `queued` with a `run_at` that was in the future at enqueue
//! (or retry) time; both are claimable once `run_at <= now`. `retrying` is a
//! failed attempt waiting for its `run_at`. `succeeded`, `dead` and
//! `cancelled` are *finished* (`finished_at` set).
//!
//! # Claiming
//!
//! A job is **ready** at `now` when it matches the claim's kind filter and
//! either (a) its status is queued, scheduled or retrying and
//! `run_at <= now`, or (b) its status is running and `lease_until <= now`
//! (its worker is presumed dead). Before handing out jobs, a claim turns
//! every ready job of kind (b) whose `attempts >= max_attempts` into `dead`
//! (last error `"lease expired on the final attempt"`, `finished_at = now`)
//! instead of running it again.
//!
//! **Fairness.** Tenants are groups (platform jobs, tenant `None`, are one
//! more group). Within a group, ready jobs are ranked 1, 2, 3 … by
//! `priority DESC, run_at ASC, id ASC`. A claim returns the first `limit`
//! ready jobs ordered by `(rank ASC, priority DESC, run_at ASC, id ASC)` —
//! i.e. round-robin across groups: every group's best job comes before any
//! group's second job. So however many jobs tenant A has waiting, a job that
//! tenant B enqueues afterwards has rank 1 and is claimed in the next batch
//! (unless more groups than `limit` have rank-1 jobs, in which case within
//! `ceil(groups / limit)` batches). In SQL: `row_number() OVER (PARTITION BY
//! tenant ORDER BY priority DESC, run_at, id)`; to avoid ranking every ready
//! row, rank only each group's first `limit` jobs (a `LATERAL … LIMIT` per
//! group gives the same result because no rank above `limit` can be picked).
//! Concurrent claimers must never receive the same job for the same attempt
//! (`FOR UPDATE SKIP LOCKED`, or a write lock); a job skipped because another
//! claimer holds it may be replaced by the next one in the order.
//!
//! Each claimed job gets `status = running`, `attempts += 1` (the new value is
//! the lease's **attempt number**), `lease_until = now + lease`,
//! `worker = worker id`, `started_at = now`, `updated_at = now`.
//!
//! # Fencing
//!
//! [`JobQueue::heartbeat`], [`JobQueue::complete`] and [`JobQueue::fail`]
//! carry the attempt number from the claim. They apply only when the job is
//! `running` **and** its `attempts` equals that number; otherwise they change
//! nothing and return [`QueueError::LeaseLost`] (or [`QueueError::NotFound`]
//! when the job does not exist). An expired lease that nobody has re-claimed
//! yet is still the holder's: its heartbeat, completion or failure applies.
//! `attempts` never decreases (not even on [`JobQueue::retry`]), so an
//! attempt number is never reused and a stale worker can never act on a
//! later attempt.
//!
//! # Unique keys
//!
//! A job may carry a unique key. Keys are unique **per tenant group** (tenant
//! `None` equals `None`) among stored jobs that are **not cancelled** —
//! including finished ones, until [`JobQueue::prune`] deletes them. Enqueueing
//! a job whose key is taken stores nothing and returns the holder's id with
//! `created = false`. Keeping the key after success is what makes the
//! scheduler's once-per-period guarantee hold when a period's job finishes
//! before a slower scheduler process gets to it; a dead job keeps its key
//! too (re-run it with [`JobQueue::retry`]). Concurrent enqueues with one key
//! create exactly one job (a partial unique index, `NULLS NOT DISTINCT` on
//! the tenant, with `INSERT … ON CONFLICT DO NOTHING` then a select).
//!
//! A key given with a window ([`NewJob::unique_for`]) is held only while its
//! job is pending (waiting or running) or finished less than the window
//! ago: an enqueue that finds the key held by a job finished before that
//! ([`PreparedJob::key_expired_before`]) takes the key from it (the old
//! job's `unique_key` becomes `None`) and stores the new job.
//!
//! # Pending cap
//!
//! A job may carry a cap ([`NewJob::max_pending`]): when its tenant group
//! already has that many **pending** jobs ([`JobStatus::is_pending`]), the
//! enqueue stores nothing and fails with [`QueueError::TooManyPending`].
//! A job whose unique key is held returns the holder before the cap is
//! looked at. Concurrent capped enqueues for one tenant never overshoot
//! the cap (they are serialized per tenant).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::listing::{JobCount, JobFilter};
pub use super::values::{
    ClaimRequest, Enqueued, JobId, JobRecord, JobStatus, LEASE_EXPIRED_ON_FINAL_ATTEMPT, LeasedJob,
    MAX_ATTEMPTS_LIMIT, MAX_KIND_LEN, MAX_UNIQUE_KEY_LEN, NewJob, PreparedJob, QueueError,
    QueueResult, json_text, validate_extra_attempts, validate_kind,
};

/// A durable job queue. Implemented by each backend; used as
/// `Arc<dyn JobQueue>`. Read the module docs: they are the contract.
///
/// # Implementing a queue
///
/// ```
/// use std::sync::Arc;
/// use saas_core::jobs::{JobQueue, memory::MemoryQueue};
///
/// // A backend is a type implementing `JobQueue`. `MemoryQueue` is the
/// // reference; the test kit's JobQueue suite checks a backend against
/// // the same behaviour.
/// let queue: Arc<dyn JobQueue> = Arc::new(MemoryQueue::new());
/// # let _ = queue;
/// ```
#[async_trait]
pub trait JobQueue: fmt::Debug + Send + Sync + 'static {
    /// Stores a job (after [`NewJob::validate`]). Status is `scheduled` when
    /// `run_at > now`, else `queued` (with `run_at = now` when absent). When
    /// the unique key is taken (module docs), stores nothing and returns the
    /// holder with `created = false`.
    async fn enqueue(&self, job: &NewJob, now: DateTime<Utc>) -> QueueResult<Enqueued>;

    /// Leases up to `request.limit` ready jobs of `request.kinds`, fairly
    /// across tenants: rank each tenant's ready jobs by `priority DESC,
    /// run_at, id`, then take jobs by `(rank, priority DESC, run_at, id)` —
    /// round-robin, so a tenant's flood cannot delay another tenant's first
    /// job past the next batch. First turns expired leases on their final
    /// attempt into `dead`. Each claimed job: `running`, `attempts += 1`
    /// (returned as the attempt number), `lease_until = now + lease`. Details
    /// in the module docs, "Claiming". Empty when nothing is ready.
    async fn claim(
        &self,
        request: &ClaimRequest,
        now: DateTime<Utc>,
    ) -> QueueResult<Vec<LeasedJob>>;

    /// Extends a lease to `lease_until`. Fenced by `attempt`.
    async fn heartbeat(
        &self,
        id: JobId,
        attempt: u32,
        lease_until: DateTime<Utc>,
    ) -> QueueResult<()>;

    /// Records success and the result (`succeeded`, `finished_at = now`,
    /// lease cleared, `last_error` kept). Fenced by `attempt`.
    async fn complete(
        &self,
        id: JobId,
        attempt: u32,
        result: &Value,
        now: DateTime<Utc>,
    ) -> QueueResult<()>;

    /// Records the success of several leased jobs: each `(id, attempt,
    /// result)` as [`JobQueue::complete`] would, fenced one by one, with one
    /// outcome per entry, in order; a fenced-off entry does not stop the
    /// others. `Err` only when nothing could be attempted (the backend is
    /// unreachable). Of entries naming the same job, at most one succeeds.
    ///
    /// Workers complete through this, so a backend that writes the whole
    /// batch in one statement or transaction (both shipped backends do)
    /// pays one commit for many jobs. The default completes one by one.
    async fn complete_many(
        &self,
        done: &[(JobId, u32, Value)],
        now: DateTime<Utc>,
    ) -> QueueResult<Vec<QueueResult<()>>> {
        let mut out = Vec::with_capacity(done.len());
        for (id, attempt, result) in done {
            out.push(self.complete(*id, *attempt, result, now).await);
        }
        Ok(out)
    }

    /// Records a failed attempt: with `retry_at` and attempts left
    /// (`attempts < max_attempts`), `retrying` with `run_at = retry_at`;
    /// otherwise `dead` with `finished_at = now`. `last_error = error` and the
    /// lease is cleared either way. Fenced by `attempt`.
    async fn fail(
        &self,
        id: JobId,
        attempt: u32,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> QueueResult<()>;

    /// The job with `id`, in any status.
    async fn job(&self, id: JobId) -> QueueResult<Option<JobRecord>>;

    /// Cancels a queued, scheduled or retrying job (`cancelled`,
    /// `finished_at = now`; its unique key is released). Running and finished
    /// jobs: [`QueueError::InvalidState`], unchanged.
    async fn cancel(&self, id: JobId, now: DateTime<Utc>) -> QueueResult<JobRecord>;

    /// Makes a dead job runnable again: `max_attempts = attempts +
    /// extra_attempts`, `run_at`, status `scheduled` if `run_at > now` else
    /// `queued`, `finished_at` and `result` cleared, `last_error` kept,
    /// `attempts` unchanged (attempt numbers are never reused). Other
    /// statuses: [`QueueError::InvalidState`].
    async fn retry(
        &self,
        id: JobId,
        extra_attempts: u32,
        run_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> QueueResult<JobRecord>;

    /// Deletes finished jobs (succeeded, dead, cancelled) with
    /// `finished_at < before`; returns how many.
    async fn prune(&self, before: DateTime<Utc>) -> QueueResult<u64>;

    /// Gives a running job back unfinished, at once rather than when its
    /// lease runs out (a worker shutting down): `queued` with `run_at =
    /// now`, lease cleared, `updated_at = now`. The released attempt does
    /// not count against the job: `max_attempts` grows by one, since
    /// `attempts` never decreases. Fenced by `attempt`.
    async fn release(&self, id: JobId, attempt: u32, now: DateTime<Utc>) -> QueueResult<()>;

    /// The jobs `filter` selects, newest first (by id), at most
    /// `filter.limit` ([`JobFilter::validate`] first). Reads are by index
    /// where the backend has one; operators list, workers never do.
    async fn list(&self, filter: &JobFilter) -> QueueResult<Vec<JobRecord>>;

    /// How many stored jobs each kind has in each status (empty groups left
    /// out), by kind then status in [`JobStatus::ALL`] order
    /// ([`super::listing::sort_counts`]). Reads every job: poll it seldom.
    async fn stats(&self) -> QueueResult<Vec<JobCount>>;

    /// Waits until work may have arrived (an enqueue, a retry, a finished
    /// lease — as far as the backend can tell, e.g. PostgreSQL `LISTEN`) or
    /// `timeout` passes, whichever is first. Spurious wake-ups are fine:
    /// workers poll with this as their sleep. The default just sleeps.
    async fn wait_for_work(&self, timeout: Duration) {
        tokio::time::sleep(timeout).await;
    }
}
