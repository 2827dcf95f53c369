//! Shared helpers of this crate's integration tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use saas_core::store::Store;
use saas_core::tenancy::{Hostname, NewTenant, Slug, Tenant, TenantId, TenantName};
use saas_core::users::{Email, NewUserRecord, Role, User, Username};
use saas_store_postgres::{PgConfig, PgStore, Routing};
use sqlx::{Connection, PgConnection};

/// The test database URL (env `SAAS_TEST_DATABASE_URL`).
pub fn url() -> String {
    std::env::var("SAAS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// `url()` with its database replaced by `db`.
pub fn url_for(db: &str) -> String {
    let base = url();
    let (head, _) = base.rsplit_once('/').expect("a database URL has a path");
    format!("{head}/{db}")
}

fn required() -> bool {
    std::env::var("SAAS_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// Whether PostgreSQL answers; prints a note (or panics when required) if not.
pub async fn reachable() -> bool {
    let ok = tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&url()))
        .await
        .is_ok_and(|r| r.is_ok());
    if !ok {
        if required() {
            panic!(
                "PostgreSQL at {} is unreachable and SAAS_REQUIRE_POSTGRES=1",
                url()
            );
        }
        eprintln!("note: PostgreSQL at {} is unreachable; skipping", url());
    }
    ok
}

/// A store on the test database, or `None` (skip) when PostgreSQL is not there.
pub async fn store_with(config: PgConfig) -> Option<PgStore> {
    if !reachable().await {
        return None;
    }
    Some(
        PgStore::connect(config)
            .await
            .expect("connect to the test database"),
    )
}

/// A store with the default settings and `routing`.
pub async fn store(routing: Routing) -> Option<PgStore> {
    store_with(PgConfig::new(url()).with_routing(routing)).await
}

/// Creates database `name` if missing, tolerating a concurrent creator.
pub async fn ensure_database(name: &str) {
    let mut conn = PgConnection::connect(&url()).await.expect("connect");
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut conn)
        .await
        .expect("query pg_database");
    if exists.is_none() {
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        );
        let sql = format!("CREATE DATABASE \"{name}\"");
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
        {
            let code = e
                .as_database_error()
                .and_then(|d| d.code())
                .map(|c| c.into_owned());
            // 42P04: it exists; 23505: a concurrent CREATE DATABASE won the race.
            assert!(
                matches!(code.as_deref(), Some("42P04") | Some("23505")),
                "create database: {e}"
            );
        }
    }
}

/// Drops database `name` (test cleanup).
pub async fn drop_database(name: &str) {
    let mut conn = PgConnection::connect(&url()).await.expect("connect");
    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .expect("drop database");
}

/// A fresh random slug.
pub fn slug() -> Slug {
    let mut s = format!("t_{}", uuid::Uuid::new_v4().simple());
    s.truncate(Slug::MAX_LEN);
    Slug::parse(&s).expect("valid slug")
}

/// Now, truncated to microseconds like every time the service hands over.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A new tenant with a fresh slug and hostname.
pub fn new_tenant() -> NewTenant {
    let slug = slug();
    NewTenant {
        id: TenantId::new(),
        name: TenantName::parse("Acme Corp").expect("name"),
        domain: Hostname::parse(&format!(
            "{}.test.localhost",
            slug.as_str().replace('_', "-")
        ))
        .expect("hostname"),
        slug,
        plan: "basic".to_owned(),
        created_at: now(),
    }
}

/// A user record (the hash is a placeholder: hashing is the service's job).
pub fn new_user(username: &str, role: Role) -> NewUserRecord {
    NewUserRecord {
        username: Username::parse(username).expect("username"),
        email: Email::parse(&format!("{username}@example.com")).expect("email"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
            .to_owned(),
        first_name: "First".to_owned(),
        last_name: "Last".to_owned(),
        role,
        department: String::new(),
        is_owner: false,
        date_joined: now(),
    }
}

/// Creates a tenant with an owner admin.
pub async fn tenant(store: &PgStore) -> (Tenant, User) {
    let mut admin = new_user("admin", Role::Admin);
    admin.is_owner = true;
    store
        .create_tenant(&new_tenant(), &admin)
        .await
        .expect("create tenant")
}

/// Whether any tenant schema of `slug` (`t_<slug>_<12 hex digits>`, whatever
/// the tenant id) exists in the database at `url`.
pub async fn schema_exists(url: &str, slug: &Slug) -> bool {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    // A slug is [a-z0-9_]: nothing in it means anything to a regex.
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM pg_namespace WHERE nspname ~ $1 LIMIT 1")
            .bind(format!("^t_{}_[0-9a-f]{{12}}$", slug.as_str()))
            .fetch_optional(&mut conn)
            .await
            .expect("query pg_namespace");
    found.is_some()
}
