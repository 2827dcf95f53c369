//! Garbage in, 4xx out: every endpoint gets random bytes, deep nesting,
//! huge numbers, wrong types, unknown enum values, wrong content types, odd
//! ids, odd queries and odd headers. Nothing may answer 5xx, every error
//! must be in our shape, and endpoints that read a body must refuse it.

use reqwest::Method;
use serde_json::{Value, json};
use testkit::server::{Backend, Resp, TestApp, unique};

use crate::ENDPOINTS;

fn takes_body(method: &str, path: &str) -> bool {
    match method {
        "PATCH" => true,
        "POST" => {
            !(path.ends_with("/mark_complete/")
                || path.ends_with("/suspend/")
                || path.ends_with("/reactivate/")
                || path.ends_with("/restore/")
                || path.ends_with("/report/"))
        }
        _ => false,
    }
}

/// Deterministic pseudo-random bytes (a linear congruential generator), so a
/// failure can be replayed.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

fn bodies(pid: i64) -> Vec<(&'static str, Vec<u8>)> {
    // Every other field is blank or malformed too, so no endpoint can accept it.
    let huge = br#"{"project": 1e999, "user_id": 99999999999999999999999999999, "assigned_to_id": -99999999999999999999999, "is_primary": 1e400, "title": "", "name": "", "username": "", "password": "", "email": "bad", "refresh": "", "plan": "", "hostname": "", "company_name": "", "schema_name": "", "domain_url": "", "admin_username": "", "admin_email": "", "admin_password": "", "old_password": 1e400, "new_password": ""}"#.to_vec();
    let wrong_types = json!({
        "name": 5, "title": [], "project": "x", "user_id": "x", "username": 1, "password": {},
        "refresh": 3, "plan": 4, "hostname": null, "email": 1, "schema_name": 1, "company_name": 1,
        "domain_url": [], "admin_username": 1, "admin_email": 1, "admin_password": 1,
        "status": 1, "priority": true, "role": 7, "is_active": "yes", "start_date": 5,
        "end_date": "x", "due_date": false, "old_password": 1, "new_password": 1,
        "description": 1, "department": [], "first_name": {}, "last_name": 1,
        "assigned_to_id": "me", "is_primary": "no", "subscription_plan": 1,
    });
    let unknown_enums = json!({
        "name": "x", "title": "x", "project": pid, "status": "bogus", "priority": "bogus",
        "role": "superadmin", "username": "zz", "email": "zz@example.com", "password": "longenough1",
        "user_id": -1, "plan": "bogus", "hostname": "bogus host", "refresh": "bogus",
        "company_name": "x", "schema_name": "x", "domain_url": "x", "admin_username": "x",
        "admin_email": "x", "admin_password": "x", "subscription_plan": "bogus",
        "old_password": "x", "new_password": "1", "is_active": null,
    });
    // Dates outside years 1 to 9999, in every date field, and every other
    // field blank or malformed.
    let out_of_range = json!({
        "name": "", "title": "", "project": pid, "user_id": -1, "username": "", "password": "",
        "email": "bad", "refresh": "", "plan": "", "hostname": "", "company_name": "",
        "schema_name": "", "domain_url": "", "admin_username": "", "admin_email": "",
        "admin_password": "", "old_password": "", "new_password": "",
        "start_date": "-5000-01-01", "end_date": "+10000-01-01",
        "due_date": "0001-01-01T00:00:00+01:00",
    });
    let mut deep_objects = "{\"a\":".repeat(50_000).into_bytes();
    deep_objects.extend_from_slice(b"1");
    vec![
        ("random bytes", noise(7, 512)),
        ("invalid utf-8", vec![0xff, 0xfe, b'{', 0xc3, 0x28, b'}']),
        ("deep arrays", "[".repeat(100_000).into_bytes()),
        ("deep objects", deep_objects),
        ("huge numbers", huge),
        ("wrong types", serde_json::to_vec(&wrong_types).unwrap_or_default()),
        ("unknown enums", serde_json::to_vec(&unknown_enums).unwrap_or_default()),
        ("out-of-range dates", serde_json::to_vec(&out_of_range).unwrap_or_default()),
        ("null", b"null".to_vec()),
        ("string", b"\"hello\"".to_vec()),
        ("array", b"[1, 2, 3]".to_vec()),
        ("number", b"12345678901234567890123456789".to_vec()),
        ("empty", Vec::new()),
        ("trailing garbage", b"{\"name\": \"x\"} {".to_vec()),
        ("nul bytes", b"{\"name\": \"a\\u0000b\", \"title\": \"\\u0000\", \"username\": \"\\u0000\", \"email\": \"\\u0000\"}".to_vec()),
        ("lone surrogate", br#"{"name": "\ud800", "title": "\udfff", "email": "\ud800", "username": "\udfff"}"#.to_vec()),
    ]
}

fn check(what: &str, r: Option<Resp>, must_refuse: bool) {
    let Some(r) = r else { return };
    let s = r.status.as_u16();
    assert!(s < 500, "{what}: got {s} {}", r.body);
    if must_refuse {
        assert!(
            (400..500).contains(&s),
            "{what}: expected 4xx, got {s} {}",
            r.body
        );
    }
    if s >= 400 {
        assert!(
            r.body["error"]["code"].is_string() && r.body["error"]["fields"].is_object(),
            "{what}: {s} not in our error shape: {}",
            r.body
        );
    }
}

async fn try_send(rb: reqwest::RequestBuilder) -> Option<Resp> {
    let r = rb.send().await.ok()?;
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.ok()?;
    Some(Resp {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    })
}

pub async fn garbage_never_5xx(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let t = app.tenant("basic").await;
    let victim = app.tenant("basic").await;
    let op = app.operator_token().await;
    let p = app
        .post(&t, &t.access, "/api/projects/", json!({"name": "P"}))
        .await
        .expect(201);
    let pid = p["id"].as_i64().unwrap_or_default();
    let task = app
        .post(
            &t,
            &t.access,
            "/api/tasks/",
            json!({"project": pid, "title": "T"}),
        )
        .await
        .expect(201);
    let tid = task["id"].as_i64().unwrap_or_default();
    // Deletions hit objects of their own so the rest keeps something to parse bodies against.
    let doomed_p = app
        .post(&t, &t.access, "/api/projects/", json!({"name": "doomed"}))
        .await
        .expect(201)["id"]
        .as_i64()
        .unwrap_or_default();
    let doomed_t = app
        .post(
            &t,
            &t.access,
            "/api/tasks/",
            json!({"project": pid, "title": "doomed"}),
        )
        .await
        .expect(201)["id"]
        .as_i64()
        .unwrap_or_default();

    let fill = |method: &str, path: &str| -> String {
        let (p, ta) = if method == "DELETE" {
            (doomed_p, doomed_t)
        } else {
            (pid, tid)
        };
        path.replace("{pid}", &p.to_string())
            .replace("{tid}", &ta.to_string())
            .replace("{uid}", &t.admin_id.to_string())
            .replace("{tenant}", &victim.id)
            .replace("{hostname}", &victim.domain)
            .replace("{jid}", &uuid::Uuid::now_v7().to_string())
    };
    let token_for = |path: &str| -> String {
        if path.starts_with("/api/platform/") {
            op.clone()
        } else {
            t.access.clone()
        }
    };

    for (method, template) in ENDPOINTS {
        let path = fill(method, template);
        let m = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
        let token = token_for(template);
        let body_endpoint = takes_body(method, template);
        for (name, body) in bodies(pid) {
            let rb = app
                .request(m.clone(), &path, Some(&t.host), Some(&token))
                .header("content-type", "application/json")
                .body(body);
            check(
                &format!("{method} {path} [{name}]"),
                try_send(rb).await,
                body_endpoint,
            );
        }
        for ct in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/jsonx"),
            Some("\u{7f}"),
            None,
        ] {
            let mut rb = app
                .request(m.clone(), &path, Some(&t.host), Some(&token))
                .body(r#"{"name": "x", "title": "x", "project": 1}"#);
            if let Some(ct) = ct {
                rb = rb.header("content-type", ct);
            }
            let r = try_send(rb).await;
            if body_endpoint && let Some(r) = &r {
                assert_eq!(
                    r.status.as_u16(),
                    415,
                    "{method} {path} [content-type {ct:?}]: {}",
                    r.body
                );
            }
            check(
                &format!("{method} {path} [content-type {ct:?}]"),
                r,
                body_endpoint,
            );
        }
        if body_endpoint {
            let big = vec![b' '; 1024 * 1024 + 1024];
            let rb = app
                .request(m.clone(), &path, Some(&t.host), Some(&token))
                .header("content-type", "application/json")
                .body(big);
            // The server may close the connection after answering 413.
            check(
                &format!("{method} {path} [oversized]"),
                try_send(rb).await,
                true,
            );
        }
        // Odd headers: garbage tokens and hosts never crash anything.
        for auth in [
            "Bearer",
            "Bearer ",
            "Bearer a.b.c",
            "Bearer \u{1}",
            "Token x",
            "Bearer eyJhbGciOiJub25lIn0.e30.",
        ] {
            let rb = app
                .request(m.clone(), &path, Some(&t.host), None)
                .header("authorization", auth)
                .header("content-type", "application/json")
                .body("{}");
            check(
                &format!("{method} {path} [authorization {auth:?}]"),
                try_send(rb).await,
                false,
            );
        }
        for host in [
            "",
            " ",
            "[::1]",
            "a".repeat(300).as_str(),
            "xn--zz.test",
            "acme.localhost:99999999",
        ] {
            let rb = app
                .request(m.clone(), &path, Some(host), Some(&token))
                .header("x-tenant", "../../etc/passwd")
                .header("content-type", "application/json")
                .body("{}");
            check(
                &format!("{method} {path} [host {host:?}]"),
                try_send(rb).await,
                false,
            );
        }
    }

    // Odd ids in paths, for every endpoint with an id.
    for (method, template) in ENDPOINTS.iter().filter(|(_, p)| p.contains('{')) {
        let m = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
        let token = token_for(template);
        for bad in [
            "abc",
            "-1",
            "0",
            "1.5",
            "99999999999999999999999",
            "%FF",
            "%00",
            "1e3",
            "%20",
            "😀",
        ] {
            let path = template
                .replace("{pid}", bad)
                .replace("{tid}", bad)
                .replace("{uid}", bad)
                .replace("{tenant}", bad)
                .replace("{hostname}", bad)
                .replace("{jid}", bad);
            let rb = app
                .request(m.clone(), &path, Some(&t.host), Some(&token))
                .header("content-type", "application/json")
                .body("{}");
            check(&format!("{method} {path}"), try_send(rb).await, true);
        }
    }

    // Odd query strings on every list.
    for path in [
        "/api/users/",
        "/api/projects/",
        "/api/tasks/",
        "/api/tasks/my_tasks/",
        "/api/platform/tenants/",
    ] {
        let token = token_for(path);
        let long = "x".repeat(5000);
        for q in [
            "page=-1",
            "page=abc",
            "page=0",
            "page=18446744073709551616",
            "page=1000001",
            "page_size=0",
            "page_size=101",
            "page_size=1e2",
            "status=bogus",
            "priority=%00",
            "assigned_to=me&assigned_to=x",
            "project=-5",
            "project=1e9",
            "ordering=-",
            "ordering=--id",
            "ordering=,,",
            "search=%FF%FE",
            "search=%25_%5C",
            &format!("search={long}"),
            "&&&==&=",
            "%",
            "page=%F0%9F%98%80",
        ] {
            let rb = app.request(
                Method::GET,
                &format!("{path}?{q}"),
                Some(&t.host),
                Some(&token),
            );
            check(&format!("GET {path}?{q}"), try_send(rb).await, false);
        }
    }

    // The tenant still works afterwards.
    app.get(&t, &t.access, &format!("/api/projects/{pid}/"))
        .await
        .expect(200);
    let _ = unique("done");
}
