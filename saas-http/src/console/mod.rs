//! The web console (cargo feature `console`): server-rendered HTML for
//! platform superusers at `/console/` on a platform host, and for each
//! tenant's admins and managers at `/console/` on the tenant's hosts.
//!
//! A host that routes to an active tenant serves that tenant's console;
//! any other host serves the platform console, or, when
//! [`crate::HttpConfig::platform_hosts`] is set, only the hosts it lists
//! do (the others answer 404). Every action calls the same
//! [`Operator`](saas_core::operator::Operator) or
//! [`Session`](saas_core::Session) method as the API, so the console adds
//! no rule of its own; it records each in the audit log.
//!
//! - [`crate::sessions`]: cookie sessions, CSRF tokens, idle expiry (held
//!   by the state, below the console).
//! - [`signin`]: the sign-in form, signing in and out.
//! - [`users`]: a tenant's users table and the form that changes one, which
//!   both consoles show.
//! - [`platform`], [`jobs`], [`audit`]: the platform's pages;
//!   [`tenant`]: a tenant's. [`html`]: the frame and shared pieces.
//!
//! Every POST carries the session's CSRF token in a `csrf` field; the
//! [`require_csrf`] layer refuses any without it (403) before a handler
//! runs.

mod audit;
mod html;
mod jobs;
mod platform;
mod signin;
mod tenant;
mod users;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use saas_core::operator::Operator;
use saas_core::store::PageRequest;
use saas_core::tenancy::Tenant;
use saas_core::users::Role;

use crate::error::ApiError;
use crate::extract::{ClientAddr, request_host};
use crate::layers::host_allowed;
use crate::sessions::{COOKIE, ConsoleSession, Who, same_token};
use crate::state::AppState;

/// The console's routes, with the CSRF check on every POST.
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route(html::CSS_PATH, get(stylesheet))
        .merge(signin::routes())
        .merge(platform::routes())
        .merge(jobs::routes())
        .merge(audit::routes())
        .merge(tenant::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_csrf,
        ))
}

/// The stylesheet: the same bytes for the life of a release, cached.
async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        html::CSS,
    )
        .into_response()
}

/// Where a console request is: the platform's console or a tenant's.
#[derive(Debug, Clone)]
pub(crate) enum Place {
    /// A platform host.
    Platform,
    /// A host of this active tenant.
    Tenant(Tenant),
}

/// The console this request's host serves, `None` for a host that serves
/// none (not a tenant's, and not among the platform hosts when those are
/// set).
async fn place(parts: &Parts, state: &AppState) -> Result<Option<Place>, Response> {
    let host = request_host(parts).unwrap_or("");
    match state.saas().resolve_host(host).await {
        Ok(t) => Ok(Some(Place::Tenant(t))),
        Err(saas_core::Error::NotFound { .. }) => {
            let hosts = &state.config().platform_hosts;
            Ok((hosts.is_empty() || host_allowed(hosts, host)).then_some(Place::Platform))
        }
        Err(e) => Err(failure(e)),
    }
}

/// The session id the request's cookie carries.
fn cookie_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

/// Whether the request came over HTTPS (as a trusted proxy says, when
/// [`crate::HttpConfig::trust_forwarded_proto`] is on).
fn is_https(parts: &Parts, state: &AppState) -> bool {
    parts.uri.scheme_str() == Some("https")
        || (state.config().trust_forwarded_proto
            && parts
                .headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("https")))
}

/// The `Set-Cookie` value carrying session `id`.
fn session_cookie(id: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/console/; HttpOnly; SameSite=Strict{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("saas_console=; Path=/console/"))
}

/// A request to the console: where it is, its session if it has a live
/// one, and whether it came over HTTPS.
#[derive(Debug, Clone)]
pub(crate) struct Visitor {
    pub(crate) place: Place,
    pub(crate) session: Option<ConsoleSession>,
    pub(crate) secure: bool,
    pub(crate) client: ClientAddr,
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(place) = place(parts, state).await? else {
            return Err(html::error_page(
                StatusCode::NOT_FOUND,
                "There is no console at this address.",
            ));
        };
        let session = cookie_id(&parts.headers).and_then(|id| state.console().get(id));
        let client = ClientAddr::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Visitor {
            place,
            session,
            secure: is_https(parts, state),
            client,
        })
    }
}

/// A signed-in request whose session is valid where it is: a platform
/// session at a platform host, or a tenant session at a host of its own
/// tenant, for a user still active, still an admin or manager, and with
/// the token version it signed in with (a password change or
/// deactivation ends it). Anything else is sent to the sign-in form.
pub(crate) enum Signed {
    /// A superuser at the platform console, acting from the request's address.
    Platform { op: Operator, cs: ConsoleSession },
    /// A tenant admin or manager at its tenant's console.
    Tenant {
        session: Box<saas_core::Session>,
        cs: ConsoleSession,
        client: Option<String>,
    },
}

/// The page for a path the visitor's console does not have.
pub(crate) fn no_such_page() -> Response {
    html::error_page(StatusCode::NOT_FOUND, "No such page.")
}

/// Roles that may use a tenant's console.
pub(crate) fn may_use_console(role: Role) -> bool {
    matches!(role, Role::Admin | Role::Manager)
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let visitor = Visitor::from_request_parts(parts, state).await?;
        let to_sign_in = || Redirect::to("/console/").into_response();
        let Some(cs) = visitor.session else {
            return Err(to_sign_in());
        };
        let client = visitor.client.0.map(|a| a.to_string());
        match (&cs.who, visitor.place) {
            (Who::Platform(su), Place::Platform) => {
                let op = state.saas().operator_for(su).from_client(client);
                Ok(Signed::Platform { op, cs })
            }
            (
                Who::Tenant {
                    tenant,
                    user,
                    token_version,
                },
                Place::Tenant(t),
            ) if *tenant == t.id => match state.saas().session(&t, *user).await {
                Ok(session)
                    if session.me().token_version == *token_version
                        && may_use_console(session.me().role) =>
                {
                    Ok(Signed::Tenant {
                        session: Box::new(session),
                        cs,
                        client,
                    })
                }
                Ok(_) | Err(saas_core::Error::NotFound { .. }) => {
                    state.console().end(&cs.id);
                    Err(to_sign_in())
                }
                Err(e) => Err(failure(e)),
            },
            _ => Err(to_sign_in()),
        }
    }
}

/// A signed-in request at the platform console ([`Signed::Platform`]); a
/// tenant's session gets [`no_such_page`] (its console has no such pages).
pub(crate) struct AtPlatform {
    pub(crate) op: Operator,
    pub(crate) cs: ConsoleSession,
}

impl FromRequestParts<AppState> for AtPlatform {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match Signed::from_request_parts(parts, state).await? {
            Signed::Platform { op, cs } => Ok(AtPlatform { op, cs }),
            Signed::Tenant { .. } => Err(no_such_page()),
        }
    }
}

/// A signed-in request at a tenant's console ([`Signed::Tenant`]); the
/// platform's session gets [`no_such_page`].
pub(crate) struct AtTenant {
    pub(crate) session: saas_core::Session,
    pub(crate) cs: ConsoleSession,
    /// The client's address, for the audit log.
    pub(crate) client: Option<String>,
}

impl FromRequestParts<AppState> for AtTenant {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match Signed::from_request_parts(parts, state).await? {
            Signed::Tenant {
                session,
                cs,
                client,
            } => Ok(AtTenant {
                session: *session,
                cs,
                client,
            }),
            Signed::Platform { .. } => Err(no_such_page()),
        }
    }
}

/// The first page of a hundred, what the console's tables show.
pub(crate) fn first_hundred() -> PageRequest {
    PageRequest::new(Some(1), Some(100)).unwrap_or_default()
}

/// Refuses a POST whose `csrf` form field is not its session's token
/// (403), before any handler runs. The body is read (up to the router's
/// body limit) and handed on unchanged.
async fn require_csrf(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let limit = state.config().body_limit;
    let Ok(bytes) = to_bytes(body, limit).await else {
        return html::error_page(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.");
    };
    let expected = cookie_id(&parts.headers).and_then(|id| state.console().get_csrf(id));
    let sent = form_field(&bytes, "csrf");
    let ok = matches!((&expected, &sent), (Some(e), Some(s)) if same_token(e, s));
    if !ok {
        return html::error_page(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from the console. Reload the page and try again.",
        );
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// One field of a URL-encoded form.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// A URL-encoded form's fields (the CSRF layer has checked its token).
pub(crate) struct Form(pub(crate) Vec<(String, String)>);

impl Form {
    /// The trimmed value of field `name`, empty when absent.
    pub(crate) fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.trim())
    }

    /// The raw value of field `name` (passwords keep their spaces).
    pub(crate) fn raw(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for Form {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        serde_urlencoded::from_bytes(&bytes)
            .map(Form)
            .map_err(|_| html::error_page(StatusCode::BAD_REQUEST, "The form could not be read."))
    }
}

/// What an error says to a person: its message and any field errors.
pub(crate) fn describe(e: saas_core::Error) -> String {
    let api = ApiError::from(e);
    if api.status().is_server_error() {
        return "Something went wrong on our side; it has been logged.".to_owned();
    }
    let mut text = api.message().to_owned();
    for (field, msg) in api.fields() {
        text.push_str(&format!(" — {field}: {msg}"));
    }
    text
}

/// A page for a failure that is not the visitor's doing (logged), or for
/// an error a page cannot show in place.
pub(crate) fn failure(e: saas_core::Error) -> Response {
    let api = ApiError::from(e);
    let status = api.status();
    if status.is_server_error() {
        tracing::error!(error = ?api, "console request failed");
    }
    let message = if status.is_server_error() {
        "Something went wrong on our side; it has been logged.".to_owned()
    } else {
        api.message().to_owned()
    };
    html::error_page(status, &message)
}

/// After an action: back to `to`, with `outcome`'s message shown there.
pub(crate) fn after<T>(
    state: &AppState,
    cs: &ConsoleSession,
    to: &str,
    outcome: Result<T, saas_core::Error>,
    done: &str,
) -> Response {
    let message = match outcome {
        Ok(_) => done.to_owned(),
        Err(e) => format!("Not done: {}", describe(e)),
    };
    state.console().flash(&cs.id, message);
    Redirect::to(to).into_response()
}
