//! [`Worker`]: claims jobs in batches, runs them with bounded concurrency,
//! keeps their leases alive with heartbeats, records results, retries with
//! exponential backoff and full jitter, and shuts down gracefully.

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use super::job::{JobContext, JobError, JobMeta, JobScope, WorkerDeps};
use super::queue::{ClaimRequest, JobId, LeasedJob, QueueError, QueueResult};
use crate::error::{Error, chain as error_chain};
use crate::store::TenantStore;
use crate::telemetry;
use crate::tenancy::{Tenant, TenantId, TenantStatus};

/// Exponential backoff with full jitter: the delay before retry `n` (after
/// failed attempt `n`) is uniform in `[0, min(max, base * 2^(n-1))]`, so
/// retries of many jobs failing together spread out instead of stampeding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Ceiling of the first delay.
    pub base: Duration,
    /// Largest ceiling.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(3600),
        }
    }
}

impl Backoff {
    /// The largest delay after failed attempt `attempt` (1-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(32);
        self.base
            .checked_mul(1u32 << exp.min(31))
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// A random delay after failed attempt `attempt`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt).as_micros();
        let ceiling = u64::try_from(ceiling).unwrap_or(u64::MAX);
        Duration::from_micros(rand::random_range(0..=ceiling))
    }
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Recorded on claimed jobs (default `worker-<random>`).
    pub worker_id: String,
    /// Most jobs running at once (default 8).
    pub concurrency: usize,
    /// Most jobs claimed per round trip (default 8).
    pub batch_size: usize,
    /// Lease length; a job whose worker stops heart-beating runs again this
    /// long after the last beat (default 60 s).
    pub lease: Duration,
    /// Time between heartbeats; keep well under `lease` (default 20 s).
    pub heartbeat_interval: Duration,
    /// Longest sleep when idle, if the queue does not wake the worker
    /// earlier (default 1 s).
    pub poll_interval: Duration,
    /// How long shutdown waits for in-flight jobs before abandoning them;
    /// abandoned jobs are released ([`JobQueue::release`]) so that another
    /// worker runs them at once rather than after their leases (default 30 s).
    ///
    /// [`JobQueue::release`]: super::queue::JobQueue::release
    pub grace_period: Duration,
    /// Retry delays.
    pub backoff: Backoff,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            worker_id: format!(
                "worker-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            ),
            concurrency: 8,
            batch_size: 8,
            lease: Duration::from_secs(60),
            heartbeat_interval: Duration::from_secs(20),
            poll_interval: Duration::from_secs(1),
            grace_period: Duration::from_secs(30),
            backoff: Backoff::default(),
        }
    }
}

/// What a worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Jobs claimed.
    pub claimed: u64,
    /// Attempts that succeeded.
    pub succeeded: u64,
    /// Attempts that failed and will be retried.
    pub retried: u64,
    /// Attempts that failed for good.
    pub dead: u64,
    /// Attempts whose lease was lost (another worker has the job).
    pub lease_lost: u64,
    /// Attempts whose outcome could not be recorded (they run again after
    /// lease expiry).
    pub unrecorded: u64,
    /// Attempts abandoned at shutdown.
    pub abandoned: u64,
    /// Abandoned attempts given back to the queue, runnable at once (the
    /// others run again after lease expiry).
    pub released: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Succeeded,
    Retried,
    Dead,
    LeaseLost,
    Unrecorded,
}

/// Runs jobs from the queue. See [`WorkerConfig`] for the knobs; hosts get
/// one from the jobs runtime (`Jobs::worker`).
#[derive(Debug, Clone)]
pub struct Worker {
    deps: Arc<WorkerDeps>,
    config: Arc<WorkerConfig>,
    kinds: Vec<String>,
}

impl Worker {
    /// A worker for the kinds registered in `deps`.
    pub fn new(deps: Arc<WorkerDeps>, config: WorkerConfig) -> Self {
        let kinds = deps.registry.kinds();
        Worker {
            deps,
            config: Arc::new(config),
            kinds,
        }
    }

    /// The worker id.
    pub fn id(&self) -> &str {
        &self.config.worker_id
    }

    /// Runs until `shutdown` completes, then stops claiming, lets in-flight
    /// jobs finish within the grace period, and abandons the rest, giving
    /// them back to the queue so that they run again at once elsewhere.
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) -> WorkerStats {
        self.drive(shutdown, false).await
    }

    /// Runs until nothing is ready and nothing is in flight (tests, `--once`).
    pub async fn run_until_idle(&self) -> WorkerStats {
        self.drive(std::future::pending(), true).await
    }

    async fn drive(
        &self,
        shutdown: impl Future<Output = ()> + Send,
        idle_exit: bool,
    ) -> WorkerStats {
        let cfg = &self.config;
        let queue = Arc::clone(&self.deps.queue);
        let concurrency = cfg.concurrency.max(1);
        let mut stats = WorkerStats::default();
        let mut set: JoinSet<Outcome> = JoinSet::new();
        let mut running = Running::default();
        let mut shutdown = pin!(shutdown);
        let mut claim_errors: u32 = 0;
        let (completions, completer) = Completions::start(Arc::clone(&self.deps), concurrency);
        tracing::info!(worker = %cfg.worker_id, concurrency, kinds = ?self.kinds, "worker started");
        'main: loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break 'main,
                () = std::future::ready(()) => {}
            }
            while let Some(r) = set.try_join_next_with_id() {
                running.settle(&mut stats, r);
            }
            let free = concurrency.saturating_sub(set.len());
            let mut claimed_any = false;
            if free > 0 {
                let request = ClaimRequest {
                    worker: cfg.worker_id.clone(),
                    lease: cfg.lease,
                    limit: u32::try_from(free.min(cfg.batch_size.max(1))).unwrap_or(1),
                    kinds: self.kinds.clone(),
                };
                match queue.claim(&request, self.deps.now()).await {
                    Ok(batch) => {
                        claim_errors = 0;
                        claimed_any = !batch.is_empty();
                        stats.claimed += batch.len() as u64;
                        for job in batch {
                            let lease = (job.id, job.attempt);
                            let task = set.spawn(process(
                                Arc::clone(&self.deps),
                                self.config.clone(),
                                completions.clone(),
                                job,
                            ));
                            running.leases.insert(task.id(), lease);
                        }
                    }
                    Err(e) => {
                        claim_errors = claim_errors.saturating_add(1);
                        tracing::error!(worker = %cfg.worker_id, error = %error_chain(&e), "claiming jobs failed");
                    }
                }
            }
            if claimed_any {
                continue;
            }
            if idle_exit && set.is_empty() {
                break;
            }
            let wait = cfg.poll_interval * claim_errors.clamp(1, 10);
            tokio::select! {
                () = &mut shutdown => break 'main,
                Some(r) = set.join_next_with_id(), if !set.is_empty() => running.settle(&mut stats, r),
                () = queue.wait_for_work(wait), if free > 0 => {}
            }
        }

        if !set.is_empty() {
            tracing::info!(worker = %cfg.worker_id, in_flight = set.len(), "worker stopping: finishing in-flight jobs");
        }
        let mut deadline = pin!(tokio::time::sleep(cfg.grace_period));
        loop {
            tokio::select! {
                r = set.join_next_with_id() => match r {
                    Some(r) => running.settle(&mut stats, r),
                    None => break,
                },
                () = &mut deadline => {
                    let n = set.len() as u64;
                    tracing::warn!(
                        worker = %cfg.worker_id,
                        abandoned = n,
                        "grace period over: abandoning in-flight jobs and giving them back to the queue"
                    );
                    set.abort_all();
                    // Aborted tasks count as abandoned; any that finished
                    // in the meantime count as what they did.
                    while let Some(r) = set.join_next_with_id().await {
                        running.settle(&mut stats, r);
                    }
                    break;
                }
            }
        }
        // Every job task is gone, so this is the last sender: the completer
        // writes what is pending and stops.
        drop(completions);
        if let Err(e) = completer.await {
            tracing::error!(worker = %cfg.worker_id, error = %e, "the completion writer failed");
        }
        // Only now, with every success written: a job whose completion was
        // in flight is not given back to run twice.
        for (id, attempt) in running.abandoned {
            match queue.release(id, attempt, self.deps.now()).await {
                Ok(()) => stats.released += 1,
                Err(QueueError::LeaseLost { .. } | QueueError::NotFound { .. }) => {}
                Err(e) => tracing::warn!(
                    worker = %cfg.worker_id, job.id = %id, error = %error_chain(&e),
                    "could not give an abandoned job back; it runs again when its lease expires"
                ),
            }
        }
        tracing::info!(worker = %cfg.worker_id, ?stats, "worker stopped");
        stats
    }
}

/// The leases of a worker's job tasks, and those it abandoned.
#[derive(Default)]
struct Running {
    leases: HashMap<tokio::task::Id, (JobId, u32)>,
    abandoned: Vec<(JobId, u32)>,
}

impl Running {
    /// Counts a finished job task; keeps the lease of one that was aborted.
    fn settle(
        &mut self,
        stats: &mut WorkerStats,
        r: Result<(tokio::task::Id, Outcome), tokio::task::JoinError>,
    ) {
        let task = match &r {
            Ok((task, _)) => *task,
            Err(e) => e.id(),
        };
        let lease = self.leases.remove(&task);
        if let (Err(e), Some(lease)) = (&r, lease)
            && e.is_cancelled()
        {
            self.abandoned.push(lease);
        }
        record(stats, r.map(|(_, outcome)| outcome));
    }
}

fn record(stats: &mut WorkerStats, r: Result<Outcome, tokio::task::JoinError>) {
    match r {
        Ok(Outcome::Succeeded) => stats.succeeded += 1,
        Ok(Outcome::Retried) => stats.retried += 1,
        Ok(Outcome::Dead) => stats.dead += 1,
        Ok(Outcome::LeaseLost) => stats.lease_lost += 1,
        Ok(Outcome::Unrecorded) => stats.unrecorded += 1,
        Err(e) if e.is_cancelled() => stats.abandoned += 1,
        Err(e) => {
            stats.unrecorded += 1;
            tracing::error!(error = %e, "job task failed outside the job");
        }
    }
}

/// Aborts the wrapped task when dropped, so abandoning the attempt (timeout,
/// lost lease, shutdown) really stops the job's code.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

enum Exec {
    Done(Result<serde_json::Value, JobError>),
    LeaseLost,
}

/// A job's success waiting to be recorded.
struct Completion {
    id: JobId,
    attempt: u32,
    result: Value,
    reply: oneshot::Sender<QueueResult<()>>,
}

/// The worker's completion writer: job tasks hand their successes to one
/// task that records whatever has piled up with one
/// [`JobQueue::complete_many`](super::queue::JobQueue::complete_many) call.
/// While one batch is being written the next one gathers, so under load a
/// commit serves many jobs (group commit); alone, a job waits for one call
/// as before.
#[derive(Clone)]
struct Completions(mpsc::UnboundedSender<Completion>);

impl Completions {
    /// Starts the writer; it stops once every sender is dropped.
    fn start(deps: Arc<WorkerDeps>, max_batch: usize) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_completions(deps, rx, max_batch.max(1)));
        (Completions(tx), writer)
    }

    /// Records a success and waits for the outcome.
    async fn complete(&self, id: JobId, attempt: u32, result: Value) -> QueueResult<()> {
        let (reply, outcome) = oneshot::channel();
        let completion = Completion {
            id,
            attempt,
            result,
            reply,
        };
        if self.0.send(completion).is_err() {
            return Err(QueueError::backend(std::io::Error::other(
                "the worker's completion writer has stopped",
            )));
        }
        outcome.await.unwrap_or_else(|_| {
            Err(QueueError::backend(std::io::Error::other(
                "the worker's completion writer dropped the job",
            )))
        })
    }
}

async fn write_completions(
    deps: Arc<WorkerDeps>,
    mut pending: mpsc::UnboundedReceiver<Completion>,
    max_batch: usize,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while pending.recv_many(&mut batch, max_batch).await > 0 {
        let done: Vec<(JobId, u32, Value)> = batch
            .iter_mut()
            .map(|c| (c.id, c.attempt, std::mem::take(&mut c.result)))
            .collect();
        let outcomes = match deps.queue.complete_many(&done, deps.now()).await {
            Ok(outcomes) if outcomes.len() == done.len() => outcomes,
            Ok(outcomes) => {
                let message = format!(
                    "the queue answered {} outcomes for {} completions",
                    outcomes.len(),
                    done.len()
                );
                failed_batch(&message, done.len())
            }
            Err(e) => failed_batch(&error_chain(&e), done.len()),
        };
        for (completion, outcome) in batch.drain(..).zip(outcomes) {
            // The job's task may be gone (shutdown abandoned it): nothing
            // waits for this outcome, and the record stands either way.
            let _ = completion.reply.send(outcome);
        }
    }
}

/// One error per completion of a batch the queue could not write.
fn failed_batch(message: &str, n: usize) -> Vec<QueueResult<()>> {
    (0..n)
        .map(|_| {
            Err(QueueError::backend(std::io::Error::other(format!(
                "recording a batch of {n} completions failed: {message}"
            ))))
        })
        .collect()
}

async fn process(
    deps: Arc<WorkerDeps>,
    cfg: Arc<WorkerConfig>,
    completions: Completions,
    job: LeasedJob,
) -> Outcome {
    let span = tracing::info_span!(
        "job",
        job.id = %job.id,
        job.kind = %job.kind,
        tenant = job.tenant.map(|t| t.to_string()).unwrap_or_default(),
        attempt = job.attempt,
        max_attempts = job.max_attempts,
        worker = %cfg.worker_id,
    );
    async move {
        let started = Instant::now();
        tracing::debug!("job started");
        let exec = execute(&deps, &cfg, &job).await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let queue = &deps.queue;
        let now = deps.now();
        let failed = matches!(exec, Exec::Done(Err(_)));
        let outcome = match exec {
            Exec::LeaseLost => {
                tracing::warn!(elapsed_ms, "lease lost while running: another worker has the job; abandoning this attempt");
                Outcome::LeaseLost
            }
            Exec::Done(Ok(value)) => match completions.complete(job.id, job.attempt, value).await {
                Ok(()) => {
                    tracing::info!(elapsed_ms, "job succeeded");
                    Outcome::Succeeded
                }
                Err(QueueError::LeaseLost { .. }) => {
                    tracing::warn!(elapsed_ms, "job finished but its lease was taken over: result discarded");
                    Outcome::LeaseLost
                }
                Err(e) => {
                    tracing::error!(elapsed_ms, error = %error_chain(&e), "could not record success; the job runs again after its lease expires");
                    Outcome::Unrecorded
                }
            },
            Exec::Done(Err(err)) => {
                let message = err.chain();
                let retry = err.is_retryable() && job.attempt < job.max_attempts;
                let retry_at = retry.then(|| {
                    let delay = chrono::Duration::from_std(cfg.backoff.delay(job.attempt))
                        .unwrap_or(chrono::Duration::zero());
                    now.checked_add_signed(delay).unwrap_or(now)
                });
                match queue.fail(job.id, job.attempt, &message, retry_at, now).await {
                    Ok(()) if retry => {
                        tracing::warn!(elapsed_ms, error = %message, retry_at = ?retry_at, "job failed; will retry");
                        Outcome::Retried
                    }
                    Ok(()) => {
                        tracing::error!(elapsed_ms, error = %message, retryable = err.is_retryable(), "job failed for good: dead");
                        Outcome::Dead
                    }
                    Err(QueueError::LeaseLost { .. }) => {
                        tracing::warn!(elapsed_ms, error = %message, "job failed but its lease was taken over: failure discarded");
                        Outcome::LeaseLost
                    }
                    Err(e) => {
                        tracing::error!(elapsed_ms, error = %error_chain(&e), job_error = %message, "could not record failure; the job runs again after its lease expires");
                        Outcome::Unrecorded
                    }
                }
            }
        };
        record_metrics(&job.kind, outcome, failed, started.elapsed());
        outcome
    }
    .instrument(span)
    .await
}

/// Counts a finished attempt of a `kind` job, its time, and whether the
/// job failed ([`crate::telemetry`]).
fn record_metrics(kind: &str, outcome: Outcome, failed: bool, elapsed: Duration) {
    let kind = kind.to_owned();
    let label = match outcome {
        Outcome::Succeeded => "succeeded",
        Outcome::Retried => "retried",
        Outcome::Dead => "dead",
        Outcome::LeaseLost => "lease_lost",
        Outcome::Unrecorded => "unrecorded",
    };
    metrics::counter!(telemetry::JOB_RUNS, "kind" => kind.clone(), "outcome" => label).increment(1);
    metrics::histogram!(telemetry::JOB_DURATION, "kind" => kind.clone())
        .record(elapsed.as_secs_f64());
    if failed {
        metrics::counter!(telemetry::JOB_FAILURES, "kind" => kind).increment(1);
    }
}

async fn open_tenant(
    deps: &WorkerDeps,
    id: TenantId,
) -> Result<(Tenant, Arc<dyn TenantStore>), JobError> {
    let store = deps.saas.store();
    let tenant = store
        .tenant(id)
        .await?
        // A deleted tenant is gone for its jobs, though its data is kept.
        .filter(|t| t.status != TenantStatus::Deleted)
        .ok_or(JobError::TenantGone { tenant: id })?;
    if tenant.status != TenantStatus::Active {
        return Err(JobError::TenantSuspended { tenant: id });
    }
    match store.open(&tenant).await {
        Ok(handle) => Ok((tenant, handle)),
        Err(Error::NotFound { .. }) => Err(JobError::TenantGone { tenant: id }),
        Err(e) => Err(e.into()),
    }
}

async fn execute(deps: &Arc<WorkerDeps>, cfg: &WorkerConfig, job: &LeasedJob) -> Exec {
    let Some(runner) = deps.registry.get(&job.kind).cloned() else {
        return Exec::Done(Err(JobError::UnknownKind {
            kind: job.kind.clone(),
        }));
    };
    let tenant = match (runner.scope(), job.tenant) {
        (JobScope::Tenant, Some(id)) => match open_tenant(deps, id).await {
            Ok(t) => Some(t),
            Err(e) => return Exec::Done(Err(e)),
        },
        (JobScope::Platform, None) => None,
        (scope, _) => {
            return Exec::Done(Err(JobError::WrongScope {
                kind: job.kind.clone(),
                expected: if scope == JobScope::Tenant {
                    "tenant"
                } else {
                    "platform"
                },
            }));
        }
    };
    let ctx = JobContext::new(
        JobMeta {
            id: job.id,
            kind: job.kind.clone(),
            attempt: job.attempt,
            max_attempts: job.max_attempts,
        },
        tenant,
        Arc::clone(deps),
    );
    let timeout = runner.timeout();
    let payload = job.payload.clone();
    let mut task = AbortOnDrop(tokio::spawn(
        async move { runner.run(&ctx, payload).await }.instrument(tracing::Span::current()),
    ));
    let beat = heartbeat(deps, cfg, job.id, job.attempt);
    tokio::select! {
        r = tokio::time::timeout(timeout, &mut task.0) => match r {
            Err(_) => Exec::Done(Err(JobError::Timeout(timeout))),
            Ok(Ok(result)) => Exec::Done(result),
            Ok(Err(join)) => {
                let msg = if join.is_panic() {
                    let p = join.into_panic();
                    p.downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "non-string panic".to_owned())
                } else {
                    "job task was cancelled".to_owned()
                };
                Exec::Done(Err(JobError::Panicked(msg)))
            }
        },
        () = beat => Exec::LeaseLost,
    }
}

/// Extends the lease every `heartbeat_interval`; returns only when the lease
/// is lost (fencing refused the beat).
async fn heartbeat(deps: &WorkerDeps, cfg: &WorkerConfig, id: JobId, attempt: u32) {
    // A beat interval at or above the lease would let the lease lapse between
    // beats; never beat less often than twice per lease.
    let period = cfg
        .heartbeat_interval
        .min(cfg.lease / 2)
        .max(Duration::from_millis(10));
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    let lease = chrono::Duration::from_std(cfg.lease).unwrap_or(chrono::Duration::seconds(60));
    loop {
        every.tick().await;
        let now = deps.now();
        let until = now.checked_add_signed(lease).unwrap_or(now);
        match deps.queue.heartbeat(id, attempt, until).await {
            Ok(()) => tracing::trace!(lease_until = %until, "heartbeat"),
            Err(QueueError::LeaseLost { .. } | QueueError::NotFound { .. }) => return,
            Err(e) => tracing::warn!(error = %error_chain(&e), "heartbeat failed; will try again"),
        }
    }
}
