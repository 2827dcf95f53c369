//! Moving a task to another project and reassigning it: every field that
//! names another object is checked on update exactly as on create.

use saas_core::commands::{NewTask, TaskPatch};
use saas_core::error::{Error, Resource};
use saas_core::patch::Patch;
use saas_core::projects::ProjectId;
use saas_core::users::Role;

use crate::Fixture;
use crate::assert_err;
use crate::harness::{
    World, assert_invalid, new_project, new_task, saas, saas_with_plans, small_catalog,
};

fn to(project: ProjectId) -> TaskPatch {
    TaskPatch {
        project: Some(project),
        ..TaskPatch::default()
    }
}

/// A member may move a task only into a project they may create tasks in;
/// a project they cannot see is an invalid `project`, one they see but may
/// not create in is forbidden; nothing changes when refused.
pub async fn moving_a_task_is_checked_as_creating_it_there(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, None).await;
    let admin = w.owner_session().await;
    let (mem, mem_s) = w.seed_session(Role::Member, "mem").await;
    let (_, mgr_s) = w.seed_session(Role::Manager, "mgr").await;
    let mine = admin.create_project(new_project("mine")).await.unwrap();
    let also = admin.create_project(new_project("also")).await.unwrap();
    let other = admin.create_project(new_project("other")).await.unwrap();
    admin.add_member(mine.id, mem.id).await.unwrap();
    admin.add_member(also.id, mem.id).await.unwrap();
    let t = mem_s.create_task(new_task(mine.id, "t")).await.unwrap();

    let before = w.snapshot().await;
    // The reported hole: a member moving a task into a project they are
    // not in.
    assert_invalid(mem_s.update_task(t.id, to(other.id)).await, "project");
    assert_invalid(
        mem_s.update_task(t.id, to(ProjectId(777_777))).await,
        "project",
    );
    // The move is refused before any other field is written.
    assert_invalid(
        mem_s
            .update_task(
                t.id,
                TaskPatch {
                    title: Some("renamed".into()),
                    ..to(other.id)
                },
            )
            .await,
        "project",
    );
    // A manager who cannot see the task cannot move it either.
    assert_err!(
        mgr_s.update_task(t.id, to(also.id)).await,
        Error::NotFound { .. }
    );
    assert_eq!(w.snapshot().await, before);

    // Into a project they are in: allowed, and the task is there.
    let moved = mem_s.update_task(t.id, to(also.id)).await.unwrap();
    assert_eq!(moved.project_id, also.id);
    assert_eq!(admin.task(t.id).await.unwrap().project_id, also.id);
    // Naming the project it is in is no move, and allowed.
    mem_s.update_task(t.id, to(also.id)).await.unwrap();
    // Admins move anywhere.
    let back = admin.update_task(t.id, to(other.id)).await.unwrap();
    assert_eq!(back.project_id, other.id);
    // Now the member no longer sees it.
    assert_err!(mem_s.task(t.id).await, Error::NotFound { .. });
}

/// The assignee, kept or new, must be involved in the destination project.
pub async fn a_moved_task_keeps_only_an_assignee_of_its_new_project(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, None).await;
    let admin = w.owner_session().await;
    let (mem, mem_s) = w.seed_session(Role::Member, "mem").await;
    let (dev, _) = w.seed_session(Role::Member, "dev").await;
    let a = admin.create_project(new_project("a")).await.unwrap();
    let b = admin.create_project(new_project("b")).await.unwrap();
    for u in [mem.id, dev.id] {
        admin.add_member(a.id, u).await.unwrap();
    }
    admin.add_member(b.id, mem.id).await.unwrap();
    let t = admin
        .create_task(NewTask {
            assigned_to_id: Some(dev.id),
            ..new_task(a.id, "t")
        })
        .await
        .unwrap();

    let before = w.snapshot().await;
    // dev is not in b: moving with the assignee kept is refused ...
    assert_invalid(mem_s.update_task(t.id, to(b.id)).await, "assigned_to_id");
    assert_invalid(admin.update_task(t.id, to(b.id)).await, "assigned_to_id");
    // ... and so is naming dev again with the move.
    assert_invalid(
        admin
            .update_task(
                t.id,
                TaskPatch {
                    assigned_to_id: Patch::Set(dev.id),
                    ..to(b.id)
                },
            )
            .await,
        "assigned_to_id",
    );
    // Reassigning within a, to someone outside a, is refused too.
    let (stranger, _) = w.seed_session(Role::Member, "stranger").await;
    let before_stranger = w.snapshot().await;
    assert_invalid(
        admin
            .update_task(
                t.id,
                TaskPatch {
                    assigned_to_id: Patch::Set(stranger.id),
                    ..TaskPatch::default()
                },
            )
            .await,
        "assigned_to_id",
    );
    assert_eq!(w.snapshot().await, before_stranger);
    assert_eq!(
        before.tasks, before_stranger.tasks,
        "refused moves changed a task"
    );

    // Moving with a new assignee of b, or unassigned, is allowed.
    let moved = mem_s
        .update_task(
            t.id,
            TaskPatch {
                assigned_to_id: Patch::Set(mem.id),
                ..to(b.id)
            },
        )
        .await
        .unwrap();
    assert_eq!(moved.project_id, b.id);
    assert_eq!(moved.assigned_to.map(|u| u.id), Some(mem.id));
    let back = admin
        .update_task(
            t.id,
            TaskPatch {
                assigned_to_id: Patch::Clear,
                ..to(a.id)
            },
        )
        .await
        .unwrap();
    assert_eq!((back.project_id, back.assigned_to), (a.id, None));
}

/// The plan's tasks-per-project limit applies to the destination of a move;
/// the project a task leaves gets its slot back.
pub async fn moving_a_task_respects_the_destination_limit(f: &dyn Fixture) {
    let saas = saas_with_plans(f.store(), small_catalog());
    let w = World::register(&saas, Some("tiny")).await;
    let admin = w.owner_session().await;
    let full = admin.create_project(new_project("full")).await.unwrap();
    let spare = admin.create_project(new_project("spare")).await.unwrap();
    for i in 0..3 {
        admin
            .create_task(new_task(full.id, &format!("f{i}")))
            .await
            .unwrap();
    }
    let t = admin.create_task(new_task(spare.id, "s")).await.unwrap();
    let before = w.snapshot().await;
    assert_err!(
        admin.update_task(t.id, to(full.id)).await,
        Error::PlanLimitExceeded {
            resource: Resource::TasksPerProject,
            limit: 3,
            ref plan,
        } if plan == "tiny"
    );
    assert_eq!(w.snapshot().await, before);
    // A task already in the full project may still be changed.
    let first = before
        .tasks
        .iter()
        .find(|x| x.project_id == full.id)
        .unwrap();
    admin
        .update_task(
            first.id,
            TaskPatch {
                title: Some("still fine".into()),
                ..to(full.id)
            },
        )
        .await
        .unwrap();
    // Moving one out frees a slot for the other.
    admin.update_task(first.id, to(spare.id)).await.unwrap();
    admin.update_task(t.id, to(full.id)).await.unwrap();
}
