//! Tenant-affine connections: each tenant's units of work run on its own
//! sub-pool (its second one only while the first is busy), so a backend
//! only ever sees its sub-pools' tenants.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use saas_core::projects::Scope;
use saas_core::store::{PageRequest, Store, TenantStore};
use saas_core::tenancy::Tenant;
use saas_store_postgres::{PgConfig, PgStore, tenant_schema_name, with_tenant_tx};
use sqlx::PgPool;
use testkit::{pg, records};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The tenant schemas named by the prepared statements of `pool`'s
/// connection (a sub-pool of one connection), among `tenants`.
async fn prepared_schemas(pool: &PgPool, tenants: &[Tenant]) -> BTreeSet<String> {
    let named: Vec<String> = sqlx::query_scalar("SELECT statement FROM pg_prepared_statements")
        .persistent(false)
        .fetch_all(pool)
        .await
        .expect("inspect");
    tenants
        .iter()
        .map(tenant_schema_name)
        .filter(|schema| named.iter().any(|s| s.contains(schema.as_str())))
        .collect()
}

/// Four sub-pools of one connection each, twelve busy tenants served one
/// request at a time (so a home sub-pool is never busy): every tenant's
/// prepared statements are on its home connection and on no other, the
/// tenants sharing a connection each see only their own data, and host
/// access (`with_tenant_tx`) runs on the same backend.
#[tokio::test]
async fn each_tenant_runs_on_its_home_subpool() {
    let config = PgConfig::new(pg::url())
        .with_max_connections(4)
        .with_tenant_subpools(4);
    let Some(store) = pg::store_with(config).await else {
        return;
    };
    let pools = store.tenant_pools();
    assert_eq!(pools.len(), 4);
    let mut tenants = Vec::new();
    for _ in 0..12 {
        let (t, admin) = records::tenant(&store).await;
        let h = store.open(&t).await.expect("open");
        h.create_project(&records::project_record(t.slug.as_str(), admin.id), None)
            .await
            .expect("write");
        tenants.push(t);
    }
    for _ in 0..5 {
        for t in &tenants {
            // A request: one handle, a few statements.
            let h = store.open(t).await.expect("open");
            let seen = h
                .list_projects(Scope::All, PageRequest::first())
                .await
                .expect("read");
            let names: Vec<&str> = seen.items.iter().map(|p| p.name.as_str()).collect();
            assert_eq!(
                names,
                [t.slug.as_str()],
                "a tenant sees its own projects only"
            );
            assert_eq!(h.count_users().await.expect("count"), 1);
        }
    }
    let mut on = Vec::new();
    for pool in &pools {
        on.push(prepared_schemas(pool, &tenants).await);
    }
    let homes: BTreeSet<usize> = tenants
        .iter()
        .map(|t| store.tenant_subpools_of(t).0)
        .collect();
    assert!(homes.len() > 1, "twelve tenants all hashed to one sub-pool");
    for t in &tenants {
        let schema = tenant_schema_name(t);
        let (home, _) = store.tenant_subpools_of(t);
        for (i, schemas) in on.iter().enumerate() {
            assert_eq!(
                schemas.contains(&schema),
                i == home,
                "{schema} (home {home}) on sub-pool {i}: {on:?}"
            );
        }
        // Host access goes home too.
        let h = store.open(t).await.expect("open");
        let pid: i32 = with_tenant_tx(&h, |tx| {
            Box::pin(async move {
                sqlx::query_scalar("SELECT pg_backend_pid()")
                    .persistent(false)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(saas_core::Error::backend)
            })
        })
        .await
        .expect("scoped");
        assert_eq!(pid, pg::backend_pid(&pools[home]).await);
    }
    for t in &tenants {
        store.purge_tenant(t.id, None).await.expect("cleanup");
    }
}

/// Holds one unit of work of `h` (a scoped transaction) on whichever
/// sub-pool it is routed to, until the returned sender fires; returns the
/// backend pid it runs on as soon as it runs.
async fn hold(h: &Arc<dyn TenantStore>) -> (oneshot::Sender<()>, i32, JoinHandle<()>) {
    let (release, released) = oneshot::channel::<()>();
    let (ran, pid) = oneshot::channel::<i32>();
    let h = Arc::clone(h);
    let task = tokio::spawn(async move {
        with_tenant_tx(&h, move |tx| {
            Box::pin(async move {
                let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                    .persistent(false)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(saas_core::Error::backend)?;
                let _ = ran.send(pid);
                let _ = released.await;
                Ok::<(), saas_core::Error>(())
            })
        })
        .await
        .expect("held unit");
    });
    (release, pid.await.expect("the held unit ran"), task)
}

/// With its home connection taken by one of its units of work, a tenant's
/// next unit runs on its spare sub-pool, unnamed (the spare prepares only
/// its own tenants); with both taken it waits for home and, past the
/// acquire timeout, fails as any exhausted pool does (unavailable, the 503
/// path), then recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_home_spills_to_the_spare_then_times_out() {
    let mut config = PgConfig::new(pg::url())
        .with_max_connections(2)
        .with_tenant_subpools(2);
    config.acquire_timeout = Duration::from_millis(300);
    let Some(store) = pg::store_with(config).await else {
        return;
    };
    let pools = store.tenant_pools();
    let (t, _) = records::tenant(&store).await;
    let (home, spare) = store.tenant_subpools_of(&t);
    assert_ne!(home, spare);
    for _ in 0..5 {
        let h = store.open(&t).await.expect("open");
        h.count_users().await.expect("busy tenant");
    }
    let mine = std::slice::from_ref(&t);
    assert_eq!(prepared_schemas(&pools[home], mine).await.len(), 1);
    let home_pid = pg::backend_pid(&pools[home]).await;
    let spare_pid = pg::backend_pid(&pools[spare]).await;

    let h = store.open(&t).await.expect("open");
    let (release_home, pid, home_task) = hold(&h).await;
    assert_eq!(pid, home_pid, "the first unit runs at home");
    let h = store.open(&t).await.expect("open a busy tenant");
    assert_eq!(h.count_users().await.expect("runs on the spare"), 1);
    assert!(
        prepared_schemas(&pools[spare], mine).await.is_empty(),
        "a spilled unit prepared its statements on the spare"
    );
    let (release_spare, pid, spare_task) = hold(&h).await;
    assert_eq!(pid, spare_pid, "the second held unit spilled");

    let err = h.count_users().await.expect_err("both sub-pools taken");
    assert!(
        matches!(err, saas_core::Error::Unavailable { .. }),
        "{err:?}"
    );
    release_home.send(()).expect("release");
    home_task.await.expect("joined");
    assert_eq!(h.count_users().await.expect("home is free again"), 1);
    release_spare.send(()).expect("release");
    spare_task.await.expect("joined");
    store.purge_tenant(t.id, None).await.expect("cleanup");
}

/// Sub-pools are bounded by the connections they share, and zero is refused.
#[tokio::test]
async fn subpools_share_the_connections() {
    let Some(store) = pg::store_with(
        PgConfig::new(pg::url())
            .with_max_connections(3)
            .with_tenant_subpools(8),
    )
    .await
    else {
        return;
    };
    let pools = store.tenant_pools();
    assert_eq!(pools.len(), 3);
    assert!(pools.iter().all(|p| p.options().get_max_connections() == 1));
    let zero = PgStore::connect(PgConfig::new(pg::url()).with_tenant_subpools(0)).await;
    assert!(zero.is_err());
}
