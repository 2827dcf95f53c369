//! A host application's own routes next to ours: its router has a state of
//! its own, its handlers use our extractors and error type, and
//! `router_with` gives them our middleware and error shape.

use axum::Router;
use axum::extract::{FromRef, State};
use axum::routing::get;
use reqwest::Method;
use saas_core::store::Page;
use saas_http::pagination::{Paginated, Pagination};
use saas_http::{ApiError, ApiJson, ApiResult, AppState, Auth, CurrentTenant};
use serde_json::{Value, json};
use testkit::server::{Backend, TestApp};

/// The host's state: ours, and something of its own.
#[derive(Clone)]
struct HostState {
    api: AppState,
    greeting: &'static str,
}

impl FromRef<HostState> for AppState {
    fn from_ref(state: &HostState) -> AppState {
        state.api.clone()
    }
}

async fn whoami(
    State(state): State<HostState>,
    CurrentTenant(tenant): CurrentTenant,
    Auth(session): Auth,
) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(json!({
        "greeting": state.greeting,
        "tenant": tenant.slug.as_str(),
        "user": session.me().username.as_str(),
    })))
}

async fn hello(auth: Option<Auth>) -> axum::Json<Value> {
    let user = auth.map(|Auth(s)| s.me().username.as_str().to_owned());
    axum::Json(json!({ "user": user }))
}

async fn echo(Auth(_): Auth, ApiJson(body): ApiJson<Value>) -> axum::Json<Value> {
    axum::Json(body)
}

/// DRF-style pages of the host's own list, with the host's state.
async fn letters(
    State(state): State<HostState>,
    pages: Pagination,
) -> ApiResult<axum::Json<Paginated<String>>> {
    let all: Vec<String> = state.greeting.chars().map(String::from).collect();
    let r = pages.request();
    let items = all
        .iter()
        .skip(usize::try_from(r.offset()).unwrap_or(usize::MAX))
        .take(usize::try_from(r.page_size()).unwrap_or(usize::MAX))
        .cloned()
        .collect();
    let page = Page {
        count: all.len() as u64,
        items,
    };
    Ok(axum::Json(pages.respond(page, |l| l)?))
}

async fn boom() -> ApiResult<()> {
    Err(ApiError::internal(anyhow::anyhow!("the host failed")))
}

fn host_routes(api: AppState) -> Router {
    Router::new()
        .route("/api/whoami/", get(whoami))
        .route("/api/hello/", get(hello))
        .route("/api/echo/", axum::routing::post(echo))
        .route("/api/boom/", get(boom))
        .route("/api/letters/", get(letters))
        .with_state(HostState {
            api,
            greeting: "hi",
        })
}

pub async fn host_routes_share_extractors_and_middleware(backend: Backend) {
    let Some(app) = TestApp::start_host(backend, Box::new(host_routes)).await else {
        return;
    };
    let t = app.tenant("basic").await;

    let me = app.get(&t, &t.access, "/api/whoami/").await.expect(200);
    assert_eq!(
        me,
        json!({"greeting": "hi", "tenant": t.slug, "user": "admin"})
    );
    app.call(Method::GET, "/api/whoami/", Some(&t.host), None, None)
        .await
        .expect_error(401, "unauthenticated");
    app.get(&t, "not.a.token", "/api/whoami/")
        .await
        .expect_error(401, "unauthenticated");

    // Option<Auth>: no header is None, a bad token is still refused.
    let anonymous = app
        .call(Method::GET, "/api/hello/", Some(&t.host), None, None)
        .await
        .expect(200);
    assert_eq!(anonymous, json!({"user": null}));
    let known = app.get(&t, &t.access, "/api/hello/").await.expect(200);
    assert_eq!(known, json!({"user": "admin"}));
    app.get(&t, "not.a.token", "/api/hello/")
        .await
        .expect_error(401, "unauthenticated");

    // Our body extractor and error shape on the host's routes.
    let echoed = app
        .post(&t, &t.access, "/api/echo/", json!({"a": 1}))
        .await
        .expect(200);
    assert_eq!(echoed, json!({"a": 1}));
    let raw = app
        .request(Method::POST, "/api/echo/", Some(&t.host), Some(&t.access))
        .header("content-type", "text/plain")
        .body("x");
    TestApp::send(raw)
        .await
        .expect_error(415, "unsupported_media_type");
    app.delete(&t, &t.access, "/api/whoami/")
        .await
        .expect_error(405, "method_not_allowed");
    // Our pagination with the host's state.
    let first = app
        .get(&t, &t.access, "/api/letters/?page_size=1")
        .await
        .expect(200);
    assert_eq!(first["count"], 2);
    assert_eq!(first["results"], json!(["h"]));
    assert!(
        first["next"]
            .as_str()
            .is_some_and(|n| n.ends_with("/api/letters/?page_size=1&page=2")),
        "{first}"
    );
    app.get(&t, &t.access, "/api/letters/?page=x")
        .await
        .expect_error(400, "invalid");
    app.get(&t, &t.access, "/api/boom/")
        .await
        .expect_error(500, "internal");
    // Ours still answer, and unknown paths are our 404.
    app.get(&t, &t.access, "/api/users/me/").await.expect(200);
    app.get(&t, &t.access, "/api/nothing-here/")
        .await
        .expect_error(404, "not_found");
    // The middleware runs on host routes: the request id comes back.
    let r = app.get(&t, &t.access, "/api/whoami/").await;
    assert!(r.headers.contains_key("x-request-id"), "{:?}", r.headers);
}
