//! `saas-import-django`: the Django seed's tables as a
//! [`saas_core::import::ImportSource`].
//!
//! It knows django-tenants' layout and nothing of HTTP or of our storage:
//! the public schema's `tenants_company` and `tenants_domain`, and in each
//! company's schema `auth_user`, `core_userprofile`, `core_project`,
//! `core_project_members` and `core_task`. Each company is read in one
//! read-only, repeatable-read transaction, so its rows are one consistent
//! snapshot even while the Django side keeps serving.
//!
//! ```no_run
//! # async fn demo(saas: saas_core::Saas) -> saas_core::Result<()> {
//! let source = saas_import_django::DjangoSource::connect("postgres://saas:saas@127.0.0.1/saas").await?;
//! let report = saas.import(&source, &|p| println!("{}/{} {}", p.done, p.total, p.schema)).await?;
//! assert!(report.all_verified());
//! # Ok(()) }
//! ```

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use saas_core::error::{Error, Result};
use saas_core::import::{
    ImportSource, SourceCompany, SourceDomain, SourceProject, SourceTask, SourceTenant, SourceUser,
};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Row};

/// A failure reading the Django database.
#[derive(Debug, thiserror::Error)]
#[error("reading the Django database: {0}")]
pub struct SourceError(#[from] sqlx::Error);

fn db(e: sqlx::Error) -> Error {
    Error::backend(SourceError(e))
}

/// A Django deployment's PostgreSQL database, read-only.
#[derive(Debug, Clone)]
pub struct DjangoSource {
    pool: PgPool,
}

impl DjangoSource {
    /// Connects to the Django database at `url` (`postgres://…`).
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(url)
            .await
            .map_err(db)?;
        Ok(DjangoSource { pool })
    }

    /// A source over an existing pool.
    pub fn new(pool: PgPool) -> Self {
        DjangoSource { pool }
    }
}

/// `name` as a quoted PostgreSQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn user(r: &PgRow) -> sqlx::Result<SourceUser> {
    Ok(SourceUser {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        email: r.try_get("email")?,
        password: r.try_get("password")?,
        first_name: r.try_get("first_name")?,
        last_name: r.try_get("last_name")?,
        is_active: r.try_get("is_active")?,
        last_login: r.try_get::<Option<DateTime<Utc>>, _>("last_login")?,
        date_joined: r.try_get("date_joined")?,
        role: r.try_get("role")?,
        department: r.try_get("department")?,
    })
}

fn project(r: &PgRow) -> sqlx::Result<SourceProject> {
    Ok(SourceProject {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        status: r.try_get("status")?,
        start_date: r.try_get::<Option<NaiveDate>, _>("start_date")?,
        end_date: r.try_get("end_date")?,
        owner_id: r.try_get("owner_id")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn task(r: &PgRow) -> sqlx::Result<SourceTask> {
    Ok(SourceTask {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        title: r.try_get("title")?,
        description: r.try_get("description")?,
        status: r.try_get("status")?,
        priority: r.try_get("priority")?,
        assigned_to: r.try_get("assigned_to_id")?,
        created_by: r.try_get("created_by_id")?,
        due_date: r.try_get("due_date")?,
        completed_at: r.try_get("completed_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Reads every row of `sql` through `map`.
fn rows<T>(found: Vec<PgRow>, map: fn(&PgRow) -> sqlx::Result<T>) -> Result<Vec<T>> {
    found
        .iter()
        .map(map)
        .collect::<sqlx::Result<_>>()
        .map_err(db)
}

#[async_trait]
impl ImportSource for DjangoSource {
    async fn companies(&self) -> Result<Vec<SourceCompany>> {
        let found = sqlx::query(
            "SELECT id::bigint AS id, schema_name, name, subscription_plan, is_active, created_on \
             FROM public.tenants_company ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows(found, |r| {
            Ok(SourceCompany {
                id: r.try_get("id")?,
                schema_name: r.try_get("schema_name")?,
                name: r.try_get("name")?,
                subscription_plan: r.try_get("subscription_plan")?,
                is_active: r.try_get("is_active")?,
                created_on: r.try_get("created_on")?,
            })
        })
    }

    async fn domains(&self) -> Result<Vec<SourceDomain>> {
        let found = sqlx::query(
            "SELECT id::bigint AS id, domain, tenant_id::bigint AS tenant_id, is_primary FROM public.tenants_domain ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows(found, |r| {
            Ok(SourceDomain {
                id: r.try_get("id")?,
                domain: r.try_get("domain")?,
                tenant_id: r.try_get("tenant_id")?,
                is_primary: r.try_get("is_primary")?,
            })
        })
    }

    async fn tenant(&self, company: &SourceCompany) -> Result<SourceTenant> {
        let s = quote_ident(&company.schema_name);
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let mut fetch = async |sql: String| {
            sqlx::query(AssertSqlSafe(sql))
                .persistent(false)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)
        };
        let users = fetch(format!(
            "SELECT u.id::bigint AS id, u.username, u.email, u.password, u.first_name, u.last_name, u.is_active, \
             u.last_login, u.date_joined, p.role, coalesce(p.department, '') AS department \
             FROM {s}.auth_user u LEFT JOIN {s}.core_userprofile p ON p.user_id = u.id ORDER BY u.id"
        ))
        .await?;
        let projects = fetch(format!(
            "SELECT id::bigint AS id, name, description, status, start_date, end_date, \
             owner_id::bigint AS owner_id, created_at, updated_at FROM {s}.core_project ORDER BY id"
        ))
        .await?;
        let members = fetch(format!(
            "SELECT project_id::bigint AS project_id, user_id::bigint AS user_id FROM {s}.core_project_members ORDER BY project_id, user_id"
        ))
        .await?;
        let tasks = fetch(format!(
            "SELECT id::bigint AS id, project_id::bigint AS project_id, title, description, status, \
             priority, assigned_to_id::bigint AS assigned_to_id, created_by_id::bigint AS created_by_id, due_date, completed_at, created_at, updated_at \
             FROM {s}.core_task ORDER BY id"
        ))
        .await?;
        tx.rollback().await.map_err(db)?;
        Ok(SourceTenant {
            users: rows(users, user)?,
            projects: rows(projects, project)?,
            members: rows(members, |r| {
                Ok((r.try_get("project_id")?, r.try_get::<i64, _>("user_id")?))
            })?,
            tasks: rows(tasks, task)?,
        })
    }
}
