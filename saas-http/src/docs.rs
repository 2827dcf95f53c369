//! `GET /api/docs`: the OpenAPI document rendered in a browser by Swagger
//! UI, whose files are compiled into the binary (vendored from npm
//! `swagger-ui-dist` 5.35.0 under `assets/swagger-ui/`, with its license).
//! The page loads nothing but these files and `/api/openapi.json`: it
//! works offline, and the validator badge (which would call
//! validator.swagger.io) is off.

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;

use crate::state::AppState;

/// The vendored Swagger UI version.
pub const SWAGGER_UI_VERSION: &str = "5.35.0";

const BUNDLE: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js");
const CSS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui.css");
const FAVICON: &[u8] = include_bytes!("../assets/swagger-ui/favicon-32x32.png");
const LICENSE: &[u8] = include_bytes!("../assets/swagger-ui/LICENSE");

/// The page: Swagger UI over the document, nothing from elsewhere.
const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>saas API</title>
  <link rel="icon" type="image/png" href="/api/docs/favicon-32x32.png">
  <link rel="stylesheet" href="/api/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/api/docs/swagger-ui-bundle.js"></script>
  <script src="/api/docs/start.js"></script>
</body>
</html>
"#;

/// Starts Swagger UI on the document (a file, not inline script, so a
/// strict Content-Security-Policy can allow 'self' only).
const START: &str = r##"window.ui = SwaggerUIBundle({
  url: "/api/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
});
"##;

/// A header value that keeps the vendored files cached for a day.
const CACHE: &str = "public, max-age=86400";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/docs", get(|| async { Html(PAGE) }))
        .route("/api/docs/", get(|| async { Html(PAGE) }))
        .route(
            "/api/docs/start.js",
            get(|| async { asset("text/javascript", START.as_bytes()) }),
        )
        .route(
            "/api/docs/swagger-ui-bundle.js",
            get(|| async { asset("text/javascript", BUNDLE) }),
        )
        .route(
            "/api/docs/swagger-ui.css",
            get(|| async { asset("text/css", CSS) }),
        )
        .route(
            "/api/docs/favicon-32x32.png",
            get(|| async { asset("image/png", FAVICON) }),
        )
        .route(
            "/api/docs/LICENSE",
            get(|| async { asset("text/plain; charset=utf-8", LICENSE) }),
        )
}

fn asset(content_type: &'static str, body: &'static [u8]) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, CACHE),
        ],
        body,
    )
}
