//! Tenants and their data.
//!
//! Tenants are provisioned through `Store::create_tenant` with one
//! pre-hashed password (argon2 is measured on its own, by `login`), users
//! and projects through the tenant store, and tasks in bulk with SQL that
//! writes exactly what `create_task` writes (ranks for status and priority;
//! microseconds on SQLite): 100,000 tasks one transaction each would take
//! longer than the benchmark.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use clap::Args;
use saas_core::projects::{NewProjectRecord, ProjectId, ProjectStatus, TaskQuery};
use saas_core::store::PageRequest;
use saas_core::tenancy::{Hostname, NewTenant, Slug, Tenant, TenantId, TenantName};
use saas_core::users::{Email, NewUserRecord, Role, UserId, Username};

use crate::error::{BoxError, Res};
use crate::storage::{Backend, Env};

/// What each tenant holds.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Users besides the admin: one manager, the rest members.
    pub users: usize,
    /// Tasks in the tenant's first project.
    pub tasks: usize,
}

/// A tenant ready for requests.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// The tenant.
    pub tenant: Tenant,
    /// Its primary domain (requests' Host header).
    pub host: String,
    /// The project holding the tasks.
    pub project: ProjectId,
    /// The owner, admin of the tenant and of the project.
    pub admin: UserId,
    /// A member of the project (assigned some of its tasks).
    pub member: UserId,
    /// Smallest and largest task id.
    pub task_ids: (i64, i64),
}

/// What each tenant of the HTTP scenarios holds.
#[derive(Debug, Clone, Args)]
pub struct FixtureArgs {
    /// Tenants; requests go round robin over them.
    #[arg(long, default_value_t = 10)]
    pub tenants: usize,
    /// Tasks per tenant (all in its project).
    #[arg(long, default_value_t = 200)]
    pub tasks: usize,
    /// Users per tenant besides the admin (a manager, then members).
    #[arg(long, default_value_t = 4)]
    pub users: usize,
}

impl FixtureArgs {
    /// Provisions (or reuses) the tenants; returns them and the seconds it took.
    pub async fn seed(&self, env: &Arc<Env>) -> Res<(Vec<Seeded>, f64)> {
        self.seed_fleet(env, "h").await
    }

    /// Like [`FixtureArgs::seed`], for a second fleet of the same shape
    /// whose slugs start with `fleet` instead of `h` (a scenario that
    /// changes its tenants keeps them apart from everyone else's).
    pub async fn seed_fleet(&self, env: &Arc<Env>, fleet: &str) -> Res<(Vec<Seeded>, f64)> {
        let start = Instant::now();
        let shape = Shape {
            users: self.users.max(2),
            tasks: self.tasks,
        };
        let prefix = format!("{fleet}{}u{}", shape.tasks, shape.users);
        let seeded = env.tenants(&prefix, self.tenants.max(1), shape, 2).await?;
        Ok((seeded, start.elapsed().as_secs_f64()))
    }
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A benchmark tenant on the enterprise plan (no limits), its domain
/// `<slug>.bench.localhost` (underscores as hyphens).
pub fn new_tenant(slug: &str) -> Res<NewTenant> {
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
        created_at: now(),
    })
}

/// A user `username@bench.localhost` whose password hash is `hash`.
pub fn user_record(hash: &str, username: &str, role: Role, owner: bool) -> Res<NewUserRecord> {
    Ok(NewUserRecord {
        username: Username::parse(username)?,
        email: Email::parse(&format!("{username}@bench.localhost"))?,
        password_hash: hash.to_owned(),
        first_name: "Bench".to_owned(),
        last_name: username.to_owned(),
        role,
        department: "Engineering".to_owned(),
        is_owner: owner,
        date_joined: now(),
    })
}

impl Env {
    /// The tenant with `slug`, holding `shape`: reused when an earlier run
    /// left it complete, else (re)created and filled.
    pub async fn tenant(&self, slug: &str, shape: Shape) -> Res<Seeded> {
        let new = new_tenant(slug)?;
        let host = new.domain.as_str().to_owned();
        if let Some(tenant) = self.store.tenant_by_slug(&new.slug).await? {
            match self.existing(&tenant, &host, shape).await? {
                Some(seeded) => return Ok(seeded),
                None => {
                    self.store.purge_tenant(tenant.id, None).await?;
                }
            }
        }
        let (tenant, admin) = self
            .store
            .create_tenant(&new, &user_record(&self.hash, "admin", Role::Admin, true)?)
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
                t.create_user(&user_record(&self.hash, &name, role, false)?, None)
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
                // On the tenant's own connections, as a host application
                // writes (so the catalog's backends never compile the
                // tenant's triggers), and unnamed: one statement a tenant.
                let handle = saas_core::store::Store::open(pg, tenant).await?;
                let assignees = assignees.to_vec();
                saas_store_postgres::with_tenant_tx(handle.as_ref(), move |conn| {
                    Box::pin(async move {
                        let backend = |e: sqlx::Error| saas_core::Error::backend(e.to_string());
                        sqlx::query(sqlx::AssertSqlSafe(sql))
                            .persistent(false)
                            .bind(project.0)
                            .bind(assignees)
                            .bind(creator.0)
                            .bind(base)
                            .bind(n)
                            .execute(&mut *conn)
                            .await
                            .map_err(backend)?;
                        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ANALYZE \"{schema}\".tasks")))
                            .execute(&mut *conn)
                            .await
                            .map_err(backend)?;
                        Ok::<_, saas_core::Error>(())
                    })
                })
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
                    // No ANALYZE: nothing gives a production tenant file
                    // statistics, and with them every open of the file would
                    // also load `sqlite_stat1`/`sqlite_stat4` (a tenth of
                    // the CPU of `scale`'s wide run) and plan differently.
                    tx.commit()?;
                    Ok(())
                })
                .await??;
            }
        }
        Ok(())
    }

    /// Provisions (or reuses) `n` tenants named `<prefix>_<i>` with `shape`,
    /// `parallel` at a time; returns them in order.
    pub async fn tenants(
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
