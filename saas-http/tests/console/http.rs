//! The console over plain HTTP: what a browser would not let a test do.

use reqwest::StatusCode;
use saas_core::tenancy::{TenantId, TenantStatus};
use saas_http::HttpConfig;
use testkit::server::{Backend, PASSWORD, TestApp};

use crate::{Console, PLATFORM, audited, operator, start, superuser};

async fn tenant_status(app: &TestApp, id: &str) -> TenantStatus {
    let id = TenantId(id.parse().expect("a tenant id"));
    app.saas
        .store()
        .tenant(id)
        .await
        .expect("the catalog answers")
        .expect("the tenant exists")
        .status
}

/// A POST without the session's CSRF token (none, another session's, or
/// no session at all) is refused with 403 and changes nothing.
pub(crate) async fn forms_without_the_csrf_token_are_refused(backend: Backend) {
    let Some(app) = start(backend).await else {
        return;
    };
    let t = app.tenant("free").await;
    let name = superuser(&app).await;
    let mut c = Console::at(&app, PLATFORM);
    let form = c.get("/console/").await;
    assert_eq!(form.status, StatusCode::OK);
    let no_token = c
        .post(
            "/console/sign-in",
            &[("username", &name), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(
        no_token.status,
        StatusCode::FORBIDDEN,
        "sign-in needs the token"
    );
    let signed = c.sign_in(&name, PASSWORD).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let page = c.get(&format!("/console/tenants/{}", t.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    let token = page.csrf();
    let path = format!("/console/tenants/{}/suspend", t.id);

    let refused = c.post(&path, &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let wrong = c.post(&path, &[("csrf", &"0".repeat(token.len()))]).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let mut other = Console::at(&app, PLATFORM);
    let other_token = other.get("/console/").await.csrf();
    let crossed = c.post(&path, &[("csrf", &other_token)]).await;
    assert_eq!(
        crossed.status,
        StatusCode::FORBIDDEN,
        "another session's token"
    );
    let mut stranger = Console::at(&app, PLATFORM);
    let anonymous = stranger.post(&path, &[("csrf", &token)]).await;
    assert_eq!(anonymous.status, StatusCode::FORBIDDEN, "no session at all");
    assert_eq!(tenant_status(&app, &t.id).await, TenantStatus::Active);

    let done = c.post(&path, &[("csrf", &token)]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(tenant_status(&app, &t.id).await, TenantStatus::Suspended);
}

/// A deleted tenant is found by the status filter and its page shows when
/// it was deleted; the operator restores it there (audited, with a flash
/// message). The restore form is refused without its CSRF token, and a
/// tenant admin cannot restore: its session is at its own tenant only.
pub(crate) async fn deleted_tenants_are_found_and_restored(backend: Backend) {
    let Some(app) = start(backend).await else {
        return;
    };
    let mut c = operator(&app).await;
    let t = app.tenant("free").await;
    let other = app.tenant("free").await;
    let page = c.get(&format!("/console/tenants/{}", t.id)).await;
    assert!(
        !page.body.contains("id=\"restore\""),
        "a live tenant has no restore"
    );
    let deleted = c
        .post(
            &format!("/console/tenants/{}/delete", t.id),
            &[("csrf", &page.csrf()), ("confirm", &t.slug)],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert_eq!(tenant_status(&app, &t.id).await, TenantStatus::Deleted);

    let found = c
        .get(&format!("/console/tenants?status=deleted&q={}", t.slug))
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert!(found.body.contains(&t.slug), "{}", found.body);
    assert!(found.body.contains("1 tenants"), "{}", found.body);
    let active = c
        .get(&format!("/console/tenants?status=active&q={}", t.slug))
        .await;
    assert!(active.body.contains("0 tenants"), "{}", active.body);
    let page = c.get(&format!("/console/tenants/{}", t.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"deleted-at\""), "{}", page.body);
    assert!(page.body.contains("id=\"restore\""), "{}", page.body);
    let token = page.csrf();
    let path = format!("/console/tenants/{}/restore", t.id);

    let refused = c.post(&path, &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let mut admin = Console::at(&app, &other.host);
    assert_eq!(
        admin.sign_in("admin", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    let admin_token = admin.get("/console/users").await.csrf();
    let at_own_host = admin.post(&path, &[("csrf", &admin_token)]).await;
    assert_eq!(at_own_host.status, StatusCode::NOT_FOUND);
    let mut replay = Console::at(&app, PLATFORM);
    replay.cookie = admin.cookie.clone();
    let at_platform = replay.post(&path, &[("csrf", &admin_token)]).await;
    assert_eq!(at_platform.status, StatusCode::SEE_OTHER);
    assert_eq!(at_platform.location.as_deref(), Some("/console/"));
    assert_eq!(tenant_status(&app, &t.id).await, TenantStatus::Deleted);

    let done = c.post(&path, &[("csrf", &token)]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let back = format!("/console/tenants/{}", t.id);
    assert_eq!(done.location.as_deref(), Some(back.as_str()));
    assert_eq!(tenant_status(&app, &t.id).await, TenantStatus::Active);
    let page = c.get(&back).await;
    assert!(page.body.contains("Tenant restored."), "{}", page.body);
    assert!(!page.body.contains("id=\"deleted-at\""), "{}", page.body);
    let restores = audited(&app, "tenant.restore", &format!("tenant {}", t.slug)).await;
    assert_eq!(restores.len(), 1, "one restore, audited");
    assert!(
        restores[0].actor.starts_with("superuser:"),
        "{:?}",
        restores[0]
    );

    // Restoring a tenant that is not deleted is said, and changes nothing.
    let again = c.post(&path, &[("csrf", &page.csrf())]).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert!(c.get(&back).await.body.contains("Not done"));
    assert_eq!(tenant_status(&app, &t.id).await, TenantStatus::Active);
}

/// Signing in replaces the session id the visitor had (a planted id is
/// worthless afterwards); signing out ends the session.
pub(crate) async fn the_session_id_changes_at_sign_in_and_dies_at_sign_out(backend: Backend) {
    let Some(app) = start(backend).await else {
        return;
    };
    let name = superuser(&app).await;
    let mut c = Console::at(&app, PLATFORM);
    let form = c.get("/console/").await;
    let before = form
        .cookie
        .clone()
        .expect("the sign-in form starts a session");
    let csrf_before = form.csrf();
    let signed = c
        .post(
            "/console/sign-in",
            &[
                ("csrf", &csrf_before),
                ("username", &name),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER);
    let after = signed.cookie.clone().expect("a new cookie at sign-in");
    assert_ne!(before, after, "the session id changes at sign-in");
    assert_eq!(c.get("/console/tenants").await.status, StatusCode::OK);

    let mut planted = Console::at(&app, PLATFORM);
    planted.cookie = Some(before);
    let r = planted.get("/console/tenants").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "the old id opens nothing");
    assert_eq!(r.location.as_deref(), Some("/console/"));

    let page = c.get("/console/tenants").await;
    let out = c.post("/console/sign-out", &[("csrf", &page.csrf())]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let mut replay = Console::at(&app, PLATFORM);
    replay.cookie = Some(after);
    assert_eq!(
        replay.get("/console/tenants").await.status,
        StatusCode::SEE_OTHER,
        "a signed-out session is gone"
    );
}

/// A tenant admin's session opens its own tenant's console only: replayed
/// at another tenant's host or at the platform console it is sent to the
/// sign-in form. Members cannot sign in; a deactivated admin's session ends.
pub(crate) async fn tenant_sessions_stay_in_their_tenant(backend: Backend) {
    let Some(app) = start(backend).await else {
        return;
    };
    let a = app.tenant("free").await;
    let b = app.tenant("free").await;
    let (member_id, _) = app.user(&a, "mem", "member").await;
    let (manager_id, _) = app.user(&a, "boss", "manager").await;
    let mut c = Console::at(&app, &a.host);
    let signed = c.sign_in("admin", PASSWORD).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    assert_eq!(signed.location.as_deref(), Some("/console/dashboard"));
    let users = c.get("/console/users").await;
    assert_eq!(users.status, StatusCode::OK);
    assert!(users.body.contains("mem"));
    let cookie = c.cookie.clone();

    for (host, path) in [
        (b.host.as_str(), "/console/users"),
        (b.host.as_str(), "/console/dashboard"),
        (PLATFORM, "/console/tenants"),
        (PLATFORM, "/console/audit"),
    ] {
        let mut replay = Console::at(&app, host);
        replay.cookie = cookie.clone();
        let r = replay.get(path).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{host}{path}");
        assert_eq!(r.location.as_deref(), Some("/console/"));
        assert!(!r.body.contains("mem"));
    }
    // Platform pages at a tenant's host are not there for its admin.
    assert_eq!(
        c.get("/console/tenants").await.status,
        StatusCode::NOT_FOUND
    );

    let mut member = Console::at(&app, &a.host);
    assert_eq!(
        member.sign_in("mem", PASSWORD).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        member.get("/console/users").await.status,
        StatusCode::SEE_OTHER
    );
    let mut manager = Console::at(&app, &a.host);
    assert_eq!(
        manager.sign_in("boss", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    // A manager may not deactivate a manager: the API's rule, not the console's.
    let page = manager.get("/console/users").await;
    let r = manager
        .post(
            &format!("/console/users/{manager_id}"),
            &[("csrf", &page.csrf()), ("active", "0")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let shown = manager.get("/console/users").await;
    assert!(shown.body.contains("Not done"), "{}", shown.body);

    let page = c.get("/console/users").await;
    let r = c
        .post(
            &format!("/console/users/{member_id}"),
            &[("csrf", &page.csrf()), ("active", "0")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let shown = c.get("/console/users").await;
    assert!(shown.body.contains("User updated."), "{}", shown.body);
    let member = app
        .saas
        .store()
        .tenant(TenantId(a.id.parse().unwrap()))
        .await
        .unwrap()
        .unwrap();
    let store = app.saas.store().open(&member).await.unwrap();
    let u = store
        .user(saas_core::users::UserId(member_id))
        .await
        .unwrap()
        .unwrap();
    assert!(!u.is_active, "deactivated through the console");

    // The manager's session ends when it is deactivated (through the API).
    let patched = app
        .patch(
            &a,
            &a.access,
            &format!("/api/users/{manager_id}/"),
            serde_json::json!({"is_active": false}),
        )
        .await;
    patched.expect(200);
    assert_eq!(
        manager.get("/console/users").await.status,
        StatusCode::SEE_OTHER
    );
}

/// The session cookie is HttpOnly, SameSite=Strict, scoped to the console,
/// and Secure when the request came over HTTPS.
pub(crate) async fn cookies_are_http_only_strict_and_secure_over_https(backend: Backend) {
    let config = HttpConfig {
        trust_forwarded_proto: true,
        ..HttpConfig::default()
    };
    let Some(app) = TestApp::start_with(backend, config).await else {
        return;
    };
    let mut c = Console::at(&app, PLATFORM);
    let plain = c.get("/console/").await.set_cookie.expect("a cookie");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/console/"] {
        assert!(plain.contains(part), "{plain}");
    }
    assert!(!plain.contains("Secure"), "{plain}");
    let r = reqwest::Client::new()
        .get(app.url("/console/"))
        .header("host", PLATFORM)
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let secure = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(secure.contains("; Secure"), "{secure}");
    let css = r.text().await.unwrap();
    let href = css
        .split("href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a stylesheet link")
        .to_owned();
    let asset = reqwest::Client::new()
        .get(app.url(&href))
        .header("host", PLATFORM)
        .send()
        .await
        .unwrap();
    assert_eq!(asset.status(), 200);
    assert!(
        asset.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=31536000")
    );
    assert!(
        asset.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}

/// With PLATFORM_HOSTS set, only those hosts serve the platform console;
/// tenants keep theirs.
pub(crate) async fn platform_hosts_limit_the_platform_console(backend: Backend) {
    let config = HttpConfig {
        platform_hosts: vec!["admin.example.test".to_owned()],
        ..HttpConfig::default()
    };
    let Some(app) = TestApp::start_with(backend, config).await else {
        return;
    };
    let t = app.tenant("free").await;
    let mut other = Console::at(&app, "elsewhere.example.test");
    assert_eq!(other.get("/console/").await.status, StatusCode::NOT_FOUND);
    let mut admin = Console::at(&app, "admin.example.test");
    let page = admin.get("/console/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("superuser"));
    let mut tenant = Console::at(&app, &t.host);
    let page = tenant.get("/console/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("admin or manager"));
}

/// Sign-in attempts count against the API's per-username login throttle.
pub(crate) async fn sign_in_is_throttled_like_the_api(backend: Backend) {
    let config = HttpConfig {
        login_attempts: 3,
        login_address_rate: None,
        ..HttpConfig::default()
    };
    let Some(app) = TestApp::start_with(backend, config).await else {
        return;
    };
    let name = superuser(&app).await;
    let mut c = Console::at(&app, PLATFORM);
    for _ in 0..3 {
        let r = c.sign_in(&name, "wrong password here").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = c.sign_in(&name, PASSWORD).await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    assert!(r.set_cookie.is_none());
}

/// Bad query strings get a clear answer and never a 5xx: a bad filter on
/// the tasks page is said on the page, a bad sort, status, page or cursor
/// is a 400 page.
pub(crate) async fn bad_queries_get_clear_answers(backend: Backend) {
    let Some(app) = start(backend).await else {
        return;
    };
    let t = app.tenant("free").await;
    let mut op = operator(&app).await;
    for path in [
        "/console/tenants?sort=id;drop",
        "/console/tenants?status=gone",
        "/console/tenants?page=0",
        "/console/audit?before=x",
        "/console/audit?tenant=nope",
    ] {
        let r = op.get(path).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.body);
    }
    let long = format!("/console/tenants?q={}", "x".repeat(101));
    assert_eq!(op.get(&long).await.status, StatusCode::BAD_REQUEST);
    let missing = op.get(&format!("/console/tenants/{}", uuid_like())).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let mut admin = Console::at(&app, &t.host);
    assert_eq!(
        admin.sign_in("admin", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    let r = admin.get("/console/tasks?status=bogus&priority=high").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("class=\"error\""), "{}", r.body);
    let r = admin
        .get("/console/tasks?status=todo&ordering=-due_date&search=x")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("0 tasks"), "{}", r.body);
    let page = admin.get("/console/users").await;
    let r = admin
        .post(
            "/console/users",
            &[
                ("csrf", &page.csrf()),
                ("username", "bad name"),
                ("email", "x"),
                ("password", "short"),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let shown = admin.get("/console/users").await;
    assert!(shown.body.contains("Not done"), "{}", shown.body);
    assert!(!shown.body.contains("bad name"));
}

fn uuid_like() -> String {
    "0190f3a2-0000-7000-8000-000000000000".to_owned()
}
