//! `saas-bench`: the benchmark harness. Each scenario prints progress to
//! stderr and ONE JSON object, its result, as the last line of stdout.
//!
//! ```text
//! cargo run --release --bin saas-bench -- provision --backend postgres --tenants 1000
//! cargo run --release --bin saas-bench -- migrate-noop --backend postgres --tenants 1000
//! cargo run --release --bin saas-bench -- routing --tenants 12,100,1000
//! cargo run --release --bin saas-bench -- http --backend sqlite --tenants 10 --profile list
//! cargo run --release --bin saas-bench -- http --backend postgres --profile list,detail,mixed --seed ../shared/peers/django_seed
//! cargo build --release -p saas-server && cargo run --release --bin saas-bench -- memory --backend sqlite --minutes 10
//! cargo run --release --bin saas-bench -- jobs --backend sqlite --jobs 100000
//! ```
//!
//! Benchmarks use databases of their own (`saas_bench` and
//! `saas_bench_http` by default, created when missing) so the test
//! database is never flooded.

mod scenarios;

use clap::Parser;
use saas_bench::Res;
use serde_json::{Value, json};

#[derive(Parser)]
#[command(about = "Benchmarks of the saas library; each scenario ends with one JSON line")]
struct Cli {
    #[command(subcommand)]
    scenario: scenarios::Scenario,
}

#[tokio::main]
async fn main() -> Res<()> {
    let cli = Cli::parse();
    let mut result = scenarios::run(cli.scenario).await?;
    if let Value::Object(map) = &mut result {
        // The machine is shared: say how busy it was, so figures can be judged.
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        map.insert(
            "load_average_1m".into(),
            json!(load.split_whitespace().next().unwrap_or("unknown")),
        );
    }
    println!("{result}");
    Ok(())
}
