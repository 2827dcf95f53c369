//! `saas-http`: the REST API of `saas` as an axum [`Router`].
//!
//! It serves the Django seed's contract (same paths, methods and field
//! names), plus a platform-operator API and an OpenAPI document. It knows
//! HTTP and nothing else: every operation is a call on `saas-core`'s
//! [`Saas`](saas_core::Saas) or [`Session`](saas_core::Session).
//!
//! ```no_run
//! # async fn demo(saas: saas_core::Saas) -> std::io::Result<()> {
//! use saas_http::{AppState, HttpConfig, ServerLimits, router, serve};
//!
//! let app = router(AppState::new(saas, HttpConfig::default()));
//! // Mount it in your own application: `your_router.merge(app)`, or serve it.
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! serve(listener, app, ServerLimits::default(), std::future::pending()).await
//! # }
//! ```
//!
//! [`serve`] adds a header-read timeout and a connection cap to what
//! `axum::serve` does. A host serving the router its own way must give it
//! the peer address (`app.into_make_service_with_connect_info::<SocketAddr>()`
//! with `axum::serve`): the login and registration throttles count per
//! client address, and without one they count every client as one.
//!
//! - Tenant endpoints resolve the tenant from the `Host` header (port
//!   ignored), or from `X-Tenant: <slug>` when [`HttpConfig::x_tenant`] is on.
//!   An endpoint that needs a token answers an unknown or suspended tenant
//!   exactly as a known one answers a missing or bad token (401), and the
//!   token endpoints as bad credentials: no answer tells which hosts are
//!   customers.
//! - Errors are `{"error": {"code", "message", "fields"}}` ([`ApiError`]),
//!   or DRF's shapes with [`ErrorFormat::Drf`]; nothing a client sends
//!   produces a 5xx.
//! - Logins are throttled per username and per client address,
//!   registrations per client address ([`throttle`]); registration can be
//!   closed or restricted to some plans ([`HttpConfig`]).
//! - Lists are paginated DRF-style ([`pagination::Paginated`]).
//! - With the `console` feature, [`router`] also serves the web console at
//!   `/console/`: the platform's on platform hosts
//!   ([`HttpConfig::platform_hosts`]), each tenant's on its hosts.
//!
//! Architecture invariant: this is the only crate of the workspace that knows
//! status codes; it depends on `saas-core` only, never on a storage backend.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use tower::ServiceBuilder;
use tower::util::option_layer;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

#[cfg(feature = "console")]
mod console;
pub mod docs;
pub mod error;
pub mod extract;
mod layers;
pub mod metrics;
pub mod models;
pub mod openapi;
mod outage;
pub mod pagination;
mod routes;
pub mod server;
#[cfg(feature = "console")]
mod sessions;
mod state;
pub mod throttle;

pub use error::{ApiError, ApiResult, ErrorFormat};
pub use extract::{ApiJson, ApiPath, Auth, ClientAddr, CurrentTenant, PlatformAuth};
pub use openapi::ApiDoc;
pub use server::{ServerLimits, serve};
pub use state::{AppState, CorsOrigins, HttpConfig, MetricsToken, Throttles};
pub use throttle::Rate;

/// Header carrying the request id (set when the client sent none, echoed back).
pub const REQUEST_ID: &str = "x-request-id";

/// Every endpoint, without middleware, for hosts that build their own stack
/// (note that extractor rejections still use our error shape, but responses
/// made by the router itself, such as 405, do not without [`router`]'s layers).
pub fn routes() -> Router<AppState> {
    routes::routes()
        .merge(metrics::routes())
        .merge(docs::routes())
        .merge(openapi::routes())
}

/// Every endpoint and, with the `console` feature, the console's pages.
fn all_routes(state: &AppState) -> Router<AppState> {
    #[cfg(feature = "console")]
    {
        routes().merge(console::routes(state))
    }
    #[cfg(not(feature = "console"))]
    {
        let _ = state;
        routes()
    }
}

fn cors_layer(origins: &state::CorsOrigins) -> Option<CorsLayer> {
    let base = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static(extract::X_TENANT),
            HeaderName::from_static(REQUEST_ID),
        ])
        .expose_headers([HeaderName::from_static(REQUEST_ID), header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(3600));
    match origins {
        CorsOrigins::None => None,
        CorsOrigins::Any => Some(base.allow_origin(Any)),
        CorsOrigins::List(list) => {
            let values: Vec<HeaderValue> = list
                .iter()
                .filter_map(|o| match HeaderValue::from_str(o.trim()) {
                    Ok(v) => Some(v),
                    Err(_) => {
                        tracing::warn!(origin = %o, "ignoring malformed CORS origin");
                        None
                    }
                })
                .collect();
            Some(base.allow_origin(AllowOrigin::list(values)))
        }
    }
}

/// The whole API with its production middleware: request ids
/// (`x-request-id`, generated when absent and echoed back), tracing spans,
/// CORS from the configuration, the allowed-hosts check, request and body
/// timeouts, the body-size limit, 503 on connections past [`serve`]'s cap,
/// and the configured error shape on every error response, including 404
/// for unknown paths.
///
/// A host application with routes of its own uses [`router_with`] instead,
/// so that its routes get the same middleware.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The whole API and a host application's own routes, behind the same
/// middleware as [`router`]: allowed hosts, request ids, tracing, CORS,
/// timeouts, body limit, and every error (a 405 on a host route, a 404
/// for an unknown path) in the configured error shape.
///
/// `host` is a router whose state is already given (`Router<MyState>`
/// after `.with_state(my_state)`); its handlers may use [`Auth`],
/// [`CurrentTenant`], [`ApiJson`] and [`ApiError`] as ours do, when
/// `AppState: FromRef<MyState>`. It must not set a fallback: unknown paths
/// answer our 404. Routes merged next to [`router`]'s result instead get
/// none of this (a 405 there has an empty body).
///
/// ```
/// use axum::Router;
/// use axum::extract::FromRef;
/// use axum::routing::get;
/// use saas_http::{ApiResult, AppState, Auth, router_with};
///
/// #[derive(Clone)]
/// struct MyState {
///     api: AppState,
/// }
///
/// impl FromRef<MyState> for AppState {
///     fn from_ref(state: &MyState) -> AppState {
///         state.api.clone()
///     }
/// }
///
/// async fn whoami(Auth(session): Auth) -> ApiResult<String> {
///     Ok(session.me().username.to_string())
/// }
///
/// fn app(api: AppState) -> Router {
///     let host = Router::new()
///         .route("/api/whoami/", get(whoami))
///         .with_state(MyState { api: api.clone() });
///     router_with(api, host)
/// }
/// ```
pub fn router_with(state: AppState, host: Router) -> Router {
    let config = state.config().clone();
    let request_id = HeaderName::from_static(REQUEST_ID);
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request<_>| {
            let id = req
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!(
                "request",
                method = %req.method(),
                path = %req.uri().path(),
                request_id = %id,
            )
        })
        .on_response(DefaultOnResponse::new().level(Level::INFO))
        // 500s are logged with their cause where they are made, storage
        // outages once by the outage layer: not again per response here.
        .on_failure(());
    let middleware = ServiceBuilder::new()
        .layer(axum::middleware::from_fn(metrics::record))
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(trace)
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(option_layer(cors_layer(&config.cors)))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            layers::render_errors,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.outages(),
            outage::fail_fast,
        ))
        .layer(axum::middleware::from_fn(layers::shed_overloaded))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            layers::check_host,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            config.request_timeout,
        ))
        .layer(RequestBodyTimeoutLayer::new(config.body_timeout))
        .layer(DefaultBodyLimit::max(config.body_limit));
    all_routes(&state)
        .with_state(state)
        .merge(host)
        .fallback(|| async { ApiError::not_found("page") })
        .layer(middleware)
}
