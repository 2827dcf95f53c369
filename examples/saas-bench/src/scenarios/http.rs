//! `http`: requests per second and latency of the REST API over real HTTP.

use saas_bench::Res;
use saas_bench::measure::round3;
use saas_bench::report::check_errors;
use saas_bench::server::{self, Profile, Who};
use saas_bench::setup::SeededArgs;
use serde_json::{Value, json};

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    setup: SeededArgs,
    /// What the requests are.
    #[arg(long, value_enum, default_value = "list")]
    profile: Profile,
    /// Whose token they carry.
    #[arg(long, value_enum, default_value = "admin")]
    who: Who,
}

pub(super) async fn run(args: &Args) -> Res<Value> {
    let mut started = args.setup.start("http").await?;
    let saas = server::saas(&started.env)?;
    let addr = server::start(saas.clone()).await?;
    let (tokens, how) = server::tokens(&saas, &started.seeded, args.who).await?;
    let make = server::requests(&started.seeded, &tokens, args.profile)?;
    let load = &args.setup.server.load;
    eprintln!(
        "driving {} for {} s over {} connections",
        args.profile.name(),
        load.seconds,
        load.connections
    );
    let o = load.drive(addr, make).await?;
    check_errors("http", &o);
    let out = &mut started.out;
    out.insert("profile".into(), json!(args.profile.name()));
    out.insert("as".into(), json!(args.who.name()));
    args.setup.describe(out, started.seeded.len());
    out.insert("tokens".into(), json!(how));
    out.insert("fixture_s".into(), json!(round3(started.fixture_s)));
    if let Value::Object(m) = o.json() {
        out.extend(m);
    }
    Ok(Value::Object(started.out))
}
