//! Tenants (the seed's Company) and their domains.
//!
//! A [`Slug`] or [`Hostname`] that exists as a value is valid: the only way to
//! make one is to parse it, so backends may build schema names and file names
//! from them (after quoting) without checking again.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::text;

/// Identifier of a tenant: a UUIDv7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(pub Uuid);

impl TenantId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        TenantId(Uuid::now_v7())
    }
}

impl Default for TenantId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Names that no tenant may take, because a backend or the database itself
/// uses them (or would, confusingly, appear to).
const RESERVED_SLUGS: &[&str] = &[
    "public",
    "information_schema",
    "saas",
    "saas_shared",
    "catalog",
    "shared",
    "postgres",
    "template0",
    "template1",
    "default",
    "main",
    "temp",
];

/// A tenant's short name (the seed's `schema_name`):
/// `^[a-z][a-z0-9_]{1,47}$`, not reserved, not `pg_*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    /// Longest slug accepted.
    pub const MAX_LEN: usize = 48;
    /// Slugs no tenant may take (besides every `pg_*`).
    pub const RESERVED: &'static [&'static str] = RESERVED_SLUGS;

    /// Parses and validates a slug.
    pub fn parse(value: &str) -> Result<Self> {
        let bytes = value.as_bytes();
        let shape_ok = (2..=Self::MAX_LEN).contains(&bytes.len())
            && bytes[0].is_ascii_lowercase()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_');
        if !shape_ok {
            return Err(Error::invalid(
                "slug",
                "must be 2 to 48 characters: a lowercase letter, then lowercase letters, digits or underscores",
            ));
        }
        if value.starts_with("pg_") || RESERVED_SLUGS.contains(&value) {
            return Err(Error::invalid("slug", format!("'{value}' is reserved")));
        }
        Ok(Slug(value.to_owned()))
    }

    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Slug {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Slug::parse(s)
    }
}

impl<'de> Deserialize<'de> for Slug {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Slug::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A lowercase DNS hostname (RFC 1123 labels), such as `acme.localhost`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Hostname(String);

impl Hostname {
    /// Longest hostname accepted.
    pub const MAX_LEN: usize = 253;

    /// Parses a hostname; ASCII letters are lowercased, anything else that is
    /// not a valid hostname is refused.
    pub fn parse(value: &str) -> Result<Self> {
        let err = || {
            Error::invalid(
                "domain",
                "must be a hostname: dot-separated labels of letters, digits and hyphens",
            )
        };
        if value.is_empty() || value.len() > Self::MAX_LEN || !value.is_ascii() {
            return Err(err());
        }
        let lower = value.to_ascii_lowercase();
        for label in lower.split('.') {
            let b = label.as_bytes();
            let ok = (1..=63).contains(&b.len())
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-';
            if !ok {
                return Err(err());
            }
        }
        Ok(Hostname(lower))
    }

    /// The host part of an HTTP `Host` header (`acme.localhost:8000` gives
    /// `acme.localhost`). Bracketed IPv6 literals are not tenant hosts.
    pub fn from_host_header(value: &str) -> Result<Self> {
        let host = match value.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => value,
        };
        Hostname::parse(host.strip_suffix('.').unwrap_or(host))
    }

    /// The hostname as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first label when `self` is exactly one label under `base`
    /// (`acme.example.com` under `example.com` gives `acme`).
    pub fn label_under(&self, base: &Hostname) -> Option<&str> {
        let prefix = self.0.strip_suffix(base.as_str())?.strip_suffix('.')?;
        (!prefix.is_empty() && !prefix.contains('.')).then_some(prefix)
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Hostname {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Hostname::parse(s)
    }
}

impl<'de> Deserialize<'de> for Hostname {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Hostname::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A tenant's display name (the seed's `company_name`): 1 to 100 characters,
/// no control characters, surrounding whitespace trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TenantName(String);

impl TenantName {
    /// Longest name accepted, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Parses and validates a tenant name.
    pub fn parse(value: &str) -> Result<Self> {
        text::required_line("name", value, Self::MAX_CHARS).map(TenantName)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a tenant is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    /// Served normally.
    Active,
    /// Refused everywhere, as if it did not exist; data is kept.
    Suspended,
    /// Deleted by an operator: refused everywhere, as if it did not exist,
    /// from the moment of deletion; its data, slug and domains are kept
    /// until it is purged ([`crate::store::Store::purge_tenant`], after the
    /// retention), and it can be restored until then. Never set through
    /// [`crate::store::Store::set_status`]: a tenant is deleted by
    /// [`crate::store::Store::delete_tenant`], and reports this status while
    /// its `deleted_at` is set.
    Deleted,
}

impl TenantStatus {
    /// The status as stored and serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
            TenantStatus::Deleted => "deleted",
        }
    }
}

impl FromStr for TenantStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "active" => Ok(TenantStatus::Active),
            "suspended" => Ok(TenantStatus::Suspended),
            _ => Err(Error::invalid(
                "status",
                "must be one of: active, suspended",
            )),
        }
    }
}

/// A tenant as recorded in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tenant {
    /// Stable id (UUIDv7).
    pub id: TenantId,
    /// Display name.
    pub name: TenantName,
    /// Short name; backends derive storage names from it.
    pub slug: Slug,
    /// Code of the tenant's subscription plan.
    pub plan: String,
    /// Active, suspended, or deleted (and not yet purged).
    pub status: TenantStatus,
    /// Name of the database that holds the tenant's data, for backends that
    /// spread tenants over several databases (`"default"` otherwise).
    pub database: String,
    /// When the tenant registered.
    pub created_at: DateTime<Utc>,
    /// When an operator deleted it (its status is then
    /// [`TenantStatus::Deleted`]); `None` for a tenant not deleted.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A hostname routed to a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Domain {
    /// The hostname.
    pub hostname: Hostname,
    /// The tenant it routes to.
    pub tenant_id: TenantId,
    /// Whether this is the tenant's primary domain.
    pub is_primary: bool,
}

/// What a backend needs to create a tenant. Built by the service layer after
/// validation; see [`crate::store::Store::create_tenant`].
#[derive(Debug, Clone)]
pub struct NewTenant {
    /// Id chosen by the service.
    pub id: TenantId,
    /// Display name.
    pub name: TenantName,
    /// Short name.
    pub slug: Slug,
    /// Plan code, known to the plan catalog.
    pub plan: String,
    /// Primary domain.
    pub domain: Hostname,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl NewTenant {
    /// The tenant row this creates (active, placed in `database`).
    pub fn to_tenant(&self, database: &str) -> Tenant {
        Tenant {
            id: self.id,
            name: self.name.clone(),
            slug: self.slug.clone(),
            plan: self.plan.clone(),
            status: TenantStatus::Active,
            database: database.to_owned(),
            created_at: self.created_at,
            deleted_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["acme", "a1", "acme_corp_2", &"a".repeat(48)] {
            assert!(Slug::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "1abc",
            "_abc",
            "Acme",
            "acme-corp",
            "public",
            "pg_catalog",
            "information_schema",
            "Robert\"; DROP",
            "acme corp",
            "acmé",
            &"a".repeat(49),
        ] {
            assert!(
                matches!(Slug::parse(bad), Err(Error::Invalid { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn hostnames() {
        assert_eq!(
            Hostname::parse("ACME.localhost").unwrap().as_str(),
            "acme.localhost"
        );
        for bad in [
            "",
            "-a.com",
            "a-.com",
            "a..com",
            "a b.com",
            "ex_ample.com",
            "é.com",
            "a.com/x",
        ] {
            assert!(Hostname::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Hostname::from_host_header("acme.localhost:8000")
                .unwrap()
                .as_str(),
            "acme.localhost"
        );
        let base = Hostname::parse("example.com").unwrap();
        let h = Hostname::parse("acme.example.com").unwrap();
        assert_eq!(h.label_under(&base), Some("acme"));
        assert_eq!(base.label_under(&base), None);
        assert_eq!(
            Hostname::parse("a.b.example.com")
                .unwrap()
                .label_under(&base),
            None
        );
        assert_eq!(
            Hostname::parse("xexample.com").unwrap().label_under(&base),
            None
        );
    }

    #[test]
    fn names() {
        assert!(TenantName::parse("Acme Corp").is_ok());
        assert!(TenantName::parse("   ").is_err());
        assert!(TenantName::parse(&"x".repeat(300)).is_err());
        assert!(TenantName::parse("a\u{0}b").is_err());
    }
}
