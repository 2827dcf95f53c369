//! The platform's jobs page (the seed's Flower): counts by kind and state,
//! the last hour's throughput as a server-drawn chart, the failing and dead
//! jobs with their errors (retry, cancel), the waiting ones, and the
//! periodic schedule with each entry's next run. Actions are
//! [`Operator`](saas_core::operator::Operator) job methods.

use std::collections::{BTreeMap, HashMap};

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use chrono::Duration;
use maud::html;
use saas_core::jobs::{JobFilter, JobId, JobRecord, JobStatus, Jobs};

use super::html::{Area, bar_chart, button, page};
use super::{AtPlatform, after, failure, no_such_page};
use crate::sessions::ConsoleSession;
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/jobs", get(jobs_page))
        .route("/console/jobs/{id}/retry", post(retry))
        .route("/console/jobs/{id}/cancel", post(cancel))
}

/// Minutes per bar of the throughput chart (twelve bars: one hour).
const BUCKET_MINUTES: i64 = 5;

fn jobs_table(cs: &ConsoleSession, id: &str, jobs: &[JobRecord]) -> maud::Markup {
    html! {
        table id=(id) {
            thead { tr { th { "Job" } th { "Kind" } th { "Tenant" } th { "Status" } th { "Attempts" } th { "Run at" } th { "Last error" } th {} } }
            tbody { @for j in jobs {
                tr id={ "job-" (j.id.0) } {
                    td { code { (j.id.0.to_string()[..8]) "…" } }
                    td { (j.kind) }
                    td { (j.tenant.map(|t| t.0.to_string()[..8].to_owned()).unwrap_or_default()) }
                    td { span.badge.(j.status.as_str()) { (j.status.as_str()) } }
                    td { (j.attempts) " / " (j.max_attempts) }
                    td { (j.run_at.format("%Y-%m-%d %H:%M:%S")) }
                    td { pre { (j.last_error.as_deref().unwrap_or("")) } }
                    td {
                        @if j.status == JobStatus::Dead {
                            (button(cs, &format!("/console/jobs/{}/retry", j.id.0), "Retry", &format!("retry-{}", j.id.0)))
                        }
                        @if matches!(j.status, JobStatus::Queued | JobStatus::Scheduled | JobStatus::Retrying) {
                            (button(cs, &format!("/console/jobs/{}/cancel", j.id.0), "Cancel", &format!("cancel-{}", j.id.0)))
                        }
                    }
                }
            } }
        }
    }
}

async fn jobs_page(State(state): State<AppState>, AtPlatform { op, cs }: AtPlatform) -> Response {
    let Some(jobs) = state.jobs() else {
        let body = html! { p { "This server runs no job queue." } };
        return page(Area::Platform, "Jobs", Some(&cs), body);
    };
    let listed = async {
        let counts = op.job_stats(jobs).await?;
        let dead = in_status(&op, jobs, JobStatus::Dead).await?;
        let retrying = in_status(&op, jobs, JobStatus::Retrying).await?;
        let mut waiting = in_status(&op, jobs, JobStatus::Queued).await?;
        waiting.extend(in_status(&op, jobs, JobStatus::Scheduled).await?);
        let done = op
            .list_jobs(
                jobs,
                &JobFilter::new().status(JobStatus::Succeeded).limit(1000),
            )
            .await?;
        Ok::<_, saas_core::Error>((counts, dead, retrying, waiting, done))
    }
    .await;
    let (counts, dead, retrying, waiting, done) = match listed {
        Ok(x) => x,
        Err(e) => return failure(e),
    };
    let throughput = last_hour(jobs, &done);
    let mut by_kind: BTreeMap<&str, HashMap<JobStatus, u64>> = BTreeMap::new();
    for c in &counts {
        *by_kind
            .entry(c.kind.as_str())
            .or_default()
            .entry(c.status)
            .or_default() += c.count;
    }
    let now = jobs.now();
    let body = html! {
        h2 { "By kind and state" }
        table #job-counts {
            thead { tr { th { "Kind" } @for s in JobStatus::ALL { th { (s.as_str()) } } } }
            tbody { @for (kind, row) in &by_kind {
                tr { td { (kind) } @for s in JobStatus::ALL { td { (row.get(s).copied().unwrap_or(0)) } } }
            } }
        }
        h2 { "Finished in the last hour" }
        (bar_chart("throughput", &throughput))
        h2 { "Dead" }
        (jobs_table(&cs, "dead-jobs", &dead))
        h2 { "Failing (retrying)" }
        (jobs_table(&cs, "retrying-jobs", &retrying))
        h2 { "Waiting" }
        (jobs_table(&cs, "waiting-jobs", &waiting))
        h2 { "Schedule" }
        table #schedule {
            thead { tr { th { "Entry" } th { "Next run (UTC)" } } }
            tbody { @for p in state.schedule() {
                tr { td { (p.name()) } td { (p.next_after(now).map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default()) } }
            } }
        }
    };
    page(Area::Platform, "Jobs", Some(&cs), body)
}

/// The newest fifty jobs in `status`.
async fn in_status(
    op: &saas_core::operator::Operator,
    jobs: &Jobs,
    status: JobStatus,
) -> saas_core::Result<Vec<JobRecord>> {
    op.list_jobs(jobs, &JobFilter::new().status(status).limit(50))
        .await
}

/// Successes of the last hour, in twelve five-minute bars, oldest first
/// (from the newest thousand successes).
fn last_hour(jobs: &Jobs, done: &[JobRecord]) -> Vec<(String, u64)> {
    let now = jobs.now();
    let buckets = 60 / BUCKET_MINUTES;
    let mut counts = vec![0u64; usize::try_from(buckets).unwrap_or(12)];
    for j in done {
        let Some(at) = j.finished_at else { continue };
        let age = (now - at).num_minutes();
        if (0..60).contains(&age) {
            let slot = buckets - 1 - age / BUCKET_MINUTES;
            if let Some(c) = usize::try_from(slot).ok().and_then(|i| counts.get_mut(i)) {
                *c += 1;
            }
        }
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(i, n)| {
            let back = (buckets - i64::try_from(i).unwrap_or(0)) * BUCKET_MINUTES;
            let label = (now - Duration::minutes(back)).format("%H:%M").to_string();
            (label, n)
        })
        .collect()
}

async fn retry(State(state): State<AppState>, at: AtPlatform, Path(id): Path<String>) -> Response {
    act(state, at, id, true).await
}

async fn cancel(State(state): State<AppState>, at: AtPlatform, Path(id): Path<String>) -> Response {
    act(state, at, id, false).await
}

async fn act(
    state: AppState,
    AtPlatform { op, cs }: AtPlatform,
    id: String,
    retry: bool,
) -> Response {
    let Some(jobs) = state.jobs() else {
        return no_such_page();
    };
    let r = async {
        let id = id.parse::<JobId>()?;
        if retry {
            op.retry_job(jobs, id, 1).await
        } else {
            op.cancel_job(jobs, id).await
        }
    }
    .await;
    let done = if retry {
        "Job queued again."
    } else {
        "Job cancelled."
    };
    after(&state, &cs, "/console/jobs", r, done)
}
