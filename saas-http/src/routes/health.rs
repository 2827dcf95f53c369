//! Health checks, served on any host and outside the allowed-hosts check
//! (probes call them by address): `/healthz` (the process is alive, no
//! I/O), `/readyz` (the store and the job queue answer and no migration
//! is pending) and the seed's `/api/health/` (the database answers).

use std::future::Future;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use saas_core::jobs::JobId;

use crate::models::{AliveOut, HealthOut, ReadyOut};
use crate::state::AppState;

/// Longest a readiness check waits for one answer: a probe must learn
/// "not ready" quickly, not after a pool's timeout.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/health/", get(health))
        .route("/healthz", get(alive))
        .route("/readyz", get(ready))
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

/// The process is alive: answers without touching storage.
#[utoipa::path(
    get, path = "/healthz", tag = "public",
    responses((status = 200, description = "Alive", body = AliveOut))
)]
pub(crate) async fn alive() -> Json<AliveOut> {
    Json(AliveOut {
        status: "alive".into(),
    })
}

/// Runs `check` for at most [`CHECK_TIMEOUT`]; whether it answered Ok.
async fn within<T, E: std::fmt::Display>(
    what: &str,
    check: impl Future<Output = Result<T, E>>,
) -> Option<T> {
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the {what} does not answer");
            None
        }
        Err(_) => {
            tracing::warn!("readiness: the {what} did not answer within {CHECK_TIMEOUT:?}");
            None
        }
    }
}

/// Whether this process can serve: the store answers, the job queue (when
/// the server has one) answers, and no storage waits for a migration.
/// Each check waits at most two seconds.
#[utoipa::path(
    get, path = "/readyz", tag = "public",
    responses(
        (status = 200, description = "Ready", body = ReadyOut),
        (status = 503, description = "Not ready: the store or the queue does not answer, \
                                      or a migration is pending", body = ReadyOut),
    )
)]
pub(crate) async fn ready(State(state): State<AppState>) -> (StatusCode, Json<ReadyOut>) {
    let store = state.saas().store();
    let (pinged, pending, queue) = tokio::join!(
        within("store", store.ping()),
        within("store", store.pending_migrations()),
        async {
            match state.jobs() {
                // A lookup of an id no job has: one round trip to the queue.
                Some(jobs) => Some(within("job queue", jobs.queue().job(JobId::new())).await),
                None => None,
            }
        }
    );
    let store_ok = pinged.is_some();
    let queue_ok = !matches!(queue, Some(None));
    let (migrations, pending_migrations) = match pending {
        Some(0) => ("current", 0),
        Some(n) => ("pending", n),
        None => ("unknown", 0),
    };
    let ready = store_ok && queue_ok && migrations == "current";
    let answer = ReadyOut {
        status: if ready { "ready" } else { "unready" }.into(),
        store: if store_ok { "ok" } else { "unavailable" }.into(),
        queue: match queue {
            None => "absent",
            Some(Some(_)) => "ok",
            Some(None) => "unavailable",
        }
        .into(),
        migrations: migrations.into(),
        pending_migrations,
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(answer))
}
