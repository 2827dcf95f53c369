//! End-to-end tests: the real router on a random port, spoken to over real
//! HTTP as a client would, on both backends (`sqlite::…`, `postgres::…`).
//! The server and its client are the test kit's (`testkit::server`).
//! PostgreSQL cases are skipped with a note when the database is unreachable,
//! unless `SAAS_REQUIRE_POSTGRES=1`.
#![allow(unreachable_pub)]

mod cases;
mod garbage;
mod health;
mod host;
mod jobs;
mod trust;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every endpoint: method and path, with `{pid}`, `{tid}`, `{uid}`, `{jid}`,
/// `{tenant}` and `{hostname}` placeholders.
pub const ENDPOINTS: &[(&str, &str)] = &[
    ("POST", "/api/register/"),
    ("GET", "/api/health/"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/api/openapi.json"),
    ("POST", "/api/token/"),
    ("POST", "/api/token/refresh/"),
    ("GET", "/api/users/"),
    ("GET", "/api/users/me/"),
    ("POST", "/api/users/register/"),
    ("POST", "/api/users/change_password/"),
    ("GET", "/api/users/{uid}/"),
    ("PATCH", "/api/users/{uid}/"),
    ("GET", "/api/projects/"),
    ("POST", "/api/projects/"),
    ("GET", "/api/projects/{pid}/"),
    ("PATCH", "/api/projects/{pid}/"),
    ("DELETE", "/api/projects/{pid}/"),
    ("POST", "/api/projects/{pid}/add_member/"),
    ("POST", "/api/projects/{pid}/remove_member/"),
    ("GET", "/api/projects/{pid}/statistics/"),
    ("GET", "/api/tasks/"),
    ("POST", "/api/tasks/"),
    ("GET", "/api/tasks/my_tasks/"),
    ("GET", "/api/tasks/{tid}/"),
    ("PATCH", "/api/tasks/{tid}/"),
    ("DELETE", "/api/tasks/{tid}/"),
    ("POST", "/api/tasks/{tid}/mark_complete/"),
    ("GET", "/api/dashboard/"),
    ("POST", "/api/projects/{pid}/report/"),
    ("GET", "/api/jobs/{jid}/"),
    ("POST", "/api/platform/token/"),
    ("GET", "/api/platform/tenants/"),
    ("POST", "/api/platform/tenants/"),
    ("GET", "/api/platform/tenants/{tenant}/"),
    ("DELETE", "/api/platform/tenants/{tenant}/"),
    ("POST", "/api/platform/tenants/{tenant}/plan/"),
    ("POST", "/api/platform/tenants/{tenant}/suspend/"),
    ("POST", "/api/platform/tenants/{tenant}/reactivate/"),
    ("POST", "/api/platform/tenants/{tenant}/restore/"),
    ("POST", "/api/platform/tenants/{tenant}/domains/"),
    (
        "DELETE",
        "/api/platform/tenants/{tenant}/domains/{hostname}/",
    ),
];

/// Sends raw bytes (the request must say `Connection: close`) and returns
/// the whole response as text.
pub async fn raw_http(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // The server may answer and close before reading everything; that is fine.
    let _ = s.write_all(request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

macro_rules! e2e_suite {
    ($name:ident, $backend:expr) => {
        mod $name {
            use testkit::server::Backend;

            macro_rules! case {
                ($case:ident, $module:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $case() {
                        crate::$module::$case($backend).await;
                    }
                };
            }

            case!(seed_flow, cases);
            case!(refresh_rotation_and_reuse, cases);
            case!(cross_tenant, cases);
            case!(platform_operator, cases);
            case!(platform_delete_and_restore, cases);
            case!(role_refusals, cases);
            case!(plan_limits, cases);
            case!(bad_input, cases);
            case!(login_throttle, cases);
            case!(headers_and_openapi, cases);
            case!(hosts_and_limits, cases);
            case!(garbage_never_5xx, garbage);
            case!(health_checks, health);
            case!(report_flow, jobs);
            case!(report_plans, jobs);
            case!(report_requests_are_reused_and_capped, jobs);
            case!(job_isolation_and_bad_ids, jobs);
            case!(jobs_unconfigured, jobs);
            case!(dates_and_ids_as_drf_reads_them, trust);
            case!(unknown_tenants_answer_like_bad_tokens, trust);
            case!(error_bodies_in_both_formats, trust);
            case!(registration_is_limited_and_can_be_closed, trust);
            case!(server_limits, trust);
            case!(host_routes_share_extractors_and_middleware, host);
        }
    };
}

e2e_suite!(sqlite, Backend::Sqlite);
e2e_suite!(postgres, Backend::Postgres);
