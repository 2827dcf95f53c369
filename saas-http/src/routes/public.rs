//! Endpoints served on any host: registration and health (the OpenAPI
//! document, also served on any host, is `crate::openapi`'s).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::models::fields::RequestBody;
use crate::models::{HealthOut, RegistrationIn, RegistrationOut};
use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/register/", post(register))
        .route("/api/health/", get(health))
}

/// Registers a tenant with its primary domain and first admin, atomically.
#[utoipa::path(
    post, path = "/api/register/", tag = "public",
    request_body = RegistrationIn,
    responses(
        (status = 201, description = "Tenant created", body = RegistrationOut),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 409, description = "Slug, domain or username taken", body = ErrorBody),
    )
)]
pub(crate) async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RegistrationIn>,
) -> ApiResult<(StatusCode, Json<RegistrationOut>)> {
    let domain = body.domain_url.trim().to_ascii_lowercase();
    let (tenant, admin) = state
        .saas()
        .register(body.into())
        .await
        .map_err(RegistrationIn::error)?;
    Ok((
        StatusCode::CREATED,
        Json(RegistrationOut::new(&tenant, &domain, &admin)),
    ))
}

/// Whether the server and its database answer.
#[utoipa::path(
    get, path = "/api/health/", tag = "public",
    responses(
        (status = 200, description = "Healthy", body = HealthOut),
        (status = 503, description = "The database does not answer", body = HealthOut),
    )
)]
pub(crate) async fn health(State(state): State<AppState>) -> (StatusCode, Json<HealthOut>) {
    match state.saas().health().await {
        Ok(()) => (
            StatusCode::OK,
            Json(HealthOut {
                status: "healthy".into(),
                database: "ok".into(),
            }),
        ),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(HealthOut {
                    status: "unhealthy".into(),
                    database: "unavailable".into(),
                }),
            )
        }
    }
}
