//! Connection recycling (`PgConfig::recycle_after`): a pooled connection is
//! replaced after serving a bounded number of units of work, so no
//! PostgreSQL backend keeps what it compiled for every tenant it ever
//! served; the tenants it served are still served correctly afterwards.

use saas_core::projects::{Scope, TaskQuery};
use saas_core::store::{PageRequest, Store};
use saas_store_postgres::PgConfig;
use sqlx::PgPool;
use testkit::{pg, records};

async fn backend_pid(pool: &PgPool) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .persistent(false)
        .fetch_one(pool)
        .await
        .expect("pid")
}

/// The backend pids of `uses` units of work on `pool`, one after the other.
async fn pids(pool: &PgPool, uses: usize) -> Vec<i32> {
    let mut out = Vec::with_capacity(uses);
    for _ in 0..uses {
        out.push(backend_pid(pool).await);
    }
    out
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

/// With one connection and `recycle_after(3)`, every third unit of work is
/// the last its backend serves: twelve units in a row run on backends that
/// each serve three (the first and last run may be cut by where the count
/// stood), none twice; both the catalog's pool and the tenants' recycle.
#[tokio::test]
async fn a_connection_is_replaced_after_its_units_of_work() {
    let config = PgConfig::new(pg::url())
        .with_max_connections(1)
        .with_recycle_after(3);
    let Some(store) = pg::store_with(config).await else {
        return;
    };
    for pool in [
        store.catalog_pool().clone(),
        store.tenant_pools()[0].clone(),
    ] {
        let got = pids(&pool, 12).await;
        let (lengths, own) = runs(&got);
        assert!(own, "a backend came back: {got:?}");
        let (first, last) = (lengths[0], lengths[lengths.len() - 1]);
        assert!(first <= 3 && last <= 3, "{got:?}");
        let inner = &lengths[1..lengths.len() - 1];
        assert!(inner.len() >= 2, "{got:?}");
        assert!(inner.iter().all(|n| *n == 3), "{got:?}");
    }
}

/// `recycle_after(0)`: the one connection serves everything.
#[tokio::test]
async fn zero_never_recycles() {
    let config = PgConfig::new(pg::url())
        .with_max_connections(1)
        .with_recycle_after(0);
    let Some(store) = pg::store_with(config).await else {
        return;
    };
    let pool = store.tenant_pools()[0].clone();
    let got = pids(&pool, 20).await;
    assert!(got.iter().all(|p| *p == got[0]), "{got:?}");
}

/// Tenants served across many recycled connections (every other unit of
/// work on a fresh backend, prepared statements included) read and write
/// their own data, and only theirs.
#[tokio::test]
async fn tenants_are_served_right_across_recycled_connections() {
    let config = PgConfig::new(pg::url())
        .with_max_connections(2)
        .with_recycle_after(2);
    let Some(store) = pg::store_with(config).await else {
        return;
    };
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
}
