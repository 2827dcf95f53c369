//! How many statements each request costs on PostgreSQL: a regression
//! guard for the store's combined reads and writes.
//!
//! The store talks to PostgreSQL through a counting proxy that reads the
//! frontend protocol: every `Execute` message is a statement of the
//! extended protocol, every simple `Query` message one round trip of the
//! simple protocol (`BEGIN`, `COMMIT`, `BEGIN; SET LOCAL …`). Pool pings
//! (a bare `Sync`) are not statements and are not counted. Each request is
//! run twice to warm the caches (tenant, user, handle, prepared
//! statements), then counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use saas_core::Saas;
use saas_core::commands::TaskPatch;
use saas_core::projects::{Priority, TaskStatus};
use saas_core::session::TaskFilter;
use saas_core::store::PageRequest;
use saas_core::users::Role;
use saas_store_postgres::{PgConfig, PgStore, Routing};
use sqlx::postgres::PgConnectOptions;
use testkit::harness::{self, World};
use testkit::pg;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Statements the proxy has seen go to the server.
#[derive(Default)]
struct Counter {
    statements: AtomicU64,
}

impl Counter {
    fn take(&self) -> u64 {
        self.statements.swap(0, Ordering::SeqCst)
    }
}

/// A proxy on a loopback port to the test database, counting statements.
async fn proxy() -> (String, Arc<Counter>) {
    let direct: PgConnectOptions = pg::url().parse().expect("test URL");
    let upstream = format!("{}:{}", direct.get_host(), direct.get_port());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let counter = Arc::new(Counter::default());
    let shared = Arc::clone(&counter);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let counter = Arc::clone(&shared);
            tokio::spawn(async move {
                if let Ok(server) = TcpStream::connect(&upstream).await {
                    let _ = pump(client, server, &counter).await;
                }
            });
        }
    });
    let url = format!(
        "postgres://{}@127.0.0.1:{port}/{}?sslmode=disable",
        direct.get_username(),
        direct.get_database().unwrap_or("test")
    );
    (url, counter)
}

/// Forwards one connection both ways, counting the client's `Execute` and
/// `Query` messages.
async fn pump(client: TcpStream, server: TcpStream, counter: &Counter) -> std::io::Result<()> {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    tokio::spawn(async move { tokio::io::copy(&mut from_server, &mut to_client).await });
    // Untyped messages first: an SSL request (refused: sslmode=disable
    // never sends one), then the startup message.
    let len = from_client.read_u32().await?;
    let mut body = vec![0; len as usize - 4];
    from_client.read_exact(&mut body).await?;
    to_server.write_u32(len).await?;
    to_server.write_all(&body).await?;
    loop {
        let kind = from_client.read_u8().await?;
        let len = from_client.read_u32().await?;
        let mut body = vec![0; len as usize - 4];
        from_client.read_exact(&mut body).await?;
        if kind == b'E' || kind == b'Q' {
            counter.statements.fetch_add(1, Ordering::SeqCst);
        }
        to_server.write_u8(kind).await?;
        to_server.write_u32(len).await?;
        to_server.write_all(&body).await?;
    }
}

/// A tenant on `plan` with a member and a project holding a task, and the
/// statements each request costs, as `(request, statements)` (three
/// creates at most: within every plan's limit).
async fn statements_per_request(
    routing: Routing,
    pooler: bool,
    plan: &str,
) -> Vec<(&'static str, u64)> {
    let (url, counter) = proxy().await;
    let config = PgConfig::new(url)
        .with_routing(routing)
        .with_transaction_pooler(pooler)
        .with_max_connections(2);
    let store = PgStore::connect(config)
        .await
        .expect("connect through the proxy");
    let saas = Saas::builder(Arc::new(store))
        .secret(harness::SECRET)
        .plans(harness::small_catalog())
        .user_cache_ttl(Duration::from_secs(600))
        .build()
        .expect("service");
    let world = World::register(&saas, Some(plan)).await;
    let member = world.seed_user(Role::Member, "member").await;
    let owner = world.owner_session().await;
    let project = owner
        .create_project(harness::new_project("p"))
        .await
        .expect("project");
    owner
        .add_member(project.id, member.id)
        .await
        .expect("member");
    let task = owner
        .create_task(harness::new_task(project.id, "t"))
        .await
        .expect("task");
    let token = saas
        .login(&world.tenant, "admin", harness::PASSWORD)
        .await
        .expect("login")
        .access;
    let mut out = Vec::new();
    // The session comes from the token as a request's does; the count
    // starts after it (authentication reads the tenant again whenever its
    // cache entry expires, every few seconds, not per request).
    macro_rules! count {
        ($name:literal, |$s:ident| $request:expr) => {
            for round in 0..3 {
                let $s = saas
                    .authenticate(&world.tenant, &token)
                    .await
                    .expect("session");
                counter.take();
                $request.await.expect($name);
                let n = counter.take();
                if round == 2 {
                    out.push(($name, n));
                }
            }
        };
    }
    count!("detail", |s| s.task(task.id));
    count!("list", |s| s
        .list_tasks(&TaskFilter::default(), PageRequest::first()));
    count!("create", |s| {
        let mut new = harness::new_task(project.id, "n");
        new.assigned_to_id = Some(member.id);
        s.create_task(new)
    });
    count!("mark_complete", |s| s.mark_complete(task.id));
    count!("update", |s| {
        let patch = TaskPatch {
            priority: Some(Priority::Urgent),
            status: Some(TaskStatus::Review),
            ..TaskPatch::default()
        };
        s.update_task(task.id, patch)
    });
    count!("dashboard", |s| s.dashboard());
    count!("statistics", |s| s.statistics(project.id));
    out
}

/// Whether every store call is a transaction of its own (`BEGIN` and
/// `COMMIT` around it).
fn wrapped(routing: Routing, pooler: bool) -> bool {
    pooler || routing == Routing::SetLocalSearchPath
}

/// The statements each request must cost: `(request, statements, store
/// calls)`; each call costs a `BEGIN` and a `COMMIT` more when wrapped.
const EXPECTED: [(&str, u64, u64); 7] = [
    // The task with its project and members.
    ("detail", 1, 1),
    // The page beside its count.
    ("list", 1, 1),
    // The destination with its members and the assignee; the insert.
    ("create", 2, 2),
    // The task with its project; the update.
    ("mark_complete", 2, 2),
    ("update", 2, 2),
    // Everything in one statement.
    ("dashboard", 1, 1),
    // The project with its members and its counts.
    ("statistics", 1, 1),
];

async fn check(routing: Routing, pooler: bool) {
    if !pg::available().await {
        return;
    }
    let found = statements_per_request(routing, pooler, "roomy").await;
    let expected: Vec<(&str, u64)> = EXPECTED
        .iter()
        .map(|&(name, n, calls)| (name, n + 2 * calls * u64::from(wrapped(routing, pooler))))
        .collect();
    assert_eq!(found, expected, "{routing:?}, pooler {pooler}");
}

#[tokio::test]
async fn each_request_costs_its_statements_qualified() {
    check(Routing::QualifiedSql, false).await;
}

#[tokio::test]
async fn each_request_costs_its_statements_qualified_prepared() {
    check(Routing::QualifiedPrepared, false).await;
}

#[tokio::test]
async fn each_request_costs_its_statements_set_local() {
    check(Routing::SetLocalSearchPath, false).await;
}

#[tokio::test]
async fn each_request_costs_its_statements_behind_a_pooler() {
    check(Routing::QualifiedSql, true).await;
}

#[tokio::test]
async fn a_plan_limit_costs_a_locked_transaction_on_create() {
    if !pg::available().await {
        return;
    }
    let found = statements_per_request(Routing::QualifiedSql, false, "ten").await;
    let create = found.iter().find(|(name, _)| *name == "create");
    // The destination and the assignee; then BEGIN, the project's lock,
    // the count, the insert, COMMIT.
    assert_eq!(create, Some(&("create", 6)));
}
