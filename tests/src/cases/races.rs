//! Races and stale handles: what concurrent or late calls may not do.

use std::sync::Arc;

use saas_core::error::{Entity, Error};
use saas_core::projects::{Scope, TaskOrderField, TaskOrdering, TaskQuery};
use saas_core::tenancy::Hostname;
use saas_core::users::Role;

use crate::Fixture;
use crate::harness::{World, domain_for, new_project, new_task, registration, saas};

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
    saas.operator_unchecked()
        .delete_tenant(w.tenant.id)
        .await
        .unwrap();
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
