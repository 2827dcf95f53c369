//! Storage, tenants and their data for the HTTP benchmarks.
//!
//! Tenants are provisioned through `Store::create_tenant` with one
//! pre-hashed password (argon2 is measured on its own, by `login`), users
//! and projects through the tenant store, and tasks in bulk with SQL that
//! writes exactly what `create_task` writes (ranks for status and priority;
//! microseconds on SQLite): 100,000 tasks one transaction each would take
//! longer than the benchmark.
//!
//! PostgreSQL fixtures live in their own database and are reused by later
//! runs (slugs name their shape); SQLite fixtures live in a fresh temporary
//! directory unless `--sqlite-dir` names one to reuse.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use clap::{Args, ValueEnum};
use saas_core::projects::{NewProjectRecord, ProjectId, ProjectStatus, TaskQuery};
use saas_core::store::{PageRequest, Store};
use saas_core::tenancy::{Hostname, NewTenant, Slug, Tenant, TenantId, TenantName};
use saas_core::users::{Email, NewUserRecord, Role, UserId, Username};
use saas_store_postgres::{PgConfig, PgStore, Routing};
use saas_store_sqlite::SqliteStore;
use sqlx::{Connection, PgConnection};

use super::{BoxError, Res};

/// The password of every benchmark user.
pub(crate) const PASSWORD: &str = "bench-password-123";

/// Storage backend of a benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Backend {
    /// One file per tenant.
    Sqlite,
    /// One schema per tenant.
    Postgres,
}

impl Backend {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// `saas_store_postgres::Routing`, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RoutingArg {
    /// `Routing::QualifiedSql` (the default): unnamed statements.
    Qualified,
    /// `Routing::QualifiedPrepared`: named statements in sqlx's cache.
    QualifiedPrepared,
    /// `Routing::SetLocalSearchPath`.
    SetLocal,
}

impl RoutingArg {
    fn routing(self) -> Routing {
        match self {
            RoutingArg::Qualified => Routing::QualifiedSql,
            RoutingArg::QualifiedPrepared => Routing::QualifiedPrepared,
            RoutingArg::SetLocal => Routing::SetLocalSearchPath,
        }
    }
}

/// Where the data lives.
#[derive(Debug, Clone, Args)]
pub(crate) struct StorageArgs {
    /// Storage backend.
    #[arg(long, value_enum, default_value = "sqlite")]
    pub(crate) backend: Backend,
    /// PostgreSQL database of the HTTP benchmarks (created when missing;
    /// never the test database, and not `saas_bench`, which `provision`
    /// drops and recreates).
    #[arg(
        long,
        env = "SAAS_BENCH_HTTP_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/saas_bench_http"
    )]
    pub(crate) database_url: String,
    /// SQLite root to create or reuse (default: a fresh temporary directory).
    #[arg(long)]
    pub(crate) sqlite_dir: Option<PathBuf>,
    /// Connections of the PostgreSQL pool (the store's and the baseline's).
    #[arg(long, default_value_t = 10)]
    pub(crate) pool: u32,
    /// How PostgreSQL handles reach tenant schemas.
    #[arg(long, value_enum, default_value = "qualified")]
    pub(crate) routing: RoutingArg,
    /// Open tenant handles kept by the SQLite store.
    #[arg(long, default_value_t = 256)]
    pub(crate) sqlite_handle_cache: usize,
    /// How long the server reuses an authenticated user's record, in
    /// milliseconds (`SaasBuilder::user_cache_ttl`; 0 reads it on every
    /// request). Default: the library's default.
    #[arg(long)]
    pub(crate) user_cache_ms: Option<u64>,
}

/// The opened storage.
pub(crate) struct Env {
    pub(crate) backend: Backend,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) sqlite: Option<SqliteStore>,
    pub(crate) pg: Option<PgStore>,
    /// The SQLite root directory.
    pub(crate) root: Option<PathBuf>,
    pub(crate) database_url: String,
    /// The one password hash every fixture user gets.
    pub(crate) hash: String,
    pub(crate) hash_ms: f64,
    /// `SaasBuilder::user_cache_ttl` of the server.
    pub(crate) user_cache_ttl: std::time::Duration,
    _tmp: Option<tempfile::TempDir>,
}

/// What each tenant holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    /// Users besides the admin: one manager, the rest members.
    pub(crate) users: usize,
    /// Tasks in the tenant's first project.
    pub(crate) tasks: usize,
}

/// A tenant ready for requests.
#[derive(Debug, Clone)]
pub(crate) struct Seeded {
    pub(crate) tenant: Tenant,
    pub(crate) host: String,
    /// The project holding the tasks.
    pub(crate) project: ProjectId,
    pub(crate) admin: UserId,
    /// A member of the project (assigned some of its tasks).
    pub(crate) member: UserId,
    /// Smallest and largest task id.
    pub(crate) task_ids: (i64, i64),
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

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

async fn ensure_database(url: &str) -> Res<()> {
    let (server, name) = split_url(url)?;
    let mut conn = PgConnection::connect(&server).await?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_optional(&mut conn)
        .await?;
    if exists.is_none() {
        // The name was checked to be [a-z0-9_]+ above.
        let sql = format!("CREATE DATABASE \"{name}\"");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await?;
    }
    Ok(())
}

impl Env {
    pub(crate) async fn open(args: &StorageArgs) -> Res<Env> {
        let start = Instant::now();
        let hash = saas_core::auth::Passwords::new().hash(PASSWORD).await?;
        let hash_ms = ms(start.elapsed());
        let user_cache_ttl = args.user_cache_ms.map_or(
            saas_core::service::DEFAULT_USER_CACHE_TTL,
            std::time::Duration::from_millis,
        );
        match args.backend {
            Backend::Sqlite => {
                let (root, tmp) = match &args.sqlite_dir {
                    Some(dir) => (dir.clone(), None),
                    None => {
                        let tmp = tempfile::Builder::new().prefix("saas-bench-").tempdir()?;
                        (tmp.path().to_owned(), Some(tmp))
                    }
                };
                let options = saas_store_sqlite::SqliteOptions {
                    handle_cache_capacity: args.sqlite_handle_cache,
                    ..saas_store_sqlite::SqliteOptions::default()
                };
                let opened = root.clone();
                let store =
                    tokio::task::spawn_blocking(move || SqliteStore::with_options(opened, options))
                        .await??;
                Ok(Env {
                    backend: Backend::Sqlite,
                    store: Arc::new(store.clone()),
                    sqlite: Some(store),
                    pg: None,
                    root: Some(root),
                    database_url: String::new(),
                    hash,
                    hash_ms,
                    user_cache_ttl,
                    _tmp: tmp,
                })
            }
            Backend::Postgres => {
                ensure_database(&args.database_url).await?;
                let store = PgStore::connect(
                    PgConfig::new(args.database_url.clone())
                        .with_max_connections(args.pool)
                        .with_routing(args.routing.routing()),
                )
                .await?;
                Ok(Env {
                    backend: Backend::Postgres,
                    store: Arc::new(store.clone()),
                    sqlite: None,
                    pg: Some(store),
                    root: None,
                    database_url: args.database_url.clone(),
                    hash,
                    hash_ms,
                    user_cache_ttl,
                    _tmp: None,
                })
            }
        }
    }

    fn user_record(&self, username: &str, role: Role, owner: bool) -> Res<NewUserRecord> {
        Ok(NewUserRecord {
            username: Username::parse(username)?,
            email: Email::parse(&format!("{username}@bench.localhost"))?,
            password_hash: self.hash.clone(),
            first_name: "Bench".to_owned(),
            last_name: username.to_owned(),
            role,
            department: "Engineering".to_owned(),
            is_owner: owner,
            date_joined: now(),
        })
    }

    /// The tenant with `slug`, holding `shape`: reused when an earlier run
    /// left it complete, else (re)created and filled.
    pub(crate) async fn tenant(&self, slug: &str, shape: Shape) -> Res<Seeded> {
        let slug = Slug::parse(slug)?;
        let host = format!("{}.bench.localhost", slug.as_str().replace('_', "-"));
        if let Some(tenant) = self.store.tenant_by_slug(&slug).await? {
            match self.existing(&tenant, &host, shape).await? {
                Some(seeded) => return Ok(seeded),
                None => self.store.delete_tenant(tenant.id).await?,
            }
        }
        let new = NewTenant {
            id: TenantId::new(),
            name: TenantName::parse(&format!("Bench {slug}"))?,
            domain: Hostname::parse(&host)?,
            slug,
            plan: "enterprise".to_owned(),
            created_at: now(),
        };
        let (tenant, admin) = self
            .store
            .create_tenant(&new, &self.user_record("admin", Role::Admin, true)?)
            .await?;
        let t = self.store.open(&tenant).await?;
        let mut users = Vec::new();
        for i in 0..shape.users {
            let (name, role) = if i == 0 {
                ("manager".to_owned(), Role::Manager)
            } else {
                (format!("member{i}"), Role::Member)
            };
            users.push(
                t.create_user(&self.user_record(&name, role, false)?, None)
                    .await?
                    .id,
            );
        }
        let project = t
            .create_project(
                &NewProjectRecord {
                    name: "Bench project".to_owned(),
                    description: "Where the benchmark's tasks live".to_owned(),
                    status: ProjectStatus::Active,
                    start_date: None,
                    end_date: None,
                    owner: admin.id,
                    created_at: now(),
                },
                None,
            )
            .await?;
        for u in &users {
            t.add_member(project.id, *u).await?;
        }
        let mut assignees = vec![admin.id.0];
        assignees.extend(users.iter().map(|u| u.0));
        self.bulk_tasks(&tenant, project.id, admin.id, &assignees, shape.tasks)
            .await?;
        self.existing(&tenant, &host, shape)
            .await?
            .ok_or_else(|| BoxError::from("a freshly seeded tenant does not look seeded"))
    }

    /// The seeded view of a tenant an earlier run filled, if it has `shape`.
    async fn existing(&self, tenant: &Tenant, host: &str, shape: Shape) -> Res<Option<Seeded>> {
        let t = self.store.open(tenant).await?;
        if t.count_users().await? != 1 + shape.users as u64 {
            return Ok(None);
        }
        let projects = t
            .list_projects(saas_core::projects::Scope::All, PageRequest::first())
            .await?;
        let Some(project) = projects.items.last() else {
            return Ok(None);
        };
        let mut q = TaskQuery::new(saas_core::projects::Scope::All);
        q.project = Some(project.id);
        q.ordering = saas_core::projects::TaskOrdering {
            field: saas_core::projects::TaskOrderField::Id,
            descending: false,
        };
        let first = t
            .list_tasks(&q, PageRequest::new(Some(1), Some(1))?)
            .await?;
        if first.count < shape.tasks as u64 {
            return Ok(None);
        }
        q.ordering.descending = true;
        let last = t
            .list_tasks(&q, PageRequest::new(Some(1), Some(1))?)
            .await?;
        let lo = first.items.first().map_or(0, |x| x.id.0);
        let hi = last.items.first().map_or(0, |x| x.id.0);
        let member = project
            .members
            .iter()
            .find(|m| m.role == Role::Member)
            .map_or(project.owner.id, |m| m.id);
        Ok(Some(Seeded {
            tenant: tenant.clone(),
            host: host.to_owned(),
            project: project.id,
            admin: project.owner.id,
            member,
            task_ids: (lo, hi),
        }))
    }

    /// Inserts `n` tasks into `project` the way `create_task` stores them:
    /// statuses and priorities cycle, every fifth task is unassigned (the
    /// rest go round the users, admin included), every
    /// seventh has no due date, a third of the due dates are past, done
    /// tasks have a completion time, creation times increase with the id.
    async fn bulk_tasks(
        &self,
        tenant: &Tenant,
        project: ProjectId,
        creator: UserId,
        assignees: &[i64],
        n: usize,
    ) -> Res<()> {
        let base = now();
        let n = i64::try_from(n)?;
        match self.backend {
            Backend::Postgres => {
                let pg = self.pg.as_ref().ok_or("no PostgreSQL store")?;
                let schema = saas_store_postgres::tenant_schema_name(tenant);
                // The schema name comes from a validated slug and an id; quoted anyway.
                let sql = format!(
                    "INSERT INTO \"{schema}\".tasks (project_id, title, description, status, priority, \
                     assigned_to, created_by, due_date, completed_at, created_at, updated_at) \
                     SELECT $1, 'Task ' || i, 'Something to do for task ' || i || ', described at ordinary length.', \
                     (i % 4)::smallint, ((i / 4) % 4)::smallint, \
                     CASE WHEN i % 5 = 0 THEN NULL ELSE ($2::bigint[])[1 + (i / 5) % cardinality($2::bigint[])] END, \
                     $3, \
                     CASE WHEN i % 7 = 0 THEN NULL ELSE $4 + ((i % 30) - 10) * interval '1 day' END, \
                     CASE WHEN i % 4 = 3 THEN $4 - ($5 - i) * interval '1 second' END, \
                     $4 - ($5 - i) * interval '1 second', $4 - ($5 - i) * interval '1 second' \
                     FROM generate_series(1, $5::bigint) AS i"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(project.0)
                    .bind(assignees)
                    .bind(creator.0)
                    .bind(base)
                    .bind(n)
                    .execute(pg.catalog_pool())
                    .await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ANALYZE \"{schema}\".tasks")))
                    .execute(pg.catalog_pool())
                    .await?;
            }
            Backend::Sqlite => {
                let path = self.tenant_file(tenant)?;
                let assignees = assignees.to_vec();
                tokio::task::spawn_blocking(move || -> Res<()> {
                    let mut conn = rusqlite::Connection::open(path)?;
                    conn.busy_timeout(Duration::from_secs(30))?;
                    let tx =
                        conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                    {
                        let mut insert = tx.prepare(
                            "INSERT INTO tasks (project_id, title, description, status, priority, \
                             assigned_to, created_by, due_date, completed_at, created_at, updated_at) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
                        )?;
                        let day = 86_400_000_000i64;
                        let base = base.timestamp_micros();
                        for i in 1..=n {
                            let created = base - (n - i) * 1_000_000;
                            let assignee = if i % 5 == 0 {
                                None
                            } else {
                                let k = usize::try_from(i / 5)? % assignees.len();
                                Some(assignees[k])
                            };
                            insert.execute(rusqlite::params![
                                project.0,
                                format!("Task {i}"),
                                format!(
                                    "Something to do for task {i}, described at ordinary length."
                                ),
                                i % 4,
                                (i / 4) % 4,
                                assignee,
                                creator.0,
                                (i % 7 != 0).then_some(base + ((i % 30) - 10) * day),
                                (i % 4 == 3).then_some(created),
                                created,
                            ])?;
                        }
                    }
                    tx.commit()?;
                    conn.execute_batch("ANALYZE")?;
                    Ok(())
                })
                .await??;
            }
        }
        Ok(())
    }

    /// The SQLite file of `tenant` (`<root>/tenants/<slug>.sqlite`).
    pub(crate) fn tenant_file(&self, tenant: &Tenant) -> Res<PathBuf> {
        let root = self.root.as_ref().ok_or("no SQLite root")?;
        Ok(root
            .join("tenants")
            .join(format!("{}.sqlite", tenant.slug.as_str())))
    }

    /// Provisions (or reuses) `n` tenants named `<prefix>_<i>` with `shape`,
    /// `parallel` at a time; returns them in order.
    pub(crate) async fn tenants(
        self: &Arc<Self>,
        prefix: &str,
        n: usize,
        shape: Shape,
        parallel: usize,
    ) -> Res<Vec<Seeded>> {
        let start = Instant::now();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut workers = Vec::new();
        for _ in 0..parallel.max(1) {
            let env = Arc::clone(self);
            let next = Arc::clone(&next);
            let prefix = prefix.to_owned();
            workers.push(tokio::spawn(async move {
                let mut done = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        return Ok::<_, BoxError>(done);
                    }
                    let seeded = env.tenant(&format!("{prefix}_{i:05}"), shape).await?;
                    if (i + 1).is_multiple_of(1000) {
                        eprintln!(
                            "{} tenants ready after {:.1} s",
                            i + 1,
                            start.elapsed().as_secs_f64()
                        );
                    }
                    done.push((i, seeded));
                }
            }));
        }
        let mut all = Vec::with_capacity(n);
        for w in workers {
            all.extend(w.await??);
        }
        all.sort_by_key(|(i, _)| *i);
        Ok(all.into_iter().map(|(_, s)| s).collect())
    }
}
