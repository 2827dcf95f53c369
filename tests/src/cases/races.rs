//! Races and stale handles: what concurrent or late calls may not do.

use std::sync::Arc;

use chrono::Duration;
use saas_core::commands::TaskPatch;
use saas_core::error::{Entity, Error};
use saas_core::patch::Patch;
use saas_core::projects::{
    Priority, Scope, Task, TaskCounts, TaskOrderField, TaskOrdering, TaskQuery, TaskStatus,
};
use saas_core::tenancy::Hostname;
use saas_core::users::{Role, UserId};

use crate::Fixture;
use crate::harness::{PASSWORD, World, all, domain_for, new_project, new_task, registration, saas};

/// Concurrent adds of one member are all fine and leave one membership;
/// concurrent removes likewise leave none.
pub async fn concurrent_member_changes_are_idempotent(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("basic")).await;
    let admin = w.owner_session().await;
    let mem = w.seed_user(Role::Member, "mem").await;
    let p = admin.create_project(new_project("p")).await.unwrap();
    let adds: Vec<_> = (0..16)
        .map(|_| {
            let s = admin.clone();
            tokio::spawn(async move { s.add_member(p.id, mem.id).await })
        })
        .collect();
    for h in adds {
        h.await.expect("no panic").expect("every add succeeds");
    }
    let members = admin.project(p.id).await.unwrap().members;
    assert_eq!(members.len(), 1);
    let removes: Vec<_> = (0..16)
        .map(|_| {
            let s = admin.clone();
            tokio::spawn(async move { s.remove_member(p.id, mem.id).await })
        })
        .collect();
    for h in removes {
        h.await.expect("no panic").expect("every remove succeeds");
    }
    assert!(admin.project(p.id).await.unwrap().members.is_empty());
}

/// Creating tasks while their project is deleted never leaves a task
/// without its project.
pub async fn deleting_a_project_during_task_creates_leaves_no_orphans(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("enterprise")).await;
    let admin = w.owner_session().await;
    for round in 0..3 {
        let p = admin
            .create_project(new_project(&format!("p{round}")))
            .await
            .unwrap();
        let creates: Vec<_> = (0..24)
            .map(|i| {
                let s = admin.clone();
                tokio::spawn(async move { s.create_task(new_task(p.id, &format!("t{i}"))).await })
            })
            .collect();
        let s = admin.clone();
        let delete = tokio::spawn(async move { s.delete_project(p.id).await });
        for h in creates {
            match h.await.expect("no panic") {
                Ok(_)
                | Err(Error::NotFound {
                    entity: Entity::Project,
                }) => {}
                Err(Error::Invalid { fields }) if fields.contains_key("project") => {}
                Err(e) => panic!("unexpected error: {e:?}"),
            }
        }
        delete
            .await
            .expect("no panic")
            .expect("the delete succeeds");
    }
    let snap = w.snapshot().await;
    assert!(snap.projects.is_empty());
    assert!(
        snap.tasks.is_empty(),
        "tasks outlived their project: {:?}",
        snap.tasks
            .iter()
            .map(|t| (t.id, t.project_id))
            .collect::<Vec<_>>()
    );
    let store = w.store().await;
    let mut q = TaskQuery::new(Scope::All);
    q.ordering = TaskOrdering {
        field: TaskOrderField::Id,
        descending: false,
    };
    assert_eq!(store.task_counts(&q, saas.now()).await.unwrap().total, 0);
}

/// A handle opened before its tenant was deleted cannot write anything
/// back to life, and the slug registered again starts empty.
pub async fn stale_handles_of_a_deleted_tenant_write_nothing(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, None).await;
    let stale = w.store().await;
    let session = w.owner_session().await;
    let p = session.create_project(new_project("before")).await.unwrap();
    let op = saas.operator_unchecked();
    op.delete_tenant(w.tenant.id).await.unwrap();
    op.purge(w.tenant.id).await.unwrap();
    assert!(
        session.create_project(new_project("after")).await.is_err(),
        "a session of a deleted tenant created a project"
    );
    assert!(
        session.create_task(new_task(p.id, "after")).await.is_err(),
        "a session of a deleted tenant created a task"
    );
    assert!(stale.count_users().await.is_err() || stale.count_users().await.unwrap() == 0);
    let (t, owner) = saas
        .register(registration(w.tenant.slug.as_str(), None))
        .await
        .unwrap();
    let fresh = World {
        saas: saas.clone(),
        tenant: t,
        owner,
    };
    let snap = fresh.snapshot().await;
    assert_eq!(snap.users.len(), 1);
    assert!(
        snap.projects.is_empty() && snap.tasks.is_empty(),
        "the old tenant's data came back: {snap:?}"
    );
    // The old session and handle do not reach the new tenant either.
    fresh
        .owner_session()
        .await
        .create_project(new_project("the successor's"))
        .await
        .unwrap();
    match session.list_projects(crate::harness::all()).await {
        Err(_) => {}
        Ok(page) => assert_eq!(
            page.count, 0,
            "a session of the deleted tenant reads its successor's projects"
        ),
    }
    let _ = stale
        .create_user(
            &saas_core::users::NewUserRecord {
                username: saas_core::users::Username::parse("ghost").unwrap(),
                email: saas_core::users::Email::parse("ghost@example.com").unwrap(),
                password_hash: crate::harness::password_hash().await,
                first_name: String::new(),
                last_name: String::new(),
                role: Role::Admin,
                department: String::new(),
                is_owner: false,
                date_joined: saas.now(),
            },
            None,
        )
        .await;
    let snap = fresh.snapshot().await;
    assert_eq!(
        snap.users.len(),
        1,
        "a handle of the deleted tenant wrote into its successor"
    );
}

/// Removing a hostname through another tenant never touches the tenant
/// it belongs to.
pub async fn removing_another_tenants_domain_changes_nothing(f: &dyn Fixture) {
    let saas = saas(f.store());
    let a = World::register(&saas, None).await;
    let b = World::register(&saas, None).await;
    let op = saas.operator_unchecked();
    let b_primary = domain_for(b.tenant.slug.as_str());
    let b_extra = format!("extra-{b_primary}");
    op.add_domain(b.tenant.id, &b_extra, false).await.unwrap();
    for h in [&b_primary, &b_extra] {
        match op.remove_domain(a.tenant.id, h).await {
            Ok(()) | Err(Error::NotFound { .. }) | Err(Error::State(_)) => {}
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    let domains = f.store().domains(b.tenant.id).await.unwrap();
    assert_eq!(domains.len(), 2, "B lost a domain: {domains:?}");
    for h in [&b_primary, &b_extra] {
        assert_eq!(
            f.store()
                .tenant_by_domain(&Hostname::parse(h).unwrap())
                .await
                .unwrap()
                .map(|t| t.id),
            Some(b.tenant.id)
        );
    }
    assert_eq!(f.store().domains(a.tenant.id).await.unwrap().len(), 1);
    let _ = Arc::new(());
}

/// Counts of `tasks` matching `q` as of `now`, by the reference predicate.
fn reference_counts(
    tasks: &[Task],
    q: &TaskQuery,
    now: chrono::DateTime<chrono::Utc>,
) -> TaskCounts {
    let mut c = TaskCounts::default();
    for t in tasks.iter().filter(|t| q.matches(t)) {
        c.total += 1;
        c.by_status[t.status as usize] += 1;
        c.by_priority[t.priority as usize] += 1;
        if t.is_overdue(now) {
            c.overdue += 1;
        }
    }
    c
}

/// Many concurrent task creates, updates (status, priority, assignee) and
/// deletes, and a project deleted meanwhile, leave every count the store
/// reports (whatever it keeps them in) equal to the tasks that are left.
pub async fn concurrent_task_writes_keep_counts_exact(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("enterprise")).await;
    let admin = w.owner_session().await;
    let m1 = w.seed_user(Role::Member, "m1").await;
    let m2 = w.seed_user(Role::Member, "m2").await;
    let mut projects = Vec::new();
    for name in ["p1", "p2", "doomed"] {
        let p = admin.create_project(new_project(name)).await.unwrap();
        admin.add_member(p.id, m1.id).await.unwrap();
        if name != "p2" {
            admin.add_member(p.id, m2.id).await.unwrap();
        }
        projects.push(p.id);
    }
    let now = saas.now();
    let assignees = [None, Some(admin.me().id), Some(m1.id), Some(m2.id)];
    let project_of = |i: usize| {
        if i % 5 == 4 {
            projects[0]
        } else {
            projects[i % 3]
        }
    };
    // Assignees that every one of those projects involves.
    let assignee_of = |i: usize, p| {
        let a: Option<UserId> = assignees[i % 4];
        if p == projects[1] && a == Some(m2.id) {
            None
        } else {
            a
        }
    };
    let mut seeded = Vec::new();
    for i in 0..48 {
        let p = project_of(i);
        let mut t = new_task(p, &format!("seed{i}"));
        t.status = Some(TaskStatus::ALL[i % 4]);
        t.priority = Some(Priority::ALL[(i / 4) % 4]);
        t.assigned_to_id = assignee_of(i, p);
        t.due_date = (i % 3 != 0).then(|| now + Duration::days(i as i64 % 7 - 3));
        seeded.push(admin.create_task(t).await.unwrap());
    }
    let mut handles = Vec::new();
    for i in 0..96usize {
        let s = admin.clone();
        let target = seeded[(i * 7) % seeded.len()].clone();
        let p = project_of(i + 1);
        let new_assignee = assignee_of(i + 2, target.project_id);
        handles.push(tokio::spawn(async move {
            let r = match i % 4 {
                0 => {
                    let mut t = new_task(p, &format!("new{i}"));
                    t.status = Some(TaskStatus::ALL[(i / 4) % 4]);
                    t.priority = Some(Priority::ALL[i % 4]);
                    t.due_date = (i % 2 == 0).then(|| now - Duration::days(1));
                    s.create_task(t).await.map(|_| ())
                }
                1 | 2 => s
                    .update_task(
                        target.id,
                        TaskPatch {
                            status: Some(TaskStatus::ALL[(i / 2) % 4]),
                            priority: Some(Priority::ALL[(i / 3) % 4]),
                            assigned_to_id: new_assignee.map_or(Patch::Clear, Patch::Set),
                            ..TaskPatch::default()
                        },
                    )
                    .await
                    .map(|_| ()),
                _ => s.delete_task(target.id).await,
            };
            match r {
                Ok(())
                | Err(Error::NotFound {
                    entity: Entity::Task | Entity::Project,
                }) => {}
                Err(Error::Invalid { fields }) if fields.contains_key("project") => {}
                Err(e) => panic!("unexpected error: {e:?}"),
            }
        }));
        if i == 48 {
            let s = admin.clone();
            let doomed = projects[2];
            handles.push(tokio::spawn(async move {
                s.delete_project(doomed).await.expect("the delete succeeds");
            }));
        }
    }
    for h in handles {
        h.await.expect("no panic");
    }
    let tasks = w.snapshot().await.tasks;
    assert!(tasks.iter().all(|t| t.project_id != projects[2]));
    let store = w.store().await;
    let mut queries = vec![
        TaskQuery::new(Scope::All),
        TaskQuery::new(Scope::InvolvedIn(m2.id)),
    ];
    for p in &projects {
        let mut q = TaskQuery::new(Scope::All);
        q.project = Some(*p);
        queries.push(q);
    }
    for a in [admin.me().id, m1.id, m2.id] {
        let mut q = TaskQuery::new(Scope::All);
        q.assigned_to = Some(a);
        queries.push(q);
        let mut q = TaskQuery::new(Scope::InvolvedIn(m2.id));
        q.assigned_to = Some(a);
        queries.push(q);
    }
    let mut q = TaskQuery::new(Scope::All);
    q.status = Some(TaskStatus::Done);
    q.priority = Some(Priority::High);
    queries.push(q);
    let mut q = TaskQuery::new(Scope::All);
    q.due_until = Some(now + Duration::days(365));
    queries.push(q);
    let involved_m2 = |t: &&Task| t.project_id != projects[1];
    for q in &queries {
        let visible: Vec<Task> = match q.scope {
            Scope::All => tasks.clone(),
            Scope::InvolvedIn(_) => tasks.iter().filter(involved_m2).cloned().collect(),
        };
        let expected = reference_counts(&visible, q, now);
        let counted = store.task_counts(q, now).await.unwrap();
        assert_eq!(counted, expected, "counts of {q:?}");
        let listed = store.list_tasks(q, all()).await.unwrap();
        assert_eq!(listed.count, expected.total, "list count of {q:?}");
    }
}

/// Lost updates: a user's own edits of their name, racing an admin who
/// makes them a viewer and deactivates them, never write the old role or
/// active flag back. After every round the admin's change stands (and the
/// user's tokens are revoked); the name is one of the user's edits.
pub async fn self_edits_racing_an_admin_never_undo_the_admin(f: &dyn Fixture) {
    use saas_core::commands::UserPatch;
    const EDITS: usize = 12;
    let saas = saas(f.store());
    let w = World::register(&saas, Some("enterprise")).await;
    let admin = w.owner_session().await;
    for round in 0..6 {
        let (u, own) = w.seed_session(Role::Member, &format!("racer{round}")).await;
        let start = Arc::new(tokio::sync::Barrier::new(EDITS + 1));
        let edits: Vec<_> = (0..EDITS)
            .map(|i| {
                let (own, start) = (own.clone(), Arc::clone(&start));
                tokio::spawn(async move {
                    start.wait().await;
                    let patch = UserPatch {
                        first_name: Some(format!("name{i}")),
                        ..UserPatch::default()
                    };
                    own.update_user(u.id, patch).await
                })
            })
            .collect();
        let (a, start) = (admin.clone(), Arc::clone(&start));
        let demote = tokio::spawn(async move {
            start.wait().await;
            let patch = UserPatch {
                role: Some(Role::Viewer),
                is_active: Some(false),
                ..UserPatch::default()
            };
            a.update_user(u.id, patch).await
        });
        for h in edits {
            h.await.expect("no panic").expect("a self-edit succeeds");
        }
        demote.await.expect("no panic").expect("the admin's change");
        let after = admin.user(u.id).await.unwrap();
        assert_eq!(
            (after.role, after.is_active),
            (Role::Viewer, false),
            "round {round}: a self-edit wrote the old role or flag back"
        );
        assert!(after.token_version > u.token_version, "round {round}");
        assert!(
            (0..EDITS).any(|i| after.first_name == format!("name{i}")),
            "round {round}: {}",
            after.first_name
        );
    }
    // The store writes only what a change names: a name alone leaves the
    // role and flag as they are.
    let store = w.store().await;
    let (u, _) = w.seed_session(Role::Manager, "onlyname").await;
    store
        .update_user(
            u.id,
            &saas_core::updates::UserChanges {
                role: Some(Role::Viewer),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let named = store
        .update_user(
            u.id,
            &saas_core::updates::UserChanges {
                first_name: Some("Only".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (named.role, named.first_name.as_str()),
        (Role::Viewer, "Only")
    );
}

/// A refresh token rotated while an older token of its family is reused
/// (which revokes the family) never leaves a working successor: either the
/// rotation comes first and the revocation takes its successor too, or the
/// revocation comes first and the rotation is refused. Through the service
/// (a login per round) and, for many more rounds, at the store.
pub async fn rotation_racing_a_family_revocation_leaves_no_live_token(f: &dyn Fixture) {
    use saas_core::store::{RefreshOutcome, RefreshTokenRecord};
    use uuid::Uuid;
    let saas = saas(f.store());
    let w = World::register(&saas, None).await;
    for round in 0..12 {
        let first = saas.login(&w.tenant, "admin", PASSWORD).await.unwrap();
        let second = saas.refresh(&w.tenant, &first.refresh).await.unwrap();
        let start = Arc::new(tokio::sync::Barrier::new(2));
        let race = |token: String| {
            let (saas, tenant, start) = (saas.clone(), w.tenant.clone(), Arc::clone(&start));
            tokio::spawn(async move {
                start.wait().await;
                saas.refresh(&tenant, &token).await
            })
        };
        let (rotate, reuse) = (race(second.refresh), race(first.refresh));
        assert!(matches!(
            reuse.await.expect("no panic"),
            Err(Error::Unauthenticated)
        ));
        if let Ok(third) = rotate.await.expect("no panic") {
            assert!(
                matches!(
                    saas.refresh(&w.tenant, &third.refresh).await,
                    Err(Error::Unauthenticated)
                ),
                "round {round}: the successor outlived its family's revocation"
            );
        }
    }
    let store = w.store().await;
    let next = |t: &RefreshTokenRecord| RefreshTokenRecord {
        jti: Uuid::new_v4(),
        ..t.clone()
    };
    for round in 0..100 {
        let t0 = RefreshTokenRecord {
            jti: Uuid::new_v4(),
            family: Uuid::new_v4(),
            user_id: w.owner.id,
            expires_at: saas.now() + Duration::hours(1),
        };
        store.insert_refresh_token(&t0).await.unwrap();
        let t1 = next(&t0);
        store.rotate_refresh_token(t0.jti, &t1).await.unwrap();
        let t2 = next(&t1);
        let (a, b) = (Arc::clone(&store), Arc::clone(&store));
        let (s1, s0) = (t2.clone(), next(&t0));
        let rotate = tokio::spawn(async move { a.rotate_refresh_token(t1.jti, &s1).await });
        let reuse = tokio::spawn(async move { b.rotate_refresh_token(t0.jti, &s0).await });
        assert_eq!(
            reuse.await.expect("no panic").unwrap(),
            RefreshOutcome::Reused
        );
        rotate.await.expect("no panic").unwrap();
        assert_eq!(
            store
                .rotate_refresh_token(t2.jti, &next(&t2))
                .await
                .unwrap(),
            RefreshOutcome::Invalid,
            "round {round}: the successor outlived its family's revocation"
        );
    }
}
