//! The scenarios, one module each: their arguments and their run.

mod big_tenant;
mod console;
mod fill;
mod http;
mod http_baseline;
mod http_compare;
mod import;
mod jobs;
mod login;
mod memory;
mod migrate_live;
mod migrate_noop;
mod provision;
mod routing;
mod scale;

use clap::Subcommand;
use saas_bench::Res;
use serde_json::Value;

#[derive(Subcommand)]
pub(crate) enum Scenario {
    /// Time `Store::create_tenant` for N tenants on an empty database.
    Provision(provision::Args),
    /// Ensure N tenants exist, then time `Store::migrate` when all are current.
    MigrateNoop(migrate_noop::Args),
    /// A fleet migration to the newest tenant schema version of N tenants
    /// provisioned at the previous one, while the API serves mixed traffic:
    /// elapsed time, failed requests, latency during it against a control.
    MigrateLive(migrate_live::Args),
    /// Cost of routing to tenant schemas against a single-schema baseline.
    Routing(routing::Args),
    /// Requests per second and latency of the REST API over real HTTP.
    Http(http::Args),
    /// The `GET /api/tasks/` ceiling: a bare axum handler over the same
    /// data, without tenancy, authentication or validation.
    HttpBaseline(http_baseline::Args),
    /// `http --profile list` and `http-baseline` in alternating rounds;
    /// reports ours / baseline.
    HttpCompare(http_compare::Args),
    /// Latency spread over thousands of tenants against the same load over
    /// ten, and the process's peak memory.
    Scale(scale::Args),
    /// Tokens per second from `POST /api/token/` (argon2id bound).
    Login(login::Args),
    /// Resident memory of the real `saas-server` (a child process): at
    /// start, after registering tenants and users, over minutes of mixed
    /// load, peak and final.
    Memory(memory::Args),
    /// Statistics, dashboard and list latency in one tenant with many tasks.
    BigTenant(big_tenant::Args),
    /// Dashboard and mixed on tenants filled through the API to N tasks
    /// each, against the same fleet at the fixture's size, alternating.
    Fill(fill::Args),
    /// Job queue throughput: enqueue N no-op jobs, then run them with the Worker.
    Jobs(jobs::Args),
    /// The web console's tenant list and search at N tenants (10,000).
    Console(console::Args),
    /// `Saas::import` of a Django-shaped source (N companies x M tasks),
    /// first run and the verifying second run.
    Import(import::Args),
}

/// Runs `scenario`; returns its JSON result.
pub(crate) async fn run(scenario: Scenario) -> Res<Value> {
    match scenario {
        Scenario::Provision(a) => provision::run(&a).await,
        Scenario::MigrateNoop(a) => migrate_noop::run(&a).await,
        Scenario::MigrateLive(a) => migrate_live::run(&a).await,
        Scenario::Routing(a) => routing::run(&a).await,
        Scenario::Http(a) => http::run(&a).await,
        Scenario::HttpBaseline(a) => http_baseline::run(&a).await,
        Scenario::HttpCompare(a) => http_compare::run(&a).await,
        Scenario::Scale(a) => scale::run(&a).await,
        Scenario::Login(a) => login::run(&a).await,
        Scenario::Memory(a) => memory::run(&a).await,
        Scenario::BigTenant(a) => big_tenant::run(&a).await,
        Scenario::Fill(a) => fill::run(&a).await,
        Scenario::Jobs(a) => jobs::run(&a).await,
        Scenario::Console(a) => console::run(&a).await,
        Scenario::Import(a) => import::run(&a).await,
    }
}
