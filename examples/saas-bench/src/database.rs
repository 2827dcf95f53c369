//! The PostgreSQL databases benchmarks run in: their own, created when
//! missing, so the test database is never flooded.

use sqlx::{Connection, PgConnection};

use crate::error::Res;

/// Splits a URL into (server URL with the `postgres` maintenance database,
/// database name); the name must be lowercase letters, digits and
/// underscores, so it can be quoted into `CREATE DATABASE`.
fn split_url(url: &str) -> Res<(String, String)> {
    let (head, tail) = url.rsplit_once('/').ok_or("database URL has no path")?;
    let name = tail.split('?').next().unwrap_or_default().to_owned();
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        return Err(
            "benchmark database name must be lowercase letters, digits and underscores".into(),
        );
    }
    Ok((format!("{head}/postgres"), name))
}

/// Creates the database `url` names when it is missing; with `fresh`,
/// drops it first (closing its connections).
pub async fn prepare(url: &str, fresh: bool) -> Res<()> {
    let (server, name) = split_url(url)?;
    let mut conn = PgConnection::connect(&server).await?;
    if fresh {
        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await?;
    }
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_optional(&mut conn)
        .await?;
    if exists.is_none() {
        let sql = format!("CREATE DATABASE \"{name}\"");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await?;
    }
    Ok(())
}
