//! `saas-bench`: the benchmark harness. Each scenario prints progress to
//! stderr and ONE JSON object, its result, as the last line of stdout.
//!
//! ```text
//! cargo run --release -p examples --bin saas-bench -- provision --backend postgres --tenants 1000
//! cargo run --release -p examples --bin saas-bench -- migrate-noop --backend postgres --tenants 1000
//! cargo run --release -p examples --bin saas-bench -- routing --tenants 12,100,1000
//! ```
//!
//! Benchmarks use a database of their own (`saas_bench` by default, created
//! when missing) so the test database is never flooded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SubsecRound, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use saas_core::projects::{
    NewProjectRecord, NewTaskRecord, Priority, ProjectStatus, Scope, TaskId, TaskQuery, TaskStatus,
};
use saas_core::store::{PageRequest, Store, TenantStore};
use saas_core::tenancy::{Hostname, NewTenant, Slug, Tenant, TenantId, TenantName};
use saas_core::users::{Email, NewUserRecord, Role, UserId, Username};
use saas_store_postgres::{PgConfig, PgStore, Routing};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

#[path = "../bench/mod.rs"]
mod bench;
#[path = "../jobs_bench.rs"]
mod jobs_bench;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

#[derive(Parser)]
#[command(about = "Benchmarks of the saas library; each scenario ends with one JSON line")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Time `Store::create_tenant` for N tenants on an empty database.
    Provision(ProvisionArgs),
    /// Ensure N tenants exist, then time `Store::migrate` when all are current.
    MigrateNoop(FleetArgs),
    /// Cost of routing to tenant schemas against a single-schema baseline.
    Routing(RoutingArgs),
    #[command(flatten)]
    Http(bench::HttpScenario),
    /// Job queue throughput: enqueue N no-op jobs, then run them with the Worker.
    Jobs(jobs_bench::JobsArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    Postgres,
}

#[derive(Args)]
struct Common {
    /// Storage backend.
    #[arg(long, value_enum, default_value = "postgres")]
    backend: Backend,
    /// Benchmark database (created when missing; never the test database).
    #[arg(
        long,
        env = "SAAS_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/saas_bench"
    )]
    database_url: String,
}

#[derive(Args)]
struct ProvisionArgs {
    #[command(flatten)]
    common: Common,
    /// Tenants to create.
    #[arg(long, default_value_t = 1000)]
    tenants: usize,
    /// Keep the existing tenants instead of starting from an empty database.
    #[arg(long)]
    keep: bool,
}

#[derive(Args)]
struct FleetArgs {
    #[command(flatten)]
    common: Common,
    /// Tenants that must exist.
    #[arg(long, default_value_t = 1000)]
    tenants: usize,
    /// Timed runs (the median is reported).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

#[derive(Args)]
struct RoutingArgs {
    #[command(flatten)]
    common: Common,
    /// Fleet sizes the "many tenants" variants spread requests over (all
    /// measured in the same run, interleaved).
    #[arg(long, value_delimiter = ',', default_value = "12,100,1000")]
    tenants: Vec<usize>,
    /// Requests per variant and round (each request is five store calls).
    #[arg(long, default_value_t = 1000)]
    requests: usize,
    /// Concurrent clients (and pool size).
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Rounds; variants are interleaved and the median round is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

#[tokio::main]
async fn main() -> Res<()> {
    let cli = Cli::parse();
    let result = match cli.scenario {
        Scenario::Provision(args) => match args.common.backend {
            Backend::Postgres => provision_postgres(&args).await?,
        },
        Scenario::MigrateNoop(args) => match args.common.backend {
            Backend::Postgres => migrate_noop_postgres(&args).await?,
        },
        Scenario::Routing(args) => match args.common.backend {
            Backend::Postgres => routing_postgres(&args).await?,
        },
        Scenario::Http(scenario) => bench::run(scenario).await?,
        Scenario::Jobs(args) => jobs_bench::run(&args).await?,
    };
    let mut result = result;
    if let Value::Object(map) = &mut result {
        // The machine is shared: say how busy it was, so figures can be judged.
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        map.insert(
            "load_average_1m".into(),
            json!(load.split_whitespace().next().unwrap_or("unknown")),
        );
    }
    println!("{result}");
    Ok(())
}

// --- measurement helpers -----------------------------------------------------

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `q` quantile (0..=1) of `samples`, nearest rank.
fn quantile(samples: &[f64], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn median(samples: &[f64]) -> f64 {
    quantile(samples, 0.5)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

// --- PostgreSQL setup ----------------------------------------------------------

/// Splits a URL into (server URL with the `postgres` maintenance database, database name).
fn split_url(url: &str) -> Res<(String, String)> {
    let (head, tail) = url.rsplit_once('/').ok_or("database URL has no path")?;
    let name = tail.split('?').next().unwrap_or_default().to_owned();
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        return Err(
            "benchmark database name must be lowercase letters, digits and underscores".into(),
        );
    }
    Ok((format!("{head}/postgres"), name))
}

async fn prepare_database(url: &str, fresh: bool) -> Res<()> {
    let (server, name) = split_url(url)?;
    let mut conn = PgConnection::connect(&server).await?;
    if fresh {
        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await?;
    }
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_optional(&mut conn)
        .await?;
    if exists.is_none() {
        let sql = format!("CREATE DATABASE \"{name}\"");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await?;
    }
    Ok(())
}

/// A precomputed password hash: argon2 is the service's cost, measured
/// once here and reported on its own, never inside provisioning times.
async fn password_hash() -> Res<(String, f64)> {
    let start = Instant::now();
    let hash = saas_core::auth::Passwords::new()
        .hash("bench-password-123")
        .await?;
    Ok((hash, round3(ms(start.elapsed()))))
}

fn new_tenant(slug: &str) -> Res<NewTenant> {
    let slug = Slug::parse(slug)?;
    Ok(NewTenant {
        id: TenantId::new(),
        name: TenantName::parse(&format!("Bench {slug}"))?,
        domain: Hostname::parse(&format!(
            "{}.bench.localhost",
            slug.as_str().replace('_', "-")
        ))?,
        slug,
        plan: "enterprise".to_owned(),
        created_at: Utc::now().trunc_subsecs(6),
    })
}

fn admin(hash: &str) -> Res<NewUserRecord> {
    Ok(NewUserRecord {
        username: Username::parse("admin")?,
        email: Email::parse("admin@bench.localhost")?,
        password_hash: hash.to_owned(),
        first_name: "Ada".to_owned(),
        last_name: "Admin".to_owned(),
        role: Role::Admin,
        department: String::new(),
        is_owner: true,
        date_joined: Utc::now().trunc_subsecs(6),
    })
}

/// Every tenant in the catalog, oldest first.
async fn all_tenants(store: &PgStore) -> Res<Vec<Tenant>> {
    let mut out = Vec::new();
    let mut page = 1;
    loop {
        let got = store
            .list_tenants(PageRequest::new(Some(page), Some(PageRequest::MAX_SIZE))?)
            .await?;
        let n = got.items.len();
        out.extend(got.items);
        if n < PageRequest::MAX_SIZE as usize {
            return Ok(out);
        }
        page += 1;
    }
}

/// Creates tenants until `n` exist; returns them.
async fn ensure_tenants(store: &PgStore, n: usize) -> Res<Vec<Tenant>> {
    let mut tenants = all_tenants(store).await?;
    if tenants.len() < n {
        let (hash, _) = password_hash().await?;
        let admin = admin(&hash)?;
        eprintln!("creating {} tenants", n - tenants.len());
        while tenants.len() < n {
            let slug = format!("bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
            let (tenant, _) = store.create_tenant(&new_tenant(&slug)?, &admin).await?;
            tenants.push(tenant);
        }
    }
    Ok(tenants)
}

// --- provision -------------------------------------------------------------------

async fn provision_postgres(args: &ProvisionArgs) -> Res<Value> {
    let url = &args.common.database_url;
    prepare_database(url, !args.keep).await?;
    let store = PgStore::connect(PgConfig::new(url.clone())).await?;
    let (hash, argon2_ms) = password_hash().await?;
    let admin = admin(&hash)?;
    let run = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let mut samples = Vec::with_capacity(args.tenants);
    let start = Instant::now();
    for i in 0..args.tenants {
        let tenant = new_tenant(&format!("p{run}_{i:05}"))?;
        let t0 = Instant::now();
        store.create_tenant(&tenant, &admin).await?;
        samples.push(ms(t0.elapsed()));
        if (i + 1) % 100 == 0 {
            eprintln!(
                "{} tenants, last median {:.2} ms",
                i + 1,
                median(&samples[i + 1 - 100..])
            );
        }
    }
    let total = start.elapsed();
    let head = &samples[..samples.len().min(100)];
    let tail = &samples[samples.len().saturating_sub(100)..];
    Ok(json!({
        "scenario": "provision",
        "backend": "postgres",
        "tenants": args.tenants,
        "median_ms": round3(median(&samples)),
        "p99_ms": round3(quantile(&samples, 0.99)),
        "max_ms": round3(quantile(&samples, 1.0)),
        "first_100_median_ms": round3(median(head)),
        "last_100_median_ms": round3(median(tail)),
        "total_s": round3(total.as_secs_f64()),
        "argon2_hash_ms_not_included": argon2_ms,
    }))
}

// --- migrate-noop ------------------------------------------------------------------

async fn migrate_noop_postgres(args: &FleetArgs) -> Res<Value> {
    let url = &args.common.database_url;
    prepare_database(url, false).await?;
    let store = PgStore::connect(PgConfig::new(url.clone())).await?;
    ensure_tenants(&store, args.tenants).await?;
    let mut samples = Vec::new();
    let mut last = None;
    for _ in 0..args.rounds.max(1) {
        let t0 = Instant::now();
        let report = store.migrate(&|_| {}).await?;
        samples.push(ms(t0.elapsed()));
        last = Some(report);
    }
    let report = last.ok_or("no round ran")?;
    Ok(json!({
        "scenario": "migrate-noop",
        "backend": "postgres",
        "tenants": report.tenants,
        "current": report.current,
        "migrated": report.migrated,
        "failed": report.failed.len(),
        "rounds": samples.len(),
        "elapsed_ms": round3(median(&samples)),
        "min_ms": round3(quantile(&samples, 0.0)),
    }))
}

// --- routing -------------------------------------------------------------------------

/// Gives a tenant the data the routing workload reads (once; kept in the
/// bench database): a second user, two projects with a member, 20 tasks.
async fn seed(t: &dyn TenantStore, hash: &str) -> Res<()> {
    if t.count_users().await? > 1 {
        return Ok(());
    }
    let now = Utc::now().trunc_subsecs(6);
    let mut member = admin(hash)?;
    member.username = Username::parse("member")?;
    member.role = Role::Member;
    member.is_owner = false;
    let member = t.create_user(&member, None).await?;
    for p in 0..2 {
        let project = t
            .create_project(
                &NewProjectRecord {
                    name: format!("Project {p}"),
                    description: "A project".to_owned(),
                    status: ProjectStatus::Active,
                    start_date: None,
                    end_date: None,
                    owner: UserId(1),
                    created_at: now,
                },
                None,
            )
            .await?;
        t.add_member(project.id, member.id).await?;
        for i in 0..10 {
            t.create_task(
                &NewTaskRecord {
                    project_id: project.id,
                    title: format!("Task {i}"),
                    description: "Something to do".to_owned(),
                    status: TaskStatus::ALL[i % 4],
                    priority: Priority::ALL[i % 4],
                    assigned_to: Some(member.id),
                    created_by: UserId(1),
                    due_date: Some(now + chrono::Duration::days(i as i64 - 5)),
                    completed_at: None,
                    created_at: now,
                },
                None,
            )
            .await?;
        }
    }
    Ok(())
}

/// One "request": what a dashboard-ish page load asks of the store, each
/// call its own unit of work.
async fn request(t: &dyn TenantStore) -> Res<()> {
    t.user(UserId(1)).await?.ok_or("seeded user is missing")?;
    t.list_projects(Scope::All, PageRequest::first()).await?;
    t.list_tasks(
        &TaskQuery::new(Scope::InvolvedIn(UserId(2))),
        PageRequest::first(),
    )
    .await?;
    t.task(TaskId(1)).await?.ok_or("seeded task is missing")?;
    t.task_counts(&TaskQuery::new(Scope::All), Utc::now())
        .await?;
    Ok(())
}

/// Where a variant's requests go.
enum Target {
    /// Always one handle.
    One(Arc<dyn TenantStore>),
    /// Request `i` opens tenant `i * step mod n` through the store (handles are cached).
    Many(PgStore, Arc<Vec<Tenant>>),
    /// Four requests in five go to the first `busy` tenants, the fifth to
    /// any of them (uniformly): a few busy customers and a long tail.
    Skewed(PgStore, Arc<Vec<Tenant>>, usize),
}

struct Outcome {
    rps: f64,
    median_ms: f64,
    p99_ms: f64,
}

async fn run_variant(target: &Arc<Target>, requests: usize, concurrency: usize) -> Res<Outcome> {
    let start = Instant::now();
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let target = Arc::clone(target);
        let share = requests / concurrency;
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(share);
            for i in 0..share {
                let t0 = Instant::now();
                let handle = match &*target {
                    Target::One(h) => Arc::clone(h),
                    Target::Many(store, tenants) => {
                        // A stride coprime with typical fleet sizes spreads consecutive requests.
                        let k = (w * share + i).wrapping_mul(7919) % tenants.len();
                        store.open(&tenants[k]).await?
                    }
                    Target::Skewed(store, tenants, busy) => {
                        let j = w * share + i;
                        let k = if j % 5 == 4 {
                            j.wrapping_mul(7919) % tenants.len()
                        } else {
                            j % busy
                        };
                        store.open(&tenants[k]).await?
                    }
                };
                request(handle.as_ref()).await?;
                lat.push(ms(t0.elapsed()));
            }
            Ok::<_, BoxError>(lat)
        }));
    }
    let mut lat = Vec::with_capacity(requests);
    for w in workers {
        lat.extend(w.await??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok(Outcome {
        rps: lat.len() as f64 / elapsed,
        median_ms: median(&lat),
        p99_ms: quantile(&lat, 0.99),
    })
}

/// A routing strategy under test: a store configured for it.
struct Strategy {
    name: &'static str,
    store: PgStore,
    /// Also measured with every request to one tenant.
    one_tenant: bool,
}

async fn routing_postgres(args: &RoutingArgs) -> Res<Value> {
    let url = &args.common.database_url;
    prepare_database(url, false).await?;
    let concurrency = args.concurrency.max(1);
    let pool = u32::try_from(concurrency)?;
    let mut sizes: Vec<usize> = args.tenants.iter().map(|n| (*n).max(1)).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let largest = *sizes.last().ok_or("no fleet size given")?;
    let config = |routing: Routing| {
        PgConfig::new(url.clone())
            .with_routing(routing)
            .with_max_connections(pool)
    };
    // Room for every tenant's statements on every connection: the cost of
    // spreading requests over N schemas with no routing cost at all (no
    // parsing, one round trip per statement), at a memory price no
    // default may pay. A reference, not a candidate.
    let all_fit = 16 * largest;
    let strategy = |name, store| Strategy {
        name,
        store,
        one_tenant: true,
    };
    let strategies = vec![
        strategy(
            "qualified_default",
            PgStore::connect(config(Routing::QualifiedSql)).await?,
        ),
        strategy(
            "qualified_unnamed",
            PgStore::connect(config(Routing::QualifiedUnnamed)).await?,
        ),
        strategy(
            "qualified_prepared",
            PgStore::connect(config(Routing::QualifiedPrepared)).await?,
        ),
        strategy(
            "set_local",
            PgStore::connect(config(Routing::SetLocalSearchPath)).await?,
        ),
        strategy(
            "pooler_mode",
            PgStore::connect(config(Routing::QualifiedSql).with_transaction_pooler(true)).await?,
        ),
        Strategy {
            name: "reference_prepared_all_fit",
            store: PgStore::connect(
                config(Routing::QualifiedPrepared).with_statement_cache_capacity(all_fit),
            )
            .await?,
            one_tenant: false,
        },
    ];
    let seeder = &strategies[0].store;
    let tenants = ensure_tenants(seeder, largest).await?;
    let tenants: Vec<Tenant> = tenants.into_iter().take(largest).collect();
    let (hash, _) = password_hash().await?;
    eprintln!(
        "seeding {} tenants (once per bench database)",
        tenants.len()
    );
    for t in &tenants {
        seed(seeder.open(t).await?.as_ref(), &hash).await?;
    }
    let first = &tenants[0];
    let baseline = seeder.single_schema_baseline(first, pool).await?;
    let mut variants: Vec<(String, Arc<Target>)> = vec![(
        "baseline_single_schema".to_owned(),
        Arc::new(Target::One(baseline)),
    )];
    for s in &strategies {
        if s.one_tenant {
            variants.push((
                format!("{}/one_tenant", s.name),
                Arc::new(Target::One(s.store.open(first).await?)),
            ));
        }
        for &n in &sizes {
            variants.push((
                format!("{}/{n}_tenants", s.name),
                Arc::new(Target::Many(
                    s.store.clone(),
                    Arc::new(tenants[..n].to_vec()),
                )),
            ));
        }
        if largest > 10 {
            variants.push((
                format!("{}/skewed_{largest}_tenants", s.name),
                Arc::new(Target::Skewed(
                    s.store.clone(),
                    Arc::new(tenants.clone()),
                    10,
                )),
            ));
        }
    }
    // Warm up: open every handle, fill statement caches, let the planner settle.
    for (_, target) in &variants {
        let n = match &**target {
            Target::One(_) => 0,
            Target::Many(_, t) | Target::Skewed(_, t, _) => t.len(),
        };
        run_variant(target, (concurrency * 50).max(n), concurrency).await?;
    }
    let mut results: Vec<Vec<Outcome>> = variants.iter().map(|_| Vec::new()).collect();
    for round in 0..args.rounds.max(1) {
        for (i, (name, target)) in variants.iter().enumerate() {
            let o = run_variant(target, args.requests, concurrency).await?;
            eprintln!(
                "round {round} {name}: {:.0} req/s, median {:.3} ms",
                o.rps, o.median_ms
            );
            results[i].push(o);
        }
    }
    // The machine is shared and its load drifts: each variant is compared
    // with the baseline of the same round, and the median of those
    // ratios is reported.
    let base: Vec<(f64, f64)> = results[0].iter().map(|o| (o.rps, o.median_ms)).collect();
    let summary: Vec<(f64, f64, f64, f64, f64)> = results
        .iter()
        .map(|rs| {
            let rps: Vec<f64> = rs.iter().map(|o| o.rps).collect();
            let med: Vec<f64> = rs.iter().map(|o| o.median_ms).collect();
            let p99: Vec<f64> = rs.iter().map(|o| o.p99_ms).collect();
            let rps_ratio: Vec<f64> = rs.iter().zip(&base).map(|(o, b)| b.0 / o.rps).collect();
            let med_ratio: Vec<f64> = rs
                .iter()
                .zip(&base)
                .map(|(o, b)| o.median_ms / b.1)
                .collect();
            (
                median(&rps),
                median(&med),
                median(&p99),
                (median(&rps_ratio) - 1.0) * 100.0,
                (median(&med_ratio) - 1.0) * 100.0,
            )
        })
        .collect();
    let base_rps = summary[0].0;
    let mut out = serde_json::Map::new();
    out.insert("scenario".into(), json!("routing"));
    out.insert("backend".into(), json!("postgres"));
    out.insert("fleet_sizes".into(), json!(sizes));
    out.insert("requests_per_round".into(), json!(args.requests));
    out.insert("store_calls_per_request".into(), json!(5));
    out.insert("concurrency".into(), json!(concurrency));
    out.insert("rounds".into(), json!(args.rounds.max(1)));
    out.insert(
        "default_routing".into(),
        json!(format!("{:?}", Routing::default())),
    );
    let mut variants_out = serde_json::Map::new();
    for ((name, _), (rps, med, p99, rps_over, med_over)) in variants.iter().zip(&summary) {
        variants_out.insert(
            name.clone(),
            json!({
                "req_per_s": round3(*rps),
                "median_ms": round3(*med),
                "p99_ms": round3(*p99),
                "throughput_overhead_pct": round3(*rps_over),
                "median_latency_overhead_pct": round3(*med_over),
            }),
        );
    }
    out.insert("variants".into(), Value::Object(variants_out));
    // The side-by-side table: throughput overhead against the baseline.
    eprintln!("baseline_single_schema: {base_rps:.0} req/s");
    let mut header = format!("{:<28} {:>10}", "strategy", "one tenant");
    for n in &sizes {
        header.push_str(&format!(" {:>10}", format!("N={n}")));
    }
    header.push_str(&format!(" {:>12}", format!("skewed {largest}")));
    eprintln!("{header}");
    for s in &strategies {
        let mut line = format!("{:<28}", s.name);
        let cell = |suffix: String| {
            variants
                .iter()
                .zip(&summary)
                .find(|((name, _), _)| *name == format!("{}/{suffix}", s.name))
                .map_or("-".to_owned(), |(_, (_, _, _, over, _))| {
                    format!("{over:+.0}%")
                })
        };
        line.push_str(&format!(" {:>10}", cell("one_tenant".to_owned())));
        for n in &sizes {
            line.push_str(&format!(" {:>10}", cell(format!("{n}_tenants"))));
        }
        line.push_str(&format!(
            " {:>12}",
            cell(format!("skewed_{largest}_tenants"))
        ));
        eprintln!("{line}");
    }
    Ok(Value::Object(out))
}
