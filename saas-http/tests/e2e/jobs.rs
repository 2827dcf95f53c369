//! The jobs endpoints: `POST /api/projects/{id}/report/` and
//! `GET /api/jobs/{id}/`, with a worker run in this process.

use reqwest::Method;
use saas_core::jobs::builtin::{GenerateProjectReport, ReportPayload};
use saas_core::projects::ProjectId;
use saas_http::HttpConfig;
use serde_json::{Value, json};
use testkit::app;
use testkit::server::{Backend, TenantCtx, TestApp, unique};

async fn project_with_tasks(app: &TestApp, t: &TenantCtx) -> i64 {
    let pid = app
        .post(
            t,
            &t.access,
            "/api/projects/",
            json!({"name": "Website", "description": "Redesign"}),
        )
        .await
        .expect(201)["id"]
        .as_i64()
        .expect("project id");
    for (title, status, assignee) in [
        ("Design", "done", Some(t.admin_id)),
        ("Build", "in_progress", Some(t.admin_id)),
        ("Ship", "todo", None),
    ] {
        let mut body = json!({"project": pid, "title": title, "status": status});
        if let Some(a) = assignee {
            body["assigned_to_id"] = json!(a);
        }
        app.post(t, &t.access, "/api/tasks/", body)
            .await
            .expect(201);
    }
    pid
}

async fn request_report(app: &TestApp, t: &TenantCtx, token: &str, pid: i64) -> String {
    let r = app
        .call(
            Method::POST,
            &format!("/api/projects/{pid}/report/"),
            Some(&t.host),
            Some(token),
            None,
        )
        .await;
    let location = r
        .headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = r.expect(202);
    assert_eq!(body["status"], "queued", "{body}");
    let id = body["job_id"].as_str().expect("job_id").to_owned();
    let url = format!("/api/jobs/{id}/");
    assert_eq!(body["url"], url.as_str());
    assert_eq!(location.as_deref(), Some(url.as_str()));
    id
}

async fn job(app: &TestApp, t: &TenantCtx, token: &str, id: &str) -> testkit::server::Resp {
    app.get(t, token, &format!("/api/jobs/{id}/")).await
}

/// Runs workers until the job is finished; returns it as the API shows it.
async fn finish(app: &TestApp, t: &TenantCtx, id: &str) -> Value {
    app.run_jobs_until(&format!("job {id} finished"), || async {
        job(app, t, &t.access, id).await.expect(200)["ready"] == true
    })
    .await;
    job(app, t, &t.access, id).await.expect(200)
}

fn mailed(app: &TestApp, to: &str) -> bool {
    app.mailer
        .sent()
        .iter()
        .any(|m| m.to.iter().any(|x| x == to))
}

/// Request a report, run a worker until idle, read the report back; members
/// see only reports of projects they can see; the welcome email went out.
pub async fn report_flow(backend: Backend) {
    let app = app!(backend);
    let t = app.tenant("basic").await;
    let pid = project_with_tasks(&app, &t).await;
    let mia = unique("mia");
    let max = unique("max");
    let (member_id, member) = app.user(&t, &mia, "member").await;
    let (_, manager) = app.user(&t, &max, "manager").await;

    let id = request_report(&app, &t, &t.access, pid).await;
    let waiting = job(&app, &t, &t.access, &id).await.expect(200);
    assert_eq!(waiting["id"], id.as_str());
    assert_eq!(waiting["kind"], "generate_project_report");
    assert_eq!(waiting["error"], Value::Null);
    if backend == Backend::Sqlite {
        // This app's own queue: nothing else can have run the job yet.
        assert_eq!(waiting["status"], "queued");
        assert_eq!(waiting["ready"], false);
        assert_eq!(waiting["successful"], false);
        assert_eq!(waiting["result"], Value::Null);
        assert_eq!(waiting["attempts"], 0);
        assert_eq!(waiting["finished_at"], Value::Null);
        let stats = app.run_jobs().await;
        // The report, and a welcome email for each of the three users.
        assert_eq!(stats.succeeded, 4, "{stats:?}");
        assert_eq!(stats.dead + stats.retried, 0, "{stats:?}");
    }

    let done = finish(&app, &t, &id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["ready"], true);
    assert_eq!(done["successful"], true);
    assert_eq!(done["error"], Value::Null);
    assert_eq!(done["attempts"], 1);
    assert!(done["started_at"].is_string() && done["finished_at"].is_string());
    assert!(done["created_at"].is_string() && done["updated_at"].is_string());
    let report = &done["result"];
    assert_eq!(report["project"]["id"], pid, "{report}");
    assert_eq!(report["project"]["name"], "Website");
    assert_eq!(report["total_tasks"], 3);
    assert_eq!(report["tasks_by_status"]["done"], 1);
    assert_eq!(report["tasks_by_status"]["in_progress"], 1);
    assert_eq!(report["tasks_by_status"]["todo"], 1);
    assert_eq!(report["unassigned_tasks"], 1);
    assert_eq!(report["assignees"][0]["user_id"], t.admin_id);
    assert_eq!(report["assignees"][0]["total"], 2);
    assert_eq!(report["completion_rate"], 33.3);

    // The welcome-email listener queued a welcome for each new user.
    let (mia_email, max_email) = (format!("{mia}@acme.com"), format!("{max}@acme.com"));
    app.run_jobs_until("welcome emails sent", || async {
        mailed(&app, &mia_email) && mailed(&app, &max_email)
    })
    .await;

    // A member not in the project neither requests nor sees its report.
    job(&app, &t, &member, &id)
        .await
        .expect_error(404, "not_found");
    app.call(
        Method::POST,
        &format!("/api/projects/{pid}/report/"),
        Some(&t.host),
        Some(&member),
        None,
    )
    .await
    .expect_error(404, "not_found");
    // Once a member, they see it, but members still may not request reports.
    app.post(
        &t,
        &t.access,
        &format!("/api/projects/{pid}/add_member/"),
        json!({"user_id": member_id}),
    )
    .await
    .expect(200);
    let seen = job(&app, &t, &member, &id).await.expect(200);
    assert_eq!(seen["status"], "succeeded");
    app.call(
        Method::POST,
        &format!("/api/projects/{pid}/report/"),
        Some(&t.host),
        Some(&member),
        None,
    )
    .await
    .expect_error(403, "forbidden");
    // A manager not involved in the project may not report on it.
    app.call(
        Method::POST,
        &format!("/api/projects/{pid}/report/"),
        Some(&t.host),
        Some(&manager),
        None,
    )
    .await
    .expect_error(404, "not_found");
}

/// Plan refusals, at request time (403) and at run time (dead, with the error).
pub async fn report_plans(backend: Backend) {
    let app = app!(backend);
    let free = app.tenant("free").await;
    let pid = project_with_tasks(&app, &free).await;
    let body = app
        .call(
            Method::POST,
            &format!("/api/projects/{pid}/report/"),
            Some(&free.host),
            Some(&free.access),
            None,
        )
        .await
        .expect_error(403, "plan_limit_exceeded");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("free")),
        "{body}"
    );

    // A report job whose tenant lost the reports feature after the request
    // (queued here directly, after the downgrade, so that no worker of
    // another test can run it first): the job re-checks the plan and dies
    // with the reason, without retrying.
    let t = app.tenant("basic").await;
    let pid = project_with_tasks(&app, &t).await;
    let op = app.operator_token().await;
    app.call(
        Method::POST,
        &format!("/api/platform/tenants/{}/plan/", t.id),
        Some("anything.example"),
        Some(&op),
        Some(json!({"plan": "free"})),
    )
    .await
    .expect(200);
    let tenant = app.saas.resolve_slug(&t.slug).await.expect("tenant");
    let id = app
        .jobs
        .as_ref()
        .expect("jobs")
        .enqueue_job::<GenerateProjectReport>(
            Some(tenant.id),
            &ReportPayload {
                project_id: ProjectId(pid),
            },
        )
        .await
        .expect("enqueue")
        .id
        .to_string();
    let dead = finish(&app, &t, &id).await;
    assert_eq!(dead["status"], "dead", "{dead}");
    assert_eq!(dead["ready"], true);
    assert_eq!(dead["successful"], false);
    assert_eq!(dead["result"], Value::Null);
    assert_eq!(dead["attempts"], 1);
    assert!(
        dead["error"].as_str().is_some_and(|e| e.contains("report")),
        "{dead}"
    );
}

/// Jobs are scoped to the request's tenant; bad ids are 404 in our shape.
pub async fn job_isolation_and_bad_ids(backend: Backend) {
    let app = app!(backend);
    let a = app.tenant("premium").await;
    let b = app.tenant("premium").await;
    let pid = project_with_tasks(&app, &a).await;
    let id = request_report(&app, &a, &a.access, pid).await;
    assert_eq!(finish(&app, &a, &id).await["status"], "succeeded");

    // B's admin asking B's host for A's job: as if it did not exist.
    job(&app, &b, &b.access, &id)
        .await
        .expect_error(404, "not_found");
    // A's token on B's host is refused as any bad token is.
    job(&app, &b, &a.access, &id)
        .await
        .expect_error(401, "unauthenticated");
    // B cannot report on A's project id either (B has no such project).
    app.call(
        Method::POST,
        &format!("/api/projects/{pid}/report/"),
        Some(&b.host),
        Some(&b.access),
        None,
    )
    .await
    .expect_error(404, "not_found");

    for bad in [
        "abc",
        "0",
        "-1",
        "00000000-0000-0000-0000-000000000000",
        &uuid::Uuid::now_v7().to_string(),
        "%FF",
        "😀",
    ] {
        job(&app, &a, &a.access, bad)
            .await
            .expect_error(404, "not_found");
    }
    app.call(
        Method::POST,
        "/api/projects/999999/report/",
        Some(&a.host),
        Some(&a.access),
        None,
    )
    .await
    .expect_error(404, "not_found");
    app.call(
        Method::POST,
        "/api/projects/abc/report/",
        Some(&a.host),
        Some(&a.access),
        None,
    )
    .await
    .expect_error(404, "not_found");
    app.call(
        Method::GET,
        &format!("/api/jobs/{id}/"),
        Some(&a.host),
        None,
        None,
    )
    .await
    .expect_error(401, "unauthenticated");
}

/// A router without a jobs runtime answers 503 in our shape, after the
/// tenant and the token are checked.
pub async fn jobs_unconfigured(backend: Backend) {
    let Some(app) = TestApp::start_opts(backend, HttpConfig::default(), false).await else {
        return;
    };
    let t = app.tenant("basic").await;
    let pid = project_with_tasks(&app, &t).await;
    app.call(
        Method::POST,
        &format!("/api/projects/{pid}/report/"),
        Some(&t.host),
        Some(&t.access),
        None,
    )
    .await
    .expect_error(503, "jobs_unavailable");
    job(&app, &t, &t.access, &uuid::Uuid::now_v7().to_string())
        .await
        .expect_error(503, "jobs_unavailable");
    app.call(
        Method::POST,
        &format!("/api/projects/{pid}/report/"),
        Some(&t.host),
        None,
        None,
    )
    .await
    .expect_error(401, "unauthenticated");
}

/// Asking again for a report that is pending (or finished less than a
/// minute ago) answers that job, with its status; past the tenant's cap of
/// pending jobs, 429 `too_many_jobs` (DRF's throttled body in that format).
pub async fn report_requests_are_reused_and_capped(backend: Backend) {
    let Some(app) = TestApp::start_jobs_capped(backend, 3).await else {
        return;
    };
    let t = app.tenant("basic").await;
    let pid = project_with_tasks(&app, &t).await;
    let first = request_report(&app, &t, &t.access, pid).await;
    let post = |pid: i64| {
        let (app, t) = (&app, &t);
        async move {
            let path = format!("/api/projects/{pid}/report/");
            app.call(Method::POST, &path, Some(&t.host), Some(&t.access), None)
                .await
        }
    };
    let again = post(pid).await.expect(202);
    assert_eq!(again["job_id"], first.as_str(), "pending: the same job");
    let done = finish(&app, &t, &first).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let recent = post(pid).await.expect(202);
    assert_eq!(
        recent["job_id"],
        first.as_str(),
        "finished just now: the same job"
    );
    assert_eq!(recent["status"], "succeeded", "with its status");

    if backend == Backend::Sqlite {
        // This app's own queue, where nothing runs unless the test says so:
        // the tenant's pending jobs are exactly the reports asked for.
        let mut accepted = 0;
        let mut refused = None;
        for _ in 0..4 {
            let p = project_with_tasks(&app, &t).await;
            let r = post(p).await;
            if r.status.as_u16() == 202 {
                accepted += 1;
            } else {
                refused = Some(r);
                break;
            }
        }
        // The welcome email ran with the first report: three reports pending.
        assert_eq!(accepted, 3);
        let r = refused.expect("a request past the cap");
        assert_eq!(
            r.headers.get("retry-after").and_then(|v| v.to_str().ok()),
            Some("30")
        );
        let body = r.expect_error(429, "too_many_jobs");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("at most 3"),
            "{body}"
        );
        // Finishing them opens the door again.
        app.run_jobs().await;
        let p = project_with_tasks(&app, &t).await;
        post(p).await.expect(202);
    }
}
