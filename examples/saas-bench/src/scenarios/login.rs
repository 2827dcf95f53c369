//! `login`: tokens per second from `POST /api/token/`, which argon2id bounds.

use saas_bench::Res;
use saas_bench::measure::round3;
use saas_bench::report::check_errors;
use saas_bench::server::{self, Profile};
use saas_bench::setup::SeededArgs;
use serde_json::{Value, json};

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    setup: SeededArgs,
}

pub(super) async fn run(args: &Args) -> Res<Value> {
    let mut started = args.setup.start("login").await?;
    let saas = server::saas(&started.env)?;
    let addr = server::start(saas).await?;
    // Logins carry no token.
    let no_tokens = vec![String::new(); started.seeded.len()];
    let make = server::requests(&started.seeded, &no_tokens, Profile::Login)?;
    let o = args.setup.server.load.drive(addr, make).await?;
    check_errors("login", &o);
    let p = saas_core::auth::argon2_params();
    let out = &mut started.out;
    out.insert("tenants".into(), json!(started.seeded.len()));
    out.insert(
        "connections".into(),
        json!(args.setup.server.load.connections),
    );
    out.insert("seconds".into(), json!(args.setup.server.load.seconds));
    out.insert("tokens_per_s".into(), json!(round3(o.rps())));
    out.insert(
        "argon2".into(),
        json!({
            "algorithm": "argon2id",
            "m_cost_kib": p.m_cost(),
            "t_cost": p.t_cost(),
            "p_cost": p.p_cost(),
        }),
    );
    out.insert("one_hash_ms".into(), json!(round3(started.env.hash_ms)));
    out.insert(
        "cores".into(),
        json!(std::thread::available_parallelism().map_or(0, |n| n.get())),
    );
    if let Value::Object(m) = o.json() {
        out.extend(m);
    }
    Ok(Value::Object(started.out))
}
