//! `migrate-noop`: `Store::migrate` over a fleet that is already current,
//! the cost every deploy pays.

use std::time::Instant;

use saas_bench::Res;
use saas_bench::fleet::{FleetArgs, ensure_tenants};
use saas_bench::measure::{median, ms, quantile, round3};
use saas_core::store::Store;
use serde_json::{Value, json};

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    fleet: FleetArgs,
    /// Timed runs (the median is reported).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

pub(super) async fn run(args: &Args) -> Res<Value> {
    let store = args.fleet.storage.connect(false).await?;
    ensure_tenants(&store, args.fleet.tenants).await?;
    let mut samples = Vec::new();
    let mut last = None;
    for _ in 0..args.rounds.max(1) {
        let t0 = Instant::now();
        let report = store.migrate(&|_| {}).await?;
        samples.push(ms(t0.elapsed()));
        last = Some(report);
    }
    let report = last.ok_or("no round ran")?;
    Ok(json!({
        "scenario": "migrate-noop",
        "backend": "postgres",
        "tenants": report.tenants,
        "current": report.current,
        "migrated": report.migrated,
        "failed": report.failed.len(),
        "rounds": samples.len(),
        "elapsed_ms": round3(median(&samples)),
        "min_ms": round3(quantile(&samples, 0.0)),
    }))
}
