//! Provisioning (atomic, with cleanup), catalog, suspend/delete, superusers.

use saas_core::error::{Entity, Error};
use saas_core::store::{PageRequest, Store};
use saas_core::tenancy::{Hostname, TenantStatus};
use saas_core::users::{Email, Role, Username};
use saas_store_postgres::{PgConfig, PgStore, Routing};
use testkit::{pg, records};

async fn catalog_rows(store: &PgStore, slug: &str, hostname: &str) -> (i64, i64) {
    let tenants: i64 =
        sqlx::query_scalar("SELECT count(*) FROM saas_shared.tenants WHERE slug = $1")
            .bind(slug)
            .fetch_one(store.catalog_pool())
            .await
            .expect("count tenants");
    let domains: i64 =
        sqlx::query_scalar("SELECT count(*) FROM saas_shared.domains WHERE hostname = $1")
            .bind(hostname)
            .fetch_one(store.catalog_pool())
            .await
            .expect("count domains");
    (tenants, domains)
}

#[tokio::test]
async fn duplicate_hostname_or_slug_leaves_nothing_behind() {
    let Some(store) = pg::store(Routing::default()).await else {
        return;
    };
    let (first, _) = records::tenant(&store).await;
    let first_host = store.domains(first.id).await.expect("domains")[0]
        .hostname
        .clone();

    let mut clash = records::new_tenant();
    clash.domain = first_host.clone();
    let err = store
        .create_tenant(&clash, &records::user_record("admin", Role::Admin))
        .await
        .expect_err("hostname taken");
    assert!(
        matches!(
            err,
            Error::Conflict {
                entity: Entity::Domain,
                field: "hostname"
            }
        ),
        "{err:?}"
    );
    assert!(
        !pg::schema_exists(&pg::url(), &clash.slug).await,
        "no schema left"
    );
    assert_eq!(
        catalog_rows(&store, clash.slug.as_str(), "unused.invalid").await,
        (0, 0)
    );
    assert!(store.tenant(clash.id).await.expect("lookup").is_none());

    let mut same_slug = records::new_tenant();
    same_slug.slug = first.slug.clone();
    let err = store
        .create_tenant(&same_slug, &records::user_record("admin", Role::Admin))
        .await
        .expect_err("slug taken");
    assert!(
        matches!(
            err,
            Error::Conflict {
                entity: Entity::Tenant,
                field: "slug"
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        catalog_rows(&store, first.slug.as_str(), same_slug.domain.as_str()).await,
        (1, 0)
    );

    // A failure after the DDL (here: the admin insert) rolls the schema back too.
    let orphan = records::new_tenant();
    let mut bad_admin = records::user_record("admin", Role::Admin);
    bad_admin.first_name = "nul\u{0}byte".to_owned(); // PostgreSQL refuses NUL in text
    store
        .create_tenant(&orphan, &bad_admin)
        .await
        .expect_err("admin insert fails");
    assert!(
        !pg::schema_exists(&pg::url(), &orphan.slug).await,
        "no schema left"
    );
    assert_eq!(
        catalog_rows(&store, orphan.slug.as_str(), orphan.domain.as_str()).await,
        (0, 0)
    );

    store.purge_tenant(first.id, None).await.expect("cleanup");
}

#[tokio::test]
async fn concurrent_startup_sets_up_the_shared_schema_once() {
    if !pg::available().await {
        return;
    }
    let starts = (0..8).map(|_| PgStore::connect(PgConfig::new(pg::url()).with_max_connections(2)));
    for store in futures::future::join_all(starts).await {
        store.expect("every concurrent start succeeds");
    }
}

#[tokio::test]
async fn catalog_lookups_domains_and_lifecycle() {
    let Some(store) = pg::store(Routing::default()).await else {
        return;
    };
    let (tenant, admin) = records::tenant(&store).await;
    assert_eq!(tenant.database, "default");
    assert_eq!(
        store.tenant(tenant.id).await.expect("by id"),
        Some(tenant.clone())
    );
    assert_eq!(
        store.tenant_by_slug(&tenant.slug).await.expect("by slug"),
        Some(tenant.clone())
    );
    let primary = store.domains(tenant.id).await.expect("domains");
    assert_eq!(primary.len(), 1);
    assert!(primary[0].is_primary);
    assert_eq!(
        store
            .tenant_by_domain(&primary[0].hostname)
            .await
            .expect("by domain"),
        Some(tenant.clone())
    );

    let extra = Hostname::parse(&format!("www.{}", primary[0].hostname)).expect("hostname");
    store
        .add_domain(tenant.id, &extra, false)
        .await
        .expect("add domain");
    assert_eq!(
        store
            .tenant_by_domain(&extra)
            .await
            .expect("by domain")
            .map(|t| t.id),
        Some(tenant.id)
    );
    assert!(matches!(
        store.add_domain(tenant.id, &extra, false).await,
        Err(Error::Conflict {
            entity: Entity::Domain,
            field: "hostname"
        })
    ));
    assert!(matches!(
        store.remove_domain(tenant.id, &primary[0].hostname).await,
        Err(Error::State(_))
    ));
    let other = Hostname::parse(&format!("new.{}", primary[0].hostname)).expect("hostname");
    store
        .add_domain(tenant.id, &other, true)
        .await
        .expect("new primary");
    let domains = store.domains(tenant.id).await.expect("domains");
    assert_eq!(
        (
            domains[0].hostname.clone(),
            domains.iter().filter(|d| d.is_primary).count()
        ),
        (other, 1)
    );
    store
        .remove_domain(tenant.id, &primary[0].hostname)
        .await
        .expect("old primary is removable now");
    store
        .remove_domain(tenant.id, &extra)
        .await
        .expect("remove");
    assert_eq!(
        store.tenant_by_domain(&extra).await.expect("by domain"),
        None
    );

    let suspended = store
        .set_status(tenant.id, TenantStatus::Suspended)
        .await
        .expect("suspend");
    assert_eq!(suspended.status, TenantStatus::Suspended);
    assert_eq!(
        store
            .tenant(tenant.id)
            .await
            .expect("by id")
            .map(|t| t.status),
        Some(TenantStatus::Suspended)
    );
    let active = store
        .set_status(tenant.id, TenantStatus::Active)
        .await
        .expect("reactivate");
    assert_eq!(active.status, TenantStatus::Active);
    assert_eq!(
        store
            .set_plan(tenant.id, "premium")
            .await
            .expect("plan")
            .plan,
        "premium"
    );
    let listed = store
        .list_tenants(PageRequest::new(Some(1), Some(100)).expect("page"))
        .await
        .expect("list");
    assert!(listed.count >= 1);
    assert!(
        listed.items.windows(2).all(|w| w[0].id < w[1].id),
        "oldest first"
    );

    let handle = store.open(&tenant).await.expect("open");
    assert!(handle.user(admin.id).await.expect("user").is_some());
    store.purge_tenant(tenant.id, None).await.expect("delete");
    assert!(!pg::schema_exists(&pg::url(), &tenant.slug).await);
    assert_eq!(store.tenant(tenant.id).await.expect("by id"), None);
    assert_eq!(
        store
            .tenant_by_domain(&domains[0].hostname)
            .await
            .expect("by domain"),
        None
    );
    // A handle that outlived its tenant fails closed.
    assert!(matches!(
        handle.user(admin.id).await,
        Err(Error::NotFound {
            entity: Entity::Tenant
        })
    ));
    assert!(matches!(
        store.open(&tenant).await,
        Err(Error::NotFound {
            entity: Entity::Tenant
        })
    ));
    for result in [
        store
            .set_status(tenant.id, TenantStatus::Suspended)
            .await
            .map(|_| ()),
        store.set_plan(tenant.id, "free").await.map(|_| ()),
        store
            .delete_tenant(tenant.id, chrono::Utc::now())
            .await
            .map(|_| ()),
        store.restore_tenant(tenant.id).await.map(|_| ()),
    ] {
        assert!(
            matches!(
                result,
                Err(Error::NotFound {
                    entity: Entity::Tenant
                })
            ),
            "{result:?}"
        );
    }
}

#[tokio::test]
async fn open_fails_closed_when_the_schema_is_gone() {
    let Some(store) = pg::store(Routing::SetLocalSearchPath).await else {
        return;
    };
    let (tenant, _) = records::tenant(&store).await;
    let sql = format!(
        "DROP SCHEMA \"{}\" CASCADE",
        saas_store_postgres::tenant_schema_name(&tenant)
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(store.catalog_pool())
        .await
        .expect("drop");
    assert!(matches!(
        store.open(&tenant).await,
        Err(Error::NotFound {
            entity: Entity::Tenant
        })
    ));
    assert!(
        store
            .purge_tenant(tenant.id, None)
            .await
            .expect("a purge still cleans the catalog")
    );
}

#[tokio::test]
async fn superusers() {
    let Some(store) = pg::store(Routing::default()).await else {
        return;
    };
    let name = format!("Root{}", uuid::Uuid::new_v4().simple());
    let username = Username::parse(&name).expect("username");
    let email = Email::parse("root@example.com").expect("email");
    let created = store
        .create_superuser(&username, &email, "$argon2id$x")
        .await
        .expect("create");
    assert!(matches!(
        store
            .create_superuser(
                &Username::parse(&name.to_uppercase()).expect("u"),
                &email,
                "h"
            )
            .await,
        Err(Error::Conflict {
            entity: Entity::Superuser,
            field: "username"
        })
    ));
    let (found, hash) = store
        .superuser_credentials(&username.key())
        .await
        .expect("lookup")
        .expect("exists");
    assert_eq!((found, hash.as_str()), (created, "$argon2id$x"));
    assert!(
        store
            .superuser_credentials("nobody-here")
            .await
            .expect("lookup")
            .is_none()
    );
    store.ping().await.expect("ping");
}

/// A tenant deleted and its slug registered again: handles of the old
/// tenant, in this store and in another one (another process), reach
/// nothing, and above all not the new tenant's schema.
async fn recreated_slug_is_out_of_reach_of_old_handles(routing: Routing) {
    let Some(here) = pg::store(routing).await else {
        return;
    };
    let Some(elsewhere) = pg::store(routing).await else {
        return;
    };
    let (old, old_admin) = records::tenant(&here).await;
    let mine = here.open(&old).await.expect("open here");
    let theirs = elsewhere.open(&old).await.expect("open elsewhere");
    assert_eq!(theirs.count_users().await.expect("count"), 1);
    here.purge_tenant(old.id, None).await.expect("delete");

    let mut again = records::new_tenant();
    again.slug = old.slug.clone();
    let mut admin = records::user_record("admin", Role::Admin);
    admin.is_owner = true;
    let (new, _) = here.create_tenant(&again, &admin).await.expect("recreate");
    assert_ne!(
        saas_store_postgres::tenant_schema_name(&old),
        saas_store_postgres::tenant_schema_name(&new)
    );

    let ghost = records::user_record("ghost", Role::Admin);
    for stale in [&mine, &theirs] {
        for result in [
            stale.count_users().await.map(|_| ()),
            stale.user(old_admin.id).await.map(|_| ()),
            stale.create_user(&ghost, None).await.map(|_| ()),
            stale.create_user(&ghost, Some(100)).await.map(|_| ()),
        ] {
            assert!(
                matches!(
                    result,
                    Err(Error::NotFound {
                        entity: Entity::Tenant
                    })
                ),
                "{result:?}"
            );
        }
    }
    assert!(matches!(
        here.open(&old).await,
        Err(Error::NotFound {
            entity: Entity::Tenant
        })
    ));
    // The other store never heard of the delete: opening is a cache hit
    // (no round trip per request), and the handle fails closed on use.
    match elsewhere.open(&old).await {
        Err(Error::NotFound {
            entity: Entity::Tenant,
        }) => {}
        Err(e) => panic!("{e:?}"),
        Ok(h) => assert!(matches!(
            h.count_users().await,
            Err(Error::NotFound {
                entity: Entity::Tenant
            })
        )),
    }
    let fresh = elsewhere.open(&new).await.expect("open the new tenant");
    assert_eq!(fresh.count_users().await.expect("count"), 1);
    here.purge_tenant(new.id, None).await.expect("cleanup");
}

#[tokio::test]
async fn recreated_slug_is_out_of_reach_of_old_handles_qualified() {
    recreated_slug_is_out_of_reach_of_old_handles(Routing::QualifiedSql).await;
}

#[tokio::test]
async fn recreated_slug_is_out_of_reach_of_old_handles_set_local() {
    recreated_slug_is_out_of_reach_of_old_handles(Routing::SetLocalSearchPath).await;
}

/// Two-step deletion on PostgreSQL: deleting keeps the schema (and a
/// restore brings the data back); a schema whose catalog row is gone (a
/// purge interrupted after the catalog commit) is dropped by
/// `purge_orphans` once its ledger row is an hour old, never sooner (it
/// could be a registration in flight), and nothing else is.
#[tokio::test]
async fn deletion_keeps_the_schema_until_purged_and_orphans_are_purged_later() {
    let Some(store) = pg::store(Routing::default()).await else {
        return;
    };
    let (tenant, admin) = records::tenant(&store).await;
    let (other, _) = records::tenant(&store).await;
    let handle = store.open(&tenant).await.expect("open");
    handle
        .create_project(&records::project_record("kept", admin.id), None)
        .await
        .expect("project");
    drop(handle);

    let at = chrono::Utc::now();
    let deleted = store.delete_tenant(tenant.id, at).await.expect("delete");
    assert_eq!(deleted.status, TenantStatus::Deleted);
    assert!(
        pg::schema_exists(&pg::url(), &tenant.slug).await,
        "deleting keeps the schema"
    );
    let restored = store.restore_tenant(tenant.id).await.expect("restore");
    assert_eq!(restored.status, TenantStatus::Active);
    let handle = store.open(&restored).await.expect("open");
    assert_eq!(
        handle
            .project_counts(saas_core::projects::Scope::All)
            .await
            .expect("counts")
            .total,
        1,
        "the data is back"
    );
    drop(handle);

    // A crash right after a purge's catalog commit.
    store.delete_tenant(tenant.id, at).await.expect("delete");
    sqlx::query("DELETE FROM saas_shared.tenants WHERE id = $1")
        .bind(tenant.id.0)
        .execute(store.catalog_pool())
        .await
        .expect("catalog row");
    store.purge_orphans().await.expect("orphans");
    assert!(
        pg::schema_exists(&pg::url(), &tenant.slug).await,
        "a young ledger row may be a registration in flight: kept"
    );
    sqlx::query(
        "UPDATE saas_shared.tenant_schemas SET migrated_at = now() - interval '2 hours' \
         WHERE tenant_id = ANY($1)",
    )
    .bind(vec![tenant.id.0, other.id.0])
    .execute(store.catalog_pool())
    .await
    .expect("age the ledger");
    assert!(store.purge_orphans().await.expect("orphans") >= 1);
    assert!(
        !pg::schema_exists(&pg::url(), &tenant.slug).await,
        "the orphan is dropped"
    );
    assert!(
        pg::schema_exists(&pg::url(), &other.slug).await,
        "a schema the catalog names stays, however old"
    );
    store.purge_tenant(other.id, None).await.expect("cleanup");
}
