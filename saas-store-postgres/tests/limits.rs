//! Plan limits hold under concurrency: 64 creates against a limit of 10.

use std::sync::Arc;

use saas_core::error::{Error, Resource};
use saas_core::projects::{NewProjectRecord, NewTaskRecord, Priority, ProjectStatus, TaskStatus};
use saas_core::store::{Store, TenantStore};
use saas_core::users::Role;
use saas_store_postgres::{PgConfig, Routing};
use testkit::{pg, records};

async fn race<F, Fut>(n: usize, f: F) -> (usize, usize)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = saas_core::Result<()>> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(f(i))).collect();
    let (mut ok, mut limited) = (0, 0);
    for t in tasks {
        match t.await.expect("task") {
            Ok(()) => ok += 1,
            Err(Error::PlanLimitExceeded { .. }) => limited += 1,
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    (ok, limited)
}

async fn limits_hold(routing: Routing) {
    let config = PgConfig::new(pg::url())
        .with_routing(routing)
        .with_max_connections(16);
    let Some(store) = pg::store_with(config).await else {
        return;
    };
    let (tenant, admin) = records::tenant(&store).await;
    let t: Arc<dyn TenantStore> = store.open(&tenant).await.expect("open");

    let handle = Arc::clone(&t);
    let owner = admin.id;
    let projects = race(64, move |i| {
        let t = Arc::clone(&handle);
        async move {
            let record = NewProjectRecord {
                name: format!("p{i}"),
                description: String::new(),
                status: ProjectStatus::Planning,
                start_date: None,
                end_date: None,
                owner,
                created_at: records::now(),
            };
            t.create_project(&record, Some(10)).await.map(|_| ())
        }
    })
    .await;
    assert_eq!(projects, (10, 54));
    let page = saas_core::store::PageRequest::new(Some(1), Some(100)).expect("page");
    assert_eq!(
        t.list_projects(saas_core::projects::Scope::All, page)
            .await
            .expect("list")
            .count,
        10
    );

    let handle = Arc::clone(&t);
    let users = race(64, move |i| {
        let t = Arc::clone(&handle);
        async move {
            t.create_user(
                &records::user_record(&format!("u{i}"), Role::Member),
                Some(10),
            )
            .await
            .map(|_| ())
        }
    })
    .await;
    assert_eq!(users, (9, 55), "the admin counts as a user");
    assert_eq!(t.count_users().await.expect("count"), 10);

    let project = t
        .list_projects(saas_core::projects::Scope::All, page)
        .await
        .expect("list")
        .items[0]
        .id;
    let handle = Arc::clone(&t);
    let tasks = race(64, move |i| {
        let t = Arc::clone(&handle);
        async move {
            let record = NewTaskRecord {
                project_id: project,
                title: format!("t{i}"),
                description: String::new(),
                status: TaskStatus::Todo,
                priority: Priority::Medium,
                assigned_to: None,
                created_by: owner,
                due_date: None,
                completed_at: None,
                created_at: records::now(),
            };
            t.create_task(&record, Some(10)).await.map(|_| ())
        }
    })
    .await;
    assert_eq!(tasks, (10, 54));
    let err = t
        .create_project(
            &NewProjectRecord {
                name: "late".to_owned(),
                description: String::new(),
                status: ProjectStatus::Planning,
                start_date: None,
                end_date: None,
                owner,
                created_at: records::now(),
            },
            Some(10),
        )
        .await
        .expect_err("at the limit");
    assert!(
        matches!(err, Error::PlanLimitExceeded { resource: Resource::Projects, limit: 10, ref plan } if plan.is_empty())
    );
    store.purge_tenant(tenant.id, None).await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_creates_make_exactly_ten_qualified() {
    limits_hold(Routing::QualifiedSql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_creates_make_exactly_ten_set_local() {
    limits_hold(Routing::SetLocalSearchPath).await;
}
