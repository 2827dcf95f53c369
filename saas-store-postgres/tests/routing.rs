//! Routing isolation on a pooled connection: after any unit of work the next
//! user of the connection inherits nothing from the previous tenant.

use saas_core::projects::{Scope, TaskQuery};
use saas_core::store::{PageRequest, Store};
use saas_store_postgres::{PgConfig, PgStore, Routing};
use sqlx::Row;
use testkit::{pg, records};

async fn assert_clean(store: &PgStore, slugs: &[&str]) {
    // The store's one tenant sub-pool has a single connection: this is the
    // one both tenants' handles just used.
    let pool = &store.tenant_pools()[0];
    let row = sqlx::query(
        "SELECT current_setting('search_path') AS path, current_schemas(false)::text AS schemas",
    )
    .fetch_one(pool)
    .await
    .expect("inspect session");
    let path: String = row.get("path");
    let schemas: String = row.get("schemas");
    for slug in slugs {
        assert!(!path.contains(slug), "search_path leaked: {path}");
        assert!(!schemas.contains(slug), "current_schemas leaked: {schemas}");
    }
    // SAVEPOINT outside a transaction block fails with 25P01: proof none is open.
    let err = sqlx::raw_sql("SAVEPOINT leak_check")
        .execute(pool)
        .await
        .expect_err("no transaction was left open");
    assert_eq!(
        err.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("25P01")
    );
    // Unqualified tenant tables do not resolve on the bare connection.
    let err = sqlx::query("SELECT count(*) FROM projects")
        .fetch_one(pool)
        .await
        .expect_err("no tenant table is visible");
    assert_eq!(
        err.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("42P01")
    );
}

async fn no_tenant_is_inherited(routing: Routing, pooler: bool) {
    let config = PgConfig::new(pg::url())
        .with_routing(routing)
        .with_transaction_pooler(pooler)
        .with_max_connections(1)
        .with_tenant_subpools(1);
    let Some(store) = pg::store_with(config).await else {
        return;
    };
    let (ta, admin_a) = records::tenant(&store).await;
    let (tb, admin_b) = records::tenant(&store).await;
    let a = store.open(&ta).await.expect("open a");
    let b = store.open(&tb).await.expect("open b");
    let slugs = [ta.slug.as_str(), tb.slug.as_str()];

    a.create_project(&records::project_record("alpha", admin_a.id), Some(5))
        .await
        .expect("a writes");
    assert_clean(&store, &slugs).await;
    let seen = a
        .list_projects(Scope::All, PageRequest::first())
        .await
        .expect("a reads");
    assert_eq!(
        seen.items
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["alpha"]
    );
    assert_clean(&store, &slugs).await;

    let seen = b
        .list_projects(Scope::All, PageRequest::first())
        .await
        .expect("b reads");
    assert_eq!(seen.count, 0, "b sees none of a's projects");
    b.create_project(&records::project_record("beta", admin_b.id), None)
        .await
        .expect("b writes");
    let seen = b
        .list_projects(Scope::All, PageRequest::first())
        .await
        .expect("b reads");
    assert_eq!(
        seen.items
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["beta"]
    );
    assert_clean(&store, &slugs).await;

    // Task counts come from a table shared by every tenant schema of the
    // database: on one connection, alternating tenants, each sees its own.
    let pa = a
        .list_projects(Scope::All, PageRequest::first())
        .await
        .expect("a reads")
        .items[0]
        .id;
    let pb = seen.items[0].id;
    a.create_task(&records::task_record(pa, "t", admin_a.id), None)
        .await
        .expect("a writes a task");
    for _ in 0..2 {
        b.create_task(&records::task_record(pb, "t", admin_b.id), None)
            .await
            .expect("b writes a task");
    }
    for _ in 0..2 {
        for (handle, expected) in [(&a, 1), (&b, 2)] {
            let all = TaskQuery::new(Scope::All);
            let counts = handle
                .task_counts(&all, records::now())
                .await
                .expect("counts");
            assert_eq!(counts.total, expected);
            let listed = handle
                .list_tasks(&all, PageRequest::first())
                .await
                .expect("list");
            assert_eq!(listed.count, expected);
            assert_clean(&store, &slugs).await;
        }
    }

    // A failed unit of work (a conflict inside a transaction) leaves nothing either.
    let dup = records::user_record("admin", saas_core::users::Role::Admin);
    a.create_user(&dup, Some(5)).await.expect_err("duplicate");
    assert_clean(&store, &slugs).await;
    let seen = b
        .list_projects(Scope::All, PageRequest::first())
        .await
        .expect("b reads");
    assert_eq!(
        seen.items
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["beta"]
    );
    assert_eq!(a.count_users().await.expect("a counts"), 1);
    assert_eq!(b.count_users().await.expect("b counts"), 1);
    assert_clean(&store, &slugs).await;

    store.purge_tenant(ta.id, None).await.expect("cleanup");
    store.purge_tenant(tb.id, None).await.expect("cleanup");
}

#[tokio::test]
async fn qualified_sql_leaves_no_session_state() {
    no_tenant_is_inherited(Routing::QualifiedSql, false).await;
}

#[tokio::test]
async fn qualified_unnamed_leaves_no_session_state() {
    no_tenant_is_inherited(Routing::QualifiedUnnamed, false).await;
}

#[tokio::test]
async fn qualified_prepared_leaves_no_session_state() {
    no_tenant_is_inherited(Routing::QualifiedPrepared, false).await;
}

#[tokio::test]
async fn set_local_search_path_leaves_no_session_state() {
    no_tenant_is_inherited(Routing::SetLocalSearchPath, false).await;
}

#[tokio::test]
async fn pooler_mode_leaves_no_session_state() {
    no_tenant_is_inherited(Routing::QualifiedSql, true).await;
    no_tenant_is_inherited(Routing::SetLocalSearchPath, true).await;
}

/// Pooler mode names no prepared statement, ever: the server holds none
/// for this store's connection after a full round of store calls.
#[tokio::test]
async fn pooler_mode_prepares_no_named_statement() {
    let config = PgConfig::new(pg::url())
        .with_transaction_pooler(true)
        .with_max_connections(1)
        .with_tenant_subpools(1);
    let Some(store) = pg::store_with(config).await else {
        return;
    };
    let (t, admin) = records::tenant(&store).await;
    let h = store.open(&t).await.expect("open");
    h.create_project(&records::project_record("alpha", admin.id), Some(5))
        .await
        .expect("write");
    h.list_projects(Scope::All, PageRequest::first())
        .await
        .expect("read");
    store.tenant(t.id).await.expect("catalog read");
    for pool in [store.catalog_pool(), &store.tenant_pools()[0]] {
        let named: Vec<String> = sqlx::query_scalar("SELECT statement FROM pg_prepared_statements")
            .persistent(false)
            .fetch_all(pool)
            .await
            .expect("inspect");
        assert!(named.is_empty(), "{named:#?}");
    }
    store.purge_tenant(t.id, None).await.expect("cleanup");
}

/// The default prepares the statements of busy tenants only: a tenant
/// seen once runs unnamed and leaves nothing on the connection, even when
/// that one request runs many statements.
#[tokio::test]
async fn default_routing_prepares_busy_tenants_only() {
    let config = PgConfig::new(pg::url())
        .with_max_connections(1)
        .with_tenant_subpools(1);
    let Some(store) = pg::store_with(config).await else {
        return;
    };
    let (busy, _) = records::tenant(&store).await;
    let (once, _) = records::tenant(&store).await;
    // Ten requests, each opening its handle.
    for _ in 0..10 {
        let b = store.open(&busy).await.expect("open busy");
        b.count_users().await.expect("busy counts");
    }
    let o = store.open(&once).await.expect("open once");
    for _ in 0..10 {
        o.count_users().await.expect("counted in one request");
    }
    let named: Vec<String> = sqlx::query_scalar("SELECT statement FROM pg_prepared_statements")
        .persistent(false)
        .fetch_all(&store.tenant_pools()[0])
        .await
        .expect("inspect");
    let of = |t: &saas_core::tenancy::Tenant| {
        let schema = saas_store_postgres::tenant_schema_name(t);
        named.iter().filter(|s| s.contains(&schema)).count()
    };
    assert_eq!(of(&busy), 1, "{named:#?}");
    assert_eq!(of(&once), 0, "{named:#?}");
    store.purge_tenant(busy.id, None).await.expect("cleanup");
    store.purge_tenant(once.id, None).await.expect("cleanup");
}
