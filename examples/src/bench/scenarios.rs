//! The HTTP scenarios: arguments and runs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{Value, json};

use super::client::{self, MakeRequest, Outcome};
use super::fixture::{Env, Seeded, Shape, StorageArgs};
use super::server::{self, Profile, Who};
use super::{Res, baseline, explain, load_average, median, open_fds, proc_status_mib, round3};

/// How hard and how long to drive the server.
#[derive(Debug, Clone, Args)]
pub(crate) struct LoadArgs {
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Unmeasured seconds before each run.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
}

impl LoadArgs {
    async fn drive(&self, addr: SocketAddr, make: Arc<MakeRequest>) -> Res<Outcome> {
        client::drive(
            addr,
            self.connections,
            Duration::from_secs(self.warmup),
            Duration::from_secs(self.seconds),
            make,
        )
        .await
    }
}

/// What each tenant of the `http` fixtures holds.
#[derive(Debug, Clone, Args)]
pub(crate) struct FixtureArgs {
    /// Tenants; requests go round robin over them.
    #[arg(long, default_value_t = 10)]
    tenants: usize,
    /// Tasks per tenant (all in its project).
    #[arg(long, default_value_t = 200)]
    tasks: usize,
    /// Users per tenant besides the admin (a manager, then members).
    #[arg(long, default_value_t = 4)]
    users: usize,
}

impl FixtureArgs {
    async fn seed(&self, env: &Arc<Env>) -> Res<(Vec<Seeded>, f64)> {
        let start = Instant::now();
        let shape = Shape {
            users: self.users.max(2),
            tasks: self.tasks,
        };
        let prefix = format!("h{}u{}", shape.tasks, shape.users);
        let seeded = env.tenants(&prefix, self.tenants.max(1), shape, 2).await?;
        Ok((seeded, start.elapsed().as_secs_f64()))
    }
}

/// `http`.
#[derive(Debug, Args)]
pub(crate) struct HttpArgs {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    fixture: FixtureArgs,
    #[command(flatten)]
    load: LoadArgs,
    /// What the requests are.
    #[arg(long, value_enum, default_value = "list")]
    profile: Profile,
    /// Whose token they carry.
    #[arg(long, value_enum, default_value = "admin")]
    who: Who,
}

/// `http-baseline`.
#[derive(Debug, Args)]
pub(crate) struct BaselineArgs {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    fixture: FixtureArgs,
    #[command(flatten)]
    load: LoadArgs,
}

/// `http-compare`.
#[derive(Debug, Args)]
pub(crate) struct CompareArgs {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    fixture: FixtureArgs,
    #[command(flatten)]
    load: LoadArgs,
    /// Rounds; each runs both servers, in alternating order.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

/// `scale`.
#[derive(Debug, Args)]
pub(crate) struct ScaleArgs {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    load: LoadArgs,
    /// Tenants the wide variant spreads requests over.
    #[arg(long, default_value_t = 10_000)]
    tenants: usize,
    /// Tenants the narrow variant spreads the same load over.
    #[arg(long, default_value_t = 10)]
    few: usize,
    /// Tasks per tenant.
    #[arg(long, default_value_t = 20)]
    tasks: usize,
    /// Rounds; each runs both variants, in alternating order.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// What the requests are.
    #[arg(long, value_enum, default_value = "list")]
    profile: Profile,
    /// Tenants provisioned at once.
    #[arg(long, default_value_t = 4)]
    parallel: usize,
}

/// `login`.
#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    fixture: FixtureArgs,
    #[command(flatten)]
    load: LoadArgs,
}

/// `big-tenant`.
#[derive(Debug, Args)]
pub(crate) struct BigArgs {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    load: LoadArgs,
    /// Tasks in the tenant's project.
    #[arg(long, default_value_t = 100_000)]
    tasks: usize,
    /// Also print the query plans (stderr) and time each statement.
    #[arg(long)]
    explain: bool,
}

fn head(scenario: &str, env: &Env) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("scenario".into(), json!(scenario));
    m.insert("backend".into(), json!(env.backend.name()));
    if let Some(pg) = &env.pg {
        m.insert("routing".into(), json!(format!("{:?}", pg.routing())));
    }
    m.insert("load_average_at_start".into(), json!(load_average()));
    m
}

fn check_errors(what: &str, o: &Outcome) {
    if o.errors > 0 {
        eprintln!(
            "{what}: {} errors of {} requests; first: {}",
            o.errors,
            o.requests,
            o.first_error.as_deref().unwrap_or("?")
        );
    }
}

pub(crate) async fn http(args: &HttpArgs) -> Res<Value> {
    let env = Arc::new(Env::open(&args.storage).await?);
    let mut out = head("http", &env);
    let (seeded, seed_s) = args.fixture.seed(&env).await?;
    let saas = server::saas(&env)?;
    let addr = server::start(saas.clone()).await?;
    let (tokens, how) = server::tokens(&saas, &seeded, args.who).await?;
    let make = server::requests(&seeded, &tokens, args.profile)?;
    eprintln!(
        "driving {} for {} s over {} connections",
        args.profile.name(),
        args.load.seconds,
        args.load.connections
    );
    let o = args.load.drive(addr, make).await?;
    check_errors("http", &o);
    out.insert("profile".into(), json!(args.profile.name()));
    out.insert("as".into(), json!(args.who.name()));
    out.insert("tenants".into(), json!(seeded.len()));
    out.insert("tasks_per_tenant".into(), json!(args.fixture.tasks));
    out.insert("connections".into(), json!(args.load.connections));
    out.insert("seconds".into(), json!(args.load.seconds));
    out.insert("tokens".into(), json!(how));
    out.insert("fixture_s".into(), json!(round3(seed_s)));
    if let Value::Object(m) = o.json() {
        out.extend(m);
    }
    Ok(Value::Object(out))
}

pub(crate) async fn http_baseline(args: &BaselineArgs) -> Res<Value> {
    let env = Arc::new(Env::open(&args.storage).await?);
    let mut out = head("http-baseline", &env);
    let (seeded, _) = args.fixture.seed(&env).await?;
    let addr = baseline::start(&env, &seeded, args.storage.pool).await?;
    let tokens = vec![String::new(); seeded.len()];
    let make = server::requests(&seeded, &tokens, Profile::List)?;
    let o = args.load.drive(addr, make).await?;
    check_errors("baseline", &o);
    out.insert("profile".into(), json!("list"));
    out.insert("tenants".into(), json!(seeded.len()));
    out.insert("tasks_per_tenant".into(), json!(args.fixture.tasks));
    out.insert("connections".into(), json!(args.load.connections));
    out.insert("seconds".into(), json!(args.load.seconds));
    if let Value::Object(m) = o.json() {
        out.extend(m);
    }
    Ok(Value::Object(out))
}

fn summary(runs: &[Outcome]) -> Value {
    let rps: Vec<f64> = runs.iter().map(Outcome::rps).collect();
    let p50: Vec<f64> = runs.iter().map(|o| o.p(0.5)).collect();
    let p99: Vec<f64> = runs.iter().map(|o| o.p(0.99)).collect();
    json!({
        "requests_per_s": round3(median(&rps)),
        "p50_ms": round3(median(&p50)),
        "p99_ms": round3(median(&p99)),
        "errors": runs.iter().map(|o| o.errors).sum::<usize>(),
        "rounds_requests_per_s": rps.iter().map(|x| round3(*x)).collect::<Vec<_>>(),
    })
}

pub(crate) async fn http_compare(args: &CompareArgs) -> Res<Value> {
    let env = Arc::new(Env::open(&args.storage).await?);
    let mut out = head("http-compare", &env);
    let (seeded, _) = args.fixture.seed(&env).await?;
    let saas = server::saas(&env)?;
    let ours_addr = server::start(saas.clone()).await?;
    let base_addr = baseline::start(&env, &seeded, args.storage.pool).await?;
    let (tokens, how) = server::tokens(&saas, &seeded, Who::Admin).await?;
    let ours_make = server::requests(&seeded, &tokens, Profile::List)?;
    let base_make = server::requests(&seeded, &tokens, Profile::List)?;
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
                args.load.drive(ours_addr, Arc::clone(&ours_make)).await?
            } else {
                args.load.drive(base_addr, Arc::clone(&base_make)).await?
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
    out.insert("profile".into(), json!("list"));
    out.insert("tenants".into(), json!(seeded.len()));
    out.insert("tasks_per_tenant".into(), json!(args.fixture.tasks));
    out.insert("connections".into(), json!(args.load.connections));
    out.insert("seconds".into(), json!(args.load.seconds));
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
    out.insert("target_ratio".into(), json!(0.70));
    Ok(Value::Object(out))
}

pub(crate) async fn scale(args: &ScaleArgs) -> Res<Value> {
    let env = Arc::new(Env::open(&args.storage).await?);
    let mut out = head("scale", &env);
    let shape = Shape {
        users: 2,
        tasks: args.tasks,
    };
    let n = args.tenants.max(args.few).max(1);
    let start = Instant::now();
    eprintln!("provisioning (or reusing) {n} tenants");
    let seeded = env
        .tenants(&format!("s{}", args.tasks), n, shape, args.parallel)
        .await?;
    let provision_s = start.elapsed().as_secs_f64();
    eprintln!("{n} tenants ready in {provision_s:.1} s");
    let saas = server::saas(&env)?;
    let addr = server::start(saas.clone()).await?;
    let (tokens, how) = server::tokens(&saas, &seeded, Who::Admin).await?;
    let wide = server::requests(&seeded, &tokens, args.profile)?;
    let narrow = server::requests(&seeded[..args.few], &tokens[..args.few], args.profile)?;
    let mut wide_runs = Vec::new();
    let mut narrow_runs = Vec::new();
    let mut loads = Vec::new();
    for round in 0..args.rounds.max(1) {
        // Request i of the wide variant goes to tenant (i + offset) * 7919
        // mod n: every request of a round to another tenant, uniformly spread,
        // and each round starting somewhere else.
        let offset = round * 1_000_003;
        let inner = Arc::clone(&wide);
        let spread: Arc<MakeRequest> =
            Arc::new(move |i: usize| inner((i + offset).wrapping_mul(7919) % n));
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let o = if side == 0 {
                args.load.drive(addr, Arc::clone(&spread)).await?
            } else {
                args.load.drive(addr, Arc::clone(&narrow)).await?
            };
            check_errors(if side == 0 { "wide" } else { "narrow" }, &o);
            eprintln!(
                "round {round} {}: {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms, VmHWM {} MiB",
                if side == 0 { "wide" } else { "narrow" },
                o.rps(),
                o.p(0.5),
                o.p(0.99),
                proc_status_mib("VmHWM:")
            );
            if side == 0 {
                wide_runs.push(o);
            } else {
                narrow_runs.push(o);
            }
        }
        loads.push(load_average());
    }
    let p50 = |runs: &[Outcome]| median(&runs.iter().map(|o| o.p(0.5)).collect::<Vec<_>>());
    let ratio = p50(&wide_runs) / p50(&narrow_runs);
    out.insert("profile".into(), json!(args.profile.name()));
    out.insert("tenants".into(), json!(n));
    out.insert("few".into(), json!(args.few));
    out.insert("tasks_per_tenant".into(), json!(args.tasks));
    out.insert("connections".into(), json!(args.load.connections));
    out.insert("seconds".into(), json!(args.load.seconds));
    out.insert("rounds".into(), json!(wide_runs.len()));
    out.insert("tokens".into(), json!(how));
    out.insert("provision_or_reuse_s".into(), json!(round3(provision_s)));
    out.insert("wide".into(), summary(&wide_runs));
    out.insert("narrow".into(), summary(&narrow_runs));
    out.insert("p50_ratio".into(), json!(round3(ratio)));
    out.insert("target_p50_ratio".into(), json!(1.2));
    out.insert("peak_rss_mib".into(), json!(proc_status_mib("VmHWM:")));
    out.insert("rss_mib".into(), json!(proc_status_mib("VmRSS:")));
    out.insert("open_fds".into(), json!(open_fds()));
    if let Some(s) = &env.sqlite {
        let stats = s.stats();
        out.insert("sqlite_cached_handles".into(), json!(stats.cached_handles));
        out.insert(
            "sqlite_open_connections".into(),
            json!(stats.open_connections),
        );
        out.insert(
            "sqlite_handle_cache_capacity".into(),
            json!(s.options().handle_cache_capacity),
        );
    }
    out.insert("round_load_averages".into(), json!(loads));
    Ok(Value::Object(out))
}

pub(crate) async fn login(args: &LoginArgs) -> Res<Value> {
    let env = Arc::new(Env::open(&args.storage).await?);
    let mut out = head("login", &env);
    let (seeded, _) = args.fixture.seed(&env).await?;
    let saas = server::saas(&env)?;
    let addr = server::start(saas).await?;
    let make = server::login_requests(&seeded)?;
    let o = args.load.drive(addr, make).await?;
    check_errors("login", &o);
    let p = saas_core::auth::argon2_params();
    out.insert("tenants".into(), json!(seeded.len()));
    out.insert("connections".into(), json!(args.load.connections));
    out.insert("seconds".into(), json!(args.load.seconds));
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
    out.insert("one_hash_ms".into(), json!(round3(env.hash_ms)));
    out.insert(
        "cores".into(),
        json!(std::thread::available_parallelism().map_or(0, |n| n.get())),
    );
    if let Value::Object(m) = o.json() {
        out.extend(m);
    }
    Ok(Value::Object(out))
}

pub(crate) async fn big_tenant(args: &BigArgs) -> Res<Value> {
    let env = Arc::new(Env::open(&args.storage).await?);
    let mut out = head("big-tenant", &env);
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
            let o = args.load.drive(addr, make).await?;
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
    out.insert("connections".into(), json!(args.load.connections));
    out.insert("seconds".into(), json!(args.load.seconds));
    out.insert("endpoints".into(), Value::Object(endpoints));
    if args.explain {
        out.insert("statements".into(), explain::plans(&env, &seeded).await?);
    }
    Ok(Value::Object(out))
}
