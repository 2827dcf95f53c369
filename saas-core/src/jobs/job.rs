//! The [`Job`] trait, what a running job sees ([`JobContext`]), how it fails
//! ([`JobError`]), the [`JobRegistry`] mapping kind names to runners, and
//! [`WorkerDeps`], what jobs run with.

use std::collections::BTreeMap;
use std::fmt::{self, Debug};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::mail::{MailError, Mailer};
use super::queue::{JobId, JobQueue, NewJob, QueueError};
use crate::clock::Clock;
use crate::error::Error;
use crate::service::Saas;
use crate::store::TenantStore;
use crate::tenancy::{Tenant, TenantId};

/// Whether a job kind runs for one tenant or for the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobScope {
    /// Runs with one tenant's scoped handle; enqueued with a tenant. A
    /// tenant that is gone or suspended fails the job for good.
    Tenant,
    /// Runs without a tenant (fan-outs, pruning); enqueued without one.
    Platform,
}

/// A kind of background job.
///
/// ```
/// use async_trait::async_trait;
/// use saas_core::jobs::{Job, JobContext, JobError};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug)]
/// struct CountUsers;
///
/// #[derive(Serialize, Deserialize)]
/// struct Nothing {}
///
/// #[async_trait]
/// impl Job for CountUsers {
///     const KIND: &'static str = "count_users";
///     type Payload = Nothing;
///     type Output = u64;
///
///     async fn run(&self, ctx: &JobContext, _: Nothing) -> Result<u64, JobError> {
///         Ok(ctx.store()?.count_users().await?)
///     }
/// }
/// ```
#[async_trait]
pub trait Job: Debug + Send + Sync + 'static {
    /// The kind name stored with each job (see [`super::queue::validate_kind`]).
    const KIND: &'static str;
    /// Tenant or platform job.
    const SCOPE: JobScope = JobScope::Tenant;
    /// Attempts before the job is dead, unless the enqueuer says otherwise.
    const MAX_ATTEMPTS: u32 = NewJob::DEFAULT_MAX_ATTEMPTS;
    /// Default priority (higher first).
    const PRIORITY: i32 = 0;
    /// Longest one attempt may run; then it fails (and is retried).
    const TIMEOUT: Duration = Duration::from_secs(300);

    /// The typed payload, stored as JSON.
    type Payload: Serialize + DeserializeOwned + Send + 'static;
    /// The result, stored as JSON and returned by [`super::JobRecord::get`].
    type Output: Serialize + Send + 'static;

    /// Runs one attempt.
    async fn run(&self, ctx: &JobContext, payload: Self::Payload)
    -> Result<Self::Output, JobError>;
}

/// Why a job attempt failed. [`JobError::is_retryable`] decides between a
/// retry (with backoff, while attempts remain) and dead at once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// A core operation failed; retried only for storage failures
    /// ([`Error::Backend`], [`Error::Unavailable`], [`Error::StorageFull`]).
    #[error(transparent)]
    Core(#[from] Error),
    /// Sending email failed (retried).
    #[error(transparent)]
    Mail(#[from] MailError),
    /// The queue failed (retried).
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The payload does not fit the kind (not retried).
    #[error("invalid payload for job kind {kind}")]
    Payload {
        /// The kind.
        kind: String,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// The result could not be encoded (not retried).
    #[error("result of job kind {kind} could not be encoded")]
    Output {
        /// The kind.
        kind: String,
        /// The encoding error.
        #[source]
        source: serde_json::Error,
    },
    /// The job's tenant was deleted (not retried).
    #[error("tenant {tenant} no longer exists")]
    TenantGone {
        /// The tenant.
        tenant: TenantId,
    },
    /// The job's tenant is suspended (not retried).
    #[error("tenant {tenant} is suspended")]
    TenantSuspended {
        /// The tenant.
        tenant: TenantId,
    },
    /// A tenant job without a tenant, or a platform job with one (not retried).
    #[error("job kind {kind} is a {expected} job")]
    WrongScope {
        /// The kind.
        kind: String,
        /// `"tenant"` or `"platform"`.
        expected: &'static str,
    },
    /// No runner for the kind in this process (not retried).
    #[error("no runner registered for job kind {kind}")]
    UnknownKind {
        /// The kind.
        kind: String,
    },
    /// The attempt ran past its timeout (retried).
    #[error("job timed out after {0:?}")]
    Timeout(Duration),
    /// The job panicked (retried).
    #[error("job panicked: {0}")]
    Panicked(String),
    /// A job-specific failure.
    #[error("{message}")]
    Failed {
        /// What happened.
        message: String,
        /// Whether another attempt may succeed.
        retryable: bool,
    },
}

impl JobError {
    /// A job-specific failure that another attempt may fix.
    pub fn retryable(message: impl Into<String>) -> Self {
        JobError::Failed {
            message: message.into(),
            retryable: true,
        }
    }

    /// A job-specific failure that no retry can fix.
    pub fn fatal(message: impl Into<String>) -> Self {
        JobError::Failed {
            message: message.into(),
            retryable: false,
        }
    }

    /// Whether the job should be tried again (while attempts remain).
    pub fn is_retryable(&self) -> bool {
        match self {
            JobError::Core(e) => matches!(
                e,
                Error::Backend { .. } | Error::Unavailable { .. } | Error::StorageFull { .. }
            ),
            JobError::Mail(e) => !matches!(e, MailError::Config { .. } | MailError::Address { .. }),
            JobError::Queue(e) => matches!(e, QueueError::Backend { .. }),
            JobError::Timeout(_) | JobError::Panicked(_) => true,
            JobError::Failed { retryable, .. } => *retryable,
            JobError::Payload { .. }
            | JobError::Output { .. }
            | JobError::TenantGone { .. }
            | JobError::TenantSuspended { .. }
            | JobError::WrongScope { .. }
            | JobError::UnknownKind { .. } => false,
        }
    }

    /// The error and its sources, joined: what is stored as the job's last error.
    pub fn chain(&self) -> String {
        let mut s = self.to_string();
        let mut cur = std::error::Error::source(self);
        while let Some(e) = cur {
            let m = e.to_string();
            if !s.ends_with(&m) {
                s.push_str(": ");
                s.push_str(&m);
            }
            cur = e.source();
        }
        s
    }
}

/// About the running attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobMeta {
    /// The job.
    pub id: JobId,
    /// Its kind.
    pub kind: String,
    /// This attempt (1 for the first).
    pub attempt: u32,
    /// Attempts in all.
    pub max_attempts: u32,
}

/// What jobs run with: the service, the queue, the mailer, the clock and
/// the registered kinds. The jobs runtime (`Jobs`) gathers them and hands
/// them to each worker, which passes them on to every job it runs: the
/// worker depends on these values, never on the runtime that built it.
#[derive(Clone)]
pub struct WorkerDeps {
    /// The service: tenant jobs get their tenant's handle through it, and
    /// every job can reach plans and the tenant catalog.
    pub saas: Saas,
    /// The queue jobs are claimed from and recorded in (and fan-out jobs
    /// enqueue into).
    pub queue: Arc<dyn JobQueue>,
    /// The mailer jobs send with.
    pub mailer: Arc<dyn Mailer>,
    /// The clock every time stored or compared comes from.
    pub clock: Arc<dyn Clock>,
    /// The kinds that can run, by name.
    pub registry: JobRegistry,
}

impl Debug for WorkerDeps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerDeps")
            .field("queue", &self.queue)
            .field("mailer", &self.mailer)
            .field("kinds", &self.registry.kinds())
            .finish_non_exhaustive()
    }
}

impl WorkerDeps {
    /// Now, truncated to microseconds like every time a queue stores.
    pub fn now(&self) -> DateTime<Utc> {
        truncate_micros(self.clock.now())
    }
}

/// What a running job sees: its tenant's scoped handle (tenant jobs only),
/// the mailer, the clock, the service and the queue.
#[derive(Clone)]
pub struct JobContext {
    meta: JobMeta,
    tenant: Option<(Tenant, Arc<dyn TenantStore>)>,
    deps: Arc<WorkerDeps>,
}

impl Debug for JobContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobContext")
            .field("meta", &self.meta)
            .field("tenant", &self.tenant.as_ref().map(|(t, _)| &t.slug))
            .finish_non_exhaustive()
    }
}

impl JobContext {
    /// A context; the worker builds these, tests and hosts may too (to run a
    /// job inline).
    pub fn new(
        meta: JobMeta,
        tenant: Option<(Tenant, Arc<dyn TenantStore>)>,
        deps: Arc<WorkerDeps>,
    ) -> Self {
        JobContext { meta, tenant, deps }
    }

    /// The running attempt.
    pub fn meta(&self) -> &JobMeta {
        &self.meta
    }

    /// The job's tenant; [`JobError::WrongScope`] for platform jobs.
    pub fn tenant(&self) -> Result<&Tenant, JobError> {
        self.tenant
            .as_ref()
            .map(|(t, _)| t)
            .ok_or_else(|| self.needs_tenant())
    }

    /// The tenant's scoped storage handle; [`JobError::WrongScope`] for
    /// platform jobs.
    pub fn store(&self) -> Result<&Arc<dyn TenantStore>, JobError> {
        self.tenant
            .as_ref()
            .map(|(_, s)| s)
            .ok_or_else(|| self.needs_tenant())
    }

    fn needs_tenant(&self) -> JobError {
        JobError::WrongScope {
            kind: self.meta.kind.clone(),
            expected: "tenant",
        }
    }

    /// The mailer.
    pub fn mailer(&self) -> &Arc<dyn Mailer> {
        &self.deps.mailer
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.deps.clock
    }

    /// Now, truncated to microseconds like everything stored.
    pub fn now(&self) -> DateTime<Utc> {
        self.deps.now()
    }

    /// The service (plans, the tenant catalog).
    pub fn saas(&self) -> &Saas {
        &self.deps.saas
    }

    /// The queue (for fan-out jobs and pruning).
    pub fn queue(&self) -> &Arc<dyn JobQueue> {
        &self.deps.queue
    }
}

/// Truncates to the microseconds every backend stores.
pub(crate) fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// A job kind with its type erased: JSON in, JSON out.
#[async_trait]
pub trait Runner: Debug + Send + Sync + 'static {
    /// The kind.
    fn kind(&self) -> &'static str;
    /// Tenant or platform.
    fn scope(&self) -> JobScope;
    /// Per-attempt timeout.
    fn timeout(&self) -> Duration;
    /// Decodes the payload, runs, encodes the output.
    async fn run(&self, ctx: &JobContext, payload: Value) -> Result<Value, JobError>;
}

#[derive(Debug)]
struct Typed<J>(J);

#[async_trait]
impl<J: Job> Runner for Typed<J> {
    fn kind(&self) -> &'static str {
        J::KIND
    }

    fn scope(&self) -> JobScope {
        J::SCOPE
    }

    fn timeout(&self) -> Duration {
        J::TIMEOUT
    }

    async fn run(&self, ctx: &JobContext, payload: Value) -> Result<Value, JobError> {
        let payload: J::Payload =
            serde_json::from_value(payload).map_err(|source| JobError::Payload {
                kind: J::KIND.to_owned(),
                source,
            })?;
        let out = self.0.run(ctx, payload).await?;
        serde_json::to_value(out).map_err(|source| JobError::Output {
            kind: J::KIND.to_owned(),
            source,
        })
    }
}

/// Kind names mapped to runners. A worker claims only the kinds it has.
#[derive(Debug, Clone, Default)]
pub struct JobRegistry {
    runners: BTreeMap<&'static str, Arc<dyn Runner>>,
}

impl JobRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the runner for `J::KIND`.
    pub fn register<J: Job>(&mut self, job: J) -> &mut Self {
        self.runners.insert(J::KIND, Arc::new(Typed(job)));
        self
    }

    /// The runner for `kind`.
    pub fn get(&self, kind: &str) -> Option<&Arc<dyn Runner>> {
        self.runners.get(kind)
    }

    /// Registered kinds, sorted.
    pub fn kinds(&self) -> Vec<String> {
        self.runners.keys().map(|k| (*k).to_owned()).collect()
    }
}

/// A [`NewJob`] of kind `J` with its default priority and attempts.
pub fn new_job<J: Job>(
    tenant: Option<TenantId>,
    payload: &J::Payload,
) -> Result<NewJob, QueueError> {
    let payload = serde_json::to_value(payload).map_err(|e| QueueError::Invalid {
        field: "payload",
        message: e.to_string(),
    })?;
    let mut job = NewJob::new(J::KIND, payload)
        .priority(J::PRIORITY)
        .max_attempts(J::MAX_ATTEMPTS);
    job.tenant = tenant;
    Ok(job)
}

/// Payload of jobs that take no parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct NoPayload {}
