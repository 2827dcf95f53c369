//! Tasks: who creates and changes them, completion, filters, ordering,
//! statistics and the dashboard.

use std::collections::BTreeMap;

use saas_core::commands::{NewProject, NewTask, TaskPatch};
use saas_core::error::{Entity, Error};
use saas_core::patch::Patch;
use saas_core::projects::{
    Priority, ProjectStatus, Task, TaskId, TaskOrderField, TaskOrdering, TaskStatus,
};
use saas_core::session::{Assignee, TaskFilter};
use saas_core::store::{Page, PageRequest};
use saas_core::users::{Role, UserId};

use crate::Fixture;
use crate::assert_err;
use crate::harness::{World, all, assert_invalid, new_project, new_task, saas, year};

fn ids(page: Page<Task>) -> Vec<TaskId> {
    page.items.into_iter().map(|t| t.id).collect()
}

/// Admins create tasks anywhere; managers and members in projects they are
/// involved in; viewers nowhere. Assignees must be the project's owner or
/// members.
pub async fn task_creation_rules(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("basic")).await;
    let (mgr, mgr_s) = w.seed_session(Role::Manager, "mgr").await;
    let (mem, mem_s) = w.seed_session(Role::Member, "mem").await;
    let (view, view_s) = w.seed_session(Role::Viewer, "view").await;
    let (outsider, outsider_s) = w.seed_session(Role::Member, "outsider").await;
    let admin = w.owner_session().await;
    let p = mgr_s.create_project(new_project("p")).await.unwrap();
    mgr_s.add_member(p.id, mem.id).await.unwrap();
    mgr_s.add_member(p.id, view.id).await.unwrap();

    let t = admin
        .create_task(NewTask {
            description: "details".into(),
            priority: Some(Priority::Urgent),
            assigned_to_id: Some(mem.id),
            due_date: Some(year(2100)),
            ..new_task(p.id, "  By admin ")
        })
        .await
        .unwrap();
    assert_eq!(t.title, "By admin");
    assert_eq!(t.description, "details");
    assert_eq!(t.status, TaskStatus::Todo);
    assert_eq!(t.priority, Priority::Urgent);
    assert_eq!(t.assigned_to.as_ref().map(|u| u.id), Some(mem.id));
    assert_eq!(t.created_by.id, w.owner.id);
    assert_eq!(t.project_id, p.id);
    assert_eq!(t.due_date, Some(year(2100)));
    assert_eq!(t.completed_at, None);
    assert_eq!(t.created_at, t.updated_at);
    assert_eq!(admin.task(t.id).await.unwrap(), t);

    let by_mgr = mgr_s
        .create_task(NewTask {
            assigned_to_id: Some(mgr.id),
            ..new_task(p.id, "by manager, to the owner")
        })
        .await
        .unwrap();
    assert_eq!(by_mgr.priority, Priority::Medium);
    let by_mem = mem_s
        .create_task(new_task(p.id, "by member"))
        .await
        .unwrap();
    assert_eq!(by_mem.created_by.id, mem.id);
    let done = mem_s
        .create_task(NewTask {
            status: Some(TaskStatus::Done),
            ..new_task(p.id, "born done")
        })
        .await
        .unwrap();
    assert_eq!(done.completed_at, Some(done.created_at));

    let before = w.snapshot().await;
    assert_err!(
        view_s.create_task(new_task(p.id, "viewer")).await,
        Error::Forbidden { .. }
    );
    // A project the actor cannot see, or that does not exist, is an invalid field.
    assert_invalid(
        outsider_s.create_task(new_task(p.id, "outsider")).await,
        "project",
    );
    assert_invalid(
        admin
            .create_task(new_task(saas_core::projects::ProjectId(777_777), "nowhere"))
            .await,
        "project",
    );
    assert_invalid(
        admin
            .create_task(NewTask {
                assigned_to_id: Some(outsider.id),
                ..new_task(p.id, "to a stranger")
            })
            .await,
        "assigned_to_id",
    );
    assert_invalid(
        admin
            .create_task(NewTask {
                assigned_to_id: Some(UserId(555_555)),
                ..new_task(p.id, "to nobody")
            })
            .await,
        "assigned_to_id",
    );
    assert_eq!(w.snapshot().await, before);
}

/// Invalid titles and descriptions are refused under their names; nothing
/// changes. (Unknown statuses and priorities are refused by the HTTP crate's
/// bodies before they reach the core.)
pub async fn task_validation_errors_change_nothing(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("basic")).await;
    let admin = w.owner_session().await;
    let p = admin.create_project(new_project("p")).await.unwrap();
    let t = admin.create_task(new_task(p.id, "existing")).await.unwrap();
    let before = w.snapshot().await;
    assert_invalid(admin.create_task(new_task(p.id, "")).await, "title");
    assert_invalid(admin.create_task(new_task(p.id, " \t ")).await, "title");
    assert_invalid(
        admin.create_task(new_task(p.id, &"t".repeat(201))).await,
        "title",
    );
    assert_invalid(
        admin
            .create_task(NewTask {
                description: "d".repeat(10_001),
                ..new_task(p.id, "ok")
            })
            .await,
        "description",
    );
    assert_invalid(
        admin
            .update_task(
                t.id,
                TaskPatch {
                    title: Some(String::new()),
                    status: Some(TaskStatus::Done),
                    ..TaskPatch::default()
                },
            )
            .await,
        "title",
    );
    assert_invalid(
        admin
            .update_task(
                t.id,
                TaskPatch {
                    assigned_to_id: Patch::Set(UserId(555_555)),
                    priority: Some(Priority::Low),
                    ..TaskPatch::default()
                },
            )
            .await,
        "assigned_to_id",
    );
    assert_invalid(
        admin
            .list_tasks(
                &TaskFilter {
                    search: Some("s".repeat(201)),
                    ..TaskFilter::default()
                },
                all(),
            )
            .await,
        "search",
    );
    assert_err!(
        admin
            .update_task(TaskId(999_999), TaskPatch::default())
            .await,
        Error::NotFound {
            entity: Entity::Task
        }
    );
    assert_err!(
        admin.delete_task(TaskId(999_999)).await,
        Error::NotFound {
            entity: Entity::Task
        }
    );
    assert_err!(
        admin.mark_complete(TaskId(999_999)).await,
        Error::NotFound {
            entity: Entity::Task
        }
    );
    assert_eq!(w.snapshot().await, before);
    for bad in ["password", "-", "created_at; DROP TABLE tasks", ""] {
        assert_invalid(bad.parse::<TaskOrdering>(), "ordering");
    }
}

/// Members change tasks in their projects and delete only their own;
/// managers change and delete tasks in their projects; viewers do neither;
/// tasks of invisible projects are not found.
pub async fn task_update_and_delete_rules(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("basic")).await;
    let (mgr, mgr_s) = w.seed_session(Role::Manager, "mgr").await;
    let (mem, mem_s) = w.seed_session(Role::Member, "mem").await;
    let (mem2, mem2_s) = w.seed_session(Role::Member, "mem2").await;
    let (view, view_s) = w.seed_session(Role::Viewer, "view").await;
    let (_, outsider_s) = w.seed_session(Role::Manager, "outsider").await;
    let admin = w.owner_session().await;
    let p = admin.create_project(new_project("p")).await.unwrap();
    for u in [mgr.id, mem.id, mem2.id, view.id] {
        admin.add_member(p.id, u).await.unwrap();
    }
    let by_admin = admin.create_task(new_task(p.id, "by admin")).await.unwrap();
    let by_mem = mem_s.create_task(new_task(p.id, "by mem")).await.unwrap();

    // Members update any task of their projects.
    let t = mem2_s
        .update_task(
            by_admin.id,
            TaskPatch {
                title: Some("renamed".into()),
                priority: Some(Priority::High),
                assigned_to_id: Patch::Set(mem2.id),
                due_date: Patch::Set(year(2001)),
                ..TaskPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(t.title, "renamed");
    assert_eq!(t.priority, Priority::High);
    assert_eq!(t.assigned_to.as_ref().map(|u| u.id), Some(mem2.id));
    assert_eq!(t.due_date, Some(year(2001)));
    assert!(t.updated_at >= by_admin.updated_at);
    assert_eq!(t.created_at, by_admin.created_at);
    assert_eq!(t.created_by.id, w.owner.id);

    let before = w.snapshot().await;
    assert_err!(mem2_s.delete_task(by_mem.id).await, Error::Forbidden { .. });
    assert_err!(
        mem_s.delete_task(by_admin.id).await,
        Error::Forbidden { .. }
    );
    assert_err!(
        view_s
            .update_task(
                by_admin.id,
                TaskPatch {
                    title: Some("x".into()),
                    ..TaskPatch::default()
                }
            )
            .await,
        Error::Forbidden { .. }
    );
    assert_err!(
        view_s.mark_complete(by_admin.id).await,
        Error::Forbidden { .. }
    );
    assert_err!(
        view_s.delete_task(by_admin.id).await,
        Error::Forbidden { .. }
    );
    for r in [
        outsider_s.task(by_admin.id).await.map(|_| ()),
        outsider_s
            .update_task(by_admin.id, TaskPatch::default())
            .await
            .map(|_| ()),
        outsider_s.delete_task(by_admin.id).await,
    ] {
        assert_err!(
            r,
            Error::NotFound {
                entity: Entity::Task
            }
        );
    }
    assert_eq!(w.snapshot().await, before);

    // Unassigning with null, clearing the due date.
    let cleared = mem_s
        .update_task(
            by_admin.id,
            TaskPatch {
                assigned_to_id: Patch::Clear,
                due_date: Patch::Clear,
                ..TaskPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(cleared.assigned_to, None);
    assert_eq!(cleared.due_date, None);
    assert_eq!(cleared.priority, Priority::High);

    // A member who leaves the project loses sight of its tasks.
    admin.remove_member(p.id, mem2.id).await.unwrap();
    assert_err!(
        mem2_s.task(by_admin.id).await,
        Error::NotFound {
            entity: Entity::Task
        }
    );
    // The assignee must still be involved when the assignment changes.
    assert_invalid(
        admin
            .update_task(
                by_admin.id,
                TaskPatch {
                    assigned_to_id: Patch::Set(mem2.id),
                    ..TaskPatch::default()
                },
            )
            .await,
        "assigned_to_id",
    );

    mem_s.delete_task(by_mem.id).await.unwrap();
    mgr_s.delete_task(by_admin.id).await.unwrap();
    assert!(w.snapshot().await.tasks.is_empty());
    let again = admin.create_task(new_task(p.id, "again")).await.unwrap();
    admin.delete_task(again.id).await.unwrap();
    assert_err!(
        admin.delete_task(again.id).await,
        Error::NotFound {
            entity: Entity::Task
        }
    );
}

/// Completing sets `completed_at` once; reopening clears it.
pub async fn mark_complete_sets_completed_at_and_reopening_clears_it(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("basic")).await;
    let (mem, mem_s) = w.seed_session(Role::Member, "mem").await;
    let admin = w.owner_session().await;
    let p = admin.create_project(new_project("p")).await.unwrap();
    admin.add_member(p.id, mem.id).await.unwrap();
    let t = admin
        .create_task(NewTask {
            due_date: Some(year(2001)),
            ..new_task(p.id, "t")
        })
        .await
        .unwrap();
    assert_eq!(admin.statistics(p.id).await.unwrap().overdue_tasks, 1);
    let done = mem_s.mark_complete(t.id).await.unwrap();
    assert_eq!(done.status, TaskStatus::Done);
    let at = done.completed_at.expect("completed_at is set");
    assert!(at >= t.created_at);
    assert_eq!(admin.statistics(p.id).await.unwrap().overdue_tasks, 0);
    let again = mem_s.mark_complete(t.id).await.unwrap();
    assert_eq!(
        again.completed_at,
        Some(at),
        "completing twice keeps the time"
    );
    let same = admin
        .update_task(
            t.id,
            TaskPatch {
                status: Some(TaskStatus::Done),
                ..TaskPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(same.completed_at, Some(at));
    let reopened = admin
        .update_task(
            t.id,
            TaskPatch {
                status: Some(TaskStatus::Review),
                ..TaskPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(reopened.completed_at, None);
    assert_eq!(reopened.status, TaskStatus::Review);
    assert_eq!(admin.task(t.id).await.unwrap(), reopened);
    let redone = admin.mark_complete(t.id).await.unwrap();
    assert!(redone.completed_at.is_some_and(|c| c >= at));
}

/// Five tasks in two projects, seen by an admin and by a member of one.
struct Fixture5 {
    w: World,
    mem: UserId,
    p1: saas_core::projects::ProjectId,
    p2: saas_core::projects::ProjectId,
    t: [TaskId; 5],
}

async fn five_tasks(f: &dyn Fixture) -> Fixture5 {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("basic")).await;
    let mem = w.seed_user(Role::Member, "mem").await;
    let admin = w.owner_session().await;
    let p1 = admin
        .create_project(NewProject {
            status: Some(ProjectStatus::Active),
            ..new_project("p1")
        })
        .await
        .unwrap();
    let p2 = admin.create_project(new_project("p2")).await.unwrap();
    admin.add_member(p1.id, mem.id).await.unwrap();
    let specs = [
        // project, title, description, status, priority, assignee, due
        (
            p1.id,
            "Write docs",
            "about 100%",
            TaskStatus::Todo,
            Priority::High,
            Some(mem.id),
            Some(year(2000)),
        ),
        (
            p1.id,
            "Fix bug_42",
            "",
            TaskStatus::Done,
            Priority::Urgent,
            Some(w.owner.id),
            Some(year(2100)),
        ),
        (
            p1.id,
            "review PR",
            "Ask WRITERS",
            TaskStatus::Review,
            Priority::Low,
            None,
            None,
        ),
        (
            p2.id,
            "Deploy",
            "",
            TaskStatus::InProgress,
            Priority::High,
            Some(w.owner.id),
            Some(year(2001)),
        ),
        (
            p2.id,
            "write tests",
            "back\\slash",
            TaskStatus::Todo,
            Priority::Medium,
            None,
            None,
        ),
    ];
    let mut t = [TaskId(0); 5];
    for (i, (project, title, description, status, priority, assignee, due)) in
        specs.into_iter().enumerate()
    {
        t[i] = admin
            .create_task(NewTask {
                project,
                title: title.into(),
                description: description.into(),
                status: Some(status),
                priority: Some(priority),
                assigned_to_id: assignee,
                due_date: due,
            })
            .await
            .unwrap()
            .id;
    }
    Fixture5 {
        w,
        mem: mem.id,
        p1: p1.id,
        p2: p2.id,
        t,
    }
}

/// Filters by project, status, priority, assignee (an id or me) and search
/// (ASCII-case-insensitive, `%` `_` `\` literal), within what the actor sees.
pub async fn task_filters_and_search(f: &dyn Fixture) {
    let Fixture5 { w, mem, p1, p2, t } = five_tasks(f).await;
    let admin = w.owner_session().await;
    let member = w.session(mem).await;
    let by_id = Some(TaskOrdering {
        field: TaskOrderField::Id,
        descending: false,
    });
    let list = |filter: TaskFilter| {
        let admin = admin.clone();
        async move {
            ids(admin
                .list_tasks(
                    &TaskFilter {
                        ordering: by_id,
                        ..filter
                    },
                    all(),
                )
                .await
                .unwrap())
        }
    };
    assert_eq!(list(TaskFilter::default()).await, t.to_vec());
    assert_eq!(
        list(TaskFilter {
            project: Some(p1),
            ..TaskFilter::default()
        })
        .await,
        vec![t[0], t[1], t[2]]
    );
    assert_eq!(
        list(TaskFilter {
            project: Some(p2),
            status: Some(TaskStatus::Todo),
            ..TaskFilter::default()
        })
        .await,
        vec![t[4]]
    );
    assert_eq!(
        list(TaskFilter {
            status: Some(TaskStatus::Todo),
            ..TaskFilter::default()
        })
        .await,
        vec![t[0], t[4]]
    );
    assert_eq!(
        list(TaskFilter {
            priority: Some(Priority::High),
            ..TaskFilter::default()
        })
        .await,
        vec![t[0], t[3]]
    );
    assert_eq!(
        list(TaskFilter {
            assigned_to: Some(Assignee::User(w.owner.id)),
            ..TaskFilter::default()
        })
        .await,
        vec![t[1], t[3]]
    );
    assert_eq!(
        list(TaskFilter {
            assigned_to: Some(Assignee::Me),
            ..TaskFilter::default()
        })
        .await,
        vec![t[1], t[3]]
    );
    assert_eq!(
        list(TaskFilter {
            assigned_to: Some(Assignee::User(UserId(99_999))),
            ..TaskFilter::default()
        })
        .await,
        vec![]
    );
    for (search, expected) in [
        ("WRITE", vec![t[0], t[2], t[4]]),
        ("write docs", vec![t[0]]),
        ("%", vec![t[0]]),
        ("_", vec![t[1]]),
        ("\\", vec![t[4]]),
        ("bug_4", vec![t[1]]),
        ("bug%", vec![]),
        ("b_g", vec![]),
        ("  deploy  ", vec![t[3]]),
        ("", t.to_vec()),
        ("nothing like it", vec![]),
    ] {
        assert_eq!(
            list(TaskFilter {
                search: Some(search.into()),
                ..TaskFilter::default()
            })
            .await,
            expected,
            "search {search:?}"
        );
    }
    assert_eq!(
        list(TaskFilter {
            search: Some("write".into()),
            status: Some(TaskStatus::Todo),
            priority: Some(Priority::Medium),
            ..TaskFilter::default()
        })
        .await,
        vec![t[4]]
    );

    // The member sees only the tasks of p1.
    let mine = |filter: TaskFilter| {
        let member = member.clone();
        async move {
            ids(member
                .list_tasks(
                    &TaskFilter {
                        ordering: by_id,
                        ..filter
                    },
                    all(),
                )
                .await
                .unwrap())
        }
    };
    assert_eq!(mine(TaskFilter::default()).await, vec![t[0], t[1], t[2]]);
    assert_eq!(
        mine(TaskFilter {
            project: Some(p2),
            ..TaskFilter::default()
        })
        .await,
        vec![]
    );
    assert_eq!(
        mine(TaskFilter {
            assigned_to: Some(Assignee::Me),
            ..TaskFilter::default()
        })
        .await,
        vec![t[0]]
    );
    assert_eq!(
        mine(TaskFilter {
            search: Some("deploy".into()),
            ..TaskFilter::default()
        })
        .await,
        vec![]
    );
    let counts = member.task_counts(&TaskFilter::default()).await.unwrap();
    assert_eq!(counts.total, 3);
    assert_eq!(counts.overdue, 1);
    let counts = admin
        .task_counts(&TaskFilter {
            priority: Some(Priority::High),
            ..TaskFilter::default()
        })
        .await
        .unwrap();
    assert_eq!((counts.total, counts.overdue), (2, 2));
}

/// Every ordering field in both directions: ties broken by id ascending,
/// missing due dates last both ways, titles by byte order.
pub async fn task_ordering_breaks_ties_by_id_and_puts_missing_due_dates_last(f: &dyn Fixture) {
    let Fixture5 { w, t, .. } = five_tasks(f).await;
    let admin = w.owner_session().await;
    let order = |s: &'static str| {
        let admin = admin.clone();
        async move {
            ids(admin
                .list_tasks(
                    &TaskFilter {
                        ordering: Some(s.parse().unwrap()),
                        ..TaskFilter::default()
                    },
                    all(),
                )
                .await
                .unwrap())
        }
    };
    let [a, b, c, d, e] = t;
    assert_eq!(
        ids(admin
            .list_tasks(&TaskFilter::default(), all())
            .await
            .unwrap()),
        vec![e, d, c, b, a],
        "newest first by default"
    );
    assert_eq!(order("-created_at").await, vec![e, d, c, b, a]);
    assert_eq!(order("created_at").await, vec![a, b, c, d, e]);
    assert_eq!(order("id").await, vec![a, b, c, d, e]);
    assert_eq!(order("-id").await, vec![e, d, c, b, a]);
    assert_eq!(order("priority").await, vec![c, e, a, d, b]);
    assert_eq!(order("-priority").await, vec![b, a, d, e, c]);
    assert_eq!(order("status").await, vec![a, e, d, c, b]);
    assert_eq!(order("-status").await, vec![b, c, d, a, e]);
    assert_eq!(order("due_date").await, vec![a, d, b, c, e]);
    assert_eq!(order("-due_date").await, vec![b, d, a, c, e]);
    // "Deploy" < "Fix bug_42" < "Write docs" < "review PR" < "write tests"
    assert_eq!(order("title").await, vec![d, b, a, c, e]);
    assert_eq!(order("-title").await, vec![e, c, a, b, d]);
    assert_eq!(order("updated_at").await, vec![a, b, c, d, e]);
    // Touching a task moves it to the end by updated_at.
    admin
        .update_task(
            b,
            TaskPatch {
                priority: Some(Priority::Urgent),
                ..TaskPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(order("-updated_at").await, vec![b, e, d, c, a]);
}

/// `my_tasks` lists the actor's assignments by due date, missing dates last.
pub async fn my_tasks_lists_my_assignments_by_due_date(f: &dyn Fixture) {
    let Fixture5 { w, mem, p2, t, .. } = five_tasks(f).await;
    let admin = w.owner_session().await;
    let undated = admin
        .create_task(NewTask {
            assigned_to_id: Some(w.owner.id),
            ..new_task(p2, "undated")
        })
        .await
        .unwrap();
    let early = admin
        .create_task(NewTask {
            assigned_to_id: Some(w.owner.id),
            due_date: Some(year(1999)),
            ..new_task(p2, "early")
        })
        .await
        .unwrap();
    assert_eq!(
        ids(admin.my_tasks(all()).await.unwrap()),
        vec![early.id, t[3], t[1], undated.id]
    );
    let member = w.session(mem).await;
    assert_eq!(ids(member.my_tasks(all()).await.unwrap()), vec![t[0]]);
    let (_, viewer) = w.seed_session(Role::Viewer, "idle").await;
    assert_eq!(viewer.my_tasks(all()).await.unwrap().count, 0);
}

/// Project statistics and the dashboard count what the actor sees.
pub async fn statistics_and_dashboard_count_correctly(f: &dyn Fixture) {
    let Fixture5 {
        w, mem, p1, p2, t, ..
    } = five_tasks(f).await;
    let admin = w.owner_session().await;
    let member = w.session(mem).await;

    let s = admin.statistics(p1).await.unwrap();
    assert_eq!(s.project_id, p1);
    assert_eq!(
        (
            s.total_tasks,
            s.todo_tasks,
            s.in_progress_tasks,
            s.review_tasks,
            s.completed_tasks,
            s.overdue_tasks,
        ),
        (3, 1, 0, 1, 1, 1)
    );
    assert!(
        (s.completion_rate - 33.3).abs() < 1e-9,
        "{}",
        s.completion_rate
    );
    assert_eq!(
        s.tasks_by_priority,
        BTreeMap::from([("low", 1), ("medium", 0), ("high", 1), ("urgent", 1)])
    );
    assert_eq!(
        s.tasks_by_status,
        BTreeMap::from([("todo", 1), ("in_progress", 0), ("review", 1), ("done", 1)])
    );
    assert_eq!(s.member_count, 1);
    assert_eq!(member.statistics(p1).await.unwrap(), s);
    let s2 = admin.statistics(p2).await.unwrap();
    assert_eq!((s2.total_tasks, s2.overdue_tasks), (2, 1));
    assert_eq!(s2.completion_rate, 0.0);
    assert_eq!(s2.member_count, 0);
    let empty = admin.create_project(new_project("empty")).await.unwrap();
    let s3 = admin.statistics(empty.id).await.unwrap();
    assert_eq!((s3.total_tasks, s3.completion_rate), (0, 0.0));

    let d = admin.dashboard().await.unwrap();
    assert_eq!((d.total_projects, d.active_projects), (3, 1));
    assert_eq!(
        d.projects_by_status,
        BTreeMap::from([
            ("planning", 2),
            ("active", 1),
            ("on_hold", 0),
            ("completed", 0),
            ("archived", 0)
        ])
    );
    assert_eq!(
        (
            d.total_tasks,
            d.completed_tasks,
            d.in_progress_tasks,
            d.overdue_tasks
        ),
        (5, 1, 1, 2)
    );
    assert_eq!(
        d.tasks_by_priority,
        BTreeMap::from([("low", 1), ("medium", 1), ("high", 2), ("urgent", 1)])
    );
    assert_eq!((d.my_tasks, d.my_open_tasks, d.my_overdue_tasks), (2, 1, 1));
    assert_eq!(
        d.recent_tasks.iter().map(|x| x.id).collect::<Vec<_>>(),
        vec![t[4], t[3], t[2], t[1], t[0]]
    );
    assert_eq!(d.plan, "basic");
    assert_eq!((d.users.used, d.users.limit), (2, Some(20)));
    assert_eq!((d.projects.used, d.projects.limit), (3, Some(10)));

    let d = member.dashboard().await.unwrap();
    assert_eq!((d.total_projects, d.active_projects), (1, 1));
    assert_eq!(
        (
            d.total_tasks,
            d.completed_tasks,
            d.in_progress_tasks,
            d.overdue_tasks
        ),
        (3, 1, 0, 1)
    );
    assert_eq!((d.my_tasks, d.my_open_tasks, d.my_overdue_tasks), (1, 1, 1));
    assert_eq!(
        d.recent_tasks.iter().map(|x| x.id).collect::<Vec<_>>(),
        vec![t[2], t[1], t[0]]
    );
    assert_eq!(
        d.projects.used, 3,
        "usage counts every project of the tenant"
    );

    // Completing the member's task moves the numbers.
    member.mark_complete(t[0]).await.unwrap();
    let d = member.dashboard().await.unwrap();
    assert_eq!((d.completed_tasks, d.overdue_tasks), (2, 0));
    assert_eq!((d.my_tasks, d.my_open_tasks, d.my_overdue_tasks), (1, 0, 0));
    assert_eq!(d.recent_tasks[0].id, t[0]);
    let s = admin.statistics(p1).await.unwrap();
    assert!(
        (s.completion_rate - 66.7).abs() < 1e-9,
        "{}",
        s.completion_rate
    );
}

/// Pages slice the ordered list and always report the full count.
pub async fn pagination_counts_and_slices(f: &dyn Fixture) {
    let Fixture5 { w, t, .. } = five_tasks(f).await;
    let admin = w.owner_session().await;
    let by_id = TaskFilter {
        ordering: Some("id".parse().unwrap()),
        ..TaskFilter::default()
    };
    let page = |n: u64, size: u64| PageRequest::new(Some(n), Some(size)).unwrap();
    let p1 = admin.list_tasks(&by_id, page(1, 2)).await.unwrap();
    let p2 = admin.list_tasks(&by_id, page(2, 2)).await.unwrap();
    let p3 = admin.list_tasks(&by_id, page(3, 2)).await.unwrap();
    let p4 = admin.list_tasks(&by_id, page(4, 2)).await.unwrap();
    assert_eq!((p1.count, p2.count, p3.count, p4.count), (5, 5, 5, 5));
    assert_eq!(ids(p1), vec![t[0], t[1]]);
    assert_eq!(ids(p2), vec![t[2], t[3]]);
    assert_eq!(ids(p3), vec![t[4]]);
    assert!(p4.items.is_empty());
    let far = admin
        .list_tasks(&by_id, page(PageRequest::MAX_PAGE, PageRequest::MAX_SIZE))
        .await
        .unwrap();
    assert_eq!((far.count, far.items.len()), (5, 0));
    let projects = admin.list_projects(page(2, 1)).await.unwrap();
    assert_eq!(projects.count, 2);
    assert_eq!(projects.items.len(), 1);
    let users = admin.list_users(page(1, 1)).await.unwrap();
    assert_eq!((users.count, users.items.len()), (2, 1));
    assert_invalid(PageRequest::new(Some(0), None), "page");
    assert_invalid(PageRequest::new(None, Some(101)), "page_size");
    assert_invalid(PageRequest::new(None, Some(0)), "page_size");
}
