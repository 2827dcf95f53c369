//! [`Jobs`]: what a host holds to enqueue, inspect and run background jobs.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::builtin::{self, BuiltinConfig, GenerateProjectReport, ReportPayload};
use super::job::{Job, JobRegistry, WorkerDeps, new_job};
use super::mail::{LogMailer, Mailer};
use super::queue::{Enqueued, JobId, JobQueue, JobRecord, NewJob};
use super::scheduler::Scheduler;
use super::worker::{Worker, WorkerConfig};
use crate::clock::{Clock, SystemClock};
use crate::error::{Entity, Error, Result};
use crate::projects::ProjectId;
use crate::service::Saas;
use crate::session::Session;
use crate::tenancy::TenantId;

/// Builds [`Jobs`].
pub struct JobsBuilder {
    saas: Saas,
    queue: Arc<dyn JobQueue>,
    mailer: Arc<dyn Mailer>,
    clock: Arc<dyn Clock>,
    registry: JobRegistry,
    max_pending_per_tenant: Option<u32>,
}

/// How long a finished report answers a new request for the same project
/// ([`Jobs::request_report`]) instead of a new job being queued.
pub const REPORT_REUSE_WINDOW: Duration = Duration::from_secs(60);

/// Default cap of a tenant's pending jobs when it asks for more work
/// ([`JobsBuilder::max_pending_per_tenant`]).
pub const DEFAULT_MAX_PENDING_PER_TENANT: u32 = 50;

impl fmt::Debug for JobsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobsBuilder")
            .field("queue", &self.queue)
            .field("kinds", &self.registry.kinds())
            .finish_non_exhaustive()
    }
}

impl JobsBuilder {
    /// The mailer (default: a [`LogMailer`] that only logs).
    pub fn mailer(mut self, mailer: Arc<dyn Mailer>) -> Self {
        self.mailer = mailer;
        self
    }

    /// The clock (default: the system clock). Give it the same clock as the
    /// service's [`crate::SaasBuilder::clock`], so jobs and requests agree on "now".
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Most jobs a tenant may have waiting or running when its users ask
    /// for more ([`Jobs::request_report`]); past it they get
    /// [`Error::TooManyJobs`]. `None` lifts the cap. Default
    /// [`DEFAULT_MAX_PENDING_PER_TENANT`].
    pub fn max_pending_per_tenant(mut self, limit: Option<u32>) -> Self {
        self.max_pending_per_tenant = limit;
        self
    }

    /// Registers a job kind.
    pub fn register<J: Job>(mut self, job: J) -> Self {
        self.registry.register(job);
        self
    }

    /// Registers the seed's built-in jobs (see [`builtin`]).
    pub fn builtin(mut self, config: BuiltinConfig) -> Self {
        builtin::register_all(&mut self.registry, &config);
        self
    }

    /// Builds the handle.
    pub fn build(self) -> Jobs {
        Jobs {
            inner: Arc::new(WorkerDeps {
                saas: self.saas,
                queue: self.queue,
                mailer: self.mailer,
                clock: self.clock,
                registry: self.registry,
            }),
            max_pending_per_tenant: self.max_pending_per_tenant,
        }
    }
}

/// The jobs runtime as a value: the service, the queue, the mailer, the
/// clock and the registered kinds. Cheap to clone.
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<WorkerDeps>,
    max_pending_per_tenant: Option<u32>,
}

impl fmt::Debug for Jobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jobs")
            .field("queue", &self.inner.queue)
            .field("mailer", &self.inner.mailer)
            .field("kinds", &self.inner.registry.kinds())
            .finish_non_exhaustive()
    }
}

impl Jobs {
    /// Starts building over a service and a queue.
    pub fn builder(saas: Saas, queue: Arc<dyn JobQueue>) -> JobsBuilder {
        JobsBuilder {
            saas,
            queue,
            mailer: Arc::new(LogMailer::default()),
            clock: Arc::new(SystemClock),
            registry: JobRegistry::new(),
            max_pending_per_tenant: Some(DEFAULT_MAX_PENDING_PER_TENANT),
        }
    }

    /// The service.
    pub fn saas(&self) -> &Saas {
        &self.inner.saas
    }

    /// The queue.
    pub fn queue(&self) -> &Arc<dyn JobQueue> {
        &self.inner.queue
    }

    /// The mailer.
    pub fn mailer(&self) -> &Arc<dyn Mailer> {
        &self.inner.mailer
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The registered kinds.
    pub fn registry(&self) -> &JobRegistry {
        &self.inner.registry
    }

    /// Now, truncated to microseconds.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.now()
    }

    /// Enqueues a job as given.
    pub async fn enqueue(&self, job: &NewJob) -> Result<Enqueued> {
        Ok(self.inner.queue.enqueue(job, self.now()).await?)
    }

    /// Enqueues a job of kind `J` with its default priority and attempts.
    pub async fn enqueue_job<J: Job>(
        &self,
        tenant: Option<TenantId>,
        payload: &J::Payload,
    ) -> Result<Enqueued> {
        self.enqueue(&new_job::<J>(tenant, payload)?).await
    }

    /// Any job by id (operators). NotFound when absent.
    pub async fn job(&self, id: JobId) -> Result<JobRecord> {
        self.inner
            .queue
            .job(id)
            .await?
            .ok_or(Error::not_found(Entity::Job))
    }

    /// A job of `tenant` by id (`GET /api/jobs/{id}/`). Other tenants' jobs
    /// and platform jobs are NotFound, like absent ones.
    pub async fn job_for_tenant(&self, tenant: TenantId, id: JobId) -> Result<JobRecord> {
        self.inner
            .queue
            .job(id)
            .await?
            .filter(|j| j.tenant == Some(tenant))
            .ok_or(Error::not_found(Entity::Job))
    }

    /// Cancels a waiting job.
    pub async fn cancel(&self, id: JobId) -> Result<JobRecord> {
        Ok(self.inner.queue.cancel(id, self.now()).await?)
    }

    /// Re-runs a dead job now with `extra_attempts` more attempts.
    pub async fn retry(&self, id: JobId, extra_attempts: u32) -> Result<JobRecord> {
        let now = self.now();
        Ok(self.inner.queue.retry(id, extra_attempts, now, now).await?)
    }

    /// Deletes finished jobs older than `before`.
    pub async fn prune(&self, before: DateTime<Utc>) -> Result<u64> {
        Ok(self.inner.queue.prune(before).await?)
    }

    /// Enqueues `generate_project_report` for a project the session may
    /// report on (`POST /api/projects/{id}/report/`): role, visibility and
    /// the plan's reports feature are checked first. While a report of the
    /// project is pending, or finished less than [`REPORT_REUSE_WINDOW`]
    /// ago, that job is returned instead of a new one; past the tenant's
    /// cap of pending jobs, [`Error::TooManyJobs`]. `created` tells a new
    /// job from one found.
    pub async fn request_report(&self, session: &Session, project: ProjectId) -> Result<Enqueued> {
        session.authorize_report(project).await?;
        let payload = ReportPayload {
            project_id: project,
        };
        let mut job = new_job::<GenerateProjectReport>(Some(session.tenant().id), &payload)?
            .unique_for(format!("report:{}", project.0), REPORT_REUSE_WINDOW);
        if let Some(limit) = self.max_pending_per_tenant {
            job = job.max_pending(limit);
        }
        self.enqueue(&job).await
    }

    /// A worker running the registered kinds.
    pub fn worker(&self, config: WorkerConfig) -> Worker {
        Worker::new(Arc::clone(&self.inner), config)
    }

    /// An empty scheduler on this queue and clock.
    pub fn scheduler(&self) -> Scheduler {
        Scheduler::new(self.inner.queue.clone(), self.inner.clock.clone())
    }
}
