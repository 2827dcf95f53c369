//! Plan limits: users, projects, tasks per project; plan changes; and the
//! atomicity of the check under concurrency.

use std::sync::Arc;

use saas_core::error::{Entity, Error, Resource};
use saas_core::tenancy::TenantId;
use saas_core::users::{Email, NewUserRecord, Role, Username};

use crate::Fixture;
use crate::assert_err;
use crate::harness::{
    World, all, assert_invalid, new_project, new_task, new_user, password_hash, saas,
    saas_with_plans, small_catalog,
};

/// The free plan allows five users, its admin included.
pub async fn user_limit_of_the_free_plan(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("free")).await;
    let admin = w.owner_session().await;
    for i in 0..4 {
        admin
            .register_user(new_user(&format!("user{i}"), None))
            .await
            .unwrap();
    }
    let before = w.snapshot().await;
    assert_err!(
        admin.register_user(new_user("onetoomany", None)).await,
        Error::PlanLimitExceeded {
            resource: Resource::Users,
            limit: 5,
            ref plan,
        } if plan == "free"
    );
    assert_eq!(w.snapshot().await, before);
    let d = admin.dashboard().await.unwrap();
    assert_eq!((d.users.used, d.users.limit), (5, Some(5)));
    // Deactivated users still count.
    admin
        .update_user(
            before.users[1].id,
            saas_core::commands::UserPatch {
                is_active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_err!(
        admin.register_user(new_user("stillnot", None)).await,
        Error::PlanLimitExceeded {
            resource: Resource::Users,
            ..
        }
    );
}

/// The free plan allows three projects.
pub async fn project_limit_of_the_free_plan(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, None).await;
    let admin = w.owner_session().await;
    let (_, mgr) = w.seed_session(Role::Manager, "mgr").await;
    admin.create_project(new_project("one")).await.unwrap();
    mgr.create_project(new_project("two")).await.unwrap();
    let third = admin.create_project(new_project("three")).await.unwrap();
    let before = w.snapshot().await;
    for s in [&admin, &mgr] {
        assert_err!(
            s.create_project(new_project("four")).await,
            Error::PlanLimitExceeded {
                resource: Resource::Projects,
                limit: 3,
                ref plan,
            } if plan == "free"
        );
    }
    // Forbidden comes before the plan: a member hears about their role.
    let (_, mem) = w.seed_session(Role::Member, "mem").await;
    assert_err!(
        mem.create_project(new_project("four")).await,
        Error::Forbidden { .. }
    );
    // Validation comes before the plan too.
    assert_invalid(admin.create_project(new_project("")).await, "name");
    let mut after = w.snapshot().await;
    after.users.pop();
    assert_eq!(after, before);
    // Deleting one makes room.
    admin.delete_project(third.id).await.unwrap();
    admin.create_project(new_project("four")).await.unwrap();
}

/// Tasks are limited per project (custom catalog: 3 per project on `tiny`).
pub async fn task_limit_per_project(f: &dyn Fixture) {
    let saas = saas_with_plans(f.store(), small_catalog());
    let w = World::register(&saas, Some("tiny")).await;
    let admin = w.owner_session().await;
    let p = admin.create_project(new_project("p")).await.unwrap();
    let q = admin.create_project(new_project("q")).await.unwrap();
    let mut first = None;
    for i in 0..3 {
        let t = admin
            .create_task(new_task(p.id, &format!("t{i}")))
            .await
            .unwrap();
        first.get_or_insert(t.id);
    }
    let before = w.snapshot().await;
    assert_err!(
        admin.create_task(new_task(p.id, "t3")).await,
        Error::PlanLimitExceeded {
            resource: Resource::TasksPerProject,
            limit: 3,
            ref plan,
        } if plan == "tiny"
    );
    assert_eq!(w.snapshot().await, before);
    // Another project has its own allowance.
    admin.create_task(new_task(q.id, "q0")).await.unwrap();
    // Completing does not free a slot; deleting does.
    admin.mark_complete(first.unwrap()).await.unwrap();
    assert_err!(
        admin.create_task(new_task(p.id, "t3")).await,
        Error::PlanLimitExceeded {
            resource: Resource::TasksPerProject,
            ..
        }
    );
    admin.delete_task(first.unwrap()).await.unwrap();
    admin.create_task(new_task(p.id, "t3")).await.unwrap();
    // Projects are limited to 2 on tiny, users to 3.
    assert_err!(
        admin.create_project(new_project("r")).await,
        Error::PlanLimitExceeded {
            resource: Resource::Projects,
            limit: 2,
            ..
        }
    );
}

/// A plan change applies at once; a downgrade blocks new creates and keeps
/// everything; an unknown plan or tenant is refused.
pub async fn plan_change_takes_effect_at_once_and_downgrade_deletes_nothing(f: &dyn Fixture) {
    let saas = saas(f.store());
    let mut w = World::register(&saas, Some("basic")).await;
    let admin = w.owner_session().await;
    for i in 0..5 {
        admin
            .create_project(new_project(&format!("p{i}")))
            .await
            .unwrap();
    }
    for i in 0..5 {
        w.seed_user(Role::Member, &format!("m{i}")).await;
    }
    let before = w.snapshot().await;
    let op = saas.operator_unchecked();
    let t = op.change_plan(w.tenant.id, "free").await.unwrap();
    assert_eq!(t.plan, "free");
    w.reload().await;
    assert_eq!(w.tenant.plan, "free");
    let admin = w.owner_session().await;
    assert_eq!(admin.plan().code, "free");
    assert_err!(
        admin.create_project(new_project("blocked")).await,
        Error::PlanLimitExceeded {
            resource: Resource::Projects,
            limit: 3,
            ref plan,
        } if plan == "free"
    );
    assert_err!(
        admin.register_user(new_user("blocked", None)).await,
        Error::PlanLimitExceeded {
            resource: Resource::Users,
            limit: 5,
            ..
        }
    );
    assert_eq!(w.snapshot().await, before, "the downgrade deleted nothing");
    let d = admin.dashboard().await.unwrap();
    assert_eq!((d.projects.used, d.projects.limit), (5, Some(3)));
    assert_eq!((d.users.used, d.users.limit), (6, Some(5)));
    let overview = op.overview(w.tenant.id).await.unwrap();
    assert_eq!(overview.tenant.plan, "free");
    assert_eq!(overview.projects.used, 5);
    // Reading, updating and deleting still work over the limit.
    let p = before.projects[0].id;
    admin
        .update_project(
            p,
            saas_core::commands::ProjectPatch {
                name: Some("still editable".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    admin
        .create_task(new_task(p, "tasks still fit"))
        .await
        .unwrap();

    assert_invalid(
        op.change_plan(w.tenant.id, "gold").await,
        "subscription_plan",
    );
    assert_err!(
        op.change_plan(TenantId::new(), "basic").await,
        Error::NotFound {
            entity: Entity::Tenant
        }
    );
    op.change_plan(w.tenant.id, "enterprise").await.unwrap();
    w.reload().await;
    let admin = w.owner_session().await;
    admin
        .create_project(new_project("unblocked"))
        .await
        .unwrap();
    let d = admin.dashboard().await.unwrap();
    assert_eq!((d.projects.used, d.projects.limit), (6, None));
    assert_eq!(d.plan, "enterprise");
}

/// 64 concurrent project creates against a limit of 10 create exactly 10;
/// the other 54 hear about the plan.
pub async fn concurrent_project_creates_respect_the_limit(f: &dyn Fixture) {
    let saas = saas_with_plans(f.store(), small_catalog());
    let w = World::register(&saas, Some("ten")).await;
    let admin = w.owner_session().await;
    let handles: Vec<_> = (0..64)
        .map(|i| {
            let s = admin.clone();
            tokio::spawn(async move { s.create_project(new_project(&format!("p{i}"))).await })
        })
        .collect();
    let (mut ok, mut limited) = (0, 0);
    for h in handles {
        match h.await.expect("no panic") {
            Ok(_) => ok += 1,
            Err(Error::PlanLimitExceeded {
                resource: Resource::Projects,
                limit: 10,
                ..
            }) => limited += 1,
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!((ok, limited), (10, 54));
    assert_eq!(admin.list_projects(all()).await.unwrap().count, 10);
    assert_eq!(w.snapshot().await.projects.len(), 10);
}

/// 64 concurrent task creates in one project against a limit of 10 create
/// exactly 10.
pub async fn concurrent_task_creates_respect_the_limit(f: &dyn Fixture) {
    let saas = saas_with_plans(f.store(), small_catalog());
    let w = World::register(&saas, Some("ten")).await;
    let admin = w.owner_session().await;
    let p = admin.create_project(new_project("p")).await.unwrap();
    let other = admin.create_project(new_project("other")).await.unwrap();
    let handles: Vec<_> = (0..64)
        .map(|i| {
            let s = admin.clone();
            // A few creates go to another project, which has its own limit.
            let project = if i % 16 == 0 { other.id } else { p.id };
            tokio::spawn(async move { s.create_task(new_task(project, &format!("t{i}"))).await })
        })
        .collect();
    let (mut ok, mut limited) = (0, 0);
    for h in handles {
        match h.await.expect("no panic") {
            Ok(_) => ok += 1,
            Err(Error::PlanLimitExceeded {
                resource: Resource::TasksPerProject,
                limit: 10,
                ..
            }) => limited += 1,
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!((ok, limited), (14, 50));
    assert_eq!(admin.statistics(p.id).await.unwrap().total_tasks, 10);
    assert_eq!(admin.statistics(other.id).await.unwrap().total_tasks, 4);
}

/// 64 concurrent user creates at the store against a limit of 10 create
/// exactly 9 (the admin is the tenth), with distinct usernames.
pub async fn concurrent_user_creates_respect_the_limit(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("basic")).await;
    let store = w.store().await;
    let hash = password_hash().await;
    let now = saas.now();
    let handles: Vec<_> = (0..64)
        .map(|i| {
            let store = Arc::clone(&store);
            let record = NewUserRecord {
                username: Username::parse(&format!("racer{i}")).unwrap(),
                email: Email::parse(&format!("racer{i}@example.com")).unwrap(),
                password_hash: hash.clone(),
                first_name: String::new(),
                last_name: String::new(),
                role: Role::Member,
                department: String::new(),
                is_owner: false,
                date_joined: now,
            };
            tokio::spawn(async move { store.create_user(&record, Some(10)).await })
        })
        .collect();
    let (mut ok, mut limited) = (0, 0);
    for h in handles {
        match h.await.expect("no panic") {
            Ok(_) => ok += 1,
            Err(Error::PlanLimitExceeded {
                resource: Resource::Users,
                limit: 10,
                ..
            }) => limited += 1,
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!((ok, limited), (9, 55));
    assert_eq!(store.count_users().await.unwrap(), 10);
    // Concurrent duplicates: exactly one wins, the rest conflict.
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let store = Arc::clone(&store);
            let record = NewUserRecord {
                username: Username::parse("SameName").unwrap(),
                email: Email::parse("same@example.com").unwrap(),
                password_hash: hash.clone(),
                first_name: String::new(),
                last_name: String::new(),
                role: Role::Viewer,
                department: String::new(),
                is_owner: false,
                date_joined: now,
            };
            tokio::spawn(async move { store.create_user(&record, None).await })
        })
        .collect();
    let (mut ok, mut conflicts) = (0, 0);
    for h in handles {
        match h.await.expect("no panic") {
            Ok(_) => ok += 1,
            Err(Error::Conflict {
                entity: Entity::User,
                field: "username",
            }) => conflicts += 1,
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!((ok, conflicts), (1, 15));
}
