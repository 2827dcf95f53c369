//! How domain values are stored: timestamps as INTEGER microseconds since the
//! epoch, dates as TEXT `YYYY-MM-DD`, statuses and priorities as their integer
//! rank, validated strings re-validated on the way out.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::Row;
use rusqlite::types::{Type, Value as Sql};
use saas_core::projects::{NewProjectRecord, NewTaskRecord};
use saas_core::tenancy::TenantStatus;
use saas_core::users::{Email, NewUserRecord, Role, User, UserId, UserSummary, Username};

use crate::error::SqliteError;

/// Stored form of a timestamp.
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Stored form of an optional timestamp.
pub(crate) fn opt_micros(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(micros)
}

/// Stored form of a date.
pub(crate) fn date(d: Option<NaiveDate>) -> Option<String> {
    d.map(|d| d.format("%Y-%m-%d").to_string())
}

/// Stored form of a column value of a partial update.
pub(crate) fn value(v: &saas_core::updates::Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as Sql;
    use saas_core::updates::Value;
    let int = |n: Option<i64>| n.map_or(Sql::Null, Sql::Integer);
    match v {
        Value::Text(s) => Sql::Text(s.clone()),
        Value::Rank(r) => Sql::Integer(*r),
        Value::Bool(b) => Sql::Integer(i64::from(*b)),
        Value::Id(id) => int(*id),
        Value::Time(t) => int(opt_micros(*t)),
        Value::Date(d) => date(*d).map_or(Sql::Null, Sql::Text),
    }
}

/// A new user's stored columns, in the order `username, username_key,
/// email, password_hash, first_name, last_name, role, department,
/// is_owner, date_joined` (creating and importing write them alike).
pub(crate) fn user_values(u: &NewUserRecord) -> [Sql; 10] {
    [
        Sql::Text(u.username.as_str().to_owned()),
        Sql::Text(u.username.key()),
        Sql::Text(u.email.as_str().to_owned()),
        Sql::Text(u.password_hash.clone()),
        Sql::Text(u.first_name.clone()),
        Sql::Text(u.last_name.clone()),
        Sql::Text(u.role.as_str().to_owned()),
        Sql::Text(u.department.clone()),
        Sql::from(u.is_owner),
        Sql::Integer(micros(u.date_joined)),
    ]
}

/// A new project's stored columns, in the order `name, description,
/// status, start_date, end_date, owner_id, created_at` (creating and
/// importing write them alike).
pub(crate) fn project_values(p: &NewProjectRecord) -> [Sql; 7] {
    [
        Sql::Text(p.name.clone()),
        Sql::Text(p.description.clone()),
        Sql::Integer(p.status.rank()),
        Sql::from(date(p.start_date)),
        Sql::from(date(p.end_date)),
        Sql::Integer(p.owner.0),
        Sql::Integer(micros(p.created_at)),
    ]
}

/// A new task's stored columns, in the order `project_id, title,
/// description, status, priority, assigned_to, created_by, due_date,
/// completed_at, created_at` (creating and importing write them alike).
pub(crate) fn task_values(t: &NewTaskRecord) -> [Sql; 10] {
    [
        Sql::Integer(t.project_id.0),
        Sql::Text(t.title.clone()),
        Sql::Text(t.description.clone()),
        Sql::Integer(t.status.rank()),
        Sql::Integer(t.priority.rank()),
        Sql::from(t.assigned_to.map(|u| u.0)),
        Sql::Integer(t.created_by.0),
        Sql::from(opt_micros(t.due_date)),
        Sql::from(opt_micros(t.completed_at)),
        Sql::Integer(micros(t.created_at)),
    ]
}

/// Stored rank of a tenant status.
/// The stored rank of a status a tenant can be set to. Deletion is not a
/// stored status but the `deleted_at` mark (`Store::delete_tenant`).
pub(crate) fn tenant_status_rank(s: TenantStatus) -> saas_core::Result<i64> {
    match s {
        TenantStatus::Active => Ok(0),
        TenantStatus::Suspended => Ok(1),
        _ => Err(saas_core::Error::invalid(
            "status",
            "must be active or suspended (a tenant is deleted by deleting it)",
        )),
    }
}

fn corrupt(row: &Row<'_>, idx: usize, ty: Type) -> rusqlite::Error {
    let column = row
        .as_ref()
        .column_name(idx)
        .map(str::to_owned)
        .unwrap_or_else(|_| idx.to_string());
    rusqlite::Error::FromSqlConversionFailure(idx, ty, Box::new(SqliteError::Corrupt { column }))
}

/// A stored timestamp.
pub(crate) fn ts(row: &Row<'_>, idx: usize) -> rusqlite::Result<DateTime<Utc>> {
    let v: i64 = row.get(idx)?;
    DateTime::from_timestamp_micros(v).ok_or_else(|| corrupt(row, idx, Type::Integer))
}

/// A stored optional timestamp.
pub(crate) fn opt_ts(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match row.get::<_, Option<i64>>(idx)? {
        None => Ok(None),
        Some(v) => DateTime::from_timestamp_micros(v)
            .map(Some)
            .ok_or_else(|| corrupt(row, idx, Type::Integer)),
    }
}

/// A stored optional date.
pub(crate) fn opt_date(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<NaiveDate>> {
    match row.get::<_, Option<String>>(idx)? {
        None => Ok(None),
        Some(v) => NaiveDate::parse_from_str(&v, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| corrupt(row, idx, Type::Text)),
    }
}

/// A stored rank, decoded with `from_rank`.
pub(crate) fn ranked<T>(
    row: &Row<'_>,
    idx: usize,
    from_rank: fn(i64) -> Option<T>,
) -> rusqlite::Result<T> {
    let v: i64 = row.get(idx)?;
    from_rank(v).ok_or_else(|| corrupt(row, idx, Type::Integer))
}

/// A stored string, re-validated with `parse`.
pub(crate) fn parsed<T>(
    row: &Row<'_>,
    idx: usize,
    parse: impl FnOnce(&str) -> saas_core::Result<T>,
) -> rusqlite::Result<T> {
    let v: String = row.get(idx)?;
    parse(&v).map_err(|_| corrupt(row, idx, Type::Text))
}

/// A stored tenant status.
pub(crate) fn tenant_status(row: &Row<'_>, idx: usize) -> rusqlite::Result<TenantStatus> {
    ranked(row, idx, |r| match r {
        0 => Some(TenantStatus::Active),
        1 => Some(TenantStatus::Suspended),
        _ => None,
    })
}

/// Number of columns in `user_columns!()`.
pub(crate) const USER_WIDTH: usize = 12;

/// Number of columns in `summary_columns!(..)`.
pub(crate) const SUMMARY_WIDTH: usize = 6;

/// A full user read from `user_columns!()` starting at `at`.
pub(crate) fn user(row: &Row<'_>, at: usize) -> rusqlite::Result<User> {
    Ok(User {
        id: UserId(row.get(at)?),
        username: parsed(row, at + 1, Username::parse)?,
        email: parsed(row, at + 2, Email::parse)?,
        first_name: row.get(at + 3)?,
        last_name: row.get(at + 4)?,
        role: parsed(row, at + 5, str::parse::<Role>)?,
        department: row.get(at + 6)?,
        is_active: row.get(at + 7)?,
        is_owner: row.get(at + 8)?,
        last_login: opt_ts(row, at + 9)?,
        date_joined: ts(row, at + 10)?,
        token_version: row.get(at + 11)?,
    })
}

/// A user summary read from `summary_columns!(..)` starting at `at`; `None`
/// when the id is NULL (an outer join found no user).
pub(crate) fn opt_summary(row: &Row<'_>, at: usize) -> rusqlite::Result<Option<UserSummary>> {
    let Some(id) = row.get::<_, Option<i64>>(at)? else {
        return Ok(None);
    };
    Ok(Some(UserSummary {
        id: UserId(id),
        username: parsed(row, at + 1, Username::parse)?,
        email: parsed(row, at + 2, Email::parse)?,
        first_name: row.get(at + 3)?,
        last_name: row.get(at + 4)?,
        role: parsed(row, at + 5, str::parse::<Role>)?,
    }))
}

/// A user summary that must be there (an inner join).
pub(crate) fn summary(row: &Row<'_>, at: usize) -> rusqlite::Result<UserSummary> {
    opt_summary(row, at)?.ok_or_else(|| corrupt(row, at, Type::Null))
}
