//! Projects and their members.

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use saas_core::projects::ProjectId;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, Auth};
use crate::models::fields::RequestBody;
use crate::models::{MemberIn, NewProjectIn, ProjectOut, ProjectPatchIn, ProjectStatisticsOut};
use crate::pagination::{PageParams, Paginated, Pagination};
use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/projects/", get(list).post(create))
        .route(
            "/api/projects/{id}/",
            get(retrieve).patch(update).put(update).delete(destroy),
        )
        .route("/api/projects/{id}/add_member/", post(add_member))
        .route("/api/projects/{id}/remove_member/", post(remove_member))
        .route("/api/projects/{id}/statistics/", get(statistics))
}

/// Projects visible to the user (admins: all; others: owned or member of), newest first.
#[utoipa::path(
    get, path = "/api/projects/", tag = "projects", params(PageParams),
    security(("bearer" = [])),
    responses((status = 200, description = "Projects", body = Paginated<ProjectOut>))
)]
pub(crate) async fn list(
    Auth(session): Auth,
    pages: Pagination,
) -> ApiResult<Json<Paginated<ProjectOut>>> {
    let page = session.list_projects(pages.request()).await?;
    Ok(Json(pages.respond(page, ProjectOut::from)?))
}

/// Creates a project owned by the user (admins and managers). Counts
/// against the plan's project limit.
#[utoipa::path(
    post, path = "/api/projects/", tag = "projects",
    security(("bearer" = [])),
    request_body = NewProjectIn,
    responses(
        (status = 201, description = "Project created", body = ProjectOut),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 403, description = "Role forbids, or plan limit reached (`plan_limit_exceeded`)", body = ErrorBody),
    )
)]
pub(crate) async fn create(
    Auth(session): Auth,
    ApiJson(body): ApiJson<NewProjectIn>,
) -> ApiResult<(StatusCode, Json<ProjectOut>)> {
    let p = session.create_project(body.into()).await?;
    Ok((StatusCode::CREATED, Json(ProjectOut::from(p))))
}

/// A visible project.
#[utoipa::path(
    get, path = "/api/projects/{id}/", tag = "projects",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id")),
    responses(
        (status = 200, description = "The project", body = ProjectOut),
        (status = 404, description = "No such project (or not visible)", body = ErrorBody),
    )
)]
pub(crate) async fn retrieve(
    Auth(session): Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ProjectOut>> {
    Ok(Json(ProjectOut::from(
        session.project(ProjectId(id)).await?,
    )))
}

/// Changes a project (`PUT` is accepted with the same partial semantics).
#[utoipa::path(
    method(patch, put), path = "/api/projects/{id}/", tag = "projects",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id")),
    request_body = ProjectPatchIn,
    responses(
        (status = 200, description = "The changed project", body = ProjectOut),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 403, description = "Role forbids", body = ErrorBody),
        (status = 404, description = "No such project", body = ErrorBody),
    )
)]
pub(crate) async fn update(
    Auth(session): Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ProjectPatchIn>,
) -> ApiResult<Json<ProjectOut>> {
    Ok(Json(ProjectOut::from(
        session.update_project(ProjectId(id), body.into()).await?,
    )))
}

/// Deletes a project with its tasks.
#[utoipa::path(
    delete, path = "/api/projects/{id}/", tag = "projects",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Role forbids", body = ErrorBody),
        (status = 404, description = "No such project", body = ErrorBody),
    )
)]
pub(crate) async fn destroy(
    Auth(session): Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    session.delete_project(ProjectId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Writes a membership endpoint: `POST <path>` with a [`MemberIn`] body,
/// calling the [`Session`](saas_core::Session) method of the handler's name
/// and answering the project. Adding and removing a member differ in
/// nothing else, and one definition keeps their contract the same.
macro_rules! membership_endpoint {
    ($(#[doc = $doc:literal])* $name:ident, $path:tt) => {
        $(#[doc = $doc])*
        #[utoipa::path(
            post, path = $path, tag = "projects",
            security(("bearer" = [])),
            params(("id" = i64, Path, description = "Project id")),
            request_body = MemberIn,
            responses(
                (status = 200, description = "The project", body = ProjectOut),
                (status = 400, description = "No such user", body = ErrorBody),
                (status = 403, description = "Role forbids", body = ErrorBody),
                (status = 404, description = "No such project", body = ErrorBody),
            )
        )]
        pub(crate) async fn $name(
            Auth(session): Auth,
            ApiPath(id): ApiPath<i64>,
            ApiJson(body): ApiJson<MemberIn>,
        ) -> ApiResult<Json<ProjectOut>> {
            let p = session
                .$name(ProjectId(id), body.user_id)
                .await
                .map_err(MemberIn::error)?;
            Ok(Json(ProjectOut::from(p)))
        }
    };
}

membership_endpoint!(
    /// Adds a member (idempotent).
    add_member,
    "/api/projects/{id}/add_member/"
);

membership_endpoint!(
    /// Removes a member (idempotent).
    remove_member,
    "/api/projects/{id}/remove_member/"
);

/// Task statistics of a visible project.
#[utoipa::path(
    get, path = "/api/projects/{id}/statistics/", tag = "projects",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id")),
    responses(
        (status = 200, description = "Statistics", body = ProjectStatisticsOut),
        (status = 404, description = "No such project", body = ErrorBody),
    )
)]
pub(crate) async fn statistics(
    Auth(session): Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ProjectStatisticsOut>> {
    Ok(Json(session.statistics(ProjectId(id)).await?.into()))
}
