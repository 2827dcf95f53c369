//! Embedding `saas` without HTTP: register a tenant, add users, a project and
//! tasks, then print the dashboard and the project's statistics.
//!
//! Run with `cargo run -p embed`. Data lives in a temporary
//! directory, so every run starts fresh.

use std::sync::Arc;

use chrono::{Duration, Utc};
use saas_core::commands::{NewProject, NewTask, NewUser, Registration};
use saas_core::service::Saas;
use saas_core::session::TaskFilter;
use saas_core::store::PageRequest;
use saas_core::users::Role;
use saas_core::{Error, projects::Priority};
use saas_store_sqlite::SqliteStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path())?;
    let saas = Saas::builder(Arc::new(store))
        .secret(b"embed example secret: thirty-two bytes or more")
        .build()?;

    let (tenant, admin) = saas
        .register(Registration {
            company_name: "Acme Corp".into(),
            schema_name: "acme".into(),
            domain_url: "acme.localhost".into(),
            admin_username: "admin".into(),
            admin_email: "admin@acme.com".into(),
            admin_password: "securepassword123".into(),
            subscription_plan: Some("free".into()),
        })
        .await?;
    println!(
        "registered tenant {} ({}) on plan {}",
        tenant.name, tenant.slug, tenant.plan
    );

    // Log in as a client would, and act with the token's session.
    let tokens = saas.login(&tenant, "admin", "securepassword123").await?;
    let session = saas.authenticate(&tenant, &tokens.access).await?;
    assert_eq!(session.me().id, admin.id);

    let mut people = Vec::new();
    for (name, role) in [("john", Role::Manager), ("jane", Role::Member)] {
        let user = session
            .register_user(NewUser {
                first_name: name.into(),
                role: Some(role),
                department: "Engineering".into(),
                ..NewUser::new(
                    name,
                    format!("{name}@acme.com"),
                    format!("{name}-password-123"),
                )
            })
            .await?;
        println!("added {} as {}", user.username, user.role);
        people.push(user);
    }

    let project = session
        .create_project(NewProject {
            description: "New site for the spring campaign".into(),
            ..NewProject::new("Website relaunch")
        })
        .await?;
    for p in &people {
        session.add_member(project.id, p.id).await?;
    }

    let due = Utc::now() + Duration::days(7);
    for (i, title) in ["Design mock-ups", "Write copy", "Ship it"]
        .iter()
        .enumerate()
    {
        let task = session
            .create_task(NewTask {
                priority: Some(Priority::ALL[i % Priority::ALL.len()]),
                assigned_to_id: Some(people[i % people.len()].id),
                due_date: Some(due),
                ..NewTask::new(project.id, *title)
            })
            .await?;
        if i == 0 {
            session.mark_complete(task.id).await?;
        }
    }

    // The free plan allows 3 projects: the fourth is refused, atomically.
    for n in 2..=4 {
        match session
            .create_project(NewProject::new(format!("Project {n}")))
            .await
        {
            Ok(p) => println!("created {}", p.name),
            Err(Error::PlanLimitExceeded {
                resource,
                limit,
                plan,
            }) => {
                println!("refused: plan {plan} allows {limit} {resource}")
            }
            Err(e) => return Err(e.into()),
        }
    }

    let jane = saas.session(&tenant, people[1].id).await?;
    let mine = jane
        .list_tasks(
            &TaskFilter {
                assigned_to: Some(saas_core::session::Assignee::Me),
                ..TaskFilter::default()
            },
            PageRequest::first(),
        )
        .await?;
    println!("jane has {} task(s)", mine.count);

    println!(
        "statistics: {}",
        serde_json::to_string_pretty(&session.statistics(project.id).await?)?
    );
    let dashboard = session.dashboard().await?;
    println!(
        "dashboard: {} projects, {} tasks ({} done), users {}/{:?}",
        dashboard.total_projects,
        dashboard.total_tasks,
        dashboard.completed_tasks,
        dashboard.users.used,
        dashboard.users.limit
    );
    assert_eq!(dashboard.total_tasks, 3);
    assert_eq!(dashboard.completed_tasks, 1);
    assert_eq!(dashboard.total_projects, 3);
    Ok(())
}
