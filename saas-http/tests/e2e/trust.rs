//! What black-box probes of the HTTP edge found: input the seed accepts
//! and we refused, DRF's error bodies, unlimited registration, unbounded
//! connections and login spraying, and tenants that could be enumerated.

use std::time::{Duration, Instant};

use reqwest::Method;
use saas_http::{ErrorFormat, HttpConfig, Rate, ServerLimits};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use testkit::app;
use testkit::server::{Backend, PASSWORD, Resp, TenantCtx, TestApp, unique};

/// Config with the registration limit off (tests register from one address).
fn config() -> HttpConfig {
    HttpConfig {
        registration_rate: None,
        ..HttpConfig::default()
    }
}

fn registration(plan: &str) -> Value {
    json!({
        "company_name": "Acme Corp",
        "schema_name": unique("t_"),
        "domain_url": format!("{}.example.test", unique("d")),
        "admin_username": "admin",
        "admin_email": "admin@acme.com",
        "admin_password": PASSWORD,
        "subscription_plan": plan,
    })
}

/// Dates, times and ids in every spelling DRF reads, stored as the same
/// instant on every backend; and what DRF refuses, refused with a 400 —
/// years outside 1 to 9999 included.
pub async fn dates_and_ids_as_drf_reads_them(backend: Backend) {
    let app = app!(backend, config());
    let t = app.tenant("premium").await;
    let pid = app
        .post(&t, &t.access, "/api/projects/", json!({"name": "P"}))
        .await
        .expect(201)["id"]
        .as_i64()
        .expect("id");
    for (spelling, stored) in [
        ("2026-12-11", "2026-12-11T00:00:00Z"),
        ("2024-12-31T23:59:59Z", "2024-12-31T23:59:59Z"),
        ("2024-12-31 23:59", "2024-12-31T23:59:00Z"),
        (
            "2024-12-31T23:59:59.123456+05:30",
            "2024-12-31T18:29:59.123456Z",
        ),
        ("2024-12-31T23:59:59-05:30", "2025-01-01T05:29:59Z"),
        ("2024-12-31T23:59:59.5", "2024-12-31T23:59:59.500Z"),
        ("20241231", "2024-12-31T00:00:00Z"),
        ("20241231T235959Z", "2024-12-31T23:59:59Z"),
        ("2024-W01-1T10:00", "2024-01-01T10:00:00Z"),
        ("2024-1-5 3:4", "2024-01-05T03:04:00Z"),
        ("0001-01-01T00:00:00", "0001-01-01T00:00:00Z"),
        ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"),
    ] {
        let task = app
            .post(
                &t,
                &t.access,
                "/api/tasks/",
                json!({"project": pid, "title": "x", "due_date": spelling}),
            )
            .await
            .expect(201);
        assert_eq!(task["due_date"], stored, "{spelling}");
        let tid = task["id"].as_i64().expect("id");
        let read = app
            .get(&t, &t.access, &format!("/api/tasks/{tid}/"))
            .await
            .expect(200);
        assert_eq!(read["due_date"], stored, "{spelling} read back");
        let patched = app
            .patch(
                &t,
                &t.access,
                &format!("/api/tasks/{tid}/"),
                json!({"due_date": spelling}),
            )
            .await
            .expect(200);
        assert_eq!(patched["due_date"], stored, "{spelling} patched");
    }
    let before = app.get(&t, &t.access, "/api/tasks/").await.expect(200)["count"].clone();
    let some_task = app
        .post(
            &t,
            &t.access,
            "/api/tasks/",
            json!({"project": pid, "title": "y"}),
        )
        .await
        .expect(201)["id"]
        .as_i64()
        .expect("id");
    for spelling in [
        json!("tomorrow"),
        json!(""),
        json!("2024-12-31T24:00:00"),
        json!("2024-02-30"),
        json!("0000-01-01"),
        json!("10000-01-01"),
        json!("-5000-01-01"),
        json!("+10000-01-01T00:00:00Z"),
        json!("0001-01-01T00:00:00+01:00"),
        json!("9999-12-31T23:59:59-00:01"),
        json!(20241231),
    ] {
        let e = app
            .post(
                &t,
                &t.access,
                "/api/tasks/",
                json!({"project": pid, "title": "x", "due_date": spelling}),
            )
            .await
            .expect_error(400, "invalid");
        assert!(
            e["error"]["fields"]["due_date"].is_string(),
            "{spelling}: {e}"
        );
        let e = app
            .patch(
                &t,
                &t.access,
                &format!("/api/tasks/{some_task}/"),
                json!({"due_date": spelling}),
            )
            .await
            .expect_error(400, "invalid");
        assert!(
            e["error"]["fields"]["due_date"].is_string(),
            "{spelling}: {e}"
        );
    }
    let after = app.get(&t, &t.access, "/api/tasks/").await.expect(200)["count"].clone();
    assert_eq!(
        after.as_u64(),
        before.as_u64().map(|n| n + 1),
        "only `y` was created"
    );

    // Project dates: DRF's DateField.
    for (spelling, stored) in [
        ("2024-01-01", "2024-01-01"),
        ("20240101", "2024-01-01"),
        ("2024-1-5", "2024-01-05"),
        ("2024-W01-1", "2024-01-01"),
        ("2024W011", "2024-01-01"),
        ("0001-01-01", "0001-01-01"),
        ("9999-12-31", "9999-12-31"),
    ] {
        let p = app
            .post(
                &t,
                &t.access,
                "/api/projects/",
                json!({"name": "dated", "start_date": spelling, "end_date": spelling}),
            )
            .await
            .expect(201);
        assert_eq!(p["start_date"], stored, "{spelling}");
        assert_eq!(p["end_date"], stored, "{spelling}");
        let id = p["id"].as_i64().expect("id");
        app.get(&t, &t.access, &format!("/api/projects/{id}/"))
            .await
            .expect(200);
        app.delete(&t, &t.access, &format!("/api/projects/{id}/"))
            .await;
    }
    for spelling in [
        "2024-01-01T00:00:00Z",
        "-5000-01-01",
        "+2024-01-01",
        "0000-01-01",
        "10000-01-01",
        "2024-13-01",
        "2024-12-31 ",
    ] {
        for field in ["start_date", "end_date"] {
            let e = app
                .post(
                    &t,
                    &t.access,
                    "/api/projects/",
                    json!({"name": "x", field: spelling}),
                )
                .await
                .expect_error(400, "invalid");
            assert!(e["error"]["fields"][field].is_string(), "{spelling}: {e}");
            let e = app
                .patch(
                    &t,
                    &t.access,
                    &format!("/api/projects/{pid}/"),
                    json!({field: spelling}),
                )
                .await
                .expect_error(400, "invalid");
            assert!(e["error"]["fields"][field].is_string(), "{spelling}: {e}");
        }
    }
    let projects = app.get(&t, &t.access, "/api/projects/").await.expect(200);
    assert_eq!(projects["count"], 1, "nothing else was created");

    // Ids as strings and integral numbers, as DRF's IntegerField reads them.
    let (member, _) = app.user(&t, "member1", "member").await;
    app.post(
        &t,
        &t.access,
        &format!("/api/projects/{pid}/add_member/"),
        json!({"user_id": format!(" {member} ")}),
    )
    .await
    .expect(200);
    let task = app
        .post(
            &t,
            &t.access,
            "/api/tasks/",
            json!({"project": pid.to_string(), "title": "ids", "assigned_to_id": format!("{member}.0")}),
        )
        .await
        .expect(201);
    assert_eq!(task["project"], pid);
    assert_eq!(task["assigned_to_id"], member);
    let task = app
        .post(
            &t,
            &t.access,
            "/api/tasks/",
            json!({"project": pid as f64, "title": "float id"}),
        )
        .await
        .expect(201);
    assert_eq!(task["project"], pid);
    for bad in [
        json!("one"),
        json!("1.5"),
        json!(1.5),
        json!(true),
        json!(""),
    ] {
        let e = app
            .post(
                &t,
                &t.access,
                "/api/tasks/",
                json!({"project": bad, "title": "x"}),
            )
            .await
            .expect_error(400, "invalid");
        assert!(e["error"]["fields"]["project"].is_string(), "{bad}: {e}");
    }
}

/// One exchange as raw as reqwest gives it: status, headers less the
/// request id and the date, and the body's bytes.
async fn exchange(rb: reqwest::RequestBuilder) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let r = rb.send().await.expect("request sent");
    let status = r.status().as_u16();
    let mut headers: Vec<(String, String)> = r
        .headers()
        .iter()
        .filter(|(k, _)| *k != "x-request-id" && *k != "date")
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_owned()))
        .collect();
    headers.sort();
    let body = r.bytes().await.expect("body").to_vec();
    (status, headers, body)
}

/// Every endpoint that needs a token answers an unknown or suspended
/// tenant exactly as a known one answers a missing or bad token; the token
/// endpoints answer as bad credentials do. Public endpoints are unchanged.
pub async fn unknown_tenants_answer_like_bad_tokens(backend: Backend) {
    for format in [ErrorFormat::Native, ErrorFormat::Drf] {
        let app = app!(
            backend,
            HttpConfig {
                x_tenant: true,
                error_format: format,
                ..config()
            }
        );
        let known = app.tenant("free").await;
        let other = app.tenant("free").await;
        let suspended = app.tenant("free").await;
        let op = app.operator_token().await;
        app.call(
            Method::POST,
            &format!("/api/platform/tenants/{}/suspend/", suspended.id),
            Some("admin.example"),
            Some(&op),
            None,
        )
        .await
        .expect(200);
        let port = app.addr.port();
        let nowhere = format!("{}.example.test:{port}", unique("nobody"));
        let hosts = [nowhere.as_str(), suspended.host.as_str(), "a..b", ""];

        for (method, template) in crate::ENDPOINTS {
            if template.starts_with("/api/platform/")
                || [
                    "/api/register/",
                    "/api/health/",
                    "/api/openapi.json",
                    "/healthz",
                    "/readyz",
                ]
                .contains(template)
                || template.starts_with("/api/token/")
            {
                continue;
            }
            let path = template
                .replace("{pid}", "1")
                .replace("{tid}", "1")
                .replace("{uid}", "1")
                .replace("{jid}", &uuid::Uuid::now_v7().to_string());
            let m = Method::from_bytes(method.as_bytes()).expect("method");
            for token in [
                None,
                Some("garbage"),
                Some(other.access.as_str()),
                Some(suspended.access.as_str()),
            ] {
                let ask = |host: &str| {
                    let mut rb = app
                        .request(m.clone(), &path, Some(host), token)
                        .header("content-type", "application/json")
                        .body("{}");
                    if host.is_empty() {
                        rb = rb.header("x-tenant", "no_such_tenant");
                    }
                    rb
                };
                let expected = exchange(ask(&known.host)).await;
                assert_eq!(
                    expected.0, 401,
                    "{method} {path} {token:?} at a known tenant"
                );
                for host in hosts {
                    let got = exchange(ask(host)).await;
                    assert_eq!(
                        got,
                        expected,
                        "{method} {path} with {token:?} at {host:?} ({format:?}): {}",
                        String::from_utf8_lossy(&got.2)
                    );
                }
            }
        }

        // The token endpoints: bad credentials, known or not.
        for body in [
            json!({"username": "admin", "password": "wrong-password"}),
            json!({"username": "nobody", "password": "wrong-password"}),
        ] {
            let ask = |host: &str| {
                app.request(Method::POST, "/api/token/", Some(host), None)
                    .json(&body)
            };
            let expected = exchange(ask(&known.host)).await;
            assert_eq!(expected.0, 401);
            for host in hosts {
                assert_eq!(exchange(ask(host)).await, expected, "login at {host:?}");
            }
        }
        for refresh in [
            "garbage",
            other.refresh.as_str(),
            suspended.refresh.as_str(),
        ] {
            let ask = |host: &str| {
                app.request(Method::POST, "/api/token/refresh/", Some(host), None)
                    .json(&json!({ "refresh": refresh }))
            };
            let expected = exchange(ask(&known.host)).await;
            assert_eq!(expected.0, 401);
            for host in hosts {
                assert_eq!(exchange(ask(host)).await, expected, "refresh at {host:?}");
            }
        }
        // Throttling looks the same too: 10 attempts per username and
        // tenant (or unknown name) a minute, then 429.
        for host in [known.host.as_str(), nowhere.as_str()] {
            let mut last = 0;
            for _ in 0..11 {
                let r = app
                    .call(
                        Method::POST,
                        "/api/token/",
                        Some(host),
                        None,
                        Some(json!({"username": "sprayed", "password": "wrong-password"})),
                    )
                    .await;
                last = r.status.as_u16();
            }
            assert_eq!(last, 429, "throttled at {host}");
        }
        // Public endpoints are served on any host, as before.
        app.call(Method::GET, "/api/health/", Some(&nowhere), None, None)
            .await
            .expect(200);
        app.call(
            Method::POST,
            "/api/register/",
            Some(&nowhere),
            None,
            Some(registration("free")),
        )
        .await
        .expect(201);
        // A known tenant with a good token still works.
        app.get(&known, &known.access, "/api/users/me/")
            .await
            .expect(200);
    }
}

/// A DRF body: exactly these keys.
#[track_caller]
fn keys(body: &Value, expected: &[&str]) {
    let mut got: Vec<&str> = body
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {body}"))
        .keys()
        .map(String::as_str)
        .collect();
    got.sort_unstable();
    let mut expected = expected.to_vec();
    expected.sort_unstable();
    assert_eq!(got, expected, "{body}");
}

/// A DRF field error: a list of messages.
#[track_caller]
fn field_error(body: &Value, field: &str) {
    assert!(
        body[field]
            .as_array()
            .is_some_and(|m| !m.is_empty() && m.iter().all(Value::is_string)),
        "{field}: {body}"
    );
}

/// `body` as is, with `content_type`, to `POST /api/projects/` as the admin.
async fn post_raw(app: &TestApp, t: &TenantCtx, content_type: &str, body: &'static str) -> Resp {
    TestApp::send(
        app.request(
            Method::POST,
            "/api/projects/",
            Some(&t.host),
            Some(&t.access),
        )
        .header("content-type", content_type)
        .body(body),
    )
    .await
}

/// Each error case, in our shape and in DRF's (`API_ERROR_FORMAT=drf`),
/// with DRF's statuses as the seed answers them.
pub async fn error_bodies_in_both_formats(backend: Backend) {
    for format in [ErrorFormat::Native, ErrorFormat::Drf] {
        let drf = format == ErrorFormat::Drf;
        let app = app!(
            backend,
            HttpConfig {
                error_format: format,
                login_attempts: 3,
                ..config()
            }
        );
        let t = app.tenant("free").await;
        let (_, viewer) = app.user(&t, "viewer1", "viewer").await;
        let check = |r: Resp, status: u16, code: &str| -> Value {
            if drf {
                r.expect(status)
            } else {
                r.expect_error(status, code)
            }
        };

        // Validation: 400 with the field named.
        let b = check(
            app.post(&t, &t.access, "/api/projects/", json!({"name": ""}))
                .await,
            400,
            "invalid",
        );
        if drf {
            keys(&b, &["name"]);
            field_error(&b, "name");
        }
        let b = check(
            app.call(
                Method::POST,
                "/api/register/",
                Some("x.test"),
                None,
                Some(json!({"company_name": "x"})),
            )
            .await,
            400,
            "invalid",
        );
        if drf {
            for f in b.as_object().expect("object").keys() {
                field_error(&b, f);
            }
        }
        // Malformed JSON.
        let r = post_raw(&app, &t, "application/json", "{\"name\":").await;
        let b = check(r, 400, "malformed_json");
        if drf {
            keys(&b, &["detail"]);
            assert!(
                b["detail"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("JSON parse error"),
                "{b}"
            );
        }
        // Duplicates: DRF says 400 with the field, not 409.
        let r = app
            .post(
                &t,
                &t.access,
                "/api/users/register/",
                json!({"username": "ADMIN", "email": "a@acme.com", "password": PASSWORD}),
            )
            .await;
        if drf {
            let b = r.expect(400);
            keys(&b, &["username"]);
            field_error(&b, "username");
        } else {
            r.expect_error(409, "conflict");
        }
        let mut dup = registration("free");
        dup["schema_name"] = json!(t.slug);
        let r = app
            .call(
                Method::POST,
                "/api/register/",
                Some("x.test"),
                None,
                Some(dup),
            )
            .await;
        if drf {
            let b = r.expect(400);
            keys(&b, &["schema_name"]);
            field_error(&b, "schema_name");
        } else {
            r.expect_error(409, "conflict");
        }

        // 401: missing, invalid, bad credentials, bad refresh.
        let r = app
            .call(Method::GET, "/api/users/me/", Some(&t.host), None, None)
            .await;
        assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"api\"");
        let b = check(r, 401, "unauthenticated");
        if drf {
            assert_eq!(
                b,
                json!({"detail": "Authentication credentials were not provided."})
            );
        }
        let b = check(
            app.get(&t, "garbage", "/api/users/me/").await,
            401,
            "unauthenticated",
        );
        if drf {
            assert_eq!(
                b,
                json!({"detail": "Given token not valid for any token type", "code": "token_not_valid"})
            );
        }
        let b = check(
            app.call(
                Method::POST,
                "/api/token/",
                Some(&t.host),
                None,
                Some(json!({"username": "admin", "password": "wrong-password"})),
            )
            .await,
            401,
            "unauthenticated",
        );
        if drf {
            assert_eq!(
                b,
                json!({"detail": "No active account found with the given credentials"})
            );
        }
        let b = check(
            app.call(
                Method::POST,
                "/api/token/refresh/",
                Some(&t.host),
                None,
                Some(json!({"refresh": "garbage"})),
            )
            .await,
            401,
            "unauthenticated",
        );
        if drf {
            assert_eq!(
                b,
                json!({"detail": "Token is invalid or expired", "code": "token_not_valid"})
            );
        }

        // 403: role, then plan limit (the seed's `plan_limit_reached`).
        let b = check(
            app.post(&t, &viewer, "/api/projects/", json!({"name": "v"}))
                .await,
            403,
            "forbidden",
        );
        if drf {
            keys(&b, &["detail"]);
        }
        for i in 0..3 {
            app.post(
                &t,
                &t.access,
                "/api/projects/",
                json!({"name": format!("p{i}")}),
            )
            .await
            .expect(201);
        }
        let b = check(
            app.post(&t, &t.access, "/api/projects/", json!({"name": "p3"}))
                .await,
            403,
            "plan_limit_exceeded",
        );
        if drf {
            keys(&b, &["detail", "code"]);
            assert_eq!(b["code"], "plan_limit_reached");
            assert!(b["detail"].as_str().unwrap_or("").contains("free"), "{b}");
        }

        // 404: an object, a path.
        for path in ["/api/projects/999999/", "/api/nothing/here/"] {
            let b = check(app.get(&t, &t.access, path).await, 404, "not_found");
            if drf {
                assert_eq!(b, json!({"detail": "Not found."}));
            }
        }
        // 405, with Allow.
        let r = app.delete(&t, &t.access, "/api/users/me/").await;
        assert!(r.headers.contains_key("allow"));
        let b = check(r, 405, "method_not_allowed");
        if drf {
            assert_eq!(b, json!({"detail": "Method \"DELETE\" not allowed."}));
        }
        // 415.
        let r = post_raw(&app, &t, "text/plain", "{\"name\": \"x\"}").await;
        let b = check(r, 415, "unsupported_media_type");
        if drf {
            assert_eq!(
                b,
                json!({"detail": "Unsupported media type \"text/plain\" in request."})
            );
        }
        // 429, with Retry-After (3 attempts per username; one was the helper's login).
        let mut last = None;
        for _ in 0..3 {
            last = Some(
                app.call(
                    Method::POST,
                    "/api/token/",
                    Some(&t.host),
                    None,
                    Some(json!({"username": "viewer1", "password": "wrong-password"})),
                )
                .await,
            );
        }
        let r = last.expect("attempts made");
        let retry: u64 = r.headers["retry-after"]
            .to_str()
            .unwrap_or("")
            .parse()
            .unwrap_or(0);
        assert!((1..=60).contains(&retry), "{retry}");
        let b = check(r, 429, "throttled");
        if drf {
            keys(&b, &["detail"]);
            let detail = b["detail"].as_str().unwrap_or("");
            assert!(
                detail.starts_with("Request was throttled. Expected available in ")
                    && detail.ends_with(" seconds."),
                "{detail}"
            );
        }
    }
}

/// Registration is rate-limited per client address (every attempt
/// counts), restricted to the self-service plans, and can be closed; the
/// platform API still creates tenants on any plan.
pub async fn registration_is_limited_and_can_be_closed(backend: Backend) {
    assert_eq!(
        HttpConfig::default().registration_rate,
        Some(Rate::new(10, Duration::from_secs(3600))),
        "10 an hour unless told otherwise"
    );
    let limited = HttpConfig {
        registration_rate: Some(Rate::new(3, Duration::from_secs(3600))),
        self_service_plans: Some(vec!["free".into(), "basic".into()]),
        ..HttpConfig::default()
    };
    let app = app!(backend, limited.clone());
    let register = |body: Value, forwarded: Option<&'static str>| {
        let app = &app;
        async move {
            let mut rb = app
                .request(Method::POST, "/api/register/", Some("x.test"), None)
                .json(&body);
            if let Some(f) = forwarded {
                rb = rb.header("x-forwarded-for", f);
            }
            TestApp::send(rb).await
        }
    };
    register(json!({"company_name": "x"}), None)
        .await
        .expect_error(400, "invalid");
    let e = register(registration("enterprise"), None)
        .await
        .expect_error(400, "invalid");
    assert!(e["error"]["fields"]["subscription_plan"].is_string(), "{e}");
    register(registration("basic"), None).await.expect(201);
    let r = register(registration("free"), None).await;
    assert!(r.headers.contains_key("retry-after"));
    r.expect_error(429, "throttled");
    // X-Forwarded-For is not believed unless the operator says so.
    register(registration("free"), Some("203.0.113.9"))
        .await
        .expect_error(429, "throttled");

    // Behind a trusted proxy, the address it appends is the client's.
    let app2 = app!(
        backend,
        HttpConfig {
            trust_forwarded_for: true,
            ..limited.clone()
        }
    );
    let register2 = |forwarded: &'static str| {
        let app = &app2;
        async move {
            TestApp::send(
                app.request(Method::POST, "/api/register/", Some("x.test"), None)
                    .header("x-forwarded-for", forwarded)
                    .json(&registration("free")),
            )
            .await
        }
    };
    for _ in 0..3 {
        register2("198.51.100.1, 203.0.113.7").await.expect(201);
    }
    register2("198.51.100.2, 203.0.113.7")
        .await
        .expect_error(429, "throttled");
    register2("203.0.113.8").await.expect(201);

    // Closed: the public endpoint refuses; operators still create tenants.
    let closed = app!(
        backend,
        HttpConfig {
            registration_open: false,
            ..config()
        }
    );
    closed
        .call(
            Method::POST,
            "/api/register/",
            Some("x.test"),
            None,
            Some(registration("free")),
        )
        .await
        .expect_error(403, "registration_closed");
    let op = closed.operator_token().await;
    let body = registration("enterprise");
    let created = closed
        .call(
            Method::POST,
            "/api/platform/tenants/",
            Some("admin.example"),
            Some(&op),
            Some(body.clone()),
        )
        .await
        .expect(201);
    assert_eq!(created["subscription_plan"], "enterprise");
    let host = format!(
        "{}:{}",
        body["domain_url"].as_str().expect("domain"),
        closed.addr.port()
    );
    closed
        .call(
            Method::POST,
            "/api/token/",
            Some(&host),
            None,
            Some(json!({"username": "admin", "password": PASSWORD})),
        )
        .await
        .expect(200);
    closed
        .call(
            Method::POST,
            "/api/platform/tenants/",
            Some("admin.example"),
            None,
            Some(registration("free")),
        )
        .await
        .expect_error(401, "unauthenticated");
}

/// Reads until the server closes the connection, or gives up after `limit`.
async fn closed_within(stream: &mut tokio::net::TcpStream, limit: Duration) -> Option<String> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(limit, stream.read_to_end(&mut out)).await;
    read.ok()
        .map(|_| String::from_utf8_lossy(&out).into_owned())
}

/// Slow clients are cut off, connections past the cap get 503, and
/// logins are throttled per client address across usernames and tenants.
pub async fn server_limits(backend: Backend) {
    let limits = ServerLimits {
        header_read_timeout: Duration::from_secs(1),
        max_connections: 4,
        ..ServerLimits::default()
    };
    let config = HttpConfig {
        login_address_rate: Some(Rate::new(5, Duration::from_secs(60))),
        ..config()
    };
    let app = match TestApp::start_limits(backend, config, limits).await {
        Some(app) => app,
        None => return,
    };
    // A client that never finishes its headers is disconnected.
    let mut slow = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    slow.write_all(b"GET /api/health/ HTTP/1.1\r\nHost: x.test\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let cut = closed_within(&mut slow, Duration::from_secs(10)).await;
    assert!(cut.is_some(), "a slow client held its connection for 10 s");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Four connections are the cap: the fifth is answered 503.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = tokio::net::TcpStream::connect(app.addr)
            .await
            .expect("connect");
        s.write_all(b"GET /api/health/ HTTP/1.1\r\nHost: x.test\r\n\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.expect("read");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(s);
    }
    let over = crate::raw_http(
        app.addr,
        b"GET /api/health/ HTTP/1.1\r\nHost: x.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(over.starts_with("HTTP/1.1 503"), "{over}");
    assert!(over.contains("\"overloaded\""), "{over}");
    assert!(over.to_ascii_lowercase().contains("retry-after"), "{over}");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app
            .call(Method::GET, "/api/health/", Some("x.test"), None, None)
            .await;
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "connections were not released");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Password spraying: 5 attempts per address a minute, whatever the username.
    let t = app.tenant("free").await;
    let t2 = app.tenant("free").await;
    let login = |t: &TenantCtx, user: String| {
        let app = &app;
        let host = t.host.clone();
        async move {
            app.call(
                Method::POST,
                "/api/token/",
                Some(&host),
                None,
                Some(json!({"username": user, "password": "wrong-password"})),
            )
            .await
        }
    };
    // The two helper logins used two attempts of this address.
    for i in 0..3 {
        login(&t, format!("user{i}"))
            .await
            .expect_error(401, "unauthenticated");
    }
    login(&t, "user9".into())
        .await
        .expect_error(429, "throttled");
    login(&t2, "admin".into())
        .await
        .expect_error(429, "throttled");
}
