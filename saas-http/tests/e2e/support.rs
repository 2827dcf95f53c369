//! Starts the real router on a random port over real HTTP, against a fresh
//! SQLite directory or the test PostgreSQL database, and speaks to it as a
//! client would.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use saas_core::Saas;
use saas_core::jobs::builtin::{BuiltinConfig, WelcomeEmailListener};
use saas_core::jobs::mail::MemoryMailer;
use saas_core::jobs::{JobQueue, Jobs, WorkerConfig, WorkerStats};
use saas_core::store::Store;
use saas_http::{AppState, HttpConfig, ServerLimits, router};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;

/// Which storage backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

fn pg_url() -> String {
    std::env::var("SAAS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn pg_required() -> bool {
    std::env::var("SAAS_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// A store, its job queue, and the temporary directory to keep alive.
type Storage = (Arc<dyn Store>, Arc<dyn JobQueue>, Option<TempDir>);

async fn store(backend: Backend) -> Option<Storage> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let root = dir.path().join("data");
            let store =
                tokio::task::spawn_blocking(move || saas_store_sqlite::SqliteStore::open(root))
                    .await
                    .expect("join")
                    .expect("open SQLite store");
            let queue: Arc<dyn JobQueue> = Arc::new(store.queue());
            Some((Arc::new(store), queue, Some(dir)))
        }
        Backend::Postgres => {
            let url = pg_url();
            let connected = tokio::time::timeout(
                Duration::from_secs(10),
                saas_store_postgres::PgStore::connect_url(&url),
            )
            .await;
            match connected {
                Ok(Ok(store)) => {
                    let queue = saas_store_postgres::PgQueue::for_store(&store)
                        .await
                        .expect("open the PostgreSQL job queue");
                    Some((Arc::new(store), Arc::new(queue), None))
                }
                other => {
                    let why = match other {
                        Ok(Err(e)) => e.to_string(),
                        _ => "timed out".to_owned(),
                    };
                    if pg_required() {
                        panic!(
                            "PostgreSQL at {url} is unreachable ({why}) and SAAS_REQUIRE_POSTGRES=1"
                        );
                    }
                    eprintln!("note: PostgreSQL at {url} is unreachable ({why}); skipping");
                    None
                }
            }
        }
    }
}

/// One mailer for every app of the process: on PostgreSQL all apps share
/// one queue, so a job may run on any test's worker.
fn shared_mailer() -> Arc<MemoryMailer> {
    static MAILER: std::sync::OnceLock<Arc<MemoryMailer>> = std::sync::OnceLock::new();
    MAILER.get_or_init(|| Arc::new(MemoryMailer::new())).clone()
}

/// A running server.
pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub client: reqwest::Client,
    pub saas: Saas,
    /// The jobs runtime the router serves (None: started without jobs).
    pub jobs: Option<Jobs>,
    /// Where the jobs' emails go (shared by every app of the process).
    pub mailer: Arc<MemoryMailer>,
    shutdown: Option<oneshot::Sender<()>>,
    _dir: Option<TempDir>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A registered tenant and its admin's tokens.
#[derive(Debug, Clone)]
pub struct TenantCtx {
    pub id: String,
    pub slug: String,
    pub domain: String,
    /// `domain:port`, as a browser would send it.
    pub host: String,
    pub admin_id: i64,
    pub access: String,
    pub refresh: String,
}

pub const PASSWORD: &str = "securepassword123";

pub fn unique(prefix: &str) -> String {
    let mut s = format!("{prefix}{}", uuid::Uuid::new_v4().simple());
    s.truncate(40);
    s
}

/// A response: status, headers and the JSON body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        self.body
    }

    /// Asserts an error in our shape with this status and code.
    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Value {
        let body = self.expect(status);
        assert_eq!(body["error"]["code"], code, "body: {body}");
        assert!(body["error"]["message"].is_string(), "body: {body}");
        assert!(body["error"]["fields"].is_object(), "body: {body}");
        body
    }
}

impl TestApp {
    /// A server with the default configuration, less the registration
    /// rate limit: every request of a test comes from one address, and
    /// most tests register more tenants than a client may in an hour.
    pub async fn start(backend: Backend) -> Option<TestApp> {
        let config = HttpConfig {
            registration_rate: None,
            ..HttpConfig::default()
        };
        Self::start_with(backend, config).await
    }

    pub async fn start_with(backend: Backend, config: HttpConfig) -> Option<TestApp> {
        Self::start_opts(backend, config, true).await
    }

    /// Starts a server; `with_jobs` gives it a jobs runtime on the
    /// backend's queue (and the welcome-email listener), as saas-server does.
    pub async fn start_opts(
        backend: Backend,
        config: HttpConfig,
        with_jobs: bool,
    ) -> Option<TestApp> {
        Self::start_full(backend, config, with_jobs, ServerLimits::default()).await
    }

    /// Starts a server with jobs, served with `limits`.
    pub async fn start_limits(
        backend: Backend,
        config: HttpConfig,
        limits: ServerLimits,
    ) -> Option<TestApp> {
        Self::start_full(backend, config, true, limits).await
    }

    async fn start_full(
        backend: Backend,
        config: HttpConfig,
        with_jobs: bool,
        limits: ServerLimits,
    ) -> Option<TestApp> {
        let (store, queue, dir) = store(backend).await?;
        let mut builder =
            Saas::builder(store).secret(b"e2e test secret of at least thirty-two bytes");
        if with_jobs {
            builder = builder.listener(Arc::new(WelcomeEmailListener::new(
                queue.clone(),
                Arc::new(saas_core::clock::SystemClock),
            )));
        }
        let saas = builder.build().expect("build saas");
        let mailer = shared_mailer();
        let jobs = with_jobs.then(|| {
            Jobs::builder(saas.clone(), queue)
                .mailer(mailer.clone())
                .builtin(BuiltinConfig::default())
                .build()
        });
        let mut state = AppState::new(saas.clone(), config);
        if let Some(j) = &jobs {
            state = state.with_jobs(j.clone());
        }
        let app = router(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let stop = async {
                let _ = rx.await;
            };
            saas_http::serve(listener, app, limits, stop)
                .await
                .expect("serve");
        });
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        Some(TestApp {
            addr,
            client,
            saas,
            jobs,
            mailer,
            shutdown: Some(tx),
            _dir: dir,
        })
    }

    /// Runs workers until `done` holds (a job run by another test's worker
    /// on the shared PostgreSQL queue may finish a little later than ours).
    pub async fn run_jobs_until<F, Fut>(&self, what: &str, mut done: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = std::time::Instant::now();
        loop {
            self.run_jobs().await;
            if done().await {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "timed out waiting until {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs a worker in this process until no job is ready and none runs.
    pub async fn run_jobs(&self) -> WorkerStats {
        let jobs = self.jobs.as_ref().expect("started with jobs");
        let worker = jobs.worker(WorkerConfig {
            poll_interval: Duration::from_millis(50),
            ..WorkerConfig::default()
        });
        tokio::time::timeout(Duration::from_secs(60), worker.run_until_idle())
            .await
            .expect("the worker went idle within a minute")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A request to `path` on `host` (the Host header), optionally with a
    /// bearer token.
    pub fn request(
        &self,
        method: Method,
        path: &str,
        host: Option<&str>,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut rb = self.client.request(method, self.url(path));
        if let Some(h) = host {
            rb = rb.header(reqwest::header::HOST, h);
        }
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        rb
    }

    pub async fn send(rb: reqwest::RequestBuilder) -> Resp {
        let r = rb.send().await.expect("request sent");
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
        }
    }

    /// A JSON call.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        host: Option<&str>,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut rb = self.request(method, path, host, token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        Self::send(rb).await
    }

    pub async fn get(&self, t: &TenantCtx, token: &str, path: &str) -> Resp {
        self.call(Method::GET, path, Some(&t.host), Some(token), None)
            .await
    }

    pub async fn post(&self, t: &TenantCtx, token: &str, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(&t.host), Some(token), Some(body))
            .await
    }

    pub async fn patch(&self, t: &TenantCtx, token: &str, path: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(&t.host), Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, t: &TenantCtx, token: &str, path: &str) -> Resp {
        self.call(Method::DELETE, path, Some(&t.host), Some(token), None)
            .await
    }

    /// Registers a fresh tenant on `plan` and logs its admin in.
    pub async fn tenant(&self, plan: &str) -> TenantCtx {
        let slug = unique("t_");
        let domain = format!("{}.example.test", unique("d"));
        let body = self
            .call(
                Method::POST,
                "/api/register/",
                Some("public.example.test"),
                None,
                Some(json!({
                    "company_name": "Acme Corp",
                    "schema_name": slug,
                    "domain_url": domain,
                    "admin_username": "admin",
                    "admin_email": "admin@acme.com",
                    "admin_password": PASSWORD,
                    "subscription_plan": plan,
                })),
            )
            .await
            .expect(201);
        let host = format!("{domain}:{}", self.addr.port());
        let tokens = self
            .call(
                Method::POST,
                "/api/token/",
                Some(&host),
                None,
                Some(json!({"username": "admin", "password": PASSWORD})),
            )
            .await
            .expect(200);
        TenantCtx {
            id: body["id"].as_str().expect("id").to_owned(),
            slug,
            domain,
            host,
            admin_id: body["admin"]["id"].as_i64().expect("admin id"),
            access: tokens["access"].as_str().expect("access").to_owned(),
            refresh: tokens["refresh"].as_str().expect("refresh").to_owned(),
        }
    }

    /// Registers a user with `role` (as the admin) and logs it in; returns
    /// (id, access token).
    pub async fn user(&self, t: &TenantCtx, username: &str, role: &str) -> (i64, String) {
        let u = self
            .post(
                t,
                &t.access,
                "/api/users/register/",
                json!({
                    "username": username,
                    "email": format!("{username}@acme.com"),
                    "password": PASSWORD,
                    "role": role,
                }),
            )
            .await
            .expect(201);
        let tokens = self
            .call(
                Method::POST,
                "/api/token/",
                Some(&t.host),
                None,
                Some(json!({"username": username, "password": PASSWORD})),
            )
            .await
            .expect(200);
        (
            u["id"].as_i64().expect("id"),
            tokens["access"].as_str().expect("access").to_owned(),
        )
    }

    /// Creates a platform superuser and returns a platform token.
    pub async fn operator_token(&self) -> String {
        let name = unique("root");
        self.saas
            .create_superuser(&name, "root@example.com", PASSWORD)
            .await
            .expect("create superuser");
        let body = self
            .call(
                Method::POST,
                "/api/platform/token/",
                Some("anything.example"),
                None,
                Some(json!({"username": name, "password": PASSWORD})),
            )
            .await
            .expect(200);
        body["access"].as_str().expect("access").to_owned()
    }
}
