//! Users of the request's tenant.

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use saas_core::users::UserId;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, Auth};
use crate::models::{ChangePasswordIn, NewUserIn, UserOut, UserPatchIn};
use crate::pagination::{PageParams, Paginated, Pagination};
use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/users/", get(list))
        .route("/api/users/me/", get(me))
        .route("/api/users/register/", post(register))
        .route("/api/users/change_password/", post(change_password))
        .route("/api/users/{id}/", get(retrieve).patch(update))
}

/// The tenant's users, by id.
#[utoipa::path(
    get, path = "/api/users/", tag = "users", params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Users", body = Paginated<UserOut>),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    Auth(session): Auth,
    pages: Pagination,
) -> ApiResult<Json<Paginated<UserOut>>> {
    let page = session.list_users(pages.request()).await?;
    Ok(Json(pages.respond(page, UserOut::from)?))
}

/// The authenticated user.
#[utoipa::path(
    get, path = "/api/users/me/", tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The current user", body = UserOut),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    )
)]
pub(crate) async fn me(Auth(session): Auth) -> Json<UserOut> {
    Json(UserOut::from(session.me()))
}

/// Registers a user. Admins may register any role; managers members and
/// viewers. Counts against the plan's user limit.
#[utoipa::path(
    post, path = "/api/users/register/", tag = "users",
    security(("bearer" = [])),
    request_body = NewUserIn,
    responses(
        (status = 201, description = "User created", body = UserOut),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 403, description = "Role forbids, or plan limit reached (`plan_limit_exceeded`)", body = ErrorBody),
        (status = 409, description = "Username taken", body = ErrorBody),
    )
)]
pub(crate) async fn register(
    Auth(session): Auth,
    ApiJson(body): ApiJson<NewUserIn>,
) -> ApiResult<(StatusCode, Json<UserOut>)> {
    let user = session.register_user(body.into()).await?;
    Ok((StatusCode::CREATED, Json(UserOut::from(user))))
}

/// A user of the tenant.
#[utoipa::path(
    get, path = "/api/users/{id}/", tag = "users",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = UserOut),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub(crate) async fn retrieve(
    Auth(session): Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<UserOut>> {
    Ok(Json(UserOut::from(session.user(UserId(id)).await?)))
}

/// Changes a user. Anyone may change their own email, names and department;
/// only admins change others, roles and the active flag. The tenant's owner
/// cannot be demoted or deactivated.
#[utoipa::path(
    patch, path = "/api/users/{id}/", tag = "users",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "User id")),
    request_body = UserPatchIn,
    responses(
        (status = 200, description = "The changed user", body = UserOut),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 403, description = "Role forbids", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub(crate) async fn update(
    Auth(session): Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UserPatchIn>,
) -> ApiResult<Json<UserOut>> {
    Ok(Json(UserOut::from(
        session.update_user(UserId(id), body.into()).await?,
    )))
}

/// Changes the authenticated user's password; every token issued before
/// stops working.
#[utoipa::path(
    post, path = "/api/users/change_password/", tag = "users",
    security(("bearer" = [])),
    request_body = ChangePasswordIn,
    responses(
        (status = 204, description = "Changed"),
        (status = 400, description = "Wrong old password or invalid new one", body = ErrorBody),
    )
)]
pub(crate) async fn change_password(
    Auth(session): Auth,
    ApiJson(body): ApiJson<ChangePasswordIn>,
) -> ApiResult<StatusCode> {
    session
        .change_password(&body.old_password, &body.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
