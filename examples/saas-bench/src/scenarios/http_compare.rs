//! `http-compare`: `http --profile P` and `http-baseline --profile P` in
//! alternating rounds; reports ours / baseline.

use std::sync::Arc;

use saas_bench::client::Outcome;
use saas_bench::measure::{load_average, median, round3};
use saas_bench::report::{check_errors, summary};
use saas_bench::server::{self, Profile, Who};
use saas_bench::setup::SeededArgs;
use saas_bench::{Res, baseline};
use serde_json::{Value, json};

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    setup: SeededArgs,
    /// Rounds; each runs both servers, in alternating order.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// What the requests are (the admin's, on both servers).
    #[arg(long, value_enum, default_value = "list")]
    profile: Profile,
}

pub(super) async fn run(args: &Args) -> Res<Value> {
    let started = args.setup.start("http-compare").await?;
    let (env, seeded, mut out) = (started.env, started.seeded, started.out);
    let load = &args.setup.server.load;
    let saas = server::saas(&env)?;
    let ours_addr = server::start(saas.clone()).await?;
    let base_addr = baseline::start(&env, &seeded, args.setup.server.storage.pool).await?;
    let (tokens, how) = server::tokens(&saas, &seeded, Who::Admin).await?;
    let ours_make = server::requests(&seeded, &tokens, args.profile)?;
    let base_make = server::requests(&seeded, &tokens, args.profile)?;
    let mut ours = Vec::new();
    let mut base = Vec::new();
    let mut ratios = Vec::new();
    let mut loads = Vec::new();
    for round in 0..args.rounds.max(1) {
        let mut pair = [None, None];
        // Alternate who goes first, so drift in the machine's load falls on both.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let o = if side == 0 {
                load.drive(ours_addr, Arc::clone(&ours_make)).await?
            } else {
                load.drive(base_addr, Arc::clone(&base_make)).await?
            };
            check_errors(if side == 0 { "ours" } else { "baseline" }, &o);
            pair[side] = Some(o);
        }
        let [Some(o), Some(b)] = pair else {
            return Err("a round did not run".into());
        };
        let ratio = o.rps() / b.rps();
        loads.push(load_average());
        eprintln!(
            "round {round}: ours {:.0} req/s (p50 {:.2} ms), baseline {:.0} req/s (p50 {:.2} ms), ratio {ratio:.3}",
            o.rps(),
            o.p(0.5),
            b.rps(),
            b.p(0.5)
        );
        ratios.push(ratio);
        ours.push(o);
        base.push(b);
    }
    let ours_rps = median(&ours.iter().map(Outcome::rps).collect::<Vec<_>>());
    let base_rps = median(&base.iter().map(Outcome::rps).collect::<Vec<_>>());
    out.insert("profile".into(), json!(args.profile.name()));
    args.setup.describe(&mut out, seeded.len());
    out.insert("rounds".into(), json!(ours.len()));
    out.insert("tokens".into(), json!(how));
    out.insert("ours".into(), summary(&ours));
    out.insert("baseline".into(), summary(&base));
    out.insert("ratio".into(), json!(round3(ours_rps / base_rps)));
    out.insert(
        "round_ratios".into(),
        json!(ratios.iter().map(|r| round3(*r)).collect::<Vec<_>>()),
    );
    out.insert("median_round_ratio".into(), json!(round3(median(&ratios))));
    out.insert("round_load_averages".into(), json!(loads));
    out.insert("target_ratio".into(), json!(0.80));
    Ok(Value::Object(out))
}
