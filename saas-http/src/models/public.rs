//! Registration, served on any host.

use chrono::{DateTime, Utc};
use saas_core::commands::Registration;
use saas_core::tenancy::Tenant;
use saas_core::users::User;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::fields::RequestBody;
use super::rules;
use super::users::UserOut;

/// `POST /api/register/`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(expecting = "struct Registration")]
pub struct RegistrationIn {
    /// Display name, 1 to 100 characters.
    #[schema(schema_with = rules::company_name)]
    pub company_name: String,
    /// Slug: `^[a-z][a-z0-9_]{1,47}$`, not reserved, not `pg_*`.
    #[schema(schema_with = rules::slug)]
    pub schema_name: String,
    /// Primary domain, e.g. `acme.localhost`.
    #[schema(schema_with = rules::hostname)]
    pub domain_url: String,
    /// The first admin's username: ASCII letters, digits and `@.+-_`.
    #[schema(schema_with = rules::username)]
    pub admin_username: String,
    /// The first admin's email address.
    #[schema(schema_with = rules::email)]
    pub admin_email: String,
    /// The first admin's password: 8 to 128 characters, not all digits.
    #[schema(schema_with = rules::password)]
    pub admin_password: String,
    /// Plan code (default `free`).
    #[serde(default)]
    #[schema(schema_with = rules::plan_or_default)]
    pub subscription_plan: Option<String>,
}

impl From<RegistrationIn> for Registration {
    fn from(b: RegistrationIn) -> Self {
        Registration {
            company_name: b.company_name,
            schema_name: b.schema_name,
            domain_url: b.domain_url,
            admin_username: b.admin_username,
            admin_email: b.admin_email,
            admin_password: b.admin_password,
            subscription_plan: b.subscription_plan,
        }
    }
}

impl RequestBody for RegistrationIn {
    /// A registration takes a tenant's slug, a domain and a username; the
    /// core reports those taken under the entities' own field names.
    const FIELD_NAMES: &'static [(&'static str, &'static str)] = &[
        ("slug", "schema_name"),
        ("hostname", "domain_url"),
        ("username", "admin_username"),
    ];
}

/// `POST /api/register/`'s answer: the tenant as registered and its admin.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegistrationOut {
    /// Tenant id (UUIDv7).
    pub id: Uuid,
    /// Display name.
    pub company_name: String,
    /// Slug.
    pub schema_name: String,
    /// Primary domain.
    pub domain_url: String,
    /// Plan code.
    pub subscription_plan: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// The first admin.
    pub admin: UserOut,
}

impl RegistrationOut {
    /// The wire form of a registration.
    pub fn new(t: &Tenant, domain: &str, admin: &User) -> Self {
        RegistrationOut {
            id: t.id.0,
            company_name: t.name.as_str().to_owned(),
            schema_name: t.slug.as_str().to_owned(),
            domain_url: domain.to_owned(),
            subscription_plan: t.plan.clone(),
            status: t.status.as_str().to_owned(),
            created_at: t.created_at,
            admin: UserOut::from(admin),
        }
    }
}

#[cfg(test)]
mod tests {
    use saas_core::{Entity, Error};

    use super::*;

    #[test]
    fn taken_values_are_reported_under_the_registrations_names() {
        for (entity, core, wire) in [
            (Entity::Tenant, "slug", "schema_name"),
            (Entity::Domain, "hostname", "domain_url"),
            (Entity::User, "username", "admin_username"),
        ] {
            let e = RegistrationIn::error(Error::Conflict {
                entity,
                field: core,
            });
            assert_eq!(e.code(), "conflict");
            assert!(e.fields().contains_key(wire), "{:?}", e.fields());
            assert!(!e.fields().contains_key(core), "{:?}", e.fields());
        }
        let e = RegistrationIn::error(Error::invalid("schema_name", "bad"));
        assert_eq!(e.fields()["schema_name"], "bad");
    }
}
