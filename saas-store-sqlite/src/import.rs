//! Writing an imported tenant's rows with their ids, and listing the ids
//! back for verification (`Store::import_tenant`, `TenantStore::inventory`).
//!
//! The tables' `AUTOINCREMENT` keeps `sqlite_sequence` at the largest id
//! inserted, so rows created after an import get ids above the imported ones.

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, ParamsFromIter, params, params_from_iter};
use saas_core::Entity;
use saas_core::import::{Inventory, TenantImport};
use saas_core::projects::{ProjectId, TaskId};
use saas_core::users::UserId;

use crate::codec;
use crate::error::{R, conflict_on};

/// A row's parameters as imported: its `id`, the columns a new row has
/// ([`codec::user_values`], [`codec::project_values`],
/// [`codec::task_values`]), then those an import keeps besides (`rest`).
fn with_id<const N: usize, const M: usize>(
    id: i64,
    values: [Value; N],
    rest: [Value; M],
) -> ParamsFromIter<impl Iterator<Item = Value>> {
    params_from_iter(
        std::iter::once(Value::Integer(id))
            .chain(values)
            .chain(rest),
    )
}

/// The imported `updated_at`, the last of a project's or a task's columns.
fn updated(at: DateTime<Utc>) -> [Value; 1] {
    [Value::Integer(codec::micros(at))]
}

/// Inserts every row of `data` on `conn` (inside the caller's transaction).
/// Foreign keys refuse a reference to a row `data` lacks.
pub(crate) fn write_rows(conn: &Connection, data: &TenantImport) -> R<()> {
    let mut users = conn.prepare_cached(
        "INSERT INTO users (id, username, username_key, email, password_hash, first_name, last_name, \
         role, department, is_owner, date_joined, is_active, last_login, token_version) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 0)",
    )?;
    for u in &data.users {
        let rest = [
            Value::from(u.is_active),
            Value::from(codec::opt_micros(u.last_login)),
        ];
        users
            .execute(with_id(u.id.0, codec::user_values(&u.record), rest))
            .map_err(conflict_on(Entity::User, "username"))?;
    }
    let mut projects = conn.prepare_cached(
        "INSERT INTO projects (id, name, description, status, start_date, end_date, owner_id, \
         created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for p in &data.projects {
        let r = &p.record;
        projects
            .execute(with_id(
                p.id.0,
                codec::project_values(r),
                updated(p.updated_at),
            ))
            .map_err(conflict_on(Entity::Project, "id"))?;
    }
    let mut members =
        conn.prepare_cached("INSERT INTO memberships (project_id, user_id) VALUES (?1, ?2)")?;
    for (project, user) in &data.members {
        members.execute(params![project.0, user.0])?;
    }
    let mut tasks = conn.prepare_cached(
        "INSERT INTO tasks (id, project_id, title, description, status, priority, assigned_to, \
         created_by, due_date, completed_at, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    for t in &data.tasks {
        let r = &t.record;
        tasks
            .execute(with_id(
                t.id.0,
                codec::task_values(r),
                updated(t.updated_at),
            ))
            .map_err(conflict_on(Entity::Task, "id"))?;
    }
    Ok(())
}

fn ids(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<i64>> {
    conn.prepare_cached(sql)?
        .query_map([], |r| r.get(0))?
        .collect()
}

/// Every id the tenant file holds.
pub(crate) fn inventory(conn: &Connection) -> R<Inventory> {
    let members = conn
        .prepare_cached("SELECT project_id, user_id FROM memberships")?
        .query_map([], |r| Ok((ProjectId(r.get(0)?), UserId(r.get(1)?))))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Inventory::new(
        ids(conn, "SELECT id FROM users")?
            .into_iter()
            .map(UserId)
            .collect(),
        ids(conn, "SELECT id FROM projects")?
            .into_iter()
            .map(ProjectId)
            .collect(),
        members,
        ids(conn, "SELECT id FROM tasks")?
            .into_iter()
            .map(TaskId)
            .collect(),
    ))
}
