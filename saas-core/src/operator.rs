//! The platform operator: superusers who run the installation (the seed's
//! `createsuperuser` and Django admin), separate from every tenant's users.

mod jobs;

use chrono::DateTime;
use futures::StreamExt;
use serde::Serialize;

use crate::audit::{AuditPage, AuditQuery, NewAuditEntry};
use crate::auth::TokenKind;
use crate::error::{Entity, Error, Result, Validator};
use crate::events::Event;
use crate::service::Saas;
use crate::session::Usage;
use crate::store::{Page, PageRequest, Superuser};
use crate::tenancy::{Domain, Hostname, Slug, Tenant, TenantId, TenantStatus};
use crate::tenant_query::TenantQuery;
use crate::users::{Email, Password, UserId, Username};

/// Tenants of a list page described at once (each is a few queries).
const DESCRIBE_CONCURRENCY: usize = 8;

/// A tenant with its domains and usage against its plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenantOverview {
    /// The tenant.
    #[serde(flatten)]
    pub tenant: Tenant,
    /// Its domains, primary first.
    pub domains: Vec<Domain>,
    /// Users against the plan's limit.
    pub users: Usage,
    /// Projects against the plan's limit.
    pub projects: Usage,
}

/// A platform token, as `POST /api/platform/token/` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformToken {
    /// The access token.
    pub access: String,
}

impl Saas {
    /// Creates a platform superuser (the seed's `createsuperuser`).
    pub async fn create_superuser(
        &self,
        username: &str,
        email: &str,
        password: &str,
    ) -> Result<Superuser> {
        let mut v = Validator::new();
        let username = v.check("username", Username::parse(username));
        let email = v.check("email", Email::parse(email));
        let password = v.check("password", Password::parse(password));
        v.finish()?;
        let (Some(username), Some(email), Some(password)) = (username, email, password) else {
            return Err(Error::invalid("superuser", "invalid superuser"));
        };
        let hash = self.passwords().hash(password.expose()).await?;
        self.store()
            .create_superuser(&username, &email, &hash)
            .await
    }

    /// Exchanges a superuser's credentials for a platform access token.
    pub async fn superuser_login(&self, username: &str, password: &str) -> Result<PlatformToken> {
        let su = self.superuser_sign_in(username, password).await?;
        let claims = self.keys().claims(
            TokenKind::Platform,
            UserId(su.id),
            None,
            None,
            su.token_version,
            None,
            self.now(),
        );
        Ok(PlatformToken {
            access: self.keys().sign(&claims)?,
        })
    }

    /// The operator a platform token grants: checked as a tenant token is,
    /// its superuser must still exist, be active and be at the token's
    /// version (deactivation, deletion and password changes revoke).
    pub async fn operator(&self, token: &str) -> Result<Operator> {
        let claims = self.keys().verify(token, TokenKind::Platform)?;
        if claims.tid.is_some() {
            return Err(Error::Unauthenticated);
        }
        self.store()
            .superuser(claims.user_id)
            .await?
            .filter(|su| su.is_active && su.token_version == claims.ver)
            .ok_or(Error::Unauthenticated)?;
        Ok(Operator {
            saas: self.clone(),
            superuser_id: claims.user_id,
            issued_at: DateTime::from_timestamp(claims.iat, 0),
            client: None,
        })
    }

    /// The operator a superuser is, once the caller has checked who it is
    /// (the console, whose signed-in session says so).
    pub fn operator_for(&self, superuser: &Superuser) -> Operator {
        Operator {
            saas: self.clone(),
            superuser_id: superuser.id,
            issued_at: None,
            client: None,
        }
    }

    /// Checks a superuser's credentials (as [`Saas::superuser_login`] does,
    /// at the same cost whether or not the username exists).
    pub async fn superuser_sign_in(&self, username: &str, password: &str) -> Result<Superuser> {
        let found = match Username::parse(username) {
            Ok(u) if password.len() <= 4 * Password::MAX_CHARS => {
                self.store().superuser_credentials(&u.key()).await?
            }
            _ => None,
        };
        let Some((su, hash)) = found else {
            self.passwords().verify_dummy(password).await?;
            return Err(Error::Unauthenticated);
        };
        if !self.passwords().verify(password, &hash).await? || !su.is_active {
            return Err(Error::Unauthenticated);
        }
        Ok(su)
    }

    /// Deactivates a superuser (its platform tokens stop working) or
    /// reactivates it (its earlier tokens stay revoked).
    pub async fn set_superuser_active(&self, id: i64, active: bool) -> Result<Superuser> {
        self.store().set_superuser_active(id, active).await
    }

    /// Changes a superuser's password; its platform tokens stop working.
    pub async fn set_superuser_password(&self, id: i64, password: &str) -> Result<()> {
        let password = Password::parse(password).map_err(|_| {
            Error::invalid(
                "password",
                "must be 8 to 128 characters and not entirely numeric",
            )
        })?;
        let hash = self.passwords().hash(password.expose()).await?;
        self.store().set_superuser_password(id, &hash).await
    }

    /// Deletes a superuser; its platform tokens stop working.
    pub async fn delete_superuser(&self, id: i64) -> Result<()> {
        self.store().delete_superuser(id).await
    }

    /// An operator handle without a token, for trusted host code and the CLI.
    pub fn operator_unchecked(&self) -> Operator {
        Operator {
            saas: self.clone(),
            superuser_id: 0,
            issued_at: None,
            client: None,
        }
    }
}

/// What a platform superuser may do: list tenants with usage, change plans,
/// suspend, reactivate, delete, manage domains; list, inspect, count, retry
/// and cancel jobs (`operator/jobs.rs`).
#[derive(Debug, Clone)]
pub struct Operator {
    saas: Saas,
    superuser_id: i64,
    issued_at: Option<DateTime<chrono::Utc>>,
    /// Where its requests come from, for the audit log.
    client: Option<String>,
}

impl Operator {
    /// The superuser's id (0 for [`Saas::operator_unchecked`]).
    pub fn superuser_id(&self) -> i64 {
        self.superuser_id
    }

    /// When the token was issued, if there was one.
    pub fn issued_at(&self) -> Option<DateTime<chrono::Utc>> {
        self.issued_at
    }

    /// The same operator, acting from `client` (an address, for the audit log).
    pub fn from_client(mut self, client: Option<String>) -> Self {
        self.client = client;
        self
    }

    /// Who the audit log says acted: `superuser:<id>`, or `system` for
    /// [`Saas::operator_unchecked`].
    pub fn actor(&self) -> String {
        if self.superuser_id == 0 {
            "system".to_owned()
        } else {
            format!("superuser:{}", self.superuser_id)
        }
    }

    /// Records an action in the audit log, as this operator from its client.
    /// The operator's own methods record theirs; this is for what a host
    /// does on an operator's behalf elsewhere (creating a tenant).
    pub async fn record(
        &self,
        tenant: Option<TenantId>,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<()> {
        let entry = NewAuditEntry::new(
            &self.actor(),
            tenant,
            action,
            target,
            detail,
            self.client.as_deref(),
            self.saas.now(),
        );
        self.saas.store().append_audit(&entry).await?;
        Ok(())
    }

    /// The audit log, newest first: every tenant's entries and the
    /// platform's.
    pub async fn audit_log(&self, query: &AuditQuery) -> Result<AuditPage> {
        let entries = self.saas.store().audit_log(query).await?;
        Ok(AuditPage::of(query, entries))
    }

    async fn tenant(&self, id: TenantId) -> Result<Tenant> {
        self.saas
            .store()
            .tenant(id)
            .await?
            .ok_or(Error::not_found(Entity::Tenant))
    }

    /// The tenant `key` names, its id or its slug, suspended or not (for
    /// operators' tools, which name tenants either way).
    pub async fn find_tenant(&self, key: &str) -> Result<Tenant> {
        let key = key.trim();
        if let Ok(id) = uuid::Uuid::parse_str(key) {
            return self.tenant(TenantId(id)).await;
        }
        let slug = Slug::parse(key).map_err(|_| Error::not_found(Entity::Tenant))?;
        self.saas
            .store()
            .tenant_by_slug(&slug)
            .await?
            .ok_or(Error::not_found(Entity::Tenant))
    }

    /// A tenant with its domains and usage (suspended tenants included).
    pub async fn overview(&self, id: TenantId) -> Result<TenantOverview> {
        let tenant = self.tenant(id).await?;
        self.describe(tenant).await
    }

    async fn describe(&self, tenant: Tenant) -> Result<TenantOverview> {
        let store = self.saas.store().open(&tenant).await?;
        let plan = self.saas.plan_of(&tenant).clone();
        let users = store.count_users().await?;
        let projects = store
            .project_counts(crate::projects::Scope::All)
            .await?
            .total;
        let domains = self.saas.store().domains(tenant.id).await?;
        Ok(TenantOverview {
            tenant,
            domains,
            users: Usage {
                used: users,
                limit: plan.max_users,
            },
            projects: Usage {
                used: projects,
                limit: plan.max_projects,
            },
        })
    }

    /// Tenants, oldest first, with usage.
    pub async fn list_tenants(&self, page: PageRequest) -> Result<Page<TenantOverview>> {
        let tenants = self.saas.store().list_tenants(page).await?;
        let mut items = Vec::with_capacity(tenants.items.len());
        for t in tenants.items {
            items.push(self.describe(t).await?);
        }
        Ok(Page {
            count: tenants.count,
            items,
        })
    }

    /// The tenants `query` selects, one page of them, with usage.
    pub async fn search_tenants(
        &self,
        query: &TenantQuery,
        page: PageRequest,
    ) -> Result<Page<TenantOverview>> {
        let tenants = self.saas.store().search_tenants(query, page).await?;
        // Described a few at a time, in order: each is several round trips.
        let described: Vec<Result<TenantOverview>> = futures::stream::iter(tenants.items)
            .map(|t| self.describe(t))
            .buffered(DESCRIBE_CONCURRENCY)
            .collect()
            .await;
        let mut items = Vec::with_capacity(described.len());
        for d in described {
            // A tenant deleted since the search is left out.
            match d {
                Ok(o) => items.push(o),
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Page {
            count: tenants.count,
            items,
        })
    }

    /// A session acting as the tenant's owner, for an operator's work on
    /// its users and its read-only browsing: the same `Session` methods and
    /// rules the owner has, no rule of the operator's own. NotFound for an
    /// unknown or suspended tenant.
    pub async fn owner_session(&self, id: TenantId) -> Result<crate::Session> {
        let tenant = self.tenant(id).await?;
        let store = self.saas.store().open(&tenant).await?;
        // The owner is the first user, created with the tenant.
        let first = store
            .list_users(PageRequest::new(Some(1), Some(1))?)
            .await?;
        let owner = first
            .items
            .into_iter()
            .find(|u| u.is_owner)
            .ok_or(Error::not_found(Entity::User))?;
        self.saas.session(&tenant, owner.id).await
    }

    /// Changes a tenant's plan; takes effect at once. A downgrade below
    /// current usage blocks new creates and deletes nothing.
    pub async fn change_plan(&self, id: TenantId, plan: &str) -> Result<Tenant> {
        let plan = self.saas.plans().get(plan)?.code.clone();
        let before = self.tenant(id).await?;
        let t = self.saas.store().set_plan(id, &plan).await?;
        self.saas.forget_hosts();
        if before.plan != t.plan {
            self.saas
                .notify(Event::PlanChanged {
                    tenant: id,
                    from: before.plan,
                    to: t.plan.clone(),
                })
                .await;
        }
        self.record(Some(id), "tenant.plan", &target(&t), &plan)
            .await?;
        Ok(t)
    }

    /// Sets a tenant's status, telling listeners when it changed.
    async fn set_status(&self, id: TenantId, status: TenantStatus) -> Result<Tenant> {
        let before = self.tenant(id).await?;
        let t = self.saas.store().set_status(id, status).await?;
        self.saas.forget_hosts();
        if before.status != t.status {
            let event = match t.status {
                TenantStatus::Suspended => Event::TenantSuspended { tenant: id },
                _ => Event::TenantReactivated { tenant: id },
            };
            self.saas.notify(event).await;
        }
        Ok(t)
    }

    /// Suspends a tenant: its requests, logins and jobs are refused as if it
    /// did not exist. A deleted tenant is not found.
    pub async fn suspend(&self, id: TenantId) -> Result<Tenant> {
        let t = self.set_status(id, TenantStatus::Suspended).await?;
        self.record(Some(id), "tenant.suspend", &target(&t), "")
            .await?;
        Ok(t)
    }

    /// Reactivates a suspended tenant.
    pub async fn reactivate(&self, id: TenantId) -> Result<Tenant> {
        let t = self.set_status(id, TenantStatus::Active).await?;
        self.record(Some(id), "tenant.reactivate", &target(&t), "")
            .await?;
        Ok(t)
    }

    /// Deletes a tenant: refused everywhere at once, as if it did not
    /// exist; its data is kept for the retention (the built-in
    /// `purge_deleted_tenants` job purges it after that) and until then
    /// [`Operator::restore`] brings it back.
    pub async fn delete_tenant(&self, id: TenantId) -> Result<Tenant> {
        // Deleting a deleted tenant changes nothing: no event, no audit entry.
        let already = self
            .saas
            .store()
            .tenant(id)
            .await?
            .is_some_and(|t| t.status == crate::tenancy::TenantStatus::Deleted);
        let t = self.saas.store().delete_tenant(id, self.saas.now()).await?;
        if already {
            return Ok(t);
        }
        self.saas.forget_hosts();
        self.saas
            .notify(Event::TenantDeleted {
                tenant: id,
                slug: t.slug.as_str().to_owned(),
            })
            .await;
        self.record(Some(id), "tenant.delete", &target(&t), "")
            .await?;
        Ok(t)
    }

    /// Brings back a deleted tenant, as it was before the deletion.
    /// [`Error::State`] when it is not deleted; [`Error::NotFound`] once it
    /// has been purged.
    pub async fn restore(&self, id: TenantId) -> Result<Tenant> {
        let t = self.saas.store().restore_tenant(id).await?;
        self.saas.forget_hosts();
        self.saas
            .notify(Event::TenantRestored {
                tenant: id,
                slug: t.slug.as_str().to_owned(),
            })
            .await;
        self.record(Some(id), "tenant.restore", &target(&t), "")
            .await?;
        Ok(t)
    }

    /// Purges a deleted tenant now, without waiting for the retention.
    /// Irreversible. [`Error::State`] when it is not deleted first.
    pub async fn purge(&self, id: TenantId) -> Result<()> {
        let t = self.tenant(id).await?;
        // Deleted at any time up to now.
        let before = self.saas.now() + chrono::Duration::microseconds(1);
        let purged = self.saas.store().purge_tenant(id, Some(before)).await?;
        self.saas.forget_hosts();
        if !purged {
            return Err(Error::State("only a deleted tenant can be purged"));
        }
        self.record(Some(id), "tenant.purge", &target(&t), "")
            .await?;
        Ok(())
    }

    /// Routes another hostname to a tenant.
    pub async fn add_domain(
        &self,
        id: TenantId,
        hostname: &str,
        is_primary: bool,
    ) -> Result<Domain> {
        let host = Hostname::parse(hostname)?;
        let tenant = self.tenant(id).await?;
        if !self.saas.may_route(&host, &tenant.slug) {
            return Err(Error::invalid(
                "hostname",
                crate::service::DOMAIN_UNDER_BASE,
            ));
        }
        let d = self.saas.store().add_domain(id, &host, is_primary).await?;
        self.saas.forget_hosts();
        let detail = if is_primary { "primary" } else { "" };
        self.record(Some(id), "domain.add", host.as_str(), detail)
            .await?;
        Ok(d)
    }

    /// Makes one of a tenant's domains its primary one.
    pub async fn make_primary(&self, id: TenantId, hostname: &str) -> Result<()> {
        let host = Hostname::parse(hostname)?;
        self.saas.store().set_primary_domain(id, &host).await?;
        self.saas.forget_hosts();
        self.record(Some(id), "domain.primary", host.as_str(), "")
            .await
    }

    /// Stops routing a hostname (not the primary one).
    pub async fn remove_domain(&self, id: TenantId, hostname: &str) -> Result<()> {
        let host = Hostname::parse(hostname)?;
        self.saas.store().remove_domain(id, &host).await?;
        self.saas.forget_hosts();
        self.record(Some(id), "domain.remove", host.as_str(), "")
            .await?;
        Ok(())
    }
}

/// How the audit log names a tenant.
fn target(t: &Tenant) -> String {
    format!("tenant {}", t.slug.as_str())
}
