//! The dashboard.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::Auth;
use crate::models::DashboardOut;
use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/api/dashboard/", get(dashboard))
}

/// Counts of the user's projects and tasks, recent tasks, and the tenant's
/// usage against its plan.
#[utoipa::path(
    get, path = "/api/dashboard/", tag = "dashboard",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Dashboard", body = DashboardOut),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    )
)]
pub(crate) async fn dashboard(
    State(state): State<AppState>,
    Auth(session): Auth,
) -> ApiResult<Json<DashboardOut>> {
    let d = session.dashboard().await?;
    Ok(Json(DashboardOut::new(d, state.saas().now())))
}
