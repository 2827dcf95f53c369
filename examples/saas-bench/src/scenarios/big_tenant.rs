//! `big-tenant`: statistics, dashboard and list latency in one tenant with
//! many tasks, as its admin and as a member; with `--explain`, the plans
//! and timings of the statements behind them.

use std::time::Instant;

use saas_bench::fixture::Shape;
use saas_bench::measure::{load_average, round3};
use saas_bench::report::check_errors;
use saas_bench::server::{self, Profile, Who};
use saas_bench::setup::ServerArgs;
use saas_bench::{Res, explain};
use serde_json::{Value, json};

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Tasks in the tenant's project.
    #[arg(long, default_value_t = 100_000)]
    tasks: usize,
    /// Also print the query plans (stderr) and time each statement.
    #[arg(long)]
    explain: bool,
}

pub(super) async fn run(args: &Args) -> Res<Value> {
    let (env, mut out) = args.server.open("big-tenant").await?;
    // A tenant an earlier build seeded is brought to this build's schema
    // first (the deploy step), as the server expects.
    let start = Instant::now();
    let migrated = env.store.migrate(&|_| {}).await?;
    let migrate_s = start.elapsed().as_secs_f64();
    if let Some((tenant, reason)) = migrated.failed.first() {
        return Err(format!("migrating {tenant}: {reason}").into());
    }
    eprintln!(
        "schema: {} tenant(s) migrated, {} current, in {migrate_s:.1} s",
        migrated.migrated, migrated.current
    );
    out.insert("tenants_migrated".into(), json!(migrated.migrated));
    out.insert("migrate_s".into(), json!(round3(migrate_s)));
    let start = Instant::now();
    eprintln!("seeding (or reusing) a tenant with {} tasks", args.tasks);
    let seeded = env
        .tenant(
            &format!("big{}", args.tasks),
            Shape {
                users: 4,
                tasks: args.tasks,
            },
        )
        .await?;
    let seed_s = start.elapsed().as_secs_f64();
    let saas = server::saas(&env)?;
    let addr = server::start(saas.clone()).await?;
    let one = std::slice::from_ref(&seeded);
    let mut endpoints = serde_json::Map::new();
    for who in [Who::Admin, Who::Member] {
        let (tokens, _) = server::tokens(&saas, one, who).await?;
        for profile in [Profile::List, Profile::Statistics, Profile::Dashboard] {
            let make = server::requests(one, &tokens, profile)?;
            let o = args.server.load.drive(addr, make).await?;
            let name = format!("{}_{}", profile.name(), who.name());
            check_errors(&name, &o);
            eprintln!(
                "{name}: {:.1} req/s, p50 {:.2} ms, p99 {:.2} ms",
                o.rps(),
                o.p(0.5),
                o.p(0.99)
            );
            let mut v = o.json();
            if let Value::Object(m) = &mut v {
                m.insert("load_average".into(), json!(load_average()));
                m.remove("first_error");
            }
            endpoints.insert(name, v);
        }
    }
    out.insert("tasks".into(), json!(args.tasks));
    out.insert("seed_or_reuse_s".into(), json!(round3(seed_s)));
    out.insert("connections".into(), json!(args.server.load.connections));
    out.insert("seconds".into(), json!(args.server.load.seconds));
    out.insert("endpoints".into(), Value::Object(endpoints));
    if args.explain {
        out.insert("statements".into(), explain::plans(&env, &seeded).await?);
    }
    Ok(Value::Object(out))
}
