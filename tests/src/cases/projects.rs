//! Projects: who creates, sees, changes and deletes them; members.

use saas_core::commands::{NewProject, ProjectPatch};
use saas_core::error::{Entity, Error};
use saas_core::patch::Patch;
use saas_core::projects::{ProjectId, ProjectStatus, TaskId};
use saas_core::users::{Role, UserId};

use crate::Fixture;
use crate::assert_err;
use crate::harness::{World, all, assert_invalid, day, new_project, new_task, saas};

/// Admins and managers create projects they own; members and viewers may not.
pub async fn projects_are_created_by_admins_and_managers(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("basic")).await;
    let (mgr, mgr_s) = w.seed_session(Role::Manager, "mgr").await;
    let (_, mem_s) = w.seed_session(Role::Member, "mem").await;
    let (_, view_s) = w.seed_session(Role::Viewer, "view").await;
    let admin = w.owner_session().await;

    let p = admin
        .create_project(NewProject {
            name: "  Apollo  ".into(),
            description: "to the moon\nand back".into(),
            status: Some(ProjectStatus::Active),
            start_date: Some(day(1)),
            end_date: Some(day(1)),
        })
        .await
        .unwrap();
    assert_eq!(p.name, "Apollo");
    assert_eq!(p.description, "to the moon\nand back");
    assert_eq!(p.status, ProjectStatus::Active);
    assert_eq!((p.start_date, p.end_date), (Some(day(1)), Some(day(1))));
    assert_eq!(p.owner.id, w.owner.id);
    assert!(p.members.is_empty());
    assert_eq!(p.created_at, p.updated_at);
    assert_eq!(admin.project(p.id).await.unwrap(), p);

    let q = mgr_s.create_project(new_project("Gemini")).await.unwrap();
    assert_eq!(q.status, ProjectStatus::Planning);
    assert_eq!(q.owner.id, mgr.id);
    assert_eq!((q.start_date, q.end_date), (None, None));
    assert!(q.id > p.id);

    let before = w.snapshot().await;
    for s in [&mem_s, &view_s] {
        assert_err!(
            s.create_project(new_project("nope")).await,
            Error::Forbidden { .. }
        );
    }
    assert_eq!(w.snapshot().await, before);
}

/// Invalid names, descriptions and date ranges are refused under their
/// field's name; nothing is created. (Unknown statuses are refused by the
/// HTTP crate's bodies before they reach the core.)
pub async fn project_validation_errors_change_nothing(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("basic")).await;
    let admin = w.owner_session().await;
    let existing = admin.create_project(new_project("existing")).await.unwrap();
    let before = w.snapshot().await;
    assert_invalid(admin.create_project(new_project("")).await, "name");
    assert_invalid(admin.create_project(new_project("   ")).await, "name");
    assert_invalid(
        admin.create_project(new_project(&"n".repeat(201))).await,
        "name",
    );
    assert_invalid(admin.create_project(new_project("a\u{0}b")).await, "name");
    assert_invalid(
        admin
            .create_project(NewProject {
                description: "bell\u{7}".into(),
                ..new_project("ok")
            })
            .await,
        "description",
    );
    assert_invalid(
        admin
            .create_project(NewProject {
                start_date: Some(day(10)),
                end_date: Some(day(9)),
                ..new_project("ok")
            })
            .await,
        "end_date",
    );
    assert_invalid(
        admin
            .update_project(
                existing.id,
                ProjectPatch {
                    start_date: Patch::Set(day(5)),
                    end_date: Patch::Set(day(4)),
                    ..ProjectPatch::default()
                },
            )
            .await,
        "end_date",
    );
    assert_invalid(
        admin
            .update_project(
                existing.id,
                ProjectPatch {
                    name: Some(" ".into()),
                    status: Some(ProjectStatus::Archived),
                    ..ProjectPatch::default()
                },
            )
            .await,
        "name",
    );
    assert_eq!(w.snapshot().await, before);
}

/// Admins see every project; others only those they own or are members of,
/// and the rest are not found.
pub async fn project_visibility_follows_involvement(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("basic")).await;
    let (mgr, mgr_s) = w.seed_session(Role::Manager, "mgr").await;
    let (mem, mem_s) = w.seed_session(Role::Member, "mem").await;
    let (_, view_s) = w.seed_session(Role::Viewer, "view").await;
    let admin = w.owner_session().await;
    let p1 = admin.create_project(new_project("p1")).await.unwrap();
    let p2 = mgr_s.create_project(new_project("p2")).await.unwrap();
    let p3 = admin.create_project(new_project("p3")).await.unwrap();
    admin.add_member(p1.id, mem.id).await.unwrap();
    admin.add_member(p3.id, mgr.id).await.unwrap();

    let ids = |page: saas_core::store::Page<saas_core::projects::Project>| {
        (
            page.count,
            page.items.iter().map(|p| p.id).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        ids(admin.list_projects(all()).await.unwrap()),
        (3, vec![p3.id, p2.id, p1.id])
    );
    assert_eq!(
        ids(mgr_s.list_projects(all()).await.unwrap()),
        (2, vec![p3.id, p2.id])
    );
    assert_eq!(
        ids(mem_s.list_projects(all()).await.unwrap()),
        (1, vec![p1.id])
    );
    assert_eq!(ids(view_s.list_projects(all()).await.unwrap()), (0, vec![]));
    for (s, hidden) in [
        (&mgr_s, vec![p1.id]),
        (&mem_s, vec![p2.id, p3.id]),
        (&view_s, vec![p1.id, p2.id, p3.id]),
    ] {
        for id in hidden {
            assert_err!(
                s.project(id).await,
                Error::NotFound {
                    entity: Entity::Project
                }
            );
            assert_err!(
                s.statistics(id).await,
                Error::NotFound {
                    entity: Entity::Project
                }
            );
        }
    }
    assert_eq!(mem_s.project(p1.id).await.unwrap().members[0].id, mem.id);
    for s in [&admin, &mgr_s, &mem_s, &view_s] {
        assert_err!(
            s.project(ProjectId(999_999)).await,
            Error::NotFound {
                entity: Entity::Project
            }
        );
    }
    // A viewer who is a member sees the project (and only reads).
    let view_id = w.snapshot().await.users[3].id;
    admin.add_member(p2.id, view_id).await.unwrap();
    assert_eq!(
        ids(view_s.list_projects(all()).await.unwrap()),
        (1, vec![p2.id])
    );
}

/// Admins change and delete any project; managers change projects they are
/// involved in and delete those they own; members and viewers do neither.
pub async fn project_update_and_delete_rules(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("basic")).await;
    let (mgr, mgr_s) = w.seed_session(Role::Manager, "mgr").await;
    let (_, mgr2_s) = w.seed_session(Role::Manager, "mgr2").await;
    let (mem, mem_s) = w.seed_session(Role::Member, "mem").await;
    let (view, view_s) = w.seed_session(Role::Viewer, "view").await;
    let admin = w.owner_session().await;
    let by_admin = admin.create_project(new_project("by admin")).await.unwrap();
    let by_mgr = mgr_s.create_project(new_project("by mgr")).await.unwrap();
    for u in [mgr.id, mem.id, view.id] {
        admin.add_member(by_admin.id, u).await.unwrap();
    }
    let rename = |n: &str| ProjectPatch {
        name: Some(n.into()),
        ..ProjectPatch::default()
    };

    // A manager who is a member may change, not delete, another's project.
    let changed = mgr_s
        .update_project(by_admin.id, rename("renamed"))
        .await
        .unwrap();
    assert_eq!(changed.name, "renamed");
    assert!(changed.updated_at >= by_admin.updated_at);
    assert_err!(
        mgr_s.delete_project(by_admin.id).await,
        Error::Forbidden { .. }
    );
    // A manager not involved does not even see it.
    assert_err!(
        mgr2_s.update_project(by_mgr.id, rename("x")).await,
        Error::NotFound {
            entity: Entity::Project
        }
    );
    assert_err!(
        mgr2_s.delete_project(by_mgr.id).await,
        Error::NotFound {
            entity: Entity::Project
        }
    );
    // Members and viewers, even as project members, may do neither.
    let before = w.snapshot().await;
    for s in [&mem_s, &view_s] {
        assert_err!(
            s.update_project(by_admin.id, rename("x")).await,
            Error::Forbidden { .. }
        );
        assert_err!(s.delete_project(by_admin.id).await, Error::Forbidden { .. });
    }
    assert_eq!(w.snapshot().await, before);

    // Patches: absent fields stay, null dates clear.
    let dated = admin
        .update_project(
            by_admin.id,
            ProjectPatch {
                status: Some(ProjectStatus::OnHold),
                start_date: Patch::Set(day(3)),
                end_date: Patch::Set(day(30)),
                description: Some("desc".into()),
                ..ProjectPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(dated.name, "renamed");
    assert_eq!(dated.status, ProjectStatus::OnHold);
    assert_eq!(
        (dated.start_date, dated.end_date),
        (Some(day(3)), Some(day(30)))
    );
    let cleared = admin
        .update_project(
            by_admin.id,
            ProjectPatch {
                end_date: Patch::Clear,
                ..ProjectPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((cleared.start_date, cleared.end_date), (Some(day(3)), None));
    assert_eq!(cleared.description, "desc");
    assert_eq!(cleared.members.len(), 3);
    assert_eq!(admin.project(by_admin.id).await.unwrap(), cleared);

    // The owning manager deletes; the admin deletes anything.
    mgr_s.delete_project(by_mgr.id).await.unwrap();
    admin.delete_project(by_admin.id).await.unwrap();
    assert_eq!(admin.list_projects(all()).await.unwrap().count, 0);
    assert_err!(
        admin.delete_project(by_admin.id).await,
        Error::NotFound {
            entity: Entity::Project
        }
    );
    assert_err!(
        admin.update_project(by_admin.id, rename("ghost")).await,
        Error::NotFound {
            entity: Entity::Project
        }
    );
}

/// Members are added and removed idempotently by admins and involved
/// managers; unknown users and projects are not found.
pub async fn project_members_are_managed_by_admins_and_involved_managers(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("basic")).await;
    let (mgr, mgr_s) = w.seed_session(Role::Manager, "mgr").await;
    let (_, mgr2_s) = w.seed_session(Role::Manager, "mgr2").await;
    let (mem, mem_s) = w.seed_session(Role::Member, "mem").await;
    let (view, _) = w.seed_session(Role::Viewer, "view").await;
    let admin = w.owner_session().await;
    let p = mgr_s.create_project(new_project("team")).await.unwrap();

    let p1 = mgr_s.add_member(p.id, view.id).await.unwrap();
    let p2 = mgr_s.add_member(p.id, mem.id).await.unwrap();
    assert_eq!(p1.members.len(), 1);
    let again = admin.add_member(p.id, mem.id).await.unwrap();
    assert_eq!(again.members, p2.members, "adding twice is idempotent");
    let ids: Vec<_> = again.members.iter().map(|m| m.id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "members are listed by id");
    assert_eq!(ids, vec![mem.id, view.id]);
    assert!(
        !ids.contains(&mgr.id),
        "the owner is not a member by default"
    );

    let before = w.snapshot().await;
    assert_err!(
        admin.add_member(p.id, UserId(424_242)).await,
        Error::NotFound {
            entity: Entity::User
        }
    );
    assert_err!(
        admin.add_member(ProjectId(424_242), mem.id).await,
        Error::NotFound {
            entity: Entity::Project
        }
    );
    assert_err!(
        mem_s.add_member(p.id, w.owner.id).await,
        Error::Forbidden { .. }
    );
    assert_err!(
        mem_s.remove_member(p.id, view.id).await,
        Error::Forbidden { .. }
    );
    assert_err!(
        mgr2_s.add_member(p.id, mem.id).await,
        Error::NotFound {
            entity: Entity::Project
        }
    );
    assert_eq!(w.snapshot().await, before);

    let removed = mgr_s.remove_member(p.id, view.id).await.unwrap();
    assert_eq!(
        removed.members.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![mem.id]
    );
    let again = mgr_s.remove_member(p.id, view.id).await.unwrap();
    assert_eq!(
        again.members, removed.members,
        "removing twice is idempotent"
    );
    // A user that does not exist at all is reported, and nothing changes.
    assert_err!(
        admin.remove_member(p.id, UserId(424_242)).await,
        Error::NotFound {
            entity: Entity::User
        }
    );
    assert_eq!(admin.project(p.id).await.unwrap().members, removed.members);
    // A manager who is merely a member manages members too.
    admin
        .add_member(p.id, w.snapshot().await.users[2].id)
        .await
        .unwrap();
    mgr2_s.add_member(p.id, view.id).await.unwrap();
    assert_eq!(admin.statistics(p.id).await.unwrap().member_count, 3);
}

/// Deleting a project deletes its tasks and memberships; other projects
/// keep theirs.
pub async fn deleting_a_project_deletes_its_tasks_and_memberships(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("basic")).await;
    let (mem, mem_s) = w.seed_session(Role::Member, "mem").await;
    let admin = w.owner_session().await;
    let doomed = admin.create_project(new_project("doomed")).await.unwrap();
    let kept = admin.create_project(new_project("kept")).await.unwrap();
    admin.add_member(doomed.id, mem.id).await.unwrap();
    admin.add_member(kept.id, mem.id).await.unwrap();
    let mut doomed_tasks: Vec<TaskId> = Vec::new();
    for i in 0..3 {
        doomed_tasks.push(
            admin
                .create_task(new_task(doomed.id, &format!("d{i}")))
                .await
                .unwrap()
                .id,
        );
    }
    let kept_task = admin.create_task(new_task(kept.id, "k")).await.unwrap();
    admin.delete_project(doomed.id).await.unwrap();
    for t in doomed_tasks {
        assert_err!(
            admin.task(t).await,
            Error::NotFound {
                entity: Entity::Task
            }
        );
    }
    let snap = w.snapshot().await;
    assert_eq!(snap.tasks.len(), 1);
    assert_eq!(snap.tasks[0].id, kept_task.id);
    assert_eq!(snap.projects.len(), 1);
    assert_eq!(mem_s.list_projects(all()).await.unwrap().count, 1);
    assert_eq!(admin.dashboard().await.unwrap().total_tasks, 1);
    // Its id is not reused by the next project's visible state.
    let next = admin.create_project(new_project("next")).await.unwrap();
    assert!(next.members.is_empty());
    assert_eq!(admin.statistics(next.id).await.unwrap().total_tasks, 0);
}

/// Dates outside the years 1 to 9999 are refused under their field's name
/// on every path that writes one (a library caller reaches the core
/// without the HTTP crate's parsing); nothing is written, and the edges
/// themselves round-trip.
pub async fn dates_outside_years_1_to_9999_are_invalid(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("basic")).await;
    let admin = w.owner_session().await;
    let existing = admin.create_project(new_project("existing")).await.unwrap();
    let task = admin
        .create_task(new_task(existing.id, "task"))
        .await
        .unwrap();
    let before = w.snapshot().await;
    let date = |y| chrono::NaiveDate::from_ymd_opt(y, 1, 1).expect("a date");
    let time = |y| date(y).and_hms_opt(0, 0, 0).expect("a time").and_utc();
    for year in [-5000, 0, 10_000] {
        assert_invalid(
            admin
                .create_project(NewProject {
                    start_date: Some(date(year)),
                    ..new_project("far")
                })
                .await,
            "start_date",
        );
        assert_invalid(
            admin
                .create_project(NewProject {
                    end_date: Some(date(year)),
                    ..new_project("far")
                })
                .await,
            "end_date",
        );
        assert_invalid(
            admin
                .update_project(
                    existing.id,
                    ProjectPatch {
                        start_date: Patch::Set(date(year)),
                        ..ProjectPatch::default()
                    },
                )
                .await,
            "start_date",
        );
        assert_invalid(
            admin
                .create_task(saas_core::commands::NewTask {
                    due_date: Some(time(year)),
                    ..new_task(existing.id, "far")
                })
                .await,
            "due_date",
        );
        assert_invalid(
            admin
                .update_task(
                    task.id,
                    saas_core::commands::TaskPatch {
                        due_date: Patch::Set(time(year)),
                        ..saas_core::commands::TaskPatch::default()
                    },
                )
                .await,
            "due_date",
        );
    }
    assert_eq!(w.snapshot().await, before);
    for year in [1, 9999] {
        let p = admin
            .create_project(NewProject {
                start_date: Some(date(year)),
                end_date: Some(date(year)),
                ..new_project("edge")
            })
            .await
            .unwrap();
        assert_eq!(
            admin.project(p.id).await.unwrap().start_date,
            Some(date(year))
        );
        let t = admin
            .create_task(saas_core::commands::NewTask {
                due_date: Some(time(year)),
                ..new_task(existing.id, "edge")
            })
            .await
            .unwrap();
        assert_eq!(admin.task(t.id).await.unwrap().due_date, Some(time(year)));
    }
}
