//! Lifecycle events a host application subscribes to: tenants created,
//! suspended, reactivated, deleted, restored, their plan changed; users
//! created, deactivated, their role changed.
//!
//! Every [`Listener`](crate::service::Listener) registered with
//! [`SaasBuilder::listener`](crate::SaasBuilder::listener) gets each
//! [`Event`] through [`Listener::event`](crate::service::Listener::event),
//! in process, after the change has committed (never for a change that
//! failed). A listener's failure is logged and never undoes the change.
//! Delivery is awaited by the call that made the change: a listener that
//! may be slow or fail should hand the event to the durable job queue with
//! [`crate::jobs::events::EventJobListener`], which a worker then runs
//! through the host's [`crate::jobs::events::EventHandler`] with retries.

use serde::{Deserialize, Serialize};

use crate::tenancy::TenantId;
use crate::users::{Role, UserId};

/// Something that happened to a tenant or one of its users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A tenant was registered (by itself or by an operator).
    TenantCreated {
        /// The tenant.
        tenant: TenantId,
        /// Its slug.
        slug: String,
    },
    /// An active tenant was suspended.
    TenantSuspended {
        /// The tenant.
        tenant: TenantId,
    },
    /// A suspended tenant was reactivated.
    TenantReactivated {
        /// The tenant.
        tenant: TenantId,
    },
    /// A tenant was deleted: refused everywhere from now on, its data kept
    /// until it is purged (or [`Event::TenantRestored`]).
    TenantDeleted {
        /// The tenant.
        tenant: TenantId,
        /// Its slug.
        slug: String,
    },
    /// A deleted tenant was brought back as it was, before its purge.
    TenantRestored {
        /// The tenant.
        tenant: TenantId,
        /// Its slug.
        slug: String,
    },
    /// A tenant moved to another plan.
    PlanChanged {
        /// The tenant.
        tenant: TenantId,
        /// The plan it had.
        from: String,
        /// The plan it has.
        to: String,
    },
    /// A user was created (a tenant's first admin included).
    UserCreated {
        /// The tenant.
        tenant: TenantId,
        /// The user.
        user: UserId,
    },
    /// An active user was deactivated.
    UserDeactivated {
        /// The tenant.
        tenant: TenantId,
        /// The user.
        user: UserId,
    },
    /// A user's role changed.
    UserRoleChanged {
        /// The tenant.
        tenant: TenantId,
        /// The user.
        user: UserId,
        /// The role it had.
        from: Role,
        /// The role it has.
        to: Role,
    },
}

impl Event {
    /// The tenant the event is about.
    pub fn tenant(&self) -> TenantId {
        match self {
            Event::TenantCreated { tenant, .. }
            | Event::TenantSuspended { tenant }
            | Event::TenantReactivated { tenant }
            | Event::TenantDeleted { tenant, .. }
            | Event::TenantRestored { tenant, .. }
            | Event::PlanChanged { tenant, .. }
            | Event::UserCreated { tenant, .. }
            | Event::UserDeactivated { tenant, .. }
            | Event::UserRoleChanged { tenant, .. } => *tenant,
        }
    }

    /// Its name, as serialized (`tenant_created`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Event::TenantCreated { .. } => "tenant_created",
            Event::TenantSuspended { .. } => "tenant_suspended",
            Event::TenantReactivated { .. } => "tenant_reactivated",
            Event::TenantDeleted { .. } => "tenant_deleted",
            Event::TenantRestored { .. } => "tenant_restored",
            Event::PlanChanged { .. } => "plan_changed",
            Event::UserCreated { .. } => "user_created",
            Event::UserDeactivated { .. } => "user_deactivated",
            Event::UserRoleChanged { .. } => "user_role_changed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_with_their_name() {
        let e = Event::UserRoleChanged {
            tenant: TenantId::new(),
            user: UserId(3),
            from: Role::Member,
            to: Role::Manager,
        };
        let json = serde_json::to_value(&e).expect("serialize");
        assert_eq!(json["event"], e.name());
        let back: Event = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, e);
    }
}
