//! Background jobs over HTTP (beyond the seed): request a project report,
//! then poll the job — the seed's Celery `AsyncResult` (`ready()`, `get()`).
//!
//! Served only when the state carries a [`saas_core::jobs::Jobs`]
//! ([`AppState::with_jobs`]); otherwise both endpoints answer 503
//! `jobs_unavailable` (after the tenant and the token have been checked, so
//! a server without jobs reveals nothing more than one with them).
//!
//! Who sees a job: jobs are looked up within the request's tenant only
//! (another tenant's job id is 404, like an absent one). Within the tenant,
//! admins see every job; other users see `generate_project_report` jobs of
//! projects they can currently see, and nothing else (404).

use std::str::FromStr;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use saas_core::jobs::builtin::{GenerateProjectReport, ReportPayload};
use saas_core::jobs::{Job, JobId, JobRecord, JobStatus, Jobs};
use saas_core::projects::ProjectId;
use saas_core::users::Role;
use saas_core::{Entity, Error, Session};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiPath, Auth};
use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/projects/{id}/report/", post(request_report))
        .route("/api/jobs/{id}/", get(retrieve))
}

/// The answer to a report request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct JobAccepted {
    /// The job's id; poll `GET /api/jobs/{job_id}/`.
    pub(crate) job_id: String,
    /// Always `queued`.
    pub(crate) status: String,
    /// Where to poll (also in the `Location` header).
    pub(crate) url: String,
}

/// A job as `GET /api/jobs/{id}/` shows it: the seed's `AsyncResult`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct JobOut {
    /// The job's id.
    pub(crate) id: String,
    /// What it does, e.g. `generate_project_report`.
    pub(crate) kind: String,
    /// `queued`, `scheduled`, `running`, `succeeded`, `retrying`, `dead` or `cancelled`.
    pub(crate) status: String,
    /// Finished (succeeded, dead or cancelled): the seed's `result.ready()`.
    pub(crate) ready: bool,
    /// Finished with a result: the seed's `result.successful()`.
    pub(crate) successful: bool,
    /// The job's output once it succeeded (the seed's `result.get()`), else null.
    #[schema(value_type = Option<Object>)]
    pub(crate) result: Option<serde_json::Value>,
    /// Why the latest attempt failed, while the job is not succeeded; else null.
    pub(crate) error: Option<String>,
    /// Attempts started so far.
    pub(crate) attempts: u32,
    /// Attempts it may have in all.
    pub(crate) max_attempts: u32,
    /// When it was requested.
    pub(crate) created_at: DateTime<Utc>,
    /// Last change.
    pub(crate) updated_at: DateTime<Utc>,
    /// Earliest time of the next run (for waiting jobs).
    pub(crate) run_at: DateTime<Utc>,
    /// Start of the latest attempt.
    pub(crate) started_at: Option<DateTime<Utc>>,
    /// When it succeeded, died or was cancelled.
    pub(crate) finished_at: Option<DateTime<Utc>>,
}

impl From<JobRecord> for JobOut {
    fn from(j: JobRecord) -> Self {
        let succeeded = j.status == JobStatus::Succeeded;
        JobOut {
            id: j.id.to_string(),
            ready: j.ready(),
            successful: succeeded,
            result: j.get().cloned(),
            // A success after retries keeps the earlier attempt's error in the
            // record; it would only confuse a client polling for the result.
            error: if succeeded { None } else { j.last_error },
            kind: j.kind,
            status: j.status.as_str().to_owned(),
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            created_at: j.created_at,
            updated_at: j.updated_at,
            run_at: j.run_at,
            started_at: j.started_at,
            finished_at: j.finished_at,
        }
    }
}

fn jobs(state: &AppState) -> ApiResult<&Jobs> {
    state.jobs().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "jobs_unavailable",
            "background jobs are not configured on this server",
        )
    })
}

/// Queues `generate_project_report` for a project (admins, and managers
/// involved in it; the plan must include reports). Answers 202 at once;
/// poll the job for the report. While a report of the project is pending,
/// or finished less than a minute ago, that job is answered (with its
/// status) instead of a new one; past the tenant's cap of pending jobs, 429.
#[utoipa::path(
    post, path = "/api/projects/{id}/report/", tag = "jobs",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id")),
    responses(
        (status = 202, description = "Report queued; poll the job", body = JobAccepted,
         headers(("Location" = String, description = "The job's URL"))),
        (status = 403, description = "Role forbids, or the plan has no reports (`plan_limit_exceeded`)", body = ErrorBody),
        (status = 404, description = "No such project (or not visible)", body = ErrorBody),
        (status = 429, description = "The tenant has too many jobs pending (`too_many_jobs`)", body = ErrorBody),
        (status = 503, description = "Background jobs are not configured (`jobs_unavailable`)", body = ErrorBody),
    )
)]
pub(crate) async fn request_report(
    State(state): State<AppState>,
    Auth(session): Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Response> {
    let jobs = jobs(&state)?;
    let enqueued = jobs.request_report(&session, ProjectId(id)).await?;
    let job = enqueued.id;
    // A report already asked for: tell where it is now.
    let status = if enqueued.created {
        JobStatus::Queued
    } else {
        jobs.job_for_tenant(session.tenant().id, job).await?.status
    };
    let url = format!("/api/jobs/{job}/");
    let mut response = (
        StatusCode::ACCEPTED,
        Json(JobAccepted {
            job_id: job.to_string(),
            status: status.as_str().to_owned(),
            url: url.clone(),
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&url) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// Whether the session may see this job of its tenant (see the module docs).
async fn visible(session: &Session, job: &JobRecord) -> Result<(), Error> {
    if session.me().role == Role::Admin {
        return Ok(());
    }
    if job.kind == GenerateProjectReport::KIND
        && let Ok(p) = serde_json::from_value::<ReportPayload>(job.payload.clone())
    {
        return session.project(p.project_id).await.map(|_| ());
    }
    Err(Error::not_found(Entity::Job))
}

/// A job of the request's tenant: status, and the result once it succeeded.
#[utoipa::path(
    get, path = "/api/jobs/{id}/", tag = "jobs",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Job id (a UUID)")),
    responses(
        (status = 200, description = "The job", body = JobOut),
        (status = 404, description = "No such job in this tenant (or not visible)", body = ErrorBody),
        (status = 503, description = "Background jobs are not configured (`jobs_unavailable`)", body = ErrorBody),
    )
)]
pub(crate) async fn retrieve(
    State(state): State<AppState>,
    Auth(session): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<JobOut>> {
    let jobs = jobs(&state)?;
    let id = JobId::from_str(&id)?;
    let job = jobs.job_for_tenant(session.tenant().id, id).await?;
    visible(&session, &job).await.map_err(|e| match e {
        // The project is gone or hidden: the job is as good as absent.
        Error::NotFound { .. } => Error::not_found(Entity::Job),
        other => other,
    })?;
    Ok(Json(JobOut::from(job)))
}
