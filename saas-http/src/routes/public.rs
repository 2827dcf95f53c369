//! Registration, served on any host (so are the health checks, in
//! `health`, and the OpenAPI document, `crate::openapi`'s).

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::post;
use axum::{Json, Router};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ClientAddr};
use crate::models::fields::RequestBody;
use crate::models::{RegistrationIn, RegistrationOut};
use crate::state::AppState;
use crate::throttle::address_key;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/api/register/", post(register))
}

/// A registration let through: public registration is open and the
/// client's address is within its rate. Checked before the body is read,
/// so that every attempt counts, malformed ones included.
pub(crate) struct Admitted;

impl FromRequestParts<AppState> for Admitted {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if !state.config().registration_open {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "registration_closed",
                "registration is closed here; ask the operator for an account",
            ));
        }
        let ClientAddr(addr) = ClientAddr::from_request_parts(parts, state).await?;
        state
            .throttles()
            .registration
            .attempt(&address_key(addr))
            .map_err(ApiError::throttled)?;
        Ok(Admitted)
    }
}

/// Refuses a plan of the catalog that is not offered to the public
/// ([`crate::HttpConfig::self_service_plans`]). A plan the catalog does
/// not know is left to the core, which names the plans there are.
fn check_self_service(state: &AppState, body: &RegistrationIn) -> ApiResult<()> {
    let Some(offered) = &state.config().self_service_plans else {
        return Ok(());
    };
    let plans = state.saas().plans();
    let code = match &body.subscription_plan {
        Some(code) => code.as_str(),
        None => plans.default_plan().code.as_str(),
    };
    if plans.get(code).is_ok() && !offered.iter().any(|p| p == code) {
        return Err(ApiError::invalid_field(
            "subscription_plan",
            format!(
                "the {code} plan is not available at registration (choose one of: {}); \
                 an operator can change the plan later",
                offered.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Registers a tenant with its primary domain and first admin, atomically.
#[utoipa::path(
    post, path = "/api/register/", tag = "public",
    request_body = RegistrationIn,
    responses(
        (status = 201, description = "Tenant created", body = RegistrationOut),
        (status = 400, description = "Invalid input, or a plan not offered at registration", body = ErrorBody),
        (status = 403, description = "Registration is closed (`registration_closed`)", body = ErrorBody),
        (status = 409, description = "Slug, domain or username taken", body = ErrorBody),
        (status = 429, description = "Too many registrations from this address", body = ErrorBody),
    )
)]
pub(crate) async fn register(
    State(state): State<AppState>,
    _admitted: Admitted,
    ApiJson(body): ApiJson<RegistrationIn>,
) -> ApiResult<(StatusCode, Json<RegistrationOut>)> {
    check_self_service(&state, &body)?;
    create_tenant(&state, body).await
}

/// Creates the tenant `body` describes (registration, and the operators'
/// `POST /api/platform/tenants/`, which no policy limits).
pub(crate) async fn create_tenant(
    state: &AppState,
    body: RegistrationIn,
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
