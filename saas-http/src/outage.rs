//! Storage outages as the HTTP edge sees them: an unreachable database is
//! answered 503 with `Retry-After` (and, for [`REFUSE_FOR`] after each
//! failure, at once, without waiting on the database again), full storage
//! 507 (reads still served); each outage is logged once when it begins and
//! once when it ends, never per request.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorReport};

/// How long, after a request found the storage unreachable, others are
/// refused without trying: a short memory of the outage, so that a flood
/// of requests does not each wait for a connection that will not come,
/// and a recovery is noticed within this long.
pub(crate) const REFUSE_FOR: Duration = Duration::from_secs(1);

/// Paths that do not touch the storage, or report on it themselves.
const EXEMPT: &[&str] = &["/healthz", "/readyz", "/metrics", "/api/openapi.json"];

/// The two kinds of outage of one router.
#[derive(Debug)]
pub(crate) struct Outages {
    unavailable: Outage,
    full: Outage,
}

impl Default for Outages {
    fn default() -> Self {
        Outages {
            unavailable: Outage::new("storage unreachable"),
            full: Outage::new("storage full"),
        }
    }
}

impl Outages {
    /// Whether requests are refused without trying the storage.
    pub(crate) fn refusing(&self) -> bool {
        self.unavailable.refusing()
    }
}

#[derive(Debug)]
struct Outage {
    what: &'static str,
    active: AtomicBool,
    state: Mutex<State_>,
}

#[derive(Debug, Default)]
struct State_ {
    since: Option<Instant>,
    refuse_until: Option<Instant>,
}

impl Outage {
    fn new(what: &'static str) -> Self {
        Outage {
            what,
            active: AtomicBool::new(false),
            state: Mutex::new(State_::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State_> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn refusing(&self) -> bool {
        self.active.load(Ordering::Relaxed)
            && self.lock().refuse_until.is_some_and(|t| Instant::now() < t)
    }

    /// A request met the outage: logs it if it is new; refuses for
    /// `refuse_for` from now.
    fn met(&self, cause: Option<&str>, refuse_for: Option<Duration>) {
        let now = Instant::now();
        let mut st = self.lock();
        if st.since.is_none() {
            st.since = Some(now);
            self.active.store(true, Ordering::Relaxed);
            tracing::error!(
                cause = cause.unwrap_or("-"),
                "{}: answering {} until it is over (logged once)",
                self.what,
                if refuse_for.is_some() {
                    "503"
                } else {
                    "507 to writes"
                }
            );
        }
        if let Some(d) = refuse_for {
            st.refuse_until = Some(now + d);
        }
    }

    /// A request succeeded where the outage would have failed it.
    fn over(&self) {
        if !self.active.load(Ordering::Relaxed) {
            return;
        }
        let mut st = self.lock();
        if let Some(since) = st.since.take() {
            st.refuse_until = None;
            self.active.store(false, Ordering::Relaxed);
            tracing::warn!(
                lasted_ms = since.elapsed().as_millis() as u64,
                "{}: over",
                self.what
            );
        }
    }
}

/// The router's outage layer: refuses at once while an unreachable storage
/// is remembered, and keeps track of outages from the answers.
pub(crate) async fn fail_fast(
    State(outages): State<Arc<Outages>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let exempt = EXEMPT.contains(&path) || path.starts_with("/api/docs");
    if !exempt && outages.refusing() {
        return ApiError::storage_unavailable().into_response();
    }
    let write = !request.method().is_safe();
    let response = next.run(request).await;
    match response.extensions().get::<ErrorReport>() {
        Some(r) if r.code == "storage_unavailable" => outages
            .unavailable
            .met(r.cause.as_deref(), Some(REFUSE_FOR)),
        Some(r) if r.code == "storage_full" => outages.full.met(r.cause.as_deref(), None),
        _ if response.status().is_success() && !exempt => {
            outages.unavailable.over();
            if write {
                outages.full.over();
            }
        }
        _ => {}
    }
    response
}
