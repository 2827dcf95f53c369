//! `jobs`: throughput of the durable job queue on either backend.
//!
//! Enqueues N jobs that only count themselves (batches of 1,000 in one
//! transaction each, as a bulk producer would), then burns them down with
//! saas-core's real `Worker` (claim batches, heartbeats, fenced
//! completions) until the queue is idle. `enqueue_per_s` and `run_per_s`
//! are wall-clock rates of those two phases.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clap::ValueEnum;
use saas_bench::Res;
use saas_bench::fleet::BenchDatabase;
use saas_bench::measure::load_average;
use saas_core::Saas;
use saas_core::jobs::{Job, JobContext, JobError, JobQueue, JobScope, Jobs, NewJob, WorkerConfig};
use saas_core::store::Store;
use saas_store_postgres::{PgQueue, PgStore};
use saas_store_sqlite::{SqliteQueue, SqliteStore};
use serde_json::{Value, json};

/// Which backend's queue to measure.
#[derive(Clone, Copy, ValueEnum)]
enum QueueBackend {
    /// `SqliteQueue` in a temporary directory.
    Sqlite,
    /// `PgQueue` in the benchmark database.
    Postgres,
}

#[derive(clap::Args)]
pub(crate) struct Args {
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
    /// The database of `--backend postgres`.
    #[command(flatten)]
    database: BenchDatabase,
}

/// The kind of the benchmark's jobs.
const KIND: &str = "bench_noop";

/// A platform job that only counts its runs, so the figures are the
/// queue's and the count shows every job ran.
#[derive(Debug, Default)]
struct Counted(Arc<AtomicUsize>);

#[async_trait]
impl Job for Counted {
    const KIND: &'static str = KIND;
    const SCOPE: JobScope = JobScope::Platform;
    type Payload = Value;
    type Output = ();

    async fn run(&self, _: &JobContext, _: Value) -> Result<(), JobError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Now, to the microsecond the stores keep.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_else(Utc::now)
}

/// The queue under test; each backend's has a bulk insert of its own.
enum Queue {
    Sqlite(SqliteQueue),
    Postgres(PgQueue),
}

impl Queue {
    /// Enqueues `jobs` in one transaction.
    async fn enqueue_many(&self, jobs: &[NewJob]) -> Res<()> {
        match self {
            Queue::Sqlite(q) => q.enqueue_many(jobs, now()).await?,
            Queue::Postgres(q) => q.enqueue_many(jobs, now()).await?,
        };
        Ok(())
    }

    fn shared(self) -> Arc<dyn JobQueue> {
        match self {
            Queue::Sqlite(q) => Arc::new(q),
            Queue::Postgres(q) => Arc::new(q),
        }
    }
}

/// The queue and its store: a fresh SQLite directory, or the PostgreSQL
/// benchmark database without the jobs of earlier runs.
async fn open(args: &Args, dir: &tempfile::TempDir) -> Res<(Arc<dyn Store>, Queue)> {
    match args.backend {
        QueueBackend::Sqlite => {
            let store = SqliteStore::open(dir.path())?;
            let queue = store.queue();
            Ok((Arc::new(store), Queue::Sqlite(queue)))
        }
        QueueBackend::Postgres => {
            saas_bench::database::prepare(&args.database.database_url, false).await?;
            let store = PgStore::connect_url(&args.database.database_url).await?;
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
            Ok((Arc::new(store), Queue::Postgres(queue)))
        }
    }
}

pub(super) async fn run(args: &Args) -> Res<Value> {
    let dir = tempfile::tempdir()?;
    let (store, queue) = open(args, &dir).await?;
    let started = Instant::now();
    for from in (0..args.jobs).step_by(1_000) {
        let batch: Vec<NewJob> = (from..args.jobs.min(from + 1_000))
            .map(|i| NewJob::new(KIND, json!({ "n": i })))
            .collect();
        queue.enqueue_many(&batch).await?;
    }
    let enqueue_secs = started.elapsed().as_secs_f64();
    eprintln!("enqueued {} jobs in {enqueue_secs:.2} s", args.jobs);

    let saas = Saas::builder(store)
        .secret(b"saas-bench secret: thirty-two bytes or more")
        .build()?;
    let runs = Arc::new(AtomicUsize::new(0));
    let runtime = Jobs::builder(saas, queue.shared())
        .register(Counted(Arc::clone(&runs)))
        .build();
    let worker = runtime.worker(WorkerConfig {
        concurrency: args.concurrency,
        batch_size: args.batch,
        poll_interval: Duration::from_millis(50),
        ..WorkerConfig::default()
    });
    let started = Instant::now();
    let stats = worker.run_until_idle().await;
    let run_secs = started.elapsed().as_secs_f64();
    if stats.succeeded != args.jobs as u64 || runs.load(Ordering::Relaxed) < args.jobs {
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
