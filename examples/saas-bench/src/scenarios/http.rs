//! `http`: requests per second and latency of the REST API over real HTTP;
//! with `--seed`, the Django seed beside it on the same tenants, users,
//! data and profiles, in alternating rounds, and the ratio ours / seed.

use std::path::PathBuf;
use std::sync::Arc;

use saas_bench::client::{MakeRequest, Outcome};
use saas_bench::django::{DjangoSeed, PgParts, cached_venv};
use saas_bench::django_fixture::{seed_tenants, seed_tokens};
use saas_bench::fixture::Shape;
use saas_bench::measure::{load_average, median, round3};
use saas_bench::report::{check_errors, summary};
use saas_bench::server::{self, Profile, Target, Who};
use saas_bench::setup::SeededArgs;
use saas_bench::{Res, child, database};
use serde_json::{Map, Value, json};

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    setup: SeededArgs,
    /// What the requests are; several (comma-separated) run one after the
    /// other, in the order given (put `create` last: it adds tasks).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "list")]
    profile: Vec<Profile>,
    /// Whose token they carry.
    #[arg(long, value_enum, default_value = "admin")]
    who: Who,
    /// Also drive the Django seed in this directory (started with its
    /// `run.sh` from a copy, stopped with its `stop.sh`), on the same
    /// tenants, users, data and profiles, alternating with ours.
    #[arg(long)]
    seed: Option<PathBuf>,
    /// The seed's PostgreSQL database (dropped and created afresh).
    #[arg(
        long,
        env = "SAAS_BENCH_SEED_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/saas_bench_django"
    )]
    seed_database_url: String,
    /// Gunicorn workers of the seed.
    #[arg(long, default_value_t = 4)]
    seed_workers: usize,
    /// The seed's virtual environment, made when missing (default:
    /// `tmp/django-seed-venv` in the target directory, where saas-server's
    /// Django import test keeps it).
    #[arg(long)]
    seed_venv: Option<PathBuf>,
    /// Rounds per profile with `--seed`; each runs both, in alternating order.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

pub(super) async fn run(args: &Args) -> Res<Value> {
    let mut started = args.setup.start("http").await?;
    let saas = server::saas(&started.env)?;
    let addr = server::start(saas.clone()).await?;
    let (tokens, how) = server::tokens(&saas, &started.seeded, args.who).await?;
    let out = &mut started.out;
    args.setup.describe(out, started.seeded.len());
    out.insert("as".into(), json!(args.who.name()));
    out.insert("tokens".into(), json!(how));
    out.insert("fixture_s".into(), json!(round3(started.fixture_s)));
    let load = &args.setup.server.load;
    let Some(seed_dir) = &args.seed else {
        let mut results = Vec::new();
        for &profile in &args.profile {
            let make = server::requests(&started.seeded, &tokens, profile)?;
            eprintln!(
                "driving {} for {} s over {} connections",
                profile.name(),
                load.seconds,
                load.connections
            );
            let o = load.drive(addr, make).await?;
            check_errors("http", &o);
            let mut m = Map::new();
            m.insert("profile".into(), json!(profile.name()));
            if let Value::Object(fields) = o.json() {
                m.extend(fields);
            }
            results.push(m);
        }
        // One profile: its fields at the top, as before several were possible.
        match <[Map<String, Value>; 1]>::try_from(results) {
            Ok([one]) => out.extend(one),
            Err(all) => {
                out.insert("profiles".into(), json!(all));
            }
        }
        return Ok(Value::Object(started.out));
    };

    let shape = Shape {
        users: args.setup.fixture.users.max(2),
        tasks: args.setup.fixture.tasks,
    };
    let venv = match &args.seed_venv {
        Some(v) => v.clone(),
        None => default_venv()?,
    };
    eprintln!("the seed's virtual environment: {}", venv.display());
    let venv = cached_venv(seed_dir, &venv)?;
    database::prepare(&args.seed_database_url, true).await?;
    let django = DjangoSeed::start(
        seed_dir,
        &venv,
        child::free_port()?,
        args.seed_workers,
        &PgParts::parse(&args.seed_database_url),
        &[
            // No broker needed: welcome emails run in-process, in memory.
            ("CELERY_TASK_ALWAYS_EAGER", "1"),
            ("EMAIL_BACKEND_NAME", "locmem"),
            ("JWT_ACCESS_MINUTES", "600"),
        ],
    )?;
    eprintln!("the seed serves on {}", django.addr);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&args.seed_database_url)
        .await?;
    let seeds = seed_tenants(django.addr, &pool, started.seeded.len(), shape).await?;
    pool.close().await;
    let seed_tokens = seed_tokens(django.addr, &seeds, args.who).await?;
    let mut results = Vec::new();
    for &profile in &args.profile {
        let ours = server::requests(&started.seeded, &tokens, profile)?;
        let theirs = seeds
            .iter()
            .zip(&seed_tokens)
            .map(|(s, token)| Target::new(&s.host, token, s.project, s.member, s.task_ids))
            .collect::<Res<Vec<_>>>()?;
        let theirs = server::requests_to(theirs, profile)?;
        results.push(side_by_side(args, profile, [(addr, ours), (django.addr, theirs)]).await?);
    }
    drop(django);
    started
        .out
        .insert("seed_workers".into(), json!(args.seed_workers));
    started
        .out
        .insert("rounds".into(), json!(args.rounds.max(1)));
    started.out.insert("profiles".into(), json!(results));
    Ok(Value::Object(started.out))
}

/// `target/tmp/django-seed-venv` when this program is `target/<profile>/saas-bench`.
fn default_venv() -> Res<PathBuf> {
    let exe = std::env::current_exe()?;
    let target = exe
        .parent()
        .and_then(|p| p.parent())
        .ok_or("cannot tell the target directory; pass --seed-venv")?;
    Ok(target.join("tmp/django-seed-venv"))
}

/// One profile against ours and the seed in alternating rounds: both
/// sides' medians and ours / seed.
async fn side_by_side(
    args: &Args,
    profile: Profile,
    sides: [(std::net::SocketAddr, Arc<MakeRequest>); 2],
) -> Res<Map<String, Value>> {
    let load = &args.setup.server.load;
    let mut runs: [Vec<Outcome>; 2] = [Vec::new(), Vec::new()];
    let mut ratios = Vec::new();
    let mut loads = Vec::new();
    for round in 0..args.rounds.max(1) {
        // Alternate who goes first, so drift in the machine's load falls on both.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let (addr, make) = &sides[side];
            let o = load.drive(*addr, Arc::clone(make)).await?;
            check_errors(if side == 0 { "ours" } else { "seed" }, &o);
            runs[side].push(o);
        }
        let (o, s) = (&runs[0][round], &runs[1][round]);
        let ratio = o.rps() / s.rps();
        eprintln!(
            "{} round {round}: ours {:.0} req/s (p50 {:.2} ms, p99 {:.2} ms), seed {:.0} req/s (p50 {:.2} ms, p99 {:.2} ms), ratio {ratio:.1}",
            profile.name(),
            o.rps(),
            o.p(0.5),
            o.p(0.99),
            s.rps(),
            s.p(0.5),
            s.p(0.99)
        );
        ratios.push(ratio);
        loads.push(load_average());
    }
    let rps = |runs: &[Outcome]| median(&runs.iter().map(Outcome::rps).collect::<Vec<_>>());
    let mut m = Map::new();
    m.insert("profile".into(), json!(profile.name()));
    m.insert("ours".into(), summary(&runs[0]));
    m.insert("seed".into(), summary(&runs[1]));
    m.insert("ratio".into(), json!(round3(rps(&runs[0]) / rps(&runs[1]))));
    m.insert(
        "round_ratios".into(),
        json!(ratios.iter().map(|r| round3(*r)).collect::<Vec<_>>()),
    );
    m.insert("round_load_averages".into(), json!(loads));
    Ok(m)
}
