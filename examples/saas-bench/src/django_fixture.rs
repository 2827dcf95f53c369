//! The same tenants, users and tasks as [`crate::fixture`], in the Django
//! seed: each company registered through its public `POST /api/register/`
//! (django-tenants makes and migrates its schema there), the rest inserted
//! into that schema in bulk, the way Django's models store them. Every
//! user gets the admin's password hash (PBKDF2 with a million iterations:
//! about half a second a user if computed).

use std::net::SocketAddr;

use sqlx::PgPool;

use crate::api;
use crate::error::Res;
use crate::fixture::Shape;
use crate::server::Who;
use crate::storage::PASSWORD;

/// A company of the seed ready for requests: its host and the ids the
/// profiles name.
#[derive(Debug, Clone)]
pub struct SeedTenant {
    /// `<schema>.localhost`.
    pub host: String,
    /// The project holding the tasks.
    pub project: i64,
    /// The admin (tenant owner, project owner).
    pub admin: i64,
    /// A member of the project.
    pub member: i64,
    /// Smallest and largest task id.
    pub task_ids: (i64, i64),
}

/// Registers `n` companies (`seed0`, `seed1`, ...: no underscores, which
/// Django refuses in a Host) in the seed at `addr` and fills each with
/// `shape` in the seed's database `pool`.
pub async fn seed_tenants(
    addr: SocketAddr,
    pool: &PgPool,
    n: usize,
    shape: Shape,
) -> Res<Vec<SeedTenant>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let schema = format!("seed{i}");
        let host = api::register(addr, &schema, PASSWORD).await?;
        out.push(fill(pool, &schema, host, shape).await?);
    }
    Ok(out)
}

/// Inserts `shape` into the freshly registered `schema`, in one
/// transaction.
async fn fill(pool: &PgPool, schema: &str, host: String, shape: Shape) -> Res<SeedTenant> {
    // `schema` is `seed<digits>`: safe to quote into SQL.
    let q = |sql: &str| sqlx::AssertSqlSafe(sql.replace("S.", &format!("\"{schema}\".")));
    let mut tx = pool.begin().await?;
    let (admin, hash): (i64, String) = sqlx::query_as(q(
        "SELECT id::bigint, password FROM S.auth_user WHERE username = 'admin'",
    ))
    .fetch_one(&mut *tx)
    .await?;
    let mut users = Vec::new();
    for i in 0..shape.users {
        let (name, role) = if i == 0 {
            ("manager".to_owned(), "manager")
        } else {
            (format!("member{i}"), "member")
        };
        let (id,): (i64,) = sqlx::query_as(q(
            "INSERT INTO S.auth_user (password, is_superuser, username, first_name, last_name, \
             email, is_staff, is_active, date_joined) \
             VALUES ($1, false, $2, 'Bench', $2, $2 || '@bench.localhost', false, true, now()) \
             RETURNING id::bigint",
        ))
        .bind(&hash)
        .bind(&name)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(q(
            "INSERT INTO S.core_userprofile (role, department, phone, created_at, updated_at, user_id) \
             VALUES ($1, 'Engineering', '', now(), now(), $2)",
        ))
        .bind(role)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        users.push(id);
    }
    let (project,): (i64,) = sqlx::query_as(q(
        "INSERT INTO S.core_project (name, description, status, start_date, end_date, \
         created_at, updated_at, owner_id) \
         VALUES ('Bench project', 'Where the benchmark''s tasks live', 'active', current_date, \
         NULL, now(), now(), $1) RETURNING id::bigint",
    ))
    .bind(admin)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(q(
        "INSERT INTO S.core_project_members (project_id, user_id) SELECT $1, unnest($2::bigint[])",
    ))
    .bind(project)
    .bind(&users)
    .execute(&mut *tx)
    .await?;
    // The tasks of `Env::bulk_tasks`, in Django's columns: statuses and
    // priorities cycle, every fifth unassigned, every seventh without a
    // due date, done tasks completed, creation times rising with the id.
    let mut assignees = vec![admin];
    assignees.extend(&users);
    let n = i64::try_from(shape.tasks)?;
    let (lo, hi): (Option<i64>, Option<i64>) = sqlx::query_as(q(
        "WITH t AS (INSERT INTO S.core_task (project_id, title, description, status, priority, \
         assigned_to_id, created_by_id, due_date, completed_at, created_at, updated_at) \
         SELECT $1, 'Task ' || i, 'Something to do for task ' || i || ', described at ordinary length.', \
         (ARRAY['todo', 'in_progress', 'review', 'done'])[1 + i % 4], \
         (ARRAY['low', 'medium', 'high', 'urgent'])[1 + (i / 4) % 4], \
         CASE WHEN i % 5 = 0 THEN NULL ELSE ($2::bigint[])[1 + (i / 5) % cardinality($2::bigint[])] END, \
         $3, \
         CASE WHEN i % 7 = 0 THEN NULL ELSE (now() + ((i % 30) - 10) * interval '1 day')::date END, \
         CASE WHEN i % 4 = 3 THEN now() - ($4 - i) * interval '1 second' END, \
         now() - ($4 - i) * interval '1 second', now() - ($4 - i) * interval '1 second' \
         FROM generate_series(1, $4::bigint) AS i RETURNING id) \
         SELECT min(id)::bigint, max(id)::bigint FROM t",
    ))
    .bind(project)
    .bind(&assignees)
    .bind(admin)
    .bind(n)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::raw_sql(q("ANALYZE S.core_task"))
        .execute(pool)
        .await?;
    Ok(SeedTenant {
        host,
        project,
        admin,
        member: users.get(1).or(users.first()).copied().unwrap_or(admin),
        task_ids: (lo.unwrap_or(0), hi.unwrap_or(0)),
    })
}

/// `who`'s access token in each tenant, from the seed's `POST /api/token/`
/// (one PBKDF2 verification each).
pub async fn seed_tokens(addr: SocketAddr, tenants: &[SeedTenant], who: Who) -> Res<Vec<String>> {
    let username = match who {
        Who::Admin => "admin",
        Who::Member => "member1",
    };
    let mut out = Vec::with_capacity(tenants.len());
    for t in tenants {
        out.push(api::login(addr, &t.host, username, PASSWORD).await?);
    }
    Ok(out)
}
