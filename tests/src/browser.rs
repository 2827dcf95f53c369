//! A real browser for end-to-end tests: Debian's headless Chromium driven
//! over WebDriver (`fantoccini`) through a `chromedriver` of the test's own
//! on a free port.
//!
//! [`Browser::start`] returns `None`, after saying why, when Chromium or
//! its driver is not installed, unless `SAAS_REQUIRE_BROWSER=1` (CI), which
//! makes that a failure. Every hostname resolves to 127.0.0.1 in it, so
//! tests reach tenants' made-up domains on the test server's port.
//! [`Browser::screenshot`] saves the page as a PNG
//! under `target/screenshots/` (or `$CARGO_TARGET_DIR/screenshots/`).
//!
//! ```ignore
//! let Some(browser) = testkit::browser::Browser::start().await else { return };
//! browser.goto("http://127.0.0.1:8000/console/").await;
//! browser.screenshot("console-sign-in").await;
//! browser.close().await;
//! ```

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::process::{Child, Command};

/// The Chromium binary (Debian's `chromium` package), unless
/// `SAAS_CHROMIUM` names another.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Its WebDriver (Debian's `chromium-driver`), unless `SAAS_CHROMEDRIVER`
/// names another.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Whether a missing browser fails the test instead of skipping it.
pub fn browser_required() -> bool {
    std::env::var("SAAS_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

fn binary(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// Where screenshots go: `screenshots/` in the workspace's target directory.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    target.join("screenshots")
}

/// A headless Chromium session and the chromedriver serving it; the
/// driver (and with it the browser) is killed when this is dropped.
pub struct Browser {
    client: Client,
    _driver: Child,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser").finish_non_exhaustive()
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium, or says why not and
    /// returns `None` (a failure under `SAAS_REQUIRE_BROWSER=1`).
    pub async fn start() -> Option<Browser> {
        let chromium = binary("SAAS_CHROMIUM", CHROMIUM);
        let driver = binary("SAAS_CHROMEDRIVER", CHROMEDRIVER);
        for path in [&chromium, &driver] {
            if !path.exists() {
                let why = format!(
                    "{} is not installed (Debian: apt-get install chromium chromium-driver)",
                    path.display()
                );
                assert!(!browser_required(), "SAAS_REQUIRE_BROWSER=1 but {why}");
                eprintln!("browser unavailable, skipping: {why}");
                return None;
            }
        }
        let port = crate::program::free_port();
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", driver.display()));
        let url = format!("http://127.0.0.1:{port}");
        let caps = json!({
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--window-size=1280,900",
                    // Every hostname is this machine: tests give tenants
                    // made-up domains and serve them on a local port.
                    "--host-resolver-rules=MAP * 127.0.0.1",
                ],
            }
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!("an object literal")
        };
        let mut last = None;
        for _ in 0..100 {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Some(Browser {
                        client,
                        _driver: child,
                    });
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver on port {port} never opened a session: {last:?}");
    }

    /// The WebDriver client, for what the helpers below do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// The element `css` selects, waiting up to five seconds for it.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(5))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css:?}: {e}"))
    }

    /// Whether an element `css` selects is on the page now.
    pub async fn has(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_default()
            .is_empty()
    }

    /// Clears the field `css` selects and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("the field clears");
        field.send_keys(text).await.expect("the field takes keys");
    }

    /// Clicks the element `css` selects and waits (up to ten seconds) for
    /// the page it leads to: until the page it was clicked on is gone.
    /// For clicks that navigate (links, form buttons).
    pub async fn click(&self, css: &str) {
        let before = self.find("html").await;
        self.find(css).await.click().await.expect("it clicks");
        for _ in 0..200 {
            // A stale element: the document it belonged to was replaced.
            if before.tag_name().await.is_err() {
                self.find("body").await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("clicking {css:?} led nowhere");
    }

    /// Chooses the option whose value is `value` in the select `css` selects.
    pub async fn select(&self, css: &str, value: &str) {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("no option {value:?} in {css:?}: {e}"));
    }

    /// The text of the page's body.
    pub async fn text(&self) -> String {
        self.find("body")
            .await
            .text()
            .await
            .expect("the body has text")
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("a current url")
            .to_string()
    }

    /// A cookie's value, if the browser holds it for the current page.
    pub async fn cookie(&self, name: &str) -> Option<String> {
        self.client
            .get_named_cookie(name)
            .await
            .ok()
            .map(|c| c.value().to_owned())
    }

    /// Saves the page as `<screenshot_dir>/<name>.png`; returns the path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("the screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("the screenshot is written");
        path
    }

    /// Ends the browser session, then the driver.
    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
