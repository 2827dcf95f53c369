//! The endpoints, grouped as the seed groups them. Each module has a
//! `routes()` returning its part of the router; `mod.rs` merges them.
//!
//! The jobs endpoints (`POST /api/projects/{id}/report/`, `GET /api/jobs/{id}/`)
//! are in [`jobs`]; they answer 503 unless the state carries a jobs runtime.

use axum::Router;

use crate::state::AppState;

pub(crate) mod auth;
pub(crate) mod dashboard;
pub(crate) mod health;
pub(crate) mod jobs;
pub(crate) mod platform;
pub(crate) mod projects;
pub(crate) mod public;
pub(crate) mod tasks;
pub(crate) mod users;

/// The API's endpoints, without layers (the crate's `routes()` adds
/// `/metrics` and the OpenAPI document and its docs page, which list these).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .merge(public::routes())
        .merge(health::routes())
        .merge(auth::routes())
        .merge(users::routes())
        .merge(projects::routes())
        .merge(tasks::routes())
        .merge(dashboard::routes())
        .merge(jobs::routes())
        .merge(platform::routes())
}
