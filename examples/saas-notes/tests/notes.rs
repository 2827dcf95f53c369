//! The built `saas-notes` binary, end to end on each backend: `serve` on a
//! free port, then over real HTTP two tenants register and log in, write
//! and page through notes (never seeing each other's), bad input gets a
//! 400 in our error shape, a viewer may read but not write, the
//! word-counting job runs and the welcome-note event handler fires; the
//! seed's API is served by the same server, and `migrate` finds nothing
//! left to do.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const NOTES: &str = env!("CARGO_BIN_EXE_saas-notes");
const PASSWORD: &str = "securepassword123";

/// `saas-notes` configured for a test: data under `dir`, PostgreSQL at
/// `database_url` when given.
fn command(dir: &Path, database_url: Option<&str>) -> Command {
    let mut cmd = testkit::program::command(NOTES, dir);
    cmd.env("WORKER_POLL_MS", "50")
        .env("DATA_DIR", dir.join("data"));
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    cmd
}

/// A running `saas-notes serve`, killed when dropped.
struct Server {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tenant's host and its admin's access token.
struct Tenant {
    host: String,
    token: String,
}

/// One answer: status and JSON body (Null when none).
struct Answer {
    status: StatusCode,
    body: Value,
}

impl Answer {
    fn expect(self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        self.body
    }

    /// Our error shape, with `code`.
    fn expect_error(self, status: u16, code: &str) -> Value {
        let body = self.expect(status);
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
        body
    }
}

impl Server {
    /// Starts `serve` on a free port and waits for its greeting.
    fn start(dir: &Path, database_url: Option<&str>) -> Server {
        let mut cmd = command(dir, database_url);
        cmd.args(["serve", "--bind", "127.0.0.1:0"]);
        let (child, addr) = testkit::program::serve(cmd, "saas-notes", dir);
        Server {
            child,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        host: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("host", host);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    async fn get(&self, t: &Tenant, path: &str) -> Answer {
        self.call(Method::GET, path, &t.host, Some(&t.token), None)
            .await
    }

    async fn post(&self, t: &Tenant, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, &t.host, Some(&t.token), Some(body))
            .await
    }

    /// Registers tenant `slug` and logs its admin in.
    async fn tenant(&self, slug: &str) -> Tenant {
        let host = format!("{}.localhost", slug.replace('_', "-"));
        self.call(
            Method::POST,
            "/api/register/",
            "localhost",
            None,
            Some(json!({
                "company_name": format!("{slug} Inc"), "schema_name": slug, "domain_url": host,
                "admin_username": "admin", "admin_email": format!("admin@{host}"),
                "admin_password": PASSWORD, "subscription_plan": "basic",
            })),
        )
        .await
        .expect(201);
        let tokens = self
            .call(
                Method::POST,
                "/api/token/",
                &host,
                None,
                Some(json!({"username": "admin", "password": PASSWORD})),
            )
            .await
            .expect(200);
        Tenant {
            host,
            token: tokens["access"].as_str().expect("access").to_owned(),
        }
    }

    /// Polls `GET /api/notes/` until `done` holds of the page (the worker
    /// runs in the server's process).
    async fn notes_until(&self, t: &Tenant, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let page = self.get(t, "/api/notes/?page_size=100").await.expect(200);
            if done(&page) {
                return page;
            }
            assert!(Instant::now() < deadline, "{what} never happened: {page}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn titles(page: &Value) -> Vec<&str> {
    page["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|n| n["title"].as_str().expect("title"))
        .collect()
}

async fn notes_end_to_end(dir: &Path, database_url: Option<&str>) {
    let server = Server::start(dir, database_url);
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let a = server.tenant(&format!("notes_a{suffix}")).await;
    let b = server.tenant(&format!("notes_b{suffix}")).await;

    // The event handler: every new tenant gets its welcome note.
    let welcomed = server
        .notes_until(&a, "the welcome note", |p| p["count"] == 1)
        .await;
    assert_eq!(titles(&welcomed), ["Welcome to notes"]);
    assert_eq!(welcomed["results"][0]["created_by"], Value::Null);

    // Writing: 201 with the note; the job counts its words.
    let note = server
        .post(
            &a,
            "/api/notes/",
            json!({"title": "  Launch plan ", "body": "ship it on monday"}),
        )
        .await
        .expect(201);
    assert_eq!(note["title"], "Launch plan");
    assert_eq!(note["body"], "ship it on monday");
    assert!(note["created_by"].is_i64(), "{note}");
    assert!(note["created_at"].is_string(), "{note}");
    let id = note["id"].as_i64().expect("id");
    let counted = server
        .notes_until(&a, "the word count", |p| {
            p["results"]
                .as_array()
                .is_some_and(|r| r.iter().any(|n| n["id"] == id && n["words"] == 4))
        })
        .await;
    assert_eq!(counted["count"], 2);

    // DRF-style pages.
    for i in 0..3 {
        server
            .post(&a, "/api/notes/", json!({"title": format!("Note {i}")}))
            .await
            .expect(201);
    }
    let first = server.get(&a, "/api/notes/?page_size=2").await.expect(200);
    assert_eq!(first["count"], 5);
    assert_eq!(titles(&first), ["Welcome to notes", "Launch plan"]);
    assert_eq!(first["previous"], Value::Null);
    let next = first["next"].as_str().expect("a next page");
    assert!(next.ends_with("/api/notes/?page_size=2&page=2"), "{next}");
    let last = server
        .get(&a, "/api/notes/?page_size=2&page=3")
        .await
        .expect(200);
    assert_eq!(titles(&last), ["Note 2"]);
    assert_eq!(last["next"], Value::Null);
    server
        .get(&a, "/api/notes/?page=9")
        .await
        .expect_error(404, "not_found");
    server
        .get(&a, "/api/notes/?page=x")
        .await
        .expect_error(400, "invalid");

    // Isolation: the other tenant has its own welcome note and nothing of A's.
    let theirs = server
        .notes_until(&b, "B's welcome note", |p| p["count"] == 1)
        .await;
    assert_eq!(titles(&theirs), ["Welcome to notes"]);
    server
        .post(&b, "/api/notes/", json!({"title": "B only"}))
        .await
        .expect(201);
    let mine = server
        .get(&a, "/api/notes/?page_size=100")
        .await
        .expect(200);
    assert!(!titles(&mine).contains(&"B only"), "{mine}");
    // A's token at B's host is refused, as any bad token.
    let crossed = Tenant {
        host: b.host.clone(),
        token: a.token.clone(),
    };
    server
        .get(&crossed, "/api/notes/")
        .await
        .expect_error(401, "unauthenticated");
    server
        .call(Method::GET, "/api/notes/", &a.host, None, None)
        .await
        .expect_error(401, "unauthenticated");

    // Bad input: 400 in our error shape, nothing written.
    let blank = server
        .post(&a, "/api/notes/", json!({"title": "   "}))
        .await
        .expect_error(400, "invalid");
    assert!(blank["error"]["fields"]["title"].is_string(), "{blank}");
    let long = server
        .post(
            &a,
            "/api/notes/",
            json!({"title": "t", "body": "b".repeat(10_001)}),
        )
        .await
        .expect_error(400, "invalid");
    assert!(long["error"]["fields"]["body"].is_string(), "{long}");
    for bad in [json!({"body": "no title"}), json!({"title": 5}), json!([1])] {
        let answer = server.post(&a, "/api/notes/", bad).await;
        assert_eq!(answer.status, 400, "{}", answer.body);
        assert!(answer.body["error"]["code"].is_string(), "{}", answer.body);
    }
    let raw = server
        .http
        .post(format!("{}/api/notes/", server.base))
        .header("host", &a.host)
        .bearer_auth(&a.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(raw.status(), 400);
    server
        .call(Method::DELETE, "/api/notes/", &a.host, Some(&a.token), None)
        .await
        .expect_error(405, "method_not_allowed");
    let after = server.get(&a, "/api/notes/").await.expect(200);
    assert_eq!(after["count"], 5, "bad input wrote nothing: {after}");

    // The role matrix judges the host's action: a viewer reads, never writes.
    server
        .post(
            &a,
            "/api/users/register/",
            json!({"username": "vera", "email": "vera@a.test", "password": PASSWORD, "role": "viewer"}),
        )
        .await
        .expect(201);
    let tokens = server
        .call(
            Method::POST,
            "/api/token/",
            &a.host,
            None,
            Some(json!({"username": "vera", "password": PASSWORD})),
        )
        .await
        .expect(200);
    let viewer = Tenant {
        host: a.host.clone(),
        token: tokens["access"].as_str().expect("access").to_owned(),
    };
    server.get(&viewer, "/api/notes/").await.expect(200);
    server
        .post(&viewer, "/api/notes/", json!({"title": "nope"}))
        .await
        .expect_error(403, "forbidden");

    // The seed's API is the same server's.
    let project = server
        .post(&a, "/api/projects/", json!({"name": "Website"}))
        .await
        .expect(201);
    assert_eq!(project["name"], "Website");
    server.get(&a, "/api/dashboard/").await.expect(200);

    // The notes' migrations reached every tenant at registration.
    let migrated = command(dir, database_url)
        .arg("migrate")
        .stdin(Stdio::null())
        .output()
        .expect("run saas-notes migrate");
    assert!(
        migrated.status.success(),
        "migrate failed: {}",
        String::from_utf8_lossy(&migrated.stderr)
    );
}

#[tokio::test]
async fn sqlite_notes_end_to_end() {
    let dir = tempfile::tempdir().expect("temp dir");
    notes_end_to_end(dir.path(), None).await;
}

#[tokio::test]
async fn postgres_notes_end_to_end() {
    if !testkit::pg::available().await {
        return;
    }
    let db = format!(
        "notes_e2e_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    testkit::pg::ensure_database(&db).await;
    let dir = tempfile::tempdir().expect("temp dir");
    notes_end_to_end(dir.path(), Some(&testkit::pg::url_for(&db))).await;
    testkit::pg::drop_database(&db).await;
}
