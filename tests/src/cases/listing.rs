//! The operator's tenant search: text against names, slugs and hostnames,
//! plan and status filters, orders, counts and pages.

use saas_core::commands::Registration;
use saas_core::store::PageRequest;
use saas_core::tenancy::{TenantId, TenantStatus};
use saas_core::tenant_query::{TenantQuery, TenantSort};

use crate::Fixture;
use crate::harness::{PASSWORD, saas};
use crate::records::unique;

fn ids(page: &saas_core::store::Page<saas_core::tenancy::Tenant>) -> Vec<TenantId> {
    page.items.iter().map(|t| t.id).collect()
}

/// Search matches name, slug or hostname ignoring case, filters narrow it,
/// orders and pages are as asked, and counts count every match.
pub async fn tenant_search_filters_sorts_and_pages(f: &dyn Fixture) {
    let saas = saas(f.store());
    let op = saas.operator_unchecked();
    let mark = &unique("m")[1..13];
    let mut made = Vec::new();
    for (i, (name, plan)) in [
        ("Zeta Corp", "basic"),
        ("alpha Inc", "free"),
        ("Mid Ltd", "basic"),
    ]
    .into_iter()
    .enumerate()
    {
        let slug = format!("s{mark}{i}");
        let (t, _) = saas
            .register(Registration {
                company_name: format!("{name} {}", mark.to_uppercase()),
                schema_name: slug.clone(),
                domain_url: format!("{slug}.search.test"),
                admin_username: "admin".to_owned(),
                admin_email: "admin@example.com".to_owned(),
                admin_password: PASSWORD.to_owned(),
                subscription_plan: Some(plan.to_owned()),
            })
            .await
            .expect("registration");
        made.push(t);
    }
    // Only a hostname carries this one's mark.
    let other = crate::harness::World::register(&saas, None).await;
    let host = format!("shop-{mark}.example.com");
    op.add_domain(other.tenant.id, &host, false).await.unwrap();
    op.suspend(made[2].id).await.unwrap();

    let store = saas.store();
    let all = PageRequest::new(Some(1), Some(100)).unwrap();
    let by_mark = TenantQuery::all().search(mark).unwrap();
    let found = store.search_tenants(&by_mark, all).await.unwrap();
    assert_eq!(found.count, 4);
    let mut expected = vec![made[0].id, made[1].id, made[2].id, other.tenant.id];
    expected.sort_by_key(|id| {
        [&made[..], std::slice::from_ref(&other.tenant)]
            .concat()
            .into_iter()
            .find(|t| t.id == *id)
            .map(|t| (t.created_at, t.id))
    });
    assert_eq!(ids(&found), expected, "oldest first by default");

    let upper = TenantQuery::all().search(&mark.to_uppercase()).unwrap();
    assert_eq!(
        store.search_tenants(&upper, all).await.unwrap().count,
        4,
        "case is ignored"
    );
    let by_host = TenantQuery::all().search(&format!("shop-{mark}")).unwrap();
    assert_eq!(
        ids(&store.search_tenants(&by_host, all).await.unwrap()),
        vec![other.tenant.id]
    );
    let by_slug = TenantQuery::all().search(&format!("s{mark}1")).unwrap();
    assert_eq!(
        ids(&store.search_tenants(&by_slug, all).await.unwrap()),
        vec![made[1].id]
    );
    let wildcard = TenantQuery::all().search(&format!("{mark}%")).unwrap();
    assert_eq!(
        store.search_tenants(&wildcard, all).await.unwrap().count,
        0,
        "% is literal"
    );

    let mut basic = by_mark.clone();
    basic.plan = Some("basic".to_owned());
    assert_eq!(
        ids(&store.search_tenants(&basic, all).await.unwrap()),
        vec![made[0].id, made[2].id]
    );
    let mut suspended_basic = basic.clone();
    suspended_basic.status = Some(TenantStatus::Suspended);
    assert_eq!(
        ids(&store.search_tenants(&suspended_basic, all).await.unwrap()),
        vec![made[2].id]
    );

    let mut by_name = TenantQuery::all().search(&format!("s{mark}")).unwrap();
    by_name.sort = TenantSort::Name;
    assert_eq!(
        ids(&store.search_tenants(&by_name, all).await.unwrap()),
        vec![made[2].id, made[0].id, made[1].id],
        "bytes order: uppercase first"
    );
    by_name.descending = true;
    let page1 = PageRequest::new(Some(1), Some(2)).unwrap();
    let page2 = PageRequest::new(Some(2), Some(2)).unwrap();
    let p1 = store.search_tenants(&by_name, page1).await.unwrap();
    let p2 = store.search_tenants(&by_name, page2).await.unwrap();
    assert_eq!((p1.count, p2.count), (3, 3));
    assert_eq!(ids(&p1), vec![made[1].id, made[0].id]);
    assert_eq!(ids(&p2), vec![made[2].id]);

    let mut by_status = by_mark.clone();
    by_status.sort = TenantSort::Status;
    by_status.descending = true;
    let first = store.search_tenants(&by_status, all).await.unwrap();
    assert_eq!(
        first.items[0].id, made[2].id,
        "suspended sorts after active"
    );

    let overview = op.search_tenants(&by_host, all).await.unwrap();
    assert_eq!(overview.count, 1);
    assert_eq!(overview.items[0].tenant.id, other.tenant.id);
    assert_eq!(overview.items[0].users.used, 1);
}
