//! Rough figures for the SQLite backend (ignored by default; they measure,
//! they do not assert much). Run with
//! `cargo test -p saas-store-sqlite --test figures -- --ignored --nocapture`.

use std::sync::Arc;
use std::time::Instant;

use saas_core::projects::{Scope, TaskQuery};
use saas_core::store::{PageRequest, Store};
use saas_core::users::Role;
use saas_store_sqlite::SqliteOptions;
use testkit::records::{admin_record, new_tenant, project_record, task_record, user_record};
use testkit::sqlite::store_with;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run explicitly"]
async fn figures() {
    let tenants_n = 300;
    let options = SqliteOptions {
        handle_cache_capacity: 32,
        ..SqliteOptions::default()
    };
    let (_dir, store) = store_with(options);

    let started = Instant::now();
    let mut tenants = Vec::new();
    for _ in 0..tenants_n {
        let (tenant, admin) = store
            .create_tenant(&new_tenant(), &admin_record())
            .await
            .expect("create");
        tenants.push((tenant, admin));
    }
    let per = started.elapsed() / tenants_n;
    println!("register: {per:?} per tenant ({tenants_n} tenants)");

    // Round robin over more tenants than the cache holds: every open is a miss.
    let started = Instant::now();
    for (tenant, _) in &tenants {
        let handle = store.open(tenant).await.expect("open");
        handle.count_users().await.expect("count");
    }
    let per = started.elapsed() / tenants_n;
    println!(
        "open (cache miss) + one read: {per:?}; stats after: {:?}",
        store.stats()
    );

    let started = Instant::now();
    for (tenant, _) in &tenants {
        let handle = store.open(tenant).await.expect("open");
        handle.count_users().await.expect("count");
    }
    println!(
        "open (cache miss, file already in WAL) + one read: {:?}",
        started.elapsed() / tenants_n
    );

    // Hot tenant: cache hits.
    let (tenant, admin) = &tenants[0];
    let started = Instant::now();
    let n = 2000;
    for _ in 0..n {
        let handle = store.open(tenant).await.expect("open");
        handle.count_users().await.expect("count");
    }
    println!("open (cache hit) + one read: {:?}", started.elapsed() / n);

    let handle = store.open(tenant).await.expect("open");
    for i in 0..20 {
        handle
            .create_user(&user_record(&format!("u{i}"), Role::Member), None)
            .await
            .expect("user");
    }
    let project = handle
        .create_project(&project_record("p", admin.id), None)
        .await
        .expect("project");
    let started = Instant::now();
    for i in 0..500 {
        let mut record = task_record(project.id, &format!("task {i}"), admin.id);
        record.assigned_to = Some(saas_core::users::UserId(2 + (i % 20)));
        handle
            .create_task(&record, Some(10_000))
            .await
            .expect("task");
    }
    println!("create_task (limit checked): {:?}", started.elapsed() / 500);

    let started = Instant::now();
    let m = 200;
    for _ in 0..m {
        let page = handle
            .list_tasks(
                &TaskQuery::new(Scope::All),
                PageRequest::new(Some(1), Some(100)).expect("page"),
            )
            .await
            .expect("list");
        assert_eq!(page.items.len(), 100);
    }
    println!(
        "list_tasks, page of 100 with both user summaries: {:?}",
        started.elapsed() / m
    );

    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let contended = store.open(&tenants[1].0).await.expect("open");
    for i in 0..64 {
        let h = Arc::clone(&contended);
        let owner = tenants[1].1.id;
        set.spawn(async move {
            h.create_project(&project_record(&format!("c{i}"), owner), Some(10))
                .await
        });
    }
    let mut ok = 0;
    while let Some(r) = set.join_next().await {
        if r.expect("join").is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 10);
    println!(
        "64 concurrent create_project against a limit of 10: {:?} in all",
        started.elapsed()
    );
}
