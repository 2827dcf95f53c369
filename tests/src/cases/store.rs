//! The storage contract itself, below the service layer: exact round trips
//! of timestamps, dates and text, the due-date windows the jobs use,
//! pruning of done tasks, token versions, and races on registration.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use saas_core::commands::{NewTask, UserPatch};
use saas_core::error::{Entity, Error};
use saas_core::projects::{
    NewProjectRecord, NewTaskRecord, Priority, ProjectStatus, Scope, TaskOrderField, TaskOrdering,
    TaskQuery, TaskStatus,
};
use saas_core::session::TaskFilter;
use saas_core::store::PageRequest;
use saas_core::tenancy::Slug;
use saas_core::updates::{TaskChanges, UserChanges};
use saas_core::users::Role;

use crate::Fixture;
use crate::assert_err;
use crate::harness::{
    PASSWORD, World, all, domain_for, new_project, new_task, registration, saas, unique_slug,
};

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, micros: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .expect("a valid time")
        + Duration::microseconds(i64::from(micros))
}

/// Timestamps (microseconds, before 1970 and after 2262), dates from year 1
/// to 9999, and text with every kind of character come back exactly.
pub async fn values_round_trip_exactly(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("enterprise")).await;
    let store = w.store().await;
    let created = at(2024, 2, 29, 23, 59, 59, 999_999);
    let title = "\u{e9}".repeat(200);
    let description =
        "tab\there\nnewline\r\n\u{1f680} 'quotes' \"double\" \\ % _ -- ; DROP TABLE tasks;"
            .to_owned();
    let project = store
        .create_project(
            &NewProjectRecord {
                name: "\u{1f680}".repeat(200),
                description: description.clone(),
                status: ProjectStatus::Archived,
                start_date: NaiveDate::from_ymd_opt(1, 1, 1),
                end_date: NaiveDate::from_ymd_opt(9999, 12, 31),
                owner: w.owner.id,
                created_at: created,
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(project.name, "\u{1f680}".repeat(200));
    assert_eq!(project.description, description);
    assert_eq!(project.start_date, NaiveDate::from_ymd_opt(1, 1, 1));
    assert_eq!(project.end_date, NaiveDate::from_ymd_opt(9999, 12, 31));
    assert_eq!((project.created_at, project.updated_at), (created, created));
    assert_eq!(store.project(project.id).await.unwrap().unwrap(), project);

    for due in [
        at(1900, 1, 1, 0, 0, 0, 1),
        at(1969, 12, 31, 23, 59, 59, 999_999),
        at(1970, 1, 1, 0, 0, 0, 0),
        at(2300, 6, 15, 12, 0, 0, 123_456),
        at(9999, 12, 31, 23, 59, 59, 999_999),
    ] {
        let t = store
            .create_task(
                &NewTaskRecord {
                    project_id: project.id,
                    title: title.clone(),
                    description: description.clone(),
                    status: TaskStatus::Done,
                    priority: Priority::Urgent,
                    assigned_to: Some(w.owner.id),
                    created_by: w.owner.id,
                    due_date: Some(due),
                    completed_at: Some(created),
                    created_at: created,
                },
                None,
            )
            .await
            .unwrap();
        assert_eq!(t.due_date, Some(due));
        assert_eq!(
            (t.completed_at, t.created_at, t.updated_at),
            (Some(created), created, created)
        );
        assert_eq!(t.title, title);
        assert_eq!(t.description, description);
        assert_eq!(store.task(t.id).await.unwrap().unwrap(), t);
    }
    // The service truncates sub-microsecond parts before they reach the store.
    let p = w
        .owner_session()
        .await
        .create_project(new_project("p"))
        .await
        .unwrap();
    let nanos = at(2030, 1, 1, 0, 0, 0, 0) + Duration::nanoseconds(123_456_789);
    let t = w
        .owner_session()
        .await
        .create_task(NewTask {
            due_date: Some(nanos),
            ..new_task(p.id, "nanos")
        })
        .await
        .unwrap();
    assert_eq!(t.due_date, Some(at(2030, 1, 1, 0, 0, 0, 123_456)));
    assert_eq!(w.owner_session().await.task(t.id).await.unwrap(), t);
}

/// Search folds ASCII case only: `É` and `é` stay different, `ß` is not `ss`.
pub async fn search_folds_ascii_case_only(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("basic")).await;
    let admin = w.owner_session().await;
    let p = admin.create_project(new_project("p")).await.unwrap();
    let cafe = admin
        .create_task(new_task(p.id, "Caf\u{e9} MENU"))
        .await
        .unwrap();
    let strasse = admin
        .create_task(new_task(p.id, "Stra\u{df}e"))
        .await
        .unwrap();
    let search = |s: &str| TaskFilter {
        search: Some(s.to_owned()),
        ..TaskFilter::default()
    };
    let ids = |page: saas_core::store::Page<saas_core::projects::Task>| {
        page.items.into_iter().map(|t| t.id).collect::<Vec<_>>()
    };
    for (s, expected) in [
        ("cAF\u{e9}", vec![cafe.id]),
        ("menu", vec![cafe.id]),
        ("CAF\u{c9}", vec![]),
        ("strasse", vec![]),
        ("STRA\u{df}E", vec![strasse.id]),
    ] {
        assert_eq!(
            ids(admin.list_tasks(&search(s), all()).await.unwrap()),
            expected,
            "search {s:?}"
        );
    }
    // Titles order by bytes, so non-ASCII sorts after ASCII.
    let last = admin.create_task(new_task(p.id, "zebra")).await.unwrap();
    let ordered = admin
        .list_tasks(
            &TaskFilter {
                ordering: Some("title".parse().unwrap()),
                ..TaskFilter::default()
            },
            all(),
        )
        .await
        .unwrap();
    assert_eq!(ids(ordered), vec![cafe.id, strasse.id, last.id]);
}

/// The store's due-date windows (`overdue_at`, `due_from`, `due_until`)
/// and `delete_done_tasks_before`, which the jobs rely on.
pub async fn store_due_windows_and_pruning(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("enterprise")).await;
    let store = w.store().await;
    let now = at(2030, 6, 1, 12, 0, 0, 0);
    let p = store
        .create_project(
            &NewProjectRecord {
                name: "p".into(),
                description: String::new(),
                status: ProjectStatus::Active,
                start_date: None,
                end_date: None,
                owner: w.owner.id,
                created_at: now,
            },
            None,
        )
        .await
        .unwrap();
    let mk = |status: TaskStatus, due: Option<DateTime<Utc>>, completed: Option<DateTime<Utc>>| {
        NewTaskRecord {
            project_id: p.id,
            title: "t".into(),
            description: String::new(),
            status,
            priority: Priority::Medium,
            assigned_to: None,
            created_by: w.owner.id,
            due_date: due,
            completed_at: completed,
            created_at: now,
        }
    };
    let hour = Duration::hours(1);
    let overdue = store
        .create_task(&mk(TaskStatus::Todo, Some(now - hour), None), None)
        .await
        .unwrap();
    let exactly_now = store
        .create_task(&mk(TaskStatus::Review, Some(now), None), None)
        .await
        .unwrap();
    let later = store
        .create_task(&mk(TaskStatus::InProgress, Some(now + hour), None), None)
        .await
        .unwrap();
    let done_old = store
        .create_task(
            &mk(
                TaskStatus::Done,
                Some(now - hour),
                Some(now - Duration::days(40)),
            ),
            None,
        )
        .await
        .unwrap();
    let done_recent = store
        .create_task(
            &mk(TaskStatus::Done, None, Some(now - Duration::days(1))),
            None,
        )
        .await
        .unwrap();
    let undated = store
        .create_task(&mk(TaskStatus::Todo, None, None), None)
        .await
        .unwrap();

    let by_id = TaskOrdering {
        field: TaskOrderField::Id,
        descending: false,
    };
    let list = |q: TaskQuery| {
        let store = store.clone();
        async move {
            store
                .list_tasks(&q, PageRequest::new(Some(1), Some(100)).unwrap())
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|t| t.id)
                .collect::<Vec<_>>()
        }
    };
    let mut q = TaskQuery::new(Scope::All);
    q.ordering = by_id;
    q.overdue_at = Some(now);
    assert_eq!(
        list(q.clone()).await,
        vec![overdue.id],
        "overdue: not done, due strictly before"
    );
    let counts = store.task_counts(&q, now).await.unwrap();
    assert_eq!((counts.total, counts.overdue), (1, 1));
    let mut q = TaskQuery::new(Scope::All);
    q.ordering = by_id;
    q.due_from = Some(now);
    assert_eq!(
        list(q.clone()).await,
        vec![exactly_now.id, later.id],
        "due_from is inclusive"
    );
    q.due_from = None;
    q.due_until = Some(now);
    assert_eq!(
        list(q.clone()).await,
        vec![overdue.id, done_old.id],
        "due_until is exclusive"
    );
    q.due_from = Some(now - hour);
    q.due_until = Some(now + hour);
    assert_eq!(
        list(q.clone()).await,
        vec![overdue.id, exactly_now.id, done_old.id]
    );
    let all_counts = store
        .task_counts(&TaskQuery::new(Scope::All), now)
        .await
        .unwrap();
    assert_eq!(all_counts.total, 6);
    assert_eq!(all_counts.overdue, 1);
    assert_eq!(all_counts.status(TaskStatus::Done), 2);

    let pruned = store
        .delete_done_tasks_before(now - Duration::days(30))
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    assert_eq!(store.task(done_old.id).await.unwrap(), None);
    for kept in [
        overdue.id,
        exactly_now.id,
        later.id,
        done_recent.id,
        undated.id,
    ] {
        assert!(store.task(kept).await.unwrap().is_some());
    }
    assert_eq!(
        store
            .delete_done_tasks_before(now - Duration::days(30))
            .await
            .unwrap(),
        0
    );

    // Changes are written exactly.
    let changed_at = now + Duration::microseconds(7);
    let t = store
        .update_task(
            later.id,
            &TaskChanges {
                project_id: Some(later.project_id),
                title: Some("changed".into()),
                description: Some("d".into()),
                status: Some(TaskStatus::Done),
                priority: Some(Priority::Low),
                assigned_to: Some(Some(w.owner.id)),
                due_date: Some(None),
                completed_at: Some(Some(changed_at)),
                updated_at: changed_at,
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (
            t.status,
            t.priority,
            t.due_date,
            t.completed_at,
            t.updated_at,
            t.created_at
        ),
        (
            TaskStatus::Done,
            Priority::Low,
            None,
            Some(changed_at),
            changed_at,
            now
        )
    );
    assert_err!(
        store
            .update_task(
                saas_core::projects::TaskId(987_654),
                &TaskChanges::at(t.updated_at),
                None
            )
            .await,
        Error::NotFound {
            entity: Entity::Task
        }
    );
    assert_err!(
        store
            .delete_task(saas_core::projects::TaskId(987_654))
            .await,
        Error::NotFound {
            entity: Entity::Task
        }
    );
    assert_err!(
        store
            .create_task(
                &NewTaskRecord {
                    project_id: saas_core::projects::ProjectId(987_654),
                    ..mk(TaskStatus::Todo, None, None)
                },
                None
            )
            .await,
        Error::NotFound {
            entity: Entity::Project
        }
    );
    assert_err!(
        store
            .create_task(
                &NewTaskRecord {
                    assigned_to: Some(saas_core::users::UserId(987_654)),
                    ..mk(TaskStatus::Todo, None, None)
                },
                None
            )
            .await,
        Error::NotFound {
            entity: Entity::User
        }
    );
}

/// Token versions: deactivating bumps once, other changes do not, a new
/// password bumps; logins are recorded exactly.
pub async fn store_token_versions_and_logins(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, None).await;
    let store = w.store().await;
    let u = w.seed_user(Role::Member, "versioned").await;
    assert_eq!(
        (u.token_version, u.is_active, u.last_login),
        (0, true, None)
    );
    let mut changes = UserChanges {
        department: Some("Ops".into()),
        ..UserChanges::default()
    };
    let u1 = store.update_user(u.id, &changes).await.unwrap();
    assert_eq!((u1.token_version, u1.department.as_str()), (0, "Ops"));
    changes.is_active = Some(false);
    let u2 = store.update_user(u.id, &changes).await.unwrap();
    assert_eq!((u2.token_version, u2.is_active), (1, false));
    let u3 = store.update_user(u.id, &changes).await.unwrap();
    assert_eq!(u3.token_version, 1, "already inactive: no second bump");
    changes.is_active = Some(true);
    let u4 = store.update_user(u.id, &changes).await.unwrap();
    assert_eq!((u4.token_version, u4.is_active), (1, true));
    store.set_password(u.id, "not-a-real-hash").await.unwrap();
    assert_eq!(store.user(u.id).await.unwrap().unwrap().token_version, 2);
    let (_, hash) = store
        .credentials("VERSIONED".to_ascii_lowercase().as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hash, "not-a-real-hash");
    assert_err!(
        saas.login(&w.tenant, "versioned", PASSWORD).await,
        Error::Unauthenticated
    );
    let when = at(2031, 3, 4, 5, 6, 7, 890_123);
    store.record_login(u.id, when).await.unwrap();
    assert_eq!(
        store.user(u.id).await.unwrap().unwrap().last_login,
        Some(when)
    );
    assert_eq!(store.count_users().await.unwrap(), 2);
    assert_err!(
        store
            .update_user(saas_core::users::UserId(987_654), &changes)
            .await,
        Error::NotFound {
            entity: Entity::User
        }
    );
}

/// Concurrent registrations of one slug, or of one domain: exactly one wins
/// and the others get the conflict (never a backend error), leaving nothing.
pub async fn concurrent_registrations_conflict_cleanly(f: &dyn Fixture) {
    let saas = saas(f.store());
    let slug = unique_slug();
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let saas = saas.clone();
            let mut r = registration(&slug, None);
            r.domain_url = format!("n{i}-{}", domain_for(&slug));
            tokio::spawn(async move { saas.register(r).await })
        })
        .collect();
    let (mut ok, mut conflicts) = (0, 0);
    for h in handles {
        match h.await.expect("no panic") {
            Ok(_) => ok += 1,
            Err(Error::Conflict {
                entity: Entity::Tenant,
                field: "slug",
            }) => conflicts += 1,
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!((ok, conflicts), (1, 5));
    let winner = f
        .store()
        .tenant_by_slug(&Slug::parse(&slug).unwrap())
        .await
        .unwrap()
        .expect("the winner exists");
    assert_eq!(f.store().domains(winner.id).await.unwrap().len(), 1);

    let domain = format!("shared-{}", domain_for(&unique_slug()));
    let slugs: Vec<String> = (0..6).map(|_| unique_slug()).collect();
    let handles: Vec<_> = slugs
        .iter()
        .map(|s| {
            let saas = saas.clone();
            let mut r = registration(s, None);
            r.domain_url = domain.clone();
            tokio::spawn(async move { saas.register(r).await })
        })
        .collect();
    let (mut ok, mut conflicts) = (0, 0);
    for h in handles {
        match h.await.expect("no panic") {
            Ok(_) => ok += 1,
            Err(Error::Conflict {
                entity: Entity::Domain,
                field: "hostname",
            }) => conflicts += 1,
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!((ok, conflicts), (1, 5));
    // The losers' slugs were left free.
    let mut free = 0;
    for s in &slugs {
        if f.store()
            .tenant_by_slug(&Slug::parse(s).unwrap())
            .await
            .unwrap()
            .is_none()
        {
            free += 1;
            saas.register(registration(s, None))
                .await
                .expect("a loser's slug can be registered");
        }
    }
    assert_eq!(free, 5);
}

/// A token issued before a tenant was deleted and its slug registered again
/// is refused by the new tenant, though the user ids are the same.
pub async fn tokens_do_not_survive_tenant_recreation(f: &dyn Fixture) {
    let saas = saas(f.store());
    let old = World::register(&saas, None).await;
    let tokens = saas.login(&old.tenant, "admin", PASSWORD).await.unwrap();
    let op = saas.operator_unchecked();
    op.delete_tenant(old.tenant.id).await.unwrap();
    op.purge(old.tenant.id).await.unwrap();
    let (new, owner) = saas
        .register(registration(old.tenant.slug.as_str(), None))
        .await
        .unwrap();
    assert_eq!(owner.id, old.owner.id);
    assert_err!(
        saas.authenticate(&new, &tokens.access).await,
        Error::Unauthenticated
    );
    assert_err!(
        saas.refresh(&new, &tokens.refresh).await,
        Error::Unauthenticated
    );
}

/// A suspended tenant refuses logins and tokens even when the caller still
/// holds the `Tenant` value it resolved before the suspension.
pub async fn suspension_applies_to_tenant_values_resolved_before(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, None).await;
    let tokens = saas.login(&w.tenant, "admin", PASSWORD).await.unwrap();
    saas.operator_unchecked()
        .suspend(w.tenant.id)
        .await
        .unwrap();
    let stale = &w.tenant;
    assert!(
        saas.login(stale, "admin", PASSWORD).await.is_err(),
        "login at a suspended tenant through a stale Tenant value succeeded"
    );
    assert!(
        saas.authenticate(stale, &tokens.access).await.is_err(),
        "a token at a suspended tenant through a stale Tenant value was accepted"
    );
    assert!(saas.refresh(stale, &tokens.refresh).await.is_err());
    assert!(saas.session(stale, w.owner.id).await.is_err());
}

/// Tasks are assigned to active users only (`NewTaskRecord::assigned_to`
/// says "an active user of the tenant").
pub async fn tasks_are_not_assigned_to_inactive_users(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("basic")).await;
    let admin = w.owner_session().await;
    let gone = w.seed_user(Role::Member, "gone").await;
    let p = admin.create_project(new_project("p")).await.unwrap();
    admin.add_member(p.id, gone.id).await.unwrap();
    admin
        .update_user(
            gone.id,
            UserPatch {
                is_active: Some(false),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    let before = w.snapshot().await;
    match admin
        .create_task(NewTask {
            assigned_to_id: Some(gone.id),
            ..new_task(p.id, "for nobody")
        })
        .await
    {
        Err(Error::Invalid { fields }) if fields.contains_key("assigned_to_id") => {}
        other => panic!("expected Invalid(assigned_to_id), got {other:?}"),
    }
    assert_eq!(w.snapshot().await, before);
}
