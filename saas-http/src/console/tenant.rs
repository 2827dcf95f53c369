//! A tenant's console, for its admins and managers: the dashboard as
//! charts, users (invite, role, deactivate), projects, and tasks with the
//! API's filters. Every action is a [`Session`] method, with the role's
//! permissions exactly as the API applies them.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use saas_core::Session;
use saas_core::audit::NewAuditEntry;
use saas_core::commands::NewUser;
use saas_core::projects::{Priority, Project, TaskStatus};
use saas_core::users::{Role, UserId};

use super::html::{Area, bar_chart, csrf, page};
use super::users::{user_patch, users_table};
use super::{AtTenant, Form, after, describe, failure, first_hundred};
use crate::extract::QueryPairs;
use crate::routes::tasks::filter_from;
use crate::sessions::ConsoleSession;
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/dashboard", get(dashboard))
        .route("/console/users", get(users).post(invite))
        .route("/console/users/{id}", post(update_user))
        .route("/console/projects", get(projects))
        .route("/console/tasks", get(tasks))
}

fn page_of(cs: &ConsoleSession, title: &str, body: Markup) -> Response {
    page(Area::Tenant, title, Some(cs), body)
}

/// Records a tenant console action in the audit log, as done by `at`'s
/// user from its address.
async fn record(
    state: &AppState,
    at: &AtTenant,
    action: &str,
    target: &str,
    detail: &str,
) -> saas_core::Result<()> {
    let entry = NewAuditEntry::new(
        &format!("user:{}", at.session.me().id.0),
        Some(at.session.tenant().id),
        action,
        target,
        detail,
        at.client.as_deref(),
        state.saas().now(),
    );
    state.saas().store().append_audit(&entry).await?;
    Ok(())
}

fn chart_of(id: &str, breakdown: &saas_core::session::Breakdown) -> Markup {
    let values: Vec<(String, u64)> = breakdown
        .iter()
        .map(|(k, v)| ((*k).to_owned(), *v))
        .collect();
    bar_chart(id, &values)
}

async fn dashboard(AtTenant { session, cs, .. }: AtTenant) -> Response {
    let d = match session.dashboard().await {
        Ok(d) => d,
        Err(e) => return failure(e),
    };
    let body = html! {
        div.cards {
            div.card { "Projects" b { (d.total_projects) } }
            div.card { "Active projects" b { (d.active_projects) } }
            div.card { "Tasks" b { (d.total_tasks) } }
            div.card { "Completed" b { (d.completed_tasks) } }
            div.card { "In progress" b { (d.in_progress_tasks) } }
            div.card { "Overdue" b { (d.overdue_tasks) } }
            div.card { "Mine" b { (d.my_tasks) } }
        }
        h2 { "Tasks by status" }
        (chart_of("tasks-by-status", &d.tasks_by_status))
        h2 { "Tasks by priority" }
        (chart_of("tasks-by-priority", &d.tasks_by_priority))
        h2 { "Projects by status" }
        (chart_of("projects-by-status", &d.projects_by_status))
    };
    page_of(
        &cs,
        &format!("{}: dashboard", session.tenant().name.as_str()),
        body,
    )
}

async fn users(AtTenant { session, cs, .. }: AtTenant) -> Response {
    let list = match session.list_users(first_hundred()).await {
        Ok(l) => l,
        Err(e) => return failure(e),
    };
    let body = html! {
        (users_table(&cs, "/console/users", &list.items))
        p { (list.count) " users" }
        h2 { "Invite a user" }
        form.row method="post" action="/console/users" {
            (csrf(&cs))
            label { "Username" input type="text" name="username" id="new-username" required; }
            label { "Email" input type="email" name="email" id="new-email" required; }
            label { "Password" input type="password" name="password" id="new-password" required autocomplete="new-password"; }
            label { "Role" select name="role" id="new-role" { @for r in Role::ALL { option value=(r.as_str()) selected[r == Role::Member] { (r.as_str()) } } } }
            button type="submit" id="invite" { "Create user" }
        }
    };
    page_of(&cs, "Users", body)
}

async fn invite(State(state): State<AppState>, at: AtTenant, f: Form) -> Response {
    let r = async {
        let role = match f.get("role") {
            "" => None,
            r => Some(r.parse::<Role>()?),
        };
        let mut new = NewUser::new(f.get("username"), f.get("email"), f.raw("password"));
        new.role = role;
        let u = at.session.register_user(new).await?;
        record(
            &state,
            &at,
            "user.create",
            &format!("user {}", u.username.as_str()),
            u.role.as_str(),
        )
        .await
    }
    .await;
    after(&state, &at.cs, "/console/users", r, "User created.")
}

async fn update_user(
    State(state): State<AppState>,
    at: AtTenant,
    Path(id): Path<i64>,
    f: Form,
) -> Response {
    let r = async {
        let (patch, detail) = user_patch(&f)?;
        let u = at.session.update_user(UserId(id), patch).await?;
        record(
            &state,
            &at,
            "user.update",
            &format!("user {}", u.username.as_str()),
            &detail,
        )
        .await
    }
    .await;
    after(&state, &at.cs, "/console/users", r, "User updated.")
}

/// Projects as a table.
pub(crate) fn projects_table(projects: &[Project]) -> Markup {
    html! {
        table #projects {
            thead { tr { th { "Id" } th { "Name" } th { "Status" } th { "Owner" } th { "Members" } th { "Dates" } } }
            tbody { @for p in projects {
                tr {
                    td { (p.id.0) }
                    td { (p.name) }
                    td { (p.status.as_str()) }
                    td { (p.owner.username.as_str()) }
                    td { (p.members.len()) }
                    td {
                        (p.start_date.map(|d| d.to_string()).unwrap_or_default())
                        " – "
                        (p.end_date.map(|d| d.to_string()).unwrap_or_default())
                    }
                }
            } }
        }
    }
}

async fn projects(AtTenant { session, cs, .. }: AtTenant) -> Response {
    match session.list_projects(first_hundred()).await {
        Ok(list) => page_of(
            &cs,
            "Projects",
            html! { p { (list.count) " projects" } (projects_table(&list.items)) },
        ),
        Err(e) => failure(e),
    }
}

/// The task filter form (the API's filters) and the tasks it selects, as
/// `session` sees them; the form submits to `action`.
pub(crate) async fn tasks_section(
    state: &AppState,
    session: &Session,
    query: &QueryPairs,
    action: &str,
) -> Markup {
    let get = |k: &str| query.get(k).unwrap_or("").to_owned();
    let listed = match filter_from(query) {
        Ok(filter) => session
            .list_tasks(&filter, first_hundred())
            .await
            .map_err(describe),
        Err(e) => Err(e.message().to_owned()),
    };
    let now = state.saas().now();
    html! {
        form.filters method="get" action=(action) {
            label { "Project id" input type="text" name="project" value=(get("project")) size="6"; }
            label { "Status" select name="status" {
                option value="" { "any" }
                @for s in TaskStatus::ALL { option value=(s.as_str()) selected[get("status") == s.as_str()] { (s.as_str()) } }
            } }
            label { "Priority" select name="priority" {
                option value="" { "any" }
                @for p in Priority::ALL { option value=(p.as_str()) selected[get("priority") == p.as_str()] { (p.as_str()) } }
            } }
            label { "Assigned to (id or me)" input type="text" name="assigned_to" value=(get("assigned_to")) size="6"; }
            label { "Order by" input type="text" name="ordering" value=(get("ordering")) placeholder="-created_at"; }
            label { "Search" input type="search" name="search" value=(get("search")); }
            button type="submit" { "Filter" }
        }
        @match listed {
            Ok(page) => {
                p { (page.count) " tasks" }
                table #tasks {
                    thead { tr { th { "Id" } th { "Title" } th { "Project" } th { "Status" } th { "Priority" } th { "Assigned to" } th { "Due" } } }
                    tbody { @for t in &page.items {
                        tr {
                            td { (t.id.0) }
                            td { (t.title) @if t.is_overdue(now) { " " span.badge.failed { "overdue" } } }
                            td { (t.project_id.0) }
                            td { (t.status.as_str()) }
                            td { (t.priority.as_str()) }
                            td { (t.assigned_to.as_ref().map(|u| u.username.as_str()).unwrap_or("")) }
                            td { (t.due_date.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default()) }
                        }
                    } }
                }
            }
            Err(message) => p.error { (message) }
        }
    }
}

async fn tasks(
    State(state): State<AppState>,
    AtTenant { session, cs, .. }: AtTenant,
    query: QueryPairs,
) -> Response {
    let body = tasks_section(&state, &session, &query, "/console/tasks").await;
    page_of(&cs, "Tasks", body)
}
