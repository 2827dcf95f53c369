//! Conformance cases for what operators and shutting-down workers do to a
//! queue: [`JobQueue::release`], [`JobQueue::list`] and [`JobQueue::stats`].

use chrono::{DateTime, Utc};
use saas_core::jobs::queue::{JobId, JobQueue, JobStatus, NewJob, QueueError};
use saas_core::jobs::{JobCount, JobFilter};
use serde_json::json;

use super::{at, claim, enqueue, fresh_kind, fresh_tenant, get};
use crate::records::now;

/// Release gives a running job back at once: queued, runnable now, lease
/// cleared, the attempt not counted; fenced like a completion.
pub async fn release_gives_the_job_back(q: &dyn JobQueue) {
    let kind = fresh_kind("release");
    let t0 = now();
    let id = enqueue(q, NewJob::new(&kind, json!({})).max_attempts(1), t0).await;
    let leased = claim(q, "w1", &kind, 1, t0).await;
    assert_eq!(leased.len(), 1);
    assert_eq!(leased[0].attempt, 1);

    q.release(id, 1, at(t0, 2)).await.expect("release");
    let r = get(q, id).await;
    assert_eq!(r.status, JobStatus::Queued);
    assert_eq!(r.run_at, at(t0, 2), "runnable from the release on");
    assert_eq!(r.lease_until, None, "lease cleared");
    assert_eq!(r.attempts, 1, "attempts never decrease");
    assert_eq!(r.max_attempts, 2, "the released attempt does not count");
    assert_eq!(r.updated_at, at(t0, 2));
    assert_eq!(r.finished_at, None);

    // Runnable at once, long before the 30 s lease would have run out.
    let again = claim(q, "w2", &kind, 1, at(t0, 3)).await;
    assert_eq!(
        again.len(),
        1,
        "claimed again without waiting for the lease"
    );
    assert_eq!(again[0].attempt, 2, "a new attempt number");

    // The stale holder is fenced off everywhere, the release included.
    let before = get(q, id).await;
    assert!(matches!(
        q.release(id, 1, at(t0, 4)).await,
        Err(QueueError::LeaseLost { attempt: 1, .. })
    ));
    assert!(matches!(
        q.complete(id, 1, &json!(1), at(t0, 4)).await,
        Err(QueueError::LeaseLost { .. })
    ));
    assert_eq!(get(q, id).await, before, "refused releases change nothing");

    q.complete(id, 2, &json!("ok"), at(t0, 5))
        .await
        .expect("the new holder completes");
    assert!(matches!(
        q.release(id, 2, at(t0, 6)).await,
        Err(QueueError::LeaseLost { .. })
    ));
    assert_eq!(get(q, id).await.status, JobStatus::Succeeded);
    assert!(matches!(
        q.release(JobId::new(), 1, t0).await,
        Err(QueueError::NotFound { .. })
    ));
}

/// The listing: newest first, each filter alone and together, keyset
/// pages, bad filters refused.
pub async fn list_filters_and_pages(q: &dyn JobQueue) {
    let kind = fresh_kind("list");
    let other = fresh_kind("list_other");
    let tenant = fresh_tenant();
    let t0 = now();
    let mut ids = Vec::new();
    for i in 0..5 {
        let job = NewJob::new(&kind, json!(i));
        let job = if i % 2 == 0 { job.tenant(tenant) } else { job };
        ids.push(enqueue(q, job, t0).await);
    }
    let elsewhere = enqueue(q, NewJob::new(&other, json!(0)).tenant(tenant), t0).await;
    // Two of them dead, one running.
    assert_eq!(claim(q, "w", &kind, 3, t0).await.len(), 3);
    for &id in &ids[..2] {
        q.fail(id, 1, "boom", None, t0).await.expect("fail");
    }

    let listed = |f: JobFilter| async move {
        q.list(&f)
            .await
            .expect("list")
            .into_iter()
            .map(|j| j.id)
            .collect::<Vec<JobId>>()
    };
    let newest_first: Vec<JobId> = ids.iter().rev().copied().collect();
    assert_eq!(listed(JobFilter::new().kind(&kind)).await, newest_first);
    let full = q
        .list(&JobFilter::new().kind(&kind).limit(1))
        .await
        .expect("list");
    assert_eq!(full[0], get(q, ids[4]).await, "whole records");

    assert_eq!(
        listed(JobFilter::new().kind(&kind).status(JobStatus::Dead)).await,
        vec![ids[1], ids[0]]
    );
    assert_eq!(
        listed(JobFilter::new().kind(&kind).status(JobStatus::Running)).await,
        vec![ids[2]]
    );
    assert_eq!(
        listed(JobFilter::new().tenant(tenant)).await,
        vec![elsewhere, ids[4], ids[2], ids[0]],
        "a tenant's jobs of every kind"
    );
    assert_eq!(
        listed(
            JobFilter::new()
                .tenant(tenant)
                .kind(&kind)
                .status(JobStatus::Dead)
        )
        .await,
        vec![ids[0]]
    );
    assert!(
        listed(JobFilter::new().tenant(fresh_tenant()))
            .await
            .is_empty(),
        "an unknown tenant has no jobs"
    );

    // Keyset pages of two: every job once, in order.
    let mut paged = Vec::new();
    let mut filter = JobFilter::new().kind(&kind).limit(2);
    loop {
        let page = listed(filter.clone()).await;
        assert!(page.len() <= 2);
        let Some(&last) = page.last() else { break };
        paged.extend(page);
        filter = filter.before(last);
    }
    assert_eq!(paged, newest_first);

    for bad in [
        JobFilter::new().limit(0),
        JobFilter::new().limit(JobFilter::MAX_LIMIT + 1),
        JobFilter::new().kind("Not A Kind!"),
    ] {
        assert!(
            matches!(q.list(&bad).await, Err(QueueError::Invalid { .. })),
            "{bad:?} is refused"
        );
    }
}

/// The counts by kind and status, for a queue other tests share: exactly
/// the counts of this case's kinds, in kind then status order.
pub async fn stats_count_by_kind_and_status(q: &dyn JobQueue) {
    let a = fresh_kind("stats_a");
    let b = fresh_kind("stats_b");
    let t0: DateTime<Utc> = now();
    for _ in 0..4 {
        enqueue(q, NewJob::new(&a, json!({})), t0).await;
    }
    let leased = claim(q, "w", &a, 1, t0).await;
    assert_eq!(leased.len(), 1);
    q.fail(leased[0].id, 1, "x", None, t0).await.expect("fail");
    enqueue(q, NewJob::new(&b, json!({})).run_at(at(t0, 60)), t0).await;

    let mine: Vec<JobCount> = q
        .stats()
        .await
        .expect("stats")
        .into_iter()
        .filter(|c| c.kind == a || c.kind == b)
        .collect();
    let count = |kind: &str, status, count| JobCount {
        kind: kind.to_owned(),
        status,
        count,
    };
    let mut expected = vec![
        count(&a, JobStatus::Queued, 3),
        count(&a, JobStatus::Dead, 1),
        count(&b, JobStatus::Scheduled, 1),
    ];
    saas_core::jobs::listing::sort_counts(&mut expected);
    assert_eq!(mine, expected);
}
