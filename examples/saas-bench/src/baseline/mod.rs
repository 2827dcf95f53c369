//! The ceiling of every `http` profile: a bare axum handler per endpoint
//! (`GET /api/tasks/`, `GET /api/tasks/{id}/`, `POST /api/tasks/`,
//! `GET /api/dashboard/`, `GET /api/projects/{id}/statistics/`) running the
//! least SQL that answers the same response for the tenant's admin, on the
//! same data, and writing the same JSON (saas-http's own response types),
//! with no tenancy, authentication, validation or middleware. The Host
//! header picks the data set through a plain hash map so several tenants'
//! data can be served.
//!
//! What each endpoint runs, on PostgreSQL (`baseline/postgres.rs`) and SQLite
//! (`baseline/sqlite.rs`):
//!
//! - list: the count, then the first page of 20 with assignee and creator
//!   joined, newest first;
//! - detail: the task with assignee and creator;
//! - create: the insert, answering the new task with assignee and creator
//!   (PostgreSQL: one statement; SQLite: the insert and the read back);
//! - dashboard: the projects, tasks and the admin's tasks counted, the users
//!   counted and the five most recently changed tasks (PostgreSQL: one
//!   statement; SQLite: one read transaction);
//! - statistics: the project's tasks counted by status and priority, its
//!   overdue tasks and its members (one statement).

mod postgres;
mod sqlite;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use saas_core::projects::{Priority, ProjectStatus, TaskStatus};
use saas_http::models::{DashboardOut, ProjectStatisticsOut, TaskOut, UsageOut, UserSummaryOut};
use serde::Serialize;

use crate::error::Res;
use crate::fixture::Seeded;
use crate::storage::{Backend, Env};

const PAGE_SIZE: i64 = 20;
/// Recently changed tasks on the dashboard.
const RECENT: i64 = 5;

/// The task and user columns every statement selects, joins as the stores
/// write them: task (10 columns), assignee (6), creator (6).
const TASK_COLUMNS: &str = "t.id, t.project_id, t.title, t.description, t.status, t.priority, \
     t.due_date, t.completed_at, t.created_at, t.updated_at, \
     a.id, a.username, a.email, a.first_name, a.last_name, a.role, \
     c.id, c.username, c.email, c.first_name, c.last_name, c.role";
const TASK_JOINS: &str =
    " JOIN {s}users c ON c.id = t.created_by LEFT JOIN {s}users a ON a.id = t.assigned_to";

/// Counts of tasks: all, by status (4), by priority (4), overdue as of `$1`.
const TASK_COUNTS: &str = "count(*), \
     count(*) FILTER (WHERE status = 0), count(*) FILTER (WHERE status = 1), \
     count(*) FILTER (WHERE status = 2), count(*) FILTER (WHERE status = 3), \
     count(*) FILTER (WHERE priority = 0), count(*) FILTER (WHERE priority = 1), \
     count(*) FILTER (WHERE priority = 2), count(*) FILTER (WHERE priority = 3), \
     count(*) FILTER (WHERE status <> 3 AND due_date < $1)";
/// Columns of [`TASK_COUNTS`].
const COUNT_COLUMNS: usize = 10;
/// Counts of projects: all, by status (5).
const PROJECT_COUNTS: &str = "count(*), \
     count(*) FILTER (WHERE status = 0), count(*) FILTER (WHERE status = 1), \
     count(*) FILTER (WHERE status = 2), count(*) FILTER (WHERE status = 3), \
     count(*) FILTER (WHERE status = 4)";

/// The list's page.
#[derive(Serialize)]
struct PageJson {
    count: i64,
    next: Option<String>,
    previous: Option<String>,
    results: Vec<TaskOut>,
}

fn page(count: i64, results: Vec<TaskOut>, host: &str) -> PageJson {
    PageJson {
        count,
        next: (count > PAGE_SIZE).then(|| format!("http://{host}/api/tasks/?page=2")),
        previous: None,
        results,
    }
}

/// The task columns of one row, as read by a backend.
struct TaskRow {
    id: i64,
    project: i64,
    title: String,
    description: String,
    status: i64,
    priority: i64,
    due_date: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    assigned_to: Option<UserSummaryOut>,
    created_by: UserSummaryOut,
}

fn status_name(rank: i64) -> String {
    TaskStatus::from_rank(rank)
        .map_or("unknown", TaskStatus::as_str)
        .to_owned()
}

fn priority_name(rank: i64) -> String {
    Priority::from_rank(rank)
        .map_or("unknown", Priority::as_str)
        .to_owned()
}

impl TaskRow {
    fn out(self, now: DateTime<Utc>) -> TaskOut {
        TaskOut {
            id: self.id,
            project: self.project,
            is_overdue: self.status != TaskStatus::Done.rank()
                && self.due_date.is_some_and(|d| d < now),
            title: self.title,
            description: self.description,
            status: status_name(self.status),
            priority: priority_name(self.priority),
            assigned_to_id: self.assigned_to.as_ref().map(|u| u.id),
            assigned_to: self.assigned_to,
            created_by: self.created_by,
            due_date: self.due_date,
            completed_at: self.completed_at,
            // Not read: the baseline's statements predate the column (one
            // nullable timestamp more per row; not yet measured).
            started_at: None,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// Task counts as read: [`TASK_COUNTS`]' columns in order.
type Counts = [i64; COUNT_COLUMNS];

fn by_status(c: &Counts) -> BTreeMap<String, u64> {
    TaskStatus::ALL
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str().to_owned(), unsigned(c[1 + i])))
        .collect()
}

fn by_priority(c: &Counts) -> BTreeMap<String, u64> {
    Priority::ALL
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str().to_owned(), unsigned(c[5 + i])))
        .collect()
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// What the dashboard statement(s) read.
struct DashboardRows {
    /// All, then by status.
    projects: [i64; 6],
    tasks: Counts,
    mine: Counts,
    users: i64,
    recent: Vec<TaskRow>,
}

fn dashboard_out(d: DashboardRows, plan: &Plan, now: DateTime<Utc>) -> DashboardOut {
    let done = TaskStatus::Done.rank() as usize;
    DashboardOut {
        total_projects: unsigned(d.projects[0]),
        active_projects: unsigned(d.projects[1 + ProjectStatus::Active.rank() as usize]),
        projects_by_status: ProjectStatus::ALL
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str().to_owned(), unsigned(d.projects[1 + i])))
            .collect(),
        total_tasks: unsigned(d.tasks[0]),
        completed_tasks: unsigned(d.tasks[1 + done]),
        in_progress_tasks: unsigned(d.tasks[1 + TaskStatus::InProgress.rank() as usize]),
        overdue_tasks: unsigned(d.tasks[9]),
        tasks_by_status: by_status(&d.tasks),
        tasks_by_priority: by_priority(&d.tasks),
        my_tasks: unsigned(d.mine[0]),
        my_open_tasks: unsigned(d.mine[0] - d.mine[1 + done]),
        my_overdue_tasks: unsigned(d.mine[9]),
        recent_tasks: d.recent.into_iter().map(|t| t.out(now)).collect(),
        plan: plan.code.clone(),
        users: UsageOut {
            used: unsigned(d.users),
            limit: plan.max_users,
        },
        projects: UsageOut {
            used: unsigned(d.projects[0]),
            limit: plan.max_projects,
        },
    }
}

fn statistics_out(project: i64, c: &Counts, members: i64) -> ProjectStatisticsOut {
    let total = unsigned(c[0]);
    let done = unsigned(c[1 + TaskStatus::Done.rank() as usize]);
    ProjectStatisticsOut {
        project_id: project,
        total_tasks: total,
        todo_tasks: unsigned(c[1]),
        in_progress_tasks: unsigned(c[2]),
        review_tasks: unsigned(c[3]),
        completed_tasks: done,
        overdue_tasks: unsigned(c[9]),
        completion_rate: if total == 0 {
            0.0
        } else {
            (done as f64 * 1000.0 / total as f64).round() / 10.0
        },
        tasks_by_status: by_status(c),
        tasks_by_priority: by_priority(c),
        member_count: unsigned(members),
    }
}

/// A new task as the create endpoint reads it.
struct NewTaskRow {
    project: i64,
    title: String,
    description: String,
    status: i64,
    priority: i64,
    assigned_to: Option<i64>,
    created_by: i64,
    completed_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
}

impl NewTaskRow {
    /// The body the benchmark sends, created by `admin`; `None` when it
    /// does not parse.
    fn parse(body: &[u8], admin: i64) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        let status: TaskStatus = text("status")
            .unwrap_or_else(|| "todo".into())
            .parse()
            .ok()?;
        let priority: Priority = text("priority")
            .unwrap_or_else(|| "medium".into())
            .parse()
            .ok()?;
        let now = DateTime::from_timestamp_micros(Utc::now().timestamp_micros())?;
        Some(NewTaskRow {
            project: v.get("project")?.as_i64()?,
            title: text("title")?,
            description: text("description").unwrap_or_default(),
            status: status.rank(),
            priority: priority.rank(),
            assigned_to: v.get("assigned_to_id").and_then(|x| x.as_i64()),
            created_by: admin,
            completed_at: (status == TaskStatus::Done).then_some(now),
            now,
        })
    }
}

/// The plan the dashboard reports.
#[derive(Clone)]
struct Plan {
    code: String,
    max_users: Option<u64>,
    max_projects: Option<u64>,
}

/// One tenant's data set as the baseline serves it.
pub(crate) struct Tenant {
    /// Statements rendered for the tenant (PostgreSQL) or its file (SQLite).
    data: Data,
    admin: i64,
    plan: Plan,
}

enum Data {
    Postgres(postgres::Statements),
    Sqlite(Arc<sqlite::Files>),
}

struct Served {
    tenants: HashMap<String, Tenant>,
    pg: Option<sqlx::PgPool>,
}

type Shared = Arc<Served>;

fn host_of(headers: &HeaderMap) -> &str {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// What one endpoint asks of a backend.
enum Ask {
    List,
    Detail(i64),
    Create(NewTaskRow),
    Dashboard,
    Statistics(i64),
}

/// What a backend answers: the response, or none (404).
type Answer = Result<Option<Response>, String>;

async fn answer(data: &Served, headers: &HeaderMap, ask: Ask) -> Response {
    let host = host_of(headers).to_owned();
    let Some(tenant) = data.tenants.get(&host) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let found = match (&tenant.data, &data.pg) {
        (Data::Postgres(sql), Some(pool)) => postgres::answer(pool, sql, tenant, ask, &host).await,
        (Data::Sqlite(files), _) => sqlite::answer(Arc::clone(files), tenant, ask, host).await,
        (Data::Postgres(_), None) => Err("no pool".to_owned()),
    };
    match found {
        Ok(Some(response)) => response,
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

async fn list(State(data): State<Shared>, headers: HeaderMap) -> Response {
    answer(&data, &headers, Ask::List).await
}

async fn detail(State(data): State<Shared>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    answer(&data, &headers, Ask::Detail(id)).await
}

async fn create(
    State(data): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let admin = data.tenants.get(host_of(&headers)).map_or(0, |t| t.admin);
    match NewTaskRow::parse(&body, admin) {
        Some(new) => answer(&data, &headers, Ask::Create(new)).await,
        None => StatusCode::BAD_REQUEST.into_response(),
    }
}

async fn dashboard(State(data): State<Shared>, headers: HeaderMap) -> Response {
    answer(&data, &headers, Ask::Dashboard).await
}

async fn statistics(
    State(data): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    answer(&data, &headers, Ask::Statistics(id)).await
}

/// Serves the baseline for `tenants` on a loopback port of its own.
pub async fn start(env: &Env, tenants: &[Seeded], pool_size: u32) -> Res<SocketAddr> {
    let catalog = saas_core::plans::PlanCatalog::builtin();
    let pg = match env.backend {
        // The store's pools skip sqlx's ping before each checkout of a
        // connection idle for less than a second; so does this one.
        Backend::Postgres => Some(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(pool_size)
                .test_before_acquire(false)
                .connect(&env.database_url)
                .await?,
        ),
        Backend::Sqlite => None,
    };
    let mut served = HashMap::new();
    for s in tenants {
        let data = match env.backend {
            Backend::Postgres => Data::Postgres(postgres::Statements::render(&format!(
                "\"{}\".",
                saas_store_postgres::tenant_schema_name(&s.tenant)
            ))),
            Backend::Sqlite => {
                Data::Sqlite(Arc::new(sqlite::Files::new(env.tenant_file(&s.tenant)?)))
            }
        };
        let plan = catalog
            .get(&s.tenant.plan)
            .unwrap_or(catalog.default_plan());
        served.insert(
            s.host.clone(),
            Tenant {
                data,
                admin: s.admin.0,
                plan: Plan {
                    code: plan.code.clone(),
                    max_users: plan.max_users,
                    max_projects: plan.max_projects,
                },
            },
        );
    }
    let app = axum::Router::new()
        .route("/api/tasks/", axum::routing::get(list).post(create))
        .route("/api/tasks/{id}/", axum::routing::get(detail))
        .route("/api/dashboard/", axum::routing::get(dashboard))
        .route(
            "/api/projects/{id}/statistics/",
            axum::routing::get(statistics),
        )
        .with_state(Arc::new(Served {
            tenants: served,
            pg,
        }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("baseline server stopped: {e}");
        }
    });
    Ok(addr)
}

/// `value` as the JSON a handler answers, with `status`.
fn reply(status: StatusCode, value: impl Serialize) -> Answer {
    Ok(Some((status, Json(value)).into_response()))
}
