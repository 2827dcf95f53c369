//! The real server under test (zero2prod style): the router of
//! `saas-http` on a random port over real HTTP, over a fresh store of a
//! kit backend and its job queue, and the client helpers that speak to it
//! as a Django client would.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::{Method, StatusCode};
use saas_core::Saas;
use saas_core::jobs::builtin::{BuiltinConfig, WelcomeEmailListener};
use saas_core::jobs::mail::MemoryMailer;
use saas_core::jobs::{Jobs, WorkerConfig, WorkerStats};
use saas_http::{AppState, HttpConfig, ServerLimits, router, router_with};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::backend::Fixture;
pub use crate::harness::PASSWORD;
pub use crate::records::unique;
use crate::{pg, sqlite};

/// Which storage backend a server runs on: a value, so a case function
/// can take it and one case serves every backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// [`sqlite::Sqlite`]: a fresh temporary directory.
    Sqlite,
    /// [`pg::Postgres`]: the test database (skipped when it is not there).
    Postgres,
}

impl crate::backend::Backend for Backend {
    fn fixture(&self) -> BoxFuture<'_, Option<Box<dyn Fixture>>> {
        match self {
            Backend::Sqlite => sqlite::Sqlite.fixture(),
            Backend::Postgres => pg::Postgres.fixture(),
        }
    }
}

/// Starts a [`TestApp`] on `$backend` (with `$config`, an `HttpConfig`,
/// when given), or returns from the calling case when the backend is not
/// available here: `let app = testkit::app!(backend);`.
#[macro_export]
macro_rules! app {
    ($backend:expr) => {
        match $crate::server::TestApp::start($backend).await {
            Some(app) => app,
            None => return,
        }
    };
    ($backend:expr, $config:expr) => {
        match $crate::server::TestApp::start_with($backend, $config).await {
            Some(app) => app,
            None => return,
        }
    };
}

/// One mailer for every app of the process: on PostgreSQL all apps share
/// one queue, so a job may run on any test's worker.
fn shared_mailer() -> Arc<MemoryMailer> {
    static MAILER: std::sync::OnceLock<Arc<MemoryMailer>> = std::sync::OnceLock::new();
    MAILER.get_or_init(|| Arc::new(MemoryMailer::new())).clone()
}

/// Makes a host application's routes from the router's state.
pub type HostRoutes = Box<dyn FnOnce(AppState) -> axum::Router + Send>;

/// A running server; dropping it shuts the server down.
pub struct TestApp {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// A client with a generous timeout.
    pub client: reqwest::Client,
    /// The service the router serves.
    pub saas: Saas,
    /// The jobs runtime the router serves (None: started without jobs).
    pub jobs: Option<Jobs>,
    /// Where the jobs' emails go (shared by every app of the process).
    pub mailer: Arc<MemoryMailer>,
    shutdown: Option<oneshot::Sender<()>>,
    /// The storage, kept alive as long as the server.
    _fixture: Box<dyn Fixture>,
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
    /// The tenant's id, as registration answered it.
    pub id: String,
    /// Its slug (`schema_name`).
    pub slug: String,
    /// Its primary domain.
    pub domain: String,
    /// `domain:port`, as a browser would send it.
    pub host: String,
    /// The admin's user id.
    pub admin_id: i64,
    /// The admin's access token.
    pub access: String,
    /// The admin's refresh token.
    pub refresh: String,
}

/// A response: status, headers and the JSON body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Resp {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body as JSON.
    pub body: Value,
}

impl Resp {
    /// Asserts the status and returns the body.
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

/// The default configuration without the registration throttle
/// (tests register many tenants from one address).
fn config() -> HttpConfig {
    HttpConfig {
        registration_rate: None,
        ..HttpConfig::default()
    }
}

impl TestApp {
    /// Starts a server with the default configuration and a jobs runtime,
    /// less the registration rate limit (every request of a test comes from
    /// one address, and most tests register more tenants than a client may
    /// in an hour); `None` when the backend is not available here (the case
    /// skips).
    pub async fn start(backend: Backend) -> Option<TestApp> {
        Self::start_with(backend, config()).await
    }

    /// Starts a server with `config` and a jobs runtime, as [`Self::start`].
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
        Self::start_full(
            backend,
            config,
            with_jobs,
            ServerLimits::default(),
            None,
            None,
        )
        .await
    }

    /// Starts a server with jobs, served with `limits`.
    pub async fn start_limits(
        backend: Backend,
        config: HttpConfig,
        limits: ServerLimits,
    ) -> Option<TestApp> {
        Self::start_full(backend, config, true, limits, None, None).await
    }

    /// Starts a server as [`Self::start`] whose jobs runtime caps each
    /// tenant's pending jobs at `cap`.
    pub async fn start_jobs_capped(backend: Backend, cap: u32) -> Option<TestApp> {
        Self::start_full(
            backend,
            config(),
            true,
            ServerLimits::default(),
            Some(cap),
            None,
        )
        .await
    }

    /// Starts a server as [`Self::start`] whose router also serves a host
    /// application's routes, made by `host` from the router's state and
    /// merged with [`saas_http::router_with`].
    pub async fn start_host(backend: Backend, host: HostRoutes) -> Option<TestApp> {
        Self::start_full(
            backend,
            config(),
            true,
            ServerLimits::default(),
            None,
            Some(host),
        )
        .await
    }

    async fn start_full(
        backend: Backend,
        config: HttpConfig,
        with_jobs: bool,
        limits: ServerLimits,
        cap: Option<u32>,
        host: Option<HostRoutes>,
    ) -> Option<TestApp> {
        let fixture = crate::backend::Backend::fixture(&backend).await?;
        let (store, queue) = (fixture.store(), fixture.queue().await);
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
            let builder = Jobs::builder(saas.clone(), queue)
                .mailer(mailer.clone())
                .builtin(BuiltinConfig::default());
            match cap {
                Some(cap) => builder.max_pending_per_tenant(Some(cap)),
                None => builder,
            }
            .build()
        });
        let mut state = AppState::new(saas.clone(), config);
        if let Some(j) = &jobs {
            state = state.with_jobs(j.clone());
        }
        let app = match host {
            Some(host) => router_with(state.clone(), host(state)),
            None => router(state),
        };
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
            _fixture: fixture,
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

    /// The URL of `path` on this server.
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

    /// Sends a request and reads the whole response.
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

    /// `GET path` at the tenant's host with `token`.
    pub async fn get(&self, t: &TenantCtx, token: &str, path: &str) -> Resp {
        self.call(Method::GET, path, Some(&t.host), Some(token), None)
            .await
    }

    /// `POST path` with a JSON body at the tenant's host with `token`.
    pub async fn post(&self, t: &TenantCtx, token: &str, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(&t.host), Some(token), Some(body))
            .await
    }

    /// `PATCH path` with a JSON body at the tenant's host with `token`.
    pub async fn patch(&self, t: &TenantCtx, token: &str, path: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(&t.host), Some(token), Some(body))
            .await
    }

    /// `DELETE path` at the tenant's host with `token`.
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
