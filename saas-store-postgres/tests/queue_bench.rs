//! Throughput of the PostgreSQL job queue (ignored by default: it measures).
//! Run with
//! `cargo test --release -p saas-store-postgres --test queue_bench -- --ignored --nocapture`.
//!
//! It uses a database of its own, `saas_bench` (created if missing), and
//! only jobs of its own kind there. `SAAS_BENCH_JOBS` sets the number of jobs
//! (default 100,000), `SAAS_BENCH_SCENARIOS` how many of the scenarios run
//! (default all). Each scenario enqueues the jobs with `enqueue_many`
//! (batches of 1,000), prints the plan of a claim against the full queue,
//! then burns the queue down with direct claim loops on concurrent tasks,
//! each claim's jobs completed in one statement with `complete_many` (or,
//! in the last scenario, one `complete` per job, as saas-core's worker does).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use saas_core::jobs::{ClaimRequest, JobQueue, NewJob};
use saas_core::tenancy::TenantId;
use saas_store_postgres::PgQueue;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use testkit::jobs::{complete_claimed, per_second};
use testkit::pg;
use testkit::records::now;

const KIND: &str = "bench_noop";
const DB: &str = "saas_bench";

/// A claim of `limit` bench jobs, leased long enough for the slowest run.
fn request(worker: &str, limit: u32) -> ClaimRequest {
    ClaimRequest {
        lease: Duration::from_secs(300),
        ..testkit::jobs::request(worker, KIND, limit)
    }
}

/// Removes this bench's jobs and vacuums, so each scenario starts alike.
async fn reset(queue: &PgQueue) {
    sqlx::query("DELETE FROM saas_shared.jobs WHERE kind = $1")
        .bind(KIND)
        .execute(queue.pool())
        .await
        .expect("delete old bench jobs");
    sqlx::raw_sql("VACUUM ANALYZE saas_shared.jobs")
        .execute(queue.pool())
        .await
        .expect("vacuum");
}

/// Enqueues `n` no-op jobs in batches of 1,000 over `groups` tenant groups
/// (`groups == 1`: platform jobs only); returns jobs per second.
async fn enqueue(queue: &PgQueue, n: usize, groups: usize) -> f64 {
    let tenants: Vec<Option<TenantId>> = (0..groups).map(|i| (i > 0).then(TenantId::new)).collect();
    let started = Instant::now();
    let mut i = 0usize;
    while i < n {
        let take = (n - i).min(1_000);
        let batch: Vec<NewJob> = (i..i + take)
            .map(|k| {
                let mut job = NewJob::new(KIND, json!({"n": k}));
                job.tenant = tenants[k % groups];
                job
            })
            .collect();
        queue.enqueue_many(&batch, now()).await.expect("enqueue");
        i += take;
    }
    per_second(n, started.elapsed())
}

/// Burns the queue down with `tasks` claim loops of `batch`; returns jobs
/// per second and the number of claims.
async fn burn(queue: &PgQueue, jobs: usize, tasks: usize, batch: u32, many: bool) -> (f64, usize) {
    let done = Arc::new(AtomicUsize::new(0));
    let claims = Arc::new(AtomicUsize::new(0));
    let claim_us = Arc::new(AtomicUsize::new(0));
    let complete_us = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let queue = queue.clone();
        let done = Arc::clone(&done);
        let claims = Arc::clone(&claims);
        let claim_us = Arc::clone(&claim_us);
        let complete_us = Arc::clone(&complete_us);
        handles.push(tokio::spawn(async move {
            let worker = format!("bench-{t}");
            let mut empty = 0;
            // Another task's claim may be in flight; stop after a few empty
            // claims in a row.
            while empty < 3 {
                let t = Instant::now();
                let got = queue
                    .claim(&request(&worker, batch), now())
                    .await
                    .expect("claim");
                claim_us.fetch_add(t.elapsed().as_micros() as usize, Ordering::Relaxed);
                claims.fetch_add(1, Ordering::Relaxed);
                if got.is_empty() {
                    empty += 1;
                    continue;
                }
                empty = 0;
                let t = Instant::now();
                complete_claimed(&queue, &got, many).await;
                complete_us.fetch_add(t.elapsed().as_micros() as usize, Ordering::Relaxed);
                done.fetch_add(got.len(), Ordering::Relaxed);
            }
        }));
    }
    for h in handles {
        h.await.expect("burn task");
    }
    let elapsed = started.elapsed();
    assert_eq!(done.load(Ordering::Relaxed), jobs, "every job ran once");
    let n = claims.load(Ordering::Relaxed).max(1);
    println!(
        "mean claim {:.1} ms, mean completion of a claim's jobs {:.1} ms",
        claim_us.load(Ordering::Relaxed) as f64 / n as f64 / 1000.0,
        complete_us.load(Ordering::Relaxed) as f64 / n as f64 / 1000.0
    );
    (per_second(jobs, elapsed), n)
}

/// The lines of a plan worth printing: timings, and the scans with their
/// row counts.
fn summary(plan: &str) -> String {
    plan.lines()
        .filter(|l| {
            l.contains("Execution Time")
                || l.contains("Planning Time")
                || l.contains("JIT")
                || l.contains("Index Scan")
                || l.contains("Index Only Scan")
                || l.contains("Seq Scan")
                || l.contains("LockRows")
        })
        .map(|l| l.trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "measures throughput; run explicitly with --release -- --ignored --nocapture"]
async fn queue_throughput() {
    if !pg::available().await {
        return;
    }
    let jobs: usize = std::env::var("SAAS_BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    pg::ensure_database(DB).await;
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect(&pg::url_for(DB))
        .await
        .expect("connect");
    let queue = PgQueue::new(pool).await.expect("queue");

    // (tenant groups, tasks, claim batch, complete_many rather than complete)
    let scenarios: &[(usize, usize, u32, bool)] = &[
        (1, 4, 250, true),
        (1, 2, 500, true),
        (1, 4, 100, true),
        (50, 4, 250, true),
        (1, 4, 250, false),
    ];
    println!("jobs={jobs} (no-op jobs)");
    // SAAS_BENCH_SCENARIOS=1 runs only the first scenario.
    let take = std::env::var("SAAS_BENCH_SCENARIOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(scenarios.len());
    for &(groups, tasks, batch, many) in scenarios.iter().take(take) {
        reset(&queue).await;
        let enqueue_per_s = enqueue(&queue, jobs, groups).await;
        sqlx::raw_sql("ANALYZE saas_shared.jobs")
            .execute(queue.pool())
            .await
            .expect("analyze");
        let plan = queue
            .explain_claim(&request("explain", batch), now())
            .await
            .expect("explain");
        println!("--- claim of {batch} with {jobs} queued in {groups} group(s):");
        println!("{}", summary(&plan));
        let (run_per_s, claims) = burn(&queue, jobs, tasks, batch, many).await;
        println!(
            "groups={groups} tasks={tasks} batch={batch} complete_many={many} \
             enqueue_per_s={enqueue_per_s:.0} run_per_s={run_per_s:.0} claims={claims}"
        );
    }
    reset(&queue).await;
}
