//! Importing a tenant with its ids (`Store::import_tenant`), verifying it
//! (`TenantStore::inventory`), and the import run over a source held in
//! memory (`Saas::import`).

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use saas_core::error::{Entity, Error};
use saas_core::import::{
    ImportOutcome, ImportProject, ImportSource, ImportTask, ImportUser, SourceCompany,
    SourceDomain, SourceProject, SourceTask, SourceTenant, SourceUser, TenantImport,
};
use saas_core::projects::{
    NewProjectRecord, NewTaskRecord, Priority, ProjectId, ProjectStatus, Scope, TaskId, TaskQuery,
    TaskStatus,
};
use saas_core::tenancy::{Slug, TenantStatus};
use saas_core::users::{Email, NewUserRecord, Role, UserId, Username};

use crate::Fixture;
use crate::assert_err;
use crate::harness::{PASSWORD, all, new_project, new_task, new_user, saas, unique_slug};
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

/// A source held in memory: the rows an `ImportSource` would read.
struct FakeSource {
    companies: Vec<SourceCompany>,
    domains: Vec<SourceDomain>,
    tenants: Vec<(i64, SourceTenant)>,
}

#[async_trait]
impl ImportSource for FakeSource {
    async fn companies(&self) -> saas_core::Result<Vec<SourceCompany>> {
        Ok(self.companies.clone())
    }
    async fn domains(&self) -> saas_core::Result<Vec<SourceDomain>> {
        Ok(self.domains.clone())
    }
    async fn tenant(&self, company: &SourceCompany) -> saas_core::Result<SourceTenant> {
        self.tenants
            .iter()
            .find(|(id, _)| *id == company.id)
            .map(|(_, t)| t.clone())
            .ok_or_else(|| Error::invalid("schema", "no such schema"))
    }
}

fn source_user(id: i64, username: &str, role: &str) -> SourceUser {
    SourceUser {
        id,
        username: username.to_owned(),
        email: format!("{username}@example.com"),
        password: DJANGO_HASH.to_owned(),
        first_name: String::new(),
        last_name: String::new(),
        is_active: true,
        last_login: None,
        date_joined: at(1, id),
        role: Some(role.to_owned()),
        department: String::new(),
    }
}

fn source_company(id: i64, schema: &str, plan: &str, active: bool) -> SourceCompany {
    SourceCompany {
        id,
        schema_name: schema.to_owned(),
        name: format!("Company {schema}"),
        subscription_plan: plan.to_owned(),
        is_active: active,
        created_on: at(1, 0),
    }
}

fn domain(id: i64, host: &str, company: i64, primary: bool) -> SourceDomain {
    SourceDomain {
        id,
        domain: host.to_owned(),
        tenant_id: company,
        is_primary: primary,
    }
}

/// `Saas::import` over a source: the public schema is skipped, each
/// company becomes a verified tenant (its Django passwords log in), other
/// domains are added, an inactive company is suspended, bad rows are
/// reported with what was done; a second run verifies and changes nothing;
/// a tenant holding other rows under the same slug is a mismatch, left
/// alone.
pub async fn import_run_reports_resumes_and_verifies(f: &dyn Fixture) {
    let store = f.store();
    let saas = saas(store.clone());
    let (a, b, c) = (unique_slug(), unique_slug(), unique_slug());
    let (a, b, c) = (a.as_str(), b.as_str(), c.as_str());
    let acme = SourceTenant {
        users: vec![
            source_user(1, "admin", "admin"),
            source_user(2, "ann", "member"),
        ],
        projects: vec![SourceProject {
            id: 1,
            name: "Website".to_owned(),
            description: String::new(),
            status: "active".to_owned(),
            start_date: NaiveDate::from_ymd_opt(2024, 1, 1),
            end_date: None,
            owner_id: 1,
            created_at: at(2, 0),
            updated_at: at(2, 0),
        }],
        members: vec![(1, 2)],
        tasks: vec![SourceTask {
            id: 1,
            project_id: 1,
            title: "Gone assignee".to_owned(),
            description: String::new(),
            status: "todo".to_owned(),
            priority: "high".to_owned(),
            assigned_to: Some(42),
            created_by: Some(1),
            due_date: NaiveDate::from_ymd_opt(2024, 3, 10),
            completed_at: None,
            created_at: at(3, 0),
            updated_at: at(3, 0),
        }],
    };
    let source = FakeSource {
        companies: vec![
            source_company(1, "public", "free", true),
            source_company(2, a, "basic", true),
            source_company(3, b, "no-such-plan", false),
            source_company(4, c, "basic", true),
        ],
        domains: vec![
            domain(1, "localhost", 1, true),
            domain(2, &format!("{a}.import.test"), 2, true),
            domain(3, &format!("www.{a}.import.test"), 2, false),
            domain(4, &format!("{b}.import.test"), 3, true),
            domain(5, &format!("{c}.import.test"), 4, true),
            domain(6, "orphan.import.test", 99, false),
        ],
        tenants: vec![
            (2, acme.clone()),
            (
                3,
                SourceTenant {
                    users: vec![source_user(5, "solo", "admin")],
                    ..SourceTenant::default()
                },
            ),
            (4, acme),
        ],
    };
    // A tenant already here under the last company's slug, holding other rows.
    saas.register(crate::harness::registration(c, None))
        .await
        .unwrap();

    let report = saas.import(&source, &|_| {}).await.unwrap();
    assert!(
        !report.all_verified(),
        "the company whose slug is taken fails the run; the public schema does not"
    );
    let outcomes: Vec<ImportOutcome> = report.tenants.iter().map(|t| t.outcome).collect();
    assert_eq!(
        outcomes,
        [
            ImportOutcome::Public,
            ImportOutcome::Imported,
            ImportOutcome::Imported,
            ImportOutcome::Mismatch
        ]
    );
    let reported: Vec<(&str, i64)> = report.problems.iter().map(|p| (p.table, p.id)).collect();
    for expected in [
        ("tenants_domain", 6),
        ("tenants_company", 1),
        ("core_task", 1),
        ("tenants_company", 3),
        ("tenants_company", 4),
    ] {
        assert!(
            reported.contains(&expected),
            "{expected:?} in {:#?}",
            report.problems
        );
    }
    let line = &report.tenants[1];
    assert_eq!(
        (line.stored.users, line.stored.tasks, line.stored.members),
        (2, 1, 1)
    );

    let acme_tenant = saas
        .resolve_host(&format!("www.{a}.import.test"))
        .await
        .unwrap();
    assert_eq!(acme_tenant.slug.as_str(), a);
    assert_eq!(acme_tenant.plan, "basic");
    let tokens = saas
        .login(&acme_tenant, "ann", "correct horse battery")
        .await
        .expect("the Django password logs in");
    let ann = saas
        .authenticate(&acme_tenant, &tokens.access)
        .await
        .unwrap();
    let task = ann.task(TaskId(1)).await.unwrap();
    assert_eq!(
        task.assigned_to, None,
        "the missing assignee is dropped, and reported"
    );
    let beta = store
        .tenant_by_slug(&Slug::parse(b).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(beta.status, TenantStatus::Suspended);
    assert_eq!(beta.plan, saas.plans().default_plan().code);
    let untouched = store
        .tenant_by_slug(&Slug::parse(c).unwrap())
        .await
        .unwrap()
        .unwrap();
    let held = store
        .open(&untouched)
        .await
        .unwrap()
        .inventory()
        .await
        .unwrap();
    assert_eq!(
        held.counts().users,
        1,
        "the registered tenant is left alone"
    );

    let again = saas.import(&source, &|_| {}).await.unwrap();
    let outcomes: Vec<ImportOutcome> = again.tenants.iter().map(|t| t.outcome).collect();
    assert_eq!(
        outcomes,
        [
            ImportOutcome::Public,
            ImportOutcome::AlreadyImported,
            ImportOutcome::AlreadyImported,
            ImportOutcome::Mismatch
        ]
    );
    for (first, second) in report.tenants.iter().zip(&again.tenants) {
        assert_eq!(first.checksum, second.checksum, "nothing changed");
        assert_eq!(first.stored, second.stored, "nothing changed");
    }
}
