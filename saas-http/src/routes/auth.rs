//! Tokens: login and refresh for tenant users, login for platform superusers.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::routing::post;
use axum::{Json, Router};
use saas_core::auth::TokenKind;
use saas_core::tenancy::Tenant;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ClientAddr, resolve_tenant, tenant_name};
use crate::models::{LoginIn, PlatformTokenOut, RefreshIn, TokenPairOut};
use crate::state::AppState;
use crate::throttle::{address_key, login_key};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/token/", post(token))
        .route("/api/token/refresh/", post(refresh))
        .route("/api/platform/token/", post(platform_token))
}

/// The tenant a token endpoint was called at, or, when no active tenant
/// has that name, the name (to throttle attempts there as at a real one).
pub(crate) struct TokenScope {
    tenant: Option<Tenant>,
    key: String,
}

impl FromRequestParts<AppState> for TokenScope {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let tenant = resolve_tenant(parts, state).await?;
        let key = match &tenant {
            Some(t) => t.id.to_string(),
            None => tenant_name(parts, state).key(),
        };
        Ok(TokenScope { tenant, key })
    }
}

/// Counts a login attempt for the client's address and for the body's
/// username within `scope` (a tenant, the name of one that does not
/// exist, or the platform); past either limit the attempt is refused with
/// 429 before any password is hashed.
pub(crate) fn count_attempt(
    state: &AppState,
    client: ClientAddr,
    scope: &str,
    body: &LoginIn,
) -> ApiResult<()> {
    let throttles = state.throttles();
    throttles
        .login_address
        .attempt(&address_key(client.0))
        .map_err(ApiError::throttled)?;
    throttles
        .login
        .attempt(&login_key(scope, &body.username))
        .map_err(ApiError::throttled)
}

/// Exchanges a username and password for an access and a refresh token.
///
/// At a host that is no active tenant it answers as wrong credentials do,
/// after a password verification against a dummy hash, as a known tenant
/// spends on an unknown username: same answer, same cost, so that logins
/// cannot tell which hosts are customers.
#[utoipa::path(
    post, path = "/api/token/", tag = "auth",
    request_body = LoginIn,
    responses(
        (status = 200, description = "Tokens", body = TokenPairOut),
        (status = 401, description = "Wrong credentials (or no such tenant)", body = ErrorBody),
        (status = 429, description = "Too many attempts for this username or from this address", body = ErrorBody),
    )
)]
pub(crate) async fn token(
    State(state): State<AppState>,
    scope: TokenScope,
    client: ClientAddr,
    ApiJson(body): ApiJson<LoginIn>,
) -> ApiResult<Json<TokenPairOut>> {
    count_attempt(&state, client, &scope.key, &body)?;
    let saas = state.saas();
    let Some(tenant) = scope.tenant else {
        saas.passwords().verify_dummy(&body.password).await?;
        return Err(ApiError::login_failed());
    };
    match saas.login(&tenant, &body.username, &body.password).await {
        Ok(pair) => Ok(Json(pair.into())),
        Err(saas_core::Error::Unauthenticated | saas_core::Error::NotFound { .. }) => {
            Err(ApiError::login_failed())
        }
        Err(e) => Err(e.into()),
    }
}

/// Rotates a refresh token into a new pair. A refresh token works once;
/// presenting it again revokes every token of the same login. At a host
/// that is no active tenant it answers as an invalid refresh token does.
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
    scope: TokenScope,
    ApiJson(body): ApiJson<RefreshIn>,
) -> ApiResult<Json<TokenPairOut>> {
    let saas = state.saas();
    let Some(tenant) = scope.tenant else {
        saas.refuse_token(&body.refresh, TokenKind::Refresh);
        return Err(ApiError::refresh_invalid());
    };
    match saas.refresh(&tenant, &body.refresh).await {
        Ok(pair) => Ok(Json(pair.into())),
        Err(saas_core::Error::Unauthenticated | saas_core::Error::NotFound { .. }) => {
            Err(ApiError::refresh_invalid())
        }
        Err(e) => Err(e.into()),
    }
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
    client: ClientAddr,
    ApiJson(body): ApiJson<LoginIn>,
) -> ApiResult<Json<PlatformTokenOut>> {
    count_attempt(&state, client, "platform", &body)?;
    match state
        .saas()
        .superuser_login(&body.username, &body.password)
        .await
    {
        Ok(t) => Ok(Json(PlatformTokenOut { access: t.access })),
        Err(saas_core::Error::Unauthenticated) => Err(ApiError::login_failed()),
        Err(e) => Err(e.into()),
    }
}
