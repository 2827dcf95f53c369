//! Behaviour specific to the SQLite backend: the handle cache, atomic tenant
//! files, plan limits under concurrency, schema versions and migrations.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::Connection;
use saas_core::projects::Scope;
use saas_core::store::{MigrationProgress, PageRequest, Store};
use saas_core::users::Role;
use saas_core::{Entity, Error, Resource};
use saas_store_sqlite::{SqliteError, SqliteOptions, TENANT_SCHEMA_VERSION};
use testkit::records::{
    admin_record, host_for, new_tenant, new_tenant_with, open_tenant, project_record, random_slug,
    task_record, user_record,
};
use testkit::sqlite::{store, store_with, tenant_dir_files, tenant_file};

/// `PRAGMA user_version` as stored: the schema version in the low 16 bits,
/// the compatibility floor above them when it is lower (see the crate's
/// `schema` module).
fn raw_user_version(path: &std::path::Path) -> i64 {
    let conn = Connection::open(path).expect("open file");
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("user_version")
}

/// The schema version of the file at `path`.
fn user_version(path: &std::path::Path) -> i64 {
    raw_user_version(path) & 0xffff
}

/// Waits (briefly) for connections closed on the blocking pool to be counted.
async fn wait_for_connections_at_most(store: &saas_store_sqlite::SqliteStore, max: usize) -> usize {
    for _ in 0..200 {
        let open = store.stats().open_connections;
        if open <= max {
            return open;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    store.stats().open_connections
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn more_tenants_than_the_cache_holds_each_see_only_their_data() {
    let options = SqliteOptions {
        handle_cache_capacity: 4,
        max_connections_per_tenant: 2,
        catalog_connections: 2,
        ..SqliteOptions::default()
    };
    let (_dir, store) = store_with(options);
    let mut tenants = Vec::new();
    for _ in 0..12 {
        let (tenant, admin) = store
            .create_tenant(&new_tenant(), &admin_record())
            .await
            .expect("create tenant");
        tenants.push((tenant, admin));
    }
    // Write each tenant's own data, then read everything back twice over,
    // so every handle is evicted and reopened along the way.
    for (tenant, admin) in &tenants {
        let handle = store.open(tenant).await.expect("open");
        handle
            .create_project(&project_record(tenant.slug.as_str(), admin.id), None)
            .await
            .expect("create project");
        assert!(store.stats().cached_handles <= 4);
    }
    for _round in 0..2 {
        for (tenant, admin) in &tenants {
            let handle = store.open(tenant).await.expect("open");
            assert_eq!(handle.tenant_id(), tenant.id);
            let projects = handle
                .list_projects(Scope::All, PageRequest::first())
                .await
                .expect("list projects");
            assert_eq!(projects.count, 1);
            assert_eq!(projects.items[0].name, tenant.slug.as_str());
            let users = handle
                .list_users(PageRequest::first())
                .await
                .expect("list users");
            assert_eq!(users.count, 1);
            assert_eq!(users.items[0].id, admin.id);
            let stats = store.stats();
            assert!(stats.cached_handles <= 4, "{stats:?}");
        }
    }
    // 4 handles of at most 2 connections each, plus at most 2 to the catalog.
    let open = wait_for_connections_at_most(&store, 4 * 2 + 2).await;
    assert!(open <= 10, "{open} connections still open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_handle_keeps_working_and_closes_when_dropped() {
    let options = SqliteOptions {
        handle_cache_capacity: 2,
        max_connections_per_tenant: 2,
        catalog_connections: 2,
        ..SqliteOptions::default()
    };
    let (_dir, store) = store_with(options);
    let (first, admin) = store
        .create_tenant(&new_tenant(), &admin_record())
        .await
        .expect("create");
    let held = store.open(&first).await.expect("open");
    for _ in 0..4 {
        let _ = open_tenant(&store).await;
    }
    // Evicted from the cache, still working for its holder.
    held.create_project(&project_record("still here", admin.id), None)
        .await
        .expect("evicted handle writes");
    assert_eq!(held.count_users().await.expect("count"), 1);
    // Reopening the tenant finds the live handle instead of a second pool.
    let again = store.open(&first).await.expect("reopen");
    assert!(Arc::ptr_eq(&held, &again));
    drop(again);
    let weak = Arc::downgrade(&held);
    drop(held);
    // The cache holds it again, so it is alive; evict it and it is gone.
    for _ in 0..3 {
        let _ = open_tenant(&store).await;
    }
    assert!(
        weak.upgrade().is_none(),
        "nothing else holds the evicted handle"
    );
    let open = wait_for_connections_at_most(&store, 2 * 2 + 2).await;
    assert!(open <= 6, "{open} connections still open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_creates_against_a_limit_of_ten_create_ten() {
    let (_dir, store) = store();
    let (_tenant, admin, handle) = open_tenant(&store).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64 {
        let handle = Arc::clone(&handle);
        tasks.spawn(async move {
            handle
                .create_project(&project_record(&format!("p{i}"), admin.id), Some(10))
                .await
        });
    }
    let (mut created, mut refused) = (0, 0);
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("task") {
            Ok(_) => created += 1,
            Err(Error::PlanLimitExceeded {
                resource: Resource::Projects,
                limit: 10,
                plan,
            }) => {
                assert_eq!(plan, "", "the service fills the plan in");
                refused += 1;
            }
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!((created, refused), (10, 54));
    let page = handle
        .list_projects(
            Scope::All,
            PageRequest::new(Some(1), Some(100)).expect("page"),
        )
        .await
        .expect("list");
    assert_eq!(page.count, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_user_and_task_creates_respect_their_limits() {
    let (_dir, store) = store();
    let (_tenant, admin, handle) = open_tenant(&store).await;
    let mut users = tokio::task::JoinSet::new();
    for i in 0..32 {
        let handle = Arc::clone(&handle);
        users.spawn(async move {
            handle
                .create_user(&user_record(&format!("user{i}"), Role::Member), Some(5))
                .await
        });
    }
    let mut created = 0;
    while let Some(joined) = users.join_next().await {
        match joined.expect("task") {
            Ok(_) => created += 1,
            Err(Error::PlanLimitExceeded {
                resource: Resource::Users,
                ..
            }) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    // The admin counts: 4 more reach the limit of 5.
    assert_eq!(created, 4);
    assert_eq!(handle.count_users().await.expect("count"), 5);

    let project = handle
        .create_project(&project_record("p", admin.id), None)
        .await
        .expect("project");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..32 {
        let handle = Arc::clone(&handle);
        let record = task_record(project.id, &format!("t{i}"), admin.id);
        tasks.spawn(async move { handle.create_task(&record, Some(7)).await });
    }
    let mut created = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("task") {
            Ok(_) => created += 1,
            Err(Error::PlanLimitExceeded {
                resource: Resource::TasksPerProject,
                ..
            }) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(created, 7);
}

#[tokio::test]
async fn a_taken_hostname_leaves_no_file_and_no_row() {
    let (dir, store) = store();
    let (existing, _admin, _handle) = open_tenant(&store).await;
    let before = tenant_dir_files(dir.path());

    let slug = random_slug();
    let taken = host_for(&existing.slug);
    let err = store
        .create_tenant(&new_tenant_with(&slug, &taken), &admin_record())
        .await
        .expect_err("hostname is taken");
    assert!(
        matches!(
            err,
            Error::Conflict {
                entity: Entity::Domain,
                field: "hostname"
            }
        ),
        "{err:?}"
    );
    assert!(!tenant_file(dir.path(), &slug).exists());
    assert_eq!(
        tenant_dir_files(dir.path()),
        before,
        "no temporary file left"
    );
    assert!(store.tenant_by_slug(&slug).await.expect("lookup").is_none());
    assert_eq!(
        store
            .list_tenants(PageRequest::first())
            .await
            .expect("list")
            .count,
        1
    );

    // A taken slug is refused the same way, and the owner's file is intact.
    let err = store
        .create_tenant(
            &new_tenant_with(&existing.slug, &host_for(&slug)),
            &admin_record(),
        )
        .await
        .expect_err("slug is taken");
    assert!(
        matches!(
            err,
            Error::Conflict {
                entity: Entity::Tenant,
                field: "slug"
            }
        ),
        "{err:?}"
    );
    assert_eq!(tenant_dir_files(dir.path()), before);
    assert!(
        store
            .tenant_by_domain(&host_for(&slug))
            .await
            .expect("lookup")
            .is_none()
    );
    let handle = store.open(&existing).await.expect("open");
    assert_eq!(handle.count_users().await.expect("count"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_of_one_slug_have_exactly_one_winner() {
    let (dir, store) = store();
    let slug = random_slug();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let store = store.clone();
        let host = saas_core::tenancy::Hostname::parse(&format!("h{i}-{}", host_for(&slug)))
            .expect("host");
        let registration = new_tenant_with(&slug, &host);
        tasks.spawn(async move { store.create_tenant(&registration, &admin_record()).await });
    }
    let mut winners = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("task") {
            Ok((tenant, _)) => winners.push(tenant),
            Err(Error::Conflict {
                entity: Entity::Tenant,
                field: "slug",
            }) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    let winner = &winners[0];
    let listed = store
        .list_tenants(PageRequest::first())
        .await
        .expect("list");
    assert_eq!(listed.count, 1);
    assert_eq!(&listed.items[0], winner);
    assert_eq!(store.domains(winner.id).await.expect("domains").len(), 1);
    let handle = store.open(winner).await.expect("open winner");
    assert_eq!(handle.count_users().await.expect("count"), 1);
    let files = tenant_dir_files(dir.path());
    assert!(
        files
            .iter()
            .all(|f| f.starts_with(&format!("{}.sqlite", slug.as_str()))),
        "only the winner's file (and its WAL companions): {files:?}"
    );
}

#[tokio::test]
async fn delete_tenant_removes_rows_files_and_the_cached_handle() {
    let (dir, store) = store();
    let (tenant, admin, handle) = open_tenant(&store).await;
    handle
        .create_project(&project_record("doomed", admin.id), None)
        .await
        .expect("project");
    let file = tenant_file(dir.path(), &tenant.slug);
    assert!(file.exists());

    store.purge_tenant(tenant.id, None).await.expect("delete");
    for suffix in ["", "-wal", "-shm"] {
        let mut p = file.clone().into_os_string();
        p.push(suffix);
        assert!(!std::path::Path::new(&p).exists(), "{p:?} remains");
    }
    assert!(store.tenant(tenant.id).await.expect("lookup").is_none());
    assert!(
        store
            .tenant_by_domain(&host_for(&tenant.slug))
            .await
            .expect("lookup")
            .is_none()
    );
    // A handle still held fails closed.
    assert!(matches!(
        handle.count_users().await,
        Err(Error::NotFound {
            entity: Entity::Tenant
        })
    ));
    assert!(matches!(
        store.open(&tenant).await,
        Err(Error::NotFound {
            entity: Entity::Tenant
        })
    ));
    assert!(
        !store.purge_tenant(tenant.id, None).await.expect("purge"),
        "purging again is a no-op"
    );

    // The slug is free again, and the new tenant starts empty.
    let (again, _) = store
        .create_tenant(
            &new_tenant_with(&tenant.slug, &host_for(&tenant.slug)),
            &admin_record(),
        )
        .await
        .expect("re-register the slug");
    let fresh = store.open(&again).await.expect("open");
    assert_eq!(
        fresh
            .list_projects(Scope::All, PageRequest::first())
            .await
            .expect("list")
            .count,
        0
    );
}

#[tokio::test]
async fn opening_a_tenant_whose_file_is_gone_is_not_found() {
    let (dir, store) = store();
    let (tenant, _) = store
        .create_tenant(&new_tenant(), &admin_record())
        .await
        .expect("create");
    std::fs::remove_file(tenant_file(dir.path(), &tenant.slug)).expect("remove file");
    assert!(matches!(
        store.open(&tenant).await,
        Err(Error::NotFound {
            entity: Entity::Tenant
        })
    ));
    // Opening must not have brought an empty file back.
    assert!(!tenant_file(dir.path(), &tenant.slug).exists());
}

#[tokio::test]
async fn a_file_of_another_tenant_is_refused() {
    let (dir, store) = store();
    let (a, _) = store
        .create_tenant(&new_tenant(), &admin_record())
        .await
        .expect("a");
    let (b, _) = store
        .create_tenant(&new_tenant(), &admin_record())
        .await
        .expect("b");
    // Put b's file where a's belongs: a must not open b's data.
    std::fs::copy(
        tenant_file(dir.path(), &b.slug),
        tenant_file(dir.path(), &a.slug),
    )
    .expect("copy");
    let err = store.open(&a).await.expect_err("file belongs to b");
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
}

#[tokio::test]
async fn files_are_created_at_the_newest_schema_version() {
    let (dir, store) = store();
    let (tenant, _, _handle) = open_tenant(&store).await;
    assert_eq!(
        user_version(&tenant_file(dir.path(), &tenant.slug)),
        TENANT_SCHEMA_VERSION
    );
    assert_eq!(
        user_version(&dir.path().join("catalog.sqlite")),
        saas_store_sqlite::CATALOG_SCHEMA_VERSION
    );
    let conn = Connection::open(tenant_file(dir.path(), &tenant.slug)).expect("open");
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .expect("journal mode");
    assert_eq!(mode, "wal");
}

/// Undoes schema version 4 (`started_at`, its index and triggers) and sets
/// the file back to version 3.
fn downgrade_to_3(conn: &Connection) {
    conn.execute_batch(
        "DROP TRIGGER tasks_started_insert; DROP TRIGGER tasks_started_update;
         DROP INDEX tasks_by_started; ALTER TABLE tasks DROP COLUMN started_at;
         PRAGMA user_version = 3;",
    )
    .expect("downgrade to 3");
}

/// Undoes schema versions 4 and 3 (its indexes, the task tally and its
/// triggers) and sets the file back to version 2.
fn downgrade_to_2(conn: &Connection) {
    downgrade_to_3(conn);
    conn.execute_batch(
        "DROP TRIGGER task_tally_insert; DROP TRIGGER task_tally_delete; DROP TRIGGER task_tally_update;
         DROP TABLE task_tally;
         DROP INDEX tasks_by_created; DROP INDEX tasks_by_updated; DROP INDEX tasks_open_by_due;
         PRAGMA user_version = 2;",
    )
    .expect("downgrade to 2");
}

/// Sets the file back to version 1, undoing the later versions.
fn downgrade(path: &std::path::Path) {
    let conn = Connection::open(path).expect("open");
    downgrade_to_2(&conn);
    conn.execute_batch(
        "DROP INDEX refresh_tokens_by_expiry; DROP INDEX tasks_done_by_completion; PRAGMA user_version = 1;",
    )
    .expect("downgrade");
}

fn has_index(path: &std::path::Path, name: &str) -> bool {
    let conn = Connection::open(path).expect("open");
    conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .expect("schema")
        == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_brings_every_tenant_forward_and_goes_on_past_failures() {
    let dir = tempfile::tempdir().expect("dir");
    let mut tenants = Vec::new();
    {
        let store = saas_store_sqlite::SqliteStore::open(dir.path()).expect("store");
        for _ in 0..5 {
            let (tenant, _) = store
                .create_tenant(&new_tenant(), &admin_record())
                .await
                .expect("create");
            tenants.push(tenant);
        }
    }
    let behind = &tenants[0];
    let too_new = &tenants[1];
    let missing = &tenants[2];
    downgrade(&tenant_file(dir.path(), &behind.slug));
    Connection::open(tenant_file(dir.path(), &too_new.slug))
        .expect("open")
        .pragma_update(None, "user_version", 99)
        .expect("bump");
    std::fs::remove_file(tenant_file(dir.path(), &missing.slug)).expect("remove");

    let store = saas_store_sqlite::SqliteStore::open(dir.path()).expect("store");
    let calls = AtomicU64::new(0);
    let seen = parking_lot::Mutex::new(Vec::new());
    let progress = |p: MigrationProgress| {
        calls.fetch_add(1, Ordering::Relaxed);
        assert_eq!(p.total, 5);
        seen.lock().push((p.done, p.slug));
    };
    let report = store.migrate(&progress).await.expect("migrate");
    assert_eq!(report.tenants, 5);
    assert_eq!(report.migrated, 1);
    assert_eq!(report.current, 2);
    let mut failed: Vec<&str> = report.failed.iter().map(|(s, _)| s.as_str()).collect();
    failed.sort_unstable();
    let mut expected = vec![too_new.slug.as_str(), missing.slug.as_str()];
    expected.sort_unstable();
    assert_eq!(failed, expected);
    let too_new_reason = &report
        .failed
        .iter()
        .find(|(s, _)| s == too_new.slug.as_str())
        .expect("reported")
        .1;
    assert!(too_new_reason.contains("newer"), "{too_new_reason}");
    assert_eq!(calls.load(Ordering::Relaxed), 5);
    let mut done: Vec<u64> = seen.lock().iter().map(|(d, _)| *d).collect();
    done.sort_unstable();
    assert_eq!(done, vec![1, 2, 3, 4, 5]);

    let behind_file = tenant_file(dir.path(), &behind.slug);
    assert_eq!(user_version(&behind_file), TENANT_SCHEMA_VERSION);
    assert!(has_index(&behind_file, "tasks_done_by_completion"));

    // A second run finds the migrated file current.
    let again = store.migrate(&|_| {}).await.expect("migrate again");
    assert_eq!(again.migrated, 0);
    assert_eq!(again.current, 3);
}

#[tokio::test]
async fn opening_a_tenant_migrates_its_file() {
    let dir = tempfile::tempdir().expect("dir");
    let tenant = {
        let store = saas_store_sqlite::SqliteStore::open(dir.path()).expect("store");
        let (tenant, _) = store
            .create_tenant(&new_tenant(), &admin_record())
            .await
            .expect("create");
        tenant
    };
    let file = tenant_file(dir.path(), &tenant.slug);
    downgrade(&file);
    assert_eq!(user_version(&file), 1);
    let store = saas_store_sqlite::SqliteStore::open(dir.path()).expect("store");
    let handle = store.open(&tenant).await.expect("open migrates");
    assert_eq!(handle.count_users().await.expect("count"), 1);
    assert_eq!(user_version(&file), TENANT_SCHEMA_VERSION);
    assert!(has_index(&file, "refresh_tokens_by_expiry"));
}

/// Version 3 tallies the tasks a file already holds, including those
/// written while no trigger kept the tally, and keeps it from then on.
#[tokio::test]
async fn migrating_to_version_3_tallies_the_existing_tasks() {
    let dir = tempfile::tempdir().expect("dir");
    let (tenant, admin) = {
        let store = saas_store_sqlite::SqliteStore::open(dir.path()).expect("store");
        store
            .create_tenant(&new_tenant(), &admin_record())
            .await
            .expect("create")
    };
    let file = tenant_file(dir.path(), &tenant.slug);
    let conn = Connection::open(&file).expect("open");
    downgrade_to_2(&conn);
    conn.execute_batch(&format!(
        "INSERT INTO projects (name, description, status, owner_id, created_at, updated_at)
         VALUES ('p', '', 0, {admin}, 0, 0), ('q', '', 0, {admin}, 0, 0);
         WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM i WHERE n < 300)
         INSERT INTO tasks (project_id, title, description, status, priority, assigned_to,
             created_by, due_date, completed_at, created_at, updated_at)
         SELECT 1 + n % 2, 't' || n, '', n % 4, (n / 4) % 4,
             CASE WHEN n % 3 = 0 THEN NULL ELSE {admin} END, {admin},
             CASE WHEN n % 5 = 0 THEN NULL ELSE n END, NULL, n, n FROM i;",
        admin = admin.id.0
    ))
    .expect("tasks written at version 2");
    drop(conn);

    let store = saas_store_sqlite::SqliteStore::open(dir.path()).expect("store");
    let t = store.open(&tenant).await.expect("open migrates");
    assert_eq!(user_version(&file), TENANT_SCHEMA_VERSION);
    assert!(has_index(&file, "tasks_by_updated"));
    let now = chrono::DateTime::from_timestamp_micros(150).expect("time");
    let check = |label: &'static str| {
        let t = Arc::clone(&t);
        let file = file.clone();
        async move {
            let mut q = saas_core::projects::TaskQuery::new(Scope::All);
            // Counted by the store (from the tally) and by a scan of the file.
            let tallied = t.task_counts(&q, now).await.expect("tallied");
            let listed = t.list_tasks(&q, PageRequest::first()).await.expect("list");
            assert_eq!(listed.count, tallied.total, "{label}");
            let conn = Connection::open(&file).expect("open");
            let scanned: Vec<i64> = conn
                .prepare(
                    "SELECT count(*), sum(status = 0), sum(status = 1), sum(status = 2), \
                     sum(status = 3), sum(priority = 0), sum(priority = 1), sum(priority = 2), \
                     sum(priority = 3), sum(status <> 3 AND due_date < 150) FROM tasks",
                )
                .expect("prepare")
                .query_row([], |r| (0..10).map(|i| r.get::<_, i64>(i)).collect())
                .expect("scan");
            let got = [
                tallied.total,
                tallied.by_status[0],
                tallied.by_status[1],
                tallied.by_status[2],
                tallied.by_status[3],
                tallied.by_priority[0],
                tallied.by_priority[1],
                tallied.by_priority[2],
                tallied.by_priority[3],
                tallied.overdue,
            ];
            let want: Vec<u64> = scanned.iter().map(|n| *n as u64).collect();
            assert_eq!(got.to_vec(), want, "{label}");
            let in_p: i64 = conn
                .query_row("SELECT count(*) FROM tasks WHERE project_id = 1", [], |r| {
                    r.get(0)
                })
                .expect("scan p");
            q.project = Some(saas_core::projects::ProjectId(1));
            let one = t.task_counts(&q, now).await.expect("one project");
            assert_eq!(one.total, in_p as u64, "{label}");
        }
    };
    check("after the migration").await;
    // From now on the triggers keep it.
    t.delete_project(saas_core::projects::ProjectId(2))
        .await
        .expect("delete q");
    check("after a cascading delete").await;
}

/// A tenant whose file's `user_version` is then set to `stamp`.
async fn tenant_stamped(
    stamp: i64,
) -> (
    tempfile::TempDir,
    saas_store_sqlite::SqliteStore,
    saas_core::tenancy::Tenant,
) {
    let (dir, store) = store();
    let (tenant, _) = store
        .create_tenant(&new_tenant(), &admin_record())
        .await
        .expect("create");
    Connection::open(tenant_file(dir.path(), &tenant.slug))
        .expect("open")
        .pragma_update(None, "user_version", stamp)
        .expect("stamp");
    (dir, store, tenant)
}

/// The store error behind `err`, a backend error.
fn backend_source(err: &Error) -> &(dyn std::error::Error + Send + Sync + 'static) {
    let Error::Backend { source } = err else {
        panic!("{err:?}");
    };
    source.as_ref()
}

/// This build, withholding its last tenant migration: the previous build.
fn previous_build(dir: &std::path::Path) -> saas_store_sqlite::SqliteStore {
    saas_store_sqlite::SqliteStore::with_options(
        dir,
        SqliteOptions {
            withhold_tenant_migrations: 1,
            ..SqliteOptions::default()
        },
    )
    .expect("previous build")
}

#[tokio::test]
async fn a_file_from_a_newer_release_is_refused() {
    let (_dir, store, tenant) = tenant_stamped(TENANT_SCHEMA_VERSION + 1).await;
    let err = store.open(&tenant).await.expect_err("too new");
    let source = backend_source(&err);
    assert!(
        matches!(
            source.downcast_ref::<SqliteError>(),
            Some(SqliteError::SchemaTooNew { found, known, compatible_from, .. })
                if *found == TENANT_SCHEMA_VERSION + 1 && *known == TENANT_SCHEMA_VERSION
                    && *compatible_from == TENANT_SCHEMA_VERSION + 1
        ),
        "{source:?}"
    );
    assert!(
        source.to_string().contains(&format!(
            "only builds that know version {} or later",
            TENANT_SCHEMA_VERSION + 1
        )),
        "{source}"
    );
}

/// The previous build (this one withholding its last tenant migration,
/// which is additive) keeps serving a file this build migrated: every
/// operation, through the service (`testkit::rolling`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_previous_build_serves_a_file_this_build_migrated() {
    let dir = tempfile::tempdir().expect("dir");
    let previous = previous_build(dir.path());
    let current = saas_store_sqlite::SqliteStore::open(dir.path()).expect("this build");
    testkit::rolling::previous_build_serves_a_tenant_this_build_migrated(
        Arc::new(previous),
        Arc::new(current),
    )
    .await;
    let file = std::fs::read_dir(dir.path().join("tenants"))
        .expect("tenants")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "sqlite"))
        .expect("the tenant's file");
    // Version 4 (additive) is stamped as readable from version 3.
    assert_eq!(
        raw_user_version(&file),
        TENANT_SCHEMA_VERSION | ((TENANT_SCHEMA_VERSION - 1) << 16)
    );
}

/// A build that does not know a breaking version refuses the file, even
/// when only one version ahead.
#[tokio::test]
async fn the_previous_build_refuses_a_breaking_newer_version() {
    // The newest version, stamped as breaking (no floor below it).
    let (dir, store, tenant) = tenant_stamped(TENANT_SCHEMA_VERSION).await;
    let previous = previous_build(dir.path());
    let err = previous.open(&tenant).await.expect_err("breaking");
    let source = backend_source(&err);
    assert!(
        matches!(
            source.downcast_ref::<SqliteError>(),
            Some(SqliteError::SchemaTooNew { found, known, .. })
                if *found == TENANT_SCHEMA_VERSION && *known == TENANT_SCHEMA_VERSION - 1
        ),
        "{source:?}"
    );
    // This build still serves it.
    drop(store);
    let current = saas_store_sqlite::SqliteStore::open(dir.path()).expect("this build");
    assert_eq!(
        current
            .open(&tenant)
            .await
            .expect("open")
            .count_users()
            .await
            .expect("count"),
        1
    );
}

#[tokio::test]
async fn leftovers_of_interrupted_registrations_are_swept_on_open() {
    let dir = tempfile::tempdir().expect("dir");
    drop(saas_store_sqlite::SqliteStore::open(dir.path()).expect("store"));
    let tenants = dir.path().join("tenants");
    let old = tenants.join("t_crashed.0123456789abcdef0123456789abcdef.tmp");
    let old_journal = tenants.join("t_crashed.0123456789abcdef0123456789abcdef.tmp-journal");
    let fresh = tenants.join("t_building.fedcba9876543210fedcba9876543210.tmp");
    let long_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 3600);
    for path in [&old, &old_journal, &fresh] {
        let file = std::fs::File::create(path).expect("create");
        if path != &fresh {
            file.set_modified(long_ago).expect("set mtime");
        }
    }
    drop(saas_store_sqlite::SqliteStore::open(dir.path()).expect("store"));
    assert!(!old.exists());
    assert!(!old_journal.exists());
    // A registration in progress elsewhere keeps its file.
    assert!(fresh.exists());
}

/// A catalog file behind this build's version is a pending migration
/// (`/readyz` reports it); tenant files, migrated when opened, are not.
#[tokio::test]
async fn a_catalog_behind_the_build_is_a_pending_migration() {
    let (dir, store) = store();
    assert_eq!(store.pending_migrations().await.expect("pending"), 0);
    let catalog = dir.path().join("catalog.sqlite");
    let current = user_version(&catalog);
    Connection::open(&catalog)
        .expect("open catalog")
        .pragma_update(None, "user_version", current - 1)
        .expect("set the version back");
    assert_eq!(store.pending_migrations().await.expect("pending"), 1);
    Connection::open(&catalog)
        .expect("open catalog")
        .pragma_update(None, "user_version", current)
        .expect("put the version back");
    assert_eq!(store.pending_migrations().await.expect("pending"), 0);
}

/// Two-step deletion on SQLite: deleting keeps the file (and a restore
/// brings the data back); a purge's catalog commit comes before the file
/// goes, so a crash in between leaves a file no row points to, which
/// `purge_orphans` removes later, and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_keeps_the_file_until_purged_and_orphans_are_purged_later() {
    use saas_core::tenancy::TenantStatus;
    let (dir, store) = store();
    let (tenant, admin, handle) = open_tenant(&store).await;
    handle
        .create_project(&project_record("kept", admin.id), None)
        .await
        .expect("project");
    drop(handle);
    let (other, _, _) = open_tenant(&store).await;
    let file = tenant_file(dir.path(), &tenant.slug);
    let other_file = tenant_file(dir.path(), &other.slug);

    let at = chrono::Utc::now();
    let deleted = store.delete_tenant(tenant.id, at).await.expect("delete");
    assert_eq!(deleted.status, TenantStatus::Deleted);
    assert!(file.exists(), "deleting keeps the file");
    assert_eq!(store.purge_orphans().await.expect("orphans"), 0);
    assert!(file.exists(), "a deleted tenant's file is not an orphan");
    let restored = store.restore_tenant(tenant.id).await.expect("restore");
    assert_eq!(restored.status, TenantStatus::Active);
    let handle = store.open(&restored).await.expect("open");
    assert_eq!(
        handle
            .project_counts(Scope::All)
            .await
            .expect("counts")
            .total,
        1,
        "the data is back"
    );
    drop(handle);

    // A crash right after a purge's catalog commit: the rows are gone, the
    // file is still there.
    store.delete_tenant(tenant.id, at).await.expect("delete");
    {
        let conn = Connection::open(dir.path().join("catalog.sqlite")).expect("catalog");
        conn.busy_timeout(Duration::from_secs(5)).expect("timeout");
        conn.execute(
            "DELETE FROM domains WHERE tenant_id = ?1",
            [tenant.id.to_string()],
        )
        .expect("domains");
        conn.execute("DELETE FROM tenants WHERE id = ?1", [tenant.id.to_string()])
            .expect("tenant");
    }
    assert!(file.exists());
    assert_eq!(store.purge_orphans().await.expect("orphans"), 1);
    for suffix in ["", "-wal", "-shm"] {
        let mut p = file.clone().into_os_string();
        p.push(suffix);
        assert!(!std::path::Path::new(&p).exists(), "{p:?} remains");
    }
    assert!(other_file.exists(), "a file the catalog names stays");
    assert_eq!(store.purge_orphans().await.expect("orphans"), 0);
}
