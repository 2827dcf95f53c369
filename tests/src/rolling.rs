//! Rolling deploys, for every backend: a process still on the previous
//! build keeps serving a tenant this build migrated to a newer, additive
//! schema version (see `saas_core::migration`).
//!
//! The previous build is this one with its last tenant schema migration
//! withheld (the stores' hidden `withhold_tenant_migrations`): it
//! provisions at the older version and reads and writes with the
//! statements of that version, as the previous release did.

use std::sync::Arc;

use saas_core::commands::{NewTask, TaskPatch};
use saas_core::projects::TaskStatus;
use saas_core::session::TaskFilter;
use saas_core::store::Store;

use crate::harness::{World, all, new_project, new_task, saas};

/// `previous` (withholding the last migration) provisions a tenant and
/// writes tasks; `current` migrates the fleet; then `previous` reads,
/// creates, updates and completes tasks of the migrated tenant correctly,
/// and `current` sees `started_at` kept for everything `previous` wrote
/// after the migration (the storage keeps it, not the build).
pub async fn previous_build_serves_a_tenant_this_build_migrated(
    previous: Arc<dyn Store>,
    current: Arc<dyn Store>,
) {
    let old = saas(Arc::clone(&previous));
    let new = saas(Arc::clone(&current));
    let w = World::register(&old, None).await;
    let admin = w.owner_session().await;
    let p = admin.create_project(new_project("p")).await.unwrap();
    let started_before = admin
        .create_task(NewTask {
            status: Some(TaskStatus::InProgress),
            ..new_task(p.id, "started before the migration")
        })
        .await
        .unwrap();
    assert_eq!(started_before.started_at, None, "the old build reads none");

    let report = current.migrate(&|_| {}).await.expect("migrate");
    assert!(
        report
            .failed
            .iter()
            .all(|(slug, _)| slug != w.tenant.slug.as_str()),
        "{:?}",
        report.failed
    );
    let migrated = World {
        saas: new.clone(),
        ..w.clone()
    };
    let seen_new = migrated
        .owner_session()
        .await
        .task(started_before.id)
        .await
        .unwrap();
    assert_eq!(
        seen_new.started_at, None,
        "tasks that left todo before the migration have no known start"
    );

    // The previous build, on the migrated tenant: every operation works.
    let admin = w.owner_session().await;
    let created = admin
        .create_task(NewTask {
            status: Some(TaskStatus::Review),
            ..new_task(p.id, "created by the old build")
        })
        .await
        .unwrap();
    assert_eq!(created.status, TaskStatus::Review);
    assert_eq!(created.title, "created by the old build");
    let todo = admin
        .create_task(new_task(p.id, "to do, then started"))
        .await
        .unwrap();
    let started = admin
        .update_task(
            todo.id,
            TaskPatch {
                status: Some(TaskStatus::InProgress),
                title: Some("started by the old build".to_owned()),
                ..TaskPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(started.status, TaskStatus::InProgress);
    assert_eq!(started.title, "started by the old build");
    let done = admin.mark_complete(created.id).await.unwrap();
    assert_eq!(done.status, TaskStatus::Done);
    assert!(done.completed_at.is_some());
    assert_eq!(admin.task(todo.id).await.unwrap().title, started.title);
    let listed = admin
        .list_tasks(&TaskFilter::default(), all())
        .await
        .unwrap();
    assert_eq!(listed.count, 3);
    let stats = admin.statistics(p.id).await.unwrap();
    assert_eq!(stats.total_tasks, 3);

    // This build sees what the storage kept while the old build wrote.
    let admin_new = migrated.owner_session().await;
    let created_new = admin_new.task(created.id).await.unwrap();
    assert_eq!(created_new.started_at, Some(created.created_at));
    assert_eq!(created_new.completed_at, done.completed_at);
    let started_new = admin_new.task(todo.id).await.unwrap();
    assert_eq!(started_new.started_at, Some(started.updated_at));
    // And back to todo clears it, whichever build writes.
    let reopened = admin
        .update_task(
            todo.id,
            TaskPatch {
                status: Some(TaskStatus::Todo),
                ..TaskPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(reopened.status, TaskStatus::Todo);
    assert_eq!(admin_new.task(todo.id).await.unwrap().started_at, None);
}
