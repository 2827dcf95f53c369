//! The durable queue contract: [`JobQueue`] and the values it stores.
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
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::listing::{JobCount, JobFilter};
use crate::error::{Entity, Error};
use crate::tenancy::TenantId;

/// Identifier of a job: a UUIDv7, so ids sort by enqueue time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub Uuid);

impl JobId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        JobId(Uuid::now_v7())
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for JobId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Uuid::parse_str(s)
            .map(JobId)
            .map_err(|_| Error::not_found(Entity::Job))
    }
}

/// Where a job is in its life (see the module docs for the transitions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting to run now.
    Queued,
    /// Waiting for its `run_at`.
    Scheduled,
    /// Leased to a worker.
    Running,
    /// Finished with a result.
    Succeeded,
    /// An attempt failed; waiting for the retry at `run_at`.
    Retrying,
    /// Out of attempts, or failed for good; kept for inspection.
    Dead,
    /// Cancelled before it ran.
    Cancelled,
}

impl JobStatus {
    /// Every status.
    pub const ALL: &'static [JobStatus] = &[
        JobStatus::Queued,
        JobStatus::Scheduled,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Retrying,
        JobStatus::Dead,
        JobStatus::Cancelled,
    ];

    /// The status as stored and serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Scheduled => "scheduled",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Retrying => "retrying",
            JobStatus::Dead => "dead",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Succeeded, dead or cancelled: nothing more will happen unless retried.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Dead | JobStatus::Cancelled
        )
    }

    /// The status of a job that is to run at `run_at`, as of `now`:
    /// [`JobStatus::Scheduled`] when that is later, else [`JobStatus::Queued`].
    pub fn to_run_at(run_at: DateTime<Utc>, now: DateTime<Utc>) -> JobStatus {
        if run_at > now {
            JobStatus::Scheduled
        } else {
            JobStatus::Queued
        }
    }

    /// Waiting or running: not finished, counted by [`NewJob::max_pending`].
    pub fn is_pending(self) -> bool {
        !self.is_finished()
    }

    /// Queued, scheduled or retrying: claimable once `run_at` has come.
    pub fn is_waiting(self) -> bool {
        matches!(
            self,
            JobStatus::Queued | JobStatus::Scheduled | JobStatus::Retrying
        )
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        JobStatus::ALL
            .iter()
            .copied()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "status",
                    "must be one of: queued, scheduled, running, succeeded, retrying, dead, cancelled",
                )
            })
    }
}

/// Error recorded when a lease runs out on the job's last attempt.
pub const LEASE_EXPIRED_ON_FINAL_ATTEMPT: &str = "lease expired on the final attempt";

/// Longest job kind name.
pub const MAX_KIND_LEN: usize = 100;
/// Longest unique key.
pub const MAX_UNIQUE_KEY_LEN: usize = 300;
/// Most attempts a job may be given.
pub const MAX_ATTEMPTS_LIMIT: u32 = 1_000;

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// The job kind (a [`super::Job::KIND`]): 1 to 100 of `a-z 0-9 _ . : -`.
    pub kind: String,
    /// The payload, as the kind's runner deserializes it.
    pub payload: Value,
    /// The tenant it runs for; `None` for platform jobs.
    pub tenant: Option<TenantId>,
    /// Higher runs first (within a tenant, and within a fairness round).
    pub priority: i32,
    /// Not before this time; `None` means now.
    pub run_at: Option<DateTime<Utc>>,
    /// Attempts before the job is dead (1 to 1,000).
    pub max_attempts: u32,
    /// Deduplication key, unique per tenant among jobs not cancelled.
    pub unique_key: Option<String>,
    /// How long after its job finished the unique key stays held; `None`:
    /// until the job is pruned (module docs, "Unique keys").
    #[serde(default)]
    pub unique_window: Option<Duration>,
    /// Refuse the job when its tenant group already has this many pending
    /// jobs (module docs, "Pending cap"); `None`: no cap.
    #[serde(default)]
    pub max_pending: Option<u32>,
}

impl NewJob {
    /// Default attempts when none are given.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

    /// A job of `kind` with `payload`, for no tenant, priority 0, to run now,
    /// with the default attempts and no unique key.
    pub fn new(kind: impl Into<String>, payload: Value) -> Self {
        NewJob {
            kind: kind.into(),
            payload,
            tenant: None,
            priority: 0,
            run_at: None,
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            unique_key: None,
            unique_window: None,
            max_pending: None,
        }
    }

    /// Sets the tenant.
    pub fn tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = Some(tenant);
        self
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the earliest run time.
    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self
    }

    /// Sets the attempts.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Sets the unique key, held until the job is pruned.
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self.unique_window = None;
        self
    }

    /// Sets a unique key held while the job is pending and for `window`
    /// after it finished: enqueueing the same key again in that time returns
    /// this job; later, a new one is stored.
    pub fn unique_for(mut self, key: impl Into<String>, window: Duration) -> Self {
        self.unique_key = Some(key.into());
        self.unique_window = Some(window);
        self
    }

    /// Refuses the job ([`QueueError::TooManyPending`]) when its tenant
    /// group already has `limit` pending jobs.
    pub fn max_pending(mut self, limit: u32) -> Self {
        self.max_pending = Some(limit);
        self
    }

    /// Checks kind, attempts and key; backends call this before storing.
    pub fn validate(&self) -> Result<(), QueueError> {
        validate_kind(&self.kind)?;
        if !(1..=MAX_ATTEMPTS_LIMIT).contains(&self.max_attempts) {
            return Err(QueueError::Invalid {
                field: "max_attempts",
                message: format!("must be between 1 and {MAX_ATTEMPTS_LIMIT}"),
            });
        }
        if let Some(k) = &self.unique_key
            && (k.is_empty() || k.len() > MAX_UNIQUE_KEY_LEN || k.chars().any(char::is_control))
        {
            return Err(QueueError::Invalid {
                field: "unique_key",
                message: format!(
                    "must be 1 to {MAX_UNIQUE_KEY_LEN} bytes without control characters"
                ),
            });
        }
        Ok(())
    }
}

/// What every queue derives from a [`NewJob`] before storing it
/// ([`NewJob::prepare`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreparedJob {
    /// A fresh id.
    pub id: JobId,
    /// When it may first run: the job's `run_at`, or now.
    pub run_at: DateTime<Utc>,
    /// [`JobStatus::Scheduled`] when `run_at` is after now, else
    /// [`JobStatus::Queued`].
    pub status: JobStatus,
    /// For a key with a window ([`NewJob::unique_for`]): a holder that
    /// finished before this time no longer holds the key.
    pub key_expired_before: Option<DateTime<Utc>>,
}

impl PreparedJob {
    /// Whether a holder of the job's key that finished at `finished_at`
    /// (`None`: still pending) has let the key go.
    pub fn key_released_by(&self, finished_at: Option<DateTime<Utc>>) -> bool {
        matches!((self.key_expired_before, finished_at), (Some(cut), Some(f)) if f < cut)
    }
}

impl NewJob {
    /// Validates the job ([`NewJob::validate`]) and derives what a queue
    /// stores with it at `now`: a fresh id, its run time and its first status.
    pub fn prepare(&self, now: DateTime<Utc>) -> Result<PreparedJob, QueueError> {
        self.validate()?;
        let run_at = self.run_at.unwrap_or(now);
        // A window too long to subtract never lets the key go.
        let key_expired_before = match (&self.unique_key, self.unique_window) {
            (Some(_), Some(window)) => chrono::Duration::from_std(window)
                .ok()
                .and_then(|w| now.checked_sub_signed(w))
                .filter(|cut| cut.year() >= 1),
            _ => None,
        };
        Ok(PreparedJob {
            id: JobId::new(),
            run_at,
            status: JobStatus::to_run_at(run_at, now),
            key_expired_before,
        })
    }
}

/// A payload or result as the JSON text a backend stores.
pub fn json_text(value: &Value) -> Result<String, QueueError> {
    serde_json::to_string(value).map_err(QueueError::backend)
}

/// Checks the `extra_attempts` of [`JobQueue::retry`]: 1 to 1,000.
pub fn validate_extra_attempts(extra_attempts: u32) -> Result<(), QueueError> {
    if (1..=MAX_ATTEMPTS_LIMIT).contains(&extra_attempts) {
        Ok(())
    } else {
        Err(QueueError::Invalid {
            field: "extra_attempts",
            message: format!("must be between 1 and {MAX_ATTEMPTS_LIMIT}"),
        })
    }
}

/// Checks a job kind name: 1 to 100 of `a-z 0-9 _ . : -`.
pub fn validate_kind(kind: &str) -> Result<(), QueueError> {
    let ok = (1..=MAX_KIND_LEN).contains(&kind.len())
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.:-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(QueueError::Invalid {
            field: "kind",
            message: format!("must be 1 to {MAX_KIND_LEN} of a-z 0-9 _ . : -"),
        })
    }
}

/// What an enqueue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Enqueued {
    /// The new job, or the job already holding the unique key.
    pub id: JobId,
    /// False when the unique key was taken and nothing was stored.
    pub created: bool,
}

/// A claim for up to `limit` ready jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    /// Who claims (recorded on the job, for operators).
    pub worker: String,
    /// How long the lease lasts without a heartbeat.
    pub lease: Duration,
    /// Most jobs to return.
    pub limit: u32,
    /// Only these kinds (a worker claims only what it can run); empty: any kind.
    pub kinds: Vec<String>,
}

impl ClaimRequest {
    /// When a lease taken at `now` ends; [`QueueError::Invalid`] when the
    /// lease is too long to represent.
    pub fn lease_until(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, QueueError> {
        chrono::Duration::from_std(self.lease)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .ok_or(QueueError::Invalid {
                field: "lease",
                message: "lease is too long".into(),
            })
    }
}

/// A job leased to a worker by a claim.
#[derive(Debug, Clone, PartialEq)]
pub struct LeasedJob {
    /// The job.
    pub id: JobId,
    /// Its kind.
    pub kind: String,
    /// Its payload.
    pub payload: Value,
    /// Its tenant (`None`: a platform job).
    pub tenant: Option<TenantId>,
    /// Its priority.
    pub priority: i32,
    /// This lease's attempt number (1 for the first run); the fencing token.
    pub attempt: u32,
    /// Attempts it may have in all.
    pub max_attempts: u32,
    /// When the lease ends unless extended.
    pub lease_until: DateTime<Utc>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
}

/// Everything stored about a job (the seed's `AsyncResult`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRecord {
    /// Id.
    pub id: JobId,
    /// Kind.
    pub kind: String,
    /// Tenant (`None`: a platform job).
    pub tenant: Option<TenantId>,
    /// Payload.
    pub payload: Value,
    /// Status.
    pub status: JobStatus,
    /// Priority.
    pub priority: i32,
    /// Attempts started so far (never decreases).
    pub attempts: u32,
    /// Attempts it may have in all.
    pub max_attempts: u32,
    /// Earliest time of the next run (for waiting jobs).
    pub run_at: DateTime<Utc>,
    /// Unique key, if any.
    pub unique_key: Option<String>,
    /// Worker holding or last holding the lease.
    pub worker: Option<String>,
    /// End of the current lease (running jobs).
    pub lease_until: Option<DateTime<Utc>>,
    /// The result of a succeeded job.
    pub result: Option<Value>,
    /// The error of the latest failed attempt.
    pub last_error: Option<String>,
    /// Enqueue time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Start of the latest attempt.
    pub started_at: Option<DateTime<Utc>>,
    /// When it succeeded, died or was cancelled.
    pub finished_at: Option<DateTime<Utc>>,
}

impl JobRecord {
    /// Whether the job is finished (the seed's `result.ready()`).
    pub fn ready(&self) -> bool {
        self.status.is_finished()
    }

    /// The result of a succeeded job (the seed's `result.get()`).
    pub fn get(&self) -> Option<&Value> {
        match self.status {
            JobStatus::Succeeded => self.result.as_ref(),
            _ => None,
        }
    }
}

/// Errors of a [`JobQueue`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The attempt number is stale: the lease expired and the job was claimed
    /// again (or finished). Nothing was changed.
    #[error("job {id}: attempt {attempt} no longer holds the lease")]
    LeaseLost {
        /// The job.
        id: JobId,
        /// The stale attempt number.
        attempt: u32,
    },
    /// No such job.
    #[error("job {id} not found")]
    NotFound {
        /// The job.
        id: JobId,
    },
    /// The job's status does not allow the operation (cancel a running job,
    /// retry a job that is not dead). Nothing was changed.
    #[error("job {id} is {status}: cannot {action}")]
    InvalidState {
        /// The job.
        id: JobId,
        /// Its status.
        status: JobStatus,
        /// What was refused.
        action: &'static str,
    },
    /// The job's tenant group already has `limit` pending jobs
    /// ([`NewJob::max_pending`]). Nothing was stored.
    #[error("the tenant already has {limit} pending jobs")]
    TooManyPending {
        /// The cap.
        limit: u32,
    },
    /// The request itself is invalid.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// The backend failed.
    #[error("job queue backend failed")]
    Backend {
        /// What the backend reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl QueueError {
    /// Wraps a backend error, keeping it as the source.
    pub fn backend(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        QueueError::Backend {
            source: Box::new(source),
        }
    }

    /// What a fenced operation that changed nothing reports (module docs,
    /// "Fencing"): the lease is lost when the job exists, else it is not
    /// found.
    pub fn fenced_off(id: JobId, attempt: u32, exists: bool) -> Self {
        if exists {
            QueueError::LeaseLost { id, attempt }
        } else {
            QueueError::NotFound { id }
        }
    }

    /// What an `action` refused for the job's status reports:
    /// [`QueueError::InvalidState`] with the status found, or
    /// [`QueueError::NotFound`] when there is no such job.
    pub fn refused(id: JobId, action: &'static str, status: Option<JobStatus>) -> Self {
        match status {
            Some(status) => QueueError::InvalidState { id, status, action },
            None => QueueError::NotFound { id },
        }
    }
}

impl From<QueueError> for Error {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::LeaseLost { .. } => {
                Error::State("the job's lease was taken over by another worker")
            }
            QueueError::NotFound { .. } => Error::not_found(Entity::Job),
            QueueError::InvalidState { action, .. } => Error::State(match action {
                "cancel" => "only a queued, scheduled or retrying job can be cancelled",
                "retry" => "only a dead job can be retried",
                _ => "the job's status does not allow this",
            }),
            QueueError::TooManyPending { limit } => Error::TooManyJobs {
                limit: u64::from(limit),
            },
            QueueError::Invalid { field, message } => Error::invalid(field, message),
            QueueError::Backend { source } => Error::Backend { source },
        }
    }
}

/// Result of queue operations.
pub type QueueResult<T> = Result<T, QueueError>;

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
