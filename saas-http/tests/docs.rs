//! `/api/docs` in a real browser (headless Chromium, offline): the page
//! renders every path of the OpenAPI document from the files compiled into
//! the binary. Skipped when Chromium is not installed, unless
//! `SAAS_REQUIRE_BROWSER=1`. The screenshot is `target/screenshots/api-docs.png`.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use testkit::browser::Browser;
use testkit::server::{Backend, TestApp};

/// Runs `script` in the page (`return …;` gives its value).
async fn eval(browser: &Browser, script: &str) -> Value {
    browser
        .client()
        .execute(script, Vec::new())
        .await
        .expect("the script runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_shows_every_path_of_the_document_offline() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let Some(app) = TestApp::start(Backend::Sqlite).await else {
        return;
    };
    let doc = app
        .call(
            Method::GET,
            "/api/openapi.json",
            Some("localhost"),
            None,
            None,
        )
        .await
        .expect(200);
    let paths: BTreeSet<String> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .cloned()
        .collect();
    let operations: usize = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|item| item.as_object().map_or(0, |o| o.len()))
        .sum();

    browser
        .goto(&format!("http://localhost:{}/api/docs", app.addr.port()))
        .await;
    let count = "return document.querySelectorAll('.opblock').length;";
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut rendered = false;
    while !rendered && std::time::Instant::now() < deadline {
        rendered = eval(&browser, count).await == operations;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shot = browser.screenshot("api-docs").await;
    assert!(
        rendered,
        "Swagger UI did not render the {operations} operations (see {})",
        shot.display()
    );
    let shown = eval(
        &browser,
        "return Array.from(document.querySelectorAll('.opblock-summary-path'))\
             .map(e => e.getAttribute('data-path'));",
    )
    .await;
    let shown: BTreeSet<String> = shown
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    assert_eq!(shown, paths, "every path of the document, and no other");
    let title = eval(
        &browser,
        "return document.querySelector('.title').textContent;",
    )
    .await;
    assert!(
        title.as_str().is_some_and(|t| t.contains("saas")),
        "the document's title is shown: {title}"
    );
    browser.close().await;
}
