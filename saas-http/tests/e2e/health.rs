//! The health checks: `/healthz` answers without storage, `/readyz` looks
//! at the store, the queue and the migrations, both on any host.

use reqwest::Method;
use saas_http::HttpConfig;
use testkit::server::{Backend, TestApp};

/// Alive and ready on a fresh server, on whatever host a probe sends;
/// without a job queue the queue is reported absent, not failing.
pub async fn health_checks(backend: Backend) {
    let config = HttpConfig {
        allowed_hosts: vec!["api.example.test".into()],
        ..HttpConfig::default()
    };
    let Some(app) = TestApp::start_with(backend, config.clone()).await else {
        return;
    };
    // A probe calls the pod by address: the allowed-hosts check lets it in.
    let alive = app
        .call(Method::GET, "/healthz", Some("10.1.2.3:8000"), None, None)
        .await
        .expect(200);
    assert_eq!(alive, serde_json::json!({"status": "alive"}));
    let ready = app
        .call(Method::GET, "/readyz", Some("10.1.2.3:8000"), None, None)
        .await
        .expect(200);
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["store"], "ok");
    assert_eq!(ready["queue"], "ok");
    assert_eq!(ready["migrations"], "current");
    assert_eq!(ready["pending_migrations"], 0);
    // The rest of the API still refuses that host.
    app.call(
        Method::GET,
        "/api/health/",
        Some("10.1.2.3:8000"),
        None,
        None,
    )
    .await
    .expect_error(400, "disallowed_host");

    let Some(bare) = TestApp::start_opts(backend, HttpConfig::default(), false).await else {
        return;
    };
    let ready = bare
        .call(Method::GET, "/readyz", Some("anything"), None, None)
        .await
        .expect(200);
    assert_eq!(ready["queue"], "absent", "{ready}");
    assert_eq!(ready["status"], "ready");
}
