//! The platform operator: tenants with usage, suspension, deletion,
//! domains, superusers.

use saas_core::Saas;
use saas_core::error::{Entity, Error};
use saas_core::operator::TenantOverview;
use saas_core::store::{Page, PageRequest};
use saas_core::tenancy::{Hostname, Slug, TenantId, TenantStatus};
use saas_core::users::Role;

use crate::Fixture;
use crate::assert_err;
use crate::harness::{
    PASSWORD, World, assert_invalid, domain_for, new_project, registration, saas, unique_slug,
};

/// The newest tenants of the operator's list (its last two pages) that
/// include every one of `wanted`. Other tests on a shared database create
/// and delete tenants meanwhile, shifting pages or deleting a tenant
/// between listing and describing it, so this retries.
async fn newest_tenants(saas: &Saas, wanted: &[TenantId]) -> Page<TenantOverview> {
    let op = saas.operator_unchecked();
    let size = PageRequest::MAX_SIZE;
    'attempt: for _ in 0..10 {
        let count = saas
            .store()
            .list_tenants(PageRequest::new(Some(1), Some(1)).unwrap())
            .await
            .unwrap()
            .count;
        let last = count.div_ceil(size).max(1);
        let mut items = Vec::new();
        let mut total = 0;
        for page in last.saturating_sub(1).max(1)..=last {
            match op
                .list_tenants(PageRequest::new(Some(page), Some(size)).unwrap())
                .await
            {
                Ok(p) => {
                    total = p.count;
                    items.extend(p.items);
                }
                Err(Error::NotFound {
                    entity: Entity::Tenant,
                }) => continue 'attempt,
                Err(e) => panic!("list_tenants failed: {e:?}"),
            }
        }
        if wanted
            .iter()
            .all(|id| items.iter().any(|t| t.tenant.id == *id))
        {
            return Page {
                count: total,
                items,
            };
        }
    }
    panic!("list_tenants never showed {wanted:?}");
}

/// Tenants are listed oldest first, with their domains and usage.
pub async fn operator_lists_tenants_with_usage(f: &dyn Fixture) {
    let saas = saas(f.store());
    let a = World::register(&saas, Some("basic")).await;
    let b = World::register(&saas, None).await;
    let admin = a.owner_session().await;
    admin.create_project(new_project("x")).await.unwrap();
    admin.create_project(new_project("y")).await.unwrap();
    a.seed_user(Role::Member, "mem").await;
    let page = newest_tenants(&saas, &[a.tenant.id, b.tenant.id]).await;
    let pos = |id: TenantId| page.items.iter().position(|t| t.tenant.id == id);
    let (pa, pb) = (pos(a.tenant.id), pos(b.tenant.id));
    let (Some(pa), Some(pb)) = (pa, pb) else {
        panic!("both tenants are listed: {pa:?} {pb:?}");
    };
    assert!(pa < pb, "oldest first");
    let oa = &page.items[pa];
    assert_eq!(oa.tenant, a.tenant);
    assert_eq!((oa.users.used, oa.users.limit), (2, Some(20)));
    assert_eq!((oa.projects.used, oa.projects.limit), (2, Some(10)));
    assert_eq!(oa.domains.len(), 1);
    assert_eq!(
        oa.domains[0].hostname.as_str(),
        domain_for(a.tenant.slug.as_str())
    );
    let ob = &page.items[pb];
    assert_eq!((ob.users.used, ob.users.limit), (1, Some(5)));
    assert_eq!((ob.projects.used, ob.projects.limit), (0, Some(3)));
    let ids: Vec<_> = page.items.iter().map(|t| t.tenant.id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "listed by id, which is creation order");
    if f.backend() == "sqlite" {
        assert_eq!(page.count, 2);
    }
    assert_eq!(
        saas.operator_unchecked()
            .overview(b.tenant.id)
            .await
            .unwrap(),
        *ob
    );
    assert_err!(
        saas.operator_unchecked().overview(TenantId::new()).await,
        Error::NotFound {
            entity: Entity::Tenant
        }
    );
}

/// Suspension and reactivation toggle the status; deletion refuses the
/// tenant at once but keeps it, restorable; a purge removes the tenant,
/// its domains and its data, and frees its slug; unknown tenants are not
/// found.
pub async fn operator_suspends_reactivates_and_deletes(f: &dyn Fixture) {
    let saas = saas(f.store());
    let op = saas.operator_unchecked();
    let w = World::register(&saas, None).await;
    let slug = w.tenant.slug.as_str().to_owned();
    let host = domain_for(&slug);
    w.owner_session()
        .await
        .create_project(new_project("doomed"))
        .await
        .unwrap();
    assert_eq!(
        op.suspend(w.tenant.id).await.unwrap().status,
        TenantStatus::Suspended
    );
    assert_eq!(
        op.suspend(w.tenant.id).await.unwrap().status,
        TenantStatus::Suspended,
        "suspending twice is harmless"
    );
    assert_eq!(
        op.reactivate(w.tenant.id).await.unwrap().status,
        TenantStatus::Active
    );
    let extra = format!("extra-{host}");
    op.add_domain(w.tenant.id, &extra, false).await.unwrap();

    // Deleted: refused everywhere at once, as if unknown; kept and
    // restorable, its slug still taken.
    let store = f.store();
    let deleted = op.delete_tenant(w.tenant.id).await.unwrap();
    assert_eq!(deleted.status, TenantStatus::Deleted);
    assert!(deleted.deleted_at.is_some());
    assert_eq!(
        store.tenant(w.tenant.id).await.unwrap().map(|t| t.status),
        Some(TenantStatus::Deleted)
    );
    assert_err!(
        saas.resolve_host(&host).await,
        Error::NotFound {
            entity: Entity::Tenant
        }
    );
    assert_err!(
        saas.resolve_slug(&slug).await,
        Error::NotFound {
            entity: Entity::Tenant
        }
    );
    assert_err!(
        saas.open_tenant(w.tenant.id).await,
        Error::NotFound {
            entity: Entity::Tenant
        }
    );
    assert!(saas.login(&w.tenant, "admin", PASSWORD).await.is_err());
    assert_err!(
        op.suspend(w.tenant.id).await,
        Error::NotFound {
            entity: Entity::Tenant
        }
    );
    assert_err!(
        saas.register(registration(&slug, None)).await,
        Error::Conflict { .. }
    );
    assert_eq!(
        op.delete_tenant(w.tenant.id).await.unwrap().deleted_at,
        deleted.deleted_at,
        "deleting twice keeps the first time"
    );
    assert_err!(
        op.restore(TenantId::new()).await,
        Error::NotFound {
            entity: Entity::Tenant
        }
    );
    // Restored: as it was, data included.
    let restored = op.restore(w.tenant.id).await.unwrap();
    assert_eq!(
        (restored.status, restored.deleted_at),
        (TenantStatus::Active, None)
    );
    assert_eq!(saas.resolve_host(&host).await.unwrap().id, w.tenant.id);
    assert_eq!(w.snapshot().await.projects.len(), 1, "the data is back");
    assert_err!(op.restore(w.tenant.id).await, Error::State(_));
    assert_err!(op.purge(w.tenant.id).await, Error::State(_));
    // A suspended tenant comes back suspended.
    op.suspend(w.tenant.id).await.unwrap();
    op.delete_tenant(w.tenant.id).await.unwrap();
    assert_eq!(
        op.restore(w.tenant.id).await.unwrap().status,
        TenantStatus::Suspended
    );
    op.reactivate(w.tenant.id).await.unwrap();

    // Purged: gone for good.
    op.delete_tenant(w.tenant.id).await.unwrap();
    op.purge(w.tenant.id).await.unwrap();
    assert!(
        !store.purge_tenant(w.tenant.id, None).await.unwrap(),
        "purging again is a no-op"
    );
    assert_eq!(store.tenant(w.tenant.id).await.unwrap(), None);
    assert_eq!(
        store
            .tenant_by_slug(&Slug::parse(&slug).unwrap())
            .await
            .unwrap(),
        None
    );
    for h in [&host, &extra] {
        assert_eq!(
            store
                .tenant_by_domain(&Hostname::parse(h).unwrap())
                .await
                .unwrap(),
            None
        );
        assert_err!(
            saas.resolve_host(h).await,
            Error::NotFound {
                entity: Entity::Tenant
            }
        );
    }
    assert_err!(
        store.open(&w.tenant).await,
        Error::NotFound {
            entity: Entity::Tenant
        }
    );
    assert_err!(
        saas.open_tenant(w.tenant.id).await,
        Error::NotFound {
            entity: Entity::Tenant
        }
    );
    assert!(saas.login(&w.tenant, "admin", PASSWORD).await.is_err());
    let unknown = w.tenant.id;
    assert_err!(
        op.delete_tenant(unknown).await,
        Error::NotFound {
            entity: Entity::Tenant
        }
    );
    assert_err!(
        op.suspend(unknown).await,
        Error::NotFound {
            entity: Entity::Tenant
        }
    );
    assert_err!(
        op.reactivate(unknown).await,
        Error::NotFound {
            entity: Entity::Tenant
        }
    );
    assert_err!(
        op.restore(unknown).await,
        Error::NotFound {
            entity: Entity::Tenant
        }
    );
    assert_err!(
        op.purge(unknown).await,
        Error::NotFound {
            entity: Entity::Tenant
        }
    );
    // The slug and domains are free again, and the new tenant starts empty.
    let (t, owner) = saas
        .register(registration(&slug, None))
        .await
        .expect("the slug is free again");
    op.add_domain(t.id, &extra, false).await.unwrap();
    let fresh = World {
        saas: saas.clone(),
        tenant: t,
        owner,
    };
    let snap = fresh.snapshot().await;
    assert_eq!(snap.users.len(), 1);
    assert!(snap.projects.is_empty());
}

/// Domains: extra hostnames route to the tenant; a hostname belongs to one
/// tenant; the primary cannot be removed until another becomes primary.
pub async fn operator_manages_domains(f: &dyn Fixture) {
    let saas = saas(f.store());
    let op = saas.operator_unchecked();
    let a = World::register(&saas, None).await;
    let b = World::register(&saas, None).await;
    let primary = domain_for(a.tenant.slug.as_str());
    let extra = format!("www.{primary}");
    let d = op.add_domain(a.tenant.id, &extra, false).await.unwrap();
    assert_eq!(d.hostname.as_str(), extra);
    assert!(!d.is_primary);
    assert_eq!(d.tenant_id, a.tenant.id);
    assert_eq!(saas.resolve_host(&extra).await.unwrap().id, a.tenant.id);
    let domains = f.store().domains(a.tenant.id).await.unwrap();
    assert_eq!(domains.len(), 2);
    assert!(domains[0].is_primary && domains[0].hostname.as_str() == primary);

    for taken in [
        extra.clone(),
        extra.to_ascii_uppercase(),
        domain_for(b.tenant.slug.as_str()),
    ] {
        assert_err!(
            op.add_domain(a.tenant.id, &taken, false).await,
            Error::Conflict {
                entity: Entity::Domain,
                field: "hostname"
            }
        );
    }
    assert_err!(
        op.add_domain(b.tenant.id, &extra, false).await,
        Error::Conflict {
            entity: Entity::Domain,
            field: "hostname"
        }
    );
    assert_invalid(
        op.add_domain(a.tenant.id, "bad host", false).await,
        "domain",
    );
    assert_err!(
        op.add_domain(TenantId::new(), &format!("x{}", unique_slug()), false)
            .await,
        Error::NotFound {
            entity: Entity::Tenant
        }
    );
    assert_err!(
        op.remove_domain(a.tenant.id, &primary).await,
        Error::State(_)
    );
    assert_eq!(f.store().domains(a.tenant.id).await.unwrap(), domains);

    op.remove_domain(a.tenant.id, &extra).await.unwrap();
    assert_err!(
        saas.resolve_host(&extra).await,
        Error::NotFound {
            entity: Entity::Tenant
        }
    );
    // A new primary demotes the old one, which can then be removed.
    let new_primary = format!("new-{primary}");
    let d = op
        .add_domain(a.tenant.id, &new_primary, true)
        .await
        .unwrap();
    assert!(d.is_primary);
    let domains = f.store().domains(a.tenant.id).await.unwrap();
    assert_eq!(domains.len(), 2);
    assert_eq!(domains[0].hostname.as_str(), new_primary);
    assert!(domains[0].is_primary && !domains[1].is_primary);
    op.remove_domain(a.tenant.id, &primary).await.unwrap();
    assert_eq!(
        saas.resolve_host(&new_primary).await.unwrap().id,
        a.tenant.id
    );
    assert_err!(
        saas.resolve_host(&primary).await,
        Error::NotFound {
            entity: Entity::Tenant
        }
    );
    // B was never touched.
    assert_eq!(f.store().domains(b.tenant.id).await.unwrap().len(), 1);
}

/// Superusers: unique ignoring case, log in for a platform token that no
/// tenant token can stand in for.
pub async fn superusers_log_in_and_are_unique(f: &dyn Fixture) {
    let saas = saas(f.store());
    let name = format!("root{}", &unique_slug()[1..12]);
    let su = saas
        .create_superuser(&name, "root@example.com", PASSWORD)
        .await
        .unwrap();
    assert_eq!(su.username.as_str(), name);
    assert_err!(
        saas.create_superuser(&name.to_ascii_uppercase(), "other@example.com", PASSWORD)
            .await,
        Error::Conflict {
            entity: Entity::Superuser,
            field: "username"
        }
    );
    assert_invalid(
        saas.create_superuser("bad name", "root@example.com", PASSWORD)
            .await,
        "username",
    );
    assert_invalid(
        saas.create_superuser("okname", "root@example.com", "short")
            .await,
        "password",
    );
    let token = saas
        .superuser_login(&name.to_ascii_uppercase(), PASSWORD)
        .await
        .unwrap();
    let op = saas.operator(&token.access).await.unwrap();
    assert_eq!(op.superuser_id(), su.id);
    assert_err!(
        saas.superuser_login(&name, "wrongpassword").await,
        Error::Unauthenticated
    );
    assert_err!(
        saas.superuser_login("nosuchroot", PASSWORD).await,
        Error::Unauthenticated
    );
    let w = World::register(&saas, None).await;
    let tenant_token = saas.login(&w.tenant, "admin", PASSWORD).await.unwrap();
    assert_err!(
        saas.operator(&tenant_token.access).await,
        Error::Unauthenticated
    );
    assert_err!(
        saas.authenticate(&w.tenant, &token.access).await,
        Error::Unauthenticated
    );
    // A tenant user named like the superuser cannot log in as the operator.
    w.seed_user(Role::Admin, &name).await;
    let tenant_pair = saas.login(&w.tenant, &name, PASSWORD).await.unwrap();
    assert_err!(
        saas.operator(&tenant_pair.access).await,
        Error::Unauthenticated
    );
}

/// Making a domain primary demotes the old one; another tenant's domain
/// and unknown tenants are NotFound and change nothing.
pub async fn operator_makes_a_domain_primary(f: &dyn Fixture) {
    let saas = saas(f.store());
    let a = World::register(&saas, None).await;
    let b = World::register(&saas, None).await;
    let op = saas.operator_unchecked();
    let extra = format!("x{}.example.com", unique_slug());
    op.add_domain(a.tenant.id, &extra, false).await.unwrap();
    op.make_primary(a.tenant.id, &extra).await.unwrap();
    let domains = f.store().domains(a.tenant.id).await.unwrap();
    let primaries: Vec<&str> = domains
        .iter()
        .filter(|d| d.is_primary)
        .map(|d| d.hostname.as_str())
        .collect();
    assert_eq!(primaries, [extra.as_str()]);
    assert_eq!(domains.len(), 2);
    let old = domain_for(a.tenant.slug.as_str());
    op.remove_domain(a.tenant.id, &old).await.unwrap();
    assert_err!(
        op.make_primary(b.tenant.id, &extra).await,
        Error::NotFound {
            entity: Entity::Domain
        }
    );
    assert_err!(
        op.make_primary(TenantId::new(), &extra).await,
        Error::NotFound {
            entity: Entity::Tenant
        }
    );
    let b_domains = f.store().domains(b.tenant.id).await.unwrap();
    assert_eq!(b_domains.len(), 1);
    assert!(b_domains[0].is_primary);
    assert_eq!(
        saas.resolve_host(&extra).await.unwrap().id,
        a.tenant.id,
        "still routed to its tenant"
    );
}

/// A platform token is checked like a tenant token: its superuser must
/// exist, be active and be at the token's version. Changing the password,
/// deactivating and deleting revoke; reactivating does not bring old
/// tokens back.
pub async fn platform_tokens_die_with_their_superuser(f: &dyn Fixture) {
    let saas = saas(f.store());
    let name = format!("root{}", &unique_slug()[1..12]);
    let su = saas
        .create_superuser(&name, "root@example.com", PASSWORD)
        .await
        .unwrap();
    assert!(su.is_active);
    let first = saas.superuser_login(&name, PASSWORD).await.unwrap();
    saas.operator(&first.access).await.unwrap();

    let new_password = "another long password";
    saas.set_superuser_password(su.id, new_password)
        .await
        .unwrap();
    assert_err!(saas.operator(&first.access).await, Error::Unauthenticated);
    assert_err!(
        saas.superuser_login(&name, PASSWORD).await,
        Error::Unauthenticated
    );
    let second = saas.superuser_login(&name, new_password).await.unwrap();
    saas.operator(&second.access).await.unwrap();

    let off = saas.set_superuser_active(su.id, false).await.unwrap();
    assert!(!off.is_active);
    assert_err!(saas.operator(&second.access).await, Error::Unauthenticated);
    assert_err!(
        saas.superuser_login(&name, new_password).await,
        Error::Unauthenticated
    );
    saas.set_superuser_active(su.id, true).await.unwrap();
    assert_err!(saas.operator(&second.access).await, Error::Unauthenticated);
    let third = saas.superuser_login(&name, new_password).await.unwrap();
    saas.operator(&third.access).await.unwrap();

    saas.delete_superuser(su.id).await.unwrap();
    assert_err!(saas.operator(&third.access).await, Error::Unauthenticated);
    assert_err!(
        saas.superuser_login(&name, new_password).await,
        Error::Unauthenticated
    );
    for missing in [
        saas.delete_superuser(su.id).await.map(|_| ()),
        saas.set_superuser_active(su.id, false).await.map(|_| ()),
        saas.set_superuser_password(su.id, new_password).await,
    ] {
        assert_err!(
            missing,
            Error::NotFound {
                entity: Entity::Superuser
            }
        );
    }
}
