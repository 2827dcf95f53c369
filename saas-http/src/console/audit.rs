//! The audit log page: every entry on the platform console, the tenant's
//! own on a tenant's; newest first, filtered by actor, action and (on the
//! platform) tenant, older pages by keyset.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use maud::html;
use saas_core::audit::{AuditPage, AuditQuery};
use saas_core::tenancy::TenantId;

use super::html::{Area, error_page, page};
use super::{Signed, describe, failure};
use crate::extract::QueryPairs;
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/console/audit", get(audit))
}

fn non_empty<'a>(query: &'a QueryPairs, name: &str) -> Option<&'a str> {
    query.get(name).map(str::trim).filter(|v| !v.is_empty())
}

fn audit_query(query: &QueryPairs) -> Result<AuditQuery, saas_core::Error> {
    let mut q = AuditQuery::new(None)?;
    q.actor = non_empty(query, "actor").map(str::to_owned);
    q.action = non_empty(query, "action").map(str::to_owned);
    q.tenant = non_empty(query, "tenant")
        .map(|t| {
            uuid::Uuid::parse_str(t)
                .map(TenantId)
                .map_err(|_| saas_core::Error::invalid("tenant", "must be a tenant id"))
        })
        .transpose()?;
    q.before = non_empty(query, "before")
        .map(|b| {
            b.parse::<i64>()
                .map_err(|_| saas_core::Error::invalid("before", "must be an entry id"))
        })
        .transpose()?;
    Ok(q)
}

async fn audit(State(state): State<AppState>, signed: Signed, query: QueryPairs) -> Response {
    let mut q = match audit_query(&query) {
        Ok(q) => q,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &describe(e)),
    };
    let (area, title, result, cs) = match &signed {
        Signed::Platform { op, cs } => (Area::Platform, "Audit log", op.audit_log(&q).await, cs),
        Signed::Tenant { session, cs, .. } => {
            // A tenant sees its own trail, whatever the query says.
            q.tenant = Some(session.tenant().id);
            let r = state
                .saas()
                .store()
                .audit_log(&q)
                .await
                .map(|entries| AuditPage::of(&q, entries));
            (Area::Tenant, "Audit trail", r, cs)
        }
    };
    let found = match result {
        Ok(p) => p,
        Err(e) => return failure(e),
    };
    let platform = area == Area::Platform;
    let older = found.next.map(|before| {
        let mut pairs: Vec<(String, String)> = query
            .0
            .iter()
            .filter(|(k, _)| k != "before")
            .cloned()
            .collect();
        pairs.push(("before".to_owned(), before.to_string()));
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    });
    let body = html! {
        form.filters method="get" action="/console/audit" {
            label { "Actor" input type="text" name="actor" value=(q.actor.as_deref().unwrap_or("")) placeholder="superuser:1"; }
            label { "Action" input type="text" name="action" value=(q.action.as_deref().unwrap_or("")) placeholder="tenant.suspend"; }
            @if platform {
                label { "Tenant id" input type="text" name="tenant" value=(q.tenant.map(|t| t.0.to_string()).unwrap_or_default()) size="36"; }
            }
            button type="submit" { "Filter" }
        }
        table #audit {
            thead { tr { th { "When (UTC)" } th { "Who" } @if platform { th { "Tenant" } } th { "Action" } th { "Target" } th { "Detail" } th { "From" } } }
            tbody { @for e in &found.entries {
                tr {
                    td { (e.at.format("%Y-%m-%d %H:%M:%S")) }
                    td { (e.actor) }
                    @if platform {
                        td { @if let Some(t) = e.tenant { a href={ "/console/tenants/" (t.0) } { (t.0.to_string()[..8]) "…" } } }
                    }
                    td { code { (e.action) } }
                    td { (e.target) }
                    td { (e.detail) }
                    td { (e.client.as_deref().unwrap_or("")) }
                }
            } }
        }
        @if let Some(older) = older {
            div.pager { a href={ "/console/audit?" (older) } id="older" { "Older entries →" } }
        }
    };
    page(area, title, Some(cs), body)
}
