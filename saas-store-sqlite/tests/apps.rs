//! Host applications' migrations and scoped access on SQLite: a host
//! migration reaches every tenant (new ones at registration, existing ones
//! through `migrate`), a failing one leaves its tenant as it was and the
//! others migrated, and two tenants' host tables never meet.

use std::sync::Arc;

use rusqlite::OptionalExtension;
use saas_core::apps::{Apps, Migration};
use saas_core::store::{MigrationOutcome, MigrationProgress, Store, TenantStore};
use saas_core::{Error, Result};
use saas_store_sqlite::{SqliteOptions, SqliteStore, with_tenant_tx};
use testkit::apps::{notes_migrations, registry, unique_title_migrations};
use testkit::records;

fn open(dir: &std::path::Path, apps: Apps) -> SqliteStore {
    SqliteStore::with_options(
        dir,
        SqliteOptions {
            apps,
            ..SqliteOptions::default()
        },
    )
    .expect("the store opens")
}

async fn add_note(t: &Arc<dyn TenantStore>, title: &str) -> Result<i64> {
    let title = title.to_owned();
    with_tenant_tx(t, move |tx| {
        tx.execute("INSERT INTO notes (title) VALUES (?1)", [title])
            .map_err(Error::backend)?;
        Ok(tx.last_insert_rowid())
    })
    .await
}

async fn titles(t: &Arc<dyn TenantStore>) -> Result<Vec<String>> {
    with_tenant_tx(t, |tx| {
        let mut stmt = tx
            .prepare("SELECT title FROM notes ORDER BY id")
            .map_err(Error::backend)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(Error::backend)?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(Error::backend)
    })
    .await
}

async fn applied(t: &Arc<dyn TenantStore>) -> Vec<String> {
    with_tenant_tx(t, |tx| {
        let mut stmt = tx
            .prepare("SELECT name FROM saas_app_migrations WHERE app = 'notes' ORDER BY name")
            .map_err(Error::backend)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(Error::backend)?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(Error::backend)
    })
    .await
    .expect("the ledger reads")
}

fn outcomes() -> (
    Arc<std::sync::Mutex<Vec<MigrationProgress>>>,
    impl Fn(MigrationProgress) + Send + Sync,
) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    (seen, move |p| sink.lock().expect("lock").push(p))
}

fn outcome_of(seen: &[MigrationProgress], slug: &str) -> MigrationOutcome {
    seen.iter()
        .find(|p| p.slug == slug)
        .map(|p| p.outcome)
        .expect("the tenant was reported")
}

#[tokio::test]
async fn host_migrations_reach_new_and_existing_tenants() {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = open(dir.path(), Apps::new());
    let (old, _) = records::tenant(&before).await;
    drop(before);

    let store = open(dir.path(), registry(notes_migrations()));
    // A new tenant has the host's tables from its registration on.
    let (new, _, new_handle) = records::open_tenant(&store).await;
    add_note(&new_handle, "new")
        .await
        .expect("the table is there");
    assert_eq!(applied(&new_handle).await, vec!["0001_notes", "0002_body"]);
    // An existing one gets them from `migrate`.
    let old_handle = store.open(&old).await.expect("open");
    assert!(add_note(&old_handle, "old").await.is_err());
    let (seen, progress) = outcomes();
    let report = store.migrate(&progress).await.expect("migrate");
    assert!(report.failed.is_empty(), "{report:?}");
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(
        outcome_of(&seen, old.slug.as_str()),
        MigrationOutcome::Migrated
    );
    assert_eq!(
        outcome_of(&seen, new.slug.as_str()),
        MigrationOutcome::Current
    );
    add_note(&old_handle, "old").await.expect("migrated");
    assert_eq!(applied(&old_handle).await, vec!["0001_notes", "0002_body"]);
    // Each tenant sees its own rows only.
    assert_eq!(titles(&old_handle).await.expect("read"), vec!["old"]);
    assert_eq!(titles(&new_handle).await.expect("read"), vec!["new"]);
    // A second run has nothing to do.
    let again = store.migrate(&|_| {}).await.expect("migrate");
    assert_eq!(again.migrated, 0, "{again:?}");
}

#[tokio::test]
async fn a_failing_host_migration_leaves_its_tenant_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), registry(notes_migrations()));
    let (dup, _, dup_handle) = records::open_tenant(&store).await;
    let (fine, _, fine_handle) = records::open_tenant(&store).await;
    add_note(&dup_handle, "same").await.expect("insert");
    add_note(&dup_handle, "same").await.expect("insert");
    add_note(&fine_handle, "one").await.expect("insert");
    drop((dup_handle, fine_handle, store));

    let mut migrations = notes_migrations();
    migrations.extend(unique_title_migrations());
    let store = open(dir.path(), registry(migrations));
    let (seen, progress) = outcomes();
    let report = store.migrate(&progress).await.expect("migrate");
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(
        outcome_of(&seen, dup.slug.as_str()),
        MigrationOutcome::Failed
    );
    assert_eq!(
        outcome_of(&seen, fine.slug.as_str()),
        MigrationOutcome::Migrated
    );
    let (_, reason) = &report.failed[0];
    assert!(reason.contains("0004_unique_title"), "{reason}");

    // The failing tenant has neither of the run's migrations, even the
    // one that applied before the failure; the other has both.
    let dup_handle = store.open(&dup).await.expect("open");
    let fine_handle = store.open(&fine).await.expect("open");
    assert_eq!(applied(&dup_handle).await, vec!["0001_notes", "0002_body"]);
    let pinned = |t: Arc<dyn TenantStore>| async move {
        with_tenant_tx(&t, |tx| {
            tx.query_row("SELECT pinned FROM notes LIMIT 1", [], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .map_err(Error::backend)
        })
        .await
    };
    assert!(pinned(dup_handle.clone()).await.is_err());
    assert_eq!(pinned(fine_handle.clone()).await.expect("column"), Some(0));
    assert_eq!(applied(&fine_handle).await.len(), 4);
    assert_eq!(
        titles(&dup_handle).await.expect("read"),
        vec!["same", "same"]
    );
}

#[tokio::test]
async fn a_failing_host_migration_fails_the_registration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut migrations = notes_migrations();
    migrations.push(Migration::sql("0003_broken", "NOT SQL", "NOT SQL"));
    let store = open(dir.path(), registry(migrations));
    let tenant = records::new_tenant();
    let e = store
        .create_tenant(&tenant, &records::admin_record())
        .await
        .expect_err("the registration fails");
    assert!(saas_core::error::chain(&e).contains("0003_broken"), "{e:?}");
    assert!(
        store
            .tenant_by_slug(&tenant.slug)
            .await
            .expect("read")
            .is_none()
    );
    assert!(!testkit::sqlite::tenant_file(dir.path(), &tenant.slug).exists());
}

#[tokio::test]
async fn function_steps_run_and_other_dialects_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut migrations = notes_migrations();
    migrations.push(
        Migration::new("0003_seed").sqlite(saas_store_sqlite::step(|tx| {
            tx.execute("INSERT INTO notes (title) VALUES ('welcome')", [])?;
            Ok(())
        })),
    );
    let store = open(dir.path(), registry(migrations));
    let (_, _, handle) = records::open_tenant(&store).await;
    assert_eq!(titles(&handle).await.expect("read"), vec!["welcome"]);

    let postgres_only = registry(vec![Migration::new("x").postgres("SELECT 1")]);
    let other = tempfile::tempdir().expect("tempdir");
    let refused = SqliteStore::with_options(
        other.path(),
        SqliteOptions {
            apps: postgres_only,
            ..SqliteOptions::default()
        },
    );
    assert!(refused.is_err());
}

#[tokio::test]
async fn shared_migrations_run_once_on_the_catalog() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = saas_core::apps::App::new("billing")
        .expect("name")
        .shared(Migration::sql(
            "0001_rates",
            "CREATE TABLE rates (plan text)",
            "CREATE TABLE rates (plan TEXT); INSERT INTO rates VALUES ('pro')",
        ));
    let apps = Apps::new().with(app).expect("registry");
    drop(open(dir.path(), apps.clone()));
    // Opened again: not applied twice (the insert would add a row).
    let store = open(dir.path(), apps);
    store.migrate(&|_| {}).await.expect("migrate");
    let catalog = rusqlite::Connection::open(dir.path().join("catalog.sqlite")).expect("open");
    let n: i64 = catalog
        .query_row("SELECT count(*) FROM rates", [], |r| r.get(0))
        .expect("the shared table");
    assert_eq!(n, 1);
}

#[tokio::test]
async fn a_deleted_tenant_is_out_of_reach() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), registry(notes_migrations()));
    let (tenant, _, handle) = records::open_tenant(&store).await;
    store
        .delete_tenant(tenant.id, chrono::Utc::now())
        .await
        .expect("delete");
    store.purge_tenant(tenant.id, None).await.expect("purge");
    let e = add_note(&handle, "late").await.expect_err("gone");
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
}
