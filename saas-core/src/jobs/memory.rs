//! [`MemoryQueue`]: the reference implementation of [`JobQueue`].
//!
//! Everything lives in one process behind a mutex, so it is neither durable
//! nor shared between processes; it serves tests, single-process demos and,
//! above all, as the executable statement of the queue semantics that the
//! backend queues must match.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::listing::{JobCount, JobFilter, sort_counts};
pub use super::queue::LEASE_EXPIRED_ON_FINAL_ATTEMPT;
use super::queue::{
    ClaimRequest, Enqueued, JobId, JobQueue, JobRecord, JobStatus, LeasedJob, NewJob, QueueError,
    QueueResult, validate_extra_attempts,
};
use crate::tenancy::TenantId;

#[derive(Debug, Default)]
struct State {
    jobs: HashMap<JobId, JobRecord>,
    /// (tenant group, key) → holder, for jobs that are not cancelled.
    keys: HashMap<(Option<TenantId>, String), JobId>,
}

/// An in-memory [`JobQueue`].
#[derive(Debug, Default)]
pub struct MemoryQueue {
    state: Mutex<State>,
    notify: tokio::sync::Notify,
}

impl MemoryQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every stored job, oldest first (for tests and inspection).
    pub fn snapshot(&self) -> Vec<JobRecord> {
        let mut v: Vec<JobRecord> = self.state().jobs.values().cloned().collect();
        v.sort_by_key(|j| j.id);
        v
    }

    /// Number of stored jobs.
    pub fn len(&self) -> usize {
        self.state().jobs.len()
    }

    /// Whether no job is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn fenced(st: &mut State, id: JobId, attempt: u32) -> QueueResult<&mut JobRecord> {
        let job = st.jobs.get_mut(&id).ok_or(QueueError::NotFound { id })?;
        if job.status != JobStatus::Running || job.attempts != attempt {
            return Err(QueueError::LeaseLost { id, attempt });
        }
        Ok(job)
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    async fn enqueue(&self, job: &NewJob, now: DateTime<Utc>) -> QueueResult<Enqueued> {
        let prepared = job.prepare(now)?;
        let mut st = self.state();
        if let Some(key) = &job.unique_key
            && let Some(holder) = st.keys.get(&(job.tenant, key.clone())).copied()
        {
            let finished_at = st.jobs.get(&holder).and_then(|j| j.finished_at);
            if !prepared.key_released_by(finished_at) {
                return Ok(Enqueued {
                    id: holder,
                    created: false,
                });
            }
            st.keys.remove(&(job.tenant, key.clone()));
            if let Some(old) = st.jobs.get_mut(&holder) {
                old.unique_key = None;
            }
        }
        if let Some(limit) = job.max_pending {
            let pending = st
                .jobs
                .values()
                .filter(|j| j.tenant == job.tenant && j.status.is_pending())
                .count();
            if pending >= limit as usize {
                return Err(QueueError::TooManyPending { limit });
            }
        }
        let id = prepared.id;
        let record = JobRecord {
            id,
            kind: job.kind.clone(),
            tenant: job.tenant,
            payload: job.payload.clone(),
            status: prepared.status,
            priority: job.priority,
            attempts: 0,
            max_attempts: job.max_attempts,
            run_at: prepared.run_at,
            unique_key: job.unique_key.clone(),
            worker: None,
            lease_until: None,
            result: None,
            last_error: None,
            created_at: now,
            updated_at: now,
            started_at: None,
            finished_at: None,
        };
        if let Some(key) = &job.unique_key {
            st.keys.insert((job.tenant, key.clone()), id);
        }
        st.jobs.insert(id, record);
        drop(st);
        self.notify.notify_waiters();
        Ok(Enqueued { id, created: true })
    }

    async fn claim(
        &self,
        request: &ClaimRequest,
        now: DateTime<Utc>,
    ) -> QueueResult<Vec<LeasedJob>> {
        let lease_until = request.lease_until(now)?;
        let mut st = self.state();
        let kind_ok = |k: &str| request.kinds.is_empty() || request.kinds.iter().any(|x| x == k);

        // Expired leases on the final attempt die instead of running again.
        for job in st.jobs.values_mut() {
            if job.status == JobStatus::Running
                && job.lease_until.is_some_and(|l| l <= now)
                && job.attempts >= job.max_attempts
                && kind_ok(&job.kind)
            {
                job.status = JobStatus::Dead;
                job.last_error = Some(LEASE_EXPIRED_ON_FINAL_ATTEMPT.into());
                job.lease_until = None;
                job.finished_at = Some(now);
                job.updated_at = now;
            }
        }

        // Group ready jobs by tenant, rank within each group, then interleave.
        let mut groups: BTreeMap<Option<TenantId>, Vec<(i32, DateTime<Utc>, JobId)>> =
            BTreeMap::new();
        for job in st.jobs.values() {
            let ready = (job.status.is_waiting() && job.run_at <= now)
                || (job.status == JobStatus::Running && job.lease_until.is_some_and(|l| l <= now));
            if ready && kind_ok(&job.kind) {
                groups
                    .entry(job.tenant)
                    .or_default()
                    .push((job.priority, job.run_at, job.id));
            }
        }
        let mut ranked: Vec<(usize, i32, DateTime<Utc>, JobId)> = Vec::new();
        for jobs in groups.values_mut() {
            jobs.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            ranked.extend(
                jobs.iter()
                    .take(request.limit as usize)
                    .enumerate()
                    .map(|(rank, (p, r, id))| (rank, *p, *r, *id)),
            );
        }
        ranked.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then(b.1.cmp(&a.1))
                .then(a.2.cmp(&b.2))
                .then(a.3.cmp(&b.3))
        });

        let mut out = Vec::new();
        for (_, _, _, id) in ranked.into_iter().take(request.limit as usize) {
            let Some(job) = st.jobs.get_mut(&id) else {
                continue;
            };
            job.status = JobStatus::Running;
            job.attempts += 1;
            job.lease_until = Some(lease_until);
            job.worker = Some(request.worker.clone());
            job.started_at = Some(now);
            job.updated_at = now;
            out.push(LeasedJob {
                id,
                kind: job.kind.clone(),
                payload: job.payload.clone(),
                tenant: job.tenant,
                priority: job.priority,
                attempt: job.attempts,
                max_attempts: job.max_attempts,
                lease_until,
                created_at: job.created_at,
            });
        }
        Ok(out)
    }

    async fn heartbeat(
        &self,
        id: JobId,
        attempt: u32,
        lease_until: DateTime<Utc>,
    ) -> QueueResult<()> {
        let mut st = self.state();
        let job = Self::fenced(&mut st, id, attempt)?;
        job.lease_until = Some(lease_until);
        Ok(())
    }

    async fn complete(
        &self,
        id: JobId,
        attempt: u32,
        result: &Value,
        now: DateTime<Utc>,
    ) -> QueueResult<()> {
        let mut st = self.state();
        let job = Self::fenced(&mut st, id, attempt)?;
        job.status = JobStatus::Succeeded;
        job.result = Some(result.clone());
        job.lease_until = None;
        job.finished_at = Some(now);
        job.updated_at = now;
        Ok(())
    }

    async fn fail(
        &self,
        id: JobId,
        attempt: u32,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> QueueResult<()> {
        let mut st = self.state();
        let job = Self::fenced(&mut st, id, attempt)?;
        job.last_error = Some(error.to_owned());
        job.lease_until = None;
        job.updated_at = now;
        match retry_at {
            Some(at) if job.attempts < job.max_attempts => {
                job.status = JobStatus::Retrying;
                job.run_at = at;
            }
            _ => {
                job.status = JobStatus::Dead;
                job.finished_at = Some(now);
            }
        }
        drop(st);
        self.notify.notify_waiters();
        Ok(())
    }

    async fn job(&self, id: JobId) -> QueueResult<Option<JobRecord>> {
        Ok(self.state().jobs.get(&id).cloned())
    }

    async fn cancel(&self, id: JobId, now: DateTime<Utc>) -> QueueResult<JobRecord> {
        let mut st = self.state();
        let job = st.jobs.get_mut(&id).ok_or(QueueError::NotFound { id })?;
        if !job.status.is_waiting() {
            return Err(QueueError::InvalidState {
                id,
                status: job.status,
                action: "cancel",
            });
        }
        job.status = JobStatus::Cancelled;
        job.finished_at = Some(now);
        job.updated_at = now;
        let record = job.clone();
        if let Some(key) = &record.unique_key {
            st.keys.remove(&(record.tenant, key.clone()));
        }
        Ok(record)
    }

    async fn retry(
        &self,
        id: JobId,
        extra_attempts: u32,
        run_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> QueueResult<JobRecord> {
        validate_extra_attempts(extra_attempts)?;
        let record = {
            let mut st = self.state();
            let job = st.jobs.get_mut(&id).ok_or(QueueError::NotFound { id })?;
            if job.status != JobStatus::Dead {
                return Err(QueueError::InvalidState {
                    id,
                    status: job.status,
                    action: "retry",
                });
            }
            job.max_attempts = job.attempts.saturating_add(extra_attempts);
            job.run_at = run_at;
            job.status = JobStatus::to_run_at(run_at, now);
            job.finished_at = None;
            job.result = None;
            job.updated_at = now;
            job.clone()
        };
        self.notify.notify_waiters();
        Ok(record)
    }

    async fn prune(&self, before: DateTime<Utc>) -> QueueResult<u64> {
        let mut st = self.state();
        let doomed: Vec<JobId> = st
            .jobs
            .values()
            .filter(|j| j.status.is_finished() && j.finished_at.is_some_and(|f| f < before))
            .map(|j| j.id)
            .collect();
        for id in &doomed {
            if let Some(job) = st.jobs.remove(id)
                && let Some(key) = job.unique_key
            {
                let k = (job.tenant, key);
                if st.keys.get(&k) == Some(id) {
                    st.keys.remove(&k);
                }
            }
        }
        Ok(doomed.len() as u64)
    }

    async fn release(&self, id: JobId, attempt: u32, now: DateTime<Utc>) -> QueueResult<()> {
        {
            let mut st = self.state();
            let job = Self::fenced(&mut st, id, attempt)?;
            job.status = JobStatus::Queued;
            job.run_at = now;
            job.lease_until = None;
            job.max_attempts = job.max_attempts.saturating_add(1);
            job.updated_at = now;
        }
        self.notify.notify_waiters();
        Ok(())
    }

    async fn list(&self, filter: &JobFilter) -> QueueResult<Vec<JobRecord>> {
        filter.validate()?;
        let st = self.state();
        let mut found: Vec<&JobRecord> = st
            .jobs
            .values()
            .filter(|j| {
                filter.status.is_none_or(|s| j.status == s)
                    && filter.kind.as_ref().is_none_or(|k| &j.kind == k)
                    && filter.tenant.is_none_or(|t| j.tenant == Some(t))
                    && filter.before.is_none_or(|b| j.id < b)
            })
            .collect();
        found.sort_by_key(|j| std::cmp::Reverse(j.id));
        Ok(found
            .into_iter()
            .take(filter.limit as usize)
            .cloned()
            .collect())
    }

    async fn stats(&self) -> QueueResult<Vec<JobCount>> {
        let mut groups: HashMap<(String, JobStatus), u64> = HashMap::new();
        for job in self.state().jobs.values() {
            *groups.entry((job.kind.clone(), job.status)).or_default() += 1;
        }
        let mut counts: Vec<JobCount> = groups
            .into_iter()
            .map(|((kind, status), count)| JobCount {
                kind,
                status,
                count,
            })
            .collect();
        sort_counts(&mut counts);
        Ok(counts)
    }

    async fn wait_for_work(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.notify.notified()).await;
    }
}
