//! The job queue: the shared `JobQueue` conformance suite on SQLite, plus
//! what only this backend has (several processes on one root, the store's
//! accessor, batched enqueues and completions, wake-ups).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use saas_core::jobs::{ClaimRequest, JobId, JobQueue, JobStatus, NewJob, QueueError};
use saas_core::tenancy::TenantId;
use saas_store_sqlite::{SqliteQueue, SqliteStore};
use serde_json::json;
use testkit::jobs::{fresh_kind, request};
use testkit::records::now;
use testkit::sqlite::queue;

/// `sqlite::job_queue_conformance::<case>`: every case on a fresh queue;
/// `sqlite::all_cases_on_one_queue`, `sqlite::fairness_against_a_flood_of_10000`.
mod sqlite {
    async fn make() -> Option<testkit::sqlite::FreshQueue> {
        Some(testkit::sqlite::queue())
    }
    testkit::job_queue_conformance!(make);
}

/// Two queues opened on one root, as two processes would, claim disjoint
/// jobs while racing, and between them claim every job exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_root_claim_disjoint_jobs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = SqliteQueue::open(dir.path()).expect("open a");
    let b = SqliteQueue::open(dir.path()).expect("open b");
    let kind = fresh_kind("k");
    let t0 = now();
    let jobs: Vec<NewJob> = (0..600)
        .map(|i| NewJob::new(&kind, json!(i)).tenant(TenantId::new()))
        .collect();
    let enqueued = a.enqueue_many(&jobs, t0).await.expect("enqueue");
    let all: HashSet<JobId> = enqueued.iter().map(|e| e.id).collect();
    assert_eq!(all.len(), 600);

    async fn drain(q: SqliteQueue, worker: &'static str, kind: String) -> Vec<JobId> {
        let mut got = Vec::new();
        loop {
            let batch = q
                .claim(&request(worker, &kind, 7), now())
                .await
                .expect("claim");
            if batch.is_empty() {
                return got;
            }
            for job in &batch {
                assert_eq!(job.attempt, 1, "nobody else held {}", job.id);
            }
            got.extend(batch.iter().map(|j| j.id));
            // Stands for running the batch, so each process gets the lock
            // in turn (SQLite's busy handler polls, it does not queue).
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let (ra, rb) = tokio::join!(
        tokio::spawn(drain(a.clone(), "a", kind.clone())),
        tokio::spawn(drain(b.clone(), "b", kind.clone())),
    );
    let (ga, gb) = (ra.expect("task a"), rb.expect("task b"));
    assert!(!ga.is_empty() && !gb.is_empty(), "both instances took part");
    let sa: HashSet<JobId> = ga.iter().copied().collect();
    let sb: HashSet<JobId> = gb.iter().copied().collect();
    assert_eq!(sa.len(), ga.len(), "a got no job twice");
    assert_eq!(sb.len(), gb.len(), "b got no job twice");
    assert!(sa.is_disjoint(&sb), "no job claimed by both instances");
    let union: HashSet<JobId> = sa.union(&sb).copied().collect();
    assert_eq!(union, all, "every job claimed exactly once");

    // A completion through the other instance is fenced the same way.
    let id = ga[0];
    b.complete(id, 1, &json!("via b"), now())
        .await
        .expect("complete via the other instance");
    let e = a.complete(id, 1, &json!("again"), now()).await;
    assert!(matches!(e, Err(QueueError::LeaseLost { .. })), "{e:?}");
    assert_eq!(
        a.job(id).await.expect("job").expect("stored").get(),
        Some(&json!("via b"))
    );
}

/// The store opens the queue in `<root>/jobs.sqlite`, apart from the
/// catalog, and its clones share it (an enqueue through one wakes a waiter
/// on another).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_queue_is_shared_by_clones_and_lives_in_its_own_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path()).expect("store");
    let queue: Arc<dyn JobQueue> = Arc::new(store.queue());
    assert_eq!(store.queue().path(), dir.path().join("jobs.sqlite"));
    assert!(dir.path().join("catalog.sqlite").exists());
    let clone = store.clone().queue();
    let waiter = tokio::spawn(async move {
        let started = std::time::Instant::now();
        clone.wait_for_work(Duration::from_secs(30)).await;
        started.elapsed()
    });
    // Let the waiter register before the enqueue.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let kind = fresh_kind("k");
    let e = queue
        .enqueue(&NewJob::new(&kind, json!({})), now())
        .await
        .expect("enqueue");
    let waited = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("woken long before the 30 s timeout")
        .expect("waiter task");
    assert!(waited < Duration::from_secs(10), "woken after {waited:?}");
    let seen = store.queue().job(e.id).await.expect("job").expect("stored");
    assert_eq!(seen.status, JobStatus::Queued);

    // A second process's queue on the same root sees the same jobs.
    let other = SqliteQueue::open(dir.path()).expect("open");
    assert!(other.job(e.id).await.expect("job").is_some());
}

/// `enqueue_many` applies unique keys within the batch and against stored
/// jobs, and stores nothing when any job is invalid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_many_is_atomic_and_applies_unique_keys() {
    let q = queue();
    let kind = fresh_kind("k");
    let t0 = now();
    let tenant = TenantId::new();
    let held = q
        .enqueue(
            &NewJob::new(&kind, json!(0)).tenant(tenant).unique_key("k1"),
            t0,
        )
        .await
        .expect("enqueue");
    let batch = vec![
        NewJob::new(&kind, json!(1)).tenant(tenant).unique_key("k1"),
        NewJob::new(&kind, json!(2)).tenant(tenant).unique_key("k2"),
        NewJob::new(&kind, json!(3)).tenant(tenant).unique_key("k2"),
        NewJob::new(&kind, json!(4)),
    ];
    let out = q.enqueue_many(&batch, t0).await.expect("enqueue_many");
    assert_eq!(out.len(), 4);
    assert_eq!((out[0].id, out[0].created), (held.id, false));
    assert!(out[1].created);
    assert_eq!((out[2].id, out[2].created), (out[1].id, false));
    assert!(out[3].created);

    let bad = vec![
        NewJob::new(&kind, json!(5)),
        NewJob::new(&kind, json!(6)).max_attempts(0),
    ];
    let e = q.enqueue_many(&bad, t0).await;
    assert!(matches!(e, Err(QueueError::Invalid { .. })), "{e:?}");
    let claimed = q.claim(&request("w", &kind, 100), t0).await.expect("claim");
    assert_eq!(claimed.len(), 3, "the invalid batch stored nothing");
    let counts = q.counts().await.expect("counts");
    assert_eq!(counts, vec![(JobStatus::Running, 3)]);
    assert!(q.enqueue_many(&[], t0).await.expect("empty").is_empty());
}

/// `complete_many` completes what it may and fences the rest, one outcome
/// per job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_many_fences_each_job() {
    let q = queue();
    let kind = fresh_kind("k");
    let t0 = now();
    let jobs: Vec<NewJob> = (0..3).map(|i| NewJob::new(&kind, json!(i))).collect();
    q.enqueue_many(&jobs, t0).await.expect("enqueue");
    let got = q.claim(&request("w", &kind, 10), t0).await.expect("claim");
    assert_eq!(got.len(), 3);
    let missing = JobId::new();
    let out = q
        .complete_many(
            &[
                (got[0].id, 1, json!("a")),
                (got[1].id, 2, json!("stale")),
                (missing, 1, json!("none")),
                (got[2].id, 1, json!("c")),
            ],
            t0,
        )
        .await
        .expect("complete_many");
    assert!(out[0].is_ok());
    assert!(matches!(out[1], Err(QueueError::LeaseLost { .. })));
    assert!(matches!(out[2], Err(QueueError::NotFound { .. })));
    assert!(out[3].is_ok());
    let r = q.job(got[1].id).await.expect("job").expect("stored");
    assert_eq!(r.status, JobStatus::Running, "the fenced job is untouched");
    let r = q.job(got[2].id).await.expect("job").expect("stored");
    assert_eq!(r.get(), Some(&json!("c")));
}

/// Jobs survive closing and reopening the file (a restart), leases and all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let kind = fresh_kind("k");
    let t0 = now();
    let id = {
        let q = SqliteQueue::open(dir.path()).expect("open");
        let id = q
            .enqueue(&NewJob::new(&kind, json!({"x": 1})), t0)
            .await
            .expect("enqueue")
            .id;
        q.claim(&request("crashed", &kind, 1), t0)
            .await
            .expect("claim");
        id
    };
    let q = SqliteQueue::open(dir.path()).expect("reopen");
    let later = t0 + chrono::Duration::seconds(61);
    let again = q
        .claim(&request("w", &kind, 1), later)
        .await
        .expect("claim");
    assert_eq!(again.len(), 1, "the crashed worker's job runs again");
    assert_eq!((again[0].id, again[0].attempt), (id, 2));
    assert_eq!(again[0].payload, json!({"x": 1}));
}

/// A large prune runs in chunks and deletes exactly the finished jobs
/// before the cutoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_in_chunks() {
    let q = queue();
    let kind = fresh_kind("k");
    let t0 = now();
    let jobs: Vec<NewJob> = (0..12_345).map(|i| NewJob::new(&kind, json!(i))).collect();
    q.enqueue_many(&jobs, t0).await.expect("enqueue");
    let mut done = 0;
    loop {
        let got = q
            .claim(&request("w", &kind, 1000), t0)
            .await
            .expect("claim");
        if got.is_empty() {
            break;
        }
        let results: Vec<_> = got.iter().map(|j| (j.id, j.attempt, json!(null))).collect();
        for r in q.complete_many(&results, t0).await.expect("complete") {
            r.expect("completed");
        }
        done += got.len();
    }
    assert_eq!(done, 12_345);
    let keep = q
        .enqueue(&NewJob::new(&kind, json!("keep")), t0)
        .await
        .expect("enqueue")
        .id;
    let n = q
        .prune(t0 + chrono::Duration::seconds(1))
        .await
        .expect("prune");
    assert_eq!(n, 12_345);
    assert!(q.job(keep).await.expect("job").is_some());
    assert_eq!(
        q.counts().await.expect("counts"),
        vec![(JobStatus::Queued, 1)]
    );
}

/// A small deterministic generator, so a failing seed can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random workloads (tenants, priorities, run-at times, batch sizes, lease
/// expiries, retries, completions) run on `MemoryQueue`, the reference, and
/// on `SqliteQueue`: every claim hands out the same jobs, in the same order,
/// with the same attempt numbers. This covers the claim's two-pass pick
/// (small per-tenant cap first, exact pick when it does not fill the batch)
/// against the straightforward ranking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_match_the_reference_queue() {
    use saas_core::jobs::memory::MemoryQueue;
    use std::collections::HashMap;

    for seed in 1..=6u64 {
        let q = queue();
        let reference = MemoryQueue::new();
        let queues: [&dyn JobQueue; 2] = [&reference, &q.queue];
        let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let kind = fresh_kind("k");
        let tenants: Vec<Option<TenantId>> = std::iter::once(None)
            .chain((0..5).map(|_| Some(TenantId::new())))
            .collect();
        let mut t = now();
        // Per job (by payload number): its id in each queue.
        let mut ids: Vec<[JobId; 2]> = Vec::new();
        // Leases handed out and not yet settled: (job, attempt).
        let mut held: Vec<(usize, u32)> = Vec::new();
        let by_id: &mut HashMap<JobId, usize> = &mut HashMap::new();
        for step in 0..400 {
            match rng.below(10) {
                0..=3 => {
                    let n = ids.len();
                    let mut job = NewJob::new(&kind, json!(n))
                        .priority([-1, 0, 0, 1, 5][rng.below(5) as usize])
                        .max_attempts(1 + rng.below(3) as u32);
                    job.tenant = tenants[rng.below(tenants.len() as u64) as usize];
                    job.run_at = match rng.below(4) {
                        0 => Some(t - chrono::Duration::seconds(10)),
                        1 => Some(t + chrono::Duration::seconds(rng.below(30) as i64)),
                        _ => None,
                    };
                    let mut pair = [JobId::new(); 2];
                    for (i, queue) in queues.iter().enumerate() {
                        pair[i] = queue.enqueue(&job, t).await.expect("enqueue").id;
                        by_id.insert(pair[i], n);
                    }
                    ids.push(pair);
                }
                4..=5 => {
                    let req = ClaimRequest {
                        worker: "w".into(),
                        lease: Duration::from_secs(20),
                        limit: 1 + rng.below(15) as u32,
                        kinds: vec![kind.clone()],
                    };
                    let mut got = Vec::new();
                    for queue in queues {
                        let batch = queue.claim(&req, t).await.expect("claim");
                        got.push(
                            batch
                                .iter()
                                .map(|j| (by_id[&j.id], j.attempt))
                                .collect::<Vec<_>>(),
                        );
                    }
                    assert_eq!(got[0], got[1], "seed {seed}, step {step}: claim differs");
                    held.extend(got[0].iter().copied());
                }
                6 if !held.is_empty() => {
                    let (job, attempt) = held.swap_remove(rng.below(held.len() as u64) as usize);
                    let fail = rng.below(2) == 0;
                    let retry_at = (rng.below(2) == 0).then(|| t + chrono::Duration::seconds(5));
                    let mut outcomes = Vec::new();
                    for (i, queue) in queues.iter().enumerate() {
                        let r = if fail {
                            queue.fail(ids[job][i], attempt, "boom", retry_at, t).await
                        } else {
                            queue.complete(ids[job][i], attempt, &json!(job), t).await
                        };
                        outcomes.push(format!("{r:?}").replace(&ids[job][i].to_string(), "ID"));
                    }
                    assert_eq!(
                        outcomes[0], outcomes[1],
                        "seed {seed}, step {step}: settle differs"
                    );
                }
                _ => t += chrono::Duration::seconds(rng.below(8) as i64),
            }
        }
        for (n, pair) in ids.iter().enumerate() {
            let mut records = Vec::new();
            for (i, queue) in queues.iter().enumerate() {
                let r = queue.job(pair[i]).await.expect("job").expect("stored");
                records.push((
                    r.status,
                    r.attempts,
                    r.run_at,
                    r.lease_until,
                    r.finished_at,
                    r.last_error,
                ));
            }
            assert_eq!(
                records[0], records[1],
                "seed {seed}: job {n} ends differently"
            );
        }
    }
}

/// Concurrent completions are each fenced on their own and get their own
/// outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_completions_are_fenced_one_by_one() {
    let q = queue();
    let kind = fresh_kind("k");
    let t0 = now();
    let jobs: Vec<NewJob> = (0..300).map(|i| NewJob::new(&kind, json!(i))).collect();
    q.enqueue_many(&jobs, t0).await.expect("enqueue");
    let got = q.claim(&request("w", &kind, 300), t0).await.expect("claim");
    assert_eq!(got.len(), 300);
    let mut tasks = Vec::new();
    for (i, job) in got.iter().enumerate() {
        let queue = q.queue.clone();
        // Every third completion carries a stale attempt; every seventh
        // names a job that does not exist.
        let (id, attempt) = match (i % 3, i % 7) {
            (_, 0) => (JobId::new(), 1),
            (0, _) => (job.id, 2),
            _ => (job.id, 1),
        };
        tasks.push(tokio::spawn(async move {
            (i, queue.complete(id, attempt, &json!(i), t0).await)
        }));
    }
    for task in tasks {
        let (i, outcome) = task.await.expect("task");
        let job = &got[i];
        let record = q.job(job.id).await.expect("job").expect("stored");
        match (i % 3, i % 7) {
            (_, 0) => {
                assert!(
                    matches!(outcome, Err(QueueError::NotFound { .. })),
                    "{i}: {outcome:?}"
                );
                assert_eq!(record.status, JobStatus::Running);
            }
            (0, _) => {
                assert!(
                    matches!(outcome, Err(QueueError::LeaseLost { attempt: 2, .. })),
                    "{i}: {outcome:?}"
                );
                assert_eq!(record.status, JobStatus::Running);
            }
            _ => {
                outcome.expect("completed");
                assert_eq!(record.get(), Some(&json!(i)));
            }
        }
    }
}
