//! What a platform operator does with the job queue (the seed's `celery
//! inspect` and Flower): list and inspect jobs, count them, re-run dead
//! ones, cancel waiting ones. The API and the CLI both go through these.

use super::Operator;
use crate::error::Result;
use crate::jobs::{JobCount, JobFilter, JobId, JobRecord, Jobs};

impl Operator {
    /// Jobs `filter` selects, newest first.
    pub async fn list_jobs(&self, jobs: &Jobs, filter: &JobFilter) -> Result<Vec<JobRecord>> {
        Ok(jobs.queue().list(filter).await?)
    }

    /// One job, whatever its tenant or status; `NotFound` when absent.
    pub async fn job(&self, jobs: &Jobs, id: JobId) -> Result<JobRecord> {
        jobs.job(id).await
    }

    /// How many jobs each kind has in each status.
    pub async fn job_stats(&self, jobs: &Jobs) -> Result<Vec<JobCount>> {
        Ok(jobs.queue().stats().await?)
    }

    /// Runs a dead job again now, with `extra_attempts` more attempts
    /// (1 to 1,000); other statuses are refused with `Error::State`.
    pub async fn retry_job(
        &self,
        jobs: &Jobs,
        id: JobId,
        extra_attempts: u32,
    ) -> Result<JobRecord> {
        let job = jobs.retry(id, extra_attempts).await?;
        self.record_job("job.retry", &job).await?;
        Ok(job)
    }

    /// Cancels a waiting (queued, scheduled or retrying) job; running and
    /// finished jobs are refused with `Error::State`.
    pub async fn cancel_job(&self, jobs: &Jobs, id: JobId) -> Result<JobRecord> {
        let job = jobs.cancel(id).await?;
        self.record_job("job.cancel", &job).await?;
        Ok(job)
    }

    async fn record_job(&self, action: &str, job: &JobRecord) -> Result<()> {
        let target = format!("job {}", job.id.0);
        self.record(job.tenant, action, &target, &job.kind).await
    }
}
