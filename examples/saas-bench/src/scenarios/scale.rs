//! `scale`: latency spread over thousands of tenants against the same load
//! over ten, and the process's peak memory and open files.

use std::sync::Arc;
use std::time::Instant;

use saas_bench::Res;
use saas_bench::client::{MakeRequest, Outcome};
use saas_bench::fixture::Shape;
use saas_bench::measure::{load_average, median, open_fds, proc_status_mib, round3, status_mib};
use saas_bench::report::{check_errors, summary};
use saas_bench::server::{self, Profile, Who};
use saas_bench::setup::ServerArgs;
use saas_store_postgres::PgStore;
use serde_json::{Value, json};

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    server: ServerArgs,
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

/// The PostgreSQL backends serving the store (`application_name` `saas` in
/// the benchmark database) and their resident memory: count, total RSS,
/// total and largest private (anonymous) RSS, in MiB. Private memory is
/// what a backend's caches and plans take; RSS also counts the shared
/// buffers it touched.
async fn pg_backends(pg: &PgStore) -> Res<Value> {
    let pids: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'saas'",
    )
    .persistent(false)
    .fetch_all(pg.catalog_pool())
    .await?;
    let mut rss = 0.0;
    let mut anon = Vec::new();
    for pid in &pids {
        let pid = pid.to_string();
        let (r, a) = (status_mib(&pid, "VmRSS:"), status_mib(&pid, "RssAnon:"));
        if r.is_finite() && a.is_finite() {
            rss += r;
            anon.push(a);
        }
    }
    Ok(json!({
        "backends": anon.len(),
        "rss_mib": round3(rss),
        "private_mib": round3(anon.iter().sum()),
        "largest_private_mib": round3(anon.iter().copied().fold(0.0, f64::max)),
    }))
}

pub(super) async fn run(args: &Args) -> Res<Value> {
    let (env, mut out) = args.server.open("scale").await?;
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
    let mut backends = Vec::new();
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
                args.server.load.drive(addr, Arc::clone(&spread)).await?
            } else {
                args.server.load.drive(addr, Arc::clone(&narrow)).await?
            };
            check_errors(if side == 0 { "wide" } else { "narrow" }, &o);
            let pg = match &env.pg {
                Some(pg) => pg_backends(pg).await?,
                None => Value::Null,
            };
            eprintln!(
                "round {round} {}: {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms, VmHWM {} MiB, PostgreSQL {pg}",
                if side == 0 { "wide" } else { "narrow" },
                o.rps(),
                o.p(0.5),
                o.p(0.99),
                proc_status_mib("VmHWM:")
            );
            backends.push(pg);
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
    out.insert("connections".into(), json!(args.server.load.connections));
    out.insert("seconds".into(), json!(args.server.load.seconds));
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
    if let Some(pg) = &env.pg {
        out.insert("tenant_subpools".into(), json!(pg.tenant_pools().len()));
        // After each run, in run order: what the backends held then.
        out.insert("pg_backends_after_each_run".into(), json!(backends));
    }
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
