//! The [`JobQueue`] behaviour suite.
//!
//! Plain async functions over `&dyn JobQueue` that panic (assert) when the
//! queue deviates from the contract in [`saas_core::jobs::queue`]. A
//! backend's tests call each from a test of their own, e.g.
//!
//! ```ignore
//! #[tokio::test]
//! async fn queue_fencing() {
//!     let queue = my_backend_queue().await;
//!     testkit::queue_conformance::stale_attempt_is_fenced(&queue).await;
//! }
//! ```
//!
//! or all at once with [`run_all`], or one `#[tokio::test]` per function
//! with [`crate::job_queue_conformance!`]. Every function is isolated from the
//! others and from earlier runs on the same database: it uses job kinds of
//! its own (claims filter by kind), fresh random tenants and keys, and times
//! derived from the current time (or, for pruning, from a random instant in
//! 2001). They may run in parallel on one queue.

use chrono::{DateTime, Duration as Delta, TimeZone, Utc};
use saas_core::jobs::queue::{
    ClaimRequest, JobId, JobQueue, JobRecord, JobStatus, LEASE_EXPIRED_ON_FINAL_ATTEMPT, LeasedJob,
    NewJob, QueueError,
};
use saas_core::tenancy::TenantId;
use serde_json::json;
use std::time::Duration;

use crate::records::now;

mod operators;
pub use operators::{
    list_filters_and_pages, release_gives_the_job_back, stats_count_by_kind_and_status,
};

const LEASE: Duration = Duration::from_secs(30);

fn at(t: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
    t + Delta::seconds(secs)
}

fn fresh_kind(name: &str) -> String {
    crate::jobs::fresh_kind(&format!("conf_{name}"))
}

fn fresh_tenant() -> TenantId {
    TenantId::new()
}

fn claim_req(worker: &str, kind: &str, limit: u32) -> ClaimRequest {
    ClaimRequest {
        lease: LEASE,
        ..crate::jobs::request(worker, kind, limit)
    }
}

async fn claim(
    q: &dyn JobQueue,
    worker: &str,
    kind: &str,
    limit: u32,
    t: DateTime<Utc>,
) -> Vec<LeasedJob> {
    q.claim(&claim_req(worker, kind, limit), t)
        .await
        .expect("claim succeeds")
}

async fn enqueue(q: &dyn JobQueue, job: NewJob, t: DateTime<Utc>) -> JobId {
    let e = q.enqueue(&job, t).await.expect("enqueue succeeds");
    assert!(e.created, "a job without a taken key is created");
    e.id
}

async fn get(q: &dyn JobQueue, id: JobId) -> JobRecord {
    q.job(id)
        .await
        .expect("job() succeeds")
        .expect("the job exists")
}

/// Enqueue stores every field; `job` reads it back; bad input is refused.
pub async fn enqueue_and_get(q: &dyn JobQueue) {
    let kind = fresh_kind("enqueue");
    let tenant = fresh_tenant();
    let t0 = now();
    let id = enqueue(
        q,
        NewJob::new(&kind, json!({"a": 1, "s": "x"}))
            .tenant(tenant)
            .priority(7)
            .max_attempts(4),
        t0,
    )
    .await;
    let r = get(q, id).await;
    assert_eq!(r.id, id);
    assert_eq!(r.kind, kind);
    assert_eq!(r.tenant, Some(tenant));
    assert_eq!(r.payload, json!({"a": 1, "s": "x"}));
    assert_eq!(r.status, JobStatus::Queued);
    assert_eq!(r.priority, 7);
    assert_eq!(r.attempts, 0);
    assert_eq!(r.max_attempts, 4);
    assert_eq!(r.run_at, t0, "run_at defaults to now, stored exactly");
    assert_eq!(r.created_at, t0);
    assert_eq!(r.result, None);
    assert_eq!(r.last_error, None);
    assert_eq!(r.finished_at, None);
    assert!(!r.ready());
    assert_eq!(r.get(), None);
    assert_eq!(id.0.get_version_num(), 7, "job ids are UUIDv7");

    let later = enqueue(q, NewJob::new(&kind, json!(null)).run_at(at(t0, 60)), t0).await;
    let r = get(q, later).await;
    assert_eq!(r.status, JobStatus::Scheduled);
    assert_eq!(r.run_at, at(t0, 60));
    assert_eq!(r.tenant, None);

    assert!(q.job(JobId::new()).await.expect("job() succeeds").is_none());
    for bad in [
        NewJob::new(&kind, json!({})).max_attempts(0),
        NewJob::new("Bad Kind!", json!({})),
        NewJob::new("", json!({})),
        NewJob::new(&kind, json!({})).unique_key(""),
    ] {
        assert!(
            matches!(q.enqueue(&bad, t0).await, Err(QueueError::Invalid { .. })),
            "invalid job refused: {bad:?}"
        );
    }
}

/// Claim leases with attempt 1; complete stores the result (`ready`/`get`).
pub async fn claim_complete_result(q: &dyn JobQueue) {
    let kind = fresh_kind("complete");
    let tenant = fresh_tenant();
    let t0 = now();
    let id = enqueue(q, NewJob::new(&kind, json!({"n": 1})).tenant(tenant), t0).await;
    let got = claim(q, "w1", &kind, 10, t0).await;
    assert_eq!(got.len(), 1);
    let j = &got[0];
    assert_eq!(j.id, id);
    assert_eq!(j.kind, kind);
    assert_eq!(j.attempt, 1);
    assert_eq!(j.tenant, Some(tenant));
    assert_eq!(j.payload, json!({"n": 1}));
    assert_eq!(j.lease_until, at(t0, 30));
    let r = get(q, id).await;
    assert_eq!(r.status, JobStatus::Running);
    assert_eq!(r.attempts, 1);
    assert_eq!(r.worker.as_deref(), Some("w1"));
    assert_eq!(r.lease_until, Some(at(t0, 30)));
    assert_eq!(r.started_at, Some(t0));
    assert!(
        claim(q, "w2", &kind, 10, at(t0, 1)).await.is_empty(),
        "a leased job is not handed out twice"
    );

    q.complete(id, 1, &json!({"ok": true, "count": 3}), at(t0, 2))
        .await
        .expect("completion by the lease holder succeeds");
    let r = get(q, id).await;
    assert_eq!(r.status, JobStatus::Succeeded);
    assert!(r.ready());
    assert_eq!(r.get(), Some(&json!({"ok": true, "count": 3})));
    assert_eq!(r.finished_at, Some(at(t0, 2)));
    assert_eq!(r.lease_until, None);
    assert!(
        claim(q, "w1", &kind, 10, at(t0, 100)).await.is_empty(),
        "finished jobs are never claimed"
    );
}

/// At-least-once: a job whose worker vanished (lease expired) is claimed
/// again with attempt + 1; before expiry it is not.
pub async fn lease_expiry_reclaims(q: &dyn JobQueue) {
    let kind = fresh_kind("expiry");
    let t0 = now();
    let id = enqueue(q, NewJob::new(&kind, json!({})).tenant(fresh_tenant()), t0).await;
    let first = claim(q, "crashed", &kind, 1, t0).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attempt, 1);
    assert!(
        claim(q, "w2", &kind, 1, at(t0, 29)).await.is_empty(),
        "lease still valid"
    );
    let again = claim(q, "w2", &kind, 1, at(t0, 30)).await;
    assert_eq!(
        again.len(),
        1,
        "an expired lease is claimable (lease_until <= now)"
    );
    assert_eq!(again[0].id, id);
    assert_eq!(again[0].attempt, 2);
    assert_eq!(again[0].lease_until, at(t0, 60));
    let r = get(q, id).await;
    assert_eq!(r.attempts, 2);
    assert_eq!(r.worker.as_deref(), Some("w2"));
    q.complete(id, 2, &json!(1), at(t0, 31))
        .await
        .expect("new holder completes");
    assert_eq!(get(q, id).await.status, JobStatus::Succeeded);
}

/// Fencing: completion, failure and heartbeat with a stale attempt are
/// refused with `LeaseLost` and change nothing.
pub async fn stale_attempt_is_fenced(q: &dyn JobQueue) {
    let kind = fresh_kind("fence");
    let t0 = now();
    let id = enqueue(q, NewJob::new(&kind, json!({})).tenant(fresh_tenant()), t0).await;
    assert_eq!(claim(q, "old", &kind, 1, t0).await[0].attempt, 1);
    assert_eq!(claim(q, "new", &kind, 1, at(t0, 31)).await[0].attempt, 2);
    let before = get(q, id).await;

    let e = q.complete(id, 1, &json!("stale"), at(t0, 32)).await;
    assert!(
        matches!(e, Err(QueueError::LeaseLost { id: i, attempt: 1 }) if i == id),
        "stale complete: {e:?}"
    );
    let e = q
        .fail(id, 1, "stale failure", Some(at(t0, 40)), at(t0, 32))
        .await;
    assert!(
        matches!(e, Err(QueueError::LeaseLost { .. })),
        "stale fail: {e:?}"
    );
    let e = q.fail(id, 1, "stale failure", None, at(t0, 32)).await;
    assert!(
        matches!(e, Err(QueueError::LeaseLost { .. })),
        "stale fail (dead): {e:?}"
    );
    let e = q.heartbeat(id, 1, at(t0, 500)).await;
    assert!(
        matches!(e, Err(QueueError::LeaseLost { .. })),
        "stale heartbeat: {e:?}"
    );
    let e = q.complete(id, 3, &json!("future"), at(t0, 32)).await;
    assert!(
        matches!(e, Err(QueueError::LeaseLost { .. })),
        "future attempt: {e:?}"
    );
    assert_eq!(get(q, id).await, before, "refused calls changed nothing");

    q.heartbeat(id, 2, at(t0, 90))
        .await
        .expect("holder's heartbeat");
    q.complete(id, 2, &json!("fresh"), at(t0, 33))
        .await
        .expect("holder completes");
    let e = q.complete(id, 2, &json!("twice"), at(t0, 34)).await;
    assert!(
        matches!(e, Err(QueueError::LeaseLost { .. })),
        "completing a finished job: {e:?}"
    );
    let e = q.heartbeat(id, 2, at(t0, 100)).await;
    assert!(
        matches!(e, Err(QueueError::LeaseLost { .. })),
        "heartbeat on a finished job: {e:?}"
    );
    assert_eq!(get(q, id).await.get(), Some(&json!("fresh")));

    let missing = JobId::new();
    assert!(matches!(
        q.heartbeat(missing, 1, t0).await,
        Err(QueueError::NotFound { .. })
    ));
    assert!(matches!(
        q.complete(missing, 1, &json!(0), t0).await,
        Err(QueueError::NotFound { .. })
    ));
    assert!(matches!(
        q.fail(missing, 1, "x", None, t0).await,
        Err(QueueError::NotFound { .. })
    ));
}

/// `complete_many` completes what it may and fences the rest, one outcome
/// per entry in order: the holder's entries succeed, a stale attempt is
/// `LeaseLost`, an unknown id `NotFound`, a repeated entry for a job already
/// completed in the batch `LeaseLost`; refused entries change nothing.
pub async fn complete_many_fences_each_entry(q: &dyn JobQueue) {
    let kind = fresh_kind("many");
    let t0 = now();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(enqueue(q, NewJob::new(&kind, json!(i)).tenant(fresh_tenant()), t0).await);
    }
    let got = claim(q, "w", &kind, 10, t0).await;
    assert_eq!(got.len(), 3);
    let before = get(q, ids[1]).await;
    let missing = JobId::new();
    let out = q
        .complete_many(
            &[
                (ids[0], 1, json!("a")),
                (ids[1], 2, json!("stale")),
                (missing, 1, json!("none")),
                (ids[2], 1, json!("c")),
                (ids[2], 1, json!("twice")),
            ],
            at(t0, 1),
        )
        .await
        .expect("complete_many reaches the backend");
    assert_eq!(out.len(), 5, "one outcome per entry");
    assert!(out[0].is_ok(), "holder: {:?}", out[0]);
    assert!(
        matches!(out[1], Err(QueueError::LeaseLost { id, attempt: 2 }) if id == ids[1]),
        "stale attempt: {:?}",
        out[1]
    );
    assert!(
        matches!(out[2], Err(QueueError::NotFound { id }) if id == missing),
        "unknown id: {:?}",
        out[2]
    );
    assert!(out[3].is_ok(), "holder: {:?}", out[3]);
    assert!(
        matches!(out[4], Err(QueueError::LeaseLost { .. })),
        "second completion of one job: {:?}",
        out[4]
    );
    let r = get(q, ids[0]).await;
    assert_eq!(r.status, JobStatus::Succeeded);
    assert_eq!(r.get(), Some(&json!("a")));
    assert_eq!(r.finished_at, Some(at(t0, 1)));
    assert_eq!(get(q, ids[1]).await, before, "the fenced job is untouched");
    assert_eq!(get(q, ids[2]).await.get(), Some(&json!("c")));
    assert!(
        q.complete_many(&[], t0)
            .await
            .expect("empty batch")
            .is_empty(),
        "an empty batch has no outcomes"
    );
}

/// A heartbeat extends the lease: the job is not re-claimed until the new end.
pub async fn heartbeat_extends_lease(q: &dyn JobQueue) {
    let kind = fresh_kind("beat");
    let t0 = now();
    let id = enqueue(q, NewJob::new(&kind, json!({})).tenant(fresh_tenant()), t0).await;
    claim(q, "w", &kind, 1, t0).await;
    q.heartbeat(id, 1, at(t0, 60)).await.expect("heartbeat");
    assert_eq!(get(q, id).await.lease_until, Some(at(t0, 60)));
    assert!(
        claim(q, "x", &kind, 1, at(t0, 45)).await.is_empty(),
        "extended lease holds"
    );
    // An expired lease not yet re-claimed still belongs to its holder.
    q.heartbeat(id, 1, at(t0, 120))
        .await
        .expect("late heartbeat before re-claim");
    assert!(claim(q, "x", &kind, 1, at(t0, 119)).await.is_empty());
    let again = claim(q, "x", &kind, 1, at(t0, 120)).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2);
}

/// Failures retry at `retry_at` until `max_attempts`, then the job is dead;
/// a dead job can be retried with more attempts; `fail(None)` is dead at once.
pub async fn retries_then_dead(q: &dyn JobQueue) {
    let kind = fresh_kind("retry");
    let t0 = now();
    let id = enqueue(
        q,
        NewJob::new(&kind, json!({}))
            .tenant(fresh_tenant())
            .max_attempts(3),
        t0,
    )
    .await;
    for attempt in 1..=3u32 {
        let tn = at(t0, i64::from(attempt) * 100);
        let got = claim(q, "w", &kind, 1, tn).await;
        assert_eq!(got.len(), 1, "attempt {attempt} claimed");
        assert_eq!(got[0].attempt, attempt);
        q.fail(
            id,
            attempt,
            &format!("boom {attempt}"),
            Some(at(tn, 10)),
            at(tn, 1),
        )
        .await
        .expect("fail by holder");
        let r = get(q, id).await;
        assert_eq!(
            r.last_error.as_deref(),
            Some(format!("boom {attempt}").as_str())
        );
        assert_eq!(r.lease_until, None);
        if attempt < 3 {
            assert_eq!(r.status, JobStatus::Retrying);
            assert_eq!(r.run_at, at(tn, 10));
            assert_eq!(r.finished_at, None);
            assert!(
                claim(q, "w", &kind, 1, at(tn, 9)).await.is_empty(),
                "not before retry_at"
            );
        } else {
            assert_eq!(
                r.status,
                JobStatus::Dead,
                "out of attempts: dead even with retry_at"
            );
            assert_eq!(r.finished_at, Some(at(tn, 1)));
            assert!(r.ready());
        }
    }
    assert!(
        claim(q, "w", &kind, 1, at(t0, 10_000)).await.is_empty(),
        "dead jobs are not claimed"
    );

    let e = q.retry(id, 0, at(t0, 400), at(t0, 400)).await;
    assert!(
        matches!(e, Err(QueueError::Invalid { .. })),
        "zero extra attempts: {e:?}"
    );
    let r = q
        .retry(id, 2, at(t0, 400), at(t0, 400))
        .await
        .expect("retry a dead job");
    assert_eq!(r.status, JobStatus::Queued);
    assert_eq!(r.attempts, 3, "attempts are never reset");
    assert_eq!(r.max_attempts, 5);
    assert_eq!(r.finished_at, None);
    assert_eq!(r.last_error.as_deref(), Some("boom 3"), "last error kept");
    let e = q.retry(id, 2, at(t0, 400), at(t0, 400)).await;
    assert!(
        matches!(
            e,
            Err(QueueError::InvalidState {
                status: JobStatus::Queued,
                ..
            })
        ),
        "retry of a queued job: {e:?}"
    );
    let got = claim(q, "w", &kind, 1, at(t0, 401)).await;
    assert_eq!(got[0].attempt, 4);
    q.fail(id, 4, "fatal", None, at(t0, 402))
        .await
        .expect("fail for good");
    assert_eq!(
        get(q, id).await.status,
        JobStatus::Dead,
        "no retry_at: dead at once"
    );
    let r = q
        .retry(id, 1, at(t0, 1000), at(t0, 500))
        .await
        .expect("retry later");
    assert_eq!(r.status, JobStatus::Scheduled);
    assert!(matches!(
        q.retry(JobId::new(), 1, t0, t0).await,
        Err(QueueError::NotFound { .. })
    ));
}

/// A lease that expires on the final attempt makes the job dead at the next
/// claim instead of running it beyond `max_attempts`.
pub async fn lease_expiry_on_final_attempt_is_dead(q: &dyn JobQueue) {
    let kind = fresh_kind("final");
    let t0 = now();
    let id = enqueue(
        q,
        NewJob::new(&kind, json!({}))
            .tenant(fresh_tenant())
            .max_attempts(1),
        t0,
    )
    .await;
    assert_eq!(claim(q, "crashed", &kind, 1, t0).await.len(), 1);
    assert!(claim(q, "w", &kind, 1, at(t0, 31)).await.is_empty());
    let r = get(q, id).await;
    assert_eq!(r.status, JobStatus::Dead);
    assert_eq!(
        r.last_error.as_deref(),
        Some(LEASE_EXPIRED_ON_FINAL_ATTEMPT)
    );
    assert_eq!(r.finished_at, Some(at(t0, 31)));
    let e = q.complete(id, 1, &json!(0), at(t0, 32)).await;
    assert!(
        matches!(e, Err(QueueError::LeaseLost { .. })),
        "the dead job's old holder is fenced: {e:?}"
    );
}

/// Unique keys: per tenant, held by every job that is not cancelled
/// (finished ones too, until pruned); concurrent enqueues create one job.
pub async fn unique_keys(q: &dyn JobQueue) {
    let kind = fresh_kind("unique");
    let (a, b) = (fresh_tenant(), fresh_tenant());
    let key = format!("key-{}", uuid::Uuid::new_v4());
    let t0 = now();
    let job = |t: Option<TenantId>| {
        let mut j = NewJob::new(&kind, json!({})).unique_key(&key);
        j.tenant = t;
        j
    };
    let first = q.enqueue(&job(Some(a)), t0).await.expect("enqueue");
    assert!(first.created);
    let second = q.enqueue(&job(Some(a)), at(t0, 1)).await.expect("enqueue");
    assert_eq!(
        second.id, first.id,
        "same key, same tenant: the existing job"
    );
    assert!(!second.created);
    let other = q.enqueue(&job(Some(b)), t0).await.expect("enqueue");
    assert!(other.created, "keys are per tenant");
    assert_ne!(other.id, first.id);
    let platform = q.enqueue(&job(None), t0).await.expect("enqueue");
    assert!(platform.created, "platform jobs are their own group");
    let platform2 = q.enqueue(&job(None), t0).await.expect("enqueue");
    assert_eq!(platform2.id, platform.id, "None equals None");
    assert!(!platform2.created);

    // Running, then succeeded: the key stays taken.
    let got = claim(q, "w", &kind, 10, t0).await;
    let mine = got.iter().find(|j| j.id == first.id).expect("claimed");
    assert_eq!(
        q.enqueue(&job(Some(a)), t0).await.expect("enqueue").id,
        first.id
    );
    q.complete(first.id, mine.attempt, &json!(null), at(t0, 2))
        .await
        .expect("complete");
    let after = q.enqueue(&job(Some(a)), at(t0, 3)).await.expect("enqueue");
    assert_eq!(
        after.id, first.id,
        "a succeeded job keeps its key until pruned"
    );
    assert!(!after.created);

    // Cancelling releases the key.
    let key2 = format!("key-{}", uuid::Uuid::new_v4());
    let c1 = q
        .enqueue(
            &NewJob::new(&kind, json!({})).tenant(a).unique_key(&key2),
            t0,
        )
        .await
        .expect("enqueue");
    q.cancel(c1.id, t0).await.expect("cancel");
    let c2 = q
        .enqueue(
            &NewJob::new(&kind, json!({})).tenant(a).unique_key(&key2),
            t0,
        )
        .await
        .expect("enqueue");
    assert!(c2.created, "a cancelled job's key is free");
    assert_ne!(c2.id, c1.id);

    // Concurrent enqueues with one key create exactly one job.
    let key3 = format!("key-{}", uuid::Uuid::new_v4());
    let j3 = NewJob::new(&kind, json!({})).tenant(b).unique_key(&key3);
    let e = || q.enqueue(&j3, t0);
    let rs = tokio::join!(e(), e(), e(), e(), e(), e(), e(), e());
    let rs = [rs.0, rs.1, rs.2, rs.3, rs.4, rs.5, rs.6, rs.7];
    let rs: Vec<_> = rs.into_iter().map(|r| r.expect("enqueue")).collect();
    assert_eq!(
        rs.iter().filter(|r| r.created).count(),
        1,
        "exactly one created"
    );
    assert!(rs.iter().all(|r| r.id == rs[0].id), "all see the same job");
}

/// A key with a window ([`NewJob::unique_for`]) is held while its job is
/// pending and for the window after it finished; then a new job takes it.
pub async fn unique_keys_with_a_window(q: &dyn JobQueue) {
    let kind = fresh_kind("window");
    let tenant = fresh_tenant();
    let key = format!("key-{}", uuid::Uuid::new_v4());
    let window = Duration::from_secs(60);
    let job = || {
        NewJob::new(&kind, json!({}))
            .tenant(tenant)
            .unique_for(&key, window)
    };
    let t0 = now();
    let first = q.enqueue(&job(), t0).await.expect("enqueue");
    assert!(first.created);
    let waiting = q.enqueue(&job(), at(t0, 600)).await.expect("enqueue");
    assert_eq!(
        (waiting.id, waiting.created),
        (first.id, false),
        "a waiting holder keeps its key however long it waits"
    );
    let got = claim(q, "w", &kind, 10, at(t0, 600)).await;
    assert_eq!(got.len(), 1);
    let running = q.enqueue(&job(), at(t0, 700)).await.expect("enqueue");
    assert_eq!((running.id, running.created), (first.id, false));
    q.complete(first.id, got[0].attempt, &json!({"ok": 1}), at(t0, 700))
        .await
        .expect("complete");
    let recent = q.enqueue(&job(), at(t0, 759)).await.expect("enqueue");
    assert_eq!(
        (recent.id, recent.created),
        (first.id, false),
        "finished 59 s ago, within the window: the same job"
    );
    let later = q.enqueue(&job(), at(t0, 761)).await.expect("enqueue");
    assert!(later.created, "finished 61 s ago: a new job");
    assert_ne!(later.id, first.id);
    let old = get(q, first.id).await;
    assert_eq!(old.unique_key, None, "the old job gave its key up");
    assert_eq!(
        old.status,
        JobStatus::Succeeded,
        "and is otherwise unchanged"
    );
    assert_eq!(old.result, Some(json!({"ok": 1})));
    let again = q.enqueue(&job(), at(t0, 762)).await.expect("enqueue");
    assert_eq!((again.id, again.created), (later.id, false));

    // A key without a window stays with a finished holder (unique_keys).
    let plain = format!("key-{}", uuid::Uuid::new_v4());
    let k = || {
        NewJob::new(&kind, json!({}))
            .tenant(tenant)
            .unique_key(&plain)
    };
    let p1 = q.enqueue(&k(), t0).await.expect("enqueue").id;
    let got = claim(q, "w", &kind, 10, at(t0, 800)).await;
    let lease = got.iter().find(|j| j.id == p1).expect("claimed");
    q.complete(p1, lease.attempt, &json!(null), at(t0, 800))
        .await
        .expect("complete");
    assert_eq!(
        q.enqueue(&k(), at(t0, 100_000)).await.expect("enqueue").id,
        p1
    );
}

/// [`NewJob::max_pending`]: past the cap of a tenant's pending jobs an
/// enqueue stores nothing and fails; finished jobs and other tenants do not
/// count; a held key answers before the cap; concurrent enqueues never
/// overshoot it.
pub async fn pending_cap(q: &dyn JobQueue) {
    let kind = fresh_kind("cap");
    let (tenant, other) = (fresh_tenant(), fresh_tenant());
    let t0 = now();
    let capped = |t: TenantId| NewJob::new(&kind, json!({})).tenant(t).max_pending(3);
    for _ in 0..3 {
        enqueue(q, capped(tenant), t0).await;
    }
    let refused = q.enqueue(&capped(tenant), t0).await;
    assert!(
        matches!(refused, Err(QueueError::TooManyPending { limit: 3 })),
        "the fourth pending job is refused: {refused:?}"
    );
    assert!(
        matches!(
            q.enqueue(&capped(tenant).unique_key("held"), t0).await,
            Err(QueueError::TooManyPending { limit: 3 })
        ),
        "a key nobody holds does not get past the cap"
    );
    // Another tenant has a cap of its own; an uncapped job is not refused.
    enqueue(q, capped(other), t0).await;
    enqueue(q, NewJob::new(&kind, json!({})).tenant(tenant), t0).await;
    // Running jobs still count; finished ones do not.
    let leased = claim(q, "w", &kind, 100, t0).await;
    let mine: Vec<_> = leased.iter().filter(|j| j.tenant == Some(tenant)).collect();
    assert_eq!(mine.len(), 4, "three capped jobs and one uncapped");
    assert!(
        matches!(
            q.enqueue(&capped(tenant), t0).await,
            Err(QueueError::TooManyPending { .. })
        ),
        "running jobs are pending"
    );
    for j in &mine[..2] {
        q.complete(j.id, j.attempt, &json!(null), t0)
            .await
            .expect("complete");
    }
    let in_again = q
        .enqueue(&capped(tenant).unique_key("held"), t0)
        .await
        .expect("two of four finished: below the cap again");
    assert!(in_again.created);
    let held = q
        .enqueue(&capped(tenant).unique_key("held"), t0)
        .await
        .expect("at the cap, a held key answers with its holder");
    assert_eq!((held.id, held.created), (in_again.id, false));
    assert!(matches!(
        q.enqueue(&capped(tenant), t0).await,
        Err(QueueError::TooManyPending { limit: 3 })
    ));

    // Concurrent capped enqueues for a fresh tenant: exactly the cap.
    let racer = fresh_tenant();
    let job = NewJob::new(&kind, json!({})).tenant(racer).max_pending(3);
    let e = || q.enqueue(&job, t0);
    let rs = tokio::join!(e(), e(), e(), e(), e(), e(), e(), e());
    let rs = [rs.0, rs.1, rs.2, rs.3, rs.4, rs.5, rs.6, rs.7];
    let created = rs.iter().filter(|r| r.is_ok()).count();
    assert_eq!(created, 3, "racing enqueues stop at the cap: {rs:?}");
    assert!(
        rs.iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, QueueError::TooManyPending { limit: 3 })),
        "the others are refused for the cap: {rs:?}"
    );
}

/// `run_at` in the future is not claimed before it comes.
pub async fn scheduled_at_honored(q: &dyn JobQueue) {
    let kind = fresh_kind("sched");
    let t0 = now();
    let id = enqueue(
        q,
        NewJob::new(&kind, json!({}))
            .tenant(fresh_tenant())
            .run_at(at(t0, 60)),
        t0,
    )
    .await;
    assert_eq!(get(q, id).await.status, JobStatus::Scheduled);
    assert!(claim(q, "w", &kind, 10, t0).await.is_empty());
    assert!(claim(q, "w", &kind, 10, at(t0, 59)).await.is_empty());
    let got = claim(q, "w", &kind, 10, at(t0, 60)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, id);
    // A run_at in the past is ready at once.
    let past = enqueue(q, NewJob::new(&kind, json!({})).run_at(at(t0, -60)), t0).await;
    assert_eq!(get(q, past).await.status, JobStatus::Queued);
    assert_eq!(claim(q, "w", &kind, 10, t0).await[0].id, past);
}

/// Higher priority first; equal priority by `run_at`, then id (FIFO).
pub async fn priorities_honored(q: &dyn JobQueue) {
    let kind = fresh_kind("prio");
    let tenant = fresh_tenant();
    let t0 = now();
    let low = enqueue(
        q,
        NewJob::new(&kind, json!("low")).tenant(tenant).priority(-5),
        t0,
    )
    .await;
    let mid1 = enqueue(q, NewJob::new(&kind, json!("mid1")).tenant(tenant), t0).await;
    let high = enqueue(
        q,
        NewJob::new(&kind, json!("high"))
            .tenant(tenant)
            .priority(10),
        t0,
    )
    .await;
    let mid0 = enqueue(
        q,
        NewJob::new(&kind, json!("mid0"))
            .tenant(tenant)
            .run_at(at(t0, -10)),
        t0,
    )
    .await;
    let mid2 = enqueue(q, NewJob::new(&kind, json!("mid2")).tenant(tenant), t0).await;
    let mut order = Vec::new();
    for _ in 0..5 {
        let got = claim(q, "w", &kind, 1, at(t0, 1)).await;
        assert_eq!(got.len(), 1);
        order.push(got[0].id);
    }
    assert_eq!(order, vec![high, mid0, mid1, mid2, low]);
    assert!(claim(q, "w", &kind, 1, at(t0, 1)).await.is_empty());
}

/// Cancellation: waiting jobs only; running, finished and unknown refused.
pub async fn cancellation(q: &dyn JobQueue) {
    let kind = fresh_kind("cancel");
    let t0 = now();
    let queued = enqueue(q, NewJob::new(&kind, json!({})).tenant(fresh_tenant()), t0).await;
    let scheduled = enqueue(q, NewJob::new(&kind, json!({})).run_at(at(t0, 3600)), t0).await;
    let r = q.cancel(queued, at(t0, 1)).await.expect("cancel queued");
    assert_eq!(r.status, JobStatus::Cancelled);
    assert_eq!(r.finished_at, Some(at(t0, 1)));
    assert!(r.ready());
    assert_eq!(r.get(), None);
    assert_eq!(
        q.cancel(scheduled, t0)
            .await
            .expect("cancel scheduled")
            .status,
        JobStatus::Cancelled
    );
    assert!(
        claim(q, "w", &kind, 10, at(t0, 7200)).await.is_empty(),
        "cancelled jobs never run"
    );
    let e = q.cancel(queued, t0).await;
    assert!(
        matches!(
            e,
            Err(QueueError::InvalidState {
                status: JobStatus::Cancelled,
                ..
            })
        ),
        "{e:?}"
    );

    let running = enqueue(q, NewJob::new(&kind, json!({})), t0).await;
    claim(q, "w", &kind, 10, t0).await;
    let before = get(q, running).await;
    let e = q.cancel(running, t0).await;
    assert!(
        matches!(
            e,
            Err(QueueError::InvalidState {
                status: JobStatus::Running,
                ..
            })
        ),
        "{e:?}"
    );
    assert_eq!(
        get(q, running).await,
        before,
        "refused cancel changed nothing"
    );
    q.complete(running, 1, &json!(1), t0)
        .await
        .expect("complete");
    assert!(matches!(
        q.cancel(running, t0).await,
        Err(QueueError::InvalidState { .. })
    ));
    assert!(matches!(
        q.cancel(JobId::new(), t0).await,
        Err(QueueError::NotFound { .. })
    ));

    let retrying = enqueue(q, NewJob::new(&kind, json!({})), t0).await;
    claim(q, "w", &kind, 10, t0).await;
    q.fail(retrying, 1, "x", Some(at(t0, 60)), t0)
        .await
        .expect("fail");
    assert_eq!(
        q.cancel(retrying, t0)
            .await
            .expect("cancel retrying")
            .status,
        JobStatus::Cancelled
    );
}

/// Prune deletes finished jobs with `finished_at < before` and nothing else.
pub async fn prune_finished(q: &dyn JobQueue) {
    let kind = fresh_kind("prune");
    // A random instant in 2001, so concurrent runs prune disjoint ranges.
    let offset = i64::from(uuid::Uuid::new_v4().as_fields().0 % 30_000_000);
    let t0 = Utc
        .with_ymd_and_hms(2001, 1, 1, 0, 0, 0)
        .single()
        .map(|t| at(t, offset))
        .unwrap_or_else(now);
    let mk = |p: i64| NewJob::new(&kind, json!(p));
    let succeeded = enqueue(q, mk(1), t0).await;
    let dead = enqueue(q, mk(2), t0).await;
    let late = enqueue(q, mk(3), t0).await;
    let running = enqueue(q, mk(4), t0).await;
    assert_eq!(claim(q, "w", &kind, 4, t0).await.len(), 4);
    let cancelled = enqueue(q, mk(5), t0).await;
    let queued = enqueue(q, mk(6), t0).await;
    q.complete(succeeded, 1, &json!(0), at(t0, 1))
        .await
        .expect("complete");
    q.fail(dead, 1, "x", None, at(t0, 1)).await.expect("fail");
    q.complete(late, 1, &json!(0), at(t0, 20))
        .await
        .expect("complete");
    q.cancel(cancelled, at(t0, 1)).await.expect("cancel");
    let n = q.prune(at(t0, 10)).await.expect("prune");
    assert!(n >= 3, "pruned at least our three finished jobs, got {n}");
    for gone in [succeeded, dead, cancelled] {
        assert!(q.job(gone).await.expect("job").is_none(), "pruned {gone}");
    }
    assert!(
        q.job(late).await.expect("job").is_some(),
        "finished after the cutoff: kept"
    );
    assert!(
        q.job(running).await.expect("job").is_some(),
        "running: kept"
    );
    assert!(q.job(queued).await.expect("job").is_some(), "queued: kept");
}

/// Fairness with the default flood of 2,000 jobs; see [`fairness_with`].
pub async fn fairness(q: &dyn JobQueue) {
    fairness_with(q, 2_000).await;
}

/// Tenant A enqueues `flood` jobs, then tenant B enqueues 4 and a platform
/// job arrives: the first batch of 10 holds all of B's jobs and the platform
/// job (round-robin across tenants: A1 B1 P A2 B2 A3 B3 A4 B4 A5), and A's
/// jobs still come out in order.
pub async fn fairness_with(q: &dyn JobQueue, flood: usize) {
    let kind = fresh_kind("fair");
    let (a, b) = (fresh_tenant(), fresh_tenant());
    let t0 = now();
    let mut a_ids = Vec::with_capacity(flood);
    for i in 0..flood {
        a_ids.push(enqueue(q, NewJob::new(&kind, json!(i)).tenant(a), t0).await);
    }
    let t1 = at(t0, 1);
    let mut b_ids = Vec::new();
    for i in 0..4 {
        b_ids.push(enqueue(q, NewJob::new(&kind, json!(i)).tenant(b), t1).await);
    }
    let platform = enqueue(q, NewJob::new(&kind, json!("p")), t1).await;
    let batch = claim(q, "w", &kind, 10, at(t0, 2)).await;
    assert_eq!(batch.len(), 10);
    let of = |t: Option<TenantId>| {
        batch
            .iter()
            .filter(|j| j.tenant == t)
            .map(|j| j.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        of(Some(b)),
        b_ids,
        "all of B's jobs, in order, in the first batch despite A's flood"
    );
    assert_eq!(of(None), vec![platform], "the platform job too");
    assert_eq!(
        of(Some(a)),
        a_ids[..5].to_vec(),
        "A's oldest jobs fill the rest, in order"
    );
    let next = claim(q, "w", &kind, 10, at(t0, 2)).await;
    assert_eq!(
        next.iter().map(|j| j.id).collect::<Vec<_>>(),
        a_ids[5..15].to_vec(),
        "then A's, in order"
    );

    // A tenant arriving later still gets in within the next batch.
    let c = fresh_tenant();
    let c_id = enqueue(q, NewJob::new(&kind, json!("c")).tenant(c), at(t0, 3)).await;
    let third = claim(q, "w", &kind, 10, at(t0, 4)).await;
    assert!(
        third.iter().any(|j| j.id == c_id),
        "a newcomer is served in the very next batch"
    );
}

/// Claims honour `limit` and the kind filter; concurrent claimers get
/// disjoint jobs.
pub async fn claims_are_bounded_filtered_and_disjoint(q: &dyn JobQueue) {
    let kind = fresh_kind("disjoint");
    let other = fresh_kind("other");
    let t0 = now();
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(enqueue(q, NewJob::new(&kind, json!(i)).tenant(fresh_tenant()), t0).await);
    }
    let other_id = enqueue(q, NewJob::new(&other, json!(0)), t0).await;
    let req = claim_req("w", &kind, 7);
    let c = || q.claim(&req, t0);
    let rs = tokio::join!(c(), c(), c(), c(), c(), c());
    let mut seen: Vec<JobId> = Vec::new();
    for r in [rs.0, rs.1, rs.2, rs.3, rs.4, rs.5] {
        let got = r.expect("claim");
        assert!(got.len() <= 7, "limit honoured");
        assert!(got.iter().all(|j| j.kind == kind && j.attempt == 1));
        seen.extend(got.iter().map(|j| j.id));
    }
    seen.sort();
    let n = seen.len();
    seen.dedup();
    assert_eq!(seen.len(), n, "no job handed to two claimers");
    let rest = claim(q, "w", &kind, 100, t0).await;
    assert_eq!(n + rest.len(), 40, "every job claimed exactly once");
    assert_eq!(
        get(q, other_id).await.status,
        JobStatus::Queued,
        "other kinds untouched"
    );
    let any = q
        .claim(
            &ClaimRequest {
                worker: "w".into(),
                lease: LEASE,
                limit: 0,
                kinds: vec![other.clone()],
            },
            t0,
        )
        .await
        .expect("claim");
    assert!(any.is_empty(), "limit 0 claims nothing");
}

/// `wait_for_work` returns (at the latest) after its timeout.
pub async fn wait_for_work_returns(q: &dyn JobQueue) {
    let started = std::time::Instant::now();
    q.wait_for_work(Duration::from_millis(50)).await;
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Every function above, in turn.
pub async fn run_all(q: &dyn JobQueue) {
    enqueue_and_get(q).await;
    claim_complete_result(q).await;
    lease_expiry_reclaims(q).await;
    stale_attempt_is_fenced(q).await;
    complete_many_fences_each_entry(q).await;
    heartbeat_extends_lease(q).await;
    retries_then_dead(q).await;
    lease_expiry_on_final_attempt_is_dead(q).await;
    unique_keys(q).await;
    unique_keys_with_a_window(q).await;
    pending_cap(q).await;
    scheduled_at_honored(q).await;
    priorities_honored(q).await;
    cancellation(q).await;
    prune_finished(q).await;
    fairness(q).await;
    claims_are_bounded_filtered_and_disjoint(q).await;
    wait_for_work_returns(q).await;
    release_gives_the_job_back(q).await;
    list_filters_and_pages(q).await;
    stats_count_by_kind_and_status(q).await;
}

/// Generates the suite for one queue, in the calling module: one
/// `#[tokio::test]` per conformance function in a module named
/// `job_queue_conformance` (so a backend's failures name the case), and
/// two more beside it, `all_cases_on_one_queue` ([`run_all`], as the cases
/// would share a database) and `fairness_against_a_flood_of_10000`
/// ([`fairness_with`] against a flood five times the suite's):
///
/// ```ignore
/// // In a backend's tests, with the kit as the dev-dependency `testkit`:
/// mod my_backend {
///     async fn make() -> Option<std::sync::Arc<my_backend::Queue>> {
///         Some(std::sync::Arc::new(my_backend::Queue::connect_for_tests().await))
///     }
///     testkit::job_queue_conformance!(make);
/// }
/// ```
///
/// `$make` names an async fn of the calling module, without arguments,
/// returning `Option` of anything that dereferences to a `JobQueue` (an
/// `Arc<dyn JobQueue>`, an `Arc<Q>`, a guard that keeps the queue's
/// storage alive); `None` skips the case (a database that is not there).
#[macro_export]
macro_rules! job_queue_conformance {
    ($make:ident) => {
        mod job_queue_conformance {
            $crate::job_queue_conformance!(@cases $make;
                enqueue_and_get,
                claim_complete_result,
                lease_expiry_reclaims,
                stale_attempt_is_fenced,
                complete_many_fences_each_entry,
                heartbeat_extends_lease,
                retries_then_dead,
                lease_expiry_on_final_attempt_is_dead,
                unique_keys,
                unique_keys_with_a_window,
                pending_cap,
                scheduled_at_honored,
                priorities_honored,
                cancellation,
                prune_finished,
                fairness,
                claims_are_bounded_filtered_and_disjoint,
                wait_for_work_returns,
                release_gives_the_job_back,
                list_filters_and_pages,
                stats_count_by_kind_and_status,
            );
        }

        /// Every case in turn on one queue, as they would share a database.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn all_cases_on_one_queue() {
            let Some(queue) = $make().await else {
                return;
            };
            $crate::queue_conformance::run_all(&*queue).await;
        }

        /// Fairness holds against a flood five times the suite's.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn fairness_against_a_flood_of_10000() {
            let Some(queue) = $make().await else {
                return;
            };
            $crate::queue_conformance::fairness_with(&*queue, 10_000).await;
        }
    };
    (@cases $make:ident; $($case:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            let Some(queue) = super::$make().await else {
                return;
            };
            $crate::queue_conformance::$case(&*queue).await;
        }
    )*};
}
