//! `import`: `saas-server import-django`'s work, `Saas::import` over a
//! Django-shaped source database (django-tenants' public tables and one
//! schema per company, written directly with SQL for speed), into a fresh
//! SQLite directory or PostgreSQL database.

use std::sync::Arc;
use std::time::Instant;

use saas_bench::Res;
use saas_bench::database::prepare;
use saas_bench::measure::{load_average, median, round3};
use saas_bench::storage::Backend;
use saas_core::Saas;
use saas_core::import::ImportOutcome;
use saas_core::store::Store;
use saas_import_django::DjangoSource;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Backend imported into.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// Companies in the source.
    #[arg(long, default_value_t = 100)]
    tenants: usize,
    /// Tasks per company (over 10 projects and 10 users).
    #[arg(long, default_value_t = 1000)]
    tasks: usize,
    /// Rounds, each importing into a fresh target (the source is built
    /// once); medians are reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The source database, dropped and rebuilt.
    #[arg(
        long,
        default_value = "postgres://postgres@127.0.0.1:5432/saas_bench_django"
    )]
    source_url: String,
    /// The PostgreSQL database imported into (dropped and recreated).
    #[arg(
        long,
        default_value = "postgres://postgres@127.0.0.1:5432/saas_bench_import"
    )]
    database_url: String,
}

/// A Django `pbkdf2_sha256` hash (of "correct horse battery").
const HASH: &str = "pbkdf2_sha256$1000$seasalt$DrdiWD40lyBuydnjvZiDrdQMx1S1mOA9O0QYex0R6ww=";

const PUBLIC: &str = "
CREATE TABLE public.tenants_company (id serial PRIMARY KEY, schema_name varchar(63) NOT NULL UNIQUE,
    name varchar(200) NOT NULL, subscription_plan varchar(20) NOT NULL, is_active boolean NOT NULL,
    created_on timestamptz NOT NULL);
CREATE TABLE public.tenants_domain (id serial PRIMARY KEY, domain varchar(253) NOT NULL UNIQUE,
    is_primary boolean NOT NULL, tenant_id integer NOT NULL REFERENCES public.tenants_company(id));
INSERT INTO public.tenants_company (schema_name, name, subscription_plan, is_active, created_on)
    VALUES ('public', 'Public', 'free', true, now());";

/// One company's schema with the seed's tables and rows, `{s}` its name,
/// `{d}` its host name's first label (no `_`: host names refuse it).
const COMPANY: &str = "
CREATE SCHEMA {s};
CREATE TABLE {s}.auth_user (id serial PRIMARY KEY, password varchar(128) NOT NULL, last_login timestamptz,
    is_superuser boolean NOT NULL DEFAULT false, username varchar(150) NOT NULL UNIQUE,
    first_name varchar(150) NOT NULL DEFAULT '', last_name varchar(150) NOT NULL DEFAULT '',
    email varchar(254) NOT NULL, is_staff boolean NOT NULL DEFAULT false,
    is_active boolean NOT NULL DEFAULT true, date_joined timestamptz NOT NULL DEFAULT now());
CREATE TABLE {s}.core_userprofile (id bigserial PRIMARY KEY, role varchar(20) NOT NULL,
    department varchar(100) NOT NULL DEFAULT '', phone varchar(30) NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
    user_id integer NOT NULL UNIQUE REFERENCES {s}.auth_user(id));
CREATE TABLE {s}.core_project (id bigserial PRIMARY KEY, name varchar(200) NOT NULL,
    description text NOT NULL DEFAULT '', status varchar(20) NOT NULL,
    start_date date NOT NULL DEFAULT current_date, end_date date,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
    owner_id integer NOT NULL REFERENCES {s}.auth_user(id));
CREATE TABLE {s}.core_project_members (id bigserial PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES {s}.core_project(id),
    user_id integer NOT NULL REFERENCES {s}.auth_user(id), UNIQUE (project_id, user_id));
CREATE TABLE {s}.core_task (id bigserial PRIMARY KEY, title varchar(200) NOT NULL,
    description text NOT NULL DEFAULT '', status varchar(20) NOT NULL, priority varchar(20) NOT NULL,
    due_date date, completed_at timestamptz, created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    assigned_to_id integer REFERENCES {s}.auth_user(id), created_by_id integer REFERENCES {s}.auth_user(id),
    project_id bigint NOT NULL REFERENCES {s}.core_project(id));
INSERT INTO {s}.auth_user (password, username, email)
    SELECT '{hash}', 'user' || g, 'user' || g || '@example.com' FROM generate_series(1, 10) g;
INSERT INTO {s}.core_userprofile (role, user_id)
    SELECT CASE WHEN g = 1 THEN 'admin' WHEN g < 4 THEN 'manager' ELSE 'member' END, g
    FROM generate_series(1, 10) g;
INSERT INTO {s}.core_project (name, status, owner_id)
    SELECT 'Project ' || g, 'active', 1 FROM generate_series(1, 10) g;
INSERT INTO {s}.core_project_members (project_id, user_id)
    SELECT p, u FROM generate_series(1, 10) p, generate_series(2, 4) u;
INSERT INTO {s}.core_task (title, status, priority, due_date, assigned_to_id, created_by_id, project_id)
    SELECT 'Task ' || g, (ARRAY['todo', 'in_progress', 'review', 'done'])[1 + g % 4],
        (ARRAY['low', 'medium', 'high', 'urgent'])[1 + g % 4], current_date + (g % 30 - 15),
        1 + g % 10, 1, 1 + g % 10
    FROM generate_series(1, {tasks}) g;
WITH c AS (INSERT INTO public.tenants_company (schema_name, name, subscription_plan, is_active, created_on)
    VALUES ('{s}', 'Company {s}', 'enterprise', true, now()) RETURNING id)
INSERT INTO public.tenants_domain (domain, is_primary, tenant_id) SELECT '{d}.bench.test', true, id FROM c;";

async fn build_source(args: &Args) -> Res<()> {
    prepare(&args.source_url, true).await?;
    let mut conn = PgConnection::connect(&args.source_url).await?;
    sqlx::raw_sql(PUBLIC).execute(&mut conn).await?;
    for i in 0..args.tenants {
        let sql = COMPANY
            .replace("{s}", &format!("bench_{i:05}"))
            .replace("{d}", &format!("bench-{i:05}"))
            .replace("{hash}", HASH)
            .replace("{tasks}", &args.tasks.to_string());
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await?;
    }
    Ok(())
}

/// One round: a fresh target, the import timed, then a second run timed.
struct Round {
    first_s: f64,
    second_s: f64,
}

async fn round(args: &Args, source: &DjangoSource) -> Res<Round> {
    let tmp = tempfile::Builder::new()
        .prefix("saas-bench-import-")
        .tempdir()?;
    let store: Arc<dyn Store> = match args.backend {
        Backend::Sqlite => Arc::new(saas_store_sqlite::SqliteStore::open(tmp.path())?),
        Backend::Postgres => {
            prepare(&args.database_url, true).await?;
            Arc::new(saas_store_postgres::PgStore::connect_url(&args.database_url).await?)
        }
    };
    let saas = Saas::builder(store)
        .secret(
            uuid::Uuid::new_v4()
                .simple()
                .to_string()
                .repeat(2)
                .as_bytes(),
        )
        .build()?;
    let progress = |p: saas_core::import::ImportProgress| {
        if p.done.is_multiple_of(10) {
            eprintln!("{}/{} companies", p.done, p.total);
        }
    };
    let t0 = Instant::now();
    let report = saas.import(source, &progress).await?;
    let first_s = t0.elapsed().as_secs_f64();
    let imported = report.count(ImportOutcome::Imported);
    if imported != args.tenants || !report.problems.iter().all(|p| p.table == "tenants_company") {
        return Err(format!(
            "import incomplete: {imported} imported, {:?}",
            report.problems
        )
        .into());
    }
    let t1 = Instant::now();
    let again = saas.import(source, &progress).await?;
    let second_s = t1.elapsed().as_secs_f64();
    let verified = again.count(ImportOutcome::AlreadyImported);
    if verified != args.tenants {
        return Err(format!(
            "second run verified {verified} of {} companies",
            args.tenants
        )
        .into());
    }
    Ok(Round { first_s, second_s })
}

pub(super) async fn run(args: &Args) -> Res<Value> {
    let start = Instant::now();
    build_source(args).await?;
    eprintln!(
        "source: {} companies x {} tasks in {:.1} s",
        args.tenants,
        args.tasks,
        start.elapsed().as_secs_f64()
    );
    let source = DjangoSource::connect(&args.source_url).await?;
    let mut rounds = Vec::new();
    let mut loads = Vec::new();
    for i in 0..args.rounds.max(1) {
        let r = round(args, &source).await?;
        loads.push(load_average());
        eprintln!(
            "round {}: import {:.2} s, second run {:.2} s",
            i + 1,
            r.first_s,
            r.second_s
        );
        rounds.push(r);
    }
    let firsts: Vec<f64> = rounds.iter().map(|r| r.first_s).collect();
    let seconds: Vec<f64> = rounds.iter().map(|r| r.second_s).collect();
    let first = median(&firsts);
    let rows = args.tenants * (10 + 10 + 30 + args.tasks);
    Ok(json!({
        "scenario": "import",
        "backend": args.backend.name(),
        "tenants": args.tenants,
        "tasks_per_tenant": args.tasks,
        "rounds": rounds.len(),
        "import_s": round3(first),
        "import_s_rounds": firsts.iter().copied().map(round3).collect::<Vec<_>>(),
        "per_tenant_ms": round3(first * 1000.0 / args.tenants as f64),
        "rows_per_s": round3(rows as f64 / first),
        "second_run_s": round3(median(&seconds)),
        "second_run_s_rounds": seconds.iter().copied().map(round3).collect::<Vec<_>>(),
        "load_1min": loads.iter().copied().map(round3).collect::<Vec<_>>(),
    }))
}
