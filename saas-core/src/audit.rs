//! The audit log: who did what to which object, when and from where — every
//! action of the platform operators (API and console) and of the console's
//! tenant admins. Entries are stored by the backend ([`Store::append_audit`])
//! in the catalog, outside any tenant, so a deleted tenant's trail remains.
//!
//! [`Store::append_audit`]: crate::store::Store::append_audit

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::tenancy::TenantId;

/// Longest actor, in characters (longer ones are cut).
pub const MAX_ACTOR: usize = 200;
/// Longest action name, in characters.
pub const MAX_ACTION: usize = 100;
/// Longest target, in characters.
pub const MAX_TARGET: usize = 300;
/// Longest detail, in characters.
pub const MAX_DETAIL: usize = 2000;
/// Longest client address, in characters.
pub const MAX_CLIENT: usize = 100;

/// An entry to record. Built by [`NewAuditEntry::new`], which bounds every
/// text so that recording an action never fails on its length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    /// Who acted: `superuser:<id>`, `user:<id>` (in `tenant`) or `system`.
    pub actor: String,
    /// The tenant acted on or in, if any.
    pub tenant: Option<TenantId>,
    /// What was done, dotted: `tenant.suspend`, `domain.add`, `user.role`, …
    pub action: String,
    /// What it was done to, for people: `tenant acme`, `user 7`, a hostname.
    pub target: String,
    /// Anything else worth keeping (the new plan, the new role).
    pub detail: String,
    /// The client's address, when the action came over the network.
    pub client: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

fn cut(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

impl NewAuditEntry {
    /// An entry with every text cut to its bound and `at` to whole
    /// microseconds (what every backend keeps).
    pub fn new(
        actor: &str,
        tenant: Option<TenantId>,
        action: &str,
        target: &str,
        detail: &str,
        client: Option<&str>,
        at: DateTime<Utc>,
    ) -> Self {
        NewAuditEntry {
            actor: cut(actor, MAX_ACTOR),
            tenant,
            action: cut(action, MAX_ACTION),
            target: cut(target, MAX_TARGET),
            detail: cut(detail, MAX_DETAIL),
            client: client.map(|c| cut(c, MAX_CLIENT)),
            at: DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at),
        }
    }

    /// The stored entry this becomes under `id`.
    pub fn with_id(self, id: i64) -> AuditEntry {
        AuditEntry {
            id,
            actor: self.actor,
            tenant: self.tenant,
            action: self.action,
            target: self.target,
            detail: self.detail,
            client: self.client,
            at: self.at,
        }
    }
}

/// A recorded entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Increasing with every entry: newest first is highest id first.
    pub id: i64,
    /// Who acted.
    pub actor: String,
    /// The tenant acted on or in.
    pub tenant: Option<TenantId>,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub target: String,
    /// Anything else.
    pub detail: String,
    /// The client's address.
    pub client: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// Which entries to list: newest first, those matching every filter set,
/// with ids below `before` (the keyset cursor a previous page handed out),
/// at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this tenant's entries.
    pub tenant: Option<TenantId>,
    /// Only this actor's.
    pub actor: Option<String>,
    /// Only this action's.
    pub action: Option<String>,
    /// Only entries older than this id.
    pub before: Option<i64>,
    limit: u64,
}

impl AuditQuery {
    /// Page size when none is asked for.
    pub const DEFAULT_LIMIT: u64 = 50;
    /// Largest page size accepted.
    pub const MAX_LIMIT: u64 = 200;

    /// The newest entries, up to `limit` (1 to [`Self::MAX_LIMIT`];
    /// [`Self::DEFAULT_LIMIT`] when `None`), without filters.
    pub fn new(limit: Option<u64>) -> Result<Self> {
        let limit = limit.unwrap_or(Self::DEFAULT_LIMIT);
        if !(1..=Self::MAX_LIMIT).contains(&limit) {
            return Err(Error::invalid("limit", "must be between 1 and 200"));
        }
        Ok(AuditQuery {
            tenant: None,
            actor: None,
            action: None,
            before: None,
            limit,
        })
    }

    /// At most this many entries.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The limit as SQL's `LIMIT` takes it.
    pub fn sql_limit(&self) -> i64 {
        i64::try_from(self.limit).unwrap_or(i64::MAX)
    }

    /// Whether `entry` passes the filters and the cursor (the definition
    /// every backend's statement renders).
    pub fn matches(&self, entry: &AuditEntry) -> bool {
        self.tenant.is_none_or(|t| entry.tenant == Some(t))
            && self.actor.as_ref().is_none_or(|a| &entry.actor == a)
            && self.action.as_ref().is_none_or(|a| &entry.action == a)
            && self.before.is_none_or(|b| entry.id < b)
    }
}

/// One page of the log, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditPage {
    /// The entries.
    pub entries: Vec<AuditEntry>,
    /// The cursor of the next (older) page, when this one was full.
    pub next: Option<i64>,
}

impl AuditPage {
    /// The page a backend's answer to `query` makes.
    pub fn of(query: &AuditQuery, entries: Vec<AuditEntry>) -> Self {
        let full = u64::try_from(entries.len()).unwrap_or(u64::MAX) >= query.limit();
        let next = if full {
            entries.last().map(|e| e.id)
        } else {
            None
        };
        AuditPage { entries, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_cut_to_their_bounds() {
        let long = "é".repeat(5000);
        let e = NewAuditEntry::new(&long, None, &long, &long, &long, Some(&long), Utc::now());
        assert_eq!(e.actor.chars().count(), MAX_ACTOR);
        assert_eq!(e.action.chars().count(), MAX_ACTION);
        assert_eq!(e.target.chars().count(), MAX_TARGET);
        assert_eq!(e.detail.chars().count(), MAX_DETAIL);
        assert_eq!(e.client.map(|c| c.chars().count()), Some(MAX_CLIENT));
    }

    #[test]
    fn limits_outside_bounds_are_refused() {
        assert!(AuditQuery::new(Some(0)).is_err());
        assert!(AuditQuery::new(Some(201)).is_err());
        assert_eq!(AuditQuery::new(None).unwrap().limit(), 50);
    }
}
