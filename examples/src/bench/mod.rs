//! HTTP-level scenarios of `saas-bench`: the real router on a loopback
//! port, driven by a wrk-style client over keep-alive connections.
//!
//! ```text
//! saas-bench http --backend sqlite --tenants 10 --connections 8 --seconds 5 --profile list
//! saas-bench http-baseline --backend postgres
//! saas-bench http-compare --backend sqlite --rounds 3
//! saas-bench scale --backend sqlite --tenants 10000
//! saas-bench login --backend postgres
//! saas-bench big-tenant --backend postgres --tasks 100000 --explain
//! ```
//!
//! Every scenario ends with one JSON object on stdout (the harness adds the
//! 1-minute load average); progress goes to stderr.

mod baseline;
mod client;
mod explain;
mod fixture;
mod scenarios;
mod server;

use clap::Subcommand;
use serde_json::Value;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type Res<T> = Result<T, BoxError>;

pub(crate) use scenarios::{BaselineArgs, BigArgs, CompareArgs, HttpArgs, LoginArgs, ScaleArgs};

/// The HTTP scenarios (flattened into the harness's subcommands).
#[derive(Subcommand)]
pub(crate) enum HttpScenario {
    /// Requests per second and latency of the REST API over real HTTP.
    Http(HttpArgs),
    /// The `GET /api/tasks/` ceiling: a bare axum handler over the same
    /// data, without tenancy, authentication or validation.
    HttpBaseline(BaselineArgs),
    /// `http --profile list` and `http-baseline` in alternating rounds;
    /// reports ours / baseline.
    HttpCompare(CompareArgs),
    /// Latency spread over thousands of tenants against the same load over
    /// ten, and the process's peak memory.
    Scale(ScaleArgs),
    /// Tokens per second from `POST /api/token/` (argon2id bound).
    Login(LoginArgs),
    /// Statistics, dashboard and list latency in one tenant with many tasks.
    BigTenant(BigArgs),
}

/// Runs one HTTP scenario; returns its JSON result.
pub(crate) async fn run(scenario: HttpScenario) -> Res<Value> {
    match scenario {
        HttpScenario::Http(a) => scenarios::http(&a).await,
        HttpScenario::HttpBaseline(a) => scenarios::http_baseline(&a).await,
        HttpScenario::HttpCompare(a) => scenarios::http_compare(&a).await,
        HttpScenario::Scale(a) => scenarios::scale(&a).await,
        HttpScenario::Login(a) => scenarios::login(&a).await,
        HttpScenario::BigTenant(a) => scenarios::big_tenant(&a).await,
    }
}

/// The `q` quantile (0..=1) of `samples`, nearest rank.
pub(crate) fn quantile(samples: &[f64], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub(crate) fn median(samples: &[f64]) -> f64 {
    quantile(samples, 0.5)
}

pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The 1-minute load average right now (the harness adds the one at the
/// end; rounds record their own).
pub(crate) fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// A `VmHWM`/`VmRSS`-style field of /proc/self/status, in MiB.
pub(crate) fn proc_status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| round3(kb / 1024.0))
}

/// Open file descriptors of this process.
pub(crate) fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}
