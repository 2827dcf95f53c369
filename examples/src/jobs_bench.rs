//! `saas-bench jobs`: throughput of the durable job queue on either backend.
//!
//! Enqueues N no-op jobs (batches of 1,000 in one transaction each, as a
//! bulk producer would), then burns them down with saas-core's real `Worker`
//! (claim batches, heartbeats, fenced completions) until the queue is idle.
//! `enqueue_per_s` and `run_per_s` are wall-clock rates of those two phases.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use saas_core::Saas;
use saas_core::jobs::{Job, JobContext, JobError, JobQueue, JobScope, Jobs, NewJob, WorkerConfig};
use saas_core::store::Store;
use saas_store_postgres::{PgQueue, PgStore};
use saas_store_sqlite::SqliteStore;
use serde_json::{Value, json};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which backend's queue to measure.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum QueueBackend {
    /// `SqliteQueue` in a temporary directory.
    Sqlite,
    /// `PgQueue` in the benchmark database.
    Postgres,
}

/// Arguments of the `jobs` scenario.
#[derive(Args)]
pub(crate) struct JobsArgs {
    /// Storage backend.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: QueueBackend,
    /// Jobs to enqueue and run.
    #[arg(long, default_value_t = 100_000)]
    jobs: usize,
    /// Jobs the worker runs at once.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// Jobs per claim.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Benchmark database for `--backend postgres` (never the test database).
    #[arg(
        long,
        env = "SAAS_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/saas_bench"
    )]
    database_url: String,
}

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

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_else(Utc::now)
}

fn batch(from: usize, n: usize) -> Vec<NewJob> {
    (from..from + n)
        .map(|i| NewJob::new(KIND, json!({ "n": i })))
        .collect()
}

fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Runs the scenario and returns its JSON result.
pub(crate) async fn run(args: &JobsArgs) -> Result<Value, BoxError> {
    let dir = tempfile::tempdir()?;
    let (store, queue, enqueue_secs): (Arc<dyn Store>, Arc<dyn JobQueue>, f64) = match args.backend
    {
        QueueBackend::Sqlite => {
            let store = SqliteStore::open(dir.path())?;
            let queue = store.queue();
            let started = Instant::now();
            for from in (0..args.jobs).step_by(1_000) {
                queue
                    .enqueue_many(&batch(from, 1_000.min(args.jobs - from)), now())
                    .await?;
            }
            let secs = started.elapsed().as_secs_f64();
            (Arc::new(store), Arc::new(queue), secs)
        }
        QueueBackend::Postgres => {
            crate::prepare_database(&args.database_url, false).await?;
            let store = PgStore::connect_url(&args.database_url).await?;
            let queue = PgQueue::for_store(&store).await?;
            // Earlier runs' leftovers would be claimed too: start from none,
            // and from a vacuumed table, so each run starts alike instead of
            // wading through the dead row versions of the runs before it.
            sqlx::query("DELETE FROM saas_shared.jobs WHERE kind = $1")
                .bind(KIND)
                .execute(store.catalog_pool())
                .await?;
            sqlx::query("VACUUM (ANALYZE) saas_shared.jobs")
                .execute(store.catalog_pool())
                .await?;
            let started = Instant::now();
            for from in (0..args.jobs).step_by(1_000) {
                queue
                    .enqueue_many(&batch(from, 1_000.min(args.jobs - from)), now())
                    .await?;
            }
            let secs = started.elapsed().as_secs_f64();
            (Arc::new(store), Arc::new(queue), secs)
        }
    };
    eprintln!("enqueued {} jobs in {enqueue_secs:.2} s", args.jobs);

    let saas = Saas::builder(store)
        .secret(b"saas-bench secret: thirty-two bytes or more")
        .build()?;
    let runtime = Jobs::builder(saas, queue).register(Noop).build();
    let worker = runtime.worker(WorkerConfig {
        concurrency: args.concurrency,
        batch_size: args.batch,
        poll_interval: Duration::from_millis(50),
        ..WorkerConfig::default()
    });
    let started = Instant::now();
    let stats = worker.run_until_idle().await;
    let run_secs = started.elapsed().as_secs_f64();
    if stats.succeeded != args.jobs as u64 {
        return Err(format!("expected {} jobs to succeed, got {stats:?}", args.jobs).into());
    }
    Ok(json!({
        "scenario": "jobs",
        "backend": match args.backend { QueueBackend::Sqlite => "sqlite", QueueBackend::Postgres => "postgres" },
        "jobs": args.jobs,
        "concurrency": args.concurrency,
        "batch": args.batch,
        "enqueue_per_s": (args.jobs as f64 / enqueue_secs).round(),
        "run_per_s": (args.jobs as f64 / run_secs).round(),
        "load_average": load_average(),
    }))
}
