//! `console`: the web console's tenant list and search at a fleet of N
//! tenants (10,000 by default): latency of `GET /console/tenants` (the
//! first page, 25 tenants with their usage) and of a search by slug, as a
//! signed-in superuser, over real HTTP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use saas_bench::client::LoadArgs;
use saas_bench::fixture::{new_tenant, user_record};
use saas_bench::measure::{ms, round3};
use saas_bench::server::saas;
use saas_bench::storage::{Env, PASSWORD, StorageArgs};
use saas_bench::{BoxError, Res};
use saas_core::store::PageRequest;
use saas_core::users::Role;
use serde_json::{Value, json};

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    load: LoadArgs,
    /// Tenants in the catalog (missing ones are created; on PostgreSQL they
    /// stay in the benchmark database for later runs).
    #[arg(long, default_value_t = 10_000)]
    tenants: usize,
}

/// The slug of fleet tenant `i`.
fn slug(i: usize) -> String {
    format!("console_{i:06}")
}

/// Creates the fleet's missing tenants, eight at a time.
async fn ensure_fleet(env: &Env, n: usize) -> Res<(usize, f64)> {
    let start = Instant::now();
    let existing = env.store.list_tenants(PageRequest::first()).await?.count;
    let existing = usize::try_from(existing).unwrap_or(0);
    if existing >= n {
        return Ok((0, 0.0));
    }
    let admin = user_record(&env.hash, "admin", Role::Admin, true)?;
    // Eight creators, creator k taking tenants k, k + 8, k + 16, ...
    let mut creators = tokio::task::JoinSet::new();
    for k in 0..8 {
        let store = Arc::clone(&env.store);
        let admin = admin.clone();
        creators.spawn(async move {
            let mut created = 0usize;
            for i in (k..n).step_by(8) {
                let slug = saas_core::tenancy::Slug::parse(&slug(i))?;
                if store.tenant_by_slug(&slug).await?.is_some() {
                    continue;
                }
                store
                    .create_tenant(&new_tenant(slug.as_str())?, &admin)
                    .await?;
                created += 1;
                if i % 1000 == 0 {
                    eprintln!("console: tenant {i} of {n}");
                }
            }
            Ok::<usize, BoxError>(created)
        });
    }
    let mut created = 0;
    while let Some(r) = creators.join_next().await {
        created += r??;
    }
    Ok((created, round3(ms(start.elapsed()) / 1000.0)))
}

/// One request with `host` and `cookie`; returns the response's
/// `Set-Cookie` session id, if any, and its body.
async fn call(
    addr: SocketAddr,
    method: Method,
    path: &str,
    cookie: Option<&str>,
    form: Option<String>,
) -> Res<(Option<String>, String)> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("host", "platform.bench.localhost");
    if let Some(c) = cookie {
        req = req.header("cookie", format!("saas_console={c}"));
    }
    let body = match form {
        Some(f) => {
            req = req.header("content-type", "application/x-www-form-urlencoded");
            Full::new(Bytes::from(f))
        }
        None => Full::new(Bytes::new()),
    };
    let resp = client.request(req.body(body)?).await?;
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("saas_console="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    let text = String::from_utf8_lossy(&resp.into_body().collect().await?.to_bytes()).into_owned();
    Ok((cookie, text))
}

/// Signs a fresh superuser in; returns its session id.
async fn sign_in(addr: SocketAddr, env: &Env) -> Res<String> {
    let name = format!("bench{}", uuid::Uuid::new_v4().simple());
    let name = &name[..20];
    let username = saas_core::users::Username::parse(name)?;
    let email = saas_core::users::Email::parse("root@bench.localhost")?;
    env.store
        .create_superuser(&username, &email, &env.hash)
        .await?;
    let (anon, form) = call(addr, Method::GET, "/console/", None, None).await?;
    let anon = anon.ok_or("the sign-in form set no cookie")?;
    let csrf = form
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .ok_or("no csrf token")?;
    let body = format!("csrf={csrf}&username={name}&password={PASSWORD}");
    let (session, _) = call(
        addr,
        Method::POST,
        "/console/sign-in",
        Some(&anon),
        Some(body),
    )
    .await?;
    session.ok_or_else(|| "sign-in failed".into())
}

pub(crate) async fn run(args: &Args) -> Res<Value> {
    let env = Env::open(&args.storage).await?;
    let (created, create_s) = ensure_fleet(&env, args.tenants).await?;
    let total = env.store.list_tenants(PageRequest::first()).await?.count;
    eprintln!("console: {total} tenants ({created} created in {create_s} s)");
    let addr = saas_bench::server::start(saas(&env)?).await?;
    let session = sign_in(addr, &env).await?;
    let mut results = serde_json::Map::new();
    let n = args.tenants.max(1);
    for (name, path) in [
        (
            "tenant_list",
            Arc::new(|_: usize| "/console/tenants".to_owned())
                as Arc<dyn Fn(usize) -> String + Send + Sync>,
        ),
        (
            "search_by_slug",
            Arc::new(move |i: usize| format!("/console/tenants?q={}", slug((i * 7919) % n))),
        ),
        (
            "search_by_domain",
            Arc::new(move |i: usize| {
                format!(
                    "/console/tenants?q={}.bench",
                    slug((i * 104_729) % n).replace('_', "-")
                )
            }),
        ),
        (
            "search_by_name_sorted",
            Arc::new(|_: usize| "/console/tenants?q=bench+console&sort=name&desc=1".to_owned()),
        ),
    ] {
        let cookie = format!("saas_console={session}");
        let make = Arc::new(move |i: usize| {
            Request::builder()
                .method(Method::GET)
                .uri(path(i))
                .header("host", "platform.bench.localhost")
                .header("cookie", cookie.as_str())
                .body(Full::new(Bytes::new()))
                .expect("a valid request")
        });
        let outcome = args.load.drive(addr, make).await?;
        if outcome.errors > 0 {
            return Err(format!(
                "{name}: {} errors, first {:?}",
                outcome.errors, outcome.first_error
            )
            .into());
        }
        eprintln!(
            "console: {name} p50 {} ms p99 {} ms",
            round3(outcome.p(0.5)),
            round3(outcome.p(0.99))
        );
        results.insert(name.to_owned(), outcome.json());
    }
    Ok(json!({
        "scenario": "console",
        "backend": env.backend.name(),
        "tenants": total,
        "created": created,
        "create_seconds": create_s,
        "connections": args.load.connections,
        "results": results,
    }))
}
