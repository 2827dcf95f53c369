//! A complete in-memory backend: [`MemoryStore`], a [`Store`] whose
//! tenants are [`MemoryTenant`]s, with every method as `saas_core::store`
//! documents it — conflicts, `NotFound`, plan limits checked atomically
//! with the insert, cascades, and counts made by counting (there is no
//! tally to keep).
//!
//! It passes the whole conformance suite (`memory::…`), so it serves where
//! a test needs storage but not a database: the jobs runtime's tests, and
//! the reference the property test can be run against. One mutex per
//! tenant (and one for the catalog) stands for a backend's transaction: a
//! check and the write it guards happen under the same lock.

mod tenant;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use saas_core::audit::{AuditEntry, AuditQuery, NewAuditEntry};
use saas_core::error::{Entity, Error, Result};
use saas_core::import::TenantImport;
use saas_core::jobs::JobQueue;
use saas_core::jobs::memory::MemoryQueue;
use saas_core::migration::{FleetTenant, migrate_fleet};
use saas_core::store::{
    MigrationReport, Page, PageRequest, ProgressFn, Store, Superuser, TenantStore,
};
use saas_core::tenancy::{Domain, Hostname, NewTenant, Slug, Tenant, TenantId, TenantStatus};
use saas_core::tenant_query::TenantQuery;
use saas_core::users::{Email, NewUserRecord, User, Username};

pub use tenant::MemoryTenant;

use crate::backend::{Backend, Fixture};
use crate::records::now;

/// The `database` every tenant of the store reports.
const DATABASE: &str = "default";

/// The catalog: tenants, their domains and data, and the superusers.
#[derive(Debug, Default)]
struct Catalog {
    /// By id, which is a UUIDv7: oldest first.
    tenants: BTreeMap<TenantId, Tenant>,
    /// By hostname: the tenant it routes to, and whether it is primary.
    domains: BTreeMap<String, (TenantId, bool)>,
    /// The live data of every tenant in `tenants`.
    data: BTreeMap<TenantId, Arc<MemoryTenant>>,
    /// By case-folded username: the superuser and its password hash.
    superusers: BTreeMap<String, (Superuser, String)>,
    last_superuser_id: i64,
    /// The audit log, oldest first (ids are positions plus one).
    audit: Vec<AuditEntry>,
    /// The status a deleted tenant had, for its restore.
    before_deletion: BTreeMap<TenantId, TenantStatus>,
}

impl Catalog {
    fn require(&self, id: TenantId) -> Result<()> {
        if self.tenants.contains_key(&id) {
            Ok(())
        } else {
            Err(Error::not_found(Entity::Tenant))
        }
    }

    fn tenant_mut(&mut self, id: TenantId) -> Result<&mut Tenant> {
        self.tenants
            .get_mut(&id)
            .ok_or(Error::not_found(Entity::Tenant))
    }
}

/// A [`Store`] in memory. Cheap to create; everything is gone when it is
/// dropped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    catalog: Mutex<Catalog>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Enters a tenant whose data is ready into the catalog, unless its
    /// slug, primary domain or id is taken.
    fn add_tenant(&self, tenant: &NewTenant, data: Arc<MemoryTenant>) -> Result<Tenant> {
        let mut catalog = self.catalog();
        if catalog.tenants.values().any(|t| t.slug == tenant.slug) {
            return Err(Error::Conflict {
                entity: Entity::Tenant,
                field: "slug",
            });
        }
        if catalog.domains.contains_key(tenant.domain.as_str()) {
            return Err(Error::Conflict {
                entity: Entity::Domain,
                field: "hostname",
            });
        }
        if catalog.tenants.contains_key(&tenant.id) {
            return Err(Error::Conflict {
                entity: Entity::Tenant,
                field: "id",
            });
        }
        let row = tenant.to_tenant(DATABASE);
        catalog.tenants.insert(tenant.id, row.clone());
        catalog
            .domains
            .insert(tenant.domain.as_str().to_owned(), (tenant.id, true));
        catalog.data.insert(tenant.id, data);
        Ok(row)
    }

    fn catalog(&self) -> MutexGuard<'_, Catalog> {
        // Every change is made whole under the lock, so a panic elsewhere
        // never leaves the catalog half-written.
        self.catalog.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_tenant(
        &self,
        tenant: &NewTenant,
        admin: &NewUserRecord,
    ) -> Result<(Tenant, User)> {
        // The tenant's data is made before the catalog is touched, so a
        // refusal below leaves nothing behind.
        let data = Arc::new(MemoryTenant::new(tenant.id));
        let owner = data.create_user(admin, None).await?;
        let row = self.add_tenant(tenant, data)?;
        Ok((row, owner))
    }

    async fn import_tenant(&self, tenant: &NewTenant, import: &TenantImport) -> Result<Tenant> {
        let data = Arc::new(MemoryTenant::new(tenant.id));
        data.load(import)?;
        self.add_tenant(tenant, data)
    }

    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
        Ok(self.catalog().tenants.get(&id).cloned())
    }

    async fn tenant_by_slug(&self, slug: &Slug) -> Result<Option<Tenant>> {
        Ok(self
            .catalog()
            .tenants
            .values()
            .find(|t| &t.slug == slug)
            .cloned())
    }

    async fn tenant_by_domain(&self, hostname: &Hostname) -> Result<Option<Tenant>> {
        let catalog = self.catalog();
        Ok(catalog
            .domains
            .get(hostname.as_str())
            .and_then(|(id, _)| catalog.tenants.get(id))
            .cloned())
    }

    async fn list_tenants(&self, page: PageRequest) -> Result<Page<Tenant>> {
        Ok(paginate(
            self.catalog().tenants.values().cloned().collect(),
            page,
        ))
    }

    async fn search_tenants(&self, query: &TenantQuery, page: PageRequest) -> Result<Page<Tenant>> {
        let mut found: Vec<Tenant> = {
            let catalog = self.catalog();
            catalog
                .tenants
                .values()
                .filter(|t| {
                    let domains: Vec<Domain> = catalog
                        .domains
                        .iter()
                        .filter(|(_, (id, _))| *id == t.id)
                        .filter_map(|(h, (id, primary))| {
                            Some(Domain {
                                hostname: Hostname::parse(h).ok()?,
                                tenant_id: *id,
                                is_primary: *primary,
                            })
                        })
                        .collect();
                    query.matches(t, &domains)
                })
                .cloned()
                .collect()
        };
        found.sort_by(|a, b| query.cmp(a, b));
        Ok(paginate(found, page))
    }

    async fn domains(&self, tenant: TenantId) -> Result<Vec<Domain>> {
        let catalog = self.catalog();
        let mut domains: Vec<Domain> = catalog
            .domains
            .iter()
            .filter(|(_, (id, _))| *id == tenant)
            .map(|(hostname, (_, is_primary))| {
                Ok(Domain {
                    hostname: Hostname::parse(hostname)?,
                    tenant_id: tenant,
                    is_primary: *is_primary,
                })
            })
            .collect::<Result<_>>()?;
        // Primary first; the map already holds the rest by hostname, and
        // the sort is stable.
        domains.sort_by_key(|d| !d.is_primary);
        Ok(domains)
    }

    async fn add_domain(
        &self,
        tenant: TenantId,
        hostname: &Hostname,
        is_primary: bool,
    ) -> Result<Domain> {
        let mut catalog = self.catalog();
        catalog.require(tenant)?;
        if catalog.domains.contains_key(hostname.as_str()) {
            return Err(Error::Conflict {
                entity: Entity::Domain,
                field: "hostname",
            });
        }
        if is_primary {
            for (owner, primary) in catalog.domains.values_mut() {
                if *owner == tenant {
                    *primary = false;
                }
            }
        }
        catalog
            .domains
            .insert(hostname.as_str().to_owned(), (tenant, is_primary));
        Ok(Domain {
            hostname: hostname.clone(),
            tenant_id: tenant,
            is_primary,
        })
    }

    async fn set_primary_domain(&self, tenant: TenantId, hostname: &Hostname) -> Result<()> {
        let mut catalog = self.catalog();
        catalog.require(tenant)?;
        if !matches!(catalog.domains.get(hostname.as_str()), Some((owner, _)) if *owner == tenant) {
            return Err(Error::not_found(Entity::Domain));
        }
        for (host, (owner, primary)) in catalog.domains.iter_mut() {
            if *owner == tenant {
                *primary = host == hostname.as_str();
            }
        }
        Ok(())
    }

    async fn remove_domain(&self, tenant: TenantId, hostname: &Hostname) -> Result<()> {
        let mut catalog = self.catalog();
        catalog.require(tenant)?;
        match catalog.domains.get(hostname.as_str()) {
            Some((owner, true)) if *owner == tenant => {
                Err(Error::State("cannot remove the primary domain"))
            }
            Some((owner, false)) if *owner == tenant => {
                catalog.domains.remove(hostname.as_str());
                Ok(())
            }
            // Another tenant's domain is as unknown as a missing one.
            _ => Err(Error::not_found(Entity::Domain)),
        }
    }

    async fn set_plan(&self, tenant: TenantId, plan: &str) -> Result<Tenant> {
        let mut catalog = self.catalog();
        let row = catalog.tenant_mut(tenant)?;
        row.plan = plan.to_owned();
        Ok(row.clone())
    }

    async fn set_status(&self, tenant: TenantId, status: TenantStatus) -> Result<Tenant> {
        if status == TenantStatus::Deleted {
            return Err(Error::invalid(
                "status",
                "must be active or suspended (a tenant is deleted by deleting it)",
            ));
        }
        let mut catalog = self.catalog();
        let row = catalog.tenant_mut(tenant)?;
        if row.deleted_at.is_some() {
            return Err(Error::not_found(Entity::Tenant));
        }
        row.status = status;
        Ok(row.clone())
    }

    async fn delete_tenant(&self, tenant: TenantId, at: DateTime<Utc>) -> Result<Tenant> {
        let mut catalog = self.catalog();
        let row = catalog.tenant_mut(tenant)?;
        if row.deleted_at.is_some() {
            return Ok(row.clone());
        }
        let before = row.status;
        row.status = TenantStatus::Deleted;
        row.deleted_at = Some(at);
        let row = row.clone();
        catalog.before_deletion.insert(tenant, before);
        Ok(row)
    }

    async fn restore_tenant(&self, tenant: TenantId) -> Result<Tenant> {
        let mut catalog = self.catalog();
        if catalog.tenant_mut(tenant)?.deleted_at.is_none() {
            return Err(Error::State("only a deleted tenant can be restored"));
        }
        let before = catalog
            .before_deletion
            .remove(&tenant)
            .unwrap_or(TenantStatus::Active);
        let row = catalog.tenant_mut(tenant)?;
        row.status = before;
        row.deleted_at = None;
        Ok(row.clone())
    }

    async fn purge_tenant(
        &self,
        tenant: TenantId,
        deleted_before: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        let mut catalog = self.catalog();
        let Some(row) = catalog.tenants.get(&tenant) else {
            return Ok(false);
        };
        if let Some(cut) = deleted_before
            && row.deleted_at.is_none_or(|at| at >= cut)
        {
            return Ok(false);
        }
        catalog.tenants.remove(&tenant);
        catalog.before_deletion.remove(&tenant);
        catalog.domains.retain(|_, (owner, _)| *owner != tenant);
        if let Some(data) = catalog.data.remove(&tenant) {
            // Handles still held elsewhere fail closed from now on.
            data.close();
        }
        Ok(true)
    }

    async fn purge_orphans(&self) -> Result<u64> {
        // Data and its catalog row go in one step here: nothing is left over.
        let mut catalog = self.catalog();
        let Catalog { tenants, data, .. } = &mut *catalog;
        let before = data.len();
        data.retain(|id, _| tenants.contains_key(id));
        Ok((before - data.len()) as u64)
    }

    async fn open(&self, tenant: &Tenant) -> Result<Arc<dyn TenantStore>> {
        self.catalog()
            .data
            .get(&tenant.id)
            .map(|data| Arc::clone(data) as Arc<dyn TenantStore>)
            .ok_or(Error::not_found(Entity::Tenant))
    }

    async fn create_superuser(
        &self,
        username: &Username,
        email: &Email,
        password_hash: &str,
    ) -> Result<Superuser> {
        let mut catalog = self.catalog();
        let key = username.key();
        if catalog.superusers.contains_key(&key) {
            return Err(Error::Conflict {
                entity: Entity::Superuser,
                field: "username",
            });
        }
        catalog.last_superuser_id += 1;
        let superuser = Superuser {
            id: catalog.last_superuser_id,
            username: username.clone(),
            email: email.clone(),
            created_at: now(),
            is_active: true,
            token_version: 0,
        };
        catalog
            .superusers
            .insert(key, (superuser.clone(), password_hash.to_owned()));
        Ok(superuser)
    }

    async fn superuser_credentials(
        &self,
        username_key: &str,
    ) -> Result<Option<(Superuser, String)>> {
        Ok(self.catalog().superusers.get(username_key).cloned())
    }

    async fn append_audit(&self, entry: &NewAuditEntry) -> Result<AuditEntry> {
        let mut catalog = self.catalog();
        let id = i64::try_from(catalog.audit.len()).unwrap_or(i64::MAX) + 1;
        let stored = entry.clone().with_id(id);
        catalog.audit.push(stored.clone());
        Ok(stored)
    }

    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let limit = usize::try_from(query.limit()).unwrap_or(usize::MAX);
        Ok(self
            .catalog()
            .audit
            .iter()
            .rev()
            .filter(|e| query.matches(e))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn superuser(&self, id: i64) -> Result<Option<Superuser>> {
        Ok(self
            .catalog()
            .superusers
            .values()
            .find(|(su, _)| su.id == id)
            .map(|(su, _)| su.clone()))
    }

    async fn set_superuser_active(&self, id: i64, active: bool) -> Result<Superuser> {
        let mut catalog = self.catalog();
        let (su, _) = superuser_mut(&mut catalog, id)?;
        if su.is_active && !active {
            su.token_version += 1;
        }
        su.is_active = active;
        Ok(su.clone())
    }

    async fn set_superuser_password(&self, id: i64, password_hash: &str) -> Result<()> {
        let mut catalog = self.catalog();
        let (su, hash) = superuser_mut(&mut catalog, id)?;
        su.token_version += 1;
        *hash = password_hash.to_owned();
        Ok(())
    }

    async fn delete_superuser(&self, id: i64) -> Result<()> {
        let mut catalog = self.catalog();
        let before = catalog.superusers.len();
        catalog.superusers.retain(|_, (su, _)| su.id != id);
        if catalog.superusers.len() == before {
            return Err(Error::not_found(Entity::Superuser));
        }
        Ok(())
    }

    async fn migrate(&self, progress: ProgressFn<'_>) -> Result<MigrationReport> {
        // Memory has no schema to bring forward: every tenant is current.
        let fleet: Vec<FleetTenant<()>> = self
            .catalog()
            .tenants
            .values()
            .map(|t| FleetTenant::Current {
                slug: t.slug.as_str().to_owned(),
            })
            .collect();
        Ok(migrate_fleet(fleet, 1, progress, |()| async {
            Ok::<bool, std::convert::Infallible>(false)
        })
        .await)
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn pending_migrations(&self) -> Result<u64> {
        // Memory has no schema: it is always the newest.
        Ok(0)
    }
}

/// One page of `all`, which holds every item in order.
fn paginate<T>(all: Vec<T>, page: PageRequest) -> Page<T> {
    let count = all.len() as u64;
    let skip = usize::try_from(page.offset()).unwrap_or(usize::MAX);
    let take = usize::try_from(page.page_size()).unwrap_or(usize::MAX);
    Page {
        count,
        items: all.into_iter().skip(skip).take(take).collect(),
    }
}

/// The in-memory backend of the conformance suite: every fixture is a new,
/// empty [`MemoryStore`] with a [`MemoryQueue`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory;

struct MemoryFixture {
    store: Arc<MemoryStore>,
    queue: Arc<MemoryQueue>,
}

impl Fixture for MemoryFixture {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store) as Arc<dyn Store>
    }

    fn queue(&self) -> BoxFuture<'_, Arc<dyn JobQueue>> {
        Box::pin(async { Arc::clone(&self.queue) as Arc<dyn JobQueue> })
    }
}

impl Backend for Memory {
    fn fixture(&self) -> BoxFuture<'_, Option<Box<dyn Fixture>>> {
        Box::pin(async {
            Some(Box::new(MemoryFixture {
                store: Arc::new(MemoryStore::new()),
                queue: Arc::new(MemoryQueue::new()),
            }) as Box<dyn Fixture>)
        })
    }
}

/// The superuser `id` and its password hash, to change.
fn superuser_mut(catalog: &mut Catalog, id: i64) -> Result<&mut (Superuser, String)> {
    catalog
        .superusers
        .values_mut()
        .find(|(su, _)| su.id == id)
        .ok_or(Error::not_found(Entity::Superuser))
}
