//! The baseline's statements on PostgreSQL: named prepared statements
//! (sqlx's cache) on a plain pool, the tenant's schema qualified in.

use std::sync::Arc;

use axum::http::StatusCode;
use chrono::Utc;
use saas_http::models::UserSummaryOut;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgPool, Row};

use super::{
    Answer, Ask, COUNT_COLUMNS, Counts, DashboardRows, PAGE_SIZE, PROJECT_COUNTS, RECENT,
    TASK_COLUMNS, TASK_COUNTS, TASK_JOINS, TaskRow, Tenant, dashboard_out, page, reply,
    statistics_out,
};

/// One tenant's statements.
pub(super) struct Statements {
    count: Arc<str>,
    list: Arc<str>,
    detail: Arc<str>,
    create: Arc<str>,
    dashboard: Arc<str>,
    statistics: Arc<str>,
}

impl Statements {
    /// Every statement with `prefix` (the quoted schema and a dot) in front
    /// of table names.
    pub(super) fn render(prefix: &str) -> Self {
        let sql = |s: String| -> Arc<str> { s.replace("{s}", prefix).into() };
        let select = format!("SELECT {TASK_COLUMNS} FROM {{s}}tasks t{TASK_JOINS}");
        // The recent tasks' order, under names of their own: the joined
        // rows have three `id` columns (task, assignee, creator).
        let select_keyed = format!(
            "SELECT {TASK_COLUMNS}, t.updated_at AS recent_at, t.id AS recent_id \
             FROM {{s}}tasks t{TASK_JOINS}"
        );
        Statements {
            count: sql("SELECT count(*) FROM {s}tasks t".to_owned()),
            list: sql(format!(
                "{select} ORDER BY t.created_at DESC, t.id ASC LIMIT $1 OFFSET $2"
            )),
            detail: sql(format!("{select} WHERE t.id = $1")),
            create: sql(format!(
                "WITH t AS (INSERT INTO {{s}}tasks (project_id, title, description, status, priority, \
                 assigned_to, created_by, due_date, completed_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $9, $9) RETURNING *) \
                 SELECT {TASK_COLUMNS} FROM t{TASK_JOINS}"
            )),
            // One row of counts beside each recent task.
            dashboard: sql(format!(
                "SELECT pc.*, tc.*, mc.*, uc.*, r.* FROM \
                 (SELECT {PROJECT_COUNTS} FROM {{s}}projects) pc, \
                 (SELECT {TASK_COUNTS} FROM {{s}}tasks) tc, \
                 (SELECT {TASK_COUNTS} FROM {{s}}tasks WHERE assigned_to = $2) mc, \
                 (SELECT count(*) FROM {{s}}users) uc \
                 LEFT JOIN LATERAL ({select_keyed} ORDER BY t.updated_at DESC, t.id ASC LIMIT {RECENT}) r \
                 ON true ORDER BY r.recent_at DESC, r.recent_id ASC"
            )),
            statistics: sql(format!(
                "SELECT {TASK_COUNTS}, \
                 (SELECT count(*) FROM {{s}}project_members WHERE project_id = $2), \
                 (SELECT count(*) FROM {{s}}projects WHERE id = $2) \
                 FROM {{s}}tasks WHERE project_id = $2"
            )),
        }
    }
}

fn q(sql: &Arc<str>) -> sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(AssertSqlSafe(Arc::clone(sql)))
}

fn user(row: &PgRow, at: usize) -> Result<Option<UserSummaryOut>, sqlx::Error> {
    let id: Option<i64> = row.try_get(at)?;
    let Some(id) = id else { return Ok(None) };
    Ok(Some(UserSummaryOut {
        id,
        username: row.try_get(at + 1)?,
        email: row.try_get(at + 2)?,
        first_name: row.try_get(at + 3)?,
        last_name: row.try_get(at + 4)?,
        role: row.try_get(at + 5)?,
    }))
}

/// The task columns of `row` from `at` on, if its id is not NULL.
fn task(row: &PgRow, at: usize) -> Result<Option<TaskRow>, sqlx::Error> {
    let id: Option<i64> = row.try_get(at)?;
    let Some(id) = id else { return Ok(None) };
    let status: i16 = row.try_get(at + 4)?;
    let priority: i16 = row.try_get(at + 5)?;
    Ok(Some(TaskRow {
        id,
        project: row.try_get(at + 1)?,
        title: row.try_get(at + 2)?,
        description: row.try_get(at + 3)?,
        status: i64::from(status),
        priority: i64::from(priority),
        due_date: row.try_get(at + 6)?,
        completed_at: row.try_get(at + 7)?,
        created_at: row.try_get(at + 8)?,
        updated_at: row.try_get(at + 9)?,
        assigned_to: user(row, at + 10)?,
        created_by: user(row, at + 16)?.ok_or(sqlx::Error::RowNotFound)?,
    }))
}

fn counts(row: &PgRow, at: usize) -> Result<Counts, sqlx::Error> {
    let mut c = [0; COUNT_COLUMNS];
    for (i, slot) in c.iter_mut().enumerate() {
        *slot = row.try_get(at + i)?;
    }
    Ok(c)
}

pub(super) async fn answer(
    pool: &PgPool,
    sql: &Statements,
    tenant: &Tenant,
    ask: Ask,
    host: &str,
) -> Answer {
    run(pool, sql, tenant, ask, host)
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
}

async fn run(
    pool: &PgPool,
    sql: &Statements,
    tenant: &Tenant,
    ask: Ask,
    host: &str,
) -> Result<Answer, sqlx::Error> {
    let now = Utc::now();
    let mut conn = pool.acquire().await?;
    Ok(match ask {
        Ask::List => {
            let count: i64 = q(&sql.count).fetch_one(&mut *conn).await?.try_get(0)?;
            let rows = q(&sql.list)
                .bind(PAGE_SIZE)
                .bind(0i64)
                .fetch_all(&mut *conn)
                .await?;
            drop(conn);
            let mut results = Vec::with_capacity(rows.len());
            for r in &rows {
                results.extend(task(r, 0)?.map(|t| t.out(now)));
            }
            reply(StatusCode::OK, page(count, results, host))
        }
        Ask::Detail(id) => {
            let row = q(&sql.detail).bind(id).fetch_optional(&mut *conn).await?;
            drop(conn);
            match row.as_ref().map(|r| task(r, 0)).transpose()?.flatten() {
                Some(t) => reply(StatusCode::OK, t.out(now)),
                None => Ok(None),
            }
        }
        Ask::Create(new) => {
            let row = q(&sql.create)
                .bind(new.project)
                .bind(new.title)
                .bind(new.description)
                .bind(i16::try_from(new.status).unwrap_or(0))
                .bind(i16::try_from(new.priority).unwrap_or(0))
                .bind(new.assigned_to)
                .bind(new.created_by)
                .bind(new.completed_at)
                .bind(new.now)
                .fetch_one(&mut *conn)
                .await?;
            drop(conn);
            match task(&row, 0)? {
                Some(t) => reply(StatusCode::CREATED, t.out(now)),
                None => Err("no row inserted".to_owned()),
            }
        }
        Ask::Dashboard => {
            let rows = q(&sql.dashboard)
                .bind(now)
                .bind(tenant.admin)
                .fetch_all(&mut *conn)
                .await?;
            drop(conn);
            let Some(first) = rows.first() else {
                return Ok(Err("no dashboard row".to_owned()));
            };
            let mut projects = [0; 6];
            for (i, slot) in projects.iter_mut().enumerate() {
                *slot = first.try_get(i)?;
            }
            let users_at = 6 + 2 * COUNT_COLUMNS;
            let mut recent = Vec::with_capacity(rows.len());
            for r in &rows {
                recent.extend(task(r, users_at + 1)?);
            }
            let d = DashboardRows {
                projects,
                tasks: counts(first, 6)?,
                mine: counts(first, 6 + COUNT_COLUMNS)?,
                users: first.try_get(users_at)?,
                recent,
            };
            reply(StatusCode::OK, dashboard_out(d, &tenant.plan, now))
        }
        Ask::Statistics(id) => {
            let row = q(&sql.statistics)
                .bind(now)
                .bind(id)
                .fetch_one(&mut *conn)
                .await?;
            drop(conn);
            let exists: i64 = row.try_get(COUNT_COLUMNS + 1)?;
            if exists == 0 {
                return Ok(Ok(None));
            }
            let members: i64 = row.try_get(COUNT_COLUMNS)?;
            reply(
                StatusCode::OK,
                statistics_out(id, &counts(&row, 0)?, members),
            )
        }
    })
}
