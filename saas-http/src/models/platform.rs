//! The platform operator's API: tenants with usage, plans and domains.

use chrono::{DateTime, Utc};
use saas_core::operator::TenantOverview;
use saas_core::tenancy::Domain;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::fields::RequestBody;
use super::rules;
use super::stats::UsageOut;

/// A domain routed to a tenant.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DomainOut {
    /// The hostname.
    pub hostname: String,
    /// Whether it is the tenant's primary domain.
    pub is_primary: bool,
}

impl From<&Domain> for DomainOut {
    fn from(d: &Domain) -> Self {
        DomainOut {
            hostname: d.hostname.as_str().to_owned(),
            is_primary: d.is_primary,
        }
    }
}

/// A tenant as the platform API shows it, with usage against its plan.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TenantOut {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Slug.
    pub slug: String,
    /// Plan code.
    pub plan: String,
    /// `active`, `suspended`, or `deleted` (restorable until purged).
    pub status: String,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// When it was deleted, for a deleted tenant.
    pub deleted_at: Option<DateTime<Utc>>,
    /// Domains, primary first.
    pub domains: Vec<DomainOut>,
    /// Users against the plan's limit.
    pub users: UsageOut,
    /// Projects against the plan's limit.
    pub projects: UsageOut,
}

impl From<TenantOverview> for TenantOut {
    fn from(o: TenantOverview) -> Self {
        TenantOut {
            id: o.tenant.id.0,
            name: o.tenant.name.as_str().to_owned(),
            slug: o.tenant.slug.as_str().to_owned(),
            plan: o.tenant.plan.clone(),
            status: o.tenant.status.as_str().to_owned(),
            created_at: o.tenant.created_at,
            deleted_at: o.tenant.deleted_at,
            domains: o.domains.iter().map(DomainOut::from).collect(),
            users: o.users.into(),
            projects: o.projects.into(),
        }
    }
}

/// `POST /api/platform/tenants/{id}/plan/`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct PlanIn {
    /// Plan code: `free`, `basic`, `premium`, `enterprise` (or the host's catalog).
    #[schema(schema_with = rules::plan)]
    pub plan: String,
}

/// `POST /api/platform/tenants/{id}/domains/`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct DomainIn {
    /// Hostname to route to the tenant.
    #[schema(schema_with = rules::hostname)]
    pub hostname: String,
    /// Make it the primary domain.
    #[serde(default)]
    pub is_primary: bool,
}

impl RequestBody for PlanIn {
    /// The core reports an unknown plan code as a registration would.
    const FIELD_NAMES: &'static [(&'static str, &'static str)] = &[("subscription_plan", "plan")];
}

impl RequestBody for DomainIn {
    /// The core reports an invalid hostname under `domain`.
    const FIELD_NAMES: &'static [(&'static str, &'static str)] = &[("domain", "hostname")];
}

#[cfg(test)]
mod tests {
    use saas_core::Error;

    use super::*;

    #[test]
    fn errors_name_the_platform_bodies_fields() {
        let e = PlanIn::error(Error::invalid("subscription_plan", "unknown plan"));
        assert_eq!(e.fields()["plan"], "unknown plan");
        let e = DomainIn::error(Error::invalid("domain", "must be a hostname"));
        assert_eq!(e.fields()["hostname"], "must be a hostname");
    }
}
