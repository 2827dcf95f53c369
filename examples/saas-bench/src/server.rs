//! The server under test (`saas_http::router` on 127.0.0.1:0), access
//! tokens for the fixture's users, and the requests of each profile.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request};
use saas_core::Saas;
use saas_core::auth::{TokenKeys, TokenKind};
use saas_core::users::{Role, UserId};
use saas_http::{AppState, HttpConfig};

use crate::client::MakeRequest;
use crate::error::Res;
use crate::fixture::Seeded;
use crate::storage::{Env, PASSWORD};

/// Token-signing secret of the benchmark server.
const SECRET: &[u8] = b"saas-bench secret, thirty-two bytes or more";
/// Access tokens outlive any run.
const ACCESS_TTL: Duration = Duration::from_secs(3600);

/// The service behind the server.
pub fn saas(env: &Env) -> Res<Saas> {
    Ok(Saas::builder(Arc::clone(&env.store))
        .secret(SECRET)
        .access_ttl(ACCESS_TTL)
        .user_cache_ttl(env.user_cache_ttl)
        .build()?)
}

/// Serves `saas_http::router` on a loopback port of its own. The
/// throttles are off: `login` sends many logins per username, all from one
/// address, by design.
pub async fn start(saas: Saas) -> Res<SocketAddr> {
    start_until(saas, std::future::pending()).await
}

/// [`start`], shutting down (and dropping the service with its store) when
/// `shutdown` completes.
pub async fn start_until(
    saas: Saas,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Res<SocketAddr> {
    let config = HttpConfig {
        login_attempts: 0,
        login_address_rate: None,
        registration_rate: None,
        ..HttpConfig::default()
    };
    let app = saas_http::router(AppState::new(saas, config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            eprintln!("server stopped: {e}");
        }
    });
    Ok(addr)
}

/// Whose token the requests carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Who {
    /// The tenant's owner: every project is in scope.
    Admin,
    /// A project member: scope is "projects I own or belong to".
    Member,
}

impl Who {
    /// The name in results.
    pub fn name(self) -> &'static str {
        match self {
            Who::Admin => "admin",
            Who::Member => "member",
        }
    }
}

/// An access token per tenant: from `Saas::login` (argon2 verify, as a
/// client would get it) for a few tenants, minted with the server's key for
/// many (thousands of logins would take minutes of argon2).
pub async fn tokens(saas: &Saas, tenants: &[Seeded], who: Who) -> Res<(Vec<String>, &'static str)> {
    if tenants.len() <= 20 {
        let mut out = Vec::with_capacity(tenants.len());
        for s in tenants {
            let username = match who {
                Who::Admin => "admin",
                Who::Member => "member1",
            };
            out.push(saas.login(&s.tenant, username, PASSWORD).await?.access);
        }
        return Ok((out, "login"));
    }
    let mut keys = TokenKeys::new(SECRET)?;
    keys.access_ttl = ACCESS_TTL;
    let now = chrono::Utc::now();
    let mut out = Vec::with_capacity(tenants.len());
    for s in tenants {
        let (user, role) = match who {
            Who::Admin => (s.admin, Role::Admin),
            Who::Member => (s.member, Role::Member),
        };
        let claims = keys.claims(
            TokenKind::Access,
            UserId(user.0),
            Some(s.tenant.id),
            Some(role),
            0,
            None,
            now,
        );
        out.push(keys.sign(&claims)?);
    }
    Ok((out, "minted"))
}

/// What the load consists of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// `GET /api/tasks/` (first page, 20 tasks with assignee and creator).
    List,
    /// `GET /api/tasks/{id}/`.
    Detail,
    /// `POST /api/tasks/`.
    Create,
    /// `GET /api/dashboard/`.
    Dashboard,
    /// `GET /api/projects/{id}/statistics/`.
    Statistics,
    /// 50 % list, 20 % detail, 10 % each dashboard, statistics and create.
    Mixed,
    /// `PATCH /api/users/{id}/` of a member by the admin (a security-relevant
    /// write: on SQLite synced with `synchronous=FULL`).
    UserUpdate,
    /// `POST /api/token/` as the tenant's admin (password hashing bound).
    Login,
}

impl Profile {
    /// The name in results.
    pub fn name(self) -> &'static str {
        match self {
            Profile::List => "list",
            Profile::Detail => "detail",
            Profile::Create => "create",
            Profile::Dashboard => "dashboard",
            Profile::Statistics => "statistics",
            Profile::Mixed => "mixed",
            Profile::UserUpdate => "user-update",
            Profile::Login => "login",
        }
    }

    /// The single-endpoint profile request `i` of this profile uses.
    fn pick(self, i: usize) -> Profile {
        match self {
            Profile::Mixed => match (i / 7) % 10 {
                0..=4 => Profile::List,
                5 | 6 => Profile::Detail,
                7 => Profile::Dashboard,
                8 => Profile::Statistics,
                _ => Profile::Create,
            },
            p => p,
        }
    }
}

/// Where one tenant's requests go and what they name: the Host, the
/// bearer token, the project, a member and the range of task ids. The same
/// for our server and the Django seed (their ids differ).
pub struct Target {
    host: HeaderValue,
    auth: HeaderValue,
    project: i64,
    member: i64,
    task_ids: (i64, i64),
}

impl Target {
    /// A tenant at `host` whose requests carry `token`.
    pub fn new(
        host: &str,
        token: &str,
        project: i64,
        member: i64,
        task_ids: (i64, i64),
    ) -> Res<Target> {
        Ok(Target {
            host: HeaderValue::from_str(host)?,
            auth: HeaderValue::from_str(&format!("Bearer {token}"))?,
            project,
            member,
            task_ids,
        })
    }

    /// The same tenant with another token (a fresh login's).
    pub fn with_token(&self, token: &str) -> Res<Target> {
        Ok(Target {
            host: self.host.clone(),
            auth: HeaderValue::from_str(&format!("Bearer {token}"))?,
            ..*self
        })
    }

    /// The Host its requests carry.
    pub fn host(&self) -> &str {
        self.host.to_str().unwrap_or_default()
    }
}

/// Request `i` goes to tenant `i mod T` (round robin over the first `T`
/// of `tenants`).
pub fn requests(tenants: &[Seeded], tokens: &[String], profile: Profile) -> Res<Arc<MakeRequest>> {
    let targets = tenants
        .iter()
        .zip(tokens)
        .map(|(s, token)| Target::new(&s.host, token, s.project.0, s.member.0, s.task_ids))
        .collect::<Res<Vec<_>>>()?;
    requests_to(targets, profile)
}

/// Request `i` goes to `targets[i mod T]`.
pub fn requests_to(targets: Vec<Target>, profile: Profile) -> Res<Arc<MakeRequest>> {
    if targets.is_empty() {
        return Err("no tenants to send requests to".into());
    }
    let json = HeaderValue::from_static("application/json");
    Ok(Arc::new(move |i: usize| {
        let t = &targets[i % targets.len()];
        let n = i / targets.len();
        let (method, path, body) = match profile.pick(i) {
            Profile::List | Profile::Mixed => (Method::GET, "/api/tasks/".to_owned(), None),
            Profile::Detail => {
                let (lo, hi) = t.task_ids;
                let span = usize::try_from((hi - lo + 1).max(1)).unwrap_or(1);
                let id = lo + ((n.wrapping_mul(7919)) % span) as i64;
                (Method::GET, format!("/api/tasks/{id}/"), None)
            }
            Profile::Dashboard => (Method::GET, "/api/dashboard/".to_owned(), None),
            Profile::Statistics => (
                Method::GET,
                format!("/api/projects/{}/statistics/", t.project),
                None,
            ),
            Profile::UserUpdate => (
                Method::PATCH,
                format!("/api/users/{}/", t.member),
                Some(Bytes::from(format!(
                    "{{\"first_name\": \"Bench {n}\", \"role\": \"member\"}}"
                ))),
            ),
            Profile::Login => (
                Method::POST,
                "/api/token/".to_owned(),
                Some(Bytes::from(format!(
                    "{{\"username\": \"admin\", \"password\": \"{PASSWORD}\"}}"
                ))),
            ),
            Profile::Create => (
                Method::POST,
                "/api/tasks/".to_owned(),
                Some(Bytes::from(format!(
                    "{{\"project\": {}, \"title\": \"Bench task {n}\", \
                     \"description\": \"Created by the benchmark.\", \"priority\": \"high\", \
                     \"status\": \"todo\", \"assigned_to_id\": {}}}",
                    t.project, t.member
                ))),
            ),
        };
        let mut req = Request::new(Full::new(body.clone().unwrap_or_default()));
        *req.method_mut() = method;
        // Paths are built from integers and constants: always valid URIs.
        *req.uri_mut() = path.parse().unwrap_or_default();
        let h = req.headers_mut();
        h.insert(HOST, t.host.clone());
        if profile != Profile::Login {
            h.insert(AUTHORIZATION, t.auth.clone());
        }
        if body.is_some() {
            h.insert(CONTENT_TYPE, json.clone());
        }
        req
    }))
}
