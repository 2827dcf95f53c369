//! The end-to-end cases, each a function of the backend.

use std::time::Duration;

use reqwest::Method;
use saas_http::{CorsOrigins, HttpConfig};
use serde_json::{Value, json};
use testkit::app;
use testkit::server::{Backend, PASSWORD, TestApp, unique};

fn ids(list: &Value) -> Vec<i64> {
    list["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|x| x["id"].as_i64().expect("id"))
        .collect()
}

/// The seed README's whole flow, as a Django client walks it.
pub async fn seed_flow(backend: Backend) {
    let app = app!(backend);
    let slug = unique("t_");
    let domain = format!("{}.example.test", unique("acme"));
    let reg = app
        .call(
            Method::POST,
            "/api/register/",
            Some("localhost:8000"),
            None,
            Some(json!({
                "company_name": "Acme Corp",
                "schema_name": slug,
                "domain_url": domain,
                "admin_username": "admin",
                "admin_email": "admin@acme.com",
                "admin_password": PASSWORD,
                "subscription_plan": "basic",
            })),
        )
        .await
        .expect(201);
    assert_eq!(reg["schema_name"], slug.as_str());
    assert_eq!(reg["domain_url"], domain.as_str());
    assert_eq!(reg["subscription_plan"], "basic");
    assert_eq!(reg["admin"]["username"], "admin");
    assert_eq!(reg["admin"]["role"], "admin");
    assert!(reg["admin"].get("password").is_none());

    let health = app
        .call(
            Method::GET,
            "/api/health/",
            Some("whatever.test"),
            None,
            None,
        )
        .await
        .expect(200);
    assert_eq!(health["status"], "healthy");

    let host = format!("{domain}:{}", app.addr.port());
    let tokens = app
        .call(
            Method::POST,
            "/api/token/",
            Some(&host),
            None,
            Some(json!({"username": "admin", "password": PASSWORD})),
        )
        .await
        .expect(200);
    let access = tokens["access"].as_str().unwrap().to_owned();
    assert!(tokens["refresh"].is_string());
    let t = testkit::server::TenantCtx {
        id: reg["id"].as_str().unwrap().to_owned(),
        slug: slug.clone(),
        domain: domain.clone(),
        host: host.clone(),
        admin_id: reg["admin"]["id"].as_i64().unwrap(),
        access: access.clone(),
        refresh: tokens["refresh"].as_str().unwrap().to_owned(),
    };

    // Users.
    let me = app.get(&t, &access, "/api/users/me/").await.expect(200);
    assert_eq!(me["username"], "admin");
    assert_eq!(me["is_owner"], true);
    assert!(me["last_login"].is_string(), "login recorded: {me}");
    let john = app
        .post(
            &t,
            &access,
            "/api/users/register/",
            json!({
                "username": "john", "email": "john@example.com", "password": "password123",
                "first_name": "John", "last_name": "Doe", "role": "member", "department": "Engineering",
            }),
        )
        .await
        .expect(201);
    assert_eq!(john["department"], "Engineering");
    assert_eq!(john["role"], "member");
    let john_id = john["id"].as_i64().unwrap();
    let users = app.get(&t, &access, "/api/users/").await.expect(200);
    assert_eq!(users["count"], 2);
    assert_eq!(ids(&users), vec![t.admin_id, john_id]);
    assert!(users["next"].is_null() && users["previous"].is_null());
    let one = app
        .get(&t, &access, &format!("/api/users/{john_id}/"))
        .await
        .expect(200);
    assert_eq!(one["first_name"], "John");
    let changed = app
        .patch(
            &t,
            &access,
            &format!("/api/users/{john_id}/"),
            json!({"department": "Research"}),
        )
        .await
        .expect(200);
    assert_eq!(changed["department"], "Research");

    // Projects.
    let project = app
        .post(
            &t,
            &access,
            "/api/projects/",
            json!({"name": "New Project", "description": "Project description", "status": "active", "start_date": "2024-01-01"}),
        )
        .await
        .expect(201);
    let pid = project["id"].as_i64().unwrap();
    assert_eq!(project["status"], "active");
    assert_eq!(project["start_date"], "2024-01-01");
    assert_eq!(project["owner"]["id"], t.admin_id);
    assert_eq!(project["members"], json!([]));
    let got = app
        .get(&t, &access, &format!("/api/projects/{pid}/"))
        .await
        .expect(200);
    assert_eq!(got["name"], "New Project");
    let patched = app
        .patch(
            &t,
            &access,
            &format!("/api/projects/{pid}/"),
            json!({"status": "completed"}),
        )
        .await
        .expect(200);
    assert_eq!(patched["status"], "completed");
    assert_eq!(patched["name"], "New Project");
    app.patch(
        &t,
        &access,
        &format!("/api/projects/{pid}/"),
        json!({"status": "active"}),
    )
    .await
    .expect(200);
    let with_member = app
        .post(
            &t,
            &access,
            &format!("/api/projects/{pid}/add_member/"),
            json!({"user_id": john_id}),
        )
        .await
        .expect(200);
    assert_eq!(with_member["members"][0]["id"], john_id);
    assert_eq!(with_member["members"][0]["username"], "john");
    let list = app.get(&t, &access, "/api/projects/").await.expect(200);
    assert_eq!(ids(&list), vec![pid]);

    // Tasks.
    let task = app
        .post(
            &t,
            &access,
            "/api/tasks/",
            json!({
                "project": pid, "title": "Implement feature", "description": "Task description",
                "priority": "high", "status": "todo", "assigned_to_id": john_id,
                "due_date": "2099-12-31T23:59:59Z",
            }),
        )
        .await
        .expect(201);
    let tid = task["id"].as_i64().unwrap();
    assert_eq!(task["project"], pid);
    assert_eq!(task["assigned_to"]["id"], john_id);
    assert_eq!(task["assigned_to"]["username"], "john");
    assert_eq!(task["assigned_to_id"], john_id);
    assert_eq!(task["created_by"]["id"], t.admin_id);
    assert_eq!(task["priority"], "high");
    assert_eq!(task["due_date"], "2099-12-31T23:59:59Z");
    assert_eq!(task["is_overdue"], false);
    let t2 = app
        .post(
            &t,
            &access,
            "/api/tasks/",
            json!({"project": pid, "title": "Write docs", "priority": "low"}),
        )
        .await
        .expect(201);
    let tid2 = t2["id"].as_i64().unwrap();
    assert!(t2["assigned_to"].is_null() && t2["assigned_to_id"].is_null());
    assert_eq!(t2["status"], "todo");
    let t3 = app
        .post(
            &t,
            &access,
            "/api/tasks/",
            json!({"project": pid, "title": "Overdue thing", "due_date": "2000-01-01T00:00:00Z", "assigned_to_id": t.admin_id}),
        )
        .await
        .expect(201);
    let tid3 = t3["id"].as_i64().unwrap();
    assert_eq!(t3["is_overdue"], true);

    let got = app
        .get(&t, &access, &format!("/api/tasks/{tid}/"))
        .await
        .expect(200);
    assert_eq!(got["title"], "Implement feature");
    let moved = app
        .patch(
            &t,
            &access,
            &format!("/api/tasks/{tid}/"),
            json!({"status": "in_progress"}),
        )
        .await
        .expect(200);
    assert_eq!(moved["status"], "in_progress");

    // Filters, the seed's and the rest.
    let q = |s: &str| format!("/api/tasks/?{s}");
    let f = app
        .get(&t, &access, &q(&format!("project={pid}&status=todo")))
        .await
        .expect(200);
    assert_eq!(ids(&f), vec![tid3, tid2]);
    let mine = app.get(&t, &access, &q("assigned_to=me")).await.expect(200);
    assert_eq!(ids(&mine), vec![tid3]);
    let johns = app
        .get(&t, &access, &q(&format!("assigned_to={john_id}")))
        .await
        .expect(200);
    assert_eq!(ids(&johns), vec![tid]);
    let high = app.get(&t, &access, &q("priority=high")).await.expect(200);
    assert_eq!(ids(&high), vec![tid]);
    let by_title = app.get(&t, &access, &q("ordering=title")).await.expect(200);
    assert_eq!(ids(&by_title), vec![tid, tid3, tid2]);
    let by_priority = app
        .get(&t, &access, &q("ordering=-priority"))
        .await
        .expect(200);
    assert_eq!(ids(&by_priority), vec![tid, tid3, tid2]);
    let search = app.get(&t, &access, &q("search=DOCS")).await.expect(200);
    assert_eq!(ids(&search), vec![tid2]);
    let search2 = app
        .get(&t, &access, &q("search=task%20description"))
        .await
        .expect(200);
    assert_eq!(ids(&search2), vec![tid]);
    let all = app.get(&t, &access, &q("")).await.expect(200);
    assert_eq!(ids(&all), vec![tid3, tid2, tid], "newest first by default");

    // Pagination with absolute links built from the Host header.
    let p1 = app
        .get(&t, &access, &q("page_size=2&ordering=id"))
        .await
        .expect(200);
    assert_eq!(p1["count"], 3);
    assert_eq!(ids(&p1), vec![tid, tid2]);
    let next = p1["next"].as_str().expect("next link").to_owned();
    assert!(
        next.starts_with(&format!("http://{host}/api/tasks/?")),
        "{next}"
    );
    assert!(
        next.contains("page=2") && next.contains("page_size=2") && next.contains("ordering=id")
    );
    assert!(p1["previous"].is_null());
    let path = next.trim_start_matches(&format!("http://{host}"));
    let p2 = app.get(&t, &access, path).await.expect(200);
    assert_eq!(ids(&p2), vec![tid3]);
    assert!(p2["next"].is_null());
    assert!(p2["previous"].as_str().unwrap().contains("page_size=2"));
    app.get(&t, &access, &q("page=9"))
        .await
        .expect_error(404, "not_found");

    // Completing, my tasks, statistics, dashboard.
    let done = app
        .post(
            &t,
            &access,
            &format!("/api/tasks/{tid3}/mark_complete/"),
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(done["status"], "done");
    assert!(done["completed_at"].is_string());
    assert_eq!(done["is_overdue"], false);
    let again = app
        .call(
            Method::POST,
            &format!("/api/tasks/{tid3}/mark_complete/"),
            Some(&host),
            Some(&access),
            None,
        )
        .await
        .expect(200);
    assert_eq!(again["completed_at"], done["completed_at"], "idempotent");

    let (_, john_token) = (john_id, {
        app.call(
            Method::POST,
            "/api/token/",
            Some(&host),
            None,
            Some(json!({"username": "john", "password": "password123"})),
        )
        .await
        .expect(200)["access"]
            .as_str()
            .unwrap()
            .to_owned()
    });
    let johns_tasks = app
        .get(&t, &john_token, "/api/tasks/my_tasks/")
        .await
        .expect(200);
    assert_eq!(ids(&johns_tasks), vec![tid]);

    let stats = app
        .get(&t, &access, &format!("/api/projects/{pid}/statistics/"))
        .await
        .expect(200);
    assert_eq!(stats["project_id"], pid);
    assert_eq!(stats["total_tasks"], 3);
    assert_eq!(stats["completed_tasks"], 1);
    assert_eq!(stats["in_progress_tasks"], 1);
    assert_eq!(stats["todo_tasks"], 1);
    assert_eq!(stats["completion_rate"], 33.3);
    assert_eq!(stats["member_count"], 1);
    assert_eq!(stats["tasks_by_priority"]["high"], 1);

    let dash = app.get(&t, &access, "/api/dashboard/").await.expect(200);
    assert_eq!(dash["total_projects"], 1);
    assert_eq!(dash["active_projects"], 1);
    assert_eq!(dash["total_tasks"], 3);
    assert_eq!(dash["completed_tasks"], 1);
    assert_eq!(dash["in_progress_tasks"], 1);
    assert_eq!(dash["my_tasks"], 1);
    assert_eq!(dash["plan"], "basic");
    assert_eq!(dash["users"], json!({"used": 2, "limit": 20}));
    assert_eq!(dash["projects"], json!({"used": 1, "limit": 10}));
    assert_eq!(dash["recent_tasks"].as_array().unwrap().len(), 3);
    assert_eq!(dash["recent_tasks"][0]["project"], pid);
    let jd = app
        .get(&t, &john_token, "/api/dashboard/")
        .await
        .expect(200);
    assert_eq!(jd["my_tasks"], 1);
    assert_eq!(jd["my_open_tasks"], 1);

    // Removing a member; deleting.
    let without = app
        .post(
            &t,
            &access,
            &format!("/api/projects/{pid}/remove_member/"),
            json!({"user_id": john_id}),
        )
        .await
        .expect(200);
    assert_eq!(without["members"], json!([]));
    app.get(&t, &john_token, &format!("/api/tasks/{tid}/"))
        .await
        .expect_error(404, "not_found");
    let r = app
        .delete(&t, &access, &format!("/api/tasks/{tid2}/"))
        .await;
    assert_eq!(r.status, 204);
    app.get(&t, &access, &format!("/api/tasks/{tid2}/"))
        .await
        .expect_error(404, "not_found");
    let r = app
        .delete(&t, &access, &format!("/api/projects/{pid}/"))
        .await;
    assert_eq!(r.status, 204);
    app.get(&t, &access, &format!("/api/tasks/{tid}/"))
        .await
        .expect_error(404, "not_found");
    let empty = app.get(&t, &access, "/api/projects/").await.expect(200);
    assert_eq!(empty["count"], 0);
}

/// Refresh tokens rotate; reusing one revokes its whole family.
pub async fn refresh_rotation_and_reuse(backend: Backend) {
    let app = app!(backend);
    let t = app.tenant("free").await;
    let refresh = |token: String| {
        let host = t.host.clone();
        let app = &app;
        async move {
            app.call(
                Method::POST,
                "/api/token/refresh/",
                Some(&host),
                None,
                Some(json!({"refresh": token})),
            )
            .await
        }
    };
    let first = refresh(t.refresh.clone()).await.expect(200);
    let r1 = first["refresh"].as_str().unwrap().to_owned();
    let a1 = first["access"].as_str().unwrap().to_owned();
    assert_ne!(r1, t.refresh, "rotated");
    app.get(&t, &a1, "/api/users/me/").await.expect(200);
    // Reuse of the first refresh token: refused, and the family is revoked.
    refresh(t.refresh.clone())
        .await
        .expect_error(401, "unauthenticated");
    refresh(r1).await.expect_error(401, "unauthenticated");
    // An access token is not a refresh token, and garbage is not a token.
    refresh(a1).await.expect_error(401, "unauthenticated");
    refresh("garbage".into())
        .await
        .expect_error(401, "unauthenticated");
}

/// Tokens and objects of one tenant do not exist at another.
pub async fn cross_tenant(backend: Backend) {
    let app = app!(backend);
    let a = app.tenant("basic").await;
    let b = app.tenant("basic").await;
    let pa = app
        .post(
            &a,
            &a.access,
            "/api/projects/",
            json!({"name": "A's secret"}),
        )
        .await
        .expect(201);
    let pid = pa["id"].as_i64().unwrap();
    let ta = app
        .post(
            &a,
            &a.access,
            "/api/tasks/",
            json!({"project": pid, "title": "x"}),
        )
        .await
        .expect(201);
    let tid = ta["id"].as_i64().unwrap();
    // A's token at B.
    app.get(&b, &a.access, "/api/users/me/")
        .await
        .expect_error(401, "unauthenticated");
    app.call(
        Method::POST,
        "/api/token/refresh/",
        Some(&b.host),
        None,
        Some(json!({"refresh": a.refresh})),
    )
    .await
    .expect_error(401, "unauthenticated");
    // A's password at B (same username "admin", different tenant) only works with B's own.
    // A's objects through B: B has its own id space, so make B have none.
    app.get(&b, &b.access, &format!("/api/projects/{pid}/"))
        .await
        .expect_error(404, "not_found");
    app.get(&b, &b.access, &format!("/api/tasks/{tid}/"))
        .await
        .expect_error(404, "not_found");
    app.patch(
        &b,
        &b.access,
        &format!("/api/tasks/{tid}/"),
        json!({"title": "pwned"}),
    )
    .await
    .expect_error(404, "not_found");
    app.delete(&b, &b.access, &format!("/api/projects/{pid}/"))
        .await
        .expect_error(404, "not_found");
    let still = app
        .get(&a, &a.access, &format!("/api/tasks/{tid}/"))
        .await
        .expect(200);
    assert_eq!(still["title"], "x");
    // Unknown hosts look like a known tenant refusing the token: no
    // answer tells which companies are customers.
    for host in [
        "nobody.example.test",
        "",
        "::::",
        "a..b",
        "acme.localhost:notaport",
    ] {
        app.call(
            Method::GET,
            "/api/users/me/",
            Some(host),
            Some(&a.access),
            None,
        )
        .await
        .expect_error(401, "unauthenticated");
    }
    app.call(
        Method::POST,
        "/api/token/",
        Some("nobody.example.test"),
        None,
        Some(json!({"username": "admin", "password": PASSWORD})),
    )
    .await
    .expect_error(401, "unauthenticated");
    // X-Tenant is off by default: the header cannot redirect a request.
    let me = app
        .request(
            Method::GET,
            "/api/users/me/",
            Some(&a.host),
            Some(&a.access),
        )
        .header("x-tenant", &b.slug);
    let me = TestApp::send(me).await.expect(200);
    assert_eq!(me["id"], a.admin_id);
    // Tokens are required and must be bearer tokens.
    app.call(Method::GET, "/api/users/me/", Some(&a.host), None, None)
        .await
        .expect_error(401, "unauthenticated");
    let basic = app
        .request(Method::GET, "/api/users/me/", Some(&a.host), None)
        .header("authorization", "Basic YWRtaW46eA==");
    let r = TestApp::send(basic).await;
    assert!(r.headers.contains_key("www-authenticate"));
    r.expect_error(401, "unauthenticated");
}

/// Suspended tenants vanish; the platform API sees and changes them.
pub async fn platform_operator(backend: Backend) {
    let app = app!(backend);
    let t = app.tenant("free").await;
    let op = app.operator_token().await;
    let call = |method: Method, path: String, token: Option<String>, body: Option<Value>| {
        let app = &app;
        async move {
            app.call(method, &path, Some("admin.example"), token.as_deref(), body)
                .await
        }
    };
    let list = call(
        Method::GET,
        "/api/platform/tenants/?page_size=5".into(),
        Some(op.clone()),
        None,
    )
    .await
    .expect(200);
    assert!(list["count"].as_u64().unwrap() >= 1);
    assert!(list["results"][0]["users"]["used"].is_u64());
    let one = call(
        Method::GET,
        format!("/api/platform/tenants/{}/", t.id),
        Some(op.clone()),
        None,
    )
    .await
    .expect(200);
    assert_eq!(one["slug"], t.slug.as_str());
    assert_eq!(one["plan"], "free");
    assert_eq!(one["users"], json!({"used": 1, "limit": 5}));
    assert_eq!(one["projects"], json!({"used": 0, "limit": 3}));
    assert_eq!(one["domains"][0]["hostname"], t.domain.as_str());
    assert_eq!(one["domains"][0]["is_primary"], true);

    // Tenant tokens are not platform tokens, and vice versa.
    call(
        Method::GET,
        "/api/platform/tenants/".into(),
        Some(t.access.clone()),
        None,
    )
    .await
    .expect_error(401, "unauthenticated");
    call(Method::GET, "/api/platform/tenants/".into(), None, None)
        .await
        .expect_error(401, "unauthenticated");
    app.get(&t, &op, "/api/users/me/")
        .await
        .expect_error(401, "unauthenticated");

    // Plans.
    let up = call(
        Method::POST,
        format!("/api/platform/tenants/{}/plan/", t.id),
        Some(op.clone()),
        Some(json!({"plan": "premium"})),
    )
    .await
    .expect(200);
    assert_eq!(up["plan"], "premium");
    assert_eq!(up["projects"]["limit"], 50);
    let dash = app.get(&t, &t.access, "/api/dashboard/").await.expect(200);
    assert_eq!(dash["plan"], "premium", "takes effect at once");
    call(
        Method::POST,
        format!("/api/platform/tenants/{}/plan/", t.id),
        Some(op.clone()),
        Some(json!({"plan": "gold"})),
    )
    .await
    .expect_error(400, "invalid");

    // Domains.
    let extra = format!("{}.example.test", unique("alias"));
    call(
        Method::POST,
        format!("/api/platform/tenants/{}/domains/", t.id),
        Some(op.clone()),
        Some(json!({"hostname": extra})),
    )
    .await
    .expect(201);
    let alias_host = format!("{extra}:{}", app.addr.port());
    app.call(
        Method::GET,
        "/api/users/me/",
        Some(&alias_host),
        Some(&t.access),
        None,
    )
    .await
    .expect(200);
    call(
        Method::DELETE,
        format!("/api/platform/tenants/{}/domains/{}/", t.id, t.domain),
        Some(op.clone()),
        None,
    )
    .await
    .expect_error(409, "invalid_state");
    let r = call(
        Method::DELETE,
        format!("/api/platform/tenants/{}/domains/{extra}/", t.id),
        Some(op.clone()),
        None,
    )
    .await;
    assert_eq!(r.status, 204);
    // A path that is no hostname names no domain.
    call(
        Method::DELETE,
        format!("/api/platform/tenants/{}/domains/no%20such..host/", t.id),
        Some(op.clone()),
        None,
    )
    .await
    .expect_error(404, "not_found");

    // Suspension: the tenant looks like it does not exist; reactivation restores it.
    let s = call(
        Method::POST,
        format!("/api/platform/tenants/{}/suspend/", t.id),
        Some(op.clone()),
        None,
    )
    .await
    .expect(200);
    assert_eq!(s["status"], "suspended");
    app.get(&t, &t.access, "/api/users/me/")
        .await
        .expect_error(401, "unauthenticated");
    app.call(
        Method::POST,
        "/api/token/",
        Some(&t.host),
        None,
        Some(json!({"username": "admin", "password": PASSWORD})),
    )
    .await
    .expect_error(401, "unauthenticated");
    call(
        Method::POST,
        format!("/api/platform/tenants/{}/reactivate/", t.id),
        Some(op.clone()),
        None,
    )
    .await
    .expect(200);
    app.get(&t, &t.access, "/api/users/me/").await.expect(200);

    // Unknown and malformed tenant ids.
    for id in [uuid::Uuid::now_v7().to_string(), "not-a-uuid".to_owned()] {
        call(
            Method::POST,
            format!("/api/platform/tenants/{id}/suspend/"),
            Some(op.clone()),
            None,
        )
        .await
        .expect_error(404, "not_found");
    }
    // Wrong password.
    call(
        Method::POST,
        "/api/platform/token/".into(),
        None,
        Some(json!({"username": "nobody", "password": "wrongwrong"})),
    )
    .await
    .expect_error(401, "unauthenticated");

    // Deletion.
    let r = call(
        Method::DELETE,
        format!("/api/platform/tenants/{}/", t.id),
        Some(op.clone()),
        None,
    )
    .await;
    assert_eq!(r.status, 204);
    app.get(&t, &t.access, "/api/users/me/")
        .await
        .expect_error(401, "unauthenticated");
}

/// What each role may not do answers 403.
pub async fn role_refusals(backend: Backend) {
    let app = app!(backend);
    let t = app.tenant("basic").await;
    let (manager_id, manager) = app.user(&t, "manny", "manager").await;
    let (member_id, member) = app.user(&t, "mem", "member").await;
    let (_viewer_id, viewer) = app.user(&t, "vic", "viewer").await;

    // Registering users.
    let new_user = |name: &str, role: &str| json!({"username": name, "email": format!("{name}@acme.com"), "password": PASSWORD, "role": role});
    app.post(
        &t,
        &member,
        "/api/users/register/",
        new_user("x1", "member"),
    )
    .await
    .expect_error(403, "forbidden");
    app.post(
        &t,
        &viewer,
        "/api/users/register/",
        new_user("x2", "viewer"),
    )
    .await
    .expect_error(403, "forbidden");
    app.post(
        &t,
        &manager,
        "/api/users/register/",
        new_user("x3", "admin"),
    )
    .await
    .expect_error(403, "forbidden");
    app.post(
        &t,
        &manager,
        "/api/users/register/",
        new_user("x4", "viewer"),
    )
    .await
    .expect(201);

    // Projects.
    for token in [&member, &viewer] {
        app.post(&t, token, "/api/projects/", json!({"name": "nope"}))
            .await
            .expect_error(403, "forbidden");
    }
    let p = app
        .post(&t, &manager, "/api/projects/", json!({"name": "Manny's"}))
        .await
        .expect(201);
    let pid = p["id"].as_i64().unwrap();
    app.post(
        &t,
        &manager,
        &format!("/api/projects/{pid}/add_member/"),
        json!({"user_id": member_id}),
    )
    .await
    .expect(200);
    app.post(
        &t,
        &member,
        &format!("/api/projects/{pid}/add_member/"),
        json!({"user_id": member_id}),
    )
    .await
    .expect_error(403, "forbidden");
    app.patch(
        &t,
        &member,
        &format!("/api/projects/{pid}/"),
        json!({"name": "mine"}),
    )
    .await
    .expect_error(403, "forbidden");
    app.delete(&t, &member, &format!("/api/projects/{pid}/"))
        .await
        .expect_error(403, "forbidden");
    // The viewer is not involved: the project does not exist for them.
    app.get(&t, &viewer, &format!("/api/projects/{pid}/"))
        .await
        .expect_error(404, "not_found");

    // Tasks: members work on tasks of their projects, may not delete others'.
    let task = app
        .post(
            &t,
            &manager,
            "/api/tasks/",
            json!({"project": pid, "title": "by manny", "assigned_to_id": member_id}),
        )
        .await
        .expect(201);
    let tid = task["id"].as_i64().unwrap();
    app.patch(
        &t,
        &member,
        &format!("/api/tasks/{tid}/"),
        json!({"status": "review"}),
    )
    .await
    .expect(200);
    app.delete(&t, &member, &format!("/api/tasks/{tid}/"))
        .await
        .expect_error(403, "forbidden");
    let own = app
        .post(
            &t,
            &member,
            "/api/tasks/",
            json!({"project": pid, "title": "by mem"}),
        )
        .await
        .expect(201);
    let r = app
        .delete(&t, &member, &format!("/api/tasks/{}/", own["id"]))
        .await;
    assert_eq!(r.status, 204);

    // Users: only admins change others, roles and the active flag; nobody demotes the owner.
    app.patch(
        &t,
        &member,
        &format!("/api/users/{manager_id}/"),
        json!({"first_name": "X"}),
    )
    .await
    .expect_error(403, "forbidden");
    app.patch(
        &t,
        &member,
        &format!("/api/users/{member_id}/"),
        json!({"role": "admin"}),
    )
    .await
    .expect_error(403, "forbidden");
    app.patch(
        &t,
        &member,
        &format!("/api/users/{member_id}/"),
        json!({"first_name": "Mem"}),
    )
    .await
    .expect(200);
    app.patch(
        &t,
        &t.access,
        &format!("/api/users/{}/", t.admin_id),
        json!({"role": "viewer"}),
    )
    .await
    .expect_error(403, "forbidden");
    // Deactivating a user kills their tokens.
    app.patch(
        &t,
        &t.access,
        &format!("/api/users/{member_id}/"),
        json!({"is_active": false}),
    )
    .await
    .expect(200);
    app.get(&t, &member, "/api/users/me/")
        .await
        .expect_error(401, "unauthenticated");
}

/// Plan limits answer 403 `plan_limit_exceeded` and change nothing.
pub async fn plan_limits(backend: Backend) {
    let app = app!(backend);
    let t = app.tenant("free").await;
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
    let e = app
        .post(&t, &t.access, "/api/projects/", json!({"name": "p3"}))
        .await
        .expect_error(403, "plan_limit_exceeded");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("free"),
        "{e}"
    );
    let list = app.get(&t, &t.access, "/api/projects/").await.expect(200);
    assert_eq!(list["count"], 3);
    // Users: 5 including the admin.
    for i in 0..4 {
        app.post(
            &t,
            &t.access,
            "/api/users/register/",
            json!({"username": format!("u{i}"), "email": "u@acme.com", "password": PASSWORD}),
        )
        .await
        .expect(201);
    }
    app.post(
        &t,
        &t.access,
        "/api/users/register/",
        json!({"username": "u5", "email": "u@acme.com", "password": PASSWORD}),
    )
    .await
    .expect_error(403, "plan_limit_exceeded");
    let dash = app.get(&t, &t.access, "/api/dashboard/").await.expect(200);
    assert_eq!(dash["users"], json!({"used": 5, "limit": 5}));
}

/// Invalid input: 400 with the offending fields named; conflicts 409.
pub async fn bad_input(backend: Backend) {
    let app = app!(backend);
    let t = app.tenant("basic").await;
    let reg = |body: Value| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                "/api/register/",
                Some("x.test"),
                None,
                Some(body),
            )
            .await
        }
    };
    let base = json!({
        "company_name": "Acme", "schema_name": unique("t_"), "domain_url": format!("{}.example.test", unique("d")),
        "admin_username": "admin", "admin_email": "admin@acme.com", "admin_password": PASSWORD,
    });
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    for (field, value) in [
        ("schema_name", json!("Robert'); DROP TABLE")),
        ("schema_name", json!("public")),
        ("schema_name", json!("pg_catalog")),
        ("domain_url", json!("not a host")),
        ("admin_email", json!("nope")),
        ("admin_password", json!("short")),
        ("admin_username", json!("аdmin")),
        ("company_name", json!("   ")),
        ("subscription_plan", json!("gold")),
    ] {
        let e = reg(with(field, value)).await.expect_error(400, "invalid");
        assert!(e["error"]["fields"].get(field).is_some(), "{field}: {e}");
    }
    // Several bad fields are reported at once.
    let mut b = with("schema_name", json!("X"));
    b["admin_email"] = json!("nope");
    let e = reg(b).await.expect_error(400, "invalid");
    assert!(
        e["error"]["fields"].get("schema_name").is_some()
            && e["error"]["fields"].get("admin_email").is_some()
    );
    // Missing fields are named.
    let e = reg(json!({"company_name": "x"}))
        .await
        .expect_error(400, "invalid");
    assert!(e["error"]["fields"].as_object().unwrap().len() == 1, "{e}");
    // Conflicts.
    let e = reg(with("schema_name", json!(t.slug)))
        .await
        .expect_error(409, "conflict");
    assert!(e["error"]["fields"].get("schema_name").is_some(), "{e}");
    let e = reg(with("domain_url", json!(t.domain)))
        .await
        .expect_error(409, "conflict");
    assert!(e["error"]["fields"].get("domain_url").is_some(), "{e}");
    let e = app
        .post(
            &t,
            &t.access,
            "/api/users/register/",
            json!({"username": "ADMIN", "email": "a@acme.com", "password": PASSWORD}),
        )
        .await
        .expect_error(409, "conflict");
    assert!(e["error"]["fields"].get("username").is_some(), "{e}");

    // Bodies with bad values.
    let p = app
        .post(&t, &t.access, "/api/projects/", json!({"name": "P"}))
        .await
        .expect(201);
    let pid = p["id"].as_i64().unwrap();
    for (path, body, field) in [
        ("/api/projects/", json!({"name": ""}), "name"),
        (
            "/api/projects/",
            json!({"name": "x", "status": "bogus"}),
            "status",
        ),
        (
            "/api/projects/",
            json!({"name": "x", "start_date": "2024-13-45"}),
            "start_date",
        ),
        (
            "/api/projects/",
            json!({"name": "x", "start_date": "2024-02-01", "end_date": "2024-01-01"}),
            "end_date",
        ),
        (
            "/api/tasks/",
            json!({"project": pid, "title": "x", "priority": "urgentissimo"}),
            "priority",
        ),
        (
            "/api/tasks/",
            json!({"project": pid, "title": "x", "due_date": "tomorrow"}),
            "due_date",
        ),
        (
            "/api/tasks/",
            json!({"project": pid, "title": "x", "assigned_to_id": 999_999}),
            "assigned_to_id",
        ),
        (
            "/api/tasks/",
            json!({"project": 999_999, "title": "x"}),
            "project",
        ),
        (
            "/api/tasks/",
            json!({"project": "one", "title": "x"}),
            "project",
        ),
        ("/api/tasks/", json!({"title": "x"}), "project"),
        (
            "/api/tasks/",
            json!({"project": pid, "title": "x".repeat(201)}),
            "title",
        ),
        (
            "/api/users/register/",
            json!({"username": "z", "email": "z@acme.com", "password": PASSWORD, "role": "owner"}),
            "role",
        ),
    ] {
        let e = app
            .post(&t, &t.access, path, body.clone())
            .await
            .expect_error(400, "invalid");
        assert!(e["error"]["fields"].get(field).is_some(), "{body} → {e}");
    }
    let e = app
        .post(
            &t,
            &t.access,
            &format!("/api/projects/{pid}/add_member/"),
            json!({"user_id": 424242}),
        )
        .await
        .expect_error(400, "invalid");
    assert!(e["error"]["fields"].get("user_id").is_some(), "{e}");
    // Bad filters and pages.
    for q in [
        "status=bogus",
        "priority=bogus",
        "project=abc",
        "assigned_to=someone",
        "ordering=password",
        "page=0",
        "page=abc",
        "page_size=1000",
        "page=-1",
    ] {
        app.get(&t, &t.access, &format!("/api/tasks/?{q}"))
            .await
            .expect_error(400, "invalid");
    }
    // Ids that are not ids, or not there.
    for path in [
        "/api/tasks/abc/",
        "/api/tasks/999999999/",
        "/api/tasks/99999999999999999999999999/",
        "/api/tasks/-1/",
        "/api/projects/1.5/",
        "/api/users/%00/",
        "/api/nothing/here/",
    ] {
        app.get(&t, &t.access, path)
            .await
            .expect_error(404, "not_found");
    }
    // Wrong login.
    app.call(
        Method::POST,
        "/api/token/",
        Some(&t.host),
        None,
        Some(json!({"username": "admin", "password": "wrong-password"})),
    )
    .await
    .expect_error(401, "unauthenticated");
    // Wrong method: 405 in our shape.
    let r = app
        .call(
            Method::DELETE,
            "/api/users/me/",
            Some(&t.host),
            Some(&t.access),
            None,
        )
        .await;
    assert!(r.headers.contains_key("allow"));
    r.expect_error(405, "method_not_allowed");
    // Changing one's password revokes older tokens.
    app.post(
        &t,
        &t.access,
        "/api/users/change_password/",
        json!({"old_password": "nope-nope", "new_password": "another-password-1"}),
    )
    .await
    .expect_error(400, "invalid");
    let r = app
        .post(
            &t,
            &t.access,
            "/api/users/change_password/",
            json!({"old_password": PASSWORD, "new_password": "another-password-1"}),
        )
        .await;
    assert_eq!(r.status, 204);
    app.get(&t, &t.access, "/api/users/me/")
        .await
        .expect_error(401, "unauthenticated");
}

/// Login is throttled per tenant and username, with Retry-After.
pub async fn login_throttle(backend: Backend) {
    let config = HttpConfig {
        login_attempts: 3,
        login_window: Duration::from_secs(60),
        ..HttpConfig::default()
    };
    let app = app!(backend, config);
    let t = app.tenant("free").await;
    let t2 = app.tenant("free").await;
    let login = |host: String, user: &'static str, pw: &'static str| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                "/api/token/",
                Some(&host),
                None,
                Some(json!({"username": user, "password": pw})),
            )
            .await
        }
    };
    // The helper's login already used one attempt for "admin".
    for _ in 0..2 {
        login(t.host.clone(), "admin", "wrong-password")
            .await
            .expect_error(401, "unauthenticated");
    }
    let r = login(t.host.clone(), "ADMIN", PASSWORD).await;
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    r.expect_error(429, "throttled");
    // Other usernames and other tenants are unaffected.
    login(t.host.clone(), "someone", "wrong-password")
        .await
        .expect_error(401, "unauthenticated");
    login(t2.host.clone(), "admin", PASSWORD).await.expect(200);
}

/// X-Tenant picks the tenant when enabled; CORS, request ids and the
/// OpenAPI document.
pub async fn headers_and_openapi(backend: Backend) {
    let config = HttpConfig {
        x_tenant: true,
        cors: CorsOrigins::List(vec!["https://app.example.com".into()]),
        ..HttpConfig::default()
    };
    let app = app!(backend, config);
    let t = app.tenant("free").await;
    let r = app
        .request(
            Method::GET,
            "/api/users/me/",
            Some("localhost"),
            Some(&t.access),
        )
        .header("x-tenant", &t.slug);
    TestApp::send(r).await.expect(200);
    let r = app
        .request(
            Method::GET,
            "/api/users/me/",
            Some("localhost"),
            Some(&t.access),
        )
        .header("x-tenant", "no_such_tenant");
    TestApp::send(r).await.expect_error(401, "unauthenticated");

    // Request ids: generated, or the client's echoed back.
    let r = TestApp::send(app.request(Method::GET, "/api/health/", None, None)).await;
    assert!(r.headers.contains_key("x-request-id"));
    let r = TestApp::send(
        app.request(Method::GET, "/api/health/", None, None)
            .header("x-request-id", "abc-123"),
    )
    .await;
    assert_eq!(r.headers["x-request-id"], "abc-123");

    // CORS preflight.
    let r = TestApp::send(
        app.request(Method::OPTIONS, "/api/projects/", Some(&t.host), None)
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            ),
    )
    .await;
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    let r = TestApp::send(
        app.request(Method::GET, "/api/health/", None, None)
            .header("origin", "https://evil.example.com"),
    )
    .await;
    assert!(!r.headers.contains_key("access-control-allow-origin"));

    // The OpenAPI document lists every endpoint.
    let doc = app
        .call(
            Method::GET,
            "/api/openapi.json",
            Some("anything"),
            None,
            None,
        )
        .await
        .expect(200);
    let paths = doc["paths"].as_object().expect("paths");
    for (method, path) in crate::ENDPOINTS {
        let p = path
            .replace("{pid}", "{id}")
            .replace("{tid}", "{id}")
            .replace("{uid}", "{id}")
            .replace("{jid}", "{id}")
            .replace("{tenant}", "{id}");
        let op = paths
            .get(&p)
            .and_then(|item| item.get(method.to_ascii_lowercase()))
            .unwrap_or_else(|| panic!("{method} {p} missing from the OpenAPI document"));
        assert!(op["responses"].is_object());
    }
}

/// Allowed hosts and the body limit.
pub async fn hosts_and_limits(backend: Backend) {
    let config = HttpConfig {
        allowed_hosts: vec![".example.test".into(), "localhost".into()],
        body_limit: 4096,
        ..HttpConfig::default()
    };
    let app = app!(backend, config);
    let t = app.tenant("free").await;
    app.call(
        Method::GET,
        "/api/health/",
        Some("localhost:1234"),
        None,
        None,
    )
    .await
    .expect(200);
    app.call(Method::GET, "/api/health/", Some("evil.com"), None, None)
        .await
        .expect_error(400, "disallowed_host");
    let big = json!({"name": "x".repeat(10_000)});
    app.post(&t, &t.access, "/api/projects/", big)
        .await
        .expect_error(413, "payload_too_large");
    // A chunked body without a length is cut off too.
    let mut raw = format!(
        "POST /api/projects/ HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        t.host, t.access
    )
    .into_bytes();
    for _ in 0..10 {
        raw.extend_from_slice(b"400\r\n");
        raw.extend_from_slice(&[b' '; 1024]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let response = crate::raw_http(app.addr, &raw).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("payload_too_large"), "{response}");
}

/// `DELETE /api/platform/tenants/{id}/` refuses the tenant at once, as
/// unknown, keeping it; `POST .../restore/` brings it back as it was.
pub async fn platform_delete_and_restore(backend: Backend) {
    let app = app!(backend);
    let t = app.tenant("basic").await;
    let op = app.operator_token().await;
    app.post(&t, &t.access, "/api/projects/", json!({"name": "Kept"}))
        .await
        .expect(201);
    let path = format!("/api/platform/tenants/{}/", t.id);
    let admin = Some("admin.example");
    let r = app
        .call(Method::DELETE, &path, admin, Some(&op), None)
        .await;
    assert_eq!(r.status.as_u16(), 204);
    // Refused at once, as a bad token to an unknown host.
    app.get(&t, &t.access, "/api/projects/")
        .await
        .expect_error(401, "unauthenticated");
    let shown = app
        .call(Method::GET, &path, admin, Some(&op), None)
        .await
        .expect(200);
    assert_eq!(shown["status"], "deleted", "{shown}");
    assert!(shown["deleted_at"].is_string(), "{shown}");
    let restore = format!("/api/platform/tenants/{}/restore/", t.id);
    let back = app
        .call(Method::POST, &restore, admin, Some(&op), None)
        .await
        .expect(200);
    assert_eq!(back["status"], "active", "{back}");
    assert_eq!(back["deleted_at"], Value::Null);
    let projects = app.get(&t, &t.access, "/api/projects/").await.expect(200);
    assert_eq!(projects["count"], 1, "the data is back: {projects}");
    // Restoring a tenant that is not deleted is a conflict; an unknown one 404.
    app.call(Method::POST, &restore, admin, Some(&op), None)
        .await
        .expect_error(409, "invalid_state");
    let unknown = format!("/api/platform/tenants/{}/restore/", uuid::Uuid::now_v7());
    app.call(Method::POST, &unknown, admin, Some(&op), None)
        .await
        .expect_error(404, "not_found");
}
