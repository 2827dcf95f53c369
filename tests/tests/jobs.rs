//! Runtime tests: worker, scheduler and the built-in jobs, on `MemoryQueue`
//! and the kit's in-memory store; and the JobQueue conformance suite on
//! `MemoryQueue` (`memory::job_queue_conformance::…`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Duration as Delta, TimeZone, Utc};
use saas_core::Session;
use saas_core::clock::{Clock, SystemClock};
use saas_core::commands::Registration;
use saas_core::jobs::builtin::{
    BuiltinConfig, CheckOverdueTasks, CleanupOldData, FanOutPayload, FanOutTenants,
    GenerateProjectReport, PruneJobs, ReminderPayload, ReportPayload, SendTaskReminderEmail,
    WelcomeEmailListener, builtin_schedule,
};
use saas_core::jobs::mail::MemoryMailer;
use saas_core::jobs::memory::MemoryQueue;
use saas_core::jobs::*;
use saas_core::projects::{
    NewProjectRecord, NewTaskRecord, Priority, ProjectId, ProjectStatus, TaskStatus,
};
use saas_core::service::Saas;
use saas_core::store::{RefreshTokenRecord, Store, TenantStore};
use saas_core::tenancy::{NewTenant, Tenant, TenantId, TenantStatus};
use saas_core::users::{Role, User, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tests::clock::ManualClock;
use tests::memory::MemoryStore;
use tests::records::{admin_record, new_tenant, random_slug, user_record};

const SECRET: &[u8] = b"a test secret that is at least thirty-two bytes long";

struct Env {
    store: Arc<MemoryStore>,
    queue: Arc<MemoryQueue>,
    mailer: Arc<MemoryMailer>,
    jobs: Jobs,
}

fn env(register: impl FnOnce(JobsBuilder) -> JobsBuilder) -> Env {
    env_with(register, |b| b)
}

fn env_with(
    register: impl FnOnce(JobsBuilder) -> JobsBuilder,
    saas: impl FnOnce(saas_core::SaasBuilder) -> saas_core::SaasBuilder,
) -> Env {
    let store = Arc::new(MemoryStore::new());
    let queue = Arc::new(MemoryQueue::new());
    let mailer = Arc::new(MemoryMailer::new());
    let s = saas(Saas::builder(store.clone()).secret(SECRET))
        .build()
        .expect("service");
    let jobs = register(Jobs::builder(s, queue.clone()).mailer(mailer.clone())).build();
    Env {
        store,
        queue,
        mailer,
        jobs,
    }
}

fn fast(id: &str) -> WorkerConfig {
    WorkerConfig {
        worker_id: id.into(),
        concurrency: 4,
        batch_size: 4,
        lease: Duration::from_secs(2),
        heartbeat_interval: Duration::from_millis(100),
        poll_interval: Duration::from_millis(20),
        grace_period: Duration::from_secs(2),
        backoff: Backoff {
            base: Duration::from_millis(1),
            max: Duration::from_millis(5),
        },
    }
}

async fn tenant(store: &MemoryStore, plan: &str) -> (Tenant, User) {
    let new = NewTenant {
        plan: plan.into(),
        ..new_tenant()
    };
    store
        .create_tenant(&new, &admin_record())
        .await
        .expect("tenant")
}

async fn handle(store: &MemoryStore, t: &Tenant) -> Arc<dyn TenantStore> {
    store.open(t).await.expect("open")
}

/// A new member of the tenant `h` stores.
async fn member(h: &Arc<dyn TenantStore>, username: &str) -> User {
    h.create_user(&user_record(username, Role::Member), None)
        .await
        .expect("user")
}

/// A session of `admin` in `t`, through the jobs runtime's service.
async fn session_of(e: &Env, t: &Tenant, admin: &User) -> Session {
    e.jobs.saas().session(t, admin.id).await.expect("session")
}

async fn status(q: &MemoryQueue, id: JobId) -> JobRecord {
    q.job(id).await.expect("job").expect("exists")
}

/// Runs workers until every job in `ids` is finished (bounded).
async fn drain(w: &Worker, q: &MemoryQueue, ids: &[JobId]) {
    for _ in 0..500 {
        w.run_until_idle().await;
        let mut done = true;
        for id in ids {
            done &= status(q, *id).await.status.is_finished();
        }
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("jobs did not finish: {:?}", q.snapshot());
}

// --- test job kinds -----------------------------------------------------------

#[derive(Debug)]
struct Echo;

#[async_trait]
impl Job for Echo {
    const KIND: &'static str = "test_echo";
    const SCOPE: JobScope = JobScope::Platform;
    type Payload = Value;
    type Output = Value;
    async fn run(&self, _: &JobContext, p: Value) -> Result<Value, JobError> {
        Ok(json!({ "echo": p }))
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct FlakyPayload {
    succeed_from: u32,
}

#[derive(Debug)]
struct Flaky;

#[async_trait]
impl Job for Flaky {
    const KIND: &'static str = "test_flaky";
    const SCOPE: JobScope = JobScope::Platform;
    const MAX_ATTEMPTS: u32 = 3;
    type Payload = FlakyPayload;
    type Output = u32;
    async fn run(&self, ctx: &JobContext, p: FlakyPayload) -> Result<u32, JobError> {
        if ctx.meta().attempt < p.succeed_from {
            Err(JobError::retryable(format!(
                "attempt {} failed",
                ctx.meta().attempt
            )))
        } else {
            Ok(ctx.meta().attempt)
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct SleepPayload {
    ms: u64,
    /// Sleep only on this attempt (all when absent).
    only_attempt: Option<u32>,
}

#[derive(Debug, Default)]
struct Sleepy {
    started: AtomicU32,
}

#[async_trait]
impl Job for Sleepy {
    const KIND: &'static str = "test_sleepy";
    const SCOPE: JobScope = JobScope::Platform;
    type Payload = SleepPayload;
    type Output = u32;
    async fn run(&self, ctx: &JobContext, p: SleepPayload) -> Result<u32, JobError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        if p.only_attempt.is_none_or(|a| a == ctx.meta().attempt) {
            tokio::time::sleep(Duration::from_millis(p.ms)).await;
        }
        Ok(ctx.meta().attempt)
    }
}

#[derive(Debug)]
struct TooSlow;

#[async_trait]
impl Job for TooSlow {
    const KIND: &'static str = "test_too_slow";
    const SCOPE: JobScope = JobScope::Platform;
    const TIMEOUT: Duration = Duration::from_millis(50);
    type Payload = Value;
    type Output = ();
    async fn run(&self, _: &JobContext, _: Value) -> Result<(), JobError> {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok(())
    }
}

#[derive(Debug)]
struct Panics;

#[async_trait]
impl Job for Panics {
    const KIND: &'static str = "test_panics";
    const SCOPE: JobScope = JobScope::Platform;
    type Payload = Value;
    type Output = ();
    async fn run(&self, _: &JobContext, _: Value) -> Result<(), JobError> {
        panic!("kaboom")
    }
}

#[derive(Debug)]
struct TenantInfo;

#[async_trait]
impl Job for TenantInfo {
    const KIND: &'static str = "test_tenant_info";
    type Payload = Value;
    type Output = Value;
    async fn run(&self, ctx: &JobContext, _: Value) -> Result<Value, JobError> {
        let t = ctx.tenant()?;
        let n = ctx.store()?.count_users().await?;
        assert_eq!(
            ctx.store()?.tenant_id(),
            t.id,
            "the handle is the job's tenant's"
        );
        Ok(json!({ "slug": t.slug, "users": n }))
    }
}

// --- worker ---------------------------------------------------------------------

#[tokio::test]
async fn worker_runs_jobs_to_success_and_results_are_readable() {
    let e = env(|b| b.register(Echo));
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(
            e.jobs
                .enqueue_job::<Echo>(None, &json!(i))
                .await
                .expect("enqueue")
                .id,
        );
    }
    let w = e.jobs.worker(fast("w1"));
    let stats = w.run_until_idle().await;
    assert_eq!(stats.succeeded, 10);
    assert_eq!(stats.claimed, 10);
    for (i, id) in ids.iter().enumerate() {
        let r = e.jobs.job(*id).await.expect("job");
        assert!(r.ready());
        assert_eq!(r.get(), Some(&json!({ "echo": i })));
        assert_eq!(r.attempts, 1);
        assert_eq!(r.worker.as_deref(), Some("w1"));
    }
}

#[tokio::test]
async fn worker_only_claims_kinds_it_knows() {
    let e = env(|b| b.register(Echo));
    let foreign = e
        .jobs
        .enqueue(&NewJob::new("someone_elses_kind", json!({})))
        .await
        .expect("enqueue")
        .id;
    e.jobs.worker(fast("w")).run_until_idle().await;
    assert_eq!(status(&e.queue, foreign).await.status, JobStatus::Queued);
}

#[tokio::test]
async fn failing_job_retries_with_backoff_then_dead_and_can_be_retried() {
    let e = env(|b| b.register(Flaky));
    let id = e
        .jobs
        .enqueue_job::<Flaky>(None, &FlakyPayload { succeed_from: 5 })
        .await
        .expect("enqueue")
        .id;
    let mut cfg = fast("w");
    cfg.backoff = Backoff {
        base: Duration::from_millis(20),
        max: Duration::from_millis(40),
    };
    let w = e.jobs.worker(cfg.clone());
    // First attempt: retrying, with run_at within the backoff ceiling.
    let before = Utc::now();
    w.run_until_idle().await;
    let r = status(&e.queue, id).await;
    assert_eq!(r.status, JobStatus::Retrying);
    assert_eq!(r.attempts, 1);
    assert_eq!(r.last_error.as_deref(), Some("attempt 1 failed"));
    assert!(r.run_at >= before);
    assert!(
        r.run_at <= Utc::now() + Delta::milliseconds(20),
        "delay within the first ceiling"
    );

    drain(&w, &e.queue, &[id]).await;
    let r = status(&e.queue, id).await;
    assert_eq!(r.status, JobStatus::Dead, "out of attempts");
    assert_eq!(r.attempts, 3);
    assert_eq!(r.last_error.as_deref(), Some("attempt 3 failed"));

    // Retried with two more attempts: attempt 5 succeeds.
    let r = e.jobs.retry(id, 2).await.expect("retry");
    assert_eq!(r.status, JobStatus::Queued);
    drain(&w, &e.queue, &[id]).await;
    let r = status(&e.queue, id).await;
    assert_eq!(r.status, JobStatus::Succeeded);
    assert_eq!(r.get(), Some(&json!(5)));
}

#[test]
fn backoff_is_exponential_with_full_jitter() {
    let b = Backoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(60),
    };
    assert_eq!(b.ceiling(1), Duration::from_secs(1));
    assert_eq!(b.ceiling(2), Duration::from_secs(2));
    assert_eq!(b.ceiling(5), Duration::from_secs(16));
    assert_eq!(b.ceiling(7), Duration::from_secs(60));
    assert_eq!(b.ceiling(1000), Duration::from_secs(60));
    let delays: Vec<Duration> = (0..200).map(|_| b.delay(4)).collect();
    assert!(delays.iter().all(|d| *d <= Duration::from_secs(8)));
    let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
    assert!(distinct.len() > 100, "jittered, not fixed");
    assert!(
        delays.iter().any(|d| *d < Duration::from_secs(4)),
        "full jitter reaches low"
    );
}

#[tokio::test]
async fn job_of_a_crashed_worker_runs_again_after_lease_expiry() {
    let e = env(|b| b.register(Echo));
    let id = e
        .jobs
        .enqueue_job::<Echo>(None, &json!("again"))
        .await
        .expect("enqueue")
        .id;
    // A worker claims it and dies (never completes, never beats).
    let lease = Duration::from_millis(150);
    let crashed = e
        .queue
        .claim(
            &ClaimRequest {
                worker: "crashed".into(),
                lease,
                limit: 1,
                kinds: vec![],
            },
            Utc::now(),
        )
        .await
        .expect("claim");
    assert_eq!(crashed.len(), 1);
    let w = e.jobs.worker(fast("rescuer"));
    let stats = w.run_until_idle().await;
    assert_eq!(stats.claimed, 0, "not before the lease expires");
    tokio::time::sleep(lease + Duration::from_millis(50)).await;
    let stats = w.run_until_idle().await;
    assert_eq!(stats.succeeded, 1);
    let r = status(&e.queue, id).await;
    assert_eq!(r.status, JobStatus::Succeeded);
    assert_eq!(r.attempts, 2);
    assert_eq!(r.worker.as_deref(), Some("rescuer"));
    // The crashed worker comes back: fenced.
    let late = e.queue.complete(id, 1, &json!("stale"), Utc::now()).await;
    assert!(matches!(late, Err(QueueError::LeaseLost { .. })));
    assert_eq!(
        status(&e.queue, id).await.get(),
        Some(&json!({"echo": "again"}))
    );
}

#[tokio::test]
async fn heartbeats_keep_a_long_job_leased() {
    let sleepy = Sleepy::default();
    let e = env(|b| b.register(sleepy));
    let id = e
        .jobs
        .enqueue_job::<Sleepy>(
            None,
            &SleepPayload {
                ms: 700,
                only_attempt: None,
            },
        )
        .await
        .expect("enqueue")
        .id;
    let mut cfg = fast("w");
    cfg.lease = Duration::from_millis(250);
    cfg.heartbeat_interval = Duration::from_millis(50);
    let w = e.jobs.worker(cfg);
    let run = tokio::spawn(async move { w.run_until_idle().await });
    // Well past the original lease, a thief finds nothing to steal.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(120)).await;
        let stolen = e
            .queue
            .claim(
                &ClaimRequest {
                    worker: "thief".into(),
                    lease: Duration::from_secs(10),
                    limit: 10,
                    kinds: vec![],
                },
                Utc::now(),
            )
            .await
            .expect("claim");
        assert!(stolen.is_empty(), "lease kept alive by heartbeats");
    }
    let stats = run.await.expect("worker");
    assert_eq!(stats.succeeded, 1);
    assert_eq!(status(&e.queue, id).await.attempts, 1);
}

#[tokio::test]
async fn per_job_timeout_fails_the_attempt() {
    let e = env(|b| b.register(TooSlow));
    let job = new_job::<TooSlow>(None, &json!({}))
        .expect("job")
        .max_attempts(2);
    let id = e.jobs.enqueue(&job).await.expect("enqueue").id;
    let w = e.jobs.worker(fast("w"));
    drain(&w, &e.queue, &[id]).await;
    let r = status(&e.queue, id).await;
    assert_eq!(r.status, JobStatus::Dead);
    assert_eq!(r.attempts, 2, "a timeout is retried");
    assert!(
        r.last_error.as_deref().unwrap_or("").contains("timed out"),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_panicking_job_fails_instead_of_killing_the_worker() {
    let e = env(|b| b.register(Panics).register(Echo));
    let job = new_job::<Panics>(None, &json!({}))
        .expect("job")
        .max_attempts(1);
    let bad = e.jobs.enqueue(&job).await.expect("enqueue").id;
    let good = e
        .jobs
        .enqueue_job::<Echo>(None, &json!(1))
        .await
        .expect("enqueue")
        .id;
    let w = e.jobs.worker(fast("w"));
    drain(&w, &e.queue, &[bad, good]).await;
    let r = status(&e.queue, bad).await;
    assert_eq!(r.status, JobStatus::Dead);
    assert!(
        r.last_error.as_deref().unwrap_or("").contains("kaboom"),
        "{r:?}"
    );
    assert_eq!(status(&e.queue, good).await.status, JobStatus::Succeeded);
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_and_stops_claiming() {
    let e = env(|b| b.register(Sleepy::default()));
    let mut cfg = fast("w");
    cfg.concurrency = 1;
    cfg.batch_size = 1;
    let p = SleepPayload {
        ms: 300,
        only_attempt: None,
    };
    let first = e
        .jobs
        .enqueue_job::<Sleepy>(None, &p)
        .await
        .expect("enqueue")
        .id;
    let second = e
        .jobs
        .enqueue_job::<Sleepy>(None, &p)
        .await
        .expect("enqueue")
        .id;
    let w = e.jobs.worker(cfg);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(async move {
        w.run(async {
            let _ = rx.await;
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    tx.send(()).expect("signal");
    let stats = run.await.expect("worker");
    assert_eq!(stats.succeeded, 1, "the in-flight job finished");
    assert_eq!(stats.abandoned, 0);
    assert_eq!(status(&e.queue, first).await.status, JobStatus::Succeeded);
    assert_eq!(
        status(&e.queue, second).await.status,
        JobStatus::Queued,
        "no new claims after shutdown"
    );
}

#[tokio::test]
async fn shutdown_past_the_grace_period_gives_jobs_back_at_once() {
    let e = env(|b| b.register(Sleepy::default()));
    let mut cfg = fast("w");
    cfg.grace_period = Duration::from_millis(100);
    cfg.lease = Duration::from_secs(3600);
    let id = e
        .jobs
        .enqueue_job::<Sleepy>(
            None,
            &SleepPayload {
                ms: 10_000,
                only_attempt: Some(1),
            },
        )
        .await
        .expect("enqueue")
        .id;
    let max_attempts = status(&e.queue, id).await.max_attempts;
    let w = e.jobs.worker(cfg);
    let stats = w.run(tokio::time::sleep(Duration::from_millis(100))).await;
    assert_eq!(stats.abandoned, 1);
    assert_eq!(stats.released, 1);
    let r = status(&e.queue, id).await;
    assert_eq!(r.status, JobStatus::Queued, "given back, not left leased");
    assert_eq!(r.lease_until, None);
    assert_eq!(r.attempts, 1);
    assert_eq!(
        r.max_attempts,
        max_attempts + 1,
        "the attempt is not counted"
    );
    // Another worker runs it at once, an hour before the lease would have ended.
    let again = e.jobs.worker(fast("w2"));
    drain(&again, &e.queue, &[id]).await;
    let r = status(&e.queue, id).await;
    assert_eq!(r.status, JobStatus::Succeeded);
    assert_eq!(r.get(), Some(&json!(2)));
}

#[tokio::test]
async fn tenant_jobs_get_their_tenant_and_fail_closed_when_it_is_gone_or_suspended() {
    let e = env(|b| b.register(TenantInfo));
    let (ok, _) = tenant(&e.store, "basic").await;
    let (suspended, _) = tenant(&e.store, "basic").await;
    let (deleted, _) = tenant(&e.store, "basic").await;
    let (purged, _) = tenant(&e.store, "basic").await;
    e.store
        .set_status(suspended.id, TenantStatus::Suspended)
        .await
        .expect("suspend");
    e.store
        .delete_tenant(deleted.id, Utc::now())
        .await
        .expect("delete");
    e.store.purge_tenant(purged.id, None).await.expect("purge");
    let enq = |t: Option<TenantId>| {
        let jobs = e.jobs.clone();
        async move {
            jobs.enqueue_job::<TenantInfo>(t, &json!({}))
                .await
                .expect("enqueue")
                .id
        }
    };
    let a = enq(Some(ok.id)).await;
    let b = enq(Some(suspended.id)).await;
    let c = enq(Some(deleted.id)).await;
    let d = enq(Some(TenantId::new())).await;
    let p = enq(Some(purged.id)).await;
    let none = enq(None).await;
    let w = e.jobs.worker(fast("w"));
    drain(&w, &e.queue, &[a, b, c, d, p, none]).await;

    let r = status(&e.queue, a).await;
    assert_eq!(r.get(), Some(&json!({ "slug": ok.slug, "users": 1 })));
    for (id, needle) in [
        (b, "is suspended"),
        (c, "no longer exists"),
        (d, "no longer exists"),
        (p, "no longer exists"),
        (none, "is a tenant job"),
    ] {
        let r = status(&e.queue, id).await;
        assert_eq!(r.status, JobStatus::Dead, "{r:?}");
        assert_eq!(r.attempts, 1, "no retries: {r:?}");
        assert!(
            r.last_error.as_deref().unwrap_or("").contains(needle),
            "{r:?}"
        );
    }
}

#[tokio::test]
async fn job_lookup_is_scoped_to_the_tenant() {
    let e = env(|b| b.register(TenantInfo));
    let (a, _) = tenant(&e.store, "basic").await;
    let (b, _) = tenant(&e.store, "basic").await;
    let id = e
        .jobs
        .enqueue_job::<TenantInfo>(Some(a.id), &json!({}))
        .await
        .expect("enqueue")
        .id;
    assert!(e.jobs.job_for_tenant(a.id, id).await.is_ok());
    assert!(matches!(
        e.jobs.job_for_tenant(b.id, id).await,
        Err(saas_core::Error::NotFound {
            entity: saas_core::Entity::Job
        })
    ));
}

// --- scheduler -------------------------------------------------------------------

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .expect("valid time")
}

#[test]
fn periods_are_the_latest_occurrence_at_or_before_now() {
    let p = Periodic::new("daily", "0 0 8 * * *", NewJob::new("x", json!({}))).expect("periodic");
    assert_eq!(
        p.period_at(utc(2030, 5, 2, 8, 0, 0)),
        Some(utc(2030, 5, 2, 8, 0, 0))
    );
    assert_eq!(
        p.period_at(utc(2030, 5, 2, 7, 59, 59)),
        Some(utc(2030, 5, 1, 8, 0, 0))
    );
    assert_eq!(
        p.period_at(utc(2030, 5, 2, 23, 0, 0)),
        Some(utc(2030, 5, 2, 8, 0, 0))
    );
    let frac = utc(2030, 5, 2, 8, 0, 0) + Delta::milliseconds(300);
    assert_eq!(p.period_at(frac), Some(utc(2030, 5, 2, 8, 0, 0)));
    let secs = Periodic::new("s", "* * * * * *", NewJob::new("x", json!({}))).expect("periodic");
    assert_eq!(secs.period_at(frac), Some(utc(2030, 5, 2, 8, 0, 0)));
    assert_eq!(
        secs.period_at(frac - Delta::milliseconds(301)),
        Some(utc(2030, 5, 2, 7, 59, 59))
    );
    assert_eq!(
        p.key(utc(2030, 5, 2, 8, 0, 0)),
        "periodic:daily:2030-05-02T08:00:00Z"
    );
    assert_eq!(
        p.next_after(utc(2030, 5, 2, 8, 0, 0)),
        Some(utc(2030, 5, 3, 8, 0, 0))
    );
    assert!(Periodic::new("bad", "not cron", NewJob::new("x", json!({}))).is_err());
    assert!(Periodic::new("bad name!", "0 0 8 * * *", NewJob::new("x", json!({}))).is_err());
    assert_eq!(builtin_schedule().expect("builtin").len(), 5);
}

#[tokio::test]
async fn three_racing_schedulers_enqueue_each_period_exactly_once() {
    let queue = Arc::new(MemoryQueue::new());
    let clock = Arc::new(ManualClock::new(utc(2030, 1, 1, 0, 0, 30)));
    let entry = || {
        Periodic::new("minutely", "0 * * * * *", NewJob::new("tick", json!({}))).expect("periodic")
    };
    let schedulers: Vec<Scheduler> = (0..3)
        .map(|_| Scheduler::new(queue.clone(), clock.clone()).entry(entry()))
        .collect();
    let mut created = 0;
    for step in 0..40 {
        // Every 20 seconds for ~13 minutes: each minute is seen by several ticks.
        clock.set(utc(2030, 1, 1, 0, 0, 30) + Delta::seconds(step * 20));
        let (a, b, c) = tokio::join!(
            schedulers[0].tick(),
            schedulers[1].tick(),
            schedulers[2].tick()
        );
        for f in a.iter().chain(&b).chain(&c) {
            created += usize::from(f.enqueued.created);
        }
    }
    let jobs = queue.snapshot();
    let mut keys: Vec<String> = jobs.iter().filter_map(|j| j.unique_key.clone()).collect();
    keys.sort();
    let n = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), n, "no period twice");
    // Periods 00:00 … 00:13 (the last tick is at 00:13:30).
    assert_eq!(n, 14, "{keys:?}");
    assert_eq!(created, 14);
    assert_eq!(keys[0], "periodic:minutely:2030-01-01T00:00:00Z");
}

#[tokio::test]
async fn a_finished_period_is_not_enqueued_again_by_a_late_scheduler() {
    let queue = Arc::new(MemoryQueue::new());
    let clock = Arc::new(ManualClock::new(utc(2030, 1, 1, 8, 0, 1)));
    let p =
        Periodic::new("daily", "0 0 8 * * *", NewJob::new("tick", json!({}))).expect("periodic");
    let s1 = Scheduler::new(queue.clone(), clock.clone()).entry(p.clone());
    let fired = s1.tick().await;
    assert!(fired[0].enqueued.created);
    let now = clock.now();
    let got = queue
        .claim(
            &ClaimRequest {
                worker: "w".into(),
                lease: Duration::from_secs(5),
                limit: 1,
                kinds: vec![],
            },
            now,
        )
        .await
        .expect("claim");
    queue
        .complete(got[0].id, 1, &json!(null), now)
        .await
        .expect("complete");
    clock.set(utc(2030, 1, 1, 9, 0, 0));
    let s2 = Scheduler::new(queue.clone(), clock.clone()).entry(p);
    assert!(
        !s2.tick().await[0].enqueued.created,
        "the period's key outlives its job's run"
    );
    assert_eq!(queue.len(), 1);
}

#[tokio::test]
async fn missed_periods_skip_or_run_once() {
    let queue = Arc::new(MemoryQueue::new());
    // Started ten hours after today's 08:00 and long after earlier days.
    let clock = Arc::new(ManualClock::new(utc(2030, 1, 5, 18, 0, 0)));
    let job = NewJob::new("tick", json!({}));
    let skip = Periodic::new("skip", "0 0 8 * * *", job.clone())
        .expect("periodic")
        .missed(Missed::Skip);
    let once = Periodic::new("once", "0 0 8 * * *", job).expect("periodic");
    let s = Scheduler::new(queue.clone(), clock.clone())
        .entry(skip)
        .entry(once);
    let fired = s.tick().await;
    assert_eq!(fired.len(), 1, "Skip drops the late period");
    assert_eq!(fired[0].name, "once");
    assert_eq!(
        fired[0].period,
        utc(2030, 1, 5, 8, 0, 0),
        "RunOnce runs only the latest"
    );
    clock.set(utc(2030, 1, 6, 8, 0, 30));
    let fired = s.tick().await;
    assert_eq!(fired.len(), 2, "on time: both");
}

#[tokio::test]
async fn scheduler_run_loop_ticks_on_the_system_clock() {
    let queue = Arc::new(MemoryQueue::new());
    let mk = || {
        Scheduler::new(queue.clone(), Arc::new(SystemClock)).entry(
            Periodic::new(
                "every_second",
                "* * * * * *",
                NewJob::new("tick", json!({})),
            )
            .expect("periodic"),
        )
    };
    let (s1, s2, s3) = (mk(), mk(), mk());
    let stop = || tokio::time::sleep(Duration::from_millis(2300));
    tokio::join!(s1.run(stop()), s2.run(stop()), s3.run(stop()));
    let n = queue.len();
    assert!((2..=4).contains(&n), "one job per elapsed second, got {n}");
}

// --- built-in jobs -------------------------------------------------------------------

async fn project_with_tasks(
    h: &Arc<dyn TenantStore>,
    owner: &User,
    assignees: &[&User],
) -> ProjectId {
    let now = Utc::now();
    let p = h
        .create_project(
            &NewProjectRecord {
                name: "Website".into(),
                description: "Relaunch".into(),
                status: ProjectStatus::Active,
                start_date: None,
                end_date: None,
                owner: owner.id,
                created_at: now,
            },
            None,
        )
        .await
        .expect("project");
    for a in assignees {
        h.add_member(p.id, a.id).await.expect("member");
    }
    p.id
}

#[allow(clippy::too_many_arguments)]
async fn task(
    h: &Arc<dyn TenantStore>,
    project: ProjectId,
    creator: UserId,
    title: &str,
    assignee: Option<UserId>,
    status: TaskStatus,
    priority: Priority,
    due: Option<DateTime<Utc>>,
    completed: Option<DateTime<Utc>>,
) {
    h.create_task(
        &NewTaskRecord {
            project_id: project,
            title: title.into(),
            description: String::new(),
            status,
            priority,
            assigned_to: assignee,
            created_by: creator,
            due_date: due,
            completed_at: completed,
            created_at: Utc::now(),
        },
        None,
    )
    .await
    .expect("task");
}

fn builtin_env() -> Env {
    env(|b| b.builtin(BuiltinConfig::default()))
}

#[tokio::test]
async fn welcome_email_is_sent_when_a_user_registers() {
    let queue = Arc::new(MemoryQueue::new());
    let store = Arc::new(MemoryStore::new());
    let mailer = Arc::new(MemoryMailer::new());
    let saas = Saas::builder(store.clone())
        .secret(SECRET)
        .listener(Arc::new(WelcomeEmailListener::new(
            queue.clone(),
            Arc::new(SystemClock),
        )))
        .build()
        .expect("service");
    let jobs = Jobs::builder(saas.clone(), queue.clone())
        .mailer(mailer.clone())
        .builtin(BuiltinConfig::default())
        .build();
    let slug = random_slug().as_str().to_owned();
    saas.register(Registration {
        company_name: "Acme Corp".into(),
        schema_name: slug.clone(),
        domain_url: format!("{}.localhost", slug.replace('_', "-")),
        admin_username: "boss".into(),
        admin_email: "boss@acme.test".into(),
        admin_password: "correct horse battery staple".into(),
        subscription_plan: Some("basic".into()),
    })
    .await
    .expect("register");
    let queued = queue.snapshot();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].kind, "send_welcome_email");
    assert!(queued[0].tenant.is_some());
    jobs.worker(fast("w")).run_until_idle().await;
    let sent = mailer.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, vec!["boss@acme.test".to_owned()]);
    assert_eq!(sent[0].subject, "Welcome to Acme Corp");
    assert!(sent[0].body.contains("boss"), "{}", sent[0].body);
}

#[tokio::test]
async fn reminders_go_to_assignees_of_open_tasks_due_within_the_window() {
    let e = builtin_env();
    let (t, admin) = tenant(&e.store, "basic").await;
    let h = handle(&e.store, &t).await;
    let alice = member(&h, "alice").await;
    let bob = member(&h, "bob").await;
    let p = project_with_tasks(&h, &admin, &[&alice, &bob]).await;
    let now = Utc::now();
    let hours = |n: i64| Some(now + Delta::hours(n));
    task(
        &h,
        p,
        admin.id,
        "Soon A1",
        Some(alice.id),
        TaskStatus::Todo,
        Priority::High,
        hours(2),
        None,
    )
    .await;
    task(
        &h,
        p,
        admin.id,
        "Soon A2",
        Some(alice.id),
        TaskStatus::InProgress,
        Priority::Low,
        hours(20),
        None,
    )
    .await;
    task(
        &h,
        p,
        admin.id,
        "Soon B done",
        Some(bob.id),
        TaskStatus::Done,
        Priority::Low,
        hours(3),
        Some(now),
    )
    .await;
    task(
        &h,
        p,
        admin.id,
        "Later B",
        Some(bob.id),
        TaskStatus::Todo,
        Priority::Low,
        hours(48),
        None,
    )
    .await;
    task(
        &h,
        p,
        admin.id,
        "Past B",
        Some(bob.id),
        TaskStatus::Todo,
        Priority::Low,
        hours(-5),
        None,
    )
    .await;
    task(
        &h,
        p,
        admin.id,
        "Soon nobody",
        None,
        TaskStatus::Todo,
        Priority::Low,
        hours(1),
        None,
    )
    .await;
    let id = e
        .jobs
        .enqueue_job::<SendTaskReminderEmail>(Some(t.id), &ReminderPayload::default())
        .await
        .expect("enqueue")
        .id;
    e.jobs.worker(fast("w")).run_until_idle().await;
    let r = status(&e.queue, id).await;
    assert_eq!(
        r.get(),
        Some(&json!({ "tasks": 3, "emails_sent": 1 })),
        "{r:?}"
    );
    let sent = e.mailer.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, vec!["alice@acme.test".to_owned()]);
    assert!(sent[0].body.contains("Soon A1") && sent[0].body.contains("Soon A2"));
    assert!(sent[0].subject.contains("2 tasks"), "{}", sent[0].subject);

    // One task by id (the seed's form).
    e.mailer.clear();
    let payload = ReminderPayload {
        task_id: Some(saas_core::projects::TaskId(i64::MAX)),
        within_hours: None,
    };
    e.jobs
        .enqueue_job::<SendTaskReminderEmail>(Some(t.id), &payload)
        .await
        .expect("enqueue");
    e.jobs.worker(fast("w")).run_until_idle().await;
    assert!(e.mailer.sent().is_empty(), "unknown task: nothing sent");
}

#[tokio::test]
async fn daily_overdue_check_fans_out_to_active_tenants_and_emails_assignees() {
    let e = builtin_env();
    let (t1, admin1) = tenant(&e.store, "basic").await;
    let (t2, admin2) = tenant(&e.store, "free").await;
    let (t3, admin3) = tenant(&e.store, "basic").await;
    let past = Some(Utc::now() - Delta::days(2));
    for (t, admin) in [(&t1, &admin1), (&t2, &admin2), (&t3, &admin3)] {
        let h = handle(&e.store, t).await;
        let carol = member(&h, "carol").await;
        let p = project_with_tasks(&h, admin, &[&carol]).await;
        task(
            &h,
            p,
            admin.id,
            "Late one",
            Some(carol.id),
            TaskStatus::Todo,
            Priority::High,
            past,
            None,
        )
        .await;
        task(
            &h,
            p,
            admin.id,
            "Late but done",
            Some(carol.id),
            TaskStatus::Done,
            Priority::High,
            past,
            past,
        )
        .await;
        task(
            &h,
            p,
            admin.id,
            "Admin's late",
            Some(admin.id),
            TaskStatus::Review,
            Priority::Low,
            past,
            None,
        )
        .await;
    }
    e.store
        .set_status(t3.id, TenantStatus::Suspended)
        .await
        .expect("suspend");
    // What the scheduler enqueues daily.
    let entry = builtin_schedule()
        .expect("schedule")
        .into_iter()
        .find(|p| p.name() == "check_overdue_tasks")
        .expect("entry");
    let sched = Scheduler::new(e.queue.clone(), Arc::new(SystemClock)).entry(entry);
    let fired = sched.tick().await;
    assert_eq!(fired.len(), 1);
    let fan = fired[0].enqueued.id;
    let w = e.jobs.worker(fast("w"));
    w.run_until_idle().await;
    let r = status(&e.queue, fan).await;
    assert_eq!(
        r.get(),
        Some(&json!({ "tenants": 2, "enqueued": 2 })),
        "{r:?}"
    );
    let per_tenant: Vec<JobRecord> = e
        .queue
        .snapshot()
        .into_iter()
        .filter(|j| j.kind == CheckOverdueTasks::KIND)
        .collect();
    assert_eq!(per_tenant.len(), 2);
    for j in &per_tenant {
        assert_eq!(j.status, JobStatus::Succeeded);
        assert_eq!(j.get(), Some(&json!({ "tasks": 2, "emails_sent": 2 })));
    }
    let mut to: Vec<String> = e.mailer.sent().into_iter().flat_map(|m| m.to).collect();
    to.sort();
    assert_eq!(
        to,
        vec![
            "admin@acme.test",
            "admin@acme.test",
            "carol@acme.test",
            "carol@acme.test"
        ]
    );
    assert!(
        e.mailer
            .sent()
            .iter()
            .all(|m| m.body.contains("overdue") && !m.body.contains("Late but done"))
    );

    // A retried fan-out (same job id) does not enqueue the children twice.
    let ctx = JobContext::new(
        JobMeta {
            id: fan,
            kind: FanOutTenants::KIND.into(),
            attempt: 2,
            max_attempts: 3,
        },
        None,
        Arc::new(WorkerDeps {
            saas: e.jobs.saas().clone(),
            queue: e.queue.clone(),
            mailer: e.mailer.clone(),
            clock: Arc::new(SystemClock),
            registry: JobRegistry::new(),
        }),
    );
    let again = FanOutPayload {
        kind: CheckOverdueTasks::KIND.into(),
        payload: json!({}),
    };
    let summary = FanOutTenants.run(&ctx, again).await.expect("fan out again");
    assert_eq!((summary.tenants, summary.enqueued), (2, 0));
}

#[tokio::test]
async fn project_report_is_the_jobs_result_and_needs_the_plans_reports() {
    let e = builtin_env();
    let (t, admin) = tenant(&e.store, "basic").await;
    let h = handle(&e.store, &t).await;
    let alice = member(&h, "alice").await;
    let p = project_with_tasks(&h, &admin, &[&alice]).await;
    let now = Utc::now();
    task(
        &h,
        p,
        admin.id,
        "A",
        Some(alice.id),
        TaskStatus::Done,
        Priority::High,
        None,
        Some(now),
    )
    .await;
    task(
        &h,
        p,
        admin.id,
        "B",
        Some(alice.id),
        TaskStatus::Todo,
        Priority::Urgent,
        Some(now - Delta::days(1)),
        None,
    )
    .await;
    task(
        &h,
        p,
        admin.id,
        "C",
        None,
        TaskStatus::InProgress,
        Priority::Low,
        None,
        None,
    )
    .await;

    // Through a session, as POST /api/projects/{id}/report/ does.
    let session = session_of(&e, &t, &admin).await;
    let id = e.jobs.request_report(&session, p).await.expect("report").id;
    e.jobs.worker(fast("w")).run_until_idle().await;
    let r = e.jobs.job_for_tenant(t.id, id).await.expect("job");
    assert!(r.ready());
    let report = r.get().expect("result").clone();
    assert_eq!(report["project"]["name"], "Website");
    assert_eq!(report["project"]["owner"]["username"], "admin");
    assert_eq!(report["members"][0]["username"], "alice");
    assert_eq!(report["total_tasks"], 3);
    assert_eq!(
        report["tasks_by_status"],
        json!({"todo": 1, "in_progress": 1, "review": 0, "done": 1})
    );
    assert_eq!(
        report["tasks_by_priority"],
        json!({"low": 1, "medium": 0, "high": 1, "urgent": 1})
    );
    assert_eq!(report["overdue_tasks"], 1);
    assert_eq!(report["completion_rate"], 33.3);
    assert_eq!(report["unassigned_tasks"], 1);
    assert_eq!(
        report["assignees"],
        json!([{"user_id": alice.id, "username": "alice", "total": 2, "done": 1, "open": 1, "overdue": 1}])
    );
    assert_eq!(report["truncated"], false);

    // The free plan has no reports: refused up front, and at run time (dead, no retry).
    let (free, free_admin) = tenant(&e.store, "free").await;
    let fh = handle(&e.store, &free).await;
    let fp = project_with_tasks(&fh, &free_admin, &[]).await;
    let s = session_of(&e, &free, &free_admin).await;
    assert!(matches!(
        e.jobs.request_report(&s, fp).await,
        Err(saas_core::Error::PlanLimitExceeded {
            resource: saas_core::Resource::Reports,
            ..
        })
    ));
    let id = e
        .jobs
        .enqueue_job::<GenerateProjectReport>(Some(free.id), &ReportPayload { project_id: fp })
        .await
        .expect("enqueue")
        .id;
    e.jobs.worker(fast("w")).run_until_idle().await;
    let r = status(&e.queue, id).await;
    assert_eq!(r.status, JobStatus::Dead);
    assert_eq!(r.attempts, 1);
    assert!(
        r.last_error.as_deref().unwrap_or("").contains("plan limit"),
        "{r:?}"
    );

    // A missing project: dead, no retry.
    let id = e
        .jobs
        .enqueue_job::<GenerateProjectReport>(
            Some(t.id),
            &ReportPayload {
                project_id: ProjectId(9_999),
            },
        )
        .await
        .expect("enqueue")
        .id;
    e.jobs.worker(fast("w")).run_until_idle().await;
    let r = status(&e.queue, id).await;
    assert_eq!((r.status, r.attempts), (JobStatus::Dead, 1));
}

#[tokio::test]
async fn report_requests_reuse_a_recent_job_and_are_capped_per_tenant() {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let e = env(|b| {
        b.builtin(BuiltinConfig::default())
            .clock(clock.clone())
            .max_pending_per_tenant(Some(2))
    });
    let (t, admin) = tenant(&e.store, "basic").await;
    let h = handle(&e.store, &t).await;
    let (p1, p2, p3) = (
        project_with_tasks(&h, &admin, &[]).await,
        project_with_tasks(&h, &admin, &[]).await,
        project_with_tasks(&h, &admin, &[]).await,
    );
    let session = session_of(&e, &t, &admin).await;
    let first = e.jobs.request_report(&session, p1).await.expect("report");
    assert!(first.created);
    let again = e.jobs.request_report(&session, p1).await.expect("report");
    assert_eq!(
        (again.id, again.created),
        (first.id, false),
        "pending: the same job"
    );
    let second = e.jobs.request_report(&session, p2).await.expect("report");
    assert!(
        second.created && second.id != first.id,
        "another project: another job"
    );
    // Two pending: a third project is refused, and nothing is queued.
    assert!(matches!(
        e.jobs.request_report(&session, p3).await,
        Err(saas_core::Error::TooManyJobs { limit: 2 })
    ));
    // The cap is per tenant.
    let (other, other_admin) = tenant(&e.store, "basic").await;
    let oh = handle(&e.store, &other).await;
    let op = project_with_tasks(&oh, &other_admin, &[]).await;
    let os = session_of(&e, &other, &other_admin).await;
    assert!(
        e.jobs
            .request_report(&os, op)
            .await
            .expect("report")
            .created
    );

    e.jobs.worker(fast("w")).run_until_idle().await;
    assert_eq!(
        status(&e.queue, first.id).await.status,
        JobStatus::Succeeded
    );
    // Finished 59 s ago: still the same job; 61 s: a new one.
    clock.set(clock.now() + Delta::seconds(59));
    let recent = e.jobs.request_report(&session, p1).await.expect("report");
    assert_eq!((recent.id, recent.created), (first.id, false));
    clock.set(clock.now() + Delta::seconds(2));
    let fresh = e.jobs.request_report(&session, p1).await.expect("report");
    assert!(
        fresh.created && fresh.id != first.id,
        "a minute later: a new report"
    );
    // Below the cap again: the third project gets its report.
    assert!(
        e.jobs
            .request_report(&session, p3)
            .await
            .expect("report")
            .created
    );

    // Without a cap, nothing is refused.
    let e = env(|b| {
        b.builtin(BuiltinConfig::default())
            .max_pending_per_tenant(None)
    });
    let (t, admin) = tenant(&e.store, "basic").await;
    let h = handle(&e.store, &t).await;
    let session = session_of(&e, &t, &admin).await;
    for _ in 0..(saas_core::jobs::runtime::DEFAULT_MAX_PENDING_PER_TENANT + 5) {
        let p = project_with_tasks(&h, &admin, &[]).await;
        assert!(
            e.jobs
                .request_report(&session, p)
                .await
                .expect("report")
                .created
        );
    }
}

#[tokio::test]
async fn reports_read_every_task_by_key_and_bound_their_lists() {
    use saas_core::jobs::builtin::REPORT_MAX_ENTRIES;
    let e = builtin_env();
    let (t, admin) = tenant(&e.store, "enterprise").await;
    let h = handle(&e.store, &t).await;
    let p = project_with_tasks(&h, &admin, &[]).await;
    let other = project_with_tasks(&h, &admin, &[]).await;
    // More assignees than a report lists, and more tasks than one page.
    let mut users = Vec::new();
    for i in 0..=REPORT_MAX_ENTRIES {
        users.push(member(&h, &format!("u{i}")).await);
    }
    for (i, u) in users.iter().enumerate() {
        let status = if i % 4 == 0 {
            TaskStatus::Done
        } else {
            TaskStatus::Todo
        };
        task(
            &h,
            p,
            admin.id,
            "T",
            Some(u.id),
            status,
            Priority::Low,
            None,
            None,
        )
        .await;
        // Tasks of another project in between do not count.
        task(
            &h,
            other,
            admin.id,
            "O",
            Some(u.id),
            TaskStatus::Todo,
            Priority::Low,
            None,
            None,
        )
        .await;
    }
    for _ in 0..7 {
        task(
            &h,
            p,
            admin.id,
            "U",
            None,
            TaskStatus::Todo,
            Priority::High,
            None,
            None,
        )
        .await;
    }
    let total = users.len() as u64 + 7;
    // Walking by key: pages never overlap and end where the tasks end.
    let first = h.project_tasks_after(p, None, 400).await.expect("page");
    assert_eq!(first.len(), 400);
    assert!(first.windows(2).all(|w| w[0].id < w[1].id));
    assert!(first.iter().all(|t| t.project_id == p));
    let next = h
        .project_tasks_after(p, first.last().map(|t| t.id), 400)
        .await
        .expect("page");
    assert!(next[0].id > first[399].id);
    let last = h
        .project_tasks_after(p, Some(saas_core::projects::TaskId(i64::MAX)), 400)
        .await
        .expect("page");
    assert!(last.is_empty());

    let id = e
        .jobs
        .enqueue_job::<GenerateProjectReport>(Some(t.id), &ReportPayload { project_id: p })
        .await
        .expect("enqueue")
        .id;
    e.jobs.worker(fast("w")).run_until_idle().await;
    let r = status(&e.queue, id).await;
    assert_eq!(r.status, JobStatus::Succeeded, "{r:?}");
    let report = r.get().expect("result");
    assert_eq!(
        report["total_tasks"], total,
        "every task counted across pages"
    );
    assert_eq!(
        report["tasks_by_status"]["done"],
        users.len().div_ceil(4) as u64
    );
    assert_eq!(report["tasks_by_priority"]["high"], 7);
    assert_eq!(report["unassigned_tasks"], 7);
    assert_eq!(
        report["assignees"].as_array().map(Vec::len),
        Some(REPORT_MAX_ENTRIES),
        "the list is cut"
    );
    assert_eq!(report["truncated"], true);
}

#[tokio::test]
async fn cleanup_deletes_old_done_tasks_and_expired_tokens_and_prunes_jobs() {
    let e = builtin_env();
    let (t, admin) = tenant(&e.store, "basic").await;
    let h = handle(&e.store, &t).await;
    let p = project_with_tasks(&h, &admin, &[]).await;
    let now = Utc::now();
    let old = Some(now - Delta::days(120));
    let recent = Some(now - Delta::days(10));
    task(
        &h,
        p,
        admin.id,
        "old done",
        None,
        TaskStatus::Done,
        Priority::Low,
        None,
        old,
    )
    .await;
    task(
        &h,
        p,
        admin.id,
        "recent done",
        None,
        TaskStatus::Done,
        Priority::Low,
        None,
        recent,
    )
    .await;
    task(
        &h,
        p,
        admin.id,
        "old open",
        None,
        TaskStatus::Todo,
        Priority::Low,
        old,
        None,
    )
    .await;
    for (i, exp) in [now - Delta::days(1), now + Delta::days(1)]
        .into_iter()
        .enumerate()
    {
        h.insert_refresh_token(&RefreshTokenRecord {
            jti: uuid::Uuid::new_v4(),
            family: uuid::Uuid::new_v4(),
            user_id: admin.id,
            expires_at: exp + Delta::seconds(i as i64),
        })
        .await
        .expect("token");
    }
    let id = e
        .jobs
        .enqueue_job::<CleanupOldData>(Some(t.id), &Default::default())
        .await
        .expect("enqueue")
        .id;
    // An old finished job for prune_jobs to remove.
    let ancient = e
        .queue
        .enqueue(&NewJob::new("ancient", json!({})), now - Delta::days(60))
        .await
        .expect("enqueue")
        .id;
    e.queue
        .cancel(ancient, now - Delta::days(60))
        .await
        .expect("cancel");
    let prune = e
        .jobs
        .enqueue_job::<PruneJobs>(None, &Default::default())
        .await
        .expect("enqueue")
        .id;
    e.jobs.worker(fast("w")).run_until_idle().await;
    assert_eq!(
        status(&e.queue, id).await.get(),
        Some(&json!({ "deleted_tasks": 1, "pruned_refresh_tokens": 1 }))
    );
    assert_eq!(
        status(&e.queue, prune).await.get(),
        Some(&json!({ "pruned_jobs": 1 }))
    );
    assert!(e.queue.job(ancient).await.expect("job").is_none());
    let left = h.count_users().await.expect("count");
    assert_eq!(left, 1);
    let mut titles: Vec<String> = h
        .list_tasks(
            &saas_core::projects::TaskQuery::new(saas_core::projects::Scope::All),
            Default::default(),
        )
        .await
        .expect("tasks")
        .items
        .into_iter()
        .map(|t| t.title)
        .collect();
    titles.sort();
    assert_eq!(titles, vec!["old open", "recent done"]);
}

// --- the JobQueue suite on the reference queue ----------------------------------

/// `memory::job_queue_conformance::<case>`: every case on a fresh
/// `MemoryQueue`, the reference the backends' queues are held to;
/// `memory::all_cases_on_one_queue`, `memory::fairness_against_a_flood_of_10000`.
mod memory {
    use std::sync::Arc;

    use saas_core::jobs::memory::MemoryQueue;

    async fn make() -> Option<Arc<MemoryQueue>> {
        Some(Arc::new(MemoryQueue::new()))
    }
    tests::job_queue_conformance!(make);
}

#[tokio::test]
async fn deleted_tenants_are_purged_after_the_retention_and_not_before() {
    use saas_core::jobs::purge::{PurgeDeletedTenants, PurgeSummary};
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let e = env(|b| b.builtin(BuiltinConfig::default()).clock(clock.clone()));
    let (old, _) = tenant(&e.store, "basic").await;
    let (recent, _) = tenant(&e.store, "basic").await;
    let (restored, _) = tenant(&e.store, "basic").await;
    let (kept, _) = tenant(&e.store, "basic").await;
    let now = clock.now();
    e.store
        .delete_tenant(old.id, now - Delta::days(8))
        .await
        .expect("delete");
    e.store
        .delete_tenant(recent.id, now - Delta::days(6))
        .await
        .expect("delete");
    e.store
        .delete_tenant(restored.id, now - Delta::days(9))
        .await
        .expect("delete");
    e.store.restore_tenant(restored.id).await.expect("restore");

    // The schedule has it, daily.
    let schedule = builtin_schedule().expect("schedule");
    assert!(
        schedule
            .iter()
            .any(|p| p.name() == PurgeDeletedTenants::KIND),
        "the built-in schedule purges deleted tenants"
    );
    let id = e
        .jobs
        .enqueue_job::<PurgeDeletedTenants>(None, &Default::default())
        .await
        .expect("enqueue")
        .id;
    e.jobs.worker(fast("w")).run_until_idle().await;
    let r = status(&e.queue, id).await;
    assert_eq!(r.status, JobStatus::Succeeded, "{r:?}");
    let summary: PurgeSummary =
        serde_json::from_value(r.get().expect("result").clone()).expect("summary");
    assert_eq!(summary.purged_tenants, 1, "{summary:?}");
    assert_eq!(
        e.store.tenant(old.id).await.expect("lookup"),
        None,
        "8 days: purged"
    );
    assert_eq!(
        e.store
            .tenant(recent.id)
            .await
            .expect("lookup")
            .map(|t| t.status),
        Some(TenantStatus::Deleted),
        "6 days: kept, restorable"
    );
    for t in [&restored, &kept] {
        assert_eq!(
            e.store
                .tenant(t.id)
                .await
                .expect("lookup")
                .map(|t| t.status),
            Some(TenantStatus::Active)
        );
    }
    // Two days later the other one's retention has passed too.
    clock.set(now + Delta::days(2));
    let id = e
        .jobs
        .enqueue_job::<PurgeDeletedTenants>(None, &Default::default())
        .await
        .expect("enqueue")
        .id;
    e.jobs.worker(fast("w")).run_until_idle().await;
    assert_eq!(status(&e.queue, id).await.status, JobStatus::Succeeded);
    assert_eq!(e.store.tenant(recent.id).await.expect("lookup"), None);
    assert!(e.store.tenant(kept.id).await.expect("lookup").is_some());
}
