//! `provision`: `Store::create_tenant`, N times, on an empty database.

use std::time::Instant;

use saas_bench::Res;
use saas_bench::fixture::{new_tenant, user_record};
use saas_bench::fleet::{FleetArgs, password_hash};
use saas_bench::measure::{median, ms, quantile, round3};
use saas_core::store::Store;
use saas_core::users::Role;
use serde_json::{Value, json};

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    fleet: FleetArgs,
    /// Keep the existing tenants instead of starting from an empty database.
    #[arg(long)]
    keep: bool,
}

pub(super) async fn run(args: &Args) -> Res<Value> {
    let store = args.fleet.storage.connect(!args.keep).await?;
    let (hash, argon2_ms) = password_hash().await?;
    let admin = user_record(&hash, "admin", Role::Admin, true)?;
    let run = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let mut samples = Vec::with_capacity(args.fleet.tenants);
    let start = Instant::now();
    for i in 0..args.fleet.tenants {
        let tenant = new_tenant(&format!("p{run}_{i:05}"))?;
        let t0 = Instant::now();
        store.create_tenant(&tenant, &admin).await?;
        samples.push(ms(t0.elapsed()));
        if (i + 1) % 100 == 0 {
            eprintln!(
                "{} tenants, last median {:.2} ms",
                i + 1,
                median(&samples[i + 1 - 100..])
            );
        }
    }
    let total = start.elapsed();
    let head = &samples[..samples.len().min(100)];
    let tail = &samples[samples.len().saturating_sub(100)..];
    Ok(json!({
        "scenario": "provision",
        "backend": "postgres",
        "tenants": args.fleet.tenants,
        "median_ms": round3(median(&samples)),
        "p99_ms": round3(quantile(&samples, 0.99)),
        "max_ms": round3(quantile(&samples, 1.0)),
        "first_100_median_ms": round3(median(head)),
        "last_100_median_ms": round3(median(tail)),
        "total_s": round3(total.as_secs_f64()),
        "argon2_hash_ms_not_included": argon2_ms,
    }))
}
