//! The values a [`JobQueue`](super::queue::JobQueue) takes, stores and
//! answers: ids, statuses, a [`NewJob`] and its preparation, claims,
//! leases, records and [`QueueError`]. What they mean is the contract in
//! [`super::queue`]'s docs; every queue checks and prepares its input
//! here, so no backend writes that again. `super::queue` re-exports them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

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

/// Where a job is in its life (see [`super::queue`]'s docs for the transitions).
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
    /// The job kind (a [`Job::KIND`](super::job::Job::KIND)): 1 to 100 of `a-z 0-9 _ . : -`.
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
    /// until the job is pruned ([`super::queue`], "Unique keys").
    #[serde(default)]
    pub unique_window: Option<Duration>,
    /// Refuse the job when its tenant group already has this many pending
    /// jobs ([`super::queue`], "Pending cap"); `None`: no cap.
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

/// Checks the `extra_attempts` of [`JobQueue::retry`](super::queue::JobQueue::retry): 1 to 1,000.
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

/// Errors of a [`JobQueue`](super::queue::JobQueue).
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

    /// What a fenced operation that changed nothing reports ([`super::queue`],
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
