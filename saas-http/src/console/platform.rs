//! The platform's tenant pages: the searchable list with usage bars, and
//! one tenant with its domains, plan, status, deletion, users, projects
//! and tasks. Every action is an [`Operator`] method (users: the owner's
//! [`Session`](saas_core::Session), through [`Operator::owner_session`]).
//!
//! [`Operator`]: saas_core::operator::Operator
//! [`Operator::owner_session`]: saas_core::operator::Operator::owner_session

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{MethodRouter, get, post};
use maud::{Markup, html};
use saas_core::projects::Scope;
use saas_core::store::{PageRequest, TenantStore};
use saas_core::tenancy::{TenantId, TenantStatus};
use saas_core::tenant_query::{TenantQuery, TenantSort};
use saas_core::users::UserId;
use uuid::Uuid;

use super::html::{Area, button, csrf, error_page, page, usage_bar};
use super::users::{user_patch, users_table};
use super::{AtPlatform, Form, after, describe, failure, first_hundred};
use crate::extract::QueryPairs;
use crate::sessions::ConsoleSession;
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/tenants", get(list))
        .route("/console/tenants/{id}", get(show))
        .route("/console/tenants/{id}/plan", act(Action::ChangePlan))
        .route("/console/tenants/{id}/suspend", act(Action::Suspend))
        .route("/console/tenants/{id}/reactivate", act(Action::Reactivate))
        .route("/console/tenants/{id}/delete", post(delete))
        .route("/console/tenants/{id}/domains", act(Action::AddDomain))
        .route(
            "/console/tenants/{id}/domains/remove",
            act(Action::RemoveDomain),
        )
        .route(
            "/console/tenants/{id}/domains/primary",
            act(Action::MakePrimary),
        )
        .route("/console/tenants/{id}/users/{user}", post(update_user))
        .route("/console/tenants/{id}/projects", get(projects))
}

/// The tenant's page, where its actions return.
fn tenant_page(id: Uuid) -> String {
    format!("/console/tenants/{id}")
}

/// The plans an operator may choose from.
fn plan_codes(state: &AppState) -> Vec<String> {
    state
        .saas()
        .plans()
        .iter()
        .map(|p| p.code.clone())
        .collect()
}

fn non_empty<'a>(query: &'a QueryPairs, name: &str) -> Option<&'a str> {
    query.get(name).map(str::trim).filter(|v| !v.is_empty())
}

/// The list's query, as the filter form sends it.
fn tenant_query(query: &QueryPairs) -> Result<(TenantQuery, PageRequest), saas_core::Error> {
    let mut t = TenantQuery::all().search(query.get("q").unwrap_or(""))?;
    t.plan = non_empty(query, "plan").map(str::to_owned);
    t.status = non_empty(query, "status")
        .map(str::parse::<TenantStatus>)
        .transpose()
        .map_err(|_| saas_core::Error::invalid("status", "must be active or suspended"))?;
    if let Some(sort) = non_empty(query, "sort") {
        t.sort = sort.parse::<TenantSort>()?;
    }
    t.descending = non_empty(query, "desc").is_some();
    let page = non_empty(query, "page")
        .map(|p| {
            p.parse::<u64>()
                .map_err(|_| saas_core::Error::invalid("page", "must be a page number"))
        })
        .transpose()?;
    Ok((t, PageRequest::new(page, Some(25))?))
}

/// `query` with `page` replaced, as a query string.
fn with_page(query: &QueryPairs, page: u64) -> String {
    let mut pairs: Vec<(String, String)> = query
        .0
        .iter()
        .filter(|(k, _)| k != "page")
        .cloned()
        .collect();
    pairs.push(("page".to_owned(), page.to_string()));
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

async fn list(
    State(state): State<AppState>,
    AtPlatform { op, cs }: AtPlatform,
    query: QueryPairs,
) -> Response {
    let (tq, page) = match tenant_query(&query) {
        Ok(x) => x,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &describe(e)),
    };
    let found = match op.search_tenants(&tq, page).await {
        Ok(f) => f,
        Err(e) => return failure(e),
    };
    let plans = plan_codes(&state);
    let last_page = found.count.div_ceil(page.page_size()).max(1);
    let body = html! {
        form.filters method="get" action="/console/tenants" {
            label { "Search name, slug or domain" input type="search" name="q" id="search" value=(tq.search_text().unwrap_or("")); }
            label { "Plan" select name="plan" id="plan-filter" {
                option value="" { "any" }
                @for p in &plans { option value=(p) selected[tq.plan.as_deref() == Some(p.as_str())] { (p) } }
            } }
            label { "Status" select name="status" id="status-filter" {
                option value="" { "any" }
                @for s in [TenantStatus::Active, TenantStatus::Suspended] {
                    option value=(s.as_str()) selected[tq.status == Some(s)] { (s.as_str()) }
                }
            } }
            label { "Sort by" select name="sort" id="sort" {
                @for k in TenantSort::ALL { option value=(k.as_str()) selected[tq.sort == *k] { (k.as_str()) } }
            } }
            label { "Descending" input type="checkbox" name="desc" value="1" checked[tq.descending]; }
            button type="submit" id="search-button" { "Search" }
        }
        p { (found.count) " tenants" }
        table #tenants {
            thead { tr { th { "Name" } th { "Slug" } th { "Primary domain" } th { "Plan" } th { "Status" } th { "Users" } th { "Projects" } th { "Created" } } }
            tbody {
                @for o in &found.items {
                    tr.suspended[o.tenant.status == TenantStatus::Suspended] {
                        td { a href={ "/console/tenants/" (o.tenant.id.0) } { (o.tenant.name.as_str()) } }
                        td { (o.tenant.slug.as_str()) }
                        td { (o.domains.iter().find(|d| d.is_primary).map(|d| d.hostname.as_str()).unwrap_or("")) }
                        td { (o.tenant.plan) }
                        td { span.badge.(o.tenant.status.as_str()) { (o.tenant.status.as_str()) } }
                        td { (usage_bar(o.users.used, o.users.limit)) }
                        td { (usage_bar(o.projects.used, o.projects.limit)) }
                        td { (o.tenant.created_at.format("%Y-%m-%d")) }
                    }
                }
            }
        }
        div.pager {
            @if page.page() > 1 { a href={ "/console/tenants?" (with_page(&query, page.page() - 1)) } { "← Previous" } }
            span { "Page " (page.page()) " of " (last_page) }
            @if page.page() < last_page { a href={ "/console/tenants?" (with_page(&query, page.page() + 1)) } id="next-page" { "Next →" } }
        }
    };
    page_of(&cs, "Tenants", body)
}

fn page_of(cs: &ConsoleSession, title: &str, body: Markup) -> Response {
    page(Area::Platform, title, Some(cs), body)
}

async fn show(
    State(state): State<AppState>,
    AtPlatform { op, cs }: AtPlatform,
    Path(id): Path<Uuid>,
) -> Response {
    let o = match op.overview(TenantId(id)).await {
        Ok(o) => o,
        Err(e) => return failure(e),
    };
    let base = tenant_page(id);
    let users = match op.owner_session(TenantId(id)).await {
        Ok(s) => s.list_users(first_hundred()).await.map(|p| p.items),
        Err(e) => Err(e),
    }
    .map_err(describe);
    let plans = plan_codes(&state);
    let t = &o.tenant;
    let body = html! {
        p {
            "Slug " code { (t.slug.as_str()) } " · plan " strong #plan { (t.plan) }
            " · status " span.badge.(t.status.as_str()) #status { (t.status.as_str()) }
            " · created " (t.created_at.format("%Y-%m-%d %H:%M"))
        }
        p { "Users " (usage_bar(o.users.used, o.users.limit)) " · Projects " (usage_bar(o.projects.used, o.projects.limit)) }
        h2 { "Plan and status" }
        form.row method="post" action={ (base) "/plan" } {
            (csrf(&cs))
            label { "Plan" select name="plan" id="plan-select" {
                @for p in &plans { option value=(p) selected[*p == t.plan] { (p) } }
            } }
            button type="submit" id="change-plan" { "Change plan" }
        }
        @if t.status == TenantStatus::Active {
            (button(&cs, &format!("{base}/suspend"), "Suspend", "suspend"))
        } @else {
            (button(&cs, &format!("{base}/reactivate"), "Reactivate", "reactivate"))
        }
        h2 { "Domains" }
        table #domains {
            thead { tr { th { "Hostname" } th { "Primary" } th {} } }
            tbody {
                @for d in &o.domains {
                    tr {
                        td { (d.hostname.as_str()) }
                        td { @if d.is_primary { "primary" } }
                        td {
                            @if !d.is_primary {
                                form.inline method="post" action={ (base) "/domains/primary" } {
                                    (csrf(&cs)) input type="hidden" name="hostname" value=(d.hostname.as_str());
                                    button type="submit" { "Make primary" }
                                }
                                " "
                                form.inline method="post" action={ (base) "/domains/remove" } {
                                    (csrf(&cs)) input type="hidden" name="hostname" value=(d.hostname.as_str());
                                    button.danger type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
        }
        form.row method="post" action={ (base) "/domains" } {
            (csrf(&cs))
            label { "Hostname" input type="text" name="hostname" id="new-domain" required; }
            label { "Primary" input type="checkbox" name="primary" value="1"; }
            button type="submit" id="add-domain" { "Add domain" }
        }
        h2 { "Users" }
        @match &users {
            Ok(users) => { (users_table(&cs, &format!("{base}/users"), users)) }
            Err(message) => p { "Users cannot be shown: " (message) }
        }
        p { a href={ (base) "/projects" } { "Browse its projects and tasks (read-only)" } }
        h2 { "Delete" }
        form.row method="post" action={ (base) "/delete" } {
            (csrf(&cs))
            label { "Type the slug to confirm" input type="text" name="confirm" id="confirm-slug" autocomplete="off"; }
            button.danger type="submit" id="delete" { "Delete tenant and all its data" }
        }
    };
    page_of(&cs, t.name.as_str(), body)
}

/// The tenant page's one-step actions, each posting its form to its own
/// path and returning to the page.
#[derive(Debug, Clone, Copy)]
enum Action {
    ChangePlan,
    Suspend,
    Reactivate,
    AddDomain,
    RemoveDomain,
    MakePrimary,
}

/// The route doing `action` on the tenant its path names.
fn act(action: Action) -> MethodRouter<AppState> {
    post(
        move |State(state): State<AppState>, at: AtPlatform, Path(id): Path<Uuid>, f: Form| {
            perform(state, at, id, f, action)
        },
    )
}

async fn perform(
    state: AppState,
    AtPlatform { op, cs }: AtPlatform,
    id: Uuid,
    f: Form,
    action: Action,
) -> Response {
    let t = TenantId(id);
    let (r, done) = match action {
        Action::ChangePlan => (
            op.change_plan(t, f.get("plan")).await.map(drop),
            "Plan changed.",
        ),
        Action::Suspend => (op.suspend(t).await.map(drop), "Tenant suspended."),
        Action::Reactivate => (op.reactivate(t).await.map(drop), "Tenant reactivated."),
        Action::AddDomain => {
            let primary = f.get("primary") == "1";
            let r = op.add_domain(t, f.get("hostname"), primary).await;
            (r.map(drop), "Domain added.")
        }
        Action::RemoveDomain => (
            op.remove_domain(t, f.get("hostname")).await,
            "Domain removed.",
        ),
        Action::MakePrimary => (
            op.make_primary(t, f.get("hostname")).await,
            "Primary domain changed.",
        ),
    };
    after(&state, &cs, &tenant_page(id), r, done)
}

async fn delete(
    State(state): State<AppState>,
    AtPlatform { op, cs }: AtPlatform,
    Path(id): Path<Uuid>,
    f: Form,
) -> Response {
    let back = tenant_page(id);
    let tenant = match op.overview(TenantId(id)).await {
        Ok(o) => o.tenant,
        Err(e) => return failure(e),
    };
    if f.get("confirm") != tenant.slug.as_str() {
        let e = saas_core::Error::invalid("confirm", "type the tenant's slug to delete it");
        return after(&state, &cs, &back, Err::<(), _>(e), "");
    }
    match op.delete_tenant(TenantId(id)).await {
        Ok(_) => after(
            &state,
            &cs,
            "/console/tenants",
            Ok(()),
            "Tenant deleted; it can be restored until it is purged.",
        ),
        Err(e) => after(&state, &cs, &back, Err::<(), _>(e), ""),
    }
}

async fn update_user(
    State(state): State<AppState>,
    AtPlatform { op, cs }: AtPlatform,
    Path((id, user)): Path<(Uuid, i64)>,
    f: Form,
) -> Response {
    let tenant = TenantId(id);
    let r = async {
        let (patch, detail) = user_patch(&f)?;
        let session = op.owner_session(tenant).await?;
        let u = session.update_user(UserId(user), patch).await?;
        op.record(
            Some(tenant),
            "user.update",
            &format!("user {}", u.username.as_str()),
            &detail,
        )
        .await
    }
    .await;
    after(&state, &cs, &tenant_page(id), r, "User updated.")
}

async fn projects(
    State(state): State<AppState>,
    AtPlatform { op, cs }: AtPlatform,
    Path(id): Path<Uuid>,
    query: QueryPairs,
) -> Response {
    let session = match op.owner_session(TenantId(id)).await {
        Ok(s) => s,
        Err(e) => return failure(e),
    };
    let store: &dyn TenantStore = &**session.store();
    let projects = match store.list_projects(Scope::All, first_hundred()).await {
        Ok(p) => p,
        Err(e) => return failure(e),
    };
    let body = html! {
        p { a href={ "/console/tenants/" (id) } { "← " (session.tenant().name.as_str()) } }
        (super::tenant::tasks_section(&state, &session, &query, &format!("/console/tenants/{id}/projects")).await)
        h2 { "Projects (" (projects.count) ")" }
        (super::tenant::projects_table(&projects.items))
    };
    page_of(
        &cs,
        &format!("{}: projects and tasks", session.tenant().name.as_str()),
        body,
    )
}
