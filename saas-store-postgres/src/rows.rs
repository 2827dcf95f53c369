//! Decoding rows into domain types. A stored value that no longer parses is
//! reported as corrupt rather than trusted.

use chrono::{DateTime, Utc};
use saas_core::Result;
use saas_core::error::Error;
use saas_core::projects::{Priority, Project, ProjectId, ProjectStatus, Task, TaskId, TaskStatus};
use saas_core::store::{Page, Superuser};
use saas_core::tenancy::{Domain, Hostname, Slug, Tenant, TenantId, TenantName, TenantStatus};
use saas_core::users::{Email, Role, User, UserId, UserSummary, Username};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::error::{SqlxResultExt, corrupt};

fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get::<T, _>(column).db()
}

/// A page of catalog rows: `total` counted, `found` the page's rows.
pub(crate) fn tenant_page(total: i64, found: &[PgRow]) -> Result<Page<Tenant>> {
    Ok(Page {
        count: count(total)?,
        items: found.iter().map(tenant).collect::<Result<_>>()?,
    })
}

pub(crate) fn tenant(row: &PgRow) -> Result<Tenant> {
    let name: String = get(row, "name")?;
    let slug: String = get(row, "slug")?;
    let status: String = get(row, "status")?;
    let deleted_at: Option<DateTime<Utc>> = get(row, "deleted_at")?;
    Ok(Tenant {
        id: TenantId(get(row, "id")?),
        name: TenantName::parse(&name).map_err(|_| corrupt("tenants.name"))?,
        slug: Slug::parse(&slug).map_err(|_| corrupt("tenants.slug"))?,
        plan: get(row, "plan")?,
        // Deletion is the mark, over the status kept for a restore.
        status: match deleted_at {
            Some(_) => TenantStatus::Deleted,
            None => status
                .parse::<TenantStatus>()
                .map_err(|_| corrupt("tenants.status"))?,
        },
        database: get(row, "database")?,
        created_at: get(row, "created_at")?,
        deleted_at,
    })
}

pub(crate) fn domain(row: &PgRow) -> Result<Domain> {
    let hostname: String = get(row, "hostname")?;
    Ok(Domain {
        hostname: Hostname::parse(&hostname).map_err(|_| corrupt("domains.hostname"))?,
        tenant_id: TenantId(get(row, "tenant_id")?),
        is_primary: get(row, "is_primary")?,
    })
}

pub(crate) fn superuser(row: &PgRow) -> Result<Superuser> {
    let username: String = get(row, "username")?;
    let email: String = get(row, "email")?;
    Ok(Superuser {
        id: get(row, "id")?,
        username: Username::parse(&username).map_err(|_| corrupt("superusers.username"))?,
        email: Email::parse(&email).map_err(|_| corrupt("superusers.email"))?,
        created_at: get(row, "created_at")?,
        is_active: get(row, "is_active")?,
        token_version: get(row, "token_version")?,
    })
}

fn username(value: &str) -> Result<Username> {
    Username::parse(value).map_err(|_| corrupt("users.username"))
}

fn email(value: &str) -> Result<Email> {
    Email::parse(value).map_err(|_| corrupt("users.email"))
}

fn role(value: &str) -> Result<Role> {
    value.parse::<Role>().map_err(|_| corrupt("users.role"))
}

pub(crate) fn user(row: &PgRow) -> Result<User> {
    Ok(User {
        id: UserId(get(row, "id")?),
        username: username(&get::<String>(row, "username")?)?,
        email: email(&get::<String>(row, "email")?)?,
        first_name: get(row, "first_name")?,
        last_name: get(row, "last_name")?,
        role: role(&get::<String>(row, "role")?)?,
        department: get(row, "department")?,
        is_active: get(row, "is_active")?,
        is_owner: get(row, "is_owner")?,
        last_login: get(row, "last_login")?,
        date_joined: get(row, "date_joined")?,
        token_version: get(row, "token_version")?,
    })
}

/// The summary under `alias`, or `None` when its id is NULL (outer join).
pub(crate) fn summary(row: &PgRow, alias: &str) -> Result<Option<UserSummary>> {
    let col = |c: &str| format!("{alias}_{c}");
    let Some(id) = get::<Option<i64>>(row, &col("id"))? else {
        return Ok(None);
    };
    Ok(Some(UserSummary {
        id: UserId(id),
        username: username(&get::<String>(row, &col("username"))?)?,
        email: email(&get::<String>(row, &col("email"))?)?,
        first_name: get(row, &col("first_name"))?,
        last_name: get(row, &col("last_name"))?,
        role: role(&get::<String>(row, &col("role"))?)?,
    }))
}

fn rank<T>(row: &PgRow, column: &'static str, from: fn(i64) -> Option<T>) -> Result<T> {
    let value: i16 = get(row, column)?;
    from(i64::from(value)).ok_or_else(|| corrupt(column))
}

/// A project row (columns `p_*`) joined with its owner (alias `o`) and its
/// members (one array per field, `m_*`, NULL without members).
pub(crate) fn project(row: &PgRow) -> Result<Project> {
    Ok(Project {
        id: ProjectId(get(row, "p_id")?),
        name: get(row, "p_name")?,
        description: get(row, "p_description")?,
        status: rank(row, "p_status", ProjectStatus::from_rank)?,
        start_date: get(row, "p_start_date")?,
        end_date: get(row, "p_end_date")?,
        owner: summary(row, "o")?.ok_or_else(|| corrupt("projects.owner_id"))?,
        members: members(row)?,
        created_at: get(row, "p_created_at")?,
        updated_at: get(row, "p_updated_at")?,
    })
}

/// A project row as [`project`] reads it, or `None` when its id is NULL
/// (outer join).
pub(crate) fn project_opt(row: &PgRow) -> Result<Option<Project>> {
    match get::<Option<i64>>(row, "p_id")? {
        Some(_) => project(row).map(Some),
        None => Ok(None),
    }
}

/// A user row as [`user`] reads it, or `None` when its id is NULL (outer
/// join).
pub(crate) fn user_opt(row: &PgRow) -> Result<Option<User>> {
    match get::<Option<i64>>(row, "id")? {
        Some(_) => user(row).map(Some),
        None => Ok(None),
    }
}

/// The members of a project row: the arrays `m_*`, one element per member.
fn members(row: &PgRow) -> Result<Vec<UserSummary>> {
    let Some(ids) = get::<Option<Vec<i64>>>(row, "m_id")? else {
        return Ok(Vec::new());
    };
    let n = ids.len();
    let texts = |c: &str| -> Result<Vec<String>> {
        let found: Vec<String> = get::<Option<Vec<String>>>(row, c)?.unwrap_or_default();
        if found.len() == n {
            Ok(found)
        } else {
            Err(corrupt("project_members"))
        }
    };
    let fields = ids
        .into_iter()
        .zip(texts("m_username")?)
        .zip(texts("m_email")?)
        .zip(texts("m_first_name")?)
        .zip(texts("m_last_name")?)
        .zip(texts("m_role")?);
    fields
        .map(|(((((id, name), mail), first_name), last_name), r)| {
            Ok(UserSummary {
                id: UserId(id),
                username: username(&name)?,
                email: email(&mail)?,
                first_name,
                last_name,
                role: role(&r)?,
            })
        })
        .collect()
}

/// A task row joined with its assignee (alias `a`) and creator (alias `c`).
pub(crate) fn task(row: &PgRow) -> Result<Task> {
    Ok(Task {
        id: TaskId(get(row, "id")?),
        project_id: ProjectId(get(row, "project_id")?),
        title: get(row, "title")?,
        description: get(row, "description")?,
        status: rank(row, "status", TaskStatus::from_rank)?,
        priority: rank(row, "priority", Priority::from_rank)?,
        assigned_to: summary(row, "a")?,
        created_by: summary(row, "c")?.ok_or_else(|| corrupt("tasks.created_by"))?,
        due_date: get::<Option<DateTime<Utc>>>(row, "due_date")?,
        completed_at: get(row, "completed_at")?,
        started_at: get(row, "started_at")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

/// A row read by `read` with its `password_hash` column, if there is a row:
/// what a credentials lookup answers.
pub(crate) fn with_password_hash<T>(
    row: Option<PgRow>,
    read: fn(&PgRow) -> Result<T>,
) -> Result<Option<(T, String)>> {
    row.map(|row| Ok((read(&row)?, get(&row, "password_hash")?)))
        .transpose()
}

/// A count from the database as the `u64` the core wants.
pub(crate) fn count(value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| Error::backend(crate::PgError::OutOfRange { what: "count" }))
}

/// An enum rank as the `smallint` it is stored as.
pub(crate) fn small(rank: i64) -> i16 {
    // Ranks are positions in enums of at most five values.
    i16::try_from(rank).unwrap_or(i16::MAX)
}
