//! Registration of tenants: all or nothing, every field validated.

use saas_core::projects::Scope;
use saas_core::store::PageRequest;
use saas_core::tenancy::{Slug, TenantStatus};
use saas_core::users::Role;
use saas_core::{Entity, Error};

use crate::Fixture;
use crate::assert_err;
use crate::harness::{World, assert_invalid, domain_for, registration, saas, unique_slug};

/// Registration creates the tenant, its primary domain, its storage and its
/// owner, who can log in at once.
pub async fn register_creates_tenant_domain_and_owner(f: &dyn Fixture) {
    let saas = saas(f.store());
    let slug = unique_slug();
    let (tenant, owner) = saas
        .register(registration(&slug, Some("basic")))
        .await
        .expect("registration succeeds");
    assert_eq!(tenant.slug.as_str(), slug);
    assert_eq!(tenant.name.as_str(), format!("Company {slug}"));
    assert_eq!(tenant.plan, "basic");
    assert_eq!(tenant.status, TenantStatus::Active);
    assert_eq!(owner.role, Role::Admin);
    assert!(owner.is_owner && owner.is_active);
    assert_eq!(owner.username.as_str(), "admin");
    assert_eq!(owner.token_version, 0);
    assert_eq!(owner.last_login, None);

    let store = f.store();
    assert_eq!(store.tenant(tenant.id).await.unwrap(), Some(tenant.clone()));
    let by_slug = store
        .tenant_by_slug(&Slug::parse(&slug).unwrap())
        .await
        .unwrap();
    assert_eq!(by_slug, Some(tenant.clone()));
    let domains = store.domains(tenant.id).await.unwrap();
    assert_eq!(domains.len(), 1);
    assert!(domains[0].is_primary);
    assert_eq!(domains[0].hostname.as_str(), domain_for(&slug));
    assert_eq!(domains[0].tenant_id, tenant.id);
    assert_eq!(
        saas.resolve_host(&domain_for(&slug)).await.unwrap().id,
        tenant.id
    );
    assert_eq!(saas.resolve_slug(&slug).await.unwrap().id, tenant.id);

    let tokens = saas
        .login(&tenant, "admin", crate::harness::PASSWORD)
        .await
        .expect("the owner logs in");
    let session = saas.authenticate(&tenant, &tokens.access).await.unwrap();
    assert_eq!(session.me().id, owner.id);
    assert!(session.me().last_login.is_some());
    let dash = session.dashboard().await.unwrap();
    assert_eq!(dash.users.used, 1);
    assert_eq!(dash.total_projects, 0);
    assert_eq!(dash.plan, "basic");

    let handle = store.open(&tenant).await.unwrap();
    assert_eq!(handle.tenant_id(), tenant.id);
    assert_eq!(handle.count_users().await.unwrap(), 1);
    assert_eq!(handle.project_counts(Scope::All).await.unwrap().total, 0);
}

/// No plan means the catalog's default; a named plan is kept.
pub async fn register_uses_the_default_or_named_plan(f: &dyn Fixture) {
    let saas = saas(f.store());
    let free = World::register(&saas, None).await;
    assert_eq!(free.tenant.plan, "free");
    for plan in ["basic", "premium", "enterprise"] {
        let w = World::register(&saas, Some(plan)).await;
        assert_eq!(w.tenant.plan, plan);
        assert_eq!(w.owner_session().await.plan().code, plan);
    }
}

/// Every invalid field is reported under its own name, and a rejected
/// registration creates nothing.
pub async fn register_rejects_each_invalid_field(f: &dyn Fixture) {
    let saas = saas(f.store());
    let before = f
        .store()
        .list_tenants(PageRequest::first())
        .await
        .unwrap()
        .count;
    let slug = unique_slug();
    let base = registration(&slug, None);
    let cases: Vec<(&str, saas_core::commands::Registration)> = vec![
        ("schema_name", {
            let mut r = base.clone();
            r.schema_name = "Robert\"; DROP".into();
            r
        }),
        ("schema_name", {
            let mut r = base.clone();
            r.schema_name = "public".into();
            r
        }),
        ("schema_name", {
            let mut r = base.clone();
            r.schema_name = "pg_x".into();
            r
        }),
        ("schema_name", {
            let mut r = base.clone();
            r.schema_name = "information_schema".into();
            r
        }),
        ("schema_name", {
            let mut r = base.clone();
            r.schema_name = "a".repeat(49);
            r
        }),
        ("schema_name", {
            let mut r = base.clone();
            r.schema_name = "../etc".into();
            r
        }),
        ("company_name", {
            let mut r = base.clone();
            r.company_name = "C".repeat(300);
            r
        }),
        ("company_name", {
            let mut r = base.clone();
            r.company_name = "   ".into();
            r
        }),
        ("domain_url", {
            let mut r = base.clone();
            r.domain_url = "bad domain".into();
            r
        }),
        ("domain_url", {
            let mut r = base.clone();
            r.domain_url = "ex_ample.com".into();
            r
        }),
        ("domain_url", {
            let mut r = base.clone();
            r.domain_url = "-acme.com".into();
            r
        }),
        ("admin_email", {
            let mut r = base.clone();
            r.admin_email = "not-an-email".into();
            r
        }),
        ("admin_password", {
            let mut r = base.clone();
            r.admin_password = "short".into();
            r
        }),
        ("admin_password", {
            let mut r = base.clone();
            r.admin_password = "12345678901".into();
            r
        }),
        ("admin_password", {
            let mut r = base.clone();
            r.admin_username = "longusername".into();
            r.admin_password = "LongUserName".into();
            r
        }),
        ("admin_username", {
            let mut r = base.clone();
            r.admin_username = "\u{0430}dmin".into();
            r
        }),
        ("admin_username", {
            let mut r = base.clone();
            r.admin_username = "a b".into();
            r
        }),
        ("subscription_plan", {
            let mut r = base.clone();
            r.subscription_plan = Some("gold".into());
            r
        }),
    ];
    for (field, r) in cases {
        let shown = format!("{r:?}");
        match saas.register(r).await {
            Err(Error::Invalid { fields }) if fields.contains_key(field) => {}
            other => panic!("{shown}: expected Invalid naming {field}, got {other:?}"),
        }
    }
    // Every bad field at once is reported at once.
    let all_bad = saas_core::commands::Registration {
        company_name: String::new(),
        schema_name: "public".into(),
        domain_url: "no spaces.com".into(),
        admin_username: String::new(),
        admin_email: "x".into(),
        admin_password: "1".into(),
        subscription_plan: Some("gold".into()),
    };
    match saas.register(all_bad).await {
        Err(Error::Invalid { fields }) => {
            for k in [
                "company_name",
                "schema_name",
                "domain_url",
                "admin_username",
                "admin_email",
                "admin_password",
                "subscription_plan",
            ] {
                assert!(fields.contains_key(k), "{k} missing from {fields:?}");
            }
        }
        other => panic!("expected Invalid, got {other:?}"),
    }

    // Nothing was created: the slug and domain are free, the count unchanged.
    let after = f
        .store()
        .list_tenants(PageRequest::first())
        .await
        .unwrap()
        .count;
    if f.backend() == "sqlite" {
        assert_eq!(before, after);
    }
    assert_eq!(
        f.store()
            .tenant_by_slug(&Slug::parse(&slug).unwrap())
            .await
            .unwrap(),
        None
    );
    assert_err!(
        saas.resolve_host(&domain_for(&slug)).await,
        Error::NotFound {
            entity: Entity::Tenant
        }
    );
    let (t, _) = saas.register(base).await.expect("the valid one succeeds");
    assert_eq!(t.slug.as_str(), slug);
    assert_invalid(
        saas.register(registration("Robert\"; DROP", None)).await,
        "schema_name",
    );
}

/// A taken slug is a conflict, and the failed registration leaves its
/// domain free.
pub async fn register_duplicate_slug_conflicts_and_leaves_nothing(f: &dyn Fixture) {
    let saas = saas(f.store());
    let first = World::register(&saas, None).await;
    let slug = first.tenant.slug.as_str().to_owned();
    let other_domain = format!("other-{}", domain_for(&slug));
    let mut again = registration(&slug, None);
    again.domain_url = other_domain.clone();
    assert_err!(
        saas.register(again.clone()).await,
        Error::Conflict {
            entity: Entity::Tenant,
            field: "slug"
        }
    );
    assert_err!(
        saas.resolve_host(&other_domain).await,
        Error::NotFound {
            entity: Entity::Tenant
        }
    );
    // The first tenant is untouched.
    assert_eq!(first.snapshot().await.users.len(), 1);
    // The domain was not left behind: another slug can take it.
    let fresh = unique_slug();
    let mut r = registration(&fresh, None);
    r.domain_url = other_domain.clone();
    let (t, _) = saas.register(r).await.expect("the domain is free");
    assert_eq!(saas.resolve_host(&other_domain).await.unwrap().id, t.id);
}

/// A taken domain (ignoring case) is a conflict, and the failed
/// registration leaves its slug free: no catalog row, no storage.
pub async fn register_duplicate_domain_conflicts_and_leaves_nothing(f: &dyn Fixture) {
    let saas = saas(f.store());
    let first = World::register(&saas, None).await;
    let taken = domain_for(first.tenant.slug.as_str());
    let slug = unique_slug();
    let mut r = registration(&slug, None);
    r.domain_url = taken.to_ascii_uppercase();
    assert_err!(
        saas.register(r).await,
        Error::Conflict {
            entity: Entity::Domain,
            field: "hostname"
        }
    );
    assert_eq!(
        f.store()
            .tenant_by_slug(&Slug::parse(&slug).unwrap())
            .await
            .unwrap(),
        None
    );
    assert_err!(
        saas.resolve_slug(&slug).await,
        Error::NotFound {
            entity: Entity::Tenant
        }
    );
    // The slug can now be registered, and its storage starts empty.
    let (t, owner) = saas
        .register(registration(&slug, None))
        .await
        .expect("the slug is free");
    assert_eq!(t.slug.as_str(), slug);
    let w = World {
        saas: saas.clone(),
        tenant: t,
        owner,
    };
    let snap = w.snapshot().await;
    assert_eq!(snap.users.len(), 1);
    assert!(snap.projects.is_empty() && snap.tasks.is_empty());
    // The first tenant still owns its domain.
    assert_eq!(saas.resolve_host(&taken).await.unwrap().id, first.tenant.id);
}
