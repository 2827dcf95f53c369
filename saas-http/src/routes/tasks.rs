//! Tasks, with the seed's filters.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use saas_core::projects::{Priority, ProjectId, TaskId, TaskOrdering, TaskStatus};
use saas_core::session::{Assignee, TaskFilter};
use saas_core::users::UserId;
use utoipa::IntoParams;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, Auth, QueryPairs};
use crate::models::{NewTaskIn, TaskOut, TaskPatchIn, rules};
use crate::pagination::{PageParams, Paginated, Pagination};
use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/tasks/", get(list).post(create))
        .route("/api/tasks/my_tasks/", get(my_tasks))
        .route(
            "/api/tasks/{id}/",
            get(retrieve).patch(update).put(update).delete(destroy),
        )
        .route("/api/tasks/{id}/mark_complete/", post(mark_complete))
}

/// Filters of `GET /api/tasks/`. Empty values are ignored, as django-filter does.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct TaskParams {
    /// Only this project's tasks.
    #[param(schema_with = rules::project_filter)]
    project: Option<String>,
    /// `todo`, `in_progress`, `review` or `done`.
    #[param(schema_with = rules::task_status_filter)]
    status: Option<String>,
    /// `low`, `medium`, `high` or `urgent`.
    #[param(schema_with = rules::priority_filter)]
    priority: Option<String>,
    /// A user id, or `me`.
    #[param(schema_with = rules::assignee_filter)]
    assigned_to: Option<String>,
    /// `created_at`, `updated_at`, `due_date`, `started_at`, `priority`,
    /// `status`, `title` or `id`; `-` in front for descending. Default `-created_at`.
    #[param(schema_with = rules::task_ordering)]
    ordering: Option<String>,
    /// Case-insensitive substring of the title or description.
    #[param(schema_with = rules::search)]
    search: Option<String>,
}

fn non_empty<'a>(q: &'a QueryPairs, name: &str) -> Option<&'a str> {
    q.get(name).map(str::trim).filter(|v| !v.is_empty())
}

pub(crate) fn filter_from(q: &QueryPairs) -> Result<TaskFilter, ApiError> {
    let mut f = TaskFilter::default();
    if let Some(p) = non_empty(q, "project") {
        f.project = Some(ProjectId(p.parse().map_err(|_| {
            ApiError::invalid_field("project", "must be a project id")
        })?));
    }
    if let Some(s) = non_empty(q, "status") {
        f.status = Some(s.parse::<TaskStatus>()?);
    }
    if let Some(p) = non_empty(q, "priority") {
        f.priority = Some(p.parse::<Priority>()?);
    }
    if let Some(a) = non_empty(q, "assigned_to") {
        f.assigned_to = Some(if a == "me" {
            Assignee::Me
        } else {
            Assignee::User(UserId(a.parse().map_err(|_| {
                ApiError::invalid_field("assigned_to", "must be a user id or `me`")
            })?))
        });
    }
    if let Some(o) = non_empty(q, "ordering") {
        // DRF accepts a comma-separated list; ties are always broken by id,
        // so the first field decides.
        let first = o.split(',').next().unwrap_or(o).trim();
        f.ordering = Some(first.parse::<TaskOrdering>()?);
    }
    if let Some(s) = q.get("search").filter(|s| !s.trim().is_empty()) {
        f.search = Some(s.to_owned());
    }
    Ok(f)
}

/// Tasks in projects visible to the user, filtered and ordered.
#[utoipa::path(
    get, path = "/api/tasks/", tag = "tasks", params(TaskParams, PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Tasks", body = Paginated<TaskOut>),
        (status = 400, description = "Invalid filter", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Auth(session): Auth,
    query: QueryPairs,
    pages: Pagination,
) -> ApiResult<Json<Paginated<TaskOut>>> {
    let filter = filter_from(&query)?;
    let page = session.list_tasks(&filter, pages.request()).await?;
    let now = state.saas().now();
    Ok(Json(pages.respond(page, |t| TaskOut::new(t, now))?))
}

/// Tasks assigned to the user, by due date.
#[utoipa::path(
    get, path = "/api/tasks/my_tasks/", tag = "tasks", params(PageParams),
    security(("bearer" = [])),
    responses((status = 200, description = "Tasks", body = Paginated<TaskOut>))
)]
pub(crate) async fn my_tasks(
    State(state): State<AppState>,
    Auth(session): Auth,
    pages: Pagination,
) -> ApiResult<Json<Paginated<TaskOut>>> {
    let page = session.my_tasks(pages.request()).await?;
    let now = state.saas().now();
    Ok(Json(pages.respond(page, |t| TaskOut::new(t, now))?))
}

/// Creates a task in a project the user works on. Counts against the plan's
/// tasks-per-project limit.
#[utoipa::path(
    post, path = "/api/tasks/", tag = "tasks",
    security(("bearer" = [])),
    request_body = NewTaskIn,
    responses(
        (status = 201, description = "Task created", body = TaskOut),
        (status = 400, description = "Invalid input (including an unknown project or assignee)", body = ErrorBody),
        (status = 403, description = "Role forbids, or plan limit reached (`plan_limit_exceeded`)", body = ErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    Auth(session): Auth,
    ApiJson(body): ApiJson<NewTaskIn>,
) -> ApiResult<(StatusCode, Json<TaskOut>)> {
    let t = session.create_task(body.into()).await?;
    Ok((
        StatusCode::CREATED,
        Json(TaskOut::new(t, state.saas().now())),
    ))
}

/// A task in a visible project.
#[utoipa::path(
    get, path = "/api/tasks/{id}/", tag = "tasks",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Task id")),
    responses(
        (status = 200, description = "The task", body = TaskOut),
        (status = 404, description = "No such task (or not visible)", body = ErrorBody),
    )
)]
pub(crate) async fn retrieve(
    State(state): State<AppState>,
    Auth(session): Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<TaskOut>> {
    let t = session.task(TaskId(id)).await?;
    Ok(Json(TaskOut::new(t, state.saas().now())))
}

/// Changes a task (`PUT` is accepted with the same partial semantics).
#[utoipa::path(
    method(patch, put), path = "/api/tasks/{id}/", tag = "tasks",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Task id")),
    request_body = TaskPatchIn,
    responses(
        (status = 200, description = "The changed task", body = TaskOut),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 403, description = "Role forbids", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
    )
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    Auth(session): Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<TaskPatchIn>,
) -> ApiResult<Json<TaskOut>> {
    let t = session.update_task(TaskId(id), body.into()).await?;
    Ok(Json(TaskOut::new(t, state.saas().now())))
}

/// Deletes a task.
#[utoipa::path(
    delete, path = "/api/tasks/{id}/", tag = "tasks",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Task id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Role forbids", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
    )
)]
pub(crate) async fn destroy(
    Auth(session): Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    session.delete_task(TaskId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Marks a task done (idempotent).
#[utoipa::path(
    post, path = "/api/tasks/{id}/mark_complete/", tag = "tasks",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Task id")),
    responses(
        (status = 200, description = "The task, done", body = TaskOut),
        (status = 403, description = "Role forbids", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
    )
)]
pub(crate) async fn mark_complete(
    State(state): State<AppState>,
    Auth(session): Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<TaskOut>> {
    let t = session.mark_complete(TaskId(id)).await?;
    Ok(Json(TaskOut::new(t, state.saas().now())))
}
