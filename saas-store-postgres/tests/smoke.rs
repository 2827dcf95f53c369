//! Every `TenantStore` method once, under every routing strategy, with
//! and without transaction-pooler mode.

use chrono::{Duration, NaiveDate};
use saas_core::error::{Entity, Error, Resource};
use saas_core::projects::{
    NewProjectRecord, NewTaskRecord, Priority, ProjectId, ProjectStatus, Scope, TaskId,
    TaskOrderField, TaskOrdering, TaskQuery, TaskStatus,
};
use saas_core::store::{
    DashboardQuery, PageRequest, RefreshOutcome, RefreshTokenRecord, Store, dashboard_by_parts,
};
use saas_core::updates::{ProjectChanges, TaskChanges, UserChanges};
use saas_core::users::{Role, UserId};
use saas_store_postgres::{PgConfig, Routing};
use testkit::{pg, records};
use uuid::Uuid;

async fn every_method(routing: Routing, pooler: bool) {
    let config = PgConfig::new(pg::url())
        .with_routing(routing)
        .with_transaction_pooler(pooler);
    let Some(store) = pg::store_with(config).await else {
        return;
    };
    let (tenant, admin) = records::tenant(&store).await;
    let t = store.open(&tenant).await.expect("open");
    assert_eq!(t.tenant_id(), tenant.id);
    assert!(admin.is_owner && admin.is_active && admin.token_version == 0);

    // users
    let alice = t
        .create_user(&records::user_record("Alice", Role::Member), Some(5))
        .await
        .expect("alice");
    assert!(matches!(
        t.create_user(&records::user_record("ALICE", Role::Member), None)
            .await,
        Err(Error::Conflict {
            entity: Entity::User,
            field: "username"
        })
    ));
    assert_eq!(t.user(alice.id).await.expect("user"), Some(alice.clone()));
    assert_eq!(t.user(UserId(999_999)).await.expect("user"), None);
    let (found, hash) = t
        .credentials("alice")
        .await
        .expect("credentials")
        .expect("alice exists");
    assert_eq!(found.id, alice.id);
    assert!(hash.starts_with("$argon2id$"));
    let page = t
        .list_users(PageRequest::new(Some(1), Some(1)).expect("page"))
        .await
        .expect("list");
    assert_eq!(
        (page.count, page.items.len(), page.items[0].id),
        (2, 1, admin.id)
    );
    assert!(matches!(
        t.create_user(&records::user_record("bob", Role::Viewer), Some(2))
            .await,
        Err(Error::PlanLimitExceeded {
            resource: Resource::Users,
            limit: 2,
            ..
        })
    ));
    let mut changes = UserChanges {
        is_active: Some(false),
        role: Some(Role::Manager),
        ..UserChanges::default()
    };
    let updated = t.update_user(alice.id, &changes).await.expect("update");
    assert_eq!(
        (updated.is_active, updated.role, updated.token_version),
        (false, Role::Manager, 1)
    );
    changes.is_active = Some(true);
    assert_eq!(
        t.update_user(alice.id, &changes)
            .await
            .expect("update")
            .token_version,
        1
    );
    t.set_password(alice.id, "$argon2id$new")
        .await
        .expect("set_password");
    assert_eq!(
        t.user(alice.id)
            .await
            .expect("user")
            .expect("alice")
            .token_version,
        2
    );
    let at = records::now();
    t.record_login(alice.id, at).await.expect("record_login");
    assert_eq!(
        t.user(alice.id)
            .await
            .expect("user")
            .expect("alice")
            .last_login,
        Some(at)
    );
    assert_eq!(t.count_users().await.expect("count"), 2);
    assert!(matches!(
        t.set_password(UserId(999_999), "x").await,
        Err(Error::NotFound {
            entity: Entity::User
        })
    ));

    // refresh tokens
    let family = Uuid::new_v4();
    let first = RefreshTokenRecord {
        jti: Uuid::new_v4(),
        family,
        user_id: alice.id,
        expires_at: records::now() + Duration::days(1),
    };
    let second = RefreshTokenRecord {
        jti: Uuid::new_v4(),
        ..first.clone()
    };
    t.insert_refresh_token(&first).await.expect("insert token");
    t.insert_refresh_token(&second).await.expect("insert token");
    assert_eq!(
        t.rotate_refresh_token(
            first.jti,
            &RefreshTokenRecord {
                jti: Uuid::new_v4(),
                ..first.clone()
            }
        )
        .await
        .expect("consume"),
        RefreshOutcome::Rotated {
            user_id: alice.id,
            family
        }
    );
    assert_eq!(
        t.rotate_refresh_token(
            first.jti,
            &RefreshTokenRecord {
                jti: Uuid::new_v4(),
                ..first.clone()
            }
        )
        .await
        .expect("consume"),
        RefreshOutcome::Reused
    );
    assert_eq!(
        t.rotate_refresh_token(
            second.jti,
            &RefreshTokenRecord {
                jti: Uuid::new_v4(),
                ..second.clone()
            }
        )
        .await
        .expect("consume"),
        RefreshOutcome::Invalid
    );
    assert_eq!(
        t.rotate_refresh_token(Uuid::new_v4(), &first)
            .await
            .expect("consume"),
        RefreshOutcome::Invalid
    );
    assert_eq!(
        t.prune_refresh_tokens(records::now() + Duration::days(2))
            .await
            .expect("prune"),
        3,
        "the two inserted and the successor the rotation stored"
    );

    // projects
    let new_project = |name: &str, owner| NewProjectRecord {
        name: name.to_owned(),
        description: "d".to_owned(),
        status: ProjectStatus::Active,
        start_date: NaiveDate::from_ymd_opt(2024, 1, 31),
        end_date: None,
        owner,
        created_at: records::now(),
    };
    let p1 = t
        .create_project(&new_project("one", admin.id), Some(3))
        .await
        .expect("p1");
    let p2 = t
        .create_project(&new_project("two", alice.id), None)
        .await
        .expect("p2");
    assert_eq!(p1.owner.id, admin.id);
    assert!(p1.members.is_empty());
    assert_eq!(p1.start_date, NaiveDate::from_ymd_opt(2024, 1, 31));
    assert!(matches!(
        t.create_project(&new_project("x", UserId(999_999)), None)
            .await,
        Err(Error::NotFound {
            entity: Entity::User
        })
    ));
    assert!(matches!(
        t.create_project(&new_project("three", admin.id), Some(2))
            .await,
        Err(Error::PlanLimitExceeded {
            resource: Resource::Projects,
            limit: 2,
            ..
        })
    ));
    let with_member = t.add_member(p1.id, alice.id).await.expect("add member");
    assert_eq!(
        with_member.members.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![alice.id]
    );
    assert_eq!(
        t.add_member(p1.id, alice.id).await.expect("idempotent"),
        with_member
    );
    assert!(matches!(
        t.add_member(p1.id, UserId(999_999)).await,
        Err(Error::NotFound {
            entity: Entity::User
        })
    ));
    assert!(matches!(
        t.add_member(saas_core::projects::ProjectId(999_999), alice.id)
            .await,
        Err(Error::NotFound {
            entity: Entity::Project
        })
    ));
    assert_eq!(
        t.project(p1.id).await.expect("project"),
        Some(with_member.clone())
    );
    let all = t
        .list_projects(Scope::All, PageRequest::first())
        .await
        .expect("list");
    assert_eq!(
        all.items.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![p2.id, p1.id]
    );
    assert_eq!(all.items[1].members.len(), 1);
    let involved = t
        .list_projects(Scope::InvolvedIn(admin.id), PageRequest::first())
        .await
        .expect("list");
    assert_eq!((involved.count, involved.items[0].id), (1, p1.id));
    let counts = t
        .project_counts(Scope::InvolvedIn(alice.id))
        .await
        .expect("counts");
    assert_eq!((counts.total, counts.status(ProjectStatus::Active)), (2, 2));
    let edited = t
        .update_project(
            p2.id,
            &ProjectChanges {
                name: Some("two!".to_owned()),
                description: Some(String::new()),
                status: Some(ProjectStatus::OnHold),
                start_date: Some(None),
                end_date: Some(NaiveDate::from_ymd_opt(2025, 12, 31)),
                updated_at: records::now(),
            },
        )
        .await
        .expect("update project");
    assert_eq!(
        (edited.name.as_str(), edited.status),
        ("two!", ProjectStatus::OnHold)
    );
    let removed = t
        .remove_member(p1.id, alice.id)
        .await
        .expect("remove member");
    assert!(removed.members.is_empty());
    t.remove_member(p1.id, alice.id).await.expect("idempotent");

    // tasks
    let now = records::now();
    let new_task = |title: &str, project, priority, due| NewTaskRecord {
        project_id: project,
        title: title.to_owned(),
        description: "100% literal_match\\".to_owned(),
        status: TaskStatus::Todo,
        priority,
        assigned_to: Some(alice.id),
        created_by: admin.id,
        due_date: due,
        completed_at: None,
        created_at: records::now(),
    };
    let a = t
        .create_task(
            &new_task(
                "Alpha",
                p1.id,
                Priority::High,
                Some(now - Duration::days(1)),
            ),
            Some(10),
        )
        .await
        .expect("task a");
    let b = t
        .create_task(&new_task("beta", p1.id, Priority::Low, None), None)
        .await
        .expect("task b");
    let c = t
        .create_task(
            &new_task(
                "Gamma",
                p2.id,
                Priority::Urgent,
                Some(now + Duration::days(1)),
            ),
            None,
        )
        .await
        .expect("task c");
    assert_eq!(a.assigned_to.as_ref().map(|u| u.id), Some(alice.id));
    assert_eq!(a.created_by.id, admin.id);
    assert!(matches!(
        t.create_task(&new_task("x", p1.id, Priority::Low, None), Some(2))
            .await,
        Err(Error::PlanLimitExceeded {
            resource: Resource::TasksPerProject,
            limit: 2,
            ..
        })
    ));
    assert!(matches!(
        t.create_task(
            &new_task(
                "x",
                saas_core::projects::ProjectId(999_999),
                Priority::Low,
                None
            ),
            None
        )
        .await,
        Err(Error::NotFound {
            entity: Entity::Project
        })
    ));
    let mut bad_assignee = new_task("x", p1.id, Priority::Low, None);
    bad_assignee.assigned_to = Some(UserId(999_999));
    assert!(matches!(
        t.create_task(&bad_assignee, None).await,
        Err(Error::NotFound {
            entity: Entity::User
        })
    ));
    assert_eq!(t.task(a.id).await.expect("task"), Some(a.clone()));

    // The combined reads answer what the reads they combine answer.
    let p1 = t.add_member(p1.id, alice.id).await.expect("add member");
    assert_eq!(
        t.task_with_project(a.id).await.expect("task with project"),
        Some((a.clone(), p1.clone()))
    );
    assert_eq!(
        t.task_with_project(TaskId(999_999)).await.expect("none"),
        None
    );
    assert_eq!(
        t.project_and_user(p1.id, Some(alice.id))
            .await
            .expect("project and user"),
        (Some(p1.clone()), t.user(alice.id).await.expect("alice"))
    );
    assert_eq!(
        t.project_and_user(p1.id, None).await.expect("project"),
        (Some(p1.clone()), None)
    );
    assert_eq!(
        t.project_and_user(ProjectId(999_999), Some(UserId(999_999)))
            .await
            .expect("neither"),
        (None, None)
    );
    let past_the_end = t
        .list_tasks(
            &TaskQuery::new(Scope::All),
            PageRequest::new(Some(9), Some(50)).expect("page"),
        )
        .await
        .expect("list");
    assert_eq!((past_the_end.count, past_the_end.items.len()), (3, 0));
    assert_eq!(
        t.project_with_counts(p1.id, now).await.expect("statistics"),
        Some((
            p1.clone(),
            t.task_counts(&TaskQuery::in_project(p1.id), now)
                .await
                .expect("counts")
        ))
    );
    assert_eq!(
        t.project_with_counts(ProjectId(999_999), now)
            .await
            .expect("none"),
        None
    );
    for (scope, user) in [
        (Scope::All, admin.id),
        (Scope::InvolvedIn(alice.id), alice.id),
        (Scope::InvolvedIn(UserId(999_999)), UserId(999_999)),
    ] {
        let query = DashboardQuery::new(scope, user);
        assert_eq!(
            t.dashboard(&query, now).await.expect("dashboard"),
            dashboard_by_parts(&*t, &query, now)
                .await
                .expect("by parts"),
            "{scope:?}"
        );
    }
    t.remove_member(p1.id, alice.id)
        .await
        .expect("remove member");

    let mut query = TaskQuery::new(Scope::All);
    query.ordering = TaskOrdering {
        field: TaskOrderField::DueDate,
        descending: true,
    };
    let listed = t
        .list_tasks(&query, PageRequest::first())
        .await
        .expect("list");
    assert_eq!(
        listed.items.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![c.id, a.id, b.id]
    );
    query.ordering = TaskOrdering {
        field: TaskOrderField::Title,
        descending: false,
    };
    let listed = t
        .list_tasks(&query, PageRequest::first())
        .await
        .expect("list");
    assert_eq!(
        listed.items.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![a.id, c.id, b.id]
    );
    query.search = Some("ALP".to_owned());
    assert_eq!(
        t.list_tasks(&query, PageRequest::first())
            .await
            .expect("list")
            .count,
        1
    );
    query.search = Some("0% LITERAL_".to_owned());
    assert_eq!(
        t.list_tasks(&query, PageRequest::first())
            .await
            .expect("list")
            .count,
        3
    );
    query.search = Some("%".to_owned());
    assert_eq!(
        t.list_tasks(&query, PageRequest::first())
            .await
            .expect("list")
            .count,
        3
    );
    query.search = Some("_x".to_owned());
    assert_eq!(
        t.list_tasks(&query, PageRequest::first())
            .await
            .expect("list")
            .count,
        0
    );
    let mut involved = TaskQuery::new(Scope::InvolvedIn(admin.id));
    involved.overdue_at = Some(now);
    let overdue = t
        .list_tasks(&involved, PageRequest::first())
        .await
        .expect("list");
    assert_eq!(
        overdue.items.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![a.id]
    );
    let counts = t
        .task_counts(&TaskQuery::new(Scope::All), now)
        .await
        .expect("counts");
    assert_eq!(
        (
            counts.total,
            counts.overdue,
            counts.priority(Priority::Urgent)
        ),
        (3, 1, 1)
    );
    assert_eq!(counts.status(TaskStatus::Todo), 3);

    let mut change = TaskChanges {
        status: Some(TaskStatus::Done),
        completed_at: Some(Some(now - Duration::days(40))),
        assigned_to: Some(None),
        ..TaskChanges::at(now)
    };
    let done = t
        .update_task(a.id, &change, None)
        .await
        .expect("update task");
    assert_eq!(
        (done.status, done.assigned_to.clone()),
        (TaskStatus::Done, None)
    );
    change.assigned_to = Some(Some(UserId(999_999)));
    assert!(matches!(
        t.update_task(a.id, &change, None).await,
        Err(Error::NotFound {
            entity: Entity::User
        })
    ));
    assert_eq!(
        t.delete_done_tasks_before(now - Duration::days(30))
            .await
            .expect("cleanup"),
        1
    );
    t.delete_task(b.id).await.expect("delete task");
    assert!(matches!(
        t.delete_task(b.id).await,
        Err(Error::NotFound {
            entity: Entity::Task
        })
    ));
    t.delete_project(p2.id).await.expect("delete project");
    assert_eq!(t.task(c.id).await.expect("task"), None);
    assert!(matches!(
        t.delete_project(p2.id).await,
        Err(Error::NotFound {
            entity: Entity::Project
        })
    ));

    store.purge_tenant(tenant.id, None).await.expect("cleanup");
}

#[tokio::test]
async fn qualified_sql_every_method() {
    every_method(Routing::QualifiedSql, false).await;
}

#[tokio::test]
async fn qualified_unnamed_every_method() {
    every_method(Routing::QualifiedUnnamed, false).await;
}

#[tokio::test]
async fn qualified_prepared_every_method() {
    every_method(Routing::QualifiedPrepared, false).await;
}

#[tokio::test]
async fn set_local_search_path_every_method() {
    every_method(Routing::SetLocalSearchPath, false).await;
}

#[tokio::test]
async fn pooler_mode_qualified_sql_every_method() {
    every_method(Routing::QualifiedSql, true).await;
}

#[tokio::test]
async fn pooler_mode_set_local_search_path_every_method() {
    every_method(Routing::SetLocalSearchPath, true).await;
}
