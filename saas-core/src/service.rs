//! The service layer: [`Saas`] is what a host application holds.
//!
//! It registers tenants, resolves requests to tenants, logs users in and
//! hands out [`Session`]s — a tenant-scoped handle acting as one user, through
//! which every tenant operation goes with its role and plan checks.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn saas_core::store::Store>) -> saas_core::Result<()> {
//! use saas_core::Saas;
//! use saas_core::commands::Registration;
//!
//! let saas = Saas::builder(store).secret(b"a secret of at least thirty-two bytes!").build()?;
//! let (tenant, _admin) = saas
//!     .register(Registration {
//!         company_name: "Acme Corp".into(),
//!         schema_name: "acme".into(),
//!         domain_url: "acme.localhost".into(),
//!         admin_username: "admin".into(),
//!         admin_email: "admin@acme.com".into(),
//!         admin_password: "securepassword123".into(),
//!         subscription_plan: Some("basic".into()),
//!     })
//!     .await?;
//! let tokens = saas.login(&tenant, "admin", "securepassword123").await?;
//! let session = saas.authenticate(&tenant, &tokens.access).await?;
//! println!("{:?}", session.dashboard().await?);
//! # Ok(()) }
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::auth::{Claims, Passwords, TokenKeys, TokenKind, TokenPair};
use crate::cache::TtlCache;
use crate::clock::{Clock, SystemClock};
use crate::commands::{NewUser, Registration};
use crate::context::Context;
use crate::error::{Entity, Error, Result, Validator};
use crate::plans::{Plan, PlanCatalog};
use crate::session::Session;
use crate::store::{RefreshOutcome, RefreshTokenRecord, Store, TenantStore};
use crate::telemetry;
use crate::tenancy::{Hostname, NewTenant, Slug, Tenant, TenantId, TenantName, TenantStatus};
use crate::users::{NewUserRecord, Password, Role, User, UserId, Username};

pub use crate::context::Listener;
use crate::events::Event;

/// How long a resolved tenant stays cached when nothing in this process
/// changed it (other processes' changes are seen after this long).
const TENANT_CACHE_TTL: Duration = Duration::from_secs(5);
/// Bound on cached tenant lookups (hosts, slugs and ids together).
const TENANT_CACHE_MAX: usize = 30_000;
/// Default of [`SaasBuilder::user_cache_ttl`].
pub const DEFAULT_USER_CACHE_TTL: Duration = Duration::from_secs(1);
/// Bound on cached authenticated users.
const USER_CACHE_MAX: usize = 20_000;

/// What a tenant was looked up by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TenantKey {
    Host(String),
    Slug(String),
    Id(TenantId),
}

/// Builds a [`Saas`].
#[derive(Debug)]
pub struct SaasBuilder {
    store: Arc<dyn Store>,
    plans: PlanCatalog,
    secret: Option<Vec<u8>>,
    clock: Arc<dyn Clock>,
    base_domain: Option<Hostname>,
    listeners: Vec<Arc<dyn Listener>>,
    access_ttl: Option<Duration>,
    refresh_ttl: Option<Duration>,
    user_cache_ttl: Duration,
}

impl SaasBuilder {
    /// The plan catalog (default: [`PlanCatalog::builtin`]).
    pub fn plans(mut self, plans: PlanCatalog) -> Self {
        self.plans = plans;
        self
    }

    /// The token-signing secret (at least 32 bytes). Required.
    pub fn secret(mut self, secret: &[u8]) -> Self {
        self.secret = Some(secret.to_vec());
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// A base domain: `acme.<base>` resolves to the tenant with slug `acme`
    /// even without a registered domain.
    pub fn base_domain(mut self, base: Hostname) -> Self {
        self.base_domain = Some(base);
        self
    }

    /// Adds a listener for events.
    pub fn listener(mut self, listener: Arc<dyn Listener>) -> Self {
        self.listeners.push(listener);
        self
    }

    /// Lifetime of access tokens (default 5 minutes).
    pub fn access_ttl(mut self, ttl: Duration) -> Self {
        self.access_ttl = Some(ttl);
        self
    }

    /// Lifetime of refresh tokens (default 1 day).
    pub fn refresh_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_ttl = Some(ttl);
        self
    }

    /// How long an authenticated user's record is reused without reading
    /// the store again (default [`DEFAULT_USER_CACHE_TTL`], 1 s;
    /// `Duration::ZERO` reads it on every request). Changes made through
    /// this process — password change, deactivation, role change, login —
    /// apply at once; changes made by another process reach this one's
    /// requests within the TTL.
    pub fn user_cache_ttl(mut self, ttl: Duration) -> Self {
        self.user_cache_ttl = ttl;
        self
    }

    /// Builds the service. Fails when the secret is missing or too short.
    pub fn build(self) -> Result<Saas> {
        let secret = self
            .secret
            .ok_or_else(|| Error::invalid("secret_key", "a token-signing secret is required"))?;
        let mut keys = TokenKeys::new(&secret)?;
        if let Some(t) = self.access_ttl {
            keys.access_ttl = t;
        }
        if let Some(t) = self.refresh_ttl {
            keys.refresh_ttl = t;
        }
        let context = Context::new(
            self.plans,
            self.clock,
            self.listeners,
            TtlCache::new("user", self.user_cache_ttl, USER_CACHE_MAX),
        );
        Ok(Saas {
            inner: Arc::new(Inner {
                store: self.store,
                keys,
                base_domain: self.base_domain,
                tenants: TtlCache::new("tenant", TENANT_CACHE_TTL, TENANT_CACHE_MAX),
                context: Arc::new(context),
            }),
        })
    }
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    keys: TokenKeys,
    base_domain: Option<Hostname>,
    tenants: TtlCache<TenantKey, Option<Tenant>>,
    /// What sessions share with the service.
    context: Arc<Context>,
}

/// The multi-tenant backend as a value: cheap to clone, shared by every
/// request and job.
#[derive(Debug, Clone)]
pub struct Saas {
    inner: Arc<Inner>,
}

impl Saas {
    /// Starts building a service over `store`.
    pub fn builder(store: Arc<dyn Store>) -> SaasBuilder {
        SaasBuilder {
            store,
            plans: PlanCatalog::builtin(),
            secret: None,
            clock: Arc::new(SystemClock),
            base_domain: None,
            listeners: Vec::new(),
            access_ttl: None,
            refresh_ttl: None,
            user_cache_ttl: DEFAULT_USER_CACHE_TTL,
        }
    }

    /// The storage backend.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The plan catalog.
    pub fn plans(&self) -> &PlanCatalog {
        &self.inner.context.plans
    }

    /// The password hasher.
    pub fn passwords(&self) -> &Passwords {
        &self.inner.context.passwords
    }

    pub(crate) fn keys(&self) -> &TokenKeys {
        &self.inner.keys
    }

    /// Now, truncated to the microseconds every backend stores.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.context.now()
    }

    /// The plan of `tenant`. A tenant whose plan left the catalog gets the
    /// default plan rather than an error, so a catalog change cannot lock
    /// tenants out.
    pub fn plan_of(&self, tenant: &Tenant) -> &Plan {
        self.inner.context.plan_of(tenant)
    }

    pub(crate) fn forget_hosts(&self) {
        self.inner.tenants.clear();
    }

    /// A tenant lookup through the cache.
    async fn cached_tenant<F, R>(&self, key: TenantKey, read: R) -> Result<Option<Tenant>>
    where
        R: FnOnce() -> F,
        F: Future<Output = Result<Option<Tenant>>>,
    {
        if let Some(hit) = self.inner.tenants.get(&key) {
            return Ok(hit);
        }
        let ticket = self.inner.tenants.ticket();
        let found = read().await?;
        if let Some(tenant) = &found
            && key != TenantKey::Id(tenant.id)
        {
            // The request goes on to re-check the tenant by id (`current`):
            // the record just read answers that too.
            let by_id = TenantKey::Id(tenant.id);
            self.inner.tenants.fill(ticket, by_id, found.clone());
        }
        self.inner.tenants.fill(ticket, key, found.clone());
        Ok(found)
    }

    /// A user of `tenant` through the cache (authentication's read).
    async fn cached_user(
        &self,
        tenant: &Tenant,
        store: &dyn TenantStore,
        id: UserId,
    ) -> Result<Option<User>> {
        let key = (tenant.id, id);
        let users = &self.inner.context.users;
        if let Some(hit) = users.get(&key) {
            return Ok(Some(hit));
        }
        let ticket = users.ticket();
        let found = store.user(id).await?;
        if let Some(user) = &found {
            users.fill(ticket, key, user.clone());
        }
        Ok(found)
    }

    /// Registers a tenant with its primary domain and first admin, all or
    /// nothing (the seed's `POST /api/register/`).
    pub async fn register(&self, r: Registration) -> Result<(Tenant, User)> {
        let result = self.register_inner(r).await;
        let outcome = outcome(&result, "created");
        metrics::counter!(telemetry::REGISTRATIONS, "outcome" => outcome).increment(1);
        result
    }

    async fn register_inner(&self, r: Registration) -> Result<(Tenant, User)> {
        let mut v = Validator::new();
        let name = v.check("company_name", TenantName::parse(&r.company_name));
        let slug = v.check("schema_name", Slug::parse(&r.schema_name));
        let domain = v.check("domain_url", Hostname::parse(&r.domain_url));
        let admin = NewUser {
            role: Some(Role::Admin),
            ..NewUser::new(
                r.admin_username.clone(),
                r.admin_email.clone(),
                r.admin_password.clone(),
            )
        }
        .validate(&mut v, "admin_");
        let plans = self.plans();
        let plan = match &r.subscription_plan {
            Some(code) => v.check("subscription_plan", plans.get(code).cloned()),
            None => Some(plans.default_plan().clone()),
        };
        if let (Some(domain), Some(slug)) = (&domain, &slug)
            && !self.may_route(domain, slug)
        {
            v.add("domain_url", DOMAIN_UNDER_BASE);
        }
        v.finish()?;
        let (Some(name), Some(slug), Some(domain), Some(admin), Some(plan)) =
            (name, slug, domain, admin, plan)
        else {
            return Err(Error::invalid("registration", "invalid registration"));
        };
        let now = self.now();
        let password_hash = self.passwords().hash(admin.password.expose()).await?;
        let record = NewUserRecord {
            username: admin.username,
            email: admin.email,
            password_hash,
            first_name: String::new(),
            last_name: String::new(),
            role: Role::Admin,
            department: String::new(),
            is_owner: true,
            date_joined: now,
        };
        let new = NewTenant {
            id: TenantId::new(),
            name,
            slug,
            plan: plan.code,
            domain,
            created_at: now,
        };
        let (tenant, user) = self.inner.store.create_tenant(&new, &record).await?;
        self.forget_hosts();
        self.notify(Event::TenantCreated {
            tenant: tenant.id,
            slug: tenant.slug.as_str().to_owned(),
        })
        .await;
        self.inner.context.notify_user_created(&tenant, &user).await;
        Ok((tenant, user))
    }

    /// Delivers a lifecycle event to the listeners.
    pub(crate) async fn notify(&self, event: Event) {
        self.inner.context.notify(event).await;
    }

    /// Whether the tenant `slug` may route `host`. A host under the base
    /// domain belongs to the tenant whose slug is its label there
    /// (`acme.<base>` and `www.acme.<base>` to `acme`): another tenant
    /// claiming it could take that host from a later tenant `acme`. The
    /// base domain itself belongs to no tenant.
    pub(crate) fn may_route(&self, host: &Hostname, slug: &Slug) -> bool {
        let Some(base) = &self.inner.base_domain else {
            return true;
        };
        if host == base {
            return false;
        }
        match host
            .as_str()
            .strip_suffix(base.as_str())
            .and_then(|p| p.strip_suffix('.'))
        {
            Some(under) => under.rsplit('.').next() == Some(slug.as_str()),
            None => true,
        }
    }

    /// The active tenant a request's `Host` header names: one label under
    /// the base domain names the tenant with that slug, before any
    /// registered domain (so no tenant's domain can shadow another's
    /// subdomain); any other host, a registered domain. Unknown and
    /// suspended tenants are both [`Error::NotFound`]. Cached briefly;
    /// changes made through this service invalidate the cache at once.
    pub async fn resolve_host(&self, host_header: &str) -> Result<Tenant> {
        let host = Hostname::from_host_header(host_header)
            .map_err(|_| Error::not_found(Entity::Tenant))?;
        let read = || async {
            let mut found = None;
            if let Some(label) = self
                .inner
                .base_domain
                .as_ref()
                .and_then(|b| host.label_under(b))
                && let Ok(slug) = Slug::parse(label)
            {
                found = self.inner.store.tenant_by_slug(&slug).await?;
            }
            if found.is_none() {
                found = self.inner.store.tenant_by_domain(&host).await?;
            }
            Ok(found.filter(|t| t.status == TenantStatus::Active))
        };
        self.cached_tenant(TenantKey::Host(host.as_str().to_owned()), read)
            .await?
            .ok_or(Error::not_found(Entity::Tenant))
    }

    /// The active tenant with `slug` (for `X-Tenant`). Unknown and suspended
    /// tenants are both [`Error::NotFound`].
    pub async fn resolve_slug(&self, slug: &str) -> Result<Tenant> {
        let slug = Slug::parse(slug).map_err(|_| Error::not_found(Entity::Tenant))?;
        let read = || async {
            Ok(self
                .inner
                .store
                .tenant_by_slug(&slug)
                .await?
                .filter(|t| t.status == TenantStatus::Active))
        };
        self.cached_tenant(TenantKey::Slug(slug.as_str().to_owned()), read)
            .await?
            .ok_or(Error::not_found(Entity::Tenant))
    }

    /// An active tenant by id, with a handle to its data (for jobs and hosts).
    pub async fn open_tenant(&self, id: TenantId) -> Result<(Tenant, Arc<dyn TenantStore>)> {
        let tenant = self.current(id).await?;
        let store = self.inner.store.open(&tenant).await?;
        Ok((tenant, store))
    }

    /// The tenant as the catalog knows it now (cached briefly, and
    /// invalidated at once by changes made through this service), if active.
    /// Callers' `Tenant` values may be stale: a suspension or plan change
    /// must apply to them too.
    async fn current(&self, id: TenantId) -> Result<Tenant> {
        self.cached_tenant(TenantKey::Id(id), || self.inner.store.tenant(id))
            .await?
            .filter(|t| t.status == TenantStatus::Active)
            .ok_or(Error::not_found(Entity::Tenant))
    }

    async fn active_store(&self, tenant: &Tenant) -> Result<(Tenant, Arc<dyn TenantStore>)> {
        self.open_tenant(tenant.id).await
    }

    /// Exchanges a username and password for a token pair (`POST /api/token/`).
    /// Unknown user, wrong password and inactive user are the same
    /// [`Error::Unauthenticated`], at the same cost.
    pub async fn login(
        &self,
        tenant: &Tenant,
        username: &str,
        password: &str,
    ) -> Result<TokenPair> {
        let result = self.login_inner(tenant, username, password).await;
        let outcome = outcome(&result, "success");
        metrics::counter!(telemetry::LOGINS, "outcome" => outcome).increment(1);
        result
    }

    async fn login_inner(
        &self,
        tenant: &Tenant,
        username: &str,
        password: &str,
    ) -> Result<TokenPair> {
        let (tenant, store) = self.active_store(tenant).await?;
        let tenant = &tenant;
        let found = match Username::parse(username) {
            Ok(u) if password.len() <= 4 * Password::MAX_CHARS => {
                store.credentials(&u.key()).await?
            }
            _ => None,
        };
        let Some((user, hash)) = found else {
            self.passwords().verify_dummy(password).await?;
            return Err(Error::Unauthenticated);
        };
        if !self.passwords().verify(password, &hash).await? || !user.is_active {
            return Err(Error::Unauthenticated);
        }
        if Passwords::needs_rehash(&hash) {
            // An imported (Django) hash, or argon2 at older costs: the
            // password is known now, so store it the way we hash today.
            let fresh = self.passwords().hash(password).await?;
            store.replace_password_hash(user.id, &hash, &fresh).await?;
        }
        store.record_login(user.id, self.now()).await?;
        self.inner.context.forget_user(tenant.id, user.id);
        self.issue_pair(tenant, &*store, &user, uuid::Uuid::new_v4())
            .await
    }

    /// A new pair for `user` in `family`: the access and refresh claims,
    /// and the refresh token's record.
    fn pair_claims(
        &self,
        tenant: &Tenant,
        user: &User,
        family: uuid::Uuid,
    ) -> (Claims, Claims, RefreshTokenRecord) {
        let now = self.now();
        let keys = &self.inner.keys;
        let claim = |kind, family| {
            keys.claims(
                kind,
                user.id,
                Some(tenant.id),
                Some(user.role),
                user.token_version,
                family,
                now,
            )
        };
        let access = claim(TokenKind::Access, None);
        let refresh = claim(TokenKind::Refresh, Some(family));
        let record = RefreshTokenRecord {
            jti: refresh.jti,
            family,
            user_id: user.id,
            expires_at: DateTime::from_timestamp(refresh.exp, 0).unwrap_or(now),
        };
        (access, refresh, record)
    }

    fn sign_pair(&self, access: &Claims, refresh: &Claims) -> Result<TokenPair> {
        Ok(TokenPair {
            access: self.inner.keys.sign(access)?,
            refresh: self.inner.keys.sign(refresh)?,
        })
    }

    async fn issue_pair(
        &self,
        tenant: &Tenant,
        store: &dyn TenantStore,
        user: &User,
        family: uuid::Uuid,
    ) -> Result<TokenPair> {
        let (access, refresh, record) = self.pair_claims(tenant, user, family);
        store.insert_refresh_token(&record).await?;
        self.sign_pair(&access, &refresh)
    }

    /// Rotates a refresh token into a new pair (`POST /api/token/refresh/`).
    /// A refresh token works once; presenting it again revokes every token
    /// rotated from the same login. Marking it used and storing its
    /// successor are one transaction, so that revocation cannot miss the
    /// successor.
    pub async fn refresh(&self, tenant: &Tenant, refresh_token: &str) -> Result<TokenPair> {
        let claims = self.inner.keys.verify(refresh_token, TokenKind::Refresh)?;
        if claims.tid != Some(tenant.id) {
            return Err(Error::Unauthenticated);
        }
        let family = claims.fam.ok_or(Error::Unauthenticated)?;
        let (tenant, store) = self.active_store(tenant).await?;
        let user = store
            .user(UserId(claims.user_id))
            .await?
            .filter(|u| u.is_active && u.token_version == claims.ver)
            .ok_or(Error::Unauthenticated)?;
        let (access, refresh, successor) = self.pair_claims(&tenant, &user, family);
        match store.rotate_refresh_token(claims.jti, &successor).await? {
            RefreshOutcome::Rotated { .. } => self.sign_pair(&access, &refresh),
            RefreshOutcome::Reused | RefreshOutcome::Invalid => Err(Error::Unauthenticated),
        }
    }

    /// The session an access token grants at `tenant`. A token issued at
    /// another tenant, expired, revoked or for an inactive user is
    /// [`Error::Unauthenticated`].
    pub async fn authenticate(&self, tenant: &Tenant, access_token: &str) -> Result<Session> {
        let claims = self.inner.keys.verify(access_token, TokenKind::Access)?;
        if claims.tid != Some(tenant.id) {
            return Err(Error::Unauthenticated);
        }
        let (tenant, store) = self.active_store(tenant).await?;
        let user = self
            .cached_user(&tenant, &*store, UserId(claims.user_id))
            .await?
            .filter(|u| u.is_active && u.token_version == claims.ver)
            .ok_or(Error::Unauthenticated)?;
        Ok(Session::new(
            self.inner.context.clone(),
            tenant,
            store,
            user,
        ))
    }

    /// What [`authenticate`](Self::authenticate) and
    /// [`refresh`](Self::refresh) answer a bad token, for a request whose
    /// tenant did not resolve (an unknown or suspended host): always
    /// [`Error::Unauthenticated`], after checking the token's signature as
    /// they do first, so that neither the answer nor the time it takes
    /// tells a customer's host from any other.
    pub fn refuse_token(&self, token: &str, kind: TokenKind) -> Error {
        let _ = self.inner.keys.verify(token, kind);
        Error::Unauthenticated
    }

    /// A session acting as `user` without a token, for host code that has
    /// authenticated the user its own way. Inactive users are refused.
    pub async fn session(&self, tenant: &Tenant, user: UserId) -> Result<Session> {
        let (tenant, store) = self.active_store(tenant).await?;
        let user = store
            .user(user)
            .await?
            .filter(|u| u.is_active)
            .ok_or(Error::not_found(Entity::User))?;
        Ok(Session::new(
            self.inner.context.clone(),
            tenant,
            store,
            user,
        ))
    }

    /// Whether the backend answers (for `GET /api/health/`).
    pub async fn health(&self) -> Result<()> {
        self.inner.store.ping().await
    }
}

/// The outcome label of a login or registration: `ok` when it succeeded,
/// `error` when the backend failed, `refused` for anything the caller
/// got wrong.
fn outcome<T>(result: &Result<T>, ok: &'static str) -> &'static str {
    match result {
        Ok(_) => ok,
        Err(Error::Backend { .. }) => "error",
        Err(_) => "refused",
    }
}

/// Why a domain under the base domain is refused.
pub(crate) const DOMAIN_UNDER_BASE: &str =
    "a domain under the base domain must be the tenant's own subdomain (<slug>.<base domain>)";
