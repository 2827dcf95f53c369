//! `provision`: `Store::create_tenant`, N times, on an empty database, one
//! at a time or several at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use saas_bench::Res;
use saas_bench::fixture::{new_tenant, user_record};
use saas_bench::fleet::{FleetArgs, password_hash};
use saas_bench::measure::{load_average, median, ms, quantile, round3};
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
    /// Tenants provisioned at once.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Tenants per reported block (medians of each block, in the order the
    /// tenants were started).
    #[arg(long, default_value_t = 1000)]
    block: usize,
}

pub(super) async fn run(args: &Args) -> Res<Value> {
    let store = args.fleet.storage.connect(!args.keep).await?;
    let (hash, argon2_ms) = password_hash().await?;
    let admin = Arc::new(user_record(&hash, "admin", Role::Admin, true)?);
    let run = Arc::new(uuid::Uuid::new_v4().simple().to_string()[..8].to_owned());
    let n = args.fleet.tenants;
    let block = args.block.max(1);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (store, admin, run, next) = (
            store.clone(),
            Arc::clone(&admin),
            Arc::clone(&run),
            Arc::clone(&next),
        );
        workers.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, saas_bench::BoxError>(samples);
                }
                let tenant = new_tenant(&format!("p{run}_{i:05}"))?;
                let t0 = Instant::now();
                store.create_tenant(&tenant, &admin).await?;
                samples.push((i, ms(t0.elapsed())));
                if (i + 1).is_multiple_of(block) {
                    eprintln!(
                        "{} tenants started, {:.1} s, load {:.1}",
                        i + 1,
                        start.elapsed().as_secs_f64(),
                        load_average()
                    );
                }
            }
        }));
    }
    let mut indexed = Vec::with_capacity(n);
    for w in workers {
        indexed.extend(w.await??);
    }
    let total = start.elapsed();
    indexed.sort_by_key(|(i, _)| *i);
    let samples: Vec<f64> = indexed.iter().map(|(_, s)| *s).collect();
    let blocks: Vec<f64> = samples.chunks(block).map(|c| round3(median(c))).collect();
    let head = &samples[..samples.len().min(100)];
    let tail = &samples[samples.len().saturating_sub(100)..];
    Ok(json!({
        "scenario": "provision",
        "backend": "postgres",
        "tenants": n,
        "concurrency": args.concurrency.max(1),
        "median_ms": round3(median(&samples)),
        "p99_ms": round3(quantile(&samples, 0.99)),
        "max_ms": round3(quantile(&samples, 1.0)),
        "first_100_median_ms": round3(median(head)),
        "last_100_median_ms": round3(median(tail)),
        "block": block,
        "block_median_ms": blocks,
        "last_block_over_first": round3(blocks.last().copied().unwrap_or(f64::NAN) / blocks.first().copied().unwrap_or(f64::NAN)),
        "total_s": round3(total.as_secs_f64()),
        "load_average": load_average(),
        "argon2_hash_ms_not_included": argon2_ms,
    }))
}
