//! The audit log: entries round-trip, list newest first with filters and
//! keyset pages, get distinct increasing ids under concurrency, and every
//! operator action is recorded with its actor and client.

use futures::future::join_all;
use saas_core::audit::{AuditEntry, AuditQuery, NewAuditEntry};
use saas_core::store::Store;
use saas_core::tenancy::TenantId;
use uuid::Uuid;

use crate::Fixture;
use crate::harness::{World, saas};
use crate::records::{now, unique};

fn entry(actor: &str, tenant: Option<TenantId>, action: &str) -> NewAuditEntry {
    NewAuditEntry::new(
        actor,
        tenant,
        action,
        "tenant acme",
        "plan → pro «détail»",
        Some("203.0.113.9"),
        now(),
    )
}

fn query(limit: u64) -> AuditQuery {
    AuditQuery::new(Some(limit)).expect("a valid limit")
}

/// Every entry of `q`, following its keyset pages.
async fn all_pages(store: &dyn Store, mut q: AuditQuery) -> Vec<AuditEntry> {
    let mut out = Vec::new();
    loop {
        let page = store.audit_log(&q).await.expect("audit_log");
        let full = page.len() as u64 == q.limit();
        let last = page.last().map(|e| e.id);
        out.extend(page);
        match (full, last) {
            (true, Some(id)) => q.before = Some(id),
            _ => return out,
        }
    }
}

/// Entries come back exactly as appended, newest first, filtered by actor,
/// tenant and action, and keyset pages cover them once each.
pub async fn audit_log_lists_newest_first_with_filters_and_pages(f: &dyn Fixture) {
    let store = f.store();
    let actor = unique("superuser:");
    let (t1, t2) = (TenantId(Uuid::now_v7()), TenantId(Uuid::now_v7()));
    let mut appended = Vec::new();
    for (tenant, action) in [
        (Some(t1), "tenant.plan"),
        (None, "tenant.create"),
        (Some(t2), "tenant.suspend"),
        (Some(t1), "domain.add"),
        (Some(t1), "tenant.plan"),
    ] {
        let e = entry(&actor, tenant, action);
        let stored = store.append_audit(&e).await.expect("append_audit");
        assert_eq!(stored, e.clone().with_id(stored.id), "returned as given");
        appended.push(stored);
    }
    let ids: Vec<i64> = appended.iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    let without_client = NewAuditEntry::new(&actor, None, "login", "", "", None, now());
    let bare = store.append_audit(&without_client).await.unwrap();
    assert_eq!(bare.client, None);
    appended.push(bare);

    let mut by_actor = query(200);
    by_actor.actor = Some(actor.clone());
    let listed = store.audit_log(&by_actor).await.unwrap();
    let newest_first: Vec<AuditEntry> = appended.iter().rev().cloned().collect();
    assert_eq!(listed, newest_first, "everything round-trips, newest first");

    let mut of_t1 = query(200);
    of_t1.tenant = Some(t1);
    let listed = store.audit_log(&of_t1).await.unwrap();
    assert_eq!(
        listed.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![ids[4], ids[3], ids[0]]
    );

    let mut plan_of_t1 = of_t1.clone();
    plan_of_t1.action = Some("tenant.plan".to_owned());
    let listed = store.audit_log(&plan_of_t1).await.unwrap();
    assert_eq!(
        listed.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![ids[4], ids[0]]
    );

    let mut paged = query(2);
    paged.actor = Some(actor.clone());
    let first = store.audit_log(&paged).await.unwrap();
    assert_eq!(first, newest_first[..2]);
    assert_eq!(all_pages(&*store, paged).await, newest_first);

    let mut nobody = query(10);
    nobody.actor = Some(unique("nobody:"));
    assert!(store.audit_log(&nobody).await.unwrap().is_empty());
}

/// Concurrent appends all land, each with its own id.
pub async fn concurrent_audit_appends_get_distinct_ids(f: &dyn Fixture) {
    let store = f.store();
    let actor = unique("racer:");
    let appends = (0..24).map(|i| {
        let store = store.clone();
        let e = entry(&actor, None, &format!("race.{i}"));
        tokio::spawn(async move { store.append_audit(&e).await })
    });
    let mut ids: Vec<i64> = join_all(appends)
        .await
        .into_iter()
        .map(|r| r.expect("no panic").expect("append_audit").id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 24, "distinct ids");
    let mut q = query(10);
    q.actor = Some(actor);
    let listed = all_pages(&*store, q).await;
    let mut listed_ids: Vec<i64> = listed.iter().map(|e| e.id).collect();
    assert!(listed_ids.windows(2).all(|w| w[0] > w[1]), "newest first");
    listed_ids.reverse();
    assert_eq!(listed_ids, ids);
}

/// Each operator action leaves one entry naming the superuser, the tenant,
/// the action and the client; failed actions leave none.
pub async fn operator_actions_are_audited(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, None).await;
    let name = unique("au");
    let su = saas
        .create_superuser(&name, "root@example.com", crate::harness::PASSWORD)
        .await
        .unwrap();
    let op = saas
        .operator_for(&su)
        .from_client(Some("198.51.100.7".to_owned()));
    let id = w.tenant.id;
    let host = format!("extra-{}.example.com", &unique("h")[1..12]);
    op.change_plan(id, "premium").await.unwrap();
    assert!(op.change_plan(id, "no-such-plan").await.is_err());
    op.suspend(id).await.unwrap();
    op.reactivate(id).await.unwrap();
    op.add_domain(id, &host, false).await.unwrap();
    op.remove_domain(id, &host).await.unwrap();
    op.delete_tenant(id).await.unwrap();
    assert!(op.suspend(id).await.is_err(), "gone");

    let mut q = query(50);
    q.tenant = Some(id);
    let page = op.audit_log(&q).await.unwrap();
    let actions: Vec<&str> = page.entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "tenant.delete",
            "domain.remove",
            "domain.add",
            "tenant.reactivate",
            "tenant.suspend",
            "tenant.plan",
        ]
    );
    assert_eq!(page.next, None);
    let target = format!("tenant {}", w.tenant.slug.as_str());
    for e in &page.entries {
        assert_eq!(e.actor, format!("superuser:{}", su.id));
        assert_eq!(e.client.as_deref(), Some("198.51.100.7"));
        assert_eq!(e.tenant, Some(id));
    }
    assert_eq!(page.entries[5].target, target);
    assert_eq!(page.entries[5].detail, "premium");
    assert_eq!(page.entries[2].target, host);
    assert_eq!(page.entries[0].target, target);
}
