//! `memory`: the resident memory of the real `saas-server` binary, run as
//! a child process: at start, after registering tenants and their users
//! through the API, over minutes of mixed load, its peak and at the end.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use saas_bench::child::{ServerProcess, server_binary};
use saas_bench::client::{Outcome, drive};
use saas_bench::measure::{load_average, round3};
use saas_bench::report::check_errors;
use saas_bench::server::{Profile, Target, requests_to};
use saas_bench::storage::{Backend, PASSWORD};
use saas_bench::{Res, api, database};
use serde_json::{Value, json};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Storage backend of the server.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// PostgreSQL database of the server (dropped and created afresh).
    #[arg(
        long,
        env = "SAAS_BENCH_MEMORY_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/saas_bench_memory"
    )]
    database_url: String,
    /// The `saas-server` binary (default: the one beside this program).
    #[arg(long)]
    server: Option<PathBuf>,
    /// More environment for the server, `NAME=VALUE` (repeatable).
    #[arg(long = "server-env", value_parser = name_value)]
    server_env: Vec<(String, String)>,
    /// Tenants registered.
    #[arg(long, default_value_t = 10)]
    tenants: usize,
    /// Users per tenant besides its admin.
    #[arg(long, default_value_t = 5)]
    users: usize,
    /// Tasks per tenant before the load (the load's creates add more).
    #[arg(long, default_value_t = 20)]
    tasks: usize,
    /// Minutes of mixed load.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Concurrent keep-alive connections of the load.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Seconds between two readings of the server's resident memory.
    #[arg(long, default_value_t = 10)]
    sample_seconds: u64,
}

fn name_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected NAME=VALUE, got {s:?}"))
}

/// Access tokens live 5 minutes: the load runs in stretches of at most
/// this, each with fresh logins.
const STRETCH: Duration = Duration::from_secs(240);

/// The mixed profile over `targets` for `seconds`, in stretches of
/// [`STRETCH`] (the admins log in again before each); one outcome for all.
async fn load(
    addr: std::net::SocketAddr,
    targets: &[Target],
    connections: usize,
    seconds: f64,
) -> Res<Outcome> {
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let mut all = Outcome {
        requests: 0,
        errors: 0,
        seconds: 0.0,
        latencies: Vec::new(),
        first_error: None,
        bytes: 0,
    };
    while let Some(left) = end
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
    {
        let mut fresh = Vec::with_capacity(targets.len());
        for t in targets {
            let token = api::login(addr, t.host(), "admin", PASSWORD).await?;
            fresh.push(t.with_token(&token)?);
        }
        let make = requests_to(fresh, Profile::Mixed)?;
        let o = drive(addr, connections, Duration::ZERO, left.min(STRETCH), make).await?;
        all.requests += o.requests;
        all.errors += o.errors;
        all.seconds += o.seconds;
        all.bytes += o.bytes;
        all.first_error = all.first_error.or(o.first_error);
        // Latencies are not reported here; memory is the figure.
    }
    Ok(all)
}

/// The length of the window whose readings show flatness: the last five
/// minutes, or the last half of a shorter run.
fn tail_seconds(total: f64) -> f64 {
    (total / 2.0).min(300.0)
}

pub(super) async fn run(args: &Args) -> Res<Value> {
    let bin = server_binary(args.server.as_deref())?;
    let dir = tempfile::Builder::new()
        .prefix("saas-bench-memory-")
        .tempdir()?;
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let mut env = vec![("SECRET_KEY".to_owned(), secret)];
    match args.backend {
        Backend::Sqlite => {
            env.push((
                "DATA_DIR".into(),
                dir.path().join("data").display().to_string(),
            ));
        }
        Backend::Postgres => {
            database::prepare(&args.database_url, true).await?;
            env.push(("DATABASE_URL".into(), args.database_url.clone()));
        }
    }
    env.extend(args.server_env.iter().cloned());
    let server = ServerProcess::start(&bin, &env, &dir.path().join("server.log")).await?;
    let addr = server.addr;
    let start_mib = server.status_mib("VmRSS:");
    eprintln!("saas-server (pid {}) up: {start_mib} MiB", server.pid());

    let setup = Instant::now();
    let mut targets = Vec::new();
    for i in 0..args.tenants.max(1) {
        let host = api::register(addr, &format!("mem{i}"), PASSWORD).await?;
        let token = api::login(addr, &host, "admin", PASSWORD).await?;
        targets.push(api::populate(addr, &host, &token, PASSWORD, args.users, args.tasks).await?);
    }
    let setup_s = setup.elapsed().as_secs_f64();
    let after_setup_mib = server.status_mib("VmRSS:");
    let users = targets.len() * (1 + args.users);
    eprintln!(
        "{} tenants, {users} users in {setup_s:.1} s: {after_setup_mib} MiB",
        targets.len()
    );

    // Readings while the load runs, on a thread of their own.
    let stop = Arc::new(AtomicBool::new(false));
    let pid = server.pid();
    let every = Duration::from_secs(args.sample_seconds.max(1));
    let sampler = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut readings = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let next = t0 + every * u32::try_from(readings.len() + 1).unwrap_or(u32::MAX);
                while Instant::now() < next && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                let t = t0.elapsed().as_secs_f64();
                let rss = saas_bench::measure::status_mib(&pid.to_string(), "VmRSS:");
                eprintln!("{t:.0} s: VmRSS {rss} MiB");
                readings.push((round3(t), rss));
            }
            readings
        })
    };
    let seconds = (args.minutes * 60.0).max(1.0);
    let outcome = load(addr, &targets, args.connections, seconds).await;
    stop.store(true, Ordering::Relaxed);
    let readings = sampler.join().map_err(|_| "the sampler panicked")?;
    let outcome = outcome?;
    check_errors("memory", &outcome);
    let final_mib = server.status_mib("VmRSS:");
    let peak_mib = server.status_mib("VmHWM:");
    let threads = saas_bench::measure::status_value(&server.pid().to_string(), "Threads:");
    server.stop()?;

    let from = seconds - tail_seconds(seconds);
    let tail: Vec<f64> = readings
        .iter()
        .filter(|(t, _)| *t >= from)
        .map(|(_, r)| *r)
        .collect();
    let tail_min = tail.iter().copied().fold(f64::INFINITY, f64::min);
    let tail_max = tail.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Ok(json!({
        "scenario": "memory",
        "backend": args.backend.name(),
        "server": bin.display().to_string(),
        "server_env": args.server_env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "tenants": args.tenants,
        "users": users,
        "tasks_per_tenant_before_load": args.tasks,
        "setup_s": round3(setup_s),
        "load": {
            "profile": "mixed",
            "minutes": args.minutes,
            "connections": args.connections,
            "requests": outcome.requests,
            "requests_per_s": round3(outcome.rps()),
            "errors": outcome.errors,
        },
        "rss_mib": {
            "start": start_mib,
            "after_setup": after_setup_mib,
            "peak": peak_mib,
            "final": final_mib,
            "tail_seconds": round3(tail_seconds(seconds)),
            "tail_min": tail_min,
            "tail_max": tail_max,
            "tail_growth": round3(tail.last().copied().unwrap_or(f64::NAN) - tail.first().copied().unwrap_or(f64::NAN)),
        },
        "threads_at_end": threads,
        "readings": readings,
        "target_mib": 64,
        "load_average_at_end": load_average(),
    }))
}
