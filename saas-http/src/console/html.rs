//! The console's page frame and the pieces pages share: usage bars, charts
//! drawn as SVG on the server, forms carrying the CSRF token.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::sessions::ConsoleSession;

/// The stylesheet, embedded in the binary.
pub(crate) const CSS: &str = include_str!("console.css");
/// Its path: the crate version in it, so a new release is a new URL and
/// browsers may keep it for a year.
pub(crate) const CSS_PATH: &str = concat!(
    "/console/assets/console-",
    env!("CARGO_PKG_VERSION"),
    ".css"
);

/// Which console a page belongs to, for its navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Area {
    /// The sign-in page: no navigation.
    SignIn,
    /// The platform console.
    Platform,
    /// A tenant's console.
    Tenant,
}

/// A whole page: `title`, the navigation of `area`, the flash message and
/// `body`. Pages are never cached, and may not be framed.
pub(crate) fn page(
    area: Area,
    title: &str,
    session: Option<&ConsoleSession>,
    body: Markup,
) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Console" }
                link rel="stylesheet" href=(CSS_PATH);
            }
            body {
                header {
                    strong.brand { "saas console" }
                    @if area != Area::SignIn {
                        nav {
                            @match area {
                                Area::Platform => {
                                    a href="/console/tenants" { "Tenants" }
                                    a href="/console/jobs" { "Jobs" }
                                    a href="/console/audit" { "Audit log" }
                                }
                                _ => {
                                    a href="/console/dashboard" { "Dashboard" }
                                    a href="/console/users" { "Users" }
                                    a href="/console/projects" { "Projects" }
                                    a href="/console/tasks" { "Tasks" }
                                    a href="/console/audit" { "Audit trail" }
                                }
                            }
                        }
                        @if let Some(s) = session {
                            form.signout method="post" action="/console/sign-out" {
                                (csrf(s))
                                button type="submit" id="sign-out" { "Sign out" }
                            }
                        }
                    }
                }
                main {
                    @if let Some(msg) = session.and_then(|s| s.flash.as_deref()) {
                        p.flash role="status" { (msg) }
                    }
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    html_response(StatusCode::OK, markup)
}

/// `markup` as an HTML response with `status`, uncached and unframeable.
pub(crate) fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut r = (status, markup).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    r
}

/// A small page saying what went wrong, with `status`.
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Console" } link rel="stylesheet" href=(CSS_PATH); }
            body { main { h1 { (status.canonical_reason().unwrap_or("Error")) } p { (message) } p { a href="/console/" { "Back to the console" } } } }
        }
    };
    html_response(status, markup)
}

/// The hidden field carrying the session's CSRF token.
pub(crate) fn csrf(session: &ConsoleSession) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A one-button form posting to `action`.
pub(crate) fn button(session: &ConsoleSession, action: &str, label: &str, id: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf(session))
            button type="submit" id=(id) { (label) }
        }
    }
}

/// `used` against `limit` as a bar (a `<meter>`, so no inline style is
/// needed under the pages' content security policy); at 80% or more it is
/// marked `near`.
pub(crate) fn usage_bar(used: u64, limit: Option<u64>) -> Markup {
    match limit {
        None => html! { span.usage { (used) " / ∞" } },
        Some(limit) => {
            let near = used.saturating_mul(10) >= limit.saturating_mul(8);
            let high = limit.saturating_mul(8) / 10;
            html! {
                span.usage.near[near] title={ (used) " of " (limit) } {
                    meter min="0" max=(limit) low=(high) high=(high) optimum="0" value=(used.min(limit)) {}
                    " " (used) " / " (limit)
                }
            }
        }
    }
}

/// Bars of `values` as an SVG chart, labels under each bar.
pub(crate) fn bar_chart(id: &str, values: &[(String, u64)]) -> Markup {
    let width = 640u64;
    let height = 160u64;
    let n = values.len().max(1) as u64;
    let max = values.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let slot = width / n;
    let bar = (slot * 7 / 10).max(1);
    html! {
        svg.chart id=(id) viewBox={ "0 0 " (width) " " (height + 30) } role="img" xmlns="http://www.w3.org/2000/svg" {
            @for (i, (label, v)) in values.iter().enumerate() {
                @let x = i as u64 * slot + (slot - bar) / 2;
                @let h = v * height / max;
                rect x=(x) y=(height - h) width=(bar) height=(h) { title { (label) ": " (v) } }
                text x=(x + bar / 2) y=(height + 14) text-anchor="middle" { (label) }
                text x=(x + bar / 2) y=(height + 27) text-anchor="middle" { (v) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_near_the_limit_stands_out() {
        let near = usage_bar(4, Some(5)).into_string();
        assert!(near.contains("usage near"), "{near}");
        assert!(
            near.contains("value=\"4\"") && near.contains("max=\"5\""),
            "{near}"
        );
        let far = usage_bar(1, Some(5)).into_string();
        assert!(!far.contains("near"), "{far}");
        let over = usage_bar(7, Some(5)).into_string();
        assert!(
            over.contains("usage near") && over.contains("value=\"5\""),
            "{over}"
        );
        assert!(usage_bar(3, None).into_string().contains("∞"));
    }

    #[test]
    fn charts_scale_bars_to_the_largest_value() {
        let svg =
            bar_chart("c", &[("a".into(), 10), ("b".into(), 5), ("c".into(), 0)]).into_string();
        assert!(
            svg.contains("height=\"160\""),
            "the largest bar is full height: {svg}"
        );
        assert!(
            svg.contains("height=\"80\""),
            "half the value, half the height: {svg}"
        );
        assert!(svg.contains("height=\"0\""), "{svg}");
    }
}
