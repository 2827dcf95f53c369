//! `GET /metrics`: the Prometheus text format of every metric the process
//! records ([`saas_core::telemetry`] names them), and the layer that
//! counts requests.
//!
//! The endpoint is outside tenant routing and the allowed-hosts check. It
//! answers loopback clients, and others that present
//! [`crate::HttpConfig::metrics_token`] as a bearer token; anyone else
//! gets 403. Without a recorder ([`crate::AppState::with_metrics`]) it
//! answers 404. Each scrape first counts the job queue (when the state has
//! one) into [`telemetry::JOBS_QUEUED`].

use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use saas_core::jobs::{JobCount, JobStatus, Jobs};
use saas_core::telemetry;

use crate::error::ApiError;
use crate::extract::ClientAddr;
use crate::state::AppState;

/// Where the metrics are served.
pub const PATH: &str = "/metrics";

/// Histogram buckets of every `*_seconds` metric: a millisecond to a minute.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// How often histograms are drained into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the process's Prometheus recorder (once; later calls return
/// the same handle) and starts its upkeep. Give the handle to
/// [`crate::AppState::with_metrics`]. Fails when the process already has
/// another recorder.
pub fn install_recorder() -> Result<PrometheusHandle, BuildError> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)?
        .install_recorder()?;
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        // Scrapes still drain the histograms; only idle memory grows.
        tracing::warn!(error = %e, "cannot start the metrics upkeep thread");
    }
    Ok(HANDLE.get_or_init(|| handle).clone())
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route(PATH, get(render))
}

/// The metrics, to loopback clients and holders of the metrics token.
async fn render(State(state): State<AppState>, request: Request) -> Response {
    let Some(handle) = state.metrics() else {
        return ApiError::not_found("page").into_response();
    };
    let (mut parts, _) = request.into_parts();
    let addr = match ClientAddr::from_request_parts(&mut parts, &state).await {
        Ok(ClientAddr(addr)) => addr,
        Err(e) => return e.into_response(),
    };
    let loopback = addr.is_some_and(|a| a.is_loopback());
    if !loopback && !token_matches(&parts.headers, state.config().metrics_token.as_ref()) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "metrics_forbidden",
            "metrics are served to loopback clients and to holders of the metrics token",
        )
        .into_response();
    }
    if let Some(jobs) = state.jobs() {
        count_jobs(jobs).await;
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

/// Longest a scrape waits for the queue's counts; past it the gauges keep
/// their last values (a slow database must not fail the scrape).
const COUNT_TIMEOUT: Duration = Duration::from_secs(2);

/// Sets [`telemetry::JOBS_QUEUED`] from the queue's counts.
async fn count_jobs(jobs: &Jobs) {
    match tokio::time::timeout(COUNT_TIMEOUT, jobs.queue().stats()).await {
        Ok(Ok(counts)) => set_job_gauges(&counts),
        Ok(Err(e)) => tracing::debug!(error = %e, "cannot count the job queue for /metrics"),
        Err(_) => tracing::debug!("counting the job queue for /metrics timed out"),
    }
}

/// Sets the gauge of every kind and state in `counts` that is waiting,
/// running or dead, and sets to 0 those set before and absent now (the
/// queue leaves empty groups out). Finished jobs are the queue's history,
/// not its depth.
fn set_job_gauges(counts: &[JobCount]) {
    static SEEN: Mutex<BTreeSet<(String, &'static str)>> = Mutex::new(BTreeSet::new());
    let mut seen = SEEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut now = BTreeSet::new();
    for c in counts {
        if matches!(c.status, JobStatus::Succeeded | JobStatus::Cancelled) {
            continue;
        }
        let labels = (c.kind.clone(), c.status.as_str());
        metrics::gauge!(telemetry::JOBS_QUEUED, "kind" => labels.0.clone(), "state" => labels.1)
            .set(c.count as f64);
        now.insert(labels);
    }
    for (kind, state) in seen.difference(&now) {
        metrics::gauge!(telemetry::JOBS_QUEUED, "kind" => kind.clone(), "state" => *state).set(0.0);
    }
    seen.extend(now);
}

/// Whether the request carries `Authorization: Bearer <token>` for the
/// configured token (compared in constant time).
fn token_matches(headers: &HeaderMap, token: Option<&crate::state::MetricsToken>) -> bool {
    let Some(token) = token else {
        return false;
    };
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), token.expose().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Decrements the in-flight gauge when the request ends, answered or not.
struct InFlight;

impl InFlight {
    fn start() -> Self {
        metrics::gauge!(telemetry::HTTP_IN_FLIGHT).increment(1.0);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!(telemetry::HTTP_IN_FLIGHT).decrement(1.0);
    }
}

/// Counts every request by method, route template and status, with its
/// duration; the route is the template (`/api/projects/{id}/`), never the
/// path, so no id or slug becomes a label.
pub(crate) async fn record(request: Request, next: Next) -> Response {
    let _in_flight = InFlight::start();
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = method_label(request.method());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [
        ("method", method.to_owned()),
        ("route", route),
        ("status", status),
    ];
    metrics::counter!(telemetry::HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(telemetry::HTTP_DURATION, &labels).record(started.elapsed().as_secs_f64());
    response
}

/// The method as a label: the standard ones, else `other` (a client may
/// send any token as a method).
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
