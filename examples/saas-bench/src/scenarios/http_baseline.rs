//! `http-baseline`: the ceiling of an `http` profile, bare axum handlers
//! over the same data without tenancy, authentication or validation.

use saas_bench::report::check_errors;
use saas_bench::server::{self, Profile};
use saas_bench::setup::SeededArgs;
use saas_bench::{Res, baseline};
use serde_json::{Value, json};

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    setup: SeededArgs,
    /// What the requests are.
    #[arg(long, value_enum, default_value = "list")]
    profile: Profile,
}

pub(super) async fn run(args: &Args) -> Res<Value> {
    let mut started = args.setup.start("http-baseline").await?;
    let seeded = &started.seeded;
    let addr = baseline::start(&started.env, seeded, args.setup.server.storage.pool).await?;
    let tokens = vec![String::new(); seeded.len()];
    let make = server::requests(seeded, &tokens, args.profile)?;
    let o = args.setup.server.load.drive(addr, make).await?;
    check_errors("baseline", &o);
    let out = &mut started.out;
    out.insert("profile".into(), json!(args.profile.name()));
    args.setup.describe(out, seeded.len());
    if let Value::Object(m) = o.json() {
        out.extend(m);
    }
    Ok(Value::Object(started.out))
}
