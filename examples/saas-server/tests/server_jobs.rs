//! The built `saas-server` binary on a fresh SQLite directory, spoken to
//! over real HTTP: `serve` runs report jobs in-process and sends the
//! welcome email through the file mailer; `serve --no-worker` leaves jobs
//! to `saas-server worker --until-idle`; SIGTERM stops the server cleanly;
//! `/metrics` counts what a scripted run did, with no tenant or user in a
//! label.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const SERVER: &str = env!("CARGO_BIN_EXE_saas-server");
const PASSWORD: &str = "securepassword123";

fn command(dir: &Path) -> Command {
    let mut cmd = testkit::program::command(SERVER, dir);
    cmd.env(
        "EMAIL_BACKEND",
        "django.core.mail.backends.filebased.EmailBackend",
    )
    .env("EMAIL_FILE_PATH", dir)
    .env("WORKER_POLL_MS", "50")
    .arg("--data-dir")
    .arg(dir.join("data"));
    cmd
}

/// Starts `saas-server serve` on a free port; returns it and its address.
fn serve(dir: &Path, extra: &[&str]) -> (Child, SocketAddr) {
    serve_with(command(dir), dir, extra)
}

/// Starts `saas-server serve` as `cmd` (a [`command`] with more settings).
fn serve_with(mut cmd: Command, dir: &Path, extra: &[&str]) -> (Child, SocketAddr) {
    cmd.args(["serve", "--bind", "127.0.0.1:0"]).args(extra);
    testkit::program::serve(cmd, "saas-server", dir)
}

/// One HTTP/1.1 request; returns the status and the JSON body (Null if none).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    host: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, raw) = http_text(addr, method, path, host, token, body, &[]);
    let json = serde_json::from_str(&raw).unwrap_or(Value::Null);
    (status, json)
}

/// One HTTP/1.1 request with `headers` added; returns the status and the
/// body as text.
fn http_text(
    addr: SocketAddr,
    method: &str,
    path: &str,
    host: &str,
    token: Option<&str>,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let answer = testkit::program::http_once(addr, method, path, host, token, body, headers);
    (answer.status, answer.body)
}

/// Registers a tenant and returns (host, admin token, project id).
fn tenant_with_project(addr: SocketAddr, slug: &str) -> (String, String, i64) {
    let domain = format!("{slug}.localhost");
    let (st, body) = http(
        addr,
        "POST",
        "/api/register/",
        "localhost",
        None,
        Some(json!({
            "company_name": "Acme Corp", "schema_name": slug, "domain_url": domain,
            "admin_username": "admin", "admin_email": format!("admin@{slug}.test"),
            "admin_password": PASSWORD, "subscription_plan": "basic",
        })),
    );
    assert_eq!(st, 201, "{body}");
    let (st, tokens) = http(
        addr,
        "POST",
        "/api/token/",
        &domain,
        None,
        Some(json!({"username": "admin", "password": PASSWORD})),
    );
    assert_eq!(st, 200, "{tokens}");
    let token = tokens["access"].as_str().expect("access").to_owned();
    let (st, p) = http(
        addr,
        "POST",
        "/api/projects/",
        &domain,
        Some(&token),
        Some(json!({"name": "Website"})),
    );
    assert_eq!(st, 201, "{p}");
    (domain, token, p["id"].as_i64().expect("project id"))
}

fn request_report(addr: SocketAddr, host: &str, token: &str, pid: i64) -> String {
    let (st, body) = http(
        addr,
        "POST",
        &format!("/api/projects/{pid}/report/"),
        host,
        Some(token),
        None,
    );
    assert_eq!(st, 202, "{body}");
    body["job_id"].as_str().expect("job_id").to_owned()
}

fn job(addr: SocketAddr, host: &str, token: &str, id: &str) -> Value {
    let (st, body) = http(
        addr,
        "GET",
        &format!("/api/jobs/{id}/"),
        host,
        Some(token),
        None,
    );
    assert_eq!(st, 200, "{body}");
    body
}

fn wait_ready(addr: SocketAddr, host: &str, token: &str, id: &str) -> Value {
    let start = Instant::now();
    loop {
        let j = job(addr, host, token, id);
        if j["ready"] == true {
            return j;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "job never finished: {j}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sigterm(child: &mut Child) -> std::process::ExitStatus {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(ok.success());
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("saas-server did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn emails_to(dir: &Path, to: &str) -> usize {
    std::fs::read_to_string(dir.join("emails.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| {
            m["to"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == to))
        })
        .count()
}

#[test]
fn serve_runs_reports_and_welcome_emails_in_process() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let (mut server, addr) = serve(dir, &[]);
    let (host, token, pid) = tenant_with_project(addr, "acme");
    let id = request_report(addr, &host, &token, pid);
    let done = wait_ready(addr, &host, &token, &id);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"]["project"]["id"], pid);
    let start = Instant::now();
    while emails_to(dir, "admin@acme.test") == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no welcome email"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = sigterm(&mut server);
    assert!(status.success(), "{status:?}");
    assert_eq!(emails_to(dir, "admin@acme.test"), 1);
}

#[test]
fn serve_without_worker_leaves_jobs_to_the_worker_command() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let (mut server, addr) = serve(dir, &["--no-worker"]);
    let (host, token, pid) = tenant_with_project(addr, "globex");
    let id = request_report(addr, &host, &token, pid);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(job(addr, &host, &token, &id)["status"], "queued");

    let out = command(dir)
        .args(["worker", "--until-idle"])
        .output()
        .expect("run saas-server worker --until-idle");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done = job(addr, &host, &token, &id);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(emails_to(dir, "admin@globex.test"), 1);
    assert!(sigterm(&mut server).success());
}

/// One sample of a scrape: the metric's name, its labels, its value.
type Sample = (String, Vec<(String, String)>, f64);

/// The samples of a Prometheus text scrape (comments skipped).
fn samples(scrape: &str) -> Vec<Sample> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a value");
            let value: f64 = value.parse().expect("a number");
            let Some((name, labels)) = series.split_once('{') else {
                return (series.to_owned(), Vec::new(), value);
            };
            let labels = labels
                .trim_end_matches('}')
                .split("\",")
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (k, v) = l.split_once('=').expect("label=value");
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            (name.to_owned(), labels, value)
        })
        .collect()
}

/// The sum of the samples of `name` that carry every label of `labels`.
fn total(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(n, ls, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| ls.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

/// The `saas_jobs` samples.
fn jobs_gauges(samples: &[Sample]) -> Vec<&Sample> {
    samples
        .iter()
        .filter(|(n, _, _)| n == "saas_jobs")
        .collect()
}

fn scrape(addr: SocketAddr) -> Vec<Sample> {
    let (st, text) = http_text(addr, "GET", "/metrics", "localhost", None, None, &[]);
    assert_eq!(st, 200, "{text}");
    samples(&text)
}

/// A scripted run (a registration, logins until the throttle refuses one,
/// a report job, a welcome email whose SMTP relay is down), then a scrape
/// of `/metrics` finds each of these counted, by route template and job
/// kind, the queue's depth by kind and state, and no label holding the
/// tenant or the user.
#[test]
fn metrics_count_a_scripted_run_without_tenants_or_users_in_labels() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    // Nothing listens on this port: every email fails (and is retried).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut cmd = command(dir);
    cmd.env("EMAIL_BACKEND", "smtp")
        .env("EMAIL_HOST", "127.0.0.1")
        .env("EMAIL_PORT", closed.to_string())
        .env("EMAIL_TIMEOUT", "2")
        .env("LOGIN_RATE_LIMIT", "3/minute")
        .env("TRUST_X_FORWARDED_FOR", "true")
        .env("METRICS_TOKEN", "scrape-token-for-the-test");
    let (mut server, addr) = serve_with(cmd, dir, &[]);

    let slug = "metricscorp";
    let (host, token, pid) = tenant_with_project(addr, slug);
    let id = request_report(addr, &host, &token, pid);
    assert_eq!(wait_ready(addr, &host, &token, &id)["status"], "succeeded");
    // One login above succeeded; wrong passwords until the throttle says no.
    let mut throttled = false;
    for _ in 0..5 {
        let (st, _) = http(
            addr,
            "POST",
            "/api/token/",
            &host,
            None,
            Some(json!({"username": "admin", "password": "wrong password"})),
        );
        throttled |= st == 429;
    }
    assert!(throttled, "the login throttle refused an attempt");
    // The welcome email fails against the closed port.
    let start = Instant::now();
    let mut seen = scrape(addr);
    while total(
        &seen,
        "saas_job_failures_total",
        &[("kind", "send_welcome_email")],
    ) < 1.0
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no failed welcome email counted"
        );
        std::thread::sleep(Duration::from_millis(100));
        seen = scrape(addr);
    }

    let route = |r: &str, status: &str| {
        total(
            &seen,
            "saas_http_requests_total",
            &[("route", r), ("status", status)],
        )
    };
    assert_eq!(route("/api/register/", "201"), 1.0);
    assert_eq!(route("/api/projects/", "201"), 1.0);
    assert_eq!(route("/api/projects/{id}/report/", "202"), 1.0);
    assert!(route("/api/jobs/{id}/", "200") >= 1.0);
    assert_eq!(route("/api/token/", "200"), 1.0);
    assert_eq!(route("/api/token/", "401"), 2.0);
    assert_eq!(route("/api/token/", "429"), 3.0);
    assert!(
        total(
            &seen,
            "saas_http_request_duration_seconds_count",
            &[("route", "/api/register/")]
        ) >= 1.0
    );
    assert_eq!(
        total(&seen, "saas_registrations_total", &[("outcome", "created")]),
        1.0
    );
    assert_eq!(
        total(&seen, "saas_logins_total", &[("outcome", "success")]),
        1.0
    );
    assert_eq!(
        total(&seen, "saas_logins_total", &[("outcome", "refused")]),
        2.0
    );
    assert_eq!(
        total(
            &seen,
            "saas_throttled_total",
            &[("throttle", "login_username")]
        ),
        3.0
    );
    assert_eq!(
        total(
            &seen,
            "saas_job_runs_total",
            &[
                ("kind", "generate_project_report"),
                ("outcome", "succeeded")
            ]
        ),
        1.0
    );
    assert!(
        total(
            &seen,
            "saas_job_duration_seconds_count",
            &[("kind", "generate_project_report")]
        ) >= 1.0
    );
    // The queue's depth, counted at the scrape: the failed email waits for
    // its retry; the finished report is no longer in the queue.
    let waiting_email = total(&seen, "saas_jobs", &[("kind", "send_welcome_email")]);
    assert_eq!(waiting_email, 1.0, "{:?}", jobs_gauges(&seen));
    assert_eq!(
        total(&seen, "saas_jobs", &[("kind", "generate_project_report")]),
        0.0
    );
    for (_, labels, _) in jobs_gauges(&seen) {
        let state = labels.iter().find(|(k, _)| k == "state").expect("a state");
        assert!(
            ["queued", "scheduled", "running", "retrying", "dead"].contains(&state.1.as_str()),
            "{labels:?}"
        );
    }
    assert!(total(&seen, "saas_cache_lookups_total", &[("cache", "tenant")]) >= 1.0);
    assert!(total(&seen, "saas_sqlite_handles_opened_total", &[]) >= 1.0);
    assert!(
        total(&seen, "saas_http_requests_in_flight", &[]) >= 1.0,
        "the scrape itself"
    );

    // No label names the tenant, its domain, its id or its user.
    let (_, me) = http(addr, "GET", "/api/users/me/", &host, Some(&token), None);
    let user_id = me["id"].to_string();
    for (name, labels, _) in &seen {
        for (k, v) in labels {
            // `le` is a histogram bucket's bound, a number by design.
            let id_like = k != "le" && (v == &user_id || v == &pid.to_string());
            assert!(
                !v.contains(slug) && !v.contains("admin") && !id_like,
                "{name} has {k}={v}"
            );
        }
    }

    // Other clients need the token.
    let outside = [("X-Forwarded-For", "203.0.113.9")];
    let (st, _) = http_text(addr, "GET", "/metrics", "localhost", None, None, &outside);
    assert_eq!(st, 403);
    let (st, _) = http_text(
        addr,
        "GET",
        "/metrics",
        "localhost",
        Some("wrong"),
        None,
        &outside,
    );
    assert_eq!(st, 403);
    let (st, text) = http_text(
        addr,
        "GET",
        "/metrics",
        "localhost",
        Some("scrape-token-for-the-test"),
        None,
        &outside,
    );
    assert_eq!(st, 200);
    assert!(text.contains("saas_http_requests_total"));
    assert!(sigterm(&mut server).success());
}
