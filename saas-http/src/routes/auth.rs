//! Tokens: login and refresh for tenant users, login for platform superusers.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, CurrentTenant};
use crate::models::{LoginIn, PlatformTokenOut, RefreshIn, TokenPairOut};
use crate::state::AppState;
use crate::throttle::login_key;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/token/", post(token))
        .route("/api/token/refresh/", post(refresh))
        .route("/api/platform/token/", post(platform_token))
}

/// Counts a login attempt for the body's username within `scope` (a
/// tenant, or the platform); past the limit, the attempt is refused with 429
/// before any password is hashed.
fn count_attempt(state: &AppState, scope: &str, body: &LoginIn) -> ApiResult<()> {
    state
        .throttle()
        .attempt(&login_key(scope, &body.username))
        .map_err(ApiError::throttled)
}

/// Exchanges a username and password for an access and a refresh token.
#[utoipa::path(
    post, path = "/api/token/", tag = "auth",
    request_body = LoginIn,
    responses(
        (status = 200, description = "Tokens", body = TokenPairOut),
        (status = 401, description = "Wrong credentials", body = ErrorBody),
        (status = 404, description = "Unknown tenant", body = ErrorBody),
        (status = 429, description = "Too many attempts for this username", body = ErrorBody),
    )
)]
pub(crate) async fn token(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    ApiJson(body): ApiJson<LoginIn>,
) -> ApiResult<Json<TokenPairOut>> {
    count_attempt(&state, &tenant.id.to_string(), &body)?;
    let pair = state
        .saas()
        .login(&tenant, &body.username, &body.password)
        .await?;
    Ok(Json(pair.into()))
}

/// Rotates a refresh token into a new pair. A refresh token works once;
/// presenting it again revokes every token of the same login.
#[utoipa::path(
    post, path = "/api/token/refresh/", tag = "auth",
    request_body = RefreshIn,
    responses(
        (status = 200, description = "New tokens", body = TokenPairOut),
        (status = 401, description = "Invalid, expired or reused refresh token", body = ErrorBody),
    )
)]
pub(crate) async fn refresh(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    ApiJson(body): ApiJson<RefreshIn>,
) -> ApiResult<Json<TokenPairOut>> {
    let pair = state.saas().refresh(&tenant, &body.refresh).await?;
    Ok(Json(pair.into()))
}

/// Exchanges a platform superuser's credentials for a platform token.
#[utoipa::path(
    post, path = "/api/platform/token/", tag = "platform",
    request_body = LoginIn,
    responses(
        (status = 200, description = "Token", body = PlatformTokenOut),
        (status = 401, description = "Wrong credentials", body = ErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody),
    )
)]
pub(crate) async fn platform_token(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoginIn>,
) -> ApiResult<Json<PlatformTokenOut>> {
    count_attempt(&state, "platform", &body)?;
    let t = state
        .saas()
        .superuser_login(&body.username, &body.password)
        .await?;
    Ok(Json(PlatformTokenOut { access: t.access }))
}
