//! `fill`: whether the API slows down as tenants fill up. A fleet of
//! tenants is filled through `POST /api/tasks/` (the `create` profile) to
//! `--fill-to` tasks each; then the dashboard and mixed profiles run on it
//! and on a fleet of the same shape at the fixture's size, in alternating
//! rounds.

use std::sync::Arc;
use std::time::Instant;

use saas_bench::client::{LoadArgs, Outcome};
use saas_bench::fixture::Seeded;
use saas_bench::measure::{load_average, median, round3};
use saas_bench::report::{check_errors, summary};
use saas_bench::server::{self, Profile, Who};
use saas_bench::setup::SeededArgs;
use saas_bench::storage::Env;
use saas_bench::{BoxError, Res};
use saas_core::projects::{Scope, TaskQuery};
use serde_json::{Value, json};

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    setup: SeededArgs,
    /// Tasks each tenant of the filled fleet is brought to, through the
    /// API, before measuring.
    #[arg(long, default_value_t = 10_000)]
    fill_to: u64,
    /// Rounds; each runs both fleets, in alternating order.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The profiles measured on both fleets.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "dashboard,mixed"
    )]
    profiles: Vec<Profile>,
}

/// Tasks of each tenant of `fleet`.
async fn task_totals(env: &Env, fleet: &[Seeded]) -> Res<Vec<u64>> {
    let mut out = Vec::with_capacity(fleet.len());
    for s in fleet {
        let t = env.store.open(&s.tenant).await?;
        let counts = t
            .task_counts(&TaskQuery::new(Scope::All), chrono::Utc::now())
            .await?;
        out.push(counts.total);
    }
    Ok(out)
}

/// Bytes of the filled fleet's `-wal` files (SQLite; 0 elsewhere): how much
/// the WAL grew and was not reset.
fn wal_bytes(env: &Env, fleet: &[Seeded]) -> u64 {
    fleet
        .iter()
        .filter_map(|s| env.tenant_file(&s.tenant).ok())
        .filter_map(|p| std::fs::metadata(p.with_extension("sqlite-wal")).ok())
        .map(|m| m.len())
        .sum()
}

pub(super) async fn run(args: &Args) -> Res<Value> {
    let started = args.setup.start("fill").await?;
    let (env, small, mut out) = (started.env, started.seeded, started.out);
    let (filled, _) = args.setup.fixture.seed_fleet(&env, "f").await?;
    let saas = server::saas(&env)?;
    let addr = server::start(saas.clone()).await?;
    let (small_tokens, how) = server::tokens(&saas, &small, Who::Admin).await?;
    let (filled_tokens, _) = server::tokens(&saas, &filled, Who::Admin).await?;

    // Fill: the create profile round robin over the fleet, in runs sized
    // to what is left at the last run's rate, until every tenant has
    // `fill_to` tasks (a run may overshoot by a little).
    let load = &args.setup.server.load;
    let create = server::requests(&filled, &filled_tokens, Profile::Create)?;
    let fill_start = Instant::now();
    let mut created = 0usize;
    let mut rate = 1_000.0f64;
    loop {
        let totals = task_totals(&env, &filled).await?;
        let short: u64 = totals
            .iter()
            .map(|n| args.fill_to.saturating_sub(*n))
            .max()
            .unwrap_or(0);
        if short == 0 {
            break;
        }
        let needed = (short * filled.len() as u64) as f64;
        let seconds = (needed / rate).ceil().clamp(1.0, 10.0) as u64;
        let run = LoadArgs {
            connections: load.connections,
            seconds,
            warmup: 0,
        };
        let o = run.drive(addr, Arc::clone(&create)).await?;
        check_errors("fill", &o);
        if o.errors > 0 {
            return Err(BoxError::from(format!(
                "filling failed: {}",
                o.first_error.unwrap_or_default()
            )));
        }
        created += o.requests;
        rate = o.rps().max(1.0);
        eprintln!(
            "filling: {} tasks short per tenant, created {} at {:.0} req/s",
            short,
            o.requests,
            o.rps()
        );
    }
    let fill_s = fill_start.elapsed().as_secs_f64();
    let filled_before = task_totals(&env, &filled).await?;
    let small_before = task_totals(&env, &small).await?;
    let wal_after_fill = wal_bytes(&env, &filled);
    eprintln!("filled to {filled_before:?} in {fill_s:.1} s; fixture fleet at {small_before:?}");

    let mut results = serde_json::Map::new();
    let mut loads = Vec::new();
    for profile in &args.profiles {
        let small_make = server::requests(&small, &small_tokens, *profile)?;
        let filled_make = server::requests(&filled, &filled_tokens, *profile)?;
        let mut small_runs: Vec<Outcome> = Vec::new();
        let mut filled_runs: Vec<Outcome> = Vec::new();
        for round in 0..args.rounds.max(1) {
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for side in order {
                let (make, name) = if side == 0 {
                    (&small_make, "small")
                } else {
                    (&filled_make, "filled")
                };
                let o = load.drive(addr, Arc::clone(make)).await?;
                check_errors(name, &o);
                eprintln!(
                    "{} round {round} {name}: {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms",
                    profile.name(),
                    o.rps(),
                    o.p(0.5),
                    o.p(0.99)
                );
                if side == 0 {
                    small_runs.push(o);
                } else {
                    filled_runs.push(o);
                }
            }
            loads.push(load_average());
        }
        let rps = |runs: &[Outcome]| median(&runs.iter().map(Outcome::rps).collect::<Vec<_>>());
        let p50 = |runs: &[Outcome]| median(&runs.iter().map(|o| o.p(0.5)).collect::<Vec<_>>());
        results.insert(
            profile.name().into(),
            json!({
                "small": summary(&small_runs),
                "filled": summary(&filled_runs),
                "rps_ratio_small_over_filled": round3(rps(&small_runs) / rps(&filled_runs)),
                "p50_ratio_filled_over_small": round3(p50(&filled_runs) / p50(&small_runs)),
            }),
        );
    }
    args.setup.describe(&mut out, small.len());
    out.insert("tokens".into(), json!(how));
    out.insert("fill_to".into(), json!(args.fill_to));
    out.insert("fill_requests".into(), json!(created));
    out.insert("fill_s".into(), json!(round3(fill_s)));
    out.insert("filled_tasks_at_start".into(), json!(filled_before));
    out.insert("small_tasks_at_start".into(), json!(small_before));
    out.insert(
        "filled_tasks_at_end".into(),
        json!(task_totals(&env, &filled).await?),
    );
    out.insert(
        "small_tasks_at_end".into(),
        json!(task_totals(&env, &small).await?),
    );
    if env.sqlite.is_some() {
        out.insert("filled_wal_bytes_after_fill".into(), json!(wal_after_fill));
        out.insert(
            "filled_wal_bytes_at_end".into(),
            json!(wal_bytes(&env, &filled)),
        );
    }
    out.insert("rounds".into(), json!(args.rounds.max(1)));
    out.insert("profiles".into(), Value::Object(results));
    out.insert("target_ratio".into(), json!(1.5));
    out.insert("round_load_averages".into(), json!(loads));
    Ok(Value::Object(out))
}
