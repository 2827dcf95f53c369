//! The OpenAPI document, generated from the handlers' annotations, and the
//! endpoint serving it (`crate::docs` renders it in a browser).

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{auth, dashboard, health, jobs, platform, projects, public, tasks, users};
use crate::state::AppState;

/// The API's OpenAPI document: `ApiDoc::openapi()`.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "saas",
        description = "Multi-tenant SaaS REST API (the Django seed's contract). Tenant endpoints \
                       pick the tenant from the Host header (or `X-Tenant: <slug>` when enabled) \
                       and take `Authorization: Bearer <access>`. Errors are \
                       `{\"error\": {\"code\", \"message\", \"fields\"}}`, or DRF's \
                       `{\"detail\": ...}` and `{\"field\": [...]}` when the server \
                       is configured for the seed's clients."
    ),
    paths(
        public::register, health::health, health::alive, health::ready, openapi,
        auth::token, auth::refresh, auth::platform_token,
        users::list, users::me, users::register, users::retrieve, users::update, users::change_password,
        projects::list, projects::create, projects::retrieve, projects::update, projects::destroy,
        projects::add_member, projects::remove_member, projects::statistics,
        tasks::list, tasks::my_tasks, tasks::create, tasks::retrieve, tasks::update, tasks::destroy,
        tasks::mark_complete,
        dashboard::dashboard,
        jobs::request_report, jobs::retrieve,
        platform::list, platform::create, platform::retrieve, platform::destroy, platform::change_plan,
        platform::suspend, platform::reactivate, platform::restore, platform::add_domain, platform::remove_domain,
    ),
    modifiers(&Security, &OperationIds, &CommonAnswers),
    tags(
        (name = "public", description = "Served on any host"),
        (name = "auth", description = "JWT access and rotating refresh tokens"),
        (name = "users"), (name = "projects"), (name = "tasks"), (name = "dashboard"),
        (name = "jobs", description = "Background jobs: project reports and their results \
                                       (503 `jobs_unavailable` when the server runs no job queue)"),
        (name = "platform", description = "Platform superusers (beyond the seed)"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = || SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer));
        components.add_security_scheme("bearer", bearer());
        components.add_security_scheme("platform", bearer());
    }
}

/// Operation ids unique in the document, as client generators need them:
/// `<tag>_<handler>` (`users_retrieve`, `projects_retrieve`, …), where the
/// handlers' names alone repeat across resources; a handler serving both
/// `PATCH` and `PUT` names its `PUT` operation `<tag>_<handler>_put`.
struct OperationIds;

impl Modify for OperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                (&mut item.get, ""),
                (&mut item.put, "_put"),
                (&mut item.post, ""),
                (&mut item.delete, ""),
                (&mut item.patch, ""),
            ];
            for (op, suffix) in operations {
                let Some(op) = op.as_mut() else { continue };
                let tag = op.tags.as_ref().and_then(|t| t.first()).cloned();
                if let (Some(tag), Some(id)) = (tag, op.operation_id.as_mut()) {
                    *id = format!("{tag}_{id}{suffix}");
                }
            }
        }
    }
}

/// The answers the server's shared layers and extractors give, added to
/// every operation they can happen to (an operation's own description
/// wins): 401 where a token is needed; 400, 413 and 415 where a JSON body
/// is read; 400 where query parameters are read, and 404 past a list's
/// last page; 503 `storage_unavailable`
/// (with `Retry-After`) wherever storage is touched, and 507 `storage_full`
/// on writes.
struct CommonAnswers;

impl CommonAnswers {
    /// Paths whose handlers touch no storage.
    const NO_STORAGE: &'static [&'static str] = &["/healthz", "/api/openapi.json"];
}

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::path::{Parameter, ParameterIn};

        for (path, item) in &mut openapi.paths.paths {
            let storage = !Self::NO_STORAGE.contains(&path.as_str());
            let operations = [
                (&mut item.get, false),
                (&mut item.put, true),
                (&mut item.post, true),
                (&mut item.delete, true),
                (&mut item.patch, true),
            ];
            for (op, writes) in operations {
                let Some(op) = op.as_mut() else { continue };
                let mut answers = Vec::new();
                if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    answers.push((
                        "401",
                        "Missing, invalid or expired token, or a token of another tenant \
                         (`unauthenticated`); an unknown tenant is answered the same",
                    ));
                }
                let query = |p: &RefOr<Parameter>| matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Query);
                if op.parameters.iter().flatten().any(query) {
                    answers.push(("400", "Invalid query parameter (`invalid`)"));
                }
                let page = |p: &RefOr<Parameter>| matches!(p, RefOr::T(p) if p.name == "page");
                if op.parameters.iter().flatten().any(page) {
                    answers.push(("404", "A page past the last (`not_found`)"));
                }
                if op.request_body.is_some() {
                    answers.push((
                        "400",
                        "Malformed JSON (`malformed_json`) or invalid input (`invalid`)",
                    ));
                    answers.push(("413", "Body larger than the server's limit"));
                    answers.push((
                        "415",
                        "Body not sent as `application/json` (`unsupported_media_type`)",
                    ));
                }
                if storage {
                    answers.push((
                        "503",
                        "Storage unreachable (`storage_unavailable`); try again after `Retry-After` seconds",
                    ));
                    if writes {
                        answers.push(("507", "Storage full (`storage_full`): nothing was changed"));
                    }
                }
                for (status, description) in answers {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error_answer(description));
                }
            }
        }
    }
}

/// A response with our error body.
fn error_answer(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .into()
}

/// The route of the document, served on any host.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/api/openapi.json", get(openapi))
}

/// The OpenAPI document of this API.
#[utoipa::path(
    get, path = "/api/openapi.json", tag = "public",
    responses((status = 200, description = "OpenAPI 3 document", content_type = "application/json"))
)]
pub(crate) async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Client generators need each operation named once.
    #[test]
    fn operation_ids_are_unique() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
        let mut seen = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("a path item") {
                let id = op["operationId"].as_str().expect("an operation id");
                assert!(
                    seen.insert(id.to_owned()),
                    "{method} {path}: {id} is used twice"
                );
            }
        }
        assert!(seen.contains("users_retrieve") && seen.contains("projects_retrieve"));
    }
}
