//! The console in a real headless Chromium, driven over WebDriver, on the
//! real server; each page visited is saved under `target/screenshots/`.

use testkit::browser::Browser;
use testkit::server::{Backend, PASSWORD};

use crate::{PLATFORM, audited, start, superuser};

fn shot(backend: Backend, name: &str) -> String {
    format!("console-{}-{name}", format!("{backend:?}").to_lowercase())
}

/// An operator signs in, finds a tenant by search, changes its plan,
/// suspends and reactivates it, adds a domain, deletes it, finds it among
/// the deleted tenants and restores it, and sees it all in the audit log.
pub(crate) async fn operator_works_a_tenant_in_a_browser(backend: Backend) {
    let Some(app) = start(backend).await else {
        return;
    };
    let t = app.tenant("free").await;
    let _other = app.tenant("free").await;
    let name = superuser(&app).await;
    let Some(b) = Browser::start().await else {
        return;
    };
    let base = format!("http://{PLATFORM}:{}", app.addr.port());

    b.goto(&format!("{base}/console/")).await;
    b.fill("#username", &name).await;
    b.fill("#password", PASSWORD).await;
    b.screenshot(&shot(backend, "platform-sign-in")).await;
    b.click("#sign-in").await;
    b.find("table#tenants").await;
    b.screenshot(&shot(backend, "platform-tenants")).await;

    b.fill("#search", &t.slug).await;
    b.click("#search-button").await;
    b.find("table#tenants").await;
    assert!(b.url().await.contains("q="), "searched");
    let rows = b
        .client()
        .find_all(fantoccini::Locator::Css("table#tenants tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "the search finds exactly the tenant");
    b.screenshot(&shot(backend, "platform-search")).await;
    b.click("table#tenants tbody a").await;
    b.find("#change-plan").await;

    b.select("#plan-select", "basic").await;
    b.click("#change-plan").await;
    assert!(b.text().await.contains("Plan changed."));
    assert_eq!(b.find("#plan").await.text().await.unwrap(), "basic");

    b.click("#suspend").await;
    assert_eq!(b.find("#status").await.text().await.unwrap(), "suspended");
    b.click("#reactivate").await;
    assert_eq!(b.find("#status").await.text().await.unwrap(), "active");

    let extra = format!("extra-{}.example.test", &t.slug[2..14]);
    b.fill("#new-domain", &extra).await;
    b.click("#add-domain").await;
    assert!(
        b.find("table#domains")
            .await
            .text()
            .await
            .unwrap()
            .contains(&extra)
    );
    b.screenshot(&shot(backend, "platform-tenant")).await;
    let tenant = app
        .saas
        .resolve_host(&extra)
        .await
        .expect("the new domain routes");
    assert_eq!(tenant.id.to_string(), t.id);
    assert_eq!(tenant.plan, "basic");

    // Deleted, found among the deleted tenants, and restored.
    b.fill("#confirm-slug", &t.slug).await;
    b.click("#delete").await;
    assert!(b.text().await.contains("it can be restored"));
    b.select("#status-filter", "deleted").await;
    b.fill("#search", &t.slug).await;
    b.click("#search-button").await;
    b.click("table#tenants tbody a").await;
    let when = b.find("#deleted-at").await.text().await.unwrap();
    assert!(when.starts_with("Deleted "), "{when}");
    assert_eq!(b.find("#status").await.text().await.unwrap(), "deleted");
    b.screenshot(&shot(backend, "platform-deleted-tenant"))
        .await;
    b.click("#restore").await;
    assert!(b.text().await.contains("Tenant restored."));
    assert_eq!(b.find("#status").await.text().await.unwrap(), "active");

    // A dead job, retried from the jobs page.
    let queue = app
        .jobs
        .as_ref()
        .expect("the app runs jobs")
        .queue()
        .clone();
    let kind = testkit::jobs::fresh_kind("console");
    let now = testkit::records::now();
    let job = saas_core::jobs::NewJob::new(&kind, serde_json::json!({})).max_attempts(1);
    let id = queue.enqueue(&job, now).await.unwrap().id;
    let leased = queue
        .claim(&testkit::jobs::request("w", &kind, 1), now)
        .await
        .unwrap();
    assert_eq!(leased.len(), 1);
    queue
        .fail(id, 1, "boom: the console test's failure", None, now)
        .await
        .unwrap();
    b.goto(&format!("{base}/console/jobs")).await;
    let dead = b.find("table#dead-jobs").await.text().await.unwrap();
    assert!(dead.contains("boom: the console test's failure"), "{dead}");
    b.screenshot(&shot(backend, "platform-jobs")).await;
    b.click(&format!("#retry-{}", id.0)).await;
    assert!(b.text().await.contains("Job queued again."));
    let retried = queue.job(id).await.unwrap().expect("the job");
    assert_ne!(retried.status, saas_core::jobs::JobStatus::Dead);
    assert!(
        !audited(&app, "job.retry", &format!("job {}", id.0))
            .await
            .is_empty(),
        "the retry is audited"
    );

    b.goto(&format!("{base}/console/audit?tenant={}", t.id))
        .await;
    let log = b.find("table#audit").await.text().await.unwrap();
    for action in [
        "tenant.plan",
        "tenant.suspend",
        "tenant.reactivate",
        "domain.add",
        "tenant.delete",
        "tenant.restore",
    ] {
        assert!(log.contains(action), "{action} in {log}");
    }
    b.screenshot(&shot(backend, "platform-audit")).await;
    b.close().await;
}

/// A tenant admin signs in, deactivates a user, and cannot open another
/// tenant's console or the platform console.
pub(crate) async fn tenant_admin_works_users_in_a_browser(backend: Backend) {
    let Some(app) = start(backend).await else {
        return;
    };
    let a = app.tenant("free").await;
    let other = app.tenant("free").await;
    app.user(&a, "mem", "member").await;
    let Some(b) = Browser::start().await else {
        return;
    };

    b.goto(&format!("http://{}/console/", a.host)).await;
    b.fill("#username", "admin").await;
    b.fill("#password", PASSWORD).await;
    b.click("#sign-in").await;
    b.find("svg#tasks-by-status").await;
    b.screenshot(&shot(backend, "tenant-dashboard")).await;

    b.goto(&format!("http://{}/console/users", a.host)).await;
    assert_eq!(
        b.find("#user-mem td.active").await.text().await.unwrap(),
        "yes"
    );
    b.click("#deactivate-mem").await;
    assert!(b.text().await.contains("User updated."));
    assert_eq!(
        b.find("#user-mem td.active").await.text().await.unwrap(),
        "no"
    );
    b.screenshot(&shot(backend, "tenant-users")).await;

    b.goto(&format!("http://{}/console/users", other.host))
        .await;
    b.find("#sign-in").await;
    assert!(
        !b.has("table#users").await,
        "another tenant's users are not shown"
    );
    b.screenshot(&shot(backend, "tenant-other-tenant")).await;

    b.goto(&format!(
        "http://{PLATFORM}:{}/console/tenants",
        app.addr.port()
    ))
    .await;
    b.find("#sign-in").await;
    assert!(
        !b.has("table#tenants").await,
        "no platform console for a tenant admin"
    );
    b.screenshot(&shot(backend, "tenant-platform-refused"))
        .await;

    b.goto(&format!("http://{}/console/audit", a.host)).await;
    let trail = b.find("table#audit").await.text().await.unwrap();
    assert!(
        trail.contains("user.update") && trail.contains("console.sign-in"),
        "{trail}"
    );
    b.close().await;
}
