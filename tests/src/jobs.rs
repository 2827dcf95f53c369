//! Values for job-queue tests and benchmarks: fresh job kinds, claim
//! requests, completing what a claim got, rates.
//!
//! Claims filter by kind, so a test that enqueues jobs of a kind of its own
//! sees only its own jobs, even on a queue other tests share.

use std::time::Duration;

use saas_core::jobs::{ClaimRequest, JobQueue, LeasedJob};
use serde_json::Value;

use crate::records::now;

/// The lease of a [`request`]: long enough that no test's job expires
/// while the test still looks at it.
pub const LEASE: Duration = Duration::from_secs(60);

/// A fresh job kind: `prefix`, `_` and 12 random hex digits.
pub fn fresh_kind(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A claim by `worker` of up to `limit` jobs of `kind`, leased for
/// [`LEASE`].
pub fn request(worker: &str, kind: &str, limit: u32) -> ClaimRequest {
    ClaimRequest {
        worker: worker.to_owned(),
        lease: LEASE,
        limit,
        kinds: vec![kind.to_owned()],
    }
}

/// Completes every job of `claimed` (with a `null` result), as its lease
/// holder: all in one `complete_many` when `many`, else one `complete`
/// each. Panics if any completion is refused.
pub async fn complete_claimed(queue: &dyn JobQueue, claimed: &[LeasedJob], many: bool) {
    if many {
        let results: Vec<_> = claimed
            .iter()
            .map(|j| (j.id, j.attempt, Value::Null))
            .collect();
        for r in queue
            .complete_many(&results, now())
            .await
            .expect("complete_many")
        {
            r.expect("completed");
        }
    } else {
        for j in claimed {
            queue
                .complete(j.id, j.attempt, &Value::Null, now())
                .await
                .expect("complete");
        }
    }
}

/// `n` things in `elapsed`, per second.
pub fn per_second(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}
