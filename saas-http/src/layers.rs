//! Middleware: error rendering, the allowed-hosts check and load
//! shedding of connections past the server's cap.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorFormat, ErrorReport};
use crate::server::Overloaded;
use crate::state::AppState;

/// Writes every error response in the configured format
/// ([`crate::HttpConfig::error_format`]), including those produced by
/// layers and the router itself (405, timeouts, body limits), which come
/// without a body of ours.
pub(crate) async fn render_errors(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let format = state.config().error_format;
    let report = match response.extensions().get::<ErrorReport>() {
        // Already in our shape, which is what was asked for.
        Some(_) if format == ErrorFormat::Native => return response,
        Some(report) => report.clone(),
        None => {
            let is_json = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("application/json"));
            let is_html = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("text/html"));
            if is_json || is_html {
                // A body of its own (the health check's 503, a console page).
                return response;
            }
            let error = if status == StatusCode::METHOD_NOT_ALLOWED {
                ApiError::method_not_allowed(method.as_str())
            } else {
                ApiError::from_status(status)
            };
            let mut fresh = error.into_response();
            let Some(report) = fresh.extensions_mut().remove::<ErrorReport>() else {
                return fresh;
            };
            report
        }
    };
    let mut new = report.render(format);
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
            && !new.headers().contains_key(name)
        {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    new
}

/// Answers 503 `overloaded` on a connection accepted past the server's
/// cap ([`crate::ServerLimits::max_connections`]): the client learns to
/// come back rather than waiting on a socket nobody serves.
pub(crate) async fn shed_overloaded(request: Request, next: Next) -> Response {
    if request.extensions().get::<Overloaded>().is_some() {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the server has too many connections; try again shortly",
        );
        e = e.with_retry_after(std::time::Duration::from_secs(1));
        return e.into_response();
    }
    next.run(request).await
}

/// The host part of a Host header value, lowercased (port and IPv6
/// brackets handled).
fn host_only(value: &str) -> String {
    let v = value.trim();
    let host = if let Some(rest) = v.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        match v.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => v,
        }
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Django's `ALLOWED_HOSTS` matching: `*`, `.example.com` / `*.example.com`
/// (the domain and its subdomains), or an exact host.
pub(crate) fn host_allowed(patterns: &[String], host_header: &str) -> bool {
    if patterns.is_empty() {
        return true;
    }
    let host = host_only(host_header);
    patterns.iter().any(|p| {
        let p = p.trim().to_ascii_lowercase();
        if p == "*" {
            return true;
        }
        let p = p
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .unwrap_or(&p);
        match p.strip_prefix("*.").or_else(|| p.strip_prefix('.')) {
            Some(domain) => {
                host == domain
                    || host
                        .strip_suffix(domain)
                        .is_some_and(|prefix| prefix.ends_with('.'))
            }
            None => host == p,
        }
    })
}

/// Paths served whatever the Host header says: the health checks and the
/// metrics, which probes and scrapers call by address.
const ANY_HOST: [&str; 3] = ["/healthz", "/readyz", crate::metrics::PATH];

/// Refuses requests for hosts not in [`crate::HttpConfig::allowed_hosts`] (400).
pub(crate) async fn check_host(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let patterns = &state.config().allowed_hosts;
    // Probes and scrapers call these by address, whatever the host.
    let exempt = ANY_HOST.contains(&request.uri().path());
    if !patterns.is_empty() && !exempt {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .or_else(|| request.uri().authority().map(|a| a.to_string()))
            .unwrap_or_default();
        if !host_allowed(patterns, &host) {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "disallowed_host",
                "this host is not served here",
            )
            .into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_hosts() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(host_allowed(&[], "anything"));
        assert!(host_allowed(&p(&["*"]), "x.y"));
        let list = p(&[".example.com", "api.other.org", "[::1]"]);
        assert!(host_allowed(&list, "example.com"));
        assert!(host_allowed(&list, "acme.example.com:8000"));
        assert!(host_allowed(&list, "API.other.org"));
        assert!(host_allowed(&list, "[::1]:8000"));
        assert!(!host_allowed(&list, "evilexample.com"));
        assert!(!host_allowed(&list, "other.org"));
        assert!(host_allowed(&p(&["*.localhost"]), "acme.localhost:8000"));
    }
}
