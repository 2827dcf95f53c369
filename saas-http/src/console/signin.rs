//! Signing in and out. Sign-in attempts count against the API's login
//! throttles (per client address, and per username at the platform or at
//! the tenant), and a successful sign-in replaces the visitor's session,
//! id and CSRF token with new ones.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;
use saas_core::audit::NewAuditEntry;

use super::html::{Area, csrf, html_response, page};
use super::{Form, Place, Visitor, failure, may_use_console, session_cookie};
use crate::models::LoginIn;
use crate::routes::auth::count_attempt;
use crate::sessions::{ConsoleSession, Who};
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/", get(home))
        .route("/console/sign-in", post(sign_in))
        .route("/console/sign-out", post(sign_out))
}

/// Where a signed-in visitor lands.
fn landing(place: &Place) -> &'static str {
    match place {
        Place::Platform => "/console/tenants",
        Place::Tenant(_) => "/console/dashboard",
    }
}

/// Whether `session` is signed in for `place` (as [`super::Signed`]
/// checks in full on every page).
fn signed_in_here(session: &ConsoleSession, place: &Place) -> bool {
    match (&session.who, place) {
        (Who::Platform(_), Place::Platform) => true,
        (Who::Tenant { tenant, .. }, Place::Tenant(t)) => *tenant == t.id,
        _ => false,
    }
}

/// The sign-in form, with a new anonymous session when the visitor has
/// none (for its CSRF token); a visitor signed in here goes to its landing
/// page.
async fn home(State(state): State<AppState>, visitor: Visitor) -> Response {
    if let Some(s) = &visitor.session
        && signed_in_here(s, &visitor.place)
    {
        return Redirect::to(landing(&visitor.place)).into_response();
    }
    form(&state, visitor, StatusCode::OK, None)
}

fn form(state: &AppState, visitor: Visitor, status: StatusCode, error: Option<&str>) -> Response {
    let session = match visitor.session {
        Some(s) if s.who == Who::Anonymous => s,
        _ => state.console().start(Who::Anonymous),
    };
    let whose = match &visitor.place {
        Place::Platform => "Platform console: sign in as a superuser".to_owned(),
        Place::Tenant(t) => format!("{}: sign in as an admin or manager", t.name.as_str()),
    };
    let body = html! {
        form.signin method="post" action="/console/sign-in" {
            p { (whose) }
            @if let Some(e) = error { p.error role="alert" id="sign-in-error" { (e) } }
            (csrf(&session))
            label { "Username" input type="text" name="username" id="username" autocomplete="username" required autofocus; }
            label { "Password" input type="password" name="password" id="password" autocomplete="current-password" required; }
            button type="submit" id="sign-in" { "Sign in" }
        }
    };
    let mut r = page(Area::SignIn, "Sign in", None, body);
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&session.id, visitor.secure),
    );
    r
}

async fn sign_in(State(state): State<AppState>, visitor: Visitor, f: Form) -> Response {
    let login = LoginIn {
        username: f.get("username").to_owned(),
        password: f.raw("password").to_owned(),
    };
    let scope = match &visitor.place {
        Place::Platform => "platform".to_owned(),
        Place::Tenant(t) => t.id.to_string(),
    };
    if let Err(e) = count_attempt(&state, visitor.client, &scope, &login) {
        let mut r = html_response(
            e.status(),
            html! { p { "Too many sign-in attempts. Wait a minute and try again." } },
        );
        if let Some(after) = e.retry_after() {
            r.headers_mut()
                .insert(header::RETRY_AFTER, after.as_secs().max(1).into());
        }
        return r;
    }
    let saas = state.saas();
    let client = visitor.client.0.map(|a| a.to_string());
    let (who, entry) = match &visitor.place {
        Place::Platform => match saas
            .superuser_sign_in(&login.username, &login.password)
            .await
        {
            Ok(su) => {
                let entry = NewAuditEntry::new(
                    &format!("superuser:{}", su.id),
                    None,
                    "console.sign-in",
                    &format!("superuser {}", su.username.as_str()),
                    "",
                    client.as_deref(),
                    saas.now(),
                );
                (Who::Platform(su), entry)
            }
            Err(saas_core::Error::Unauthenticated) => return refused(&state, visitor),
            Err(e) => return failure(e),
        },
        Place::Tenant(t) => {
            let signed = match saas.login(t, &login.username, &login.password).await {
                Ok(pair) => saas.authenticate(t, &pair.access).await,
                Err(e) => Err(e),
            };
            match signed {
                Ok(s) if may_use_console(s.me().role) => {
                    let me = s.me();
                    let entry = NewAuditEntry::new(
                        &format!("user:{}", me.id.0),
                        Some(t.id),
                        "console.sign-in",
                        &format!("user {}", me.username.as_str()),
                        "",
                        client.as_deref(),
                        saas.now(),
                    );
                    let who = Who::Tenant {
                        tenant: t.id,
                        user: me.id,
                        token_version: me.token_version,
                    };
                    (who, entry)
                }
                Ok(_) => {
                    let message = "Only the tenant's admins and managers may use the console.";
                    return form(&state, visitor, StatusCode::FORBIDDEN, Some(message));
                }
                Err(saas_core::Error::Unauthenticated | saas_core::Error::NotFound { .. }) => {
                    return refused(&state, visitor);
                }
                Err(e) => return failure(e),
            }
        }
    };
    if let Err(e) = saas.store().append_audit(&entry).await {
        return failure(e);
    }
    if let Some(old) = &visitor.session {
        state.console().end(&old.id);
    }
    let session = state.console().start(who);
    let mut r = Redirect::to(landing(&visitor.place)).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&session.id, visitor.secure),
    );
    r
}

fn refused(state: &AppState, visitor: Visitor) -> Response {
    form(
        state,
        visitor,
        StatusCode::UNAUTHORIZED,
        Some("Wrong username or password."),
    )
}

async fn sign_out(State(state): State<AppState>, visitor: Visitor) -> Response {
    if let Some(s) = &visitor.session {
        state.console().end(&s.id);
    }
    let mut r = Redirect::to("/console/").into_response();
    let secure = if visitor.secure { "; Secure" } else { "" };
    if let Ok(v) = format!(
        "{}=; Path=/console/; Max-Age=0; HttpOnly; SameSite=Strict{secure}",
        crate::sessions::COOKIE
    )
    .parse()
    {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}
