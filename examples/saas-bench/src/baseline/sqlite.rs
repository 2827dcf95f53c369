//! The baseline's statements on SQLite: a few open connections to each
//! tenant's file, cached prepared statements, on the blocking pool.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use saas_http::models::UserSummaryOut;

use super::{
    Answer, Ask, COUNT_COLUMNS, Counts, DashboardRows, PAGE_SIZE, PROJECT_COUNTS, RECENT,
    TASK_COLUMNS, TASK_COUNTS, TASK_JOINS, TaskRow, Tenant, dashboard_out, page, reply,
    statistics_out,
};

/// A few open connections to one tenant's file.
pub(super) struct Files {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Files {
    pub(super) fn new(path: PathBuf) -> Self {
        Files {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn take(&self) -> rusqlite::Result<Connection> {
        let idle = self.idle.lock().ok().and_then(|mut v| v.pop());
        match idle {
            Some(c) => Ok(c),
            None => {
                let c = Connection::open_with_flags(
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

    fn give(&self, c: Connection) {
        if let Ok(mut v) = self.idle.lock()
            && v.len() < 8
        {
            v.push(c);
        }
    }
}

/// A statement template (`{s}` table prefix, `$n` parameters) as SQLite
/// takes it.
fn sql(template: &str) -> String {
    template.replace("{s}", "").replace('$', "?")
}

fn ts(micros: Option<i64>) -> Option<DateTime<Utc>> {
    micros.and_then(DateTime::from_timestamp_micros)
}

fn user(row: &Row<'_>, at: usize) -> rusqlite::Result<Option<UserSummaryOut>> {
    let id: Option<i64> = row.get(at)?;
    let Some(id) = id else { return Ok(None) };
    Ok(Some(UserSummaryOut {
        id,
        username: row.get(at + 1)?,
        email: row.get(at + 2)?,
        first_name: row.get(at + 3)?,
        last_name: row.get(at + 4)?,
        role: row.get(at + 5)?,
    }))
}

fn task(row: &Row<'_>) -> rusqlite::Result<TaskRow> {
    Ok(TaskRow {
        id: row.get(0)?,
        project: row.get(1)?,
        title: row.get(2)?,
        description: row.get(3)?,
        status: row.get(4)?,
        priority: row.get(5)?,
        due_date: ts(row.get(6)?),
        completed_at: ts(row.get(7)?),
        created_at: ts(row.get(8)?).unwrap_or_default(),
        updated_at: ts(row.get(9)?).unwrap_or_default(),
        assigned_to: user(row, 10)?,
        created_by: user(row, 16)?.ok_or(rusqlite::Error::InvalidQuery)?,
    })
}

fn counts(row: &Row<'_>) -> rusqlite::Result<Counts> {
    let mut c = [0; COUNT_COLUMNS];
    for (i, slot) in c.iter_mut().enumerate() {
        *slot = row.get(i)?;
    }
    Ok(c)
}

fn select() -> String {
    sql(&format!(
        "SELECT {TASK_COLUMNS} FROM {{s}}tasks t{TASK_JOINS}"
    ))
}

pub(super) async fn answer(files: Arc<Files>, tenant: &Tenant, ask: Ask, host: String) -> Answer {
    let (admin, plan) = (tenant.admin, tenant.plan.clone());
    tokio::task::spawn_blocking(move || {
        let mut conn = files.take().map_err(|e| e.to_string())?;
        let out = run(&mut conn, admin, &plan, ask, &host).map_err(|e| e.to_string());
        files.give(conn);
        out?
    })
    .await
    .map_err(|e| e.to_string())?
}

fn run(
    conn: &mut Connection,
    admin: i64,
    plan: &super::Plan,
    ask: Ask,
    host: &str,
) -> rusqlite::Result<Answer> {
    let now = Utc::now();
    let micros = now.timestamp_micros();
    let tx = conn.transaction()?;
    let answer = match ask {
        Ask::List => {
            let count: i64 = tx
                .prepare_cached("SELECT count(*) FROM tasks t")?
                .query_row([], |r| r.get(0))?;
            let results = tx
                .prepare_cached(&format!(
                    "{} ORDER BY t.created_at DESC, t.id ASC LIMIT ?1 OFFSET ?2",
                    select()
                ))?
                .query_map([PAGE_SIZE, 0], task)?
                .map(|t| t.map(|t| t.out(now)))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            reply(StatusCode::OK, page(count, results, host))
        }
        Ask::Detail(id) => {
            let found = tx
                .prepare_cached(&format!("{} WHERE t.id = ?1", select()))?
                .query_row([id], task)
                .optional()?;
            match found {
                Some(t) => reply(StatusCode::OK, t.out(now)),
                None => Ok(None),
            }
        }
        Ask::Create(new) => {
            let id: i64 = tx
                .prepare_cached(
                    "INSERT INTO tasks (project_id, title, description, status, priority, \
                     assigned_to, created_by, due_date, completed_at, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8, ?9, ?9) RETURNING id",
                )?
                .query_row(
                    params![
                        new.project,
                        new.title,
                        new.description,
                        new.status,
                        new.priority,
                        new.assigned_to,
                        new.created_by,
                        new.completed_at.map(|t| t.timestamp_micros()),
                        new.now.timestamp_micros(),
                    ],
                    |r| r.get(0),
                )?;
            let t = tx
                .prepare_cached(&format!("{} WHERE t.id = ?1", select()))?
                .query_row([id], task)?;
            reply(StatusCode::CREATED, t.out(now))
        }
        Ask::Dashboard => {
            let mut projects = [0; 6];
            tx.prepare_cached(&format!("SELECT {PROJECT_COUNTS} FROM projects"))?
                .query_row([], |r| {
                    for (i, slot) in projects.iter_mut().enumerate() {
                        *slot = r.get(i)?;
                    }
                    Ok(())
                })?;
            let tasks = tx
                .prepare_cached(&sql(&format!("SELECT {TASK_COUNTS} FROM tasks")))?
                .query_row([micros], counts)?;
            let mine = tx
                .prepare_cached(&sql(&format!(
                    "SELECT {TASK_COUNTS} FROM tasks WHERE assigned_to = $2"
                )))?
                .query_row([micros, admin], counts)?;
            let users: i64 = tx
                .prepare_cached("SELECT count(*) FROM users")?
                .query_row([], |r| r.get(0))?;
            let recent = tx
                .prepare_cached(&format!(
                    "{} ORDER BY t.updated_at DESC, t.id ASC LIMIT {RECENT}",
                    select()
                ))?
                .query_map([], task)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let d = DashboardRows {
                projects,
                tasks,
                mine,
                users,
                recent,
            };
            reply(StatusCode::OK, dashboard_out(d, plan, now))
        }
        Ask::Statistics(id) => {
            let (c, members, exists) = tx
                .prepare_cached(&sql(&format!(
                    "SELECT {TASK_COUNTS}, \
                     (SELECT count(*) FROM project_members WHERE project_id = $2), \
                     (SELECT count(*) FROM projects WHERE id = $2) \
                     FROM tasks WHERE project_id = $2"
                )))?
                .query_row([micros, id], |r| {
                    Ok((
                        counts(r)?,
                        r.get::<_, i64>(COUNT_COLUMNS)?,
                        r.get::<_, i64>(COUNT_COLUMNS + 1)?,
                    ))
                })?;
            if exists == 0 {
                Ok(None)
            } else {
                reply(StatusCode::OK, statistics_out(id, &c, members))
            }
        }
    };
    tx.commit()?;
    Ok(answer)
}
