//! The platform operator's API: superusers list tenants with usage, change
//! plans, suspend, reactivate, delete, restore, and route domains. Served on any host.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use saas_core::tenancy::{Hostname, TenantId};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, PlatformAuth};
use crate::models::fields::RequestBody;
use crate::models::{DomainIn, DomainOut, PlanIn, RegistrationIn, RegistrationOut, TenantOut};
use crate::pagination::{PageParams, Paginated, Pagination};
use crate::routes::public::create_tenant;
use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/platform/tenants/", get(list).post(create))
        .route("/api/platform/tenants/{id}/", get(retrieve).delete(destroy))
        .route("/api/platform/tenants/{id}/plan/", post(change_plan))
        .route("/api/platform/tenants/{id}/suspend/", post(suspend))
        .route("/api/platform/tenants/{id}/reactivate/", post(reactivate))
        .route("/api/platform/tenants/{id}/restore/", post(restore))
        .route("/api/platform/tenants/{id}/domains/", post(add_domain))
        .route(
            "/api/platform/tenants/{id}/domains/{hostname}/",
            delete(remove_domain),
        )
}

/// Tenants, oldest first, with usage against their plans.
#[utoipa::path(
    get, path = "/api/platform/tenants/", tag = "platform", params(PageParams),
    security(("platform" = [])),
    responses(
        (status = 200, description = "Tenants", body = Paginated<TenantOut>),
        (status = 401, description = "Not a superuser", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    PlatformAuth(op): PlatformAuth,
    pages: Pagination,
) -> ApiResult<Json<Paginated<TenantOut>>> {
    let page = op.list_tenants(pages.request()).await?;
    Ok(Json(pages.respond(page, TenantOut::from)?))
}

/// Creates a tenant with its primary domain and first admin, on any plan of
/// the catalog: what `POST /api/register/` does, without its rate limit,
/// its self-service plans, or its being open at all.
#[utoipa::path(
    post, path = "/api/platform/tenants/", tag = "platform",
    security(("platform" = [])),
    request_body = RegistrationIn,
    responses(
        (status = 201, description = "Tenant created", body = RegistrationOut),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 401, description = "Not a superuser", body = ErrorBody),
        (status = 409, description = "Slug, domain or username taken", body = ErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    PlatformAuth(op): PlatformAuth,
    ApiJson(body): ApiJson<RegistrationIn>,
) -> ApiResult<(StatusCode, Json<RegistrationOut>)> {
    let (status, Json(out)) = create_tenant(&state, body).await?;
    op.record(
        Some(TenantId(out.id)),
        "tenant.create",
        &format!("tenant {}", out.schema_name),
        &out.subscription_plan,
    )
    .await?;
    Ok((status, Json(out)))
}

/// A tenant with usage.
#[utoipa::path(
    get, path = "/api/platform/tenants/{id}/", tag = "platform",
    security(("platform" = [])),
    params(("id" = Uuid, Path, description = "Tenant id")),
    responses(
        (status = 200, description = "The tenant", body = TenantOut),
        (status = 404, description = "No such tenant", body = ErrorBody),
    )
)]
pub(crate) async fn retrieve(
    PlatformAuth(op): PlatformAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<TenantOut>> {
    Ok(Json(op.overview(TenantId(id)).await?.into()))
}

/// Deletes a tenant: refused everywhere at once, as if it did not exist.
/// Its data is kept for the retention (`TENANT_RETENTION_DAYS`, default 7),
/// during which `POST .../restore/` brings it back; then it is purged.
#[utoipa::path(
    delete, path = "/api/platform/tenants/{id}/", tag = "platform",
    security(("platform" = [])),
    params(("id" = Uuid, Path, description = "Tenant id")),
    responses(
        (status = 204, description = "Deleted (restorable until purged)"),
        (status = 404, description = "No such tenant", body = ErrorBody),
    )
)]
pub(crate) async fn destroy(
    PlatformAuth(op): PlatformAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    op.delete_tenant(TenantId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes a tenant's plan; takes effect at once. A downgrade below current
/// usage blocks new creates and deletes nothing.
#[utoipa::path(
    post, path = "/api/platform/tenants/{id}/plan/", tag = "platform",
    security(("platform" = [])),
    params(("id" = Uuid, Path, description = "Tenant id")),
    request_body = PlanIn,
    responses(
        (status = 200, description = "The tenant", body = TenantOut),
        (status = 400, description = "Unknown plan", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    )
)]
pub(crate) async fn change_plan(
    PlatformAuth(op): PlatformAuth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PlanIn>,
) -> ApiResult<Json<TenantOut>> {
    let id = TenantId(id);
    op.change_plan(id, &body.plan)
        .await
        .map_err(PlanIn::error)?;
    Ok(Json(op.overview(id).await?.into()))
}

/// Suspends a tenant: its requests, logins and jobs are refused as if it did not exist.
#[utoipa::path(
    post, path = "/api/platform/tenants/{id}/suspend/", tag = "platform",
    security(("platform" = [])),
    params(("id" = Uuid, Path, description = "Tenant id")),
    responses(
        (status = 200, description = "The tenant", body = TenantOut),
        (status = 404, description = "No such tenant", body = ErrorBody),
    )
)]
pub(crate) async fn suspend(
    PlatformAuth(op): PlatformAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<TenantOut>> {
    let id = TenantId(id);
    op.suspend(id).await?;
    Ok(Json(op.overview(id).await?.into()))
}

/// Reactivates a suspended tenant.
#[utoipa::path(
    post, path = "/api/platform/tenants/{id}/reactivate/", tag = "platform",
    security(("platform" = [])),
    params(("id" = Uuid, Path, description = "Tenant id")),
    responses(
        (status = 200, description = "The tenant", body = TenantOut),
        (status = 404, description = "No such tenant", body = ErrorBody),
    )
)]
pub(crate) async fn reactivate(
    PlatformAuth(op): PlatformAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<TenantOut>> {
    let id = TenantId(id);
    op.reactivate(id).await?;
    Ok(Json(op.overview(id).await?.into()))
}

/// Brings back a deleted tenant, as it was before the deletion (until it
/// is purged).
#[utoipa::path(
    post, path = "/api/platform/tenants/{id}/restore/", tag = "platform",
    security(("platform" = [])),
    params(("id" = Uuid, Path, description = "Tenant id")),
    responses(
        (status = 200, description = "The tenant", body = TenantOut),
        (status = 404, description = "No such tenant (or already purged)", body = ErrorBody),
        (status = 409, description = "The tenant is not deleted (`invalid_state`)", body = ErrorBody),
    )
)]
pub(crate) async fn restore(
    PlatformAuth(op): PlatformAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<TenantOut>> {
    let id = TenantId(id);
    op.restore(id).await?;
    Ok(Json(op.overview(id).await?.into()))
}

/// Routes another hostname to a tenant.
#[utoipa::path(
    post, path = "/api/platform/tenants/{id}/domains/", tag = "platform",
    security(("platform" = [])),
    params(("id" = Uuid, Path, description = "Tenant id")),
    request_body = DomainIn,
    responses(
        (status = 201, description = "Domain added", body = DomainOut),
        (status = 400, description = "Invalid hostname", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "Hostname taken", body = ErrorBody),
    )
)]
pub(crate) async fn add_domain(
    PlatformAuth(op): PlatformAuth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<DomainIn>,
) -> ApiResult<(StatusCode, Json<DomainOut>)> {
    let d = op
        .add_domain(TenantId(id), &body.hostname, body.is_primary)
        .await
        .map_err(DomainIn::error)?;
    Ok((StatusCode::CREATED, Json(DomainOut::from(&d))))
}

/// Stops routing a hostname (not the primary one: 409). A path that is no
/// hostname names no domain: 404, as an id that is no id does.
#[utoipa::path(
    delete, path = "/api/platform/tenants/{id}/domains/{hostname}/", tag = "platform",
    security(("platform" = [])),
    params(
        ("id" = Uuid, Path, description = "Tenant id"),
        ("hostname" = String, Path, description = "Hostname"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such tenant or domain", body = ErrorBody),
        (status = 409, description = "The primary domain cannot be removed", body = ErrorBody),
    )
)]
pub(crate) async fn remove_domain(
    PlatformAuth(op): PlatformAuth,
    ApiPath((id, hostname)): ApiPath<(Uuid, String)>,
) -> ApiResult<StatusCode> {
    let hostname = Hostname::parse(&hostname).map_err(|_| ApiError::not_found("domain"))?;
    op.remove_domain(TenantId(id), hostname.as_str()).await?;
    Ok(StatusCode::NO_CONTENT)
}
