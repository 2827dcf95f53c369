//! Fleet migrations: behind tenants are brought up, a failing tenant is
//! reported and skipped, and a rerun resumes where the last one stopped.

mod common;

use std::sync::Mutex;

use saas_core::store::{MigrationOutcome, MigrationProgress, Store};
use saas_core::tenancy::Tenant;
use saas_store_postgres::{PgConfig, PgStore, tenant_schema_name};

/// A database of its own: this test breaks tenants on purpose, and other
/// suites' migrate runs must never see them.
const DB: &str = "saas_test_migrate";

/// The newest tenant schema version.
const LATEST: i32 = 4;

/// Indexes added by tenant schema version 2.
const V2_INDEXES: &[&str] = &[
    "tasks_project_id",
    "tasks_assigned_to",
    "tasks_created_at",
    "project_members_user_id",
    "refresh_tokens_family",
];

async fn exec(store: &PgStore, sql: String) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(store.catalog_pool())
        .await
        .expect("exec");
}

async fn version(store: &PgStore, t: &Tenant) -> i32 {
    sqlx::query_scalar("SELECT version FROM saas_shared.tenant_schemas WHERE schema_name = $1")
        .bind(tenant_schema_name(t))
        .fetch_one(store.catalog_pool())
        .await
        .expect("ledger row")
}

/// Removes what tenant schema version 4 adds (its indexes, the tally
/// triggers and the tenant's tally rows).
async fn undo_v4(store: &PgStore, t: &Tenant) {
    let schema = tenant_schema_name(t);
    exec(
        store,
        format!(
            "DELETE FROM saas_shared.task_tally WHERE tasks_oid = '\"{schema}\".tasks'::regclass; \
             DROP FUNCTION \"{schema}\".tally_tasks() CASCADE; \
             DROP INDEX \"{schema}\".tasks_updated_at, \"{schema}\".tasks_open_due"
        ),
    )
    .await;
}

/// Puts a tenant back at version 1; with `drop_indexes` false its schema
/// still has version 2's indexes, so re-applying version 2 fails.
async fn set_back(store: &PgStore, t: &Tenant, drop_indexes: bool) {
    let schema = tenant_schema_name(t);
    if drop_indexes {
        undo_v4(store, t).await;
        let list: Vec<String> = V2_INDEXES
            .iter()
            .map(|i| format!("\"{schema}\".{i}"))
            .collect();
        exec(store, format!("DROP INDEX {}", list.join(", "))).await;
    }
    exec(
        store,
        format!("UPDATE saas_shared.tenant_schemas SET version = 1 WHERE schema_name = '{schema}'"),
    )
    .await;
}

async fn index_count(store: &PgStore, t: &Tenant) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = ANY($2)",
    )
    .bind(tenant_schema_name(t))
    .bind(V2_INDEXES)
    .fetch_one(store.catalog_pool())
    .await
    .expect("count indexes")
}

#[tokio::test]
async fn migrate_skips_failures_and_resumes() {
    if !common::reachable().await {
        return;
    }
    common::ensure_database(DB).await;
    let Some(store) = common::store_with(PgConfig::new(common::url_for(DB))).await else {
        return;
    };
    let (a, _) = common::tenant(&store).await;
    let (b, _) = common::tenant(&store).await;
    let (c, _) = common::tenant(&store).await;
    assert_eq!(
        version(&store, &a).await,
        LATEST,
        "provisioning records the newest version"
    );

    set_back(&store, &a, true).await;
    set_back(&store, &b, false).await;

    let seen = Mutex::new(Vec::<MigrationProgress>::new());
    let report = store
        .migrate(&|p| seen.lock().expect("lock").push(p))
        .await
        .expect("migrate runs");
    let seen = seen.into_inner().expect("lock");
    assert_eq!(seen.len() as u64, report.tenants);
    assert!(
        seen.iter()
            .enumerate()
            .all(|(i, p)| p.done == i as u64 + 1 && p.total == report.tenants)
    );
    for t in [&a, &b, &c] {
        assert!(
            seen.iter().any(|p| p.slug == t.slug.as_str()),
            "progress names {}",
            t.slug
        );
    }
    assert!(report.migrated >= 1);
    let failed: Vec<_> = report
        .failed
        .iter()
        .filter(|(s, _)| [&a, &b, &c].iter().any(|t| t.slug.as_str() == s))
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", report.failed);
    assert_eq!(failed[0].0, b.slug.as_str());
    assert!(
        failed[0].1.contains("already exists"),
        "the reason is kept: {}",
        failed[0].1
    );

    assert_eq!(
        (version(&store, &a).await, index_count(&store, &a).await),
        (LATEST, V2_INDEXES.len() as i64)
    );
    // The failed tenant's migration and ledger row rolled back together.
    assert_eq!(version(&store, &b).await, 1);
    assert_eq!(version(&store, &c).await, LATEST);

    // Repair and rerun: only the tenant left behind is migrated.
    set_back(&store, &b, true).await;
    let report = store.migrate(&|_| {}).await.expect("rerun");
    assert!(
        report.failed.iter().all(|(s, _)| s != b.slug.as_str()),
        "{:?}",
        report.failed
    );
    assert_eq!(version(&store, &b).await, LATEST);
    assert_eq!(index_count(&store, &b).await, V2_INDEXES.len() as i64);

    // Two migrators at once: each tenant is migrated exactly once.
    set_back(&store, &a, true).await;
    set_back(&store, &c, true).await;
    // Other tests' fleet migrations may run meanwhile on the shared test
    // database, so look at what these two runs did to `a` and `c` only.
    let ours = Mutex::new(Vec::<String>::new());
    let note = |p: MigrationProgress| {
        if p.outcome == MigrationOutcome::Migrated
            && (p.slug == a.slug.as_str() || p.slug == c.slug.as_str())
        {
            ours.lock().expect("lock").push(p.slug);
        }
    };
    let (r1, r2) = tokio::join!(store.migrate(&note), store.migrate(&note));
    let (r1, r2) = (r1.expect("first"), r2.expect("second"));
    for r in [&r1, &r2] {
        assert!(
            r.failed
                .iter()
                .all(|(s, _)| s != a.slug.as_str() && s != c.slug.as_str()),
            "{:?}",
            r.failed
        );
    }
    // Neither run migrated a tenant the other migrated too. (A third
    // migrator — another test — may have taken one of them; then these
    // runs saw it current.)
    let mut ours = ours.into_inner().expect("lock");
    let before = ours.len();
    ours.sort();
    ours.dedup();
    assert_eq!(ours.len(), before, "a tenant was migrated twice: {ours:?}");
    assert_eq!(
        (version(&store, &a).await, version(&store, &c).await),
        (LATEST, LATEST)
    );

    for t in [a, b, c] {
        store.delete_tenant(t.id).await.expect("cleanup");
    }
}

/// The access method of each of a tenant's version-2 indexes.
async fn index_methods(store: &PgStore, t: &Tenant) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT a.amname::text FROM pg_indexes i \
         JOIN pg_class c ON c.relname = i.indexname AND c.relnamespace = i.schemaname::regnamespace \
         JOIN pg_am a ON a.oid = c.relam \
         WHERE i.schemaname = $1 AND i.indexname = ANY($2) ORDER BY i.indexname",
    )
    .bind(tenant_schema_name(t))
    .bind(V2_INDEXES)
    .fetch_all(store.catalog_pool())
    .await
    .expect("index methods")
}

/// A tenant migrated to version 2 while it still made btree indexes gets
/// them rebuilt as hash by version 3; a current tenant is left alone.
#[tokio::test]
async fn version_3_rebuilds_equality_indexes_as_hash() {
    if !common::reachable().await {
        return;
    }
    common::ensure_database(DB).await;
    let Some(store) = common::store_with(PgConfig::new(common::url_for(DB))).await else {
        return;
    };
    let (t, _) = common::tenant(&store).await;
    let hash = |n: usize| std::iter::repeat_n("hash".to_owned(), n).collect::<Vec<_>>();
    let mut expected = hash(V2_INDEXES.len() - 1);
    expected.insert(3, "btree".to_owned()); // tasks_created_at, in name order
    assert_eq!(index_methods(&store, &t).await, expected);

    // Version 2 as it was first released.
    undo_v4(&store, &t).await;
    let schema = tenant_schema_name(&t);
    let list: Vec<String> = V2_INDEXES
        .iter()
        .map(|i| format!("\"{schema}\".{i}"))
        .collect();
    exec(&store, format!("DROP INDEX {}", list.join(", "))).await;
    exec(
        &store,
        format!(
            "CREATE INDEX tasks_project_id ON \"{schema}\".tasks (project_id); \
             CREATE INDEX tasks_assigned_to ON \"{schema}\".tasks (assigned_to); \
             CREATE INDEX tasks_created_at ON \"{schema}\".tasks (created_at DESC, id); \
             CREATE INDEX project_members_user_id ON \"{schema}\".project_members (user_id); \
             CREATE INDEX refresh_tokens_family ON \"{schema}\".refresh_tokens (family); \
             UPDATE saas_shared.tenant_schemas SET version = 2 WHERE schema_name = '{schema}'"
        ),
    )
    .await;
    assert!(index_methods(&store, &t).await.iter().all(|m| m == "btree"));
    let report = store.migrate(&|_| {}).await.expect("migrate");
    assert!(
        report.failed.iter().all(|(s, _)| s != t.slug.as_str()),
        "{:?}",
        report.failed
    );
    assert_eq!(version(&store, &t).await, LATEST);
    assert_eq!(index_methods(&store, &t).await, expected);
    store.delete_tenant(t.id).await.expect("cleanup");
}

/// Counts of every task of `t` by status and priority, and overdue as of
/// `now`, scanned from its tasks table: [total, s0..s3, p0..p3, overdue].
async fn scanned(store: &PgStore, t: &Tenant, now: chrono::DateTime<chrono::Utc>) -> Vec<u64> {
    let schema = tenant_schema_name(t);
    let row: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT ARRAY[count(*), count(*) FILTER (WHERE status = 0), count(*) FILTER (WHERE status = 1), \
         count(*) FILTER (WHERE status = 2), count(*) FILTER (WHERE status = 3), \
         count(*) FILTER (WHERE priority = 0), count(*) FILTER (WHERE priority = 1), \
         count(*) FILTER (WHERE priority = 2), count(*) FILTER (WHERE priority = 3), \
         count(*) FILTER (WHERE status <> 3 AND due_date < $1)] FROM \"{schema}\".tasks"
    )))
    .bind(now)
    .fetch_one(store.catalog_pool())
    .await
    .expect("scan");
    row.into_iter().map(|n| n as u64).collect()
}

fn flat(c: &saas_core::projects::TaskCounts) -> Vec<u64> {
    let mut v = vec![c.total];
    v.extend(c.by_status);
    v.extend(c.by_priority);
    v.push(c.overdue);
    v
}

/// Version 4 tallies the tasks a schema already holds, including those
/// written while no trigger kept the tally; the triggers keep it from then
/// on; deleting the tenant deletes its tally rows.
#[tokio::test]
async fn version_4_tallies_the_existing_tasks() {
    use saas_core::projects::{Scope, TaskQuery};
    use saas_core::store::PageRequest;
    if !common::reachable().await {
        return;
    }
    common::ensure_database(DB).await;
    let Some(store) = common::store_with(PgConfig::new(common::url_for(DB))).await else {
        return;
    };
    let (t, admin) = common::tenant(&store).await;
    let schema = tenant_schema_name(&t);
    undo_v4(&store, &t).await;
    exec(
        &store,
        format!(
            "UPDATE saas_shared.tenant_schemas SET version = 3 WHERE schema_name = '{schema}'; \
             INSERT INTO \"{schema}\".projects (name, description, status, owner_id, created_at, updated_at) \
             VALUES ('p', '', 0, {a}, now(), now()), ('q', '', 0, {a}, now(), now()); \
             INSERT INTO \"{schema}\".tasks (project_id, title, description, status, priority, \
                 assigned_to, created_by, due_date, completed_at, created_at, updated_at) \
             SELECT (SELECT min(id) FROM \"{schema}\".projects) + i % 2, 't' || i, '', \
                 (i % 4)::smallint, ((i / 4) % 4)::smallint, \
                 CASE WHEN i % 3 = 0 THEN NULL ELSE {a} END, {a}, \
                 CASE WHEN i % 5 = 0 THEN NULL ELSE now() + (i - 150) * interval '1 hour' END, \
                 NULL, now(), now() \
             FROM generate_series(1, 300) AS i",
            a = admin.id.0
        ),
    )
    .await;
    let now = common::now();
    let all = TaskQuery::new(Scope::All);
    // Not migrated yet (no tally rows, no triggers): still counted exactly,
    // from the tasks.
    {
        let behind = store.open(&t).await.expect("open at version 3");
        let counted = behind.task_counts(&all, now).await.expect("counts");
        assert_eq!(flat(&counted), scanned(&store, &t, now).await);
        assert_eq!(counted.total, 300);
        let listed = behind
            .list_tasks(&all, PageRequest::first())
            .await
            .expect("list");
        assert_eq!(listed.count, 300);
    }
    let report = store.migrate(&|_| {}).await.expect("migrate");
    assert!(
        report.failed.iter().all(|(s, _)| s != t.slug.as_str()),
        "{:?}",
        report.failed
    );
    assert_eq!(version(&store, &t).await, LATEST);

    // A store opened after the migration sums the tally.
    let store = common::store_with(PgConfig::new(common::url_for(DB)))
        .await
        .expect("store");
    let handle = store.open(&t).await.expect("open");
    let tally_rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM saas_shared.task_tally WHERE tasks_oid = '\"{schema}\".tasks'::regclass"
    )))
    .fetch_one(store.catalog_pool())
    .await
    .expect("tally rows");
    assert!(tally_rows > 0, "the migration filled the tally");
    let counted = handle.task_counts(&all, now).await.expect("counts");
    assert_eq!(flat(&counted), scanned(&store, &t, now).await);
    assert_eq!(counted.total, 300);
    let listed = handle
        .list_tasks(&all, PageRequest::first())
        .await
        .expect("list");
    assert_eq!(listed.count, 300);

    // Writes through the triggers: a cascading delete of one project.
    let projects = handle
        .list_projects(Scope::All, PageRequest::first())
        .await
        .expect("projects");
    let last = projects.items.first().expect("a project").id;
    handle.delete_project(last).await.expect("delete");
    let counted = handle.task_counts(&all, now).await.expect("counts");
    assert_eq!(flat(&counted), scanned(&store, &t, now).await);
    assert_eq!(counted.total, 150);

    let oid: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT '\"{schema}\".tasks'::regclass::oid::bigint"
    )))
    .fetch_one(store.catalog_pool())
    .await
    .expect("oid");
    store.delete_tenant(t.id).await.expect("cleanup");
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM saas_shared.task_tally WHERE tasks_oid = $1::bigint::oid",
    )
    .bind(oid)
    .fetch_one(store.catalog_pool())
    .await
    .expect("tally rows");
    assert_eq!(left, 0, "the tenant's tally rows went with it");
}
