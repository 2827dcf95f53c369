//! Importing a tenant with its ids (`Store::import_tenant`), verifying it
//! (`TenantStore::inventory`), and the import run over a source
//! (`Saas::import`).

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use saas_core::error::{Entity, Error};
use saas_core::import::{ImportProject, ImportTask, ImportUser, TenantImport};
use saas_core::projects::{
    NewProjectRecord, NewTaskRecord, Priority, ProjectId, ProjectStatus, Scope, TaskId, TaskQuery,
    TaskStatus,
};
use saas_core::users::{Email, NewUserRecord, Role, UserId, Username};

use crate::Fixture;
use crate::assert_err;
use crate::harness::{PASSWORD, all, new_project, new_task, new_user, saas};
use crate::records::{host_for, new_tenant_with, random_slug};

/// A Django `pbkdf2_sha256` hash of "correct horse battery".
pub const DJANGO_HASH: &str =
    "pbkdf2_sha256$1000$seasalt$DrdiWD40lyBuydnjvZiDrdQMx1S1mOA9O0QYex0R6ww=";

fn at(day: u32, micros: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, day, 10, 30, 0)
        .single()
        .expect("a valid time")
        + Duration::microseconds(micros)
}

fn user(id: i64, name: &str, role: Role, owner: bool) -> ImportUser {
    ImportUser {
        id: UserId(id),
        record: NewUserRecord {
            username: Username::parse(name).expect("valid"),
            email: Email::parse(&format!("{name}@example.com")).expect("valid"),
            password_hash: DJANGO_HASH.to_owned(),
            first_name: format!("First {name}"),
            last_name: "Last".to_owned(),
            role,
            department: "R&D".to_owned(),
            is_owner: owner,
            date_joined: at(1, id),
        },
        is_active: true,
        last_login: None,
    }
}

/// Users 3 (admin, owner), 7 (member), 9 (viewer, inactive, logged in
/// once); projects 4 (owner 3, members 7 and 9) and 8 (owner 7); tasks 5
/// (project 4, assigned to 7, by 3) and 12 (project 8, unassigned, done).
pub fn sample_import() -> TenantImport {
    let mut viewer = user(9, "Viewer9", Role::Viewer, false);
    viewer.is_active = false;
    viewer.last_login = Some(at(20, 123_456));
    let project = |id: i64, owner: i64, status| ImportProject {
        id: ProjectId(id),
        record: NewProjectRecord {
            name: format!("Project {id}"),
            description: "imported".to_owned(),
            status,
            start_date: NaiveDate::from_ymd_opt(2024, 3, 1),
            end_date: NaiveDate::from_ymd_opt(2024, 12, 31),
            owner: UserId(owner),
            created_at: at(2, id),
        },
        updated_at: at(3, id),
    };
    TenantImport {
        users: vec![
            user(3, "boss", Role::Admin, true),
            user(7, "worker", Role::Member, false),
            viewer,
        ],
        projects: vec![
            project(4, 3, ProjectStatus::OnHold),
            project(8, 7, ProjectStatus::Active),
        ],
        members: vec![(ProjectId(4), UserId(7)), (ProjectId(4), UserId(9))],
        tasks: vec![
            ImportTask {
                id: TaskId(5),
                record: NewTaskRecord {
                    project_id: ProjectId(4),
                    title: "Task 5".to_owned(),
                    description: "first".to_owned(),
                    status: TaskStatus::InProgress,
                    priority: Priority::Urgent,
                    assigned_to: Some(UserId(7)),
                    created_by: UserId(3),
                    due_date: Some(at(28, 999_999)),
                    completed_at: None,
                    created_at: at(4, 5),
                },
                updated_at: at(6, 5),
            },
            ImportTask {
                id: TaskId(12),
                record: NewTaskRecord {
                    project_id: ProjectId(8),
                    title: "Task 12".to_owned(),
                    description: String::new(),
                    status: TaskStatus::Done,
                    priority: Priority::Low,
                    assigned_to: None,
                    created_by: UserId(7),
                    due_date: None,
                    completed_at: Some(at(9, 1)),
                    created_at: at(5, 12),
                },
                updated_at: at(9, 1),
            },
        ],
    }
}

/// Every imported row comes back with its id, timestamps, owner,
/// assignment, status and password hash; counts (the backends' tallies)
/// include the imported tasks; rows created later get ids above the
/// imported ones; the inventory matches the import's.
pub async fn import_tenant_keeps_ids_timestamps_and_hashes(f: &dyn Fixture) {
    let store = f.store();
    let slug = random_slug();
    let new = new_tenant_with(&slug, &host_for(&slug));
    let data = sample_import();
    let tenant = store.import_tenant(&new, &data).await.expect("imported");
    assert_eq!(tenant.slug, slug);
    assert_eq!(
        store.tenant_by_slug(&slug).await.unwrap(),
        Some(tenant.clone())
    );
    assert_eq!(
        store
            .tenant_by_domain(&host_for(&slug))
            .await
            .unwrap()
            .map(|t| t.id),
        Some(tenant.id)
    );
    let t = store.open(&tenant).await.unwrap();
    assert_eq!(t.inventory().await.unwrap(), data.inventory());

    let viewer = t.user(UserId(9)).await.unwrap().expect("user 9");
    assert_eq!(viewer.username.as_str(), "Viewer9");
    assert!(!viewer.is_active);
    assert_eq!(viewer.last_login, Some(at(20, 123_456)));
    assert_eq!(viewer.date_joined, at(1, 9));
    assert_eq!(viewer.role, Role::Viewer);
    assert_eq!(viewer.department, "R&D");
    let (boss, hash) = t.credentials("boss").await.unwrap().expect("boss");
    assert_eq!(boss.id, UserId(3));
    assert!(boss.is_owner && boss.is_active);
    assert_eq!(hash, DJANGO_HASH, "the hash is kept as the source had it");

    let p = t.project(ProjectId(4)).await.unwrap().expect("project 4");
    assert_eq!(p.owner.id, UserId(3));
    let members: Vec<UserId> = p.members.iter().map(|m| m.id).collect();
    assert_eq!(members, vec![UserId(7), UserId(9)]);
    assert_eq!(p.status, ProjectStatus::OnHold);
    assert_eq!(p.start_date, NaiveDate::from_ymd_opt(2024, 3, 1));
    assert_eq!((p.created_at, p.updated_at), (at(2, 4), at(3, 4)));

    let task = t.task(TaskId(5)).await.unwrap().expect("task 5");
    assert_eq!(task.project_id, ProjectId(4));
    assert_eq!(task.assigned_to.map(|u| u.id), Some(UserId(7)));
    assert_eq!(task.created_by.id, UserId(3));
    assert_eq!(
        (task.status, task.priority),
        (TaskStatus::InProgress, Priority::Urgent)
    );
    assert_eq!(task.due_date, Some(at(28, 999_999)));
    assert_eq!((task.created_at, task.updated_at), (at(4, 5), at(6, 5)));
    let done = t.task(TaskId(12)).await.unwrap().expect("task 12");
    assert_eq!(done.assigned_to, None);
    assert_eq!(done.completed_at, Some(at(9, 1)));

    let counts = t
        .task_counts(&TaskQuery::new(Scope::All), at(29, 0))
        .await
        .unwrap();
    assert_eq!(counts.total, 2);
    assert_eq!(counts.status(TaskStatus::Done), 1);
    assert_eq!(counts.priority(Priority::Urgent), 1);
    assert_eq!(counts.overdue, 1, "task 5 was due on the 28th");
    let by_assignee = TaskQuery {
        assigned_to: Some(UserId(7)),
        ..TaskQuery::new(Scope::All)
    };
    assert_eq!(t.list_tasks(&by_assignee, all()).await.unwrap().count, 1);

    // Ids go on above the imported ones.
    let saas = saas(store.clone());
    let session = saas.session(&tenant, UserId(3)).await.unwrap();
    let u = session
        .register_user(new_user("newcomer", Some(Role::Member)))
        .await
        .unwrap();
    assert!(u.id > UserId(9), "{:?}", u.id);
    let project = session.create_project(new_project("after")).await.unwrap();
    assert!(project.id > ProjectId(8), "{:?}", project.id);
    let task = session
        .create_task(new_task(project.id, "after"))
        .await
        .unwrap();
    assert!(task.id > TaskId(12), "{:?}", task.id);
    saas.login(&tenant, "newcomer", PASSWORD).await.unwrap();
}

/// Importing over a taken slug or hostname conflicts and changes nothing;
/// data whose references name missing rows is refused whole, leaving no
/// tenant behind.
pub async fn import_tenant_is_all_or_nothing(f: &dyn Fixture) {
    let store = f.store();
    let slug = random_slug();
    let data = sample_import();
    let tenant = store
        .import_tenant(&new_tenant_with(&slug, &host_for(&slug)), &data)
        .await
        .unwrap();
    let other = random_slug();
    assert_err!(
        store
            .import_tenant(&new_tenant_with(&slug, &host_for(&other)), &data)
            .await,
        Error::Conflict {
            entity: Entity::Tenant,
            field: "slug"
        }
    );
    assert_err!(
        store
            .import_tenant(&new_tenant_with(&other, &host_for(&slug)), &data)
            .await,
        Error::Conflict {
            entity: Entity::Domain,
            field: "hostname"
        }
    );
    assert_eq!(store.tenant_by_slug(&other).await.unwrap(), None);
    let t = store.open(&tenant).await.unwrap();
    assert_eq!(t.inventory().await.unwrap(), data.inventory());

    let mut broken = sample_import();
    broken.tasks[1].record.assigned_to = Some(UserId(99));
    let third = random_slug();
    assert!(
        store
            .import_tenant(&new_tenant_with(&third, &host_for(&third)), &broken)
            .await
            .is_err(),
        "a task assigned to a missing user is refused"
    );
    assert_eq!(
        store.tenant_by_slug(&third).await.unwrap(),
        None,
        "nothing left behind"
    );
    assert_eq!(
        store.tenant_by_domain(&host_for(&third)).await.unwrap(),
        None
    );
}
