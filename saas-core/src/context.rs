//! What a [`Session`](crate::Session) shares with the service that made it:
//! the plan catalog, the password hasher, the clock, the listeners, and the
//! cache of authenticated users (a session's changes to a user must reach
//! the next authentication at once).
//!
//! It lives apart from the service so that a session needs nothing else of
//! it: the service hands each session this context, and the session never
//! reaches back for the service that made it.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::auth::Passwords;
use crate::cache::TtlCache;
use crate::clock::Clock;
use crate::error::Result;
use crate::events::Event;
use crate::plans::{Plan, PlanCatalog};
use crate::tenancy::{Tenant, TenantId};
use crate::users::{User, UserId};

/// Told about events a host may want to react to (the jobs runtime sends the
/// welcome email from here), after the change committed. Failures are
/// logged, never undo the event. Every method has a default doing nothing.
#[async_trait]
pub trait Listener: Debug + Send + Sync + 'static {
    /// A user was created (including a tenant's first admin), with the
    /// user's record; [`Listener::event`] gets it too, as
    /// [`Event::UserCreated`].
    async fn user_created(&self, _tenant: &Tenant, _user: &User) -> Result<()> {
        Ok(())
    }

    /// Any lifecycle [`Event`] (see [`crate::events`]).
    async fn event(&self, _event: &Event) -> Result<()> {
        Ok(())
    }
}

/// The service's state that sessions use too.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) plans: PlanCatalog,
    pub(crate) passwords: Passwords,
    clock: Arc<dyn Clock>,
    listeners: Vec<Arc<dyn Listener>>,
    /// Authenticated users, by tenant and id.
    pub(crate) users: TtlCache<(TenantId, UserId), User>,
}

impl Context {
    pub(crate) fn new(
        plans: PlanCatalog,
        clock: Arc<dyn Clock>,
        listeners: Vec<Arc<dyn Listener>>,
        users: TtlCache<(TenantId, UserId), User>,
    ) -> Self {
        Context {
            plans,
            passwords: Passwords::new(),
            clock,
            listeners,
            users,
        }
    }

    /// Now, truncated to the microseconds every backend stores.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        let now = self.clock.now();
        DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
    }

    /// The plan of `tenant`. A tenant whose plan left the catalog gets the
    /// default plan rather than an error, so a catalog change cannot lock
    /// tenants out.
    pub(crate) fn plan_of(&self, tenant: &Tenant) -> &Plan {
        self.plans
            .get(&tenant.plan)
            .unwrap_or_else(|_| self.plans.default_plan())
    }

    pub(crate) async fn notify_user_created(&self, tenant: &Tenant, user: &User) {
        for l in &self.listeners {
            if let Err(e) = l.user_created(tenant, user).await {
                tracing::warn!(tenant = %tenant.slug, user = %user.id, error = %e, "user_created listener failed");
            }
        }
        self.notify(Event::UserCreated {
            tenant: tenant.id,
            user: user.id,
        })
        .await;
    }

    /// Delivers `event` to every listener, in registration order.
    pub(crate) async fn notify(&self, event: Event) {
        for l in &self.listeners {
            if let Err(e) = l.event(&event).await {
                tracing::warn!(tenant = %event.tenant(), event = event.name(), error = %e, "event listener failed");
            }
        }
    }

    /// Drops the cached copy of a user this process just changed.
    pub(crate) fn forget_user(&self, tenant: TenantId, user: UserId) {
        self.users.invalidate(&(tenant, user));
    }
}
