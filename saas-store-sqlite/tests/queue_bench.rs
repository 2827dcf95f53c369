//! Throughput of the SQLite job queue (ignored by default: it measures).
//! Run with
//! `cargo test --release -p saas-store-sqlite --test queue_bench -- --ignored --nocapture`.
//! `SAAS_BENCH_JOBS` sets the number of jobs (default 100,000).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use saas_core::Saas;
use saas_core::jobs::{
    ClaimRequest, Job, JobContext, JobError, JobQueue, JobScope, Jobs, NewJob, WorkerConfig,
};
use saas_core::tenancy::TenantId;
use saas_store_sqlite::{SqliteQueue, SqliteStore};
use serde_json::{Value, json};
use testkit::jobs::{complete_claimed, per_second};
use testkit::records::now;

const KIND: &str = "bench_noop";

/// A platform job that does nothing, so the figures are the queue's.
#[derive(Debug)]
struct Noop;

#[async_trait]
impl Job for Noop {
    const KIND: &'static str = KIND;
    const SCOPE: JobScope = JobScope::Platform;
    type Payload = Value;
    type Output = ();

    async fn run(&self, _: &JobContext, _: Value) -> Result<(), JobError> {
        Ok(())
    }
}

/// A claim of `limit` bench jobs, leased long enough for the slowest run.
fn request(worker: &str, limit: u32) -> ClaimRequest {
    ClaimRequest {
        lease: Duration::from_secs(300),
        ..testkit::jobs::request(worker, KIND, limit)
    }
}

/// Enqueues `n` no-op jobs in batches of 1,000 over `groups` tenant groups
/// (`groups == 1`: platform jobs only); returns jobs per second.
async fn enqueue_batched(queue: &SqliteQueue, n: usize, groups: usize) -> f64 {
    let tenants: Vec<Option<TenantId>> = (0..groups).map(|i| (i > 0).then(TenantId::new)).collect();
    let started = Instant::now();
    let mut left = n;
    let mut i = 0usize;
    while left > 0 {
        let take = left.min(1_000);
        let batch: Vec<NewJob> = (0..take)
            .map(|k| {
                let mut job = NewJob::new(KIND, json!({"n": i + k}));
                job.tenant = tenants[(i + k) % groups];
                job
            })
            .collect();
        queue.enqueue_many(&batch, now()).await.expect("enqueue");
        left -= take;
        i += take;
    }
    per_second(n, started.elapsed())
}

/// Enqueues `jobs` no-op platform jobs with `enqueue_many`, then burns them
/// down with saas-core's `Worker` (batches of 100, up to 200 in flight);
/// returns `(enqueued per second, run per second)`.
pub async fn bench_jobs(root: &Path, jobs: usize) -> (f64, f64) {
    let store = SqliteStore::open(root).expect("store");
    let queue = store.queue();
    let enqueue_per_s = enqueue_batched(&queue, jobs, 1).await;

    let saas = Saas::builder(Arc::new(store.clone()))
        .secret(&[7u8; 32])
        .build()
        .expect("saas");
    let runtime = Jobs::builder(saas, Arc::new(queue.clone()))
        .register(Noop)
        .build();
    let worker = runtime.worker(WorkerConfig {
        concurrency: 200,
        batch_size: 100,
        poll_interval: Duration::from_millis(50),
        ..WorkerConfig::default()
    });
    let started = Instant::now();
    let stats = worker.run_until_idle().await;
    let elapsed = started.elapsed();
    assert_eq!(stats.succeeded, jobs as u64, "{stats:?}");
    (enqueue_per_s, per_second(jobs, elapsed))
}

/// Burns down `jobs` queued jobs with `tasks` direct claim/complete loops
/// (claims of `batch`); `many` completes each batch in one transaction with
/// `complete_many`, else one `complete` per job. Returns jobs per second.
async fn burn_direct(
    queue: &SqliteQueue,
    jobs: usize,
    tasks: usize,
    batch: u32,
    many: bool,
) -> f64 {
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let queue = queue.clone();
        let done = Arc::clone(&done);
        handles.push(tokio::spawn(async move {
            let worker = format!("direct-{t}");
            loop {
                let got = queue
                    .claim(&request(&worker, batch), now())
                    .await
                    .expect("claim");
                if got.is_empty() {
                    return;
                }
                complete_claimed(&queue, &got, many).await;
                done.fetch_add(got.len(), Ordering::Relaxed);
            }
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
    let n = done.load(Ordering::Relaxed);
    assert_eq!(n, jobs);
    per_second(n, started.elapsed())
}

/// Mean time of `rounds` claims of 100 with the queue as it is.
async fn claim_latency(queue: &SqliteQueue, rounds: usize) -> Duration {
    let started = Instant::now();
    for _ in 0..rounds {
        let got = queue
            .claim(&request("probe", 100), now())
            .await
            .expect("claim");
        assert_eq!(got.len(), 100);
    }
    started.elapsed() / rounds as u32
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run explicitly with --release"]
async fn queue_throughput() {
    let jobs: usize = std::env::var("SAAS_BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);

    // Enqueue, then the Worker.
    let dir = tempfile::tempdir().expect("temp dir");
    let (enqueue_per_s, run_per_s) = bench_jobs(dir.path(), jobs).await;
    println!(
        "{jobs} jobs: enqueue_many {enqueue_per_s:.0}/s; Worker (batch 100, 200 in flight) {run_per_s:.0}/s"
    );

    // Single enqueues, one transaction each.
    let dir = tempfile::tempdir().expect("temp dir");
    let queue = SqliteQueue::open(dir.path()).expect("queue");
    let single = (jobs / 10).max(1);
    let started = Instant::now();
    for i in 0..single {
        queue
            .enqueue(&NewJob::new(KIND, json!({"n": i})), now())
            .await
            .expect("enqueue");
    }
    println!(
        "{single} single enqueues: {:.0}/s",
        per_second(single, started.elapsed())
    );

    // Claim cost with the whole flood queued, one group and 100 groups.
    for groups in [1usize, 100] {
        let dir = tempfile::tempdir().expect("temp dir");
        let queue = SqliteQueue::open(dir.path()).expect("queue");
        enqueue_batched(&queue, jobs, groups).await;
        let latency = claim_latency(&queue, 20).await;
        println!("claim of 100 with {jobs} queued in {groups} group(s): {latency:?}");
        let left = jobs - 20 * 100;
        let rate = burn_direct(&queue, left, 2, 100, false).await;
        println!("  burn-down of the rest, 2 tasks, claim 100 + complete each: {rate:.0}/s");
    }

    // Direct loops with batched completions.
    let dir = tempfile::tempdir().expect("temp dir");
    let queue = SqliteQueue::open(dir.path()).expect("queue");
    enqueue_batched(&queue, jobs, 10).await;
    let rate = burn_direct(&queue, jobs, 2, 100, true).await;
    println!("{jobs} jobs in 10 groups, 2 tasks, claim 100 + complete_many: {rate:.0}/s");
}
