//! Host applications' migrations and scoped access on PostgreSQL: a host
//! migration reaches every tenant (new ones at provisioning, existing ones
//! through `migrate`), a failing one leaves its tenant as it was and the
//! others migrated, and two tenants' host tables never meet, whatever the
//! routing.

use std::sync::{Arc, Mutex};

use saas_core::apps::{Apps, Migration};
use saas_core::store::{MigrationOutcome, MigrationProgress, Store, TenantStore};
use saas_core::{Error, Result};
use saas_store_postgres::{PgConfig, PgStore, Routing, with_tenant_tx};
use testkit::apps::{notes_migrations, registry, unique_title_migrations};
use testkit::{pg, records};

/// A fresh database of the test's own: `migrate` there sees only its
/// tenants.
async fn fresh_database(name: &str) -> Option<String> {
    if !pg::available().await {
        return None;
    }
    pg::drop_database(name).await;
    pg::ensure_database(name).await;
    Some(pg::url_for(name))
}

async fn connect(url: &str, apps: Apps) -> PgStore {
    PgStore::connect(PgConfig::new(url).with_apps(apps))
        .await
        .expect("connect")
}

async fn add_note(t: &Arc<dyn TenantStore>, title: &str) -> Result<i64> {
    let title = title.to_owned();
    with_tenant_tx(t, |tx| {
        Box::pin(async move {
            sqlx::query_scalar("INSERT INTO notes (title) VALUES ($1) RETURNING id")
                .bind(title)
                .fetch_one(&mut *tx)
                .await
                .map_err(Error::backend)
        })
    })
    .await
}

async fn titles(t: &Arc<dyn TenantStore>) -> Result<Vec<String>> {
    with_tenant_tx(t, |tx| {
        Box::pin(async move {
            sqlx::query_scalar("SELECT title FROM notes ORDER BY id")
                .fetch_all(&mut *tx)
                .await
                .map_err(Error::backend)
        })
    })
    .await
}

async fn applied(t: &Arc<dyn TenantStore>) -> Vec<String> {
    with_tenant_tx(t, |tx| {
        Box::pin(async move {
            sqlx::query_scalar(
                "SELECT name FROM saas_app_migrations WHERE app = 'notes' ORDER BY name",
            )
            .fetch_all(&mut *tx)
            .await
            .map_err(Error::backend)
        })
    })
    .await
    .expect("the ledger reads")
}

type Seen = Arc<Mutex<Vec<MigrationProgress>>>;

fn outcomes() -> (Seen, impl Fn(MigrationProgress) + Send + Sync) {
    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    (seen, move |p| sink.lock().expect("lock").push(p))
}

fn outcome_of(seen: &Seen, slug: &str) -> MigrationOutcome {
    seen.lock()
        .expect("lock")
        .iter()
        .find(|p| p.slug == slug)
        .map(|p| p.outcome)
        .expect("the tenant was reported")
}

#[tokio::test]
async fn host_migrations_reach_new_and_existing_tenants() {
    const DB: &str = "saas_test_apps_reach";
    let Some(url) = fresh_database(DB).await else {
        return;
    };
    let before = connect(&url, Apps::new()).await;
    let (old, _) = records::tenant(&before).await;

    let store = connect(&url, registry(notes_migrations())).await;
    let (new, _, new_handle) = records::open_tenant(&store).await;
    add_note(&new_handle, "new")
        .await
        .expect("the table is there");
    assert_eq!(applied(&new_handle).await, vec!["0001_notes", "0002_body"]);
    let old_handle = store.open(&old).await.expect("open");
    assert!(add_note(&old_handle, "old").await.is_err());

    let (seen, progress) = outcomes();
    let report = store.migrate(&progress).await.expect("migrate");
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(
        outcome_of(&seen, old.slug.as_str()),
        MigrationOutcome::Migrated
    );
    assert_eq!(
        outcome_of(&seen, new.slug.as_str()),
        MigrationOutcome::Current
    );
    add_note(&old_handle, "old").await.expect("migrated");
    assert_eq!(titles(&old_handle).await.expect("read"), vec!["old"]);
    assert_eq!(titles(&new_handle).await.expect("read"), vec!["new"]);
    let again = store.migrate(&|_| {}).await.expect("migrate");
    assert_eq!(again.migrated, 0, "{again:?}");
    // The store without the application still sees them as current.
    let plain = before.migrate(&|_| {}).await.expect("migrate");
    assert_eq!(plain.current, 2, "{plain:?}");
    drop((store, before, old_handle, new_handle));
    pg::drop_database(DB).await;
}

#[tokio::test]
async fn a_failing_host_migration_leaves_its_tenant_as_it_was() {
    const DB: &str = "saas_test_apps_failing";
    let Some(url) = fresh_database(DB).await else {
        return;
    };
    let store = connect(&url, registry(notes_migrations())).await;
    let (dup, _, dup_handle) = records::open_tenant(&store).await;
    let (fine, _, fine_handle) = records::open_tenant(&store).await;
    add_note(&dup_handle, "same").await.expect("insert");
    add_note(&dup_handle, "same").await.expect("insert");
    add_note(&fine_handle, "one").await.expect("insert");

    let mut migrations = notes_migrations();
    migrations.extend(unique_title_migrations());
    let next = connect(&url, registry(migrations)).await;
    let (seen, progress) = outcomes();
    let report = next.migrate(&progress).await.expect("migrate");
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

    let dup_handle = next.open(&dup).await.expect("open");
    let fine_handle = next.open(&fine).await.expect("open");
    assert_eq!(applied(&dup_handle).await, vec!["0001_notes", "0002_body"]);
    assert_eq!(applied(&fine_handle).await.len(), 4);
    let pinned = |t: Arc<dyn TenantStore>| async move {
        with_tenant_tx(&t, |tx| {
            Box::pin(async move {
                sqlx::query_scalar::<_, bool>("SELECT pinned FROM notes LIMIT 1")
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(Error::backend)
            })
        })
        .await
    };
    assert!(pinned(dup_handle.clone()).await.is_err());
    assert_eq!(pinned(fine_handle).await.expect("column"), Some(false));
    assert_eq!(
        titles(&dup_handle).await.expect("read"),
        vec!["same", "same"]
    );
    drop((store, next, dup_handle));
    pg::drop_database(DB).await;
}

#[tokio::test]
async fn a_failing_host_migration_fails_the_provisioning() {
    let Some(store) = pg::store_with(PgConfig::new(pg::url()).with_apps(registry({
        let mut m = notes_migrations();
        m.push(Migration::sql("0003_broken", "NOT SQL", "NOT SQL"));
        m
    })))
    .await
    else {
        return;
    };
    let tenant = records::new_tenant();
    let e = store
        .create_tenant(&tenant, &records::admin_record())
        .await
        .expect_err("the provisioning fails");
    assert!(saas_core::error::chain(&e).contains("0003_broken"), "{e:?}");
    assert!(
        store
            .tenant_by_slug(&tenant.slug)
            .await
            .expect("read")
            .is_none()
    );
    assert!(!pg::schema_exists(&pg::url(), &tenant.slug).await);
}

#[tokio::test]
async fn function_steps_run_and_other_dialects_are_refused() {
    let mut migrations = notes_migrations();
    migrations.push(
        Migration::new("0003_seed").postgres(saas_store_postgres::step(|tx| {
            Box::pin(async move {
                sqlx::query("INSERT INTO notes (title) VALUES ('welcome')")
                    .execute(&mut *tx)
                    .await?;
                Ok(())
            })
        })),
    );
    let Some(store) =
        pg::store_with(PgConfig::new(pg::url()).with_apps(registry(migrations))).await
    else {
        return;
    };
    let (tenant, _, handle) = records::open_tenant(&store).await;
    assert_eq!(titles(&handle).await.expect("read"), vec!["welcome"]);
    store
        .delete_tenant(tenant.id, chrono::Utc::now())
        .await
        .expect("cleanup");
    store.purge_tenant(tenant.id, None).await.expect("purge");

    let sqlite_only = registry(vec![Migration::new("x").sqlite("SELECT 1")]);
    assert!(
        PgStore::connect(PgConfig::new(pg::url()).with_apps(sqlite_only))
            .await
            .is_err()
    );
}

/// Two tenants' host tables through the scoped access, with every routing.
#[tokio::test]
async fn host_tables_stay_apart_whatever_the_routing() {
    for routing in [
        Routing::QualifiedSql,
        Routing::QualifiedUnnamed,
        Routing::QualifiedPrepared,
        Routing::SetLocalSearchPath,
    ] {
        // One connection: the scoped transactions and the check for what
        // they might leave behind share it.
        let config = PgConfig::new(pg::url())
            .with_routing(routing)
            .with_max_connections(1)
            .with_tenant_subpools(1)
            .with_apps(registry(notes_migrations()));
        let Some(store) = pg::store_with(config).await else {
            return;
        };
        let (a, _, ha) = records::open_tenant(&store).await;
        let (b, _, hb) = records::open_tenant(&store).await;
        for i in 0..5 {
            add_note(&ha, &format!("a{i}")).await.expect("insert");
            add_note(&hb, &format!("b{i}")).await.expect("insert");
            // A tenant's own queries in between, on the same pool.
            ha.count_users().await.expect("count");
        }
        let seen_a = titles(&ha).await.expect("read");
        let seen_b = titles(&hb).await.expect("read");
        assert!(
            seen_a.iter().all(|t| t.starts_with('a')),
            "{routing:?}: {seen_a:?}"
        );
        assert!(
            seen_b.iter().all(|t| t.starts_with('b')),
            "{routing:?}: {seen_b:?}"
        );
        assert_eq!((seen_a.len(), seen_b.len()), (5, 5));
        // Nothing is left on the tenants' one connection: a plain query
        // after the scoped transactions finds no notes table on the
        // default path.
        let leaked = sqlx::query("SELECT 1 FROM notes")
            .fetch_optional(&store.tenant_pools()[0])
            .await;
        assert!(leaked.is_err(), "{routing:?}: search_path leaked");
        // An error of the host's function rolls its writes back.
        let failed: Result<()> = with_tenant_tx(&ha, |tx| {
            Box::pin(async move {
                sqlx::query("INSERT INTO notes (title) VALUES ('rolled back')")
                    .execute(&mut *tx)
                    .await
                    .map_err(Error::backend)?;
                Err(Error::invalid("title", "no"))
            })
        })
        .await;
        assert!(failed.is_err());
        assert_eq!(titles(&ha).await.expect("read").len(), 5);
        for t in [a, b] {
            store
                .delete_tenant(t.id, chrono::Utc::now())
                .await
                .expect("cleanup");
            store.purge_tenant(t.id, None).await.expect("purge");
        }
        let e = add_note(&ha, "late").await.expect_err("deleted");
        assert!(!matches!(e, Error::Invalid { .. }), "{e:?}");
    }
}
