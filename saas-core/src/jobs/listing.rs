//! What operators ask a queue about its jobs: a filtered listing
//! ([`JobFilter`] for [`super::JobQueue::list`]) and the counts by kind and
//! status ([`JobCount`], from [`super::JobQueue::stats`]).

use serde::Serialize;

use super::values::{JobId, JobStatus, QueueError, QueueResult, validate_kind};
use crate::tenancy::TenantId;

/// Which jobs [`super::JobQueue::list`] returns, newest first (by id: ids
/// are UUIDv7, so that is enqueue order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFilter {
    /// Only jobs in this status.
    pub status: Option<JobStatus>,
    /// Only jobs of this kind.
    pub kind: Option<String>,
    /// Only jobs of this tenant.
    pub tenant: Option<TenantId>,
    /// Only jobs enqueued before this one: the last id of the previous
    /// page, for the next (keyset pagination).
    pub before: Option<JobId>,
    /// Most jobs returned, 1 to [`JobFilter::MAX_LIMIT`].
    pub limit: u32,
}

impl JobFilter {
    /// Jobs listed when no limit is asked for.
    pub const DEFAULT_LIMIT: u32 = 50;
    /// Most jobs one listing returns.
    pub const MAX_LIMIT: u32 = 1_000;

    /// Every job, newest first, [`JobFilter::DEFAULT_LIMIT`] of them.
    pub fn new() -> Self {
        JobFilter {
            status: None,
            kind: None,
            tenant: None,
            before: None,
            limit: Self::DEFAULT_LIMIT,
        }
    }

    /// Only jobs in `status`.
    pub fn status(mut self, status: JobStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only jobs of `kind`.
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// Only jobs of `tenant`.
    pub fn tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = Some(tenant);
        self
    }

    /// Only jobs enqueued before `id`.
    pub fn before(mut self, id: JobId) -> Self {
        self.before = Some(id);
        self
    }

    /// At most `limit` jobs.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    /// Checks the limit and the kind; queues call this before reading.
    pub fn validate(&self) -> QueueResult<()> {
        if !(1..=Self::MAX_LIMIT).contains(&self.limit) {
            return Err(QueueError::Invalid {
                field: "limit",
                message: format!("must be between 1 and {}", Self::MAX_LIMIT),
            });
        }
        if let Some(kind) = &self.kind {
            validate_kind(kind)?;
        }
        Ok(())
    }
}

impl Default for JobFilter {
    fn default() -> Self {
        Self::new()
    }
}

/// How many stored jobs of one kind are in one status.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct JobCount {
    /// The kind.
    pub kind: String,
    /// The status.
    pub status: JobStatus,
    /// How many (never 0: empty groups are left out).
    pub count: u64,
}

/// Puts counts in the order [`super::JobQueue::stats`] returns them: by
/// kind, then by status in [`JobStatus::ALL`] order.
pub fn sort_counts(counts: &mut [JobCount]) {
    let rank = |s: JobStatus| JobStatus::ALL.iter().position(|x| *x == s);
    counts.sort_by(|a, b| {
        a.kind
            .cmp(&b.kind)
            .then(rank(a.status).cmp(&rank(b.status)))
    });
}
