//! Setting tenants up through the public API, as a client would: for a
//! server in another process (ours as a child, or the Django seed), where
//! the store cannot be reached directly.

use std::net::SocketAddr;

use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::error::Res;
use crate::server::Target;

/// One request on a connection of its own; the status and the JSON body
/// (`null` when the body is not JSON).
pub async fn call(
    addr: SocketAddr,
    method: hyper::Method,
    host: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Res<(u16, Value)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // An error shows up on the request below.
        let _ = conn.await;
    });
    let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let mut req = Request::new(Full::new(bytes));
    *req.method_mut() = method;
    *req.uri_mut() = path.parse()?;
    let h = req.headers_mut();
    h.insert(HOST, host.parse()?);
    if let Some(t) = token {
        h.insert(AUTHORIZATION, format!("Bearer {t}").parse()?);
    }
    if body.is_some() {
        h.insert(CONTENT_TYPE, "application/json".parse()?);
    }
    let response = sender.send_request(req).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

/// A call that must answer `status`; its body.
pub async fn expect(
    addr: SocketAddr,
    status: u16,
    method: hyper::Method,
    host: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Res<Value> {
    let (got, answer) = call(addr, method.clone(), host, path, token, body).await?;
    if got != status {
        return Err(
            format!("{method} {path} at {host}: {got}, expected {status}: {answer}").into(),
        );
    }
    Ok(answer)
}

/// `POST /api/register/` on the public host: a company `schema` on the
/// enterprise plan (no limits) at `<schema>.localhost`, its admin `admin`
/// with `password`. Returns the tenant's host.
pub async fn register(addr: SocketAddr, schema: &str, password: &str) -> Res<String> {
    let host = format!("{schema}.localhost");
    let body = json!({
        "company_name": format!("Bench {schema}"),
        "schema_name": schema,
        "domain_url": host,
        "admin_username": "admin",
        "admin_email": format!("admin@{schema}.example.com"),
        "admin_password": password,
        "subscription_plan": "enterprise",
    });
    let post = hyper::Method::POST;
    expect(
        addr,
        201,
        post,
        "localhost",
        "/api/register/",
        None,
        Some(&body),
    )
    .await?;
    Ok(host)
}

/// `POST /api/token/`: `username`'s access token at `host`.
pub async fn login(addr: SocketAddr, host: &str, username: &str, password: &str) -> Res<String> {
    let body = json!({"username": username, "password": password});
    let post = hyper::Method::POST;
    let answer = expect(addr, 200, post, host, "/api/token/", None, Some(&body)).await?;
    Ok(answer["access"]
        .as_str()
        .ok_or("no access token in the login answer")?
        .to_owned())
}

/// `POST path` of `body` at `host` as `token`'s holder, which must answer
/// 201; the new object's id.
async fn create(addr: SocketAddr, host: &str, token: &str, path: &str, body: &Value) -> Res<i64> {
    let post = hyper::Method::POST;
    let answer = expect(addr, 201, post, host, path, Some(token), Some(body)).await?;
    answer["id"]
        .as_i64()
        .ok_or_else(|| format!("no id in {answer}").into())
}

/// Fills the tenant at `host` through the API as its admin (`token`):
/// `users` more users (a manager, then members, all with `password`), a
/// project with them as members, and `tasks` tasks in it, assigned round
/// the users. Returns where its requests go.
pub async fn populate(
    addr: SocketAddr,
    host: &str,
    token: &str,
    password: &str,
    users: usize,
    tasks: usize,
) -> Res<Target> {
    let mut ids = Vec::new();
    for i in 0..users {
        let (name, role) = if i == 0 {
            ("manager".to_owned(), "manager")
        } else {
            (format!("member{i}"), "member")
        };
        let body = json!({
            "username": name,
            "email": format!("{name}@bench.localhost"),
            "password": password,
            "first_name": "Bench",
            "last_name": name,
            "role": role,
            "department": "Engineering",
        });
        ids.push(create(addr, host, token, "/api/users/register/", &body).await?);
    }
    let body = json!({"name": "Bench project", "description": "Where the benchmark's tasks live"});
    let project = create(addr, host, token, "/api/projects/", &body).await?;
    for u in &ids {
        let path = format!("/api/projects/{project}/add_member/");
        let body = json!({"user_id": u});
        let post = hyper::Method::POST;
        expect(addr, 200, post, host, &path, Some(token), Some(&body)).await?;
    }
    let mut task_ids = (i64::MAX, i64::MIN);
    const STATUSES: [&str; 4] = ["todo", "in_progress", "review", "done"];
    const PRIORITIES: [&str; 4] = ["low", "medium", "high", "urgent"];
    for i in 0..tasks {
        let (status, priority) = (STATUSES[i % 4], PRIORITIES[(i / 4) % 4]);
        let mut body = json!({
            "project": project,
            "title": format!("Task {i}"),
            "description": format!("Something to do for task {i}, described at ordinary length."),
            "status": status,
            "priority": priority,
        });
        if i % 5 != 0 && !ids.is_empty() {
            body["assigned_to_id"] = json!(ids[(i / 5) % ids.len()]);
        }
        let t = create(addr, host, token, "/api/tasks/", &body).await?;
        task_ids = (task_ids.0.min(t), task_ids.1.max(t));
    }
    let member = ids.get(1).or(ids.first()).copied().unwrap_or_default();
    Target::new(host, token, project, member, task_ids)
}
