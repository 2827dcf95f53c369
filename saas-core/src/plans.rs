//! Subscription plans and their limits.
//!
//! Limits are read from the tenant's current plan on every operation, so a
//! plan change takes effect at once. A downgrade below current usage blocks
//! new creates and never deletes anything.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Resource, Result};

/// The limits of one plan. `None` means unlimited.
///
/// Plans deserialize from configuration (omitted limits are unlimited,
/// `reports` defaults to false), and carry a host application's own
/// quotas in `limits`:
///
/// ```
/// use saas_core::plans::Plan;
/// use saas_core::{Error, Resource};
///
/// let plan: Plan = serde_json::from_str(
///     r#"{"code": "team", "max_users": 10, "limits": {"invoices": 100}}"#,
/// )?;
/// assert!(plan.check(Resource::Custom("invoices"), 99).is_ok());
/// let refused = plan.check(Resource::Custom("invoices"), 100);
/// assert!(matches!(refused, Err(Error::PlanLimitExceeded { limit: 100, .. })));
/// // A quota the plan does not name is unlimited.
/// assert!(plan.check(Resource::Custom("seats"), 1_000_000).is_ok());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Short code, e.g. `basic`.
    pub code: String,
    /// Most users a tenant may have, its admin included.
    #[serde(default)]
    pub max_users: Option<u64>,
    /// Most projects a tenant may have.
    #[serde(default)]
    pub max_projects: Option<u64>,
    /// Most tasks one project may have.
    #[serde(default)]
    pub max_tasks_per_project: Option<u64>,
    /// Whether project reports may be generated.
    #[serde(default)]
    pub reports: bool,
    /// A host application's own quotas by name ([`Resource::Custom`]);
    /// a name absent here is unlimited.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, u64>,
}

impl Plan {
    /// A plan with the given code and limits.
    pub fn new(
        code: impl Into<String>,
        max_users: Option<u64>,
        max_projects: Option<u64>,
        max_tasks_per_project: Option<u64>,
        reports: bool,
    ) -> Self {
        Plan {
            code: code.into(),
            max_users,
            max_projects,
            max_tasks_per_project,
            reports,
            limits: BTreeMap::new(),
        }
    }

    /// Adds a host application's quota `name` (see [`Plan::check`]).
    pub fn with_limit(mut self, name: impl Into<String>, limit: u64) -> Self {
        self.limits.insert(name.into(), limit);
        self
    }

    /// `Ok` while `used` is below `resource`'s limit (or it has none):
    /// what a host checks before creating one more of its own things;
    /// else [`Error::PlanLimitExceeded`], which the HTTP layer answers as
    /// it answers ours.
    pub fn check(&self, resource: Resource, used: u64) -> Result<()> {
        match self.limit(resource) {
            Some(limit) if used >= limit => Err(self.exceeded(resource)),
            _ => Ok(()),
        }
    }

    /// The limit for `resource` (`Some(0)` or `Some(1)` for the reports feature).
    pub fn limit(&self, resource: Resource) -> Option<u64> {
        match resource {
            Resource::Users => self.max_users,
            Resource::Projects => self.max_projects,
            Resource::TasksPerProject => self.max_tasks_per_project,
            Resource::Reports => Some(u64::from(self.reports)),
            Resource::Custom(name) => self.limits.get(name).copied(),
        }
    }

    /// The error for having reached `resource`'s limit.
    pub fn exceeded(&self, resource: Resource) -> Error {
        Error::PlanLimitExceeded {
            resource,
            limit: self.limit(resource).unwrap_or(u64::MAX),
            plan: self.code.clone(),
        }
    }

    /// `Ok` when the plan allows generating reports.
    pub fn check_reports(&self) -> Result<()> {
        if self.reports {
            Ok(())
        } else {
            Err(self.exceeded(Resource::Reports))
        }
    }
}

/// The plans a host application offers. [`PlanCatalog::builtin`] is the
/// seed's catalog; hosts may supply their own, or load one from
/// configuration (checked as [`PlanCatalog::new`] checks it):
///
/// ```
/// use saas_core::plans::PlanCatalog;
///
/// let catalog: PlanCatalog = serde_json::from_str(r#"{
///     "default": "starter",
///     "plans": [
///         {"code": "starter", "max_users": 3, "limits": {"invoices": 10}},
///         {"code": "scale", "reports": true}
///     ]
/// }"#)?;
/// assert_eq!(catalog.default_plan().limits["invoices"], 10);
/// assert!(serde_json::from_str::<PlanCatalog>(r#"{"default": "x", "plans": []}"#).is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "CatalogFile")]
pub struct PlanCatalog {
    plans: BTreeMap<String, Plan>,
    default_code: String,
}

impl PlanCatalog {
    /// The built-in catalog (users / projects / tasks per project):
    /// `free` 5 / 3 / 100 without reports, `basic` 20 / 10 / 1,000,
    /// `premium` 100 / 50 / 10,000, `enterprise` unlimited. Default: `free`.
    pub fn builtin() -> Self {
        PlanCatalog::new(
            [
                Plan::new("free", Some(5), Some(3), Some(100), false),
                Plan::new("basic", Some(20), Some(10), Some(1_000), true),
                Plan::new("premium", Some(100), Some(50), Some(10_000), true),
                Plan::new("enterprise", None, None, None, true),
            ],
            "free",
        )
        .expect("the built-in catalog is well-formed")
    }

    /// A catalog of `plans`, where `default_code` is used when a registration
    /// names no plan. Fails on duplicate or malformed codes, or an unknown default.
    pub fn new(plans: impl IntoIterator<Item = Plan>, default_code: &str) -> Result<Self> {
        let mut map = BTreeMap::new();
        for plan in plans {
            let ok = (1..=32).contains(&plan.code.len())
                && plan.code.as_bytes()[0].is_ascii_lowercase()
                && plan.code.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !ok {
                return Err(Error::invalid(
                    "plan",
                    format!("plan code '{}' is malformed", plan.code),
                ));
            }
            if map.insert(plan.code.clone(), plan).is_some() {
                return Err(Error::invalid("plan", "duplicate plan code"));
            }
        }
        if !map.contains_key(default_code) {
            return Err(Error::invalid("plan", "default plan is not in the catalog"));
        }
        Ok(PlanCatalog {
            plans: map,
            default_code: default_code.to_owned(),
        })
    }

    /// The plan with `code`, or a validation error naming the known codes.
    pub fn get(&self, code: &str) -> Result<&Plan> {
        self.plans.get(code).ok_or_else(|| {
            Error::invalid(
                "subscription_plan",
                format!(
                    "unknown plan; one of: {}",
                    self.plans.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }

    /// The plan used when none is named.
    pub fn default_plan(&self) -> &Plan {
        &self.plans[&self.default_code]
    }

    /// Every plan, by code.
    pub fn iter(&self) -> impl Iterator<Item = &Plan> {
        self.plans.values()
    }
}

/// A catalog as configuration spells it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    default: String,
    plans: Vec<Plan>,
}

impl TryFrom<CatalogFile> for PlanCatalog {
    type Error = Error;

    fn try_from(file: CatalogFile) -> Result<Self> {
        PlanCatalog::new(file.plans, &file.default)
    }
}

impl Default for PlanCatalog {
    fn default() -> Self {
        PlanCatalog::builtin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog() {
        let c = PlanCatalog::builtin();
        assert_eq!(c.get("free").unwrap().max_users, Some(5));
        assert!(!c.get("free").unwrap().reports);
        assert_eq!(c.get("basic").unwrap().max_tasks_per_project, Some(1000));
        assert_eq!(c.get("enterprise").unwrap().max_projects, None);
        assert!(matches!(c.get("gold"), Err(Error::Invalid { .. })));
        assert_eq!(c.default_plan().code, "free");
    }

    #[test]
    fn custom_catalog_is_checked() {
        assert!(PlanCatalog::new([Plan::new("x", None, None, None, true)], "y").is_err());
        assert!(PlanCatalog::new([Plan::new("X Y", None, None, None, true)], "X Y").is_err());
        let c = PlanCatalog::new([Plan::new("team", Some(2), None, None, true)], "team").unwrap();
        assert_eq!(c.default_plan().max_users, Some(2));
    }
}
