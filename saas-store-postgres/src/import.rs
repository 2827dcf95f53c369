//! Writing an imported tenant's rows with their ids, and listing the ids
//! back for verification (`Store::import_tenant`, `TenantStore::inventory`).
//!
//! Rows go in as arrays (`unnest`), one statement per table, so a tenant of
//! thousands of tasks is a handful of round trips; the identity sequences
//! are then moved past the largest imported id, so rows created later never
//! collide with imported ones.

use saas_core::error::Result;
use saas_core::import::{Inventory, TenantImport};
use saas_core::projects::{ProjectId, TaskId};
use saas_core::users::UserId;
use sqlx::{AssertSqlSafe, PgConnection};

use crate::error::SqlxResultExt;
use crate::schema;

const USERS: &str = "INSERT INTO {s}users (id, username, username_key, email, password_hash, \
    first_name, last_name, role, department, is_active, is_owner, last_login, date_joined) \
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
    $7::text[], $8::text[], $9::text[], $10::boolean[], $11::boolean[], $12::timestamptz[], \
    $13::timestamptz[])";

const PROJECTS: &str = "INSERT INTO {s}projects (id, name, description, status, start_date, \
    end_date, owner_id, created_at, updated_at) \
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::smallint[], $5::date[], \
    $6::date[], $7::bigint[], $8::timestamptz[], $9::timestamptz[])";

const MEMBERS: &str = "INSERT INTO {s}project_members (project_id, user_id) \
    SELECT * FROM unnest($1::bigint[], $2::bigint[])";

const TASKS: &str = "INSERT INTO {s}tasks (id, project_id, title, description, status, priority, \
    assigned_to, created_by, due_date, completed_at, created_at, updated_at) \
    SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::smallint[], \
    $6::smallint[], $7::bigint[], $8::bigint[], $9::timestamptz[], $10::timestamptz[], \
    $11::timestamptz[], $12::timestamptz[])";

/// Moves each identity sequence to the table's largest id (tables left
/// empty keep theirs).
const SEQUENCES: &str = "SELECT setval(pg_get_serial_sequence('{s}users', 'id'), max(id)) FROM {s}users HAVING count(*) > 0; \
    SELECT setval(pg_get_serial_sequence('{s}projects', 'id'), max(id)) FROM {s}projects HAVING count(*) > 0; \
    SELECT setval(pg_get_serial_sequence('{s}tasks', 'id'), max(id)) FROM {s}tasks HAVING count(*) > 0;";

fn small(rank: i64) -> i16 {
    i16::try_from(rank).unwrap_or(i16::MAX)
}

/// Inserts every row of `data` into the tenant tables under `prefix` (a
/// quoted schema and a dot), on `conn`, inside the caller's transaction.
pub(crate) async fn write_rows(
    conn: &mut PgConnection,
    prefix: &str,
    data: &TenantImport,
) -> Result<()> {
    let sql = |template: &str| schema::render(template, prefix);
    let u = &data.users;
    sqlx::query(AssertSqlSafe(sql(USERS)))
        .persistent(false)
        .bind(u.iter().map(|u| u.id.0).collect::<Vec<_>>())
        .bind(
            u.iter()
                .map(|u| u.record.username.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            u.iter()
                .map(|u| u.record.username.key())
                .collect::<Vec<_>>(),
        )
        .bind(
            u.iter()
                .map(|u| u.record.email.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            u.iter()
                .map(|u| u.record.password_hash.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            u.iter()
                .map(|u| u.record.first_name.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            u.iter()
                .map(|u| u.record.last_name.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(u.iter().map(|u| u.record.role.as_str()).collect::<Vec<_>>())
        .bind(
            u.iter()
                .map(|u| u.record.department.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(u.iter().map(|u| u.is_active).collect::<Vec<_>>())
        .bind(u.iter().map(|u| u.record.is_owner).collect::<Vec<_>>())
        .bind(u.iter().map(|u| u.last_login).collect::<Vec<_>>())
        .bind(u.iter().map(|u| u.record.date_joined).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await
        .db()?;
    let p = &data.projects;
    sqlx::query(AssertSqlSafe(sql(PROJECTS)))
        .persistent(false)
        .bind(p.iter().map(|p| p.id.0).collect::<Vec<_>>())
        .bind(p.iter().map(|p| p.record.name.as_str()).collect::<Vec<_>>())
        .bind(
            p.iter()
                .map(|p| p.record.description.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            p.iter()
                .map(|p| small(p.record.status.rank()))
                .collect::<Vec<_>>(),
        )
        .bind(p.iter().map(|p| p.record.start_date).collect::<Vec<_>>())
        .bind(p.iter().map(|p| p.record.end_date).collect::<Vec<_>>())
        .bind(p.iter().map(|p| p.record.owner.0).collect::<Vec<_>>())
        .bind(p.iter().map(|p| p.record.created_at).collect::<Vec<_>>())
        .bind(p.iter().map(|p| p.updated_at).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await
        .db()?;
    let m = &data.members;
    sqlx::query(AssertSqlSafe(sql(MEMBERS)))
        .persistent(false)
        .bind(m.iter().map(|(p, _)| p.0).collect::<Vec<_>>())
        .bind(m.iter().map(|(_, u)| u.0).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await
        .db()?;
    let t = &data.tasks;
    sqlx::query(AssertSqlSafe(sql(TASKS)))
        .persistent(false)
        .bind(t.iter().map(|t| t.id.0).collect::<Vec<_>>())
        .bind(t.iter().map(|t| t.record.project_id.0).collect::<Vec<_>>())
        .bind(
            t.iter()
                .map(|t| t.record.title.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            t.iter()
                .map(|t| t.record.description.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            t.iter()
                .map(|t| small(t.record.status.rank()))
                .collect::<Vec<_>>(),
        )
        .bind(
            t.iter()
                .map(|t| small(t.record.priority.rank()))
                .collect::<Vec<_>>(),
        )
        .bind(
            t.iter()
                .map(|t| t.record.assigned_to.map(|u| u.0))
                .collect::<Vec<_>>(),
        )
        .bind(t.iter().map(|t| t.record.created_by.0).collect::<Vec<_>>())
        .bind(t.iter().map(|t| t.record.due_date).collect::<Vec<_>>())
        .bind(t.iter().map(|t| t.record.completed_at).collect::<Vec<_>>())
        .bind(t.iter().map(|t| t.record.created_at).collect::<Vec<_>>())
        .bind(t.iter().map(|t| t.updated_at).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await
        .db()?;
    sqlx::raw_sql(AssertSqlSafe(sql(SEQUENCES)))
        .execute(&mut *conn)
        .await
        .db()?;
    Ok(())
}

/// Every id the tenant tables under `prefix` hold.
pub(crate) async fn inventory(conn: &mut PgConnection, prefix: &str) -> Result<Inventory> {
    let sql = |template: &str| schema::render(template, prefix);
    let ids = |template: &str| sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql(template)));
    let users = ids("SELECT id FROM {s}users")
        .persistent(false)
        .fetch_all(&mut *conn)
        .await
        .db()?;
    let projects = ids("SELECT id FROM {s}projects")
        .persistent(false)
        .fetch_all(&mut *conn)
        .await
        .db()?;
    let tasks = ids("SELECT id FROM {s}tasks")
        .persistent(false)
        .fetch_all(&mut *conn)
        .await
        .db()?;
    let members: Vec<(i64, i64)> = sqlx::query_as(AssertSqlSafe(sql(
        "SELECT project_id, user_id FROM {s}project_members",
    )))
    .persistent(false)
    .fetch_all(&mut *conn)
    .await
    .db()?;
    Ok(Inventory::new(
        users.into_iter().map(UserId).collect(),
        projects.into_iter().map(ProjectId).collect(),
        members
            .into_iter()
            .map(|(p, u)| (ProjectId(p), UserId(u)))
            .collect(),
        tasks.into_iter().map(TaskId).collect(),
    ))
}
