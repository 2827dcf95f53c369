//! Connection recycling (`PgConfig::recycle_after`): a tenant sub-pool
//! replaces one connection for every so many units of work it ran for
//! tenants whose statements it does not keep prepared, so no PostgreSQL
//! backend keeps what it compiled for every tenant it ever served; busy
//! tenants never cause a reconnect, the catalog's pool never recycles, and
//! tenants are served correctly across the replacements.

use saas_core::projects::{Scope, TaskQuery};
use saas_core::store::{PageRequest, Store, TenantStore};
use saas_store_postgres::{PgConfig, with_tenant_tx};
use std::sync::Arc;
use testkit::{pg, records};

/// The backend pid a host transaction of `tenant` (a cold unit of work)
/// runs on.
async fn tenant_tx_pid(tenant: &Arc<dyn TenantStore>) -> i32 {
    with_tenant_tx(tenant.as_ref(), |conn| {
        Box::pin(async move {
            sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()")
                .persistent(false)
                .fetch_one(conn)
                .await
                .map_err(|e| saas_core::Error::backend(e.to_string()))
        })
    })
    .await
    .expect("host transaction")
}

/// The lengths of the runs of equal consecutive values in `pids`, and
/// whether every run has a backend of its own.
fn runs(pids: &[i32]) -> (Vec<usize>, bool) {
    let mut lengths: Vec<usize> = Vec::new();
    let mut backends: Vec<i32> = Vec::new();
    for (i, pid) in pids.iter().enumerate() {
        if i > 0 && pids[i - 1] == *pid {
            *lengths.last_mut().expect("a run") += 1;
        } else {
            lengths.push(1);
            backends.push(*pid);
        }
    }
    let distinct = backends.iter().collect::<std::collections::BTreeSet<_>>();
    (lengths, distinct.len() == backends.len())
}

/// One tenant connection, `recycle_after(3)`: every host transaction is a
/// cold unit, so twelve in a row run on backends that each serve three
/// (the first and last run may be cut by where the count stood), none
/// twice. The catalog's pool, meanwhile, keeps its one backend.
#[tokio::test]
async fn a_connection_is_replaced_after_its_cold_units() {
    let config = PgConfig::new(pg::url())
        .with_max_connections(1)
        .with_recycle_after(3);
    let Some(store) = pg::store_with(config).await else {
        return;
    };
    let catalog_before = pg::backend_pid(store.catalog_pool()).await;
    let (t, _) = records::tenant(&store).await;
    let h = store.open(&t).await.expect("open");
    let mut got = Vec::new();
    for _ in 0..12 {
        got.push(tenant_tx_pid(&h).await);
    }
    let (lengths, own) = runs(&got);
    assert!(own, "a backend came back: {got:?}");
    let (first, last) = (lengths[0], lengths[lengths.len() - 1]);
    assert!(first <= 3 && last <= 3, "{got:?}");
    let inner = &lengths[1..lengths.len() - 1];
    assert!(inner.len() >= 2, "{got:?}");
    assert!(inner.iter().all(|n| *n == 3), "{got:?}");
    for _ in 0..10 {
        assert_eq!(pg::backend_pid(store.catalog_pool()).await, catalog_before);
    }
}

/// `recycle_after(0)`: the one tenant connection serves every cold unit.
#[tokio::test]
async fn zero_never_recycles() {
    let config = PgConfig::new(pg::url())
        .with_max_connections(1)
        .with_recycle_after(0);
    let Some(store) = pg::store_with(config).await else {
        return;
    };
    let (t, _) = records::tenant(&store).await;
    let h = store.open(&t).await.expect("open");
    let first = tenant_tx_pid(&h).await;
    for _ in 0..20 {
        assert_eq!(tenant_tx_pid(&h).await, first);
    }
}

/// A busy tenant's requests run prepared and are not counted: forty of
/// them leave the one tenant connection in place with `recycle_after(5)`,
/// where forty requests spread over forty tenants replace it.
#[tokio::test]
async fn busy_tenants_do_not_recycle_and_spread_ones_do() {
    let config = PgConfig::new(pg::url())
        .with_max_connections(1)
        .with_recycle_after(5);
    let Some(store) = pg::store_with(config).await else {
        return;
    };
    let pool = store.tenant_pools()[0].clone();
    let (busy, _) = records::tenant(&store).await;
    let list = |h: Arc<dyn TenantStore>| async move {
        h.list_projects(Scope::All, PageRequest::first())
            .await
            .expect("projects");
    };
    // Warm up: the tenant becomes one of the busiest.
    for _ in 0..10 {
        list(store.open(&busy).await.expect("open")).await;
    }
    let before = pg::backend_pid(&pool).await;
    for _ in 0..40 {
        list(store.open(&busy).await.expect("open")).await;
    }
    assert_eq!(
        pg::backend_pid(&pool).await,
        before,
        "a busy tenant recycled"
    );
    let mut spread = Vec::new();
    for _ in 0..40 {
        spread.push(records::tenant(&store).await.0);
    }
    for t in &spread {
        list(store.open(t).await.expect("open")).await;
    }
    assert_ne!(
        pg::backend_pid(&pool).await,
        before,
        "cold units did not recycle"
    );
}

/// Tenants served across replaced connections (no statement is prepared,
/// so every unit of work is cold, and `recycle_after(1)` gives each a
/// fresh backend) read and write their own data, and only theirs.
#[tokio::test]
async fn tenants_are_served_right_across_recycled_connections() {
    let config = PgConfig::new(pg::url())
        .with_max_connections(2)
        .with_statement_cache_capacity(0)
        .with_recycle_after(1);
    let Some(store) = pg::store_with(config).await else {
        return;
    };
    let pool = store.tenant_pools()[0].clone();
    let first = pg::backend_pid(&pool).await;
    let mut tenants = Vec::new();
    for _ in 0..3 {
        let (t, admin) = records::tenant(&store).await;
        let h = store.open(&t).await.expect("open");
        let p = h
            .create_project(&records::project_record(t.slug.as_str(), admin.id), None)
            .await
            .expect("project");
        tenants.push((t, h, p, admin));
    }
    for round in 0..4 {
        for (t, h, p, admin) in &tenants {
            let title = format!("{} {round}", t.slug.as_str());
            h.create_task(&records::task_record(p.id, &title, admin.id), None)
                .await
                .expect("create");
        }
    }
    for (t, h, p, _) in &tenants {
        let projects = h
            .list_projects(Scope::All, PageRequest::first())
            .await
            .expect("projects");
        assert_eq!(projects.items.len(), 1);
        assert_eq!(projects.items[0].id, p.id);
        let tasks = h
            .list_tasks(&TaskQuery::new(Scope::All), PageRequest::first())
            .await
            .expect("tasks");
        assert_eq!(tasks.items.len(), 4);
        assert!(
            tasks
                .items
                .iter()
                .all(|task| task.title.starts_with(t.slug.as_str()) && task.project_id == p.id),
            "another tenant's task in {}",
            t.slug.as_str()
        );
    }
    assert_ne!(pg::backend_pid(&pool).await, first, "nothing was recycled");
}
