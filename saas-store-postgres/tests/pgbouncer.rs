//! The store behind a real PgBouncer in transaction mode (Debian's 1.18,
//! which forwards no prepared statements), with one or two server
//! connections shared by every client, so that tenants' units of work
//! interleave on the same server session.
//!
//! The test starts its own `pgbouncer` (a temporary directory with its own
//! configuration, a free port, killed on drop). Without `pgbouncer`
//! installed it is skipped, unless `SAAS_REQUIRE_POSTGRES=1`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use saas_core::projects::Scope;
use saas_core::store::{PageRequest, Store, TenantStore};
use saas_core::tenancy::Tenant;
use saas_core::users::{Role, UserId};
use saas_store_postgres::{PgConfig, PgStore, Routing};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, Row};
use testkit::{pg, records};

/// A running PgBouncer; killed, and its directory removed, on drop.
struct Bouncer {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Bouncer {
    /// `postgres://…@127.0.0.1:<port>/<database>` through the bouncer.
    fn url(&self) -> String {
        let direct: PgConnectOptions = pg::url().parse().expect("test URL");
        format!(
            "postgres://{}@127.0.0.1:{}/{}",
            direct.get_username(),
            self.port,
            direct.get_database().unwrap_or("test")
        )
    }
}

fn find_pgbouncer() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|d| d.join("pgbouncer"))
        .find(|p| p.is_file())
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Starts PgBouncer in transaction mode with `pool_size` server
/// connections to the test database; `None` (skip) when it is not installed.
async fn start(pool_size: u32) -> Option<Bouncer> {
    if !pg::available().await {
        return None;
    }
    let Some(binary) = find_pgbouncer() else {
        if std::env::var("SAAS_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
            panic!("pgbouncer is not installed and SAAS_REQUIRE_POSTGRES=1");
        }
        eprintln!("note: pgbouncer is not installed; skipping");
        return None;
    };
    let direct: PgConnectOptions = pg::url().parse().expect("test URL");
    let database = direct.get_database().unwrap_or("test").to_owned();
    let user = direct.get_username().to_owned();
    let dir = std::env::temp_dir().join(format!("saas-pgbouncer-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let port = free_port();
    let ini = format!(
        "[databases]\n\
         {database} = host={host} port={pg_port} dbname={database} user={user}\n\
         [pgbouncer]\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {port}\n\
         unix_socket_dir =\n\
         auth_type = trust\n\
         auth_file = {auth}\n\
         pool_mode = transaction\n\
         default_pool_size = {pool_size}\n\
         min_pool_size = 0\n\
         reserve_pool_size = 0\n\
         max_client_conn = 200\n\
         server_reset_query =\n",
        host = direct.get_host(),
        pg_port = direct.get_port(),
        auth = dir.join("users.txt").display(),
    );
    write(&dir.join("users.txt"), &format!("\"{user}\" \"\"\n"));
    write(&dir.join("pgbouncer.ini"), &ini);
    let mut cmd = Command::new(binary);
    // PgBouncer refuses to run as root; it drops to another user itself.
    if running_as_root() {
        cmd.arg("-u").arg("nobody");
    }
    if std::env::var_os("SAAS_PGBOUNCER_VERBOSE").is_none() {
        cmd.arg("-q");
    }
    let child = cmd
        .arg(dir.join("pgbouncer.ini"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start pgbouncer");
    let bouncer = Bouncer { child, dir, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "pgbouncer did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Some(bouncer)
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write pgbouncer files");
}

/// A plain client of the bouncer, as the next user of a server connection
/// would be: simple-protocol queries only, so it works behind any pooler.
async fn next_user(bouncer: &Bouncer) -> PgConnection {
    bouncer
        .url()
        .parse::<PgConnectOptions>()
        .expect("url")
        .extra_float_digits(None)
        .connect()
        .await
        .expect("connect through pgbouncer")
}

/// What the next user of the (only) server connection finds: the default
/// search path, no open transaction, no prepared statement, no tenant table.
async fn assert_nothing_inherited(conn: &mut PgConnection, default_path: &str) {
    let row = sqlx::raw_sql("SHOW search_path")
        .fetch_one(&mut *conn)
        .await
        .expect("show search_path");
    let path: String = row.get(0);
    assert_eq!(path, default_path, "search_path leaked");
    let row = sqlx::raw_sql("SELECT count(*)::text FROM pg_prepared_statements")
        .fetch_one(&mut *conn)
        .await
        .expect("prepared statements");
    let named: String = row.get(0);
    assert_eq!(
        named, "0",
        "a named prepared statement was left on the server"
    );
    let err = sqlx::raw_sql("SELECT count(*) FROM projects")
        .execute(&mut *conn)
        .await
        .expect_err("no tenant table resolves unqualified");
    assert_eq!(
        err.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("42P01")
    );
}

/// `rounds` of writes and reads on one tenant, each checking that only
/// this tenant's rows are visible.
async fn workload(t: Arc<dyn TenantStore>, tag: &'static str, owner: UserId, rounds: usize) {
    for i in 0..rounds {
        t.create_project(&records::project_record(&format!("{tag}-{i}"), owner), None)
            .await
            .expect("create project");
        let page = t
            .list_projects(
                Scope::All,
                PageRequest::new(Some(1), Some(100)).expect("page"),
            )
            .await
            .expect("list projects");
        assert_eq!(
            page.count,
            i as u64 + 1,
            "{tag} sees another tenant's projects"
        );
        assert!(
            page.items.iter().all(|p| p.name.starts_with(tag)),
            "{tag} sees {:?}",
            page.items.iter().map(|p| &p.name).collect::<Vec<_>>()
        );
        let username = format!("{tag}{i}");
        let user = t
            .create_user(&records::user_record(&username, Role::Member), Some(1000))
            .await
            .expect("create user");
        assert_eq!(t.count_users().await.expect("count"), i as u64 + 2);
        assert!(t.user(user.id).await.expect("user").is_some());
        assert!(
            t.credentials(&username.to_ascii_lowercase())
                .await
                .expect("credentials")
                .is_some()
        );
    }
}

/// Reads in a loop, checking that every project seen is this tenant's.
async fn reader(t: Arc<dyn TenantStore>, tag: &'static str, rounds: usize) {
    for _ in 0..rounds {
        let page = t
            .list_projects(
                Scope::All,
                PageRequest::new(Some(1), Some(100)).expect("page"),
            )
            .await
            .expect("list projects");
        assert!(
            page.items.iter().all(|p| p.name.starts_with(tag)),
            "{tag} sees {:?}",
            page.items.iter().map(|p| &p.name).collect::<Vec<_>>()
        );
        let users = t
            .list_users(PageRequest::new(Some(1), Some(100)).expect("page"))
            .await
            .expect("list users");
        assert!(
            users
                .items
                .iter()
                .all(|u| u.username.as_str() == "admin" || u.username.as_str().starts_with(tag)),
            "{tag} sees another tenant's users"
        );
    }
}

async fn interleaved_tenants_stay_apart(routing: Routing, pool_size: u32) {
    let Some(bouncer) = start(pool_size).await else {
        return;
    };
    let mut direct = PgConnection::connect(&pg::url()).await.expect("direct");
    let default_path: String = sqlx::raw_sql("SHOW search_path")
        .fetch_one(&mut direct)
        .await
        .expect("default search_path")
        .get(0);
    let config = PgConfig::new(bouncer.url())
        .with_routing(routing)
        .with_transaction_pooler(true)
        .with_max_connections(8);
    let store = PgStore::connect(config)
        .await
        .expect("connect through pgbouncer");
    let (ta, admin_a) = records::tenant(&store).await;
    let (tb, admin_b) = records::tenant(&store).await;
    let a = store.open(&ta).await.expect("open a");
    let b = store.open(&tb).await.expect("open b");

    // Many clients at once, two tenants, one or two server connections:
    // the bouncer interleaves their transactions on the same sessions.
    let mut runs = vec![
        tokio::spawn(workload(Arc::clone(&a), "alpha", admin_a.id, 15)),
        tokio::spawn(workload(Arc::clone(&b), "beta", admin_b.id, 15)),
    ];
    for (h, tag) in [(&a, "alpha"), (&b, "beta"), (&a, "alpha"), (&b, "beta")] {
        runs.push(tokio::spawn(reader(Arc::clone(h), tag, 30)));
    }
    for r in runs {
        r.await.expect("a client failed");
    }

    // One more operation at a time, each followed by the next user of the
    // server connection looking at what is left on it.
    let mut next = next_user(&bouncer).await;
    let failing = records::user_record("admin", Role::Admin);
    for (h, other) in [(&a, &tb), (&b, &ta)] {
        h.count_users().await.expect("count");
        assert_nothing_inherited(&mut next, &default_path).await;
        h.list_projects(Scope::All, PageRequest::first())
            .await
            .expect("list");
        assert_nothing_inherited(&mut next, &default_path).await;
        h.create_user(&failing, Some(1000))
            .await
            .expect_err("a failed transaction");
        assert_nothing_inherited(&mut next, &default_path).await;
        store.tenant(other.id).await.expect("catalog read");
        assert_nothing_inherited(&mut next, &default_path).await;
    }
    assert_eq!(a.count_users().await.expect("a"), 16);
    assert_eq!(b.count_users().await.expect("b"), 16);
    store.purge_tenant(ta.id, None).await.expect("cleanup");
    store.purge_tenant(tb.id, None).await.expect("cleanup");
    assert_nothing_inherited(&mut next, &default_path).await;
    drop(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qualified_sql_through_pgbouncer_two_server_connections() {
    interleaved_tenants_stay_apart(Routing::QualifiedSql, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_local_search_path_through_pgbouncer_one_server_connection() {
    interleaved_tenants_stay_apart(Routing::SetLocalSearchPath, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qualified_prepared_through_pgbouncer_two_server_connections() {
    // Pooler mode turns the prepared variant's statements unnamed too.
    interleaved_tenants_stay_apart(Routing::QualifiedPrepared, 2).await;
}

/// The control: without pooler mode, two stores sharing one server
/// connection both name their first statement `sqlx_s_1`, and the second
/// one fails. This is what pooler mode exists for, and it shows that the
/// tests above really share server sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_statements_collide_without_pooler_mode() {
    let Some(bouncer) = start(1).await else {
        return;
    };
    let config = || PgConfig::new(bouncer.url()).with_max_connections(1);
    let mut failures = 0;
    let mut stores = Vec::new();
    for _ in 0..2 {
        match PgStore::connect(config()).await {
            Ok(s) => stores.push(s),
            Err(_) => failures += 1,
        }
    }
    for s in &stores {
        for _ in 0..3 {
            let probe: Tenant = records::new_tenant().to_tenant("default");
            if s.tenant(probe.id).await.is_err() {
                failures += 1;
            }
        }
    }
    assert!(
        failures > 0,
        "named statements did not collide: is the bouncer really pooling?"
    );
}

/// The job queue of a pooler-mode store, behind one server connection that
/// its own pool's eight clients and a second store share: the whole queue
/// conformance run, then eight workers racing over 200 jobs with
/// `enqueue_in` inside callers' transactions and batched completions. Every
/// job ends succeeded exactly once, and no named statement is left on the
/// server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_queue_through_pgbouncer_one_server_connection() {
    use saas_core::jobs::{ClaimRequest, JobQueue, JobStatus, NewJob};
    use saas_store_postgres::PgQueue;
    use sqlx::Acquire;

    let Some(bouncer) = start(1).await else {
        return;
    };
    let mut direct = PgConnection::connect(&pg::url()).await.expect("direct");
    let default_path: String = sqlx::raw_sql("SHOW search_path")
        .fetch_one(&mut direct)
        .await
        .expect("default search_path")
        .get(0);
    let config = || {
        PgConfig::new(bouncer.url())
            .with_transaction_pooler(true)
            .with_max_connections(8)
    };
    let store = PgStore::connect(config()).await.expect("store");
    let other = PgStore::connect(config()).await.expect("second store");
    let queue = PgQueue::for_store(&store).await.expect("queue");
    let second = PgQueue::for_store(&other).await.expect("second queue");
    testkit::queue_conformance::run_all(&queue).await;

    let kind = format!("bouncer_{}", uuid::Uuid::new_v4().simple());
    let now = records::now();
    let mut producers = Vec::new();
    for p in 0..4 {
        let (queue, kind) = (queue.clone(), kind.clone());
        producers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..50 {
                let job = NewJob::new(&kind, serde_json::json!({ "p": p, "i": i }));
                let id = if i % 2 == 0 {
                    queue.enqueue(&job, now).await.expect("enqueue").id
                } else {
                    let mut conn = queue.pool().acquire().await.expect("connection");
                    let mut tx = conn.begin().await.expect("begin");
                    let id = PgQueue::enqueue_in(&mut tx, &job, now)
                        .await
                        .expect("enqueue_in")
                        .id;
                    tx.commit().await.expect("commit");
                    id
                };
                ids.push(id);
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for p in producers {
        ids.extend(p.await.expect("producer"));
    }
    assert_eq!(ids.len(), 200);

    let mut workers = Vec::new();
    for w in 0..8 {
        let queue = if w % 2 == 0 {
            queue.clone()
        } else {
            second.clone()
        };
        let kind = kind.clone();
        workers.push(tokio::spawn(async move {
            let request = ClaimRequest {
                worker: format!("w{w}"),
                lease: Duration::from_secs(60),
                limit: 7,
                kinds: vec![kind],
            };
            let mut done = 0;
            loop {
                let batch = queue.claim(&request, records::now()).await.expect("claim");
                if batch.is_empty() {
                    return done;
                }
                for job in &batch {
                    queue
                        .heartbeat(
                            job.id,
                            job.attempt,
                            records::now() + chrono::Duration::seconds(60),
                        )
                        .await
                        .expect("heartbeat");
                }
                let results: Vec<_> = batch
                    .iter()
                    .map(|j| (j.id, j.attempt, serde_json::json!(w)))
                    .collect();
                for r in queue
                    .complete_many(&results, records::now())
                    .await
                    .expect("complete_many")
                {
                    r.expect("the claimer completes its job");
                    done += 1;
                }
            }
        }));
    }
    let mut total = 0;
    for w in workers {
        total += w.await.expect("worker");
    }
    assert_eq!(total, 200, "every job completed once");
    for id in ids {
        let record = queue.job(id).await.expect("job").expect("stored");
        assert_eq!(record.status, JobStatus::Succeeded);
        assert_eq!(record.attempts, 1, "no job ran twice");
    }
    let mut next = next_user(&bouncer).await;
    let row = sqlx::raw_sql("SELECT count(*)::text FROM pg_prepared_statements")
        .fetch_one(&mut next)
        .await
        .expect("prepared statements");
    let named: String = row.get(0);
    assert_eq!(
        named, "0",
        "a named prepared statement was left on the server"
    );
    let path: String = sqlx::raw_sql("SHOW search_path")
        .fetch_one(&mut next)
        .await
        .expect("search_path")
        .get(0);
    assert_eq!(path, default_path);
}

/// Inserts and reads back notes of one tenant through the scoped access,
/// checking it never sees another tenant's. Behind a transaction pooler a
/// host's statements are unnamed, as ours are (`persistent(false)`).
async fn notes_workload(t: Arc<dyn TenantStore>, tag: &'static str, rounds: usize) {
    for i in 0..rounds {
        let title = format!("{tag}-{i}");
        saas_store_postgres::with_tenant_tx(&t, |tx| {
            Box::pin(async move {
                sqlx::query("INSERT INTO notes (title) VALUES ($1)")
                    .persistent(false)
                    .bind(title)
                    .execute(&mut *tx)
                    .await
                    .map_err(saas_core::Error::backend)
            })
        })
        .await
        .expect("insert a note");
        let titles: Vec<String> = saas_store_postgres::with_tenant_tx(&t, |tx| {
            Box::pin(async move {
                sqlx::query_scalar("SELECT title FROM notes")
                    .persistent(false)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(saas_core::Error::backend)
            })
        })
        .await
        .expect("read notes");
        assert!(
            titles.iter().all(|s| s.starts_with(tag)),
            "{tag} sees another tenant's notes: {titles:?}"
        );
        assert_eq!(titles.len(), i + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_tables_through_pgbouncer_one_server_connection() {
    let Some(bouncer) = start(1).await else {
        return;
    };
    let mut direct = PgConnection::connect(&pg::url()).await.expect("direct");
    let default_path: String = sqlx::raw_sql("SHOW search_path")
        .fetch_one(&mut direct)
        .await
        .expect("default search_path")
        .get(0);
    let config = PgConfig::new(bouncer.url())
        .with_transaction_pooler(true)
        .with_max_connections(8)
        .with_apps(testkit::apps::registry(testkit::apps::notes_migrations()));
    let store = PgStore::connect(config)
        .await
        .expect("connect through pgbouncer");
    let (ta, _) = records::tenant(&store).await;
    let (tb, _) = records::tenant(&store).await;
    let a = store.open(&ta).await.expect("open a");
    let b = store.open(&tb).await.expect("open b");
    let runs = vec![
        tokio::spawn(notes_workload(Arc::clone(&a), "alpha", 20)),
        tokio::spawn(notes_workload(Arc::clone(&b), "beta", 20)),
        tokio::spawn(reader(Arc::clone(&a), "alpha", 20)),
    ];
    for r in runs {
        r.await.expect("a client failed");
    }
    // A scoped transaction leaves nothing on the server connection: its
    // next user resolves no tenant table.
    let mut next = next_user(&bouncer).await;
    let n: i64 = saas_store_postgres::with_tenant_tx(&b, |tx| {
        Box::pin(async move {
            sqlx::query_scalar("SELECT count(*) FROM notes")
                .persistent(false)
                .fetch_one(&mut *tx)
                .await
                .map_err(saas_core::Error::backend)
        })
    })
    .await
    .expect("count notes");
    assert_eq!(n, 20);
    assert_nothing_inherited(&mut next, &default_path).await;
    for id in [ta.id, tb.id] {
        store
            .delete_tenant(id, chrono::Utc::now())
            .await
            .expect("cleanup");
        store.purge_tenant(id, None).await.expect("purge");
    }
}
