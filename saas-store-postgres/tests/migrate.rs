//! Fleet migrations: behind tenants are brought up, a failing tenant is
//! reported and skipped, and a rerun resumes where the last one stopped.

use std::sync::Mutex;

use saas_core::store::{MigrationOutcome, MigrationProgress, Store};
use saas_core::tenancy::Tenant;
use saas_store_postgres::{PgConfig, PgStore, tenant_migration_step_sql, tenant_schema_name};
use testkit::{pg, records};

/// A database of its own: this test breaks tenants on purpose, and other
/// suites' migrate runs must never see them.
const DB: &str = "saas_test_migrate";

/// A database of its own for the failing-and-resuming run: it counts the
/// tenants its own migrate run brings forward, which another test's
/// migrate run in the same database could bring forward first.
const DB_RESUME: &str = "saas_test_migrate_resume";

/// A database of its own for the tenant put back at version 4: no other
/// test's migrate run brings it up before this test does.
const DB_V4: &str = "saas_test_migrate_v4";

/// A database of its own for the tenant deletions: no migrate run there,
/// so a tenant put back at version 4 stays there until it is deleted.
const DB_DROP: &str = "saas_test_tally_drop";

/// A database of its own for the rolling-deploy tests: their stores
/// withhold migrations, or see versions changed by hand.
const DB_ROLLING: &str = "saas_test_rolling";
/// Database of the test of the tally functions' names (it runs a shared
/// migration again, which renames functions in every tenant schema).
const DB_TALLY_NAMES: &str = "saas_test_tally_names";

/// The newest tenant schema version.
const LATEST: i32 = 6;

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

/// The name a tenant's tally trigger function has once made:
/// `tally_tasks_` and the 12 digits ending its schema's name.
fn tally_function(schema: &str) -> String {
    format!("tally_tasks_{}", &schema[schema.len() - 12..])
}

/// The names of the functions in `schema`.
async fn functions(store: &PgStore, schema: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = $1 ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(store.catalog_pool())
    .await
    .expect("functions")
}

async fn version(store: &PgStore, t: &Tenant) -> i32 {
    sqlx::query_scalar("SELECT version FROM saas_shared.tenant_schemas WHERE schema_name = $1")
        .bind(tenant_schema_name(t))
        .fetch_one(store.catalog_pool())
        .await
        .expect("ledger row")
}

/// Removes what tenant schema versions 6, 5 and 4 add (`started_at` with
/// its index and trigger, the tenant's tally table, its rows of the shared
/// one, the tally triggers and version 4's indexes).
async fn undo_v4(store: &PgStore, t: &Tenant) {
    let schema = tenant_schema_name(t);
    let tally = tally_function(&schema);
    exec(
        store,
        format!(
            "DROP TRIGGER IF EXISTS task_started ON \"{schema}\".tasks; \
             DROP INDEX IF EXISTS \"{schema}\".tasks_started_at; \
             ALTER TABLE \"{schema}\".tasks DROP COLUMN IF EXISTS started_at; \
             DROP TABLE IF EXISTS \"{schema}\".task_tally; \
             DELETE FROM saas_shared.task_tally WHERE tasks_oid = '\"{schema}\".tasks'::regclass; \
             DROP FUNCTION IF EXISTS \"{schema}\".tally_tasks() CASCADE; \
             DROP FUNCTION IF EXISTS \"{schema}\".\"{tally}\"() CASCADE; \
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
    if !pg::available().await {
        return;
    }
    pg::ensure_database(DB_RESUME).await;
    let Some(store) = pg::store_with(PgConfig::new(pg::url_for(DB_RESUME))).await else {
        return;
    };
    let (a, _) = records::tenant(&store).await;
    let (b, _) = records::tenant(&store).await;
    let (c, _) = records::tenant(&store).await;
    assert_eq!(
        version(&store, &a).await,
        LATEST,
        "provisioning records the newest version"
    );

    // Tenants behind are pending migrations (`/readyz` reports them);
    // counted as a difference: a failed earlier run may have left some.
    let pending = store.pending_migrations().await.expect("pending");
    set_back(&store, &a, true).await;
    set_back(&store, &b, false).await;
    assert_eq!(
        store.pending_migrations().await.expect("pending"),
        pending + 2
    );

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

    // The failed tenant is still pending.
    assert_eq!(
        store.pending_migrations().await.expect("pending"),
        pending + 1
    );
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
        store.purge_tenant(t.id, None).await.expect("cleanup");
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
    if !pg::available().await {
        return;
    }
    pg::ensure_database(DB).await;
    let Some(store) = pg::store_with(PgConfig::new(pg::url_for(DB))).await else {
        return;
    };
    let (t, _) = records::tenant(&store).await;
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
    store.purge_tenant(t.id, None).await.expect("cleanup");
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

/// Puts a tenant (provisioned at the newest version) back at version 4:
/// versions 6 and 5 undone, version 4 applied again, the ledger at 4.
async fn back_to_v4(store: &PgStore, t: &Tenant) {
    let schema = tenant_schema_name(t);
    undo_v4(store, t).await;
    let v4 = tenant_migration_step_sql(t, 4).expect("version 4 exists");
    exec(
        store,
        format!(
            "{v4} UPDATE saas_shared.tenant_schemas SET version = 4 WHERE schema_name = '{schema}'"
        ),
    )
    .await;
}

/// Two projects of `t` and 300 tasks over them (statuses, priorities,
/// assignees, due dates all mixed), written in one statement.
async fn seed_tasks(store: &PgStore, t: &Tenant, admin: i64) {
    let schema = tenant_schema_name(t);
    exec(
        store,
        format!(
            "INSERT INTO \"{schema}\".projects (name, description, status, owner_id, created_at, updated_at) \
             VALUES ('p', '', 0, {admin}, now(), now()), ('q', '', 0, {admin}, now(), now()); \
             INSERT INTO \"{schema}\".tasks (project_id, title, description, status, priority, \
                 assigned_to, created_by, due_date, completed_at, created_at, updated_at) \
             SELECT (SELECT min(id) FROM \"{schema}\".projects) + i % 2, 't' || i, '', \
                 (i % 4)::smallint, ((i / 4) % 4)::smallint, \
                 CASE WHEN i % 3 = 0 THEN NULL ELSE {admin} END, {admin}, \
                 CASE WHEN i % 5 = 0 THEN NULL ELSE now() + (i - 150) * interval '1 hour' END, \
                 NULL, now(), now() \
             FROM generate_series(1, 300) AS i"
        ),
    )
    .await;
}

/// The oid of `t`'s tasks table.
async fn tasks_oid(store: &PgStore, t: &Tenant) -> i64 {
    let schema = tenant_schema_name(t);
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT '\"{schema}\".tasks'::regclass::oid::bigint"
    )))
    .fetch_one(store.catalog_pool())
    .await
    .expect("oid")
}

/// How many rows of the shared tally (of tenant schema version 4) belong to
/// the tasks table with oid `oid`.
async fn shared_rows(store: &PgStore, oid: i64) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM saas_shared.task_tally WHERE tasks_oid = $1::bigint::oid",
    )
    .bind(oid)
    .fetch_one(store.catalog_pool())
    .await
    .expect("shared tally rows")
}

/// How many rows `t`'s own tally has.
async fn local_rows(store: &PgStore, t: &Tenant) -> i64 {
    let schema = tenant_schema_name(t);
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{schema}\".task_tally"
    )))
    .fetch_one(store.catalog_pool())
    .await
    .expect("local tally rows")
}

/// Whether `t`'s own tally is exactly its tasks grouped by project,
/// assignee (0 for none), status and priority (no row at zero).
async fn local_tally_is_exact(store: &PgStore, t: &Tenant) -> bool {
    let schema = tenant_schema_name(t);
    let s = format!("\"{schema}\"");
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "WITH counted AS (SELECT project_id, coalesce(assigned_to, 0) AS assignee, status, priority, \
             count(*) AS n FROM {s}.tasks GROUP BY 1, 2, 3, 4), \
         kept AS (SELECT project_id, assignee, status, priority, n FROM {s}.task_tally) \
         SELECT NOT EXISTS (SELECT * FROM counted EXCEPT SELECT * FROM kept) \
            AND NOT EXISTS (SELECT * FROM kept EXCEPT SELECT * FROM counted)"
    )))
    .fetch_one(store.catalog_pool())
    .await
    .expect("compare tally")
}

/// Whether any relation is left in schema `schema` (the tally included).
async fn relations_in(store: &PgStore, schema: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1",
    )
    .bind(schema)
    .fetch_one(store.catalog_pool())
    .await
    .expect("relations")
}

/// Versions 4 and 5 tally the tasks a schema already holds, including
/// those written while no trigger kept the tally, in the tenant's own
/// schema; the triggers keep it from then on; deleting the tenant leaves
/// no tally row anywhere.
#[tokio::test]
async fn versions_4_and_5_tally_the_existing_tasks() {
    use saas_core::projects::{Scope, TaskQuery};
    use saas_core::store::PageRequest;
    if !pg::available().await {
        return;
    }
    pg::ensure_database(DB).await;
    let Some(store) = pg::store_with(PgConfig::new(pg::url_for(DB))).await else {
        return;
    };
    let (t, admin) = records::tenant(&store).await;
    let schema = tenant_schema_name(&t);
    undo_v4(&store, &t).await;
    exec(
        &store,
        format!("UPDATE saas_shared.tenant_schemas SET version = 3 WHERE schema_name = '{schema}'"),
    )
    .await;
    seed_tasks(&store, &t, admin.id.0).await;
    let now = records::now();
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

    // A store opened after the migration sums the tenant's own tally; the
    // shared one has nothing of it.
    let store = pg::store_with(PgConfig::new(pg::url_for(DB)))
        .await
        .expect("store");
    let handle = store.open(&t).await.expect("open");
    let oid = tasks_oid(&store, &t).await;
    assert!(
        local_rows(&store, &t).await > 0,
        "the migration filled the tally"
    );
    assert!(local_tally_is_exact(&store, &t).await);
    assert_eq!(
        shared_rows(&store, oid).await,
        0,
        "nothing in the shared tally"
    );
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
    assert!(local_tally_is_exact(&store, &t).await);

    store.purge_tenant(t.id, None).await.expect("cleanup");
    assert_eq!(shared_rows(&store, oid).await, 0, "no shared tally rows");
    assert_eq!(relations_in(&store, &schema).await, 0, "the schema went");
}

/// A tenant at version 4 keeps its tally in the shared table (counted from
/// its tasks by this build, exactly); version 5 moves it into the tenant's
/// schema, exactly, and leaves nothing of it in the shared table.
#[tokio::test]
async fn version_5_moves_the_tally_into_the_tenant_schema() {
    use saas_core::projects::{Scope, TaskQuery};
    use saas_core::store::PageRequest;
    if !pg::available().await {
        return;
    }
    pg::ensure_database(DB_V4).await;
    let Some(store) = pg::store_with(PgConfig::new(pg::url_for(DB_V4))).await else {
        return;
    };
    let (t, admin) = records::tenant(&store).await;
    let schema = tenant_schema_name(&t);
    back_to_v4(&store, &t).await;
    assert_eq!(version(&store, &t).await, 4);
    // Writes through version 4's triggers: inserts, an update of statuses,
    // priorities and assignees, deletes.
    seed_tasks(&store, &t, admin.id.0).await;
    exec(
        &store,
        format!(
            "UPDATE \"{schema}\".tasks SET status = (status + 1) % 4, \
                 priority = (priority + 2) % 4, \
                 assigned_to = CASE WHEN assigned_to IS NULL THEN {a} END \
             WHERE id % 7 = 0; \
             DELETE FROM \"{schema}\".tasks WHERE id % 11 = 0",
            a = admin.id.0
        ),
    )
    .await;
    let oid = tasks_oid(&store, &t).await;
    let kept: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(n), 0)::bigint FROM saas_shared.task_tally WHERE tasks_oid = $1::bigint::oid",
    )
    .bind(oid)
    .fetch_one(store.catalog_pool())
    .await
    .expect("shared sum");
    let now = records::now();
    let total = scanned(&store, &t, now).await[0];
    assert_eq!(
        kept as u64, total,
        "version 4's triggers kept the shared tally"
    );
    let all = TaskQuery::new(Scope::All);
    {
        let behind = store.open(&t).await.expect("open at version 4");
        let counted = behind.task_counts(&all, now).await.expect("counts");
        assert_eq!(flat(&counted), scanned(&store, &t, now).await);
        let listed = behind
            .list_tasks(&all, PageRequest::first())
            .await
            .expect("list");
        assert_eq!(listed.count, total);
    }

    let report = store.migrate(&|_| {}).await.expect("migrate");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(version(&store, &t).await, LATEST);
    assert_eq!(
        shared_rows(&store, oid).await,
        0,
        "the shared rows are gone"
    );
    assert!(local_rows(&store, &t).await > 0);
    assert!(local_tally_is_exact(&store, &t).await);

    // Counted from the tenant's own tally by a store opened now, and kept
    // exact by the replaced triggers.
    let store = pg::store_with(PgConfig::new(pg::url_for(DB_V4)))
        .await
        .expect("store");
    let handle = store.open(&t).await.expect("open");
    let counted = handle.task_counts(&all, now).await.expect("counts");
    assert_eq!(flat(&counted), scanned(&store, &t, now).await);
    let projects = handle
        .list_projects(Scope::All, PageRequest::first())
        .await
        .expect("projects");
    let first = projects.items.first().expect("a project").id;
    handle.delete_project(first).await.expect("delete");
    let counted = handle.task_counts(&all, now).await.expect("counts");
    assert_eq!(flat(&counted), scanned(&store, &t, now).await);
    assert!(local_tally_is_exact(&store, &t).await);
    assert_eq!(
        shared_rows(&store, oid).await,
        0,
        "nothing written to the shared tally"
    );

    store.purge_tenant(t.id, None).await.expect("cleanup");
    assert_eq!(shared_rows(&store, oid).await, 0);
    assert_eq!(relations_in(&store, &schema).await, 0, "the schema went");
}

/// Deleting a tenant leaves no tally row anywhere: a current tenant's tally
/// goes with its schema, and a tenant still at version 4 (no migrate run
/// reached it) has its rows of the shared tally deleted.
#[tokio::test]
async fn deleting_a_tenant_leaves_no_tally_row() {
    if !pg::available().await {
        return;
    }
    pg::ensure_database(DB_DROP).await;
    let Some(store) = pg::store_with(PgConfig::new(pg::url_for(DB_DROP))).await else {
        return;
    };
    let (current, admin) = records::tenant(&store).await;
    seed_tasks(&store, &current, admin.id.0).await;
    let (behind, behind_admin) = records::tenant(&store).await;
    back_to_v4(&store, &behind).await;
    seed_tasks(&store, &behind, behind_admin.id.0).await;
    let current_oid = tasks_oid(&store, &current).await;
    let behind_oid = tasks_oid(&store, &behind).await;
    assert!(local_rows(&store, &current).await > 0);
    assert_eq!(shared_rows(&store, current_oid).await, 0);
    assert!(
        shared_rows(&store, behind_oid).await > 0,
        "version 4 writes the shared tally"
    );

    for t in [&current, &behind] {
        store.purge_tenant(t.id, None).await.expect("delete");
        assert_eq!(
            relations_in(&store, &tenant_schema_name(t)).await,
            0,
            "the schema went"
        );
    }
    assert_eq!(shared_rows(&store, current_oid).await, 0);
    assert_eq!(
        shared_rows(&store, behind_oid).await,
        0,
        "the shared rows went too"
    );
}

/// The previous build (this one withholding its last tenant migration,
/// which is additive) keeps serving a schema this build migrated: every
/// operation, through the service (`testkit::rolling`).
#[tokio::test]
async fn the_previous_build_serves_a_schema_this_build_migrated() {
    if !pg::available().await {
        return;
    }
    pg::ensure_database(DB_ROLLING).await;
    let mut config = PgConfig::new(pg::url_for(DB_ROLLING));
    config.withhold_tenant_migrations = 1;
    let Some(previous) = pg::store_with(config).await else {
        return;
    };
    let Some(current) = pg::store_with(PgConfig::new(pg::url_for(DB_ROLLING))).await else {
        return;
    };
    testkit::rolling::previous_build_serves_a_tenant_this_build_migrated(
        std::sync::Arc::new(previous),
        std::sync::Arc::new(current),
    )
    .await;
}

/// The error `store` answers when opening `t`, as text, if it is the
/// backend's "schema too new".
async fn too_new(store: &PgStore, t: &Tenant) -> String {
    let err = store.open(t).await.expect_err("too new");
    let saas_core::Error::Backend { source } = &err else {
        panic!("{err:?}");
    };
    assert!(
        matches!(
            source.downcast_ref::<saas_store_postgres::PgError>(),
            Some(saas_store_postgres::PgError::SchemaTooNew { .. })
        ),
        "{source:?}"
    );
    source.to_string()
}

/// A tenant at a version this build does not know is refused with an error
/// naming the versions, and reported failed by `migrate`; a build that does
/// not know a breaking version refuses it too.
#[tokio::test]
async fn a_schema_at_an_incompatible_newer_version_is_refused() {
    if !pg::available().await {
        return;
    }
    pg::ensure_database(DB_ROLLING).await;
    let Some(store) = pg::store_with(PgConfig::new(pg::url_for(DB_ROLLING))).await else {
        return;
    };
    let (t, _) = records::tenant(&store).await;
    let schema = tenant_schema_name(&t);
    // A version no build has described: only builds that know it may serve it.
    exec(
        &store,
        format!(
            "UPDATE saas_shared.tenant_schemas SET version = {} WHERE schema_name = '{schema}'",
            LATEST + 1
        ),
    )
    .await;
    let Some(fresh) = pg::store_with(PgConfig::new(pg::url_for(DB_ROLLING))).await else {
        return;
    };
    let message = too_new(&fresh, &t).await;
    assert!(
        message.contains(&format!(
            "at version {}, newer than the {LATEST} this build knows; only builds that know version {} or later",
            LATEST + 1,
            LATEST + 1
        )),
        "{message}"
    );
    let report = fresh.migrate(&|_| {}).await.expect("migrate");
    let reason = &report
        .failed
        .iter()
        .find(|(s, _)| s == t.slug.as_str())
        .expect("reported failed")
        .1;
    assert!(reason.contains("newer"), "{reason}");

    // The newest version is additive, so the previous build serves it...
    exec(
        &store,
        format!(
            "UPDATE saas_shared.tenant_schemas SET version = {LATEST} WHERE schema_name = '{schema}'"
        ),
    )
    .await;
    let mut config = PgConfig::new(pg::url_for(DB_ROLLING));
    config.withhold_tenant_migrations = 1;
    let Some(previous) = pg::store_with(config.clone()).await else {
        return;
    };
    assert_eq!(
        previous
            .open(&t)
            .await
            .expect("compatible")
            .count_users()
            .await
            .expect("count"),
        1
    );
    // ...but one version back that is breaking is refused.
    let mut config = config;
    config.withhold_tenant_migrations = 2;
    let Some(older) = pg::store_with(config).await else {
        return;
    };
    let message = too_new(&older, &t).await;
    assert!(
        message.contains(&format!(
            "only builds that know version {} or later",
            LATEST - 1
        )),
        "{message}"
    );
    store.purge_tenant(t.id, None).await.expect("cleanup");
}

/// A new tenant's tally trigger function has a name of its own (no two
/// tenants' functions share one, so looking one up never lists the fleet's);
/// a schema made before (its function still `tally_tasks`) is renamed by
/// shared migration 9, and a tenant put back at version 4 and migrated gets
/// the name too; the tally is kept right throughout.
#[tokio::test]
async fn tally_functions_have_names_of_their_own() {
    use saas_core::projects::{Scope, TaskQuery};
    use saas_core::store::PageRequest;
    if !pg::available().await {
        return;
    }
    pg::ensure_database(DB_TALLY_NAMES).await;
    let url = pg::url_for(DB_TALLY_NAMES);
    let Some(store) = pg::store_with(PgConfig::new(url.clone())).await else {
        return;
    };
    let (a, admin_a) = records::tenant(&store).await;
    let (b, _) = records::tenant(&store).await;
    let (schema_a, schema_b) = (tenant_schema_name(&a), tenant_schema_name(&b));
    assert_eq!(
        functions(&store, &schema_a).await,
        [tally_function(&schema_a)]
    );
    assert_eq!(
        functions(&store, &schema_b).await,
        [tally_function(&schema_b)]
    );

    // As a build before the rename left it; the shared migration runs again.
    exec(
        &store,
        format!(
            "ALTER FUNCTION \"{schema_a}\".\"{}\"() RENAME TO tally_tasks; \
             DELETE FROM saas_shared.schema_migrations WHERE version = 9",
            tally_function(&schema_a)
        ),
    )
    .await;
    assert_eq!(functions(&store, &schema_a).await, ["tally_tasks"]);
    let again = pg::store_with(PgConfig::new(url)).await.expect("reconnect");
    assert_eq!(
        functions(&again, &schema_a).await,
        [tally_function(&schema_a)]
    );
    assert_eq!(
        functions(&again, &schema_b).await,
        [tally_function(&schema_b)]
    );

    // Back at version 4 (its function `tally_tasks` again), then migrated.
    seed_tasks(&again, &a, admin_a.id.0).await;
    back_to_v4(&again, &a).await;
    assert_eq!(functions(&again, &schema_a).await, ["tally_tasks"]);
    again.migrate(&|_| {}).await.expect("migrate");
    assert_eq!(version(&again, &a).await, LATEST);
    assert_eq!(
        functions(&again, &schema_a).await,
        [tally_function(&schema_a)]
    );
    let h = again.open(&a).await.expect("open");
    let all = TaskQuery::new(Scope::All);
    let counted = h
        .task_counts(&all, chrono::Utc::now())
        .await
        .expect("counts");
    assert_eq!(counted.total, 300, "the tally counts every task");
    let task = h
        .list_tasks(&all, PageRequest::first())
        .await
        .expect("tasks")
        .items[0]
        .clone();
    h.delete_task(task.id).await.expect("delete");
    let counted = h
        .task_counts(&all, chrono::Utc::now())
        .await
        .expect("counts");
    assert_eq!(counted.total, 299, "the renamed function keeps the tally");
}
