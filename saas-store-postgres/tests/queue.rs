//! The job queue: the shared `JobQueue` conformance suite on PostgreSQL,
//! plus what only this backend has (several processes on one database,
//! enqueues inside the caller's transaction, batched enqueues and
//! completions, LISTEN/NOTIFY wake-ups).
//!
//! Every case runs on the shared test database and its one
//! `saas_shared.jobs` table, so each uses job kinds, tenants and keys of its
//! own and claims only its own kinds. A claim of any kind would take other
//! cases' jobs, so that one runs in a database of its own.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use saas_core::jobs::{ClaimRequest, JobId, JobQueue, JobStatus, NewJob, QueueError};
use saas_core::tenancy::TenantId;
use saas_store_postgres::{PgQueue, PgStore};
use serde_json::json;
use sqlx::Connection;
use testkit::jobs::{fresh_kind, request};
use testkit::pg;
use testkit::records::now;

/// `postgres::job_queue_conformance::<case>`: every case of the shared
/// suite; `postgres::all_cases_on_one_queue`,
/// `postgres::fairness_against_a_flood_of_10000`. Skipped with a note when
/// PostgreSQL is not there (unless `SAAS_REQUIRE_POSTGRES=1`).
mod postgres {
    async fn make() -> Option<std::sync::Arc<saas_store_postgres::PgQueue>> {
        testkit::pg::queue().await.map(std::sync::Arc::new)
    }
    testkit::job_queue_conformance!(make);
}

/// Two queues on two pools, as two processes would have, claim disjoint
/// jobs while racing, and every job completes exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_claim_disjoint_jobs_and_complete_each_once() {
    if !pg::available().await {
        return;
    }
    let a = pg::queue_at(&pg::url()).await;
    let b = pg::queue_at(&pg::url()).await;
    let kind = fresh_kind("pgq");
    let t0 = now();
    let tenants: Vec<TenantId> = (0..5).map(|_| TenantId::new()).collect();
    let jobs: Vec<NewJob> = (0..1_000)
        .map(|i| {
            let mut job = NewJob::new(&kind, json!(i));
            job.tenant = (i % 6 != 0).then(|| tenants[i % 5]);
            job
        })
        .collect();
    let enqueued = a.enqueue_many(&jobs, t0).await.expect("enqueue");
    let all: HashSet<JobId> = enqueued.iter().map(|e| e.id).collect();
    assert_eq!(all.len(), 1_000);

    async fn drain(q: PgQueue, worker: &'static str, kind: String, many: bool) -> Vec<JobId> {
        let mut got = Vec::new();
        loop {
            let batch = q
                .claim(&request(worker, &kind, 13), now())
                .await
                .expect("claim");
            if batch.is_empty() {
                return got;
            }
            for job in &batch {
                assert_eq!(job.attempt, 1, "nobody else held {}", job.id);
            }
            if many {
                let done: Vec<_> = batch
                    .iter()
                    .map(|j| (j.id, j.attempt, json!(worker)))
                    .collect();
                for r in q.complete_many(&done, now()).await.expect("complete_many") {
                    r.expect("the holder completes");
                }
            } else {
                for j in &batch {
                    q.complete(j.id, j.attempt, &json!(worker), now())
                        .await
                        .expect("the holder completes");
                }
            }
            got.extend(batch.iter().map(|j| j.id));
        }
    }
    let (ra, rb, rc) = tokio::join!(
        tokio::spawn(drain(a.clone(), "a", kind.clone(), true)),
        tokio::spawn(drain(b.clone(), "b", kind.clone(), false)),
        tokio::spawn(drain(b.clone(), "b2", kind.clone(), true)),
    );
    let (ga, gb, gc) = (ra.expect("a"), rb.expect("b"), rc.expect("b2"));
    assert!(!ga.is_empty(), "instance a took part");
    assert!(!gb.is_empty() || !gc.is_empty(), "instance b took part");
    let mut seen = HashSet::new();
    for id in ga.iter().chain(&gb).chain(&gc) {
        assert!(seen.insert(*id), "{id} was handed out twice");
    }
    assert_eq!(seen, all, "every job claimed exactly once");
    for id in ga.iter().take(20).chain(gb.iter().take(20)) {
        let r = b.job(*id).await.expect("job").expect("stored");
        assert_eq!(r.status, JobStatus::Succeeded);
        assert_eq!(r.attempts, 1, "completed once, never re-run");
    }

    // A stale holder on one instance is fenced by a re-claim on the other.
    let id = a
        .enqueue(&NewJob::new(&kind, json!("fence")), t0)
        .await
        .expect("enqueue")
        .id;
    let first = a.claim(&request("a", &kind, 1), t0).await.expect("claim");
    assert_eq!(first[0].id, id);
    let later = t0 + chrono::Duration::seconds(61);
    let second = b
        .claim(&request("b", &kind, 1), later)
        .await
        .expect("claim");
    assert_eq!(second[0].attempt, 2);
    let e = a.complete(id, 1, &json!("stale"), later).await;
    assert!(matches!(e, Err(QueueError::LeaseLost { .. })), "{e:?}");
    let outcomes = a
        .complete_many(
            &[
                (id, 1, json!("stale")),
                (JobId::new(), 1, json!(0)),
                (id, 2, json!("fresh")),
                (id, 2, json!("twice")),
            ],
            later,
        )
        .await
        .expect("complete_many");
    assert!(matches!(outcomes[0], Err(QueueError::LeaseLost { .. })));
    assert!(matches!(outcomes[1], Err(QueueError::NotFound { .. })));
    assert!(outcomes[2].is_ok(), "{:?}", outcomes[2]);
    assert!(matches!(outcomes[3], Err(QueueError::LeaseLost { .. })));
    let r = b.job(id).await.expect("job").expect("stored");
    assert_eq!(r.status, JobStatus::Succeeded);
    assert!(matches!(r.result, Some(ref v) if v == "fresh" || v == "twice"));
}

/// A job enqueued inside a transaction exists only if it commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_in_follows_the_callers_transaction() {
    let Some(q) = pg::queue().await else {
        return;
    };
    let kind = fresh_kind("pgq");
    let t0 = now();
    let mut conn = q.pool().acquire().await.expect("connection");

    let mut tx = conn.begin().await.expect("begin");
    let rolled_back = PgQueue::enqueue_in(&mut tx, &NewJob::new(&kind, json!(1)), t0)
        .await
        .expect("enqueue");
    assert!(rolled_back.created);
    tx.rollback().await.expect("rollback");
    assert!(q.job(rolled_back.id).await.expect("job").is_none());

    let mut tx = conn.begin().await.expect("begin");
    let kept = PgQueue::enqueue_in(&mut tx, &NewJob::new(&kind, json!(2)).unique_key(&kind), t0)
        .await
        .expect("enqueue");
    let again = PgQueue::enqueue_in(&mut tx, &NewJob::new(&kind, json!(3)).unique_key(&kind), t0)
        .await
        .expect("enqueue");
    assert_eq!(again.id, kept.id, "the key is taken within the transaction");
    assert!(!again.created);
    tx.commit().await.expect("commit");
    let got = q.claim(&request("w", &kind, 10), t0).await.expect("claim");
    assert_eq!(got.iter().map(|j| j.id).collect::<Vec<_>>(), vec![kept.id]);
}

/// Batched enqueues: all-or-nothing validation, keys resolved in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_many_is_all_or_nothing_and_keys_resolve_in_order() {
    let Some(q) = pg::queue().await else {
        return;
    };
    let kind = fresh_kind("pgq");
    let t0 = now();
    let bad = vec![
        NewJob::new(&kind, json!(1)),
        NewJob::new(&kind, json!(2)).max_attempts(0),
    ];
    assert!(matches!(
        q.enqueue_many(&bad, t0).await,
        Err(QueueError::Invalid { .. })
    ));
    assert!(
        q.claim(&request("w", &kind, 10), t0)
            .await
            .expect("claim")
            .is_empty(),
        "nothing of an invalid batch was stored"
    );
    let tenant = TenantId::new();
    let keyed = vec![
        NewJob::new(&kind, json!(1))
            .tenant(tenant)
            .unique_key(&kind),
        NewJob::new(&kind, json!(2))
            .tenant(tenant)
            .unique_key(&kind),
        NewJob::new(&kind, json!(3)).unique_key(&kind),
        NewJob::new(&kind, json!(4)),
    ];
    let out = q.enqueue_many(&keyed, t0).await.expect("enqueue");
    assert!(out[0].created);
    assert_eq!(out[1].id, out[0].id);
    assert!(!out[1].created);
    assert!(out[2].created, "platform jobs are their own group");
    assert!(out[3].created);
    assert_eq!(
        q.claim(&request("w", &kind, 10), t0)
            .await
            .expect("claim")
            .len(),
        3
    );
}

/// Values PostgreSQL's `jsonb` and `text` refuse are stored anyway: payloads
/// keep NUL characters and key order, error messages lose only their NULs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awkward_values_round_trip() {
    let Some(q) = pg::queue().await else {
        return;
    };
    let kind = fresh_kind("pgq");
    let t0 = now();
    let payload = json!({"z": "a\u{0}b", "a": [1.5, -0.0, 18446744073709551615u64], "é": null});
    let id = q
        .enqueue(&NewJob::new(&kind, payload.clone()), t0)
        .await
        .expect("enqueue")
        .id;
    let got = q
        .claim(&request("w\u{0}x", &kind, 1), t0)
        .await
        .expect("claim");
    assert_eq!(got[0].payload, payload);
    q.fail(id, 1, "bad\u{0}news", None, t0).await.expect("fail");
    let r = q.job(id).await.expect("job").expect("stored");
    assert_eq!(r.payload, payload);
    assert_eq!(r.status, JobStatus::Dead);
    assert_eq!(r.last_error.as_deref(), Some("bad\u{FFFD}news"));
    let nil = NewJob::new(&kind, json!(0)).tenant(TenantId(uuid::Uuid::nil()));
    assert!(matches!(
        q.enqueue(&nil, t0).await,
        Err(QueueError::Invalid {
            field: "tenant",
            ..
        })
    ));
}

/// An enqueue on one instance wakes `wait_for_work` on another at once,
/// through LISTEN/NOTIFY, long before the waiter's timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_wakes_a_waiter_on_another_instance() {
    let Some(waiter) = pg::queue().await else {
        return;
    };
    let other = pg::queue_at(&pg::url()).await;
    let kind = fresh_kind("pgq");
    // The first wait starts the listener; let it subscribe.
    waiter.wait_for_work(Duration::from_millis(300)).await;
    waiter.wait_for_work(Duration::from_millis(10)).await;
    let w = waiter.clone();
    let wait = tokio::spawn(async move {
        let started = Instant::now();
        w.wait_for_work(Duration::from_secs(20)).await;
        started.elapsed()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    other
        .enqueue(&NewJob::new(&kind, json!(0)), now())
        .await
        .expect("enqueue");
    let waited = wait.await.expect("waiter");
    assert!(
        waited < Duration::from_secs(10),
        "woken by the notification, not the timeout: {waited:?}"
    );
}

/// The accessor on a store uses the store's catalog database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_for_a_store() {
    if !pg::available().await {
        return;
    }
    let store = PgStore::connect_url(&pg::url()).await.expect("store");
    let q = PgQueue::for_store(&store).await.expect("queue");
    let kind = fresh_kind("pgq");
    let id = q
        .enqueue(&NewJob::new(&kind, json!(1)), now())
        .await
        .expect("enqueue")
        .id;
    let dyn_q: Arc<dyn JobQueue> = Arc::new(q);
    assert!(dyn_q.job(id).await.expect("job").is_some());
}

/// Claims of any kind (an empty kind list), in a database of their own
/// since they take every ready job; counts per status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_of_any_kind_and_counts() {
    if !pg::available().await {
        return;
    }
    let db = "saas_test_queue_any";
    pg::ensure_database(db).await;
    let q = pg::queue_at(&pg::url_for(db)).await;
    sqlx::query("TRUNCATE saas_shared.jobs")
        .execute(q.pool())
        .await
        .expect("truncate");
    let t0 = now();
    let tenant = TenantId::new();
    for (i, kind) in ["a", "b", "c"].iter().enumerate() {
        q.enqueue(&NewJob::new(*kind, json!(i)).tenant(tenant), t0)
            .await
            .expect("enqueue");
    }
    q.enqueue(
        &NewJob::new("d", json!(9)).run_at(t0 + chrono::Duration::seconds(60)),
        t0,
    )
    .await
    .expect("enqueue");
    let any = ClaimRequest {
        worker: "w".into(),
        lease: Duration::from_secs(1),
        limit: 10,
        kinds: vec![],
    };
    let got = q.claim(&any, t0).await.expect("claim");
    assert_eq!(
        got.iter().map(|j| j.kind.as_str()).collect::<Vec<_>>(),
        vec!["a", "b", "c"],
        "one tenant's jobs, by id"
    );
    // Expired leases count as ready for claims of any kind too.
    let later = t0 + chrono::Duration::seconds(61);
    let again = q.claim(&any, later).await.expect("claim");
    assert_eq!(again.len(), 4);
    assert!(
        again
            .iter()
            .filter(|j| j.kind != "d")
            .all(|j| j.attempt == 2)
    );
    let counts = q.counts().await.expect("counts");
    assert_eq!(counts, vec![(JobStatus::Running, 4)]);
}
