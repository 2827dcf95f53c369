//! `migrate-live`: a fleet migration to the newest tenant schema version
//! while the API serves mixed traffic over every tenant.
//!
//! Tenants are provisioned (or reused) at the previous tenant schema
//! version by a store that withholds the last migration (the stores'
//! hidden `withhold_tenant_migrations`, the previous build). Each round
//! then serves the mixed profile over all of them, measures a control
//! window without migration, and runs `Store::migrate` of a store of this
//! build while the same load goes on, measuring the requests that ran
//! during it. By default the previous build serves (the operator procedure:
//! migrate, then replace the processes); `--serve-with new` serves with the
//! migrating store itself. Between rounds the last migration is undone
//! ([`undo_last_migration`]), so every round migrates every tenant.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use saas_bench::Res;
use saas_bench::client::{MakeRequest, Outcome, drive_until};
use saas_bench::fixture::{Seeded, Shape};
use saas_bench::measure::{load_average, median, round3};
use saas_bench::report::{check_errors, head, summary};
use saas_bench::server::{self, Profile, Who};
use saas_bench::storage::{Env, StorageArgs};
use serde_json::{Value, json};

/// Which build serves the traffic during the migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ServeWith {
    /// A store of the previous build (a separate process in production).
    Previous,
    /// The migrating store itself (this build).
    New,
}

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Where the data lives.
    #[command(flatten)]
    storage: StorageArgs,
    /// Tenants.
    #[arg(long, default_value_t = 10_000)]
    tenants: usize,
    /// Tasks per tenant.
    #[arg(long, default_value_t = 20)]
    tasks: usize,
    /// Tenants provisioned at once.
    #[arg(long, default_value_t = 4)]
    parallel: usize,
    /// Tenants `Store::migrate` migrates at once.
    #[arg(long, default_value_t = 4)]
    migrate_concurrency: usize,
    /// Concurrent keep-alive connections of the load.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Seconds of the control window (same load, no migration) per round.
    #[arg(long, default_value_t = 5)]
    control_seconds: u64,
    /// Rounds (each undoes the migration first, except a first round on
    /// freshly provisioned tenants).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Which build serves the traffic.
    #[arg(long, value_enum, default_value = "previous")]
    serve_with: ServeWith,
}

pub(super) async fn run(args: &Args) -> Res<Value> {
    let mut previous = args.storage.clone();
    previous.withhold_tenant_migrations = 1;
    previous.migrate_concurrency = Some(args.migrate_concurrency);
    let seeding = Arc::new(Env::open(&previous).await?);
    // Every later store opens the same SQLite root (the first store's
    // temporary directory lives as long as `seeding`).
    previous.sqlite_dir = seeding.root.clone();
    let mut current = previous.clone();
    current.withhold_tenant_migrations = 0;
    let mut out = head("migrate-live", &seeding);
    let shape = Shape {
        users: 2,
        tasks: args.tasks,
    };
    let n = args.tenants.max(1);
    let start = Instant::now();
    eprintln!("provisioning (or reusing) {n} tenants at the previous schema version");
    let seeded = seeding
        .tenants(&format!("ml{}", args.tasks), n, shape, args.parallel)
        .await?;
    let provision_s = start.elapsed().as_secs_f64();
    eprintln!("{n} tenants ready in {provision_s:.1} s");

    let mut control = Vec::new();
    let mut during = Vec::new();
    let mut elapsed = Vec::new();
    let mut undo = Vec::new();
    let mut loads = Vec::new();
    for round in 0..args.rounds.max(1) {
        let t = Instant::now();
        let undone = undo_last_migration(&seeding, &seeded).await?;
        undo.push(round3(t.elapsed().as_secs_f64()));
        eprintln!(
            "round {round}: {undone} tenants put back at the previous version in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let migrating = Arc::new(Env::open(&current).await?);
        let serving = match args.serve_with {
            ServeWith::Previous => Arc::new(Env::open(&previous).await?),
            ServeWith::New => Arc::clone(&migrating),
        };
        let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
        let saas = server::saas(&serving)?;
        let addr = server::start_until(saas.clone(), async {
            let _ = stopped.await;
        })
        .await?;
        let (tokens, _) = server::tokens(&saas, &seeded, Who::Admin).await?;
        let make = spread(&seeded, &tokens, round)?;

        let quiet = Arc::new(AtomicBool::new(false));
        let o = drive_until(
            addr,
            args.connections,
            Duration::from_secs(1),
            Duration::from_secs(args.control_seconds),
            Arc::clone(&make),
            quiet,
        )
        .await?;
        check_errors("control", &o);

        let stop = Arc::new(AtomicBool::new(false));
        let load = tokio::spawn(drive_until(
            addr,
            args.connections,
            Duration::ZERO,
            Duration::from_secs(3600),
            make,
            Arc::clone(&stop),
        ));
        let t = Instant::now();
        let report = migrating.store.migrate(&|_| {}).await;
        let took = t.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        let m = load.await??;
        let report = report?;
        check_errors("during migration", &m);
        eprintln!(
            "round {round}: migrated {} (current {}, failed {}) in {took:.1} s; \
             control p50 {:.3} ms p99 {:.3} ms; during p50 {:.3} ms p99 {:.3} ms, {} errors of {}",
            report.migrated,
            report.current,
            report.failed.len(),
            o.p(0.5),
            o.p(0.99),
            m.p(0.5),
            m.p(0.99),
            m.errors,
            m.requests
        );
        if let Some((slug, reason)) = report.failed.first() {
            return Err(format!("tenant {slug} failed to migrate: {reason}").into());
        }
        if report.migrated != n as u64 {
            return Err(format!("migrated {} of {n} tenants", report.migrated).into());
        }
        let _ = stop_server.send(());
        control.push(o);
        during.push(m);
        elapsed.push(took);
        loads.push(load_average());
    }
    let p = |runs: &[Outcome], q: f64| median(&runs.iter().map(|o| o.p(q)).collect::<Vec<_>>());
    out.insert("tenants".into(), json!(n));
    out.insert("tasks_per_tenant".into(), json!(args.tasks));
    out.insert("profile".into(), json!(Profile::Mixed.name()));
    out.insert("connections".into(), json!(args.connections));
    out.insert(
        "migrate_concurrency".into(),
        json!(args.migrate_concurrency),
    );
    out.insert(
        "serve_with".into(),
        json!(match args.serve_with {
            ServeWith::Previous => "previous",
            ServeWith::New => "new",
        }),
    );
    out.insert("rounds".into(), json!(during.len()));
    out.insert("provision_or_reuse_s".into(), json!(round3(provision_s)));
    out.insert("undo_s".into(), json!(undo));
    out.insert(
        "migration_elapsed_s".into(),
        json!(round3(median(&elapsed))),
    );
    out.insert(
        "rounds_migration_elapsed_s".into(),
        json!(elapsed.iter().map(|x| round3(*x)).collect::<Vec<_>>()),
    );
    out.insert("control".into(), summary(&control));
    out.insert("during_migration".into(), summary(&during));
    out.insert(
        "failed_requests_during_migration".into(),
        json!(during.iter().map(|o| o.errors).sum::<usize>()),
    );
    out.insert(
        "p99_ratio_during_to_control".into(),
        json!(round3(p(&during, 0.99) / p(&control, 0.99))),
    );
    out.insert("target_elapsed_s".into(), json!(60));
    out.insert("target_p99_ms".into(), json!(100));
    out.insert("round_load_averages".into(), json!(loads));
    Ok(Value::Object(out))
}

/// The mixed profile over every tenant: request `i` goes to tenant
/// `(i + offset) * 7919 mod n`, so consecutive requests hit tenants far
/// apart (being migrated or not) and each round starts elsewhere.
fn spread(seeded: &[Seeded], tokens: &[String], round: usize) -> Res<Arc<MakeRequest>> {
    let n = seeded.len();
    let all = server::requests(seeded, tokens, Profile::Mixed)?;
    let offset = round * 1_000_003;
    Ok(Arc::new(move |i: usize| {
        // Keep the profile's mix (it picks by `i`), move the tenant.
        let tenant = (i + offset).wrapping_mul(7919) % n;
        all(i - i % n + tenant)
    }))
}

/// Puts every tenant of `seeded` back at the previous tenant schema
/// version by undoing the last migration (`started_at`: tenant version 6 on
/// PostgreSQL, 4 on SQLite). Bench-only: the stores have no down
/// migrations. Returns how many tenants it changed.
async fn undo_last_migration(env: &Env, seeded: &[Seeded]) -> Res<usize> {
    if env.pg.is_some() {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(&env.database_url)
            .await?;
        let behind: std::collections::HashSet<String> = sqlx::query_scalar(
            "SELECT schema_name FROM saas_shared.tenant_schemas WHERE version = 6",
        )
        .fetch_all(&pool)
        .await?
        .into_iter()
        .collect();
        let schemas: Vec<String> = seeded
            .iter()
            .map(|s| saas_store_postgres::tenant_schema_name(&s.tenant))
            .filter(|s| behind.contains(s))
            .collect();
        let undone = schemas.len();
        // Four at a time: the pool has four connections.
        let mut batches = tokio::task::JoinSet::new();
        for chunk in schemas.chunks(50) {
            let sql: String = chunk
                .iter()
                .map(|schema| {
                    // Schema names are made of validated slugs and hex digits.
                    format!(
                        "DROP TRIGGER IF EXISTS task_started ON \"{schema}\".tasks; \
                         DROP INDEX IF EXISTS \"{schema}\".tasks_started_at; \
                         ALTER TABLE \"{schema}\".tasks DROP COLUMN IF EXISTS started_at; \
                         UPDATE saas_shared.tenant_schemas SET version = 5 \
                         WHERE schema_name = '{schema}' AND version = 6;"
                    )
                })
                .collect();
            let pool = pool.clone();
            batches
                .spawn(async move { sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await });
        }
        while let Some(done) = batches.join_next().await {
            done??;
        }
        pool.close().await;
        return Ok(undone);
    }
    let files = seeded
        .iter()
        .map(|s| env.tenant_file(&s.tenant))
        .collect::<Res<Vec<_>>>()?;
    let undone = tokio::task::spawn_blocking(move || -> Res<usize> {
        let mut undone = 0;
        for file in files {
            let conn = rusqlite::Connection::open(&file)?;
            let raw: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if raw & 0xffff != 4 {
                continue;
            }
            conn.execute_batch(
                "BEGIN IMMEDIATE;
                 DROP TRIGGER IF EXISTS tasks_started_insert;
                 DROP TRIGGER IF EXISTS tasks_started_update;
                 DROP INDEX IF EXISTS tasks_by_started;
                 ALTER TABLE tasks DROP COLUMN started_at;
                 PRAGMA user_version = 3;
                 COMMIT;",
            )?;
            undone += 1;
        }
        Ok(undone)
    })
    .await??;
    Ok(undone)
}
