//! DRF-style page-number pagination: `?page=` and `?page_size=` in,
//! `{"count", "next", "previous", "results"}` out, with absolute URLs.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use saas_core::store::{Page, PageRequest};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{QueryPairs, request_host};
use crate::models::rules;
use crate::state::AppState;

/// A paginated list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paginated<T> {
    /// Items on all pages.
    pub count: u64,
    /// Absolute URL of the next page, or null on the last.
    pub next: Option<String>,
    /// Absolute URL of the previous page, or null on the first.
    pub previous: Option<String>,
    /// This page's items.
    pub results: Vec<T>,
}

/// The `page` and `page_size` query parameters.
#[derive(Debug, Clone, Copy, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1-based page number (default 1); past the last page, 404.
    #[param(schema_with = rules::page)]
    pub page: Option<u64>,
    /// Items per page, 1 to 100 (default 20).
    #[param(schema_with = rules::page_size)]
    pub page_size: Option<u64>,
}

/// The requested page and what is needed to link its neighbours.
#[derive(Debug, Clone)]
pub struct Pagination {
    request: PageRequest,
    base: String,
    query: Vec<(String, String)>,
}

fn parse_u64(query: &QueryPairs, name: &str) -> Result<Option<u64>, ApiError> {
    match query.get(name) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ApiError::invalid_field(name, "must be a positive integer")),
    }
}

/// A host header value safe to echo into a URL; anything odd falls back to
/// `localhost` so a crafted header cannot smuggle text into links.
fn safe_host(host: Option<&str>) -> &str {
    match host {
        Some(h)
            if !h.is_empty()
                && h.len() <= 300
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b)) =>
        {
            h
        }
        _ => "localhost",
    }
}

/// Like our other extractors, usable in a host's router whose state gives
/// an [`AppState`] (`AppState: FromRef<S>`).
impl<S> FromRequestParts<S> for Pagination
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let query = QueryPairs::from_request_parts(parts, state).await?;
        let state = AppState::from_ref(state);
        let request =
            PageRequest::new(parse_u64(&query, "page")?, parse_u64(&query, "page_size")?)?;
        let scheme = if state.config().trust_forwarded_proto {
            match parts
                .headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
            {
                Some(p) if p.eq_ignore_ascii_case("https") => "https",
                _ => "http",
            }
        } else {
            "http"
        };
        let host = safe_host(request_host(parts));
        let base = format!("{scheme}://{host}{}", parts.uri.path());
        Ok(Pagination {
            request,
            base,
            query: query.0,
        })
    }
}

impl Pagination {
    /// The page to fetch.
    pub fn request(&self) -> PageRequest {
        self.request
    }

    fn link(&self, page: u64) -> String {
        let mut pairs: Vec<(&str, String)> = self
            .query
            .iter()
            .filter(|(k, _)| k != "page")
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        // DRF links the first page without `page=`.
        if page > 1 {
            pairs.push(("page", page.to_string()));
        }
        match serde_urlencoded::to_string(&pairs) {
            Ok(q) if !q.is_empty() => format!("{}?{q}", self.base),
            _ => self.base.clone(),
        }
    }

    /// Wraps one page of results. A page past the end (other than the first)
    /// is 404, as in DRF.
    pub fn respond<T, U>(
        &self,
        page: Page<T>,
        f: impl FnMut(T) -> U,
    ) -> Result<Paginated<U>, ApiError> {
        let r = self.request;
        if r.page() > 1 && page.items.is_empty() && r.offset() >= page.count {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "invalid page",
            ));
        }
        let next = (r.offset() + r.page_size() < page.count).then(|| self.link(r.page() + 1));
        let previous = (r.page() > 1).then(|| self.link(r.page() - 1));
        Ok(Paginated {
            count: page.count,
            next,
            previous,
            results: page.items.into_iter().map(f).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pagination(page: u64, size: u64, query: &[(&str, &str)]) -> Pagination {
        Pagination {
            request: PageRequest::new(Some(page), Some(size)).unwrap(),
            base: "http://acme.localhost:8000/api/tasks/".into(),
            query: query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn links() {
        let p = pagination(
            2,
            2,
            &[("status", "todo"), ("page", "2"), ("page_size", "2")],
        );
        let out = p
            .respond(
                Page {
                    count: 5,
                    items: vec![1, 2],
                },
                |x| x,
            )
            .unwrap();
        assert_eq!(
            out.next.as_deref(),
            Some("http://acme.localhost:8000/api/tasks/?status=todo&page_size=2&page=3")
        );
        assert_eq!(
            out.previous.as_deref(),
            Some("http://acme.localhost:8000/api/tasks/?status=todo&page_size=2")
        );
        let last = pagination(3, 2, &[])
            .respond(
                Page {
                    count: 5,
                    items: vec![5],
                },
                |x| x,
            )
            .unwrap();
        assert_eq!(last.next, None);
        let past = pagination(4, 2, &[]).respond(
            Page::<i32> {
                count: 5,
                items: vec![],
            },
            |x| x,
        );
        assert!(past.is_err());
        let empty = pagination(1, 2, &[])
            .respond(
                Page::<i32> {
                    count: 0,
                    items: vec![],
                },
                |x| x,
            )
            .unwrap();
        assert_eq!((empty.next, empty.previous), (None, None));
    }

    #[test]
    fn hosts_are_sanitized() {
        assert_eq!(
            safe_host(Some("acme.localhost:8000")),
            "acme.localhost:8000"
        );
        assert_eq!(safe_host(Some("evil/<x>")), "localhost");
        assert_eq!(safe_host(None), "localhost");
    }
}
