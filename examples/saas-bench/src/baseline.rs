//! The ceiling for `GET /api/tasks/`: a bare axum handler running the same
//! two queries as the store (count, then the first page of tasks with
//! assignee and creator joined, newest first) on the same data, and
//! writing the same JSON shape, with no tenancy, authentication,
//! validation or middleware. The Host header picks the data set through a
//! plain hash map so several tenants' data can be served.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{AssertSqlSafe, PgPool, Row};

use crate::error::Res;
use crate::fixture::Seeded;
use crate::storage::{Backend, Env};

const PAGE_SIZE: i64 = 20;

#[derive(Serialize)]
struct UserJson {
    id: i64,
    username: String,
    email: String,
    first_name: String,
    last_name: String,
    role: String,
}

#[derive(Serialize)]
struct TaskJson {
    id: i64,
    project: i64,
    title: String,
    description: String,
    status: &'static str,
    priority: &'static str,
    assigned_to: Option<UserJson>,
    assigned_to_id: Option<i64>,
    created_by: UserJson,
    due_date: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    started_at: Option<DateTime<Utc>>,
    is_overdue: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Serialize)]
struct PageJson {
    count: i64,
    next: Option<String>,
    previous: Option<String>,
    results: Vec<TaskJson>,
}

const STATUS: [&str; 4] = ["todo", "in_progress", "review", "done"];
const PRIORITY: [&str; 4] = ["low", "medium", "high", "urgent"];

fn label(names: &[&'static str; 4], rank: i64) -> &'static str {
    usize::try_from(rank)
        .ok()
        .and_then(|i| names.get(i))
        .copied()
        .unwrap_or("unknown")
}

/// Columns and joins exactly as the stores select them.
const SELECT: &str = "SELECT t.id, t.project_id, t.title, t.description, t.status, t.priority, \
     t.due_date, t.completed_at, t.created_at, t.updated_at, \
     a.id, a.username, a.email, a.first_name, a.last_name, a.role, \
     c.id, c.username, c.email, c.first_name, c.last_name, c.role, t.started_at \
     FROM {s}tasks t JOIN {s}users c ON c.id = t.created_by LEFT JOIN {s}users a ON a.id = t.assigned_to \
     WHERE true ORDER BY t.created_at DESC, t.id ASC LIMIT $1 OFFSET $2";
const COUNT: &str = "SELECT count(*) FROM {s}tasks t WHERE true";

enum Data {
    /// Statements with the tenant's schema qualified in, per host.
    Postgres {
        pool: PgPool,
        sql: HashMap<String, (Arc<str>, Arc<str>)>,
    },
    /// A few open connections to each host's file.
    Sqlite {
        files: HashMap<String, Arc<SqlitePool>>,
    },
}

struct SqlitePool {
    path: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
}

impl SqlitePool {
    fn take(&self) -> rusqlite::Result<rusqlite::Connection> {
        let idle = self.idle.lock().ok().and_then(|mut v| v.pop());
        match idle {
            Some(c) => Ok(c),
            None => {
                let c = rusqlite::Connection::open_with_flags(
                    &self.path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(std::time::Duration::from_secs(5))?;
                c.set_prepared_statement_cache_capacity(64);
                Ok(c)
            }
        }
    }

    fn give(&self, c: rusqlite::Connection) {
        if let Ok(mut v) = self.idle.lock()
            && v.len() < 8
        {
            v.push(c);
        }
    }
}

type Shared = Arc<Data>;

fn host_of(headers: &HeaderMap) -> &str {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

fn ts(micros: Option<i64>) -> Option<DateTime<Utc>> {
    micros.and_then(DateTime::from_timestamp_micros)
}

#[allow(clippy::too_many_arguments)]
fn task(
    id: i64,
    project: i64,
    title: String,
    description: String,
    status: i64,
    priority: i64,
    due_date: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    started_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    assigned_to: Option<UserJson>,
    created_by: UserJson,
    now: DateTime<Utc>,
) -> TaskJson {
    TaskJson {
        id,
        project,
        title,
        description,
        status: label(&STATUS, status),
        priority: label(&PRIORITY, priority),
        assigned_to_id: assigned_to.as_ref().map(|u| u.id),
        assigned_to,
        created_by,
        is_overdue: status != 3 && due_date.is_some_and(|d| d < now),
        due_date,
        completed_at,
        started_at,
        created_at,
        updated_at,
    }
}

fn pg_user(row: &sqlx::postgres::PgRow, at: usize) -> Result<Option<UserJson>, sqlx::Error> {
    let id: Option<i64> = row.try_get(at)?;
    let Some(id) = id else { return Ok(None) };
    Ok(Some(UserJson {
        id,
        username: row.try_get(at + 1)?,
        email: row.try_get(at + 2)?,
        first_name: row.try_get(at + 3)?,
        last_name: row.try_get(at + 4)?,
        role: row.try_get(at + 5)?,
    }))
}

fn sqlite_user(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Option<UserJson>> {
    let id: Option<i64> = row.get(at)?;
    let Some(id) = id else { return Ok(None) };
    Ok(Some(UserJson {
        id,
        username: row.get(at + 1)?,
        email: row.get(at + 2)?,
        first_name: row.get(at + 3)?,
        last_name: row.get(at + 4)?,
        role: row.get(at + 5)?,
    }))
}

fn page(count: i64, results: Vec<TaskJson>, host: &str) -> PageJson {
    PageJson {
        count,
        next: (count > PAGE_SIZE).then(|| format!("http://{host}/api/tasks/?page=2")),
        previous: None,
        results,
    }
}

async fn list_pg(
    pool: &PgPool,
    count_sql: &Arc<str>,
    list_sql: &Arc<str>,
    host: &str,
) -> Result<PageJson, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let count: i64 = sqlx::query_scalar(AssertSqlSafe(Arc::clone(count_sql)))
        .fetch_one(&mut *conn)
        .await?;
    let rows = sqlx::query(AssertSqlSafe(Arc::clone(list_sql)))
        .bind(PAGE_SIZE)
        .bind(0i64)
        .fetch_all(&mut *conn)
        .await?;
    drop(conn);
    let now = Utc::now();
    let mut results = Vec::with_capacity(rows.len());
    for r in &rows {
        let status: i16 = r.try_get(4)?;
        let priority: i16 = r.try_get(5)?;
        let created_by = pg_user(r, 16)?.ok_or_else(|| sqlx::Error::RowNotFound)?;
        results.push(task(
            r.try_get(0)?,
            r.try_get(1)?,
            r.try_get(2)?,
            r.try_get(3)?,
            i64::from(status),
            i64::from(priority),
            r.try_get(6)?,
            r.try_get(7)?,
            r.try_get(22)?,
            r.try_get(8)?,
            r.try_get(9)?,
            pg_user(r, 10)?,
            created_by,
            now,
        ));
    }
    Ok(page(count, results, host))
}

fn list_sqlite(conn: &mut rusqlite::Connection, host: &str) -> rusqlite::Result<PageJson> {
    let tx = conn.transaction()?;
    let count: i64 = tx
        .prepare_cached(&COUNT.replace("{s}", ""))?
        .query_row([], |r| r.get(0))?;
    let now = Utc::now();
    let results = tx
        .prepare_cached(&SELECT.replace("{s}", "").replace('$', "?"))?
        .query_map([PAGE_SIZE, 0], |r| {
            let created_by = sqlite_user(r, 16)?.ok_or(rusqlite::Error::InvalidQuery)?;
            Ok(task(
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                ts(r.get(6)?),
                ts(r.get(7)?),
                ts(r.get(22)?),
                ts(r.get(8)?).unwrap_or_default(),
                ts(r.get(9)?).unwrap_or_default(),
                sqlite_user(r, 10)?,
                created_by,
                now,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    drop(tx);
    Ok(page(count, results, host))
}

async fn list(State(data): State<Shared>, headers: HeaderMap) -> Response {
    let host = host_of(&headers).to_owned();
    match &*data {
        Data::Postgres { pool, sql } => {
            let Some((count, list)) = sql.get(&host) else {
                return StatusCode::NOT_FOUND.into_response();
            };
            match list_pg(pool, count, list, &host).await {
                Ok(p) => Json(p).into_response(),
                Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
            }
        }
        Data::Sqlite { files } => {
            let Some(pool) = files.get(&host).cloned() else {
                return StatusCode::NOT_FOUND.into_response();
            };
            let done = tokio::task::spawn_blocking(move || {
                let mut conn = pool.take()?;
                let out = list_sqlite(&mut conn, &host);
                pool.give(conn);
                out
            })
            .await;
            match done {
                Ok(Ok(p)) => Json(p).into_response(),
                Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
                Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
            }
        }
    }
}

/// Serves the baseline for `tenants` on a loopback port of its own.
pub async fn start(env: &Env, tenants: &[Seeded], pool_size: u32) -> Res<SocketAddr> {
    let data = match env.backend {
        Backend::Postgres => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(pool_size)
                .connect(&env.database_url)
                .await?;
            let mut sql = HashMap::new();
            for s in tenants {
                let prefix = format!(
                    "\"{}\".",
                    saas_store_postgres::tenant_schema_name(&s.tenant)
                );
                sql.insert(
                    s.host.clone(),
                    (
                        Arc::from(COUNT.replace("{s}", &prefix)),
                        Arc::from(SELECT.replace("{s}", &prefix)),
                    ),
                );
            }
            Data::Postgres { pool, sql }
        }
        Backend::Sqlite => {
            let mut files = HashMap::new();
            for s in tenants {
                files.insert(
                    s.host.clone(),
                    Arc::new(SqlitePool {
                        path: env.tenant_file(&s.tenant)?,
                        idle: Mutex::new(Vec::new()),
                    }),
                );
            }
            Data::Sqlite { files }
        }
    };
    let app = axum::Router::new()
        .route("/api/tasks/", axum::routing::get(list))
        .with_state(Arc::new(data));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("baseline server stopped: {e}");
        }
    });
    Ok(addr)
}
