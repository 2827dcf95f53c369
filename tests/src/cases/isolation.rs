//! Isolation: whatever tenant A does is invisible to tenant B.

use saas_core::commands::{ProjectPatch, TaskPatch, UserPatch};
use saas_core::error::{Entity, Error};
use saas_core::projects::{ProjectId, Scope, TaskId, TaskQuery};
use saas_core::session::TaskFilter;
use saas_core::store::{RefreshOutcome, RefreshTokenRecord};
use saas_core::users::{Role, UserId};
use uuid::Uuid;

use crate::Fixture;
use crate::assert_err;
use crate::harness::{PASSWORD, World, all, new_project, new_task, saas};

/// Tenant B cannot reach A's projects, tasks or users by id, even though B
/// has objects with the same ids; B's attempts change nothing in A.
pub async fn isolation_same_ids_are_not_found_across_tenants(f: &dyn Fixture) {
    let saas = saas(f.store());
    let a = World::register(&saas, Some("basic")).await;
    let b = World::register(&saas, Some("basic")).await;
    let a_admin = a.owner_session().await;
    let b_admin = b.owner_session().await;
    let a_mem = a.seed_user(Role::Member, "only_in_a").await;
    let mut a_projects = Vec::new();
    let mut a_tasks = Vec::new();
    for i in 0..3 {
        let p = a_admin
            .create_project(new_project(&format!("A{i}")))
            .await
            .unwrap();
        a_tasks.push(
            a_admin
                .create_task(new_task(p.id, &format!("A task {i}")))
                .await
                .unwrap()
                .id,
        );
        a_projects.push(p.id);
    }
    let b_project = b_admin.create_project(new_project("B0")).await.unwrap();
    let b_task = b_admin
        .create_task(new_task(b_project.id, "B task"))
        .await
        .unwrap();
    assert_eq!(
        b_project.id, a_projects[0],
        "the same id exists in both tenants"
    );
    assert_eq!(b_task.id, a_tasks[0]);
    let a_before = a.snapshot().await;
    let b_before = b.snapshot().await;

    // The shared id shows B its own object.
    assert_eq!(b_admin.project(b_project.id).await.unwrap().name, "B0");
    assert_eq!(b_admin.task(b_task.id).await.unwrap().title, "B task");
    // A's other ids are nothing in B.
    for &p in &a_projects[1..] {
        assert_err!(
            b_admin.project(p).await,
            Error::NotFound {
                entity: Entity::Project
            }
        );
        assert_err!(
            b_admin.update_project(p, ProjectPatch::default()).await,
            Error::NotFound {
                entity: Entity::Project
            }
        );
        assert_err!(
            b_admin.delete_project(p).await,
            Error::NotFound {
                entity: Entity::Project
            }
        );
        assert_err!(
            b_admin.add_member(p, b.owner.id).await,
            Error::NotFound {
                entity: Entity::Project
            }
        );
        assert_err!(
            b_admin.statistics(p).await,
            Error::NotFound {
                entity: Entity::Project
            }
        );
        match b_admin.create_task(new_task(p, "sneaky")).await {
            Err(Error::Invalid { fields }) if fields.contains_key("project") => {}
            other => panic!("expected Invalid(project), got {other:?}"),
        }
    }
    for &t in &a_tasks[1..] {
        assert_err!(
            b_admin.task(t).await,
            Error::NotFound {
                entity: Entity::Task
            }
        );
        assert_err!(
            b_admin.update_task(t, TaskPatch::default()).await,
            Error::NotFound {
                entity: Entity::Task
            }
        );
        assert_err!(
            b_admin.mark_complete(t).await,
            Error::NotFound {
                entity: Entity::Task
            }
        );
        assert_err!(
            b_admin.delete_task(t).await,
            Error::NotFound {
                entity: Entity::Task
            }
        );
    }
    // A's user id is nobody in B.
    assert_err!(
        b_admin.user(a_mem.id).await,
        Error::NotFound {
            entity: Entity::User
        }
    );
    assert_err!(
        b_admin.add_member(b_project.id, a_mem.id).await,
        Error::NotFound {
            entity: Entity::User
        }
    );
    assert_err!(
        b_admin.update_user(a_mem.id, UserPatch::default()).await,
        Error::NotFound {
            entity: Entity::User
        }
    );
    assert_err!(
        saas.session(&b.tenant, a_mem.id).await,
        Error::NotFound {
            entity: Entity::User
        }
    );
    // B's edits through the shared id change only B.
    b_admin
        .update_project(
            b_project.id,
            ProjectPatch {
                name: Some("B0 renamed".into()),
                ..ProjectPatch::default()
            },
        )
        .await
        .unwrap();
    b_admin.mark_complete(b_task.id).await.unwrap();
    b_admin.delete_task(b_task.id).await.unwrap();
    b_admin.delete_project(b_project.id).await.unwrap();
    assert_eq!(a.snapshot().await, a_before, "nothing B did reached A");
    let b_after = b.snapshot().await;
    assert_eq!(b_after.users, b_before.users);
    assert!(b_after.projects.is_empty() && b_after.tasks.is_empty());
    // And A's own view is whole.
    assert_eq!(a_admin.list_projects(all()).await.unwrap().count, 3);
    assert_eq!(a_admin.task(a_tasks[0]).await.unwrap().title, "A task 0");
    let _ = (ProjectId(0), TaskId(0), UserId(0));
}

/// Lists, counts, dashboards, logins and stores of B never show A's data.
pub async fn isolation_lists_and_logins_stay_in_their_tenant(f: &dyn Fixture) {
    let saas = saas(f.store());
    let a = World::register(&saas, Some("basic")).await;
    let b = World::register(&saas, Some("basic")).await;
    let a_admin = a.owner_session().await;
    a.seed_user(Role::Manager, "a_manager").await;
    let p = a_admin.create_project(new_project("secret")).await.unwrap();
    for i in 0..4 {
        a_admin
            .create_task(new_task(p.id, &format!("secret task {i}")))
            .await
            .unwrap();
    }
    let b_admin = b.owner_session().await;
    assert_eq!(b_admin.list_projects(all()).await.unwrap().count, 0);
    assert_eq!(
        b_admin
            .list_tasks(&TaskFilter::default(), all())
            .await
            .unwrap()
            .count,
        0
    );
    assert_eq!(
        b_admin
            .list_tasks(
                &TaskFilter {
                    search: Some("secret".into()),
                    ..TaskFilter::default()
                },
                all()
            )
            .await
            .unwrap()
            .count,
        0
    );
    let users = b_admin.list_users(all()).await.unwrap();
    assert_eq!(users.count, 1);
    let d = b_admin.dashboard().await.unwrap();
    assert_eq!((d.total_projects, d.total_tasks, d.users.used), (0, 0, 1));
    assert!(d.recent_tasks.is_empty());
    let b_store = b.store().await;
    assert_eq!(b_store.tenant_id(), b.tenant.id);
    assert_eq!(b_store.count_users().await.unwrap(), 1);
    assert_eq!(b_store.project_counts(Scope::All).await.unwrap().total, 0);
    assert_eq!(
        b_store
            .task_counts(&TaskQuery::new(Scope::All), saas.now())
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(b_store.credentials("a_manager").await.unwrap(), None);
    assert_err!(
        saas.login(&b.tenant, "a_manager", PASSWORD).await,
        Error::Unauthenticated
    );
    // A's plan usage is its own: B's limit is untouched by A's projects.
    let dash_a = a_admin.dashboard().await.unwrap();
    assert_eq!((dash_a.projects.used, dash_a.users.used), (1, 2));
}

/// The store's refresh-token contract: single use, reuse revokes the
/// family, unknown ids are invalid, and tokens are per tenant.
pub async fn refresh_tokens_are_single_use_at_the_store(f: &dyn Fixture) {
    let saas = saas(f.store());
    let a = World::register(&saas, None).await;
    let b = World::register(&saas, None).await;
    let sa = a.store().await;
    let sb = b.store().await;
    let family = Uuid::new_v4();
    let expires = saas.now() + chrono::Duration::hours(1);
    let first = RefreshTokenRecord {
        jti: Uuid::new_v4(),
        family,
        user_id: a.owner.id,
        expires_at: expires,
    };
    let second = RefreshTokenRecord {
        jti: Uuid::new_v4(),
        ..first.clone()
    };
    sa.insert_refresh_token(&first).await.unwrap();
    assert_eq!(
        sb.rotate_refresh_token(first.jti, &next(&first))
            .await
            .unwrap(),
        RefreshOutcome::Invalid,
        "another tenant does not know the token"
    );
    // A successor of another family or user is refused, and changes nothing.
    for wrong in [
        RefreshTokenRecord {
            family: Uuid::new_v4(),
            ..next(&first)
        },
        RefreshTokenRecord {
            user_id: UserId(first.user_id.0 + 1),
            ..next(&first)
        },
    ] {
        assert_eq!(
            sa.rotate_refresh_token(first.jti, &wrong).await.unwrap(),
            RefreshOutcome::Invalid
        );
    }
    assert_eq!(
        sa.rotate_refresh_token(first.jti, &second).await.unwrap(),
        RefreshOutcome::Rotated {
            user_id: a.owner.id,
            family
        }
    );
    // The successor is stored by the rotation itself.
    let third = next(&second);
    assert_eq!(
        sa.rotate_refresh_token(first.jti, &next(&first))
            .await
            .unwrap(),
        RefreshOutcome::Reused
    );
    assert_eq!(
        sa.rotate_refresh_token(second.jti, &third).await.unwrap(),
        RefreshOutcome::Invalid,
        "the family is revoked, the successor with it"
    );
    assert_eq!(
        sa.rotate_refresh_token(Uuid::new_v4(), &next(&first))
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );
    // Concurrent consumption of one token: exactly one rotation.
    let fourth = RefreshTokenRecord {
        jti: Uuid::new_v4(),
        family: Uuid::new_v4(),
        user_id: a.owner.id,
        expires_at: expires,
    };
    sa.insert_refresh_token(&fourth).await.unwrap();
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let (sa, used, successor) = (sa.clone(), fourth.jti, next(&fourth));
            tokio::spawn(async move { sa.rotate_refresh_token(used, &successor).await })
        })
        .collect();
    let mut rotated = 0;
    for h in handles {
        match h.await.unwrap().unwrap() {
            RefreshOutcome::Rotated { .. } => rotated += 1,
            RefreshOutcome::Reused | RefreshOutcome::Invalid => {}
        }
    }
    assert_eq!(rotated, 1);
    // Pruning forgets only expired tokens.
    let old = RefreshTokenRecord {
        jti: Uuid::new_v4(),
        family: Uuid::new_v4(),
        user_id: a.owner.id,
        expires_at: saas.now() - chrono::Duration::hours(1),
    };
    sa.insert_refresh_token(&old).await.unwrap();
    let fresh = RefreshTokenRecord {
        jti: Uuid::new_v4(),
        family: Uuid::new_v4(),
        user_id: a.owner.id,
        expires_at: expires,
    };
    sa.insert_refresh_token(&fresh).await.unwrap();
    assert!(sa.prune_refresh_tokens(saas.now()).await.unwrap() >= 1);
    assert_eq!(
        sa.rotate_refresh_token(old.jti, &next(&old)).await.unwrap(),
        RefreshOutcome::Invalid
    );
    assert!(matches!(
        sa.rotate_refresh_token(fresh.jti, &next(&fresh))
            .await
            .unwrap(),
        RefreshOutcome::Rotated { .. }
    ));
}

/// The successor of a refresh token: same family, user and expiry.
fn next(token: &RefreshTokenRecord) -> RefreshTokenRecord {
    RefreshTokenRecord {
        jti: Uuid::new_v4(),
        ..token.clone()
    }
}
