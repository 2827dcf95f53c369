//! Scale-out: tenants spread over two databases, the catalog in the first.

use saas_core::error::{Entity, Error};
use saas_core::projects::Scope;
use saas_core::store::{PageRequest, Store};
use saas_store_postgres::{PgConfig, Placement, Routing};
use testkit::{pg, records};

/// The catalog database of this test: its own, so tenants living in "b" never
/// show up in the catalog other suites migrate.
const FIRST: &str = "saas_test_a";
const SECOND: &str = "saas_test_b";

#[tokio::test]
async fn tenants_in_a_second_database_are_provisioned_routed_and_deleted() {
    if !pg::available().await {
        return;
    }
    pg::ensure_database(FIRST).await;
    pg::ensure_database(SECOND).await;
    for routing in [
        Routing::QualifiedSql,
        Routing::QualifiedUnnamed,
        Routing::QualifiedPrepared,
        Routing::SetLocalSearchPath,
    ] {
        let config = PgConfig::new(pg::url_for(FIRST))
            .with_database("b", pg::url_for(SECOND))
            .with_placement(Placement::Database("b".to_owned()))
            .with_routing(routing);
        let Some(store) = pg::store_with(config).await else {
            return;
        };
        let (tenant, admin) = records::tenant(&store).await;
        assert_eq!(tenant.database, "b");
        assert_eq!(
            store
                .tenant(tenant.id)
                .await
                .expect("catalog")
                .map(|t| t.database),
            Some("b".to_owned())
        );
        assert!(pg::schema_exists(&pg::url_for(SECOND), &tenant.slug).await);
        assert!(!pg::schema_exists(&pg::url_for(FIRST), &tenant.slug).await);

        let t = store.open(&tenant).await.expect("open");
        assert_eq!(
            t.user(admin.id).await.expect("user").map(|u| u.username),
            Some(admin.username.clone())
        );
        assert_eq!(
            t.list_projects(Scope::All, PageRequest::first())
                .await
                .expect("list")
                .count,
            0
        );

        // Conflicts are still caught by the catalog, and leave nothing in either database.
        let mut dup = records::new_tenant();
        dup.domain = store.domains(tenant.id).await.expect("domains")[0]
            .hostname
            .clone();
        let err = store
            .create_tenant(
                &dup,
                &records::user_record("admin", saas_core::users::Role::Admin),
            )
            .await;
        assert!(
            matches!(
                err,
                Err(Error::Conflict {
                    entity: Entity::Domain,
                    ..
                })
            ),
            "{err:?}"
        );
        assert!(!pg::schema_exists(&pg::url_for(SECOND), &dup.slug).await);
        assert!(!pg::schema_exists(&pg::url_for(FIRST), &dup.slug).await);

        let report = store.migrate(&|_| {}).await.expect("migrate");
        assert!(
            report
                .failed
                .iter()
                .all(|(slug, _)| slug != tenant.slug.as_str())
        );

        store.purge_tenant(tenant.id, None).await.expect("delete");
        assert!(!pg::schema_exists(&pg::url_for(SECOND), &tenant.slug).await);
        assert!(matches!(
            store.open(&tenant).await,
            Err(Error::NotFound {
                entity: Entity::Tenant
            })
        ));
    }
}

#[tokio::test]
async fn fewest_tenants_alternates_between_fresh_databases() {
    if !pg::available().await {
        return;
    }
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (one, two) = (
        format!("saas_place_a_{}", &suffix[..12]),
        format!("saas_place_b_{}", &suffix[..12]),
    );
    pg::ensure_database(&one).await;
    pg::ensure_database(&two).await;
    let config = PgConfig::new(pg::url_for(&one))
        .with_database("two", pg::url_for(&two))
        .with_placement(Placement::FewestTenants);
    let store = saas_store_postgres::PgStore::connect(config)
        .await
        .expect("connect");
    let mut placed = Vec::new();
    for _ in 0..4 {
        let (tenant, _) = records::tenant(&store).await;
        let handle = store.open(&tenant).await.expect("open");
        assert_eq!(handle.count_users().await.expect("count"), 1);
        placed.push(tenant.database);
    }
    assert_eq!(placed, ["default", "two", "default", "two"]);
    drop(store);
    pg::drop_database(&one).await;
    pg::drop_database(&two).await;
}
