//! The web console, end to end on both backends (`sqlite::…`,
//! `postgres::…`): over plain HTTP for what a browser would hide (CSRF,
//! session fixation, a cookie replayed at another host), and in a real
//! headless Chromium for what an operator does (`browser`), each page it
//! visits saved under `target/screenshots/`.
#![allow(unreachable_pub)]

mod browser;
mod http;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, HOST, LOCATION, SET_COOKIE};
use saas_http::HttpConfig;
use testkit::server::{Backend, PASSWORD, TestApp, unique};

/// The platform console's host in these tests (any host that is no
/// tenant's serves it).
pub(crate) const PLATFORM: &str = "platform.example.test";

/// A server whose console and logins are not throttled by other cases.
pub(crate) async fn start(backend: Backend) -> Option<TestApp> {
    let config = HttpConfig {
        registration_rate: None,
        login_address_rate: None,
        ..HttpConfig::default()
    };
    TestApp::start_with(backend, config).await
}

/// A fresh superuser's name (its password is [`PASSWORD`]).
pub(crate) async fn superuser(app: &TestApp) -> String {
    let name = unique("root");
    app.saas
        .create_superuser(&name, "root@example.com", PASSWORD)
        .await
        .expect("create superuser");
    name
}

/// A fresh superuser signed in at the platform console.
pub(crate) async fn operator(app: &TestApp) -> Console<'_> {
    let name = superuser(app).await;
    let mut c = Console::at(app, PLATFORM);
    let signed = c.sign_in(&name, PASSWORD).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    c
}

/// The audit log's latest entries of `action` on `target`, newest first.
pub(crate) async fn audited(
    app: &TestApp,
    action: &str,
    target: &str,
) -> Vec<saas_core::audit::AuditEntry> {
    let log = app
        .saas
        .operator_unchecked()
        .audit_log(&saas_core::audit::AuditQuery::new(None).expect("a query"))
        .await
        .expect("the audit log");
    log.entries
        .into_iter()
        .filter(|e| e.action == action && e.target == target)
        .collect()
}

/// One console page as plain HTTP sees it.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) location: Option<String>,
    pub(crate) cookie: Option<String>,
    pub(crate) set_cookie: Option<String>,
    pub(crate) body: String,
}

impl Page {
    /// The CSRF token of the page's first form.
    pub(crate) fn csrf(&self) -> String {
        let start = self
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no csrf field in {}", self.body))
            + "name=\"csrf\" value=\"".len();
        let len = self.body[start..].find('"').expect("a closing quote");
        self.body[start..start + len].to_owned()
    }
}

/// A console client at one host (`host:port` as a browser sends it),
/// following no redirects, sending `cookie` when set.
pub(crate) struct Console<'a> {
    pub(crate) app: &'a TestApp,
    pub(crate) host: String,
    pub(crate) cookie: Option<String>,
    client: reqwest::Client,
}

impl<'a> Console<'a> {
    pub(crate) fn at(app: &'a TestApp, host: &str) -> Self {
        let host = if host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:{}", app.addr.port())
        };
        Console {
            app,
            host,
            cookie: None,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
        }
    }

    async fn send(&mut self, rb: reqwest::RequestBuilder) -> Page {
        let mut rb = rb.header(HOST, &self.host);
        if let Some(c) = &self.cookie {
            rb = rb.header(COOKIE, format!("saas_console={c}"));
        }
        let r = rb.send().await.expect("the server answers");
        let header = |name| {
            r.headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let set_cookie = header(SET_COOKIE);
        let cookie = set_cookie.as_deref().and_then(|v| {
            v.strip_prefix("saas_console=")
                .and_then(|v| v.split(';').next())
                .map(str::to_owned)
        });
        if let Some(c) = &cookie {
            self.cookie = Some(c.clone()).filter(|c| !c.is_empty());
        }
        Page {
            status: r.status(),
            location: header(LOCATION),
            cookie,
            set_cookie,
            body: r.text().await.unwrap_or_default(),
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let rb = self.client.get(self.app.url(path));
        self.send(rb).await
    }

    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(form).expect("a form encodes");
        let rb = self
            .client
            .post(self.app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(rb).await
    }

    /// Opens the sign-in form and signs in; returns the sign-in's answer.
    pub(crate) async fn sign_in(&mut self, username: &str, password: &str) -> Page {
        let form = self.get("/console/").await;
        let csrf = form.csrf();
        self.post(
            "/console/sign-in",
            &[
                ("csrf", &csrf),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }
}

macro_rules! console_suite {
    ($name:ident, $backend:expr) => {
        mod $name {
            macro_rules! case {
                ($case:ident, $module:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $case() {
                        crate::$module::$case($backend).await;
                    }
                };
            }
            case!(forms_without_the_csrf_token_are_refused, http);
            case!(deleted_tenants_are_found_and_restored, http);
            case!(the_session_id_changes_at_sign_in_and_dies_at_sign_out, http);
            case!(tenant_sessions_stay_in_their_tenant, http);
            case!(cookies_are_http_only_strict_and_secure_over_https, http);
            case!(platform_hosts_limit_the_platform_console, http);
            case!(sign_in_is_throttled_like_the_api, http);
            case!(bad_queries_get_clear_answers, http);
            case!(operator_works_a_tenant_in_a_browser, browser);
            case!(tenant_admin_works_users_in_a_browser, browser);
        }
    };
}

console_suite!(sqlite, testkit::server::Backend::Sqlite);
console_suite!(postgres, testkit::server::Backend::Postgres);
