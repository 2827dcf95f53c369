//! Which tenants an operator's list shows: a search text matched against
//! names, slugs and hostnames, filters on plan and status, and an order.
//! Backends render it; [`TenantQuery::matches`] and [`TenantQuery::cmp`]
//! are its definition.

use std::cmp::Ordering;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::tenancy::{Domain, Tenant, TenantStatus};

/// Longest search text accepted, in characters.
pub const MAX_SEARCH: usize = 100;

/// What a tenant list may be ordered by; ties are broken by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TenantSort {
    /// Registration time (the default).
    #[default]
    Created,
    /// Display name.
    Name,
    /// Slug.
    Slug,
    /// Plan code.
    Plan,
    /// Status.
    Status,
}

impl TenantSort {
    /// Every sort, in the order a form offers them.
    pub const ALL: &[TenantSort] = &[
        TenantSort::Created,
        TenantSort::Name,
        TenantSort::Slug,
        TenantSort::Plan,
        TenantSort::Status,
    ];

    /// Its name in a query string.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantSort::Created => "created",
            TenantSort::Name => "name",
            TenantSort::Slug => "slug",
            TenantSort::Plan => "plan",
            TenantSort::Status => "status",
        }
    }
}

impl FromStr for TenantSort {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        TenantSort::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| Error::invalid("sort", "must be created, name, slug, plan or status"))
    }
}

/// A search over the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TenantQuery {
    search: Option<String>,
    /// Only tenants on this plan.
    pub plan: Option<String>,
    /// Only tenants with this status.
    pub status: Option<TenantStatus>,
    /// The order.
    pub sort: TenantSort,
    /// Largest first.
    pub descending: bool,
}

impl TenantQuery {
    /// Every tenant, oldest first.
    pub fn all() -> Self {
        Self::default()
    }

    /// Sets the search text: tenants whose name, slug or any hostname
    /// contains it, ignoring case. Blank text searches nothing out; text
    /// longer than [`MAX_SEARCH`] characters is refused.
    pub fn search(mut self, text: &str) -> Result<Self> {
        let text = text.trim();
        if text.chars().count() > MAX_SEARCH {
            return Err(Error::invalid("q", "must be at most 100 characters"));
        }
        self.search = (!text.is_empty()).then(|| text.to_lowercase());
        Ok(self)
    }

    /// The search text, lowercased.
    pub fn search_text(&self) -> Option<&str> {
        self.search.as_deref()
    }

    /// The search text as a `LIKE` pattern with `\` as its escape
    /// character: `%text%` with `%`, `_` and `\` escaped.
    pub fn like_pattern(&self) -> Option<String> {
        self.search.as_ref().map(|s| {
            let mut p = String::with_capacity(s.len() + 2);
            p.push('%');
            for c in s.chars() {
                if matches!(c, '%' | '_' | '\\') {
                    p.push('\\');
                }
                p.push(c);
            }
            p.push('%');
            p
        })
    }

    /// Whether `tenant`, routed to by `domains`, is in the result.
    pub fn matches(&self, tenant: &Tenant, domains: &[Domain]) -> bool {
        let text = self.search.as_deref().is_none_or(|s| {
            tenant.name.as_str().to_lowercase().contains(s)
                || tenant.slug.as_str().contains(s)
                || domains.iter().any(|d| d.hostname.as_str().contains(s))
        });
        text && self.plan.as_ref().is_none_or(|p| &tenant.plan == p)
            && self.status.is_none_or(|s| tenant.status == s)
    }

    /// The result's order: by the sort key, then by id, reversed when
    /// descending.
    pub fn cmp(&self, a: &Tenant, b: &Tenant) -> Ordering {
        let key = match self.sort {
            TenantSort::Created => a.created_at.cmp(&b.created_at),
            TenantSort::Name => a.name.as_str().cmp(b.name.as_str()),
            TenantSort::Slug => a.slug.as_str().cmp(b.slug.as_str()),
            TenantSort::Plan => a.plan.cmp(&b.plan),
            TenantSort::Status => a.status.as_str().cmp(b.status.as_str()),
        }
        .then(a.id.cmp(&b.id));
        if self.descending { key.reverse() } else { key }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_escape_wildcards_and_blank_is_no_search() {
        let q = TenantQuery::all().search(" A_b%c\\ ").unwrap();
        assert_eq!(q.like_pattern().as_deref(), Some("%a\\_b\\%c\\\\%"));
        assert_eq!(
            TenantQuery::all().search("  ").unwrap().like_pattern(),
            None
        );
        assert!(TenantQuery::all().search(&"x".repeat(101)).is_err());
        assert_eq!("name".parse::<TenantSort>().unwrap(), TenantSort::Name);
        assert!("id; drop".parse::<TenantSort>().is_err());
    }
}
