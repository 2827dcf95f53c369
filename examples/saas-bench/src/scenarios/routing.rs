//! `routing`: the cost of reaching tenant schemas, for each way a
//! PostgreSQL handle can route its statements, against a single-schema
//! baseline; over one tenant, fleets of several sizes, and a skewed fleet.

use std::sync::Arc;
use std::time::Instant;

use chrono::{SubsecRound, Utc};
use saas_bench::fixture::user_record;
use saas_bench::fleet::{FleetBackend, FleetStorage, ensure_tenants, password_hash};
use saas_bench::measure::{median, ms, quantile, round3};
use saas_bench::{BoxError, Res};
use saas_core::projects::{
    NewProjectRecord, NewTaskRecord, Priority, ProjectStatus, Scope, TaskId, TaskQuery, TaskStatus,
};
use saas_core::store::{PageRequest, Store, TenantStore};
use saas_core::tenancy::Tenant;
use saas_core::users::{Role, UserId};
use saas_store_postgres::{PgConfig, PgStore, Routing};
use serde_json::{Value, json};

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    storage: FleetStorage,
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

/// Gives a tenant the data the routing workload reads (once; kept in the
/// bench database): a second user, two projects with a member, 20 tasks.
async fn seed(t: &dyn TenantStore, hash: &str) -> Res<()> {
    if t.count_users().await? > 1 {
        return Ok(());
    }
    let now = Utc::now().trunc_subsecs(6);
    let member = user_record(hash, "member", Role::Member, false)?;
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

pub(super) async fn run(args: &Args) -> Res<Value> {
    let FleetBackend::Postgres = args.storage.backend;
    let url = &args.storage.database.database_url;
    saas_bench::database::prepare(url, false).await?;
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
