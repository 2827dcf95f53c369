//! A smoke test of every `Store` and `TenantStore` method on the SQLite
//! backend. The cross-backend conformance suite (in the workspace `tests`
//! crate) checks the shared semantics in depth; this checks the backend's
//! wiring, and the details that SQL gets wrong most easily.

use chrono::{Duration, NaiveDate};
use saas_core::projects::{
    Priority, ProjectStatus, Scope, Task, TaskCounts, TaskOrderField, TaskOrdering, TaskQuery,
    TaskStatus,
};
use saas_core::store::{PageRequest, RefreshOutcome, RefreshTokenRecord, Store};
use saas_core::tenancy::{Hostname, TenantId, TenantStatus};
use saas_core::updates::{ProjectChanges, TaskChanges, UserChanges};
use saas_core::users::{Email, Role, UserId, Username};
use saas_core::{Entity, Error, Resource};
use testkit::records::{
    admin_record, new_tenant, now, open_tenant, password_hash_of, project_record, task_record,
    user_record,
};
use testkit::sqlite::store;
use uuid::Uuid;

#[tokio::test]
async fn catalog_methods() {
    let (_dir, store) = store();
    store.ping().await.expect("ping");
    let registration = new_tenant();
    let (tenant, admin) = store
        .create_tenant(&registration, &admin_record())
        .await
        .expect("create");
    assert_eq!(tenant.id, registration.id);
    assert_eq!(tenant.status, TenantStatus::Active);
    assert_eq!(tenant.created_at, registration.created_at);
    assert!(admin.is_owner && admin.is_active);
    assert_eq!(
        store.tenant(tenant.id).await.expect("by id"),
        Some(tenant.clone())
    );
    assert_eq!(
        store.tenant_by_slug(&tenant.slug).await.expect("by slug"),
        Some(tenant.clone())
    );
    assert_eq!(
        store
            .tenant_by_domain(&registration.domain)
            .await
            .expect("by domain"),
        Some(tenant.clone())
    );
    assert_eq!(store.tenant(TenantId::new()).await.expect("unknown"), None);

    // Domains: a second one routes too; making one primary demotes the other.
    let extra = Hostname::parse("extra.example.com").expect("host");
    let added = store
        .add_domain(tenant.id, &extra, false)
        .await
        .expect("add");
    assert!(!added.is_primary);
    assert_eq!(
        store.tenant_by_domain(&extra).await.expect("lookup"),
        Some(tenant.clone())
    );
    assert!(matches!(
        store.add_domain(tenant.id, &extra, false).await,
        Err(Error::Conflict {
            entity: Entity::Domain,
            field: "hostname"
        })
    ));
    assert!(matches!(
        store
            .add_domain(
                TenantId::new(),
                &Hostname::parse("x.example.com").expect("host"),
                false
            )
            .await,
        Err(Error::NotFound {
            entity: Entity::Tenant
        })
    ));
    let domains = store.domains(tenant.id).await.expect("domains");
    assert_eq!(domains.len(), 2);
    assert!(domains[0].is_primary);
    assert_eq!(domains[0].hostname, registration.domain);
    assert!(matches!(
        store.remove_domain(tenant.id, &registration.domain).await,
        Err(Error::State("cannot remove the primary domain"))
    ));
    let new_primary = Hostname::parse("primary.example.com").expect("host");
    store
        .add_domain(tenant.id, &new_primary, true)
        .await
        .expect("add primary");
    let domains = store.domains(tenant.id).await.expect("domains");
    assert_eq!(domains.iter().filter(|d| d.is_primary).count(), 1);
    assert_eq!(domains[0].hostname, new_primary);
    store
        .remove_domain(tenant.id, &registration.domain)
        .await
        .expect("remove demoted");
    store
        .remove_domain(tenant.id, &extra)
        .await
        .expect("remove extra");
    assert!(matches!(
        store.remove_domain(tenant.id, &extra).await,
        Err(Error::NotFound {
            entity: Entity::Domain
        })
    ));
    assert_eq!(store.tenant_by_domain(&extra).await.expect("lookup"), None);

    // Plan and status.
    let changed = store.set_plan(tenant.id, "basic").await.expect("plan");
    assert_eq!(changed.plan, "basic");
    let changed = store
        .set_status(tenant.id, TenantStatus::Suspended)
        .await
        .expect("status");
    assert_eq!(changed.status, TenantStatus::Suspended);
    assert_eq!(
        store
            .tenant(tenant.id)
            .await
            .expect("reload")
            .map(|t| (t.plan, t.status)),
        Some(("basic".to_owned(), TenantStatus::Suspended))
    );
    assert!(matches!(
        store.set_plan(TenantId::new(), "basic").await,
        Err(Error::NotFound {
            entity: Entity::Tenant
        })
    ));
    assert!(matches!(
        store
            .set_status(TenantId::new(), TenantStatus::Active)
            .await,
        Err(Error::NotFound {
            entity: Entity::Tenant
        })
    ));

    // Listing: oldest first, paginated.
    let (second, _) = store
        .create_tenant(&new_tenant(), &admin_record())
        .await
        .expect("second");
    let (third, _) = store
        .create_tenant(&new_tenant(), &admin_record())
        .await
        .expect("third");
    let page = store
        .list_tenants(PageRequest::new(Some(1), Some(2)).expect("page"))
        .await
        .expect("list");
    assert_eq!(page.count, 3);
    assert_eq!(
        page.items.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![tenant.id, second.id]
    );
    let page = store
        .list_tenants(PageRequest::new(Some(2), Some(2)).expect("page"))
        .await
        .expect("list");
    assert_eq!(
        page.items.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![third.id]
    );

    // Superusers.
    let name = Username::parse("Root").expect("username");
    let email = Email::parse("root@example.com").expect("email");
    let su = store
        .create_superuser(&name, &email, "hash")
        .await
        .expect("superuser");
    assert_eq!(su.username, name);
    let (found, hash) = store
        .superuser_credentials("root")
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(found, su);
    assert_eq!(hash, "hash");
    assert!(matches!(
        store
            .create_superuser(&Username::parse("ROOT").expect("username"), &email, "h")
            .await,
        Err(Error::Conflict {
            entity: Entity::Superuser,
            field: "username"
        })
    ));
    assert_eq!(
        store.superuser_credentials("nobody").await.expect("lookup"),
        None
    );
}

#[tokio::test]
async fn user_methods() {
    let (_dir, store) = store();
    let (_tenant, admin, t) = open_tenant(&store).await;
    assert_eq!(t.user(admin.id).await.expect("get"), Some(admin.clone()));
    let bob = t
        .create_user(&user_record("Bob", Role::Member), Some(5))
        .await
        .expect("create");
    assert_eq!(bob.username.as_str(), "Bob");
    assert!(bob.is_active && !bob.is_owner);
    assert_eq!((bob.token_version, bob.last_login), (0, None));
    assert_eq!(t.user(bob.id).await.expect("get"), Some(bob.clone()));
    assert!(matches!(
        t.create_user(&user_record("BOB", Role::Viewer), None).await,
        Err(Error::Conflict {
            entity: Entity::User,
            field: "username"
        })
    ));
    assert!(matches!(
        t.create_user(&user_record("carol", Role::Viewer), Some(2))
            .await,
        Err(Error::PlanLimitExceeded {
            resource: Resource::Users,
            limit: 2,
            ..
        })
    ));
    assert_eq!(t.count_users().await.expect("count"), 2);

    let (user, hash) = t
        .credentials("bob")
        .await
        .expect("credentials")
        .expect("found");
    assert_eq!(user, bob);
    assert_eq!(hash, password_hash_of("Bob"));
    assert_eq!(t.credentials("nobody").await.expect("credentials"), None);

    let page = t.list_users(PageRequest::first()).await.expect("list");
    assert_eq!(page.count, 2);
    assert_eq!(
        page.items.iter().map(|u| u.id).collect::<Vec<_>>(),
        vec![admin.id, bob.id]
    );

    // Deactivating bumps the token version; reactivating does not.
    let mut changes = UserChanges {
        first_name: Some("Robert".to_owned()),
        role: Some(Role::Manager),
        is_active: Some(false),
        ..UserChanges::default()
    };
    let updated = t.update_user(bob.id, &changes).await.expect("update");
    assert_eq!(updated.first_name, "Robert");
    assert_eq!(updated.role, Role::Manager);
    assert!(!updated.is_active);
    assert_eq!(updated.token_version, 1);
    changes.is_active = Some(true);
    assert_eq!(
        t.update_user(bob.id, &changes)
            .await
            .expect("update")
            .token_version,
        1
    );
    assert_eq!(
        t.update_user(bob.id, &changes)
            .await
            .expect("update")
            .token_version,
        1
    );
    assert!(matches!(
        t.update_user(UserId(9999), &changes).await,
        Err(Error::NotFound {
            entity: Entity::User
        })
    ));

    t.set_password(bob.id, "new-hash")
        .await
        .expect("set password");
    let (user, hash) = t
        .credentials("bob")
        .await
        .expect("credentials")
        .expect("found");
    assert_eq!(hash, "new-hash");
    assert_eq!(user.token_version, 2);
    assert!(matches!(
        t.set_password(UserId(9999), "x").await,
        Err(Error::NotFound {
            entity: Entity::User
        })
    ));

    let at = now();
    t.record_login(bob.id, at).await.expect("login");
    assert_eq!(
        t.user(bob.id)
            .await
            .expect("get")
            .and_then(|u| u.last_login),
        Some(at)
    );
}

#[tokio::test]
async fn refresh_token_methods() {
    let (_dir, store) = store();
    let (_tenant, admin, t) = open_tenant(&store).await;
    let family = Uuid::new_v4();
    let first = RefreshTokenRecord {
        jti: Uuid::new_v4(),
        family,
        user_id: admin.id,
        expires_at: now() + Duration::days(1),
    };
    let second = RefreshTokenRecord {
        jti: Uuid::new_v4(),
        ..first.clone()
    };
    t.insert_refresh_token(&first).await.expect("insert");
    t.insert_refresh_token(&second).await.expect("insert");
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
            user_id: admin.id,
            family
        }
    );
    // Reuse revokes the family: the sibling no longer works either.
    assert_eq!(
        t.rotate_refresh_token(
            first.jti,
            &RefreshTokenRecord {
                jti: Uuid::new_v4(),
                ..first.clone()
            }
        )
        .await
        .expect("reuse"),
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
        .expect("revoked"),
        RefreshOutcome::Invalid
    );
    assert_eq!(
        t.rotate_refresh_token(Uuid::new_v4(), &first)
            .await
            .expect("unknown"),
        RefreshOutcome::Invalid
    );

    let expired = RefreshTokenRecord {
        jti: Uuid::new_v4(),
        family: Uuid::new_v4(),
        user_id: admin.id,
        expires_at: now() - Duration::days(1),
    };
    t.insert_refresh_token(&expired).await.expect("insert");
    assert_eq!(t.prune_refresh_tokens(now()).await.expect("prune"), 1);
    assert_eq!(
        t.rotate_refresh_token(
            expired.jti,
            &RefreshTokenRecord {
                jti: Uuid::new_v4(),
                ..expired.clone()
            }
        )
        .await
        .expect("pruned"),
        RefreshOutcome::Invalid
    );
}

#[tokio::test]
async fn project_methods() {
    let (_dir, store) = store();
    let (_tenant, admin, t) = open_tenant(&store).await;
    let bob = t
        .create_user(&user_record("bob", Role::Member), None)
        .await
        .expect("bob");
    let carol = t
        .create_user(&user_record("carol", Role::Manager), None)
        .await
        .expect("carol");

    let mut record = project_record("Alpha", admin.id);
    record.start_date = NaiveDate::from_ymd_opt(2024, 2, 29);
    record.end_date = NaiveDate::from_ymd_opt(2025, 12, 31);
    record.status = ProjectStatus::Planning;
    let alpha = t.create_project(&record, Some(3)).await.expect("alpha");
    assert_eq!(alpha.name, "Alpha");
    assert_eq!(alpha.owner, admin.summary());
    assert_eq!(
        (alpha.start_date, alpha.end_date),
        (record.start_date, record.end_date)
    );
    assert_eq!(
        (alpha.created_at, alpha.updated_at),
        (record.created_at, record.created_at)
    );
    assert!(alpha.members.is_empty());
    assert!(matches!(
        t.create_project(&project_record("x", UserId(9999)), None)
            .await,
        Err(Error::NotFound {
            entity: Entity::User
        })
    ));
    let beta = t
        .create_project(&project_record("Beta", carol.id), Some(3))
        .await
        .expect("beta");
    let gamma = t
        .create_project(&project_record("Gamma", carol.id), Some(3))
        .await
        .expect("gamma");
    assert!(matches!(
        t.create_project(&project_record("Delta", carol.id), Some(3))
            .await,
        Err(Error::PlanLimitExceeded {
            resource: Resource::Projects,
            limit: 3,
            ..
        })
    ));
    assert_eq!(t.project(alpha.id).await.expect("get"), Some(alpha.clone()));

    // Members: idempotent, ordered by id, owner not implied.
    t.add_member(alpha.id, carol.id).await.expect("add carol");
    t.add_member(alpha.id, bob.id).await.expect("add bob");
    let with_members = t.add_member(alpha.id, bob.id).await.expect("again");
    assert_eq!(with_members.members, vec![bob.summary(), carol.summary()]);
    assert!(matches!(
        t.add_member(saas_core::projects::ProjectId(9999), bob.id)
            .await,
        Err(Error::NotFound {
            entity: Entity::Project
        })
    ));
    assert!(matches!(
        t.add_member(alpha.id, UserId(9999)).await,
        Err(Error::NotFound {
            entity: Entity::User
        })
    ));
    let removed = t.remove_member(alpha.id, carol.id).await.expect("remove");
    assert_eq!(removed.members, vec![bob.summary()]);
    t.remove_member(alpha.id, carol.id)
        .await
        .expect("remove again");
    t.add_member(gamma.id, bob.id).await.expect("bob in gamma");

    // Lists: newest first, scoped, with members filled in.
    let all = t
        .list_projects(Scope::All, PageRequest::first())
        .await
        .expect("all");
    assert_eq!(all.count, 3);
    assert_eq!(
        all.items.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![gamma.id, beta.id, alpha.id]
    );
    assert_eq!(all.items[0].members, vec![bob.summary()]);
    assert_eq!(all.items[2].members, vec![bob.summary()]);
    let bobs = t
        .list_projects(Scope::InvolvedIn(bob.id), PageRequest::first())
        .await
        .expect("bob's");
    assert_eq!(
        bobs.items.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![gamma.id, alpha.id]
    );
    let carols = t
        .list_projects(
            Scope::InvolvedIn(carol.id),
            PageRequest::new(Some(2), Some(1)).expect("page"),
        )
        .await
        .expect("carol's");
    assert_eq!(carols.count, 2);
    assert_eq!(
        carols.items.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![beta.id]
    );

    let counts = t.project_counts(Scope::All).await.expect("counts");
    assert_eq!(counts.total, 3);
    assert_eq!(counts.status(ProjectStatus::Planning), 1);
    assert_eq!(counts.status(ProjectStatus::Active), 2);
    assert_eq!(
        t.project_counts(Scope::InvolvedIn(bob.id))
            .await
            .expect("counts")
            .total,
        2
    );

    let changes = ProjectChanges {
        name: Some("Alpha 2".to_owned()),
        description: Some("new".to_owned()),
        status: Some(ProjectStatus::OnHold),
        start_date: Some(None),
        end_date: Some(NaiveDate::from_ymd_opt(2030, 1, 1)),
        updated_at: now(),
    };
    let updated = t.update_project(alpha.id, &changes).await.expect("update");
    assert_eq!(
        (
            updated.name.as_str(),
            updated.status,
            updated.start_date,
            updated.end_date,
            updated.updated_at
        ),
        (
            "Alpha 2",
            ProjectStatus::OnHold,
            None,
            NaiveDate::from_ymd_opt(2030, 1, 1),
            changes.updated_at
        )
    );
    assert_eq!(updated.members, vec![bob.summary()]);
    assert!(matches!(
        t.update_project(saas_core::projects::ProjectId(9999), &changes)
            .await,
        Err(Error::NotFound {
            entity: Entity::Project
        })
    ));

    // Deleting takes tasks and memberships along.
    let task = t
        .create_task(&task_record(alpha.id, "t", admin.id), None)
        .await
        .expect("task");
    t.delete_project(alpha.id).await.expect("delete");
    assert_eq!(t.project(alpha.id).await.expect("get"), None);
    assert_eq!(t.task(task.id).await.expect("task"), None);
    assert!(matches!(
        t.delete_project(alpha.id).await,
        Err(Error::NotFound {
            entity: Entity::Project
        })
    ));
    assert!(matches!(
        t.remove_member(alpha.id, bob.id).await,
        Err(Error::NotFound {
            entity: Entity::Project
        })
    ));
}

/// Every page of `query`, in order.
async fn all_tasks(t: &dyn saas_core::store::TenantStore, query: &TaskQuery) -> Vec<Task> {
    let page = t
        .list_tasks(query, PageRequest::new(Some(1), Some(100)).expect("page"))
        .await
        .expect("list");
    assert_eq!(page.count as usize, page.items.len());
    page.items
}

#[tokio::test]
async fn task_methods() {
    let (_dir, store) = store();
    let (_tenant, admin, t) = open_tenant(&store).await;
    let bob = t
        .create_user(&user_record("bob", Role::Member), None)
        .await
        .expect("bob");
    let mine = t
        .create_project(&project_record("Mine", admin.id), None)
        .await
        .expect("p1");
    let bobs = t
        .create_project(&project_record("Bob's", bob.id), None)
        .await
        .expect("p2");
    let base = now() - Duration::hours(1);

    let mut created = Vec::new();
    let specs: [(&str, &str, TaskStatus, Priority, Option<i64>); 7] = [
        (
            "Write 100% of docs",
            "",
            TaskStatus::Todo,
            Priority::High,
            Some(-30),
        ),
        (
            "review_code",
            "snake_case",
            TaskStatus::Review,
            Priority::Low,
            None,
        ),
        (
            "Deploy",
            "to PROD",
            TaskStatus::Done,
            Priority::Urgent,
            Some(-60),
        ),
        (
            "deploy staging",
            "back\\slash",
            TaskStatus::InProgress,
            Priority::High,
            Some(30),
        ),
        (
            "Ünïcode",
            "ÉCOLE",
            TaskStatus::Todo,
            Priority::Medium,
            Some(60),
        ),
        ("apple", "", TaskStatus::Todo, Priority::High, None),
        ("Banana", "", TaskStatus::Todo, Priority::High, Some(30)),
    ];
    for (i, (title, description, status, priority, due)) in specs.into_iter().enumerate() {
        let project = if i % 2 == 0 { mine.id } else { bobs.id };
        let mut record = task_record(project, title, admin.id);
        record.description = description.to_owned();
        record.status = status;
        record.priority = priority;
        record.assigned_to = (i % 3 == 0).then_some(bob.id);
        record.due_date = due.map(|m| base + Duration::minutes(m));
        record.completed_at = (status == TaskStatus::Done).then_some(base);
        // Some creation times tie, so ordering must fall back to ids.
        record.created_at = base + Duration::seconds((i / 2) as i64);
        created.push(t.create_task(&record, Some(10)).await.expect("create"));
    }
    let first = &created[0];
    assert_eq!(first.created_by, admin.summary());
    assert_eq!(first.assigned_to, Some(bob.summary()));
    assert_eq!(created[1].assigned_to, None);
    assert_eq!(t.task(first.id).await.expect("get"), Some(first.clone()));

    assert!(matches!(
        t.create_task(
            &task_record(saas_core::projects::ProjectId(9999), "x", admin.id),
            None
        )
        .await,
        Err(Error::NotFound {
            entity: Entity::Project
        })
    ));
    let mut unknown_assignee = task_record(mine.id, "x", admin.id);
    unknown_assignee.assigned_to = Some(UserId(9999));
    assert!(matches!(
        t.create_task(&unknown_assignee, None).await,
        Err(Error::NotFound {
            entity: Entity::User
        })
    ));
    assert!(matches!(
        t.create_task(&task_record(mine.id, "x", admin.id), Some(4))
            .await,
        Err(Error::PlanLimitExceeded {
            resource: Resource::TasksPerProject,
            limit: 4,
            ..
        })
    ));

    // Every filter and every ordering agrees with the reference.
    let at = now();
    let mut queries = Vec::new();
    for scope in [
        Scope::All,
        Scope::InvolvedIn(bob.id),
        Scope::InvolvedIn(UserId(9999)),
    ] {
        queries.push(TaskQuery::new(scope));
    }
    let search = |s: &str| TaskQuery {
        search: Some(s.to_owned()),
        ..TaskQuery::new(Scope::All)
    };
    for s in [
        "DEPLOY", "100%", "%", "_", "view_c", "\\", "é", "É", "ü", "", "prod",
    ] {
        queries.push(search(s));
    }
    queries.push(TaskQuery {
        project: Some(mine.id),
        status: Some(TaskStatus::Todo),
        ..TaskQuery::new(Scope::All)
    });
    queries.push(TaskQuery {
        priority: Some(Priority::High),
        assigned_to: Some(bob.id),
        ..TaskQuery::new(Scope::All)
    });
    queries.push(TaskQuery {
        overdue_at: Some(at),
        ..TaskQuery::new(Scope::All)
    });
    queries.push(TaskQuery {
        due_from: Some(base),
        due_until: Some(base + Duration::minutes(60)),
        ..TaskQuery::new(Scope::All)
    });
    let everything = all_tasks(t.as_ref(), &TaskQuery::new(Scope::All)).await;
    assert_eq!(everything.len(), 7);
    for query in &queries {
        let got: Vec<_> = all_tasks(t.as_ref(), query)
            .await
            .iter()
            .map(|t| t.id)
            .collect();
        let mut want: Vec<_> = everything
            .iter()
            .filter(|t| query.matches(t))
            .map(|t| t.id)
            .collect();
        let visible_in_scope = |task: &Task| match query.scope {
            Scope::All => true,
            Scope::InvolvedIn(u) => u == bob.id && task.project_id == bobs.id,
        };
        want.retain(|id| {
            everything
                .iter()
                .any(|t| t.id == *id && visible_in_scope(t))
        });
        let mut got_sorted = got.clone();
        got_sorted.sort_unstable();
        want.sort_unstable();
        assert_eq!(got_sorted, want, "{query:?}");
    }
    assert!(
        !search("é").matches(&created[4]),
        "no Unicode folding in the reference"
    );
    assert_eq!(
        all_tasks(t.as_ref(), &search("%")).await.len(),
        1,
        "% is literal"
    );

    // Orderings: the field, ties by id ascending, missing due dates last.
    for &field in TaskOrderField::ALL {
        for descending in [false, true] {
            let query = TaskQuery {
                ordering: TaskOrdering { field, descending },
                ..TaskQuery::new(Scope::All)
            };
            let got: Vec<_> = all_tasks(t.as_ref(), &query)
                .await
                .iter()
                .map(|t| t.id)
                .collect();
            let mut want = everything.clone();
            want.sort_by(|a, b| {
                use std::cmp::Ordering;
                let dir = |o: Ordering| if descending { o.reverse() } else { o };
                let missing_last =
                    |x: Option<chrono::DateTime<chrono::Utc>>,
                     y: Option<chrono::DateTime<chrono::Utc>>| match (x, y) {
                        (Some(x), Some(y)) => dir(x.cmp(&y)),
                        (None, Some(_)) => Ordering::Greater,
                        (Some(_), None) => Ordering::Less,
                        (None, None) => Ordering::Equal,
                    };
                let primary = match field {
                    TaskOrderField::CreatedAt => dir(a.created_at.cmp(&b.created_at)),
                    TaskOrderField::UpdatedAt => dir(a.updated_at.cmp(&b.updated_at)),
                    TaskOrderField::DueDate => missing_last(a.due_date, b.due_date),
                    TaskOrderField::StartedAt => missing_last(a.started_at, b.started_at),
                    TaskOrderField::Priority => dir(a.priority.rank().cmp(&b.priority.rank())),
                    TaskOrderField::Status => dir(a.status.rank().cmp(&b.status.rank())),
                    TaskOrderField::Title => dir(a.title.as_bytes().cmp(b.title.as_bytes())),
                    TaskOrderField::Id => dir(a.id.cmp(&b.id)),
                };
                primary.then(a.id.cmp(&b.id))
            });
            let want: Vec<_> = want.iter().map(|t| t.id).collect();
            assert_eq!(got, want, "{field:?} descending={descending}");
        }
    }
    // Pagination keeps the order and the total.
    let page = t
        .list_tasks(
            &TaskQuery::new(Scope::All),
            PageRequest::new(Some(2), Some(3)).expect("page"),
        )
        .await
        .expect("page 2");
    assert_eq!(page.count, 7);
    assert_eq!(
        page.items.iter().map(|t| t.id).collect::<Vec<_>>(),
        everything[3..6].iter().map(|t| t.id).collect::<Vec<_>>()
    );

    // Counts agree with the reference.
    for query in &queries {
        let mut want = TaskCounts::default();
        for task in all_tasks(t.as_ref(), query).await {
            want.add(&task, at);
        }
        assert_eq!(
            t.task_counts(query, at).await.expect("counts"),
            want,
            "{query:?}"
        );
    }

    // Updates write every field; clearing the assignee works.
    let mut changes = TaskChanges {
        title: Some("Renamed".to_owned()),
        status: Some(TaskStatus::Done),
        completed_at: Some(Some(at)),
        assigned_to: Some(None),
        due_date: Some(None),
        ..TaskChanges::at(at)
    };
    let updated = t
        .update_task(first.id, &changes, None)
        .await
        .expect("update");
    assert_eq!(
        (
            updated.title.as_str(),
            updated.status,
            updated.completed_at,
            updated.assigned_to.clone(),
            updated.due_date
        ),
        ("Renamed", TaskStatus::Done, Some(at), None, None)
    );
    assert_eq!(updated.updated_at, at);
    changes.assigned_to = Some(Some(UserId(9999)));
    assert!(matches!(
        t.update_task(first.id, &changes, None).await,
        Err(Error::NotFound {
            entity: Entity::User
        })
    ));
    assert!(matches!(
        t.update_task(saas_core::projects::TaskId(9999), &changes, None)
            .await,
        Err(Error::NotFound {
            entity: Entity::Task
        })
    ));

    // Clean-up of done tasks: completed before the cutoff only.
    assert_eq!(t.delete_done_tasks_before(base).await.expect("none yet"), 0);
    assert_eq!(
        t.delete_done_tasks_before(at + Duration::seconds(1))
            .await
            .expect("two"),
        2
    );
    assert_eq!(t.task(first.id).await.expect("get"), None);

    t.delete_task(created[1].id).await.expect("delete");
    assert!(matches!(
        t.delete_task(created[1].id).await,
        Err(Error::NotFound {
            entity: Entity::Task
        })
    ));
    assert_eq!(
        all_tasks(t.as_ref(), &TaskQuery::new(Scope::All))
            .await
            .len(),
        4
    );
}
