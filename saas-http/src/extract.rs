//! Extractors whose every rejection is an [`ApiError`] in our JSON shape.
//!
//! Host applications adding their own routes to the router use the same
//! extractors: [`Auth`] gives a [`Session`] for the request's tenant and
//! bearer token, [`ApiJson`] a typed body.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{
    ConnectInfo, FromRef, FromRequest, FromRequestParts, OptionalFromRequestParts, Path, Request,
};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use saas_core::Session;
use saas_core::auth::TokenKind;
use saas_core::operator::Operator;
use saas_core::tenancy::Tenant;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON request body. Wrong content type → 415, too large → 413, malformed
/// JSON → 400 `malformed_json`, wrong types or values → 400 `invalid` with
/// the offending field's path in `fields`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

fn is_json(parts_ct: Option<&axum::http::HeaderValue>) -> bool {
    let Some(ct) = parts_ct.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = ct.split(';').next().unwrap_or("").trim();
    let Some((ty, sub)) = mime.split_once('/') else {
        return false;
    };
    ty.eq_ignore_ascii_case("application")
        && (sub.eq_ignore_ascii_case("json")
            || sub
                .rsplit_once('+')
                .is_some_and(|(_, suffix)| suffix.eq_ignore_ascii_case("json")))
}

/// Parses a JSON document into `T`, reporting failures in our shape.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => v,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            return Err(json_error(&path, &inner));
        }
    };
    de.end().map_err(|e| json_error(".", &e))?;
    Ok(value)
}

fn json_error(path: &str, e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => {
            let message = e.to_string();
            // serde reports a missing field at its parent's path; name the field itself.
            let field = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split_once('`'))
                .map(|(name, _)| {
                    if path == "." {
                        name.to_owned()
                    } else {
                        format!("{path}.{name}")
                    }
                })
                .unwrap_or_else(|| {
                    if path == "." {
                        "non_field_errors".to_owned()
                    } else {
                        path.to_owned()
                    }
                });
            let message = strip_position(&message);
            ApiError::invalid_field(field, message)
        }
        Category::Syntax | Category::Eof | Category::Io => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("malformed JSON body: {e}"),
        )
        .drf(format!("JSON parse error - {e}"), None),
    }
}

/// serde_json appends " at line L column C" to data errors; for a field error
/// the field name says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req.headers().get(header::CONTENT_TYPE);
        if !is_json(content_type) {
            let shown = content_type.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            return Err(ApiError::unsupported_media_type(shown.as_deref()));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::from_status(status)
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "the request body could not be read",
                )
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A path parameter (an id). Anything that is not a valid id is 404, as a
/// missing object would be.
#[derive(Debug, Clone, Copy)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        <Path<T> as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|_| ApiError::from_status(StatusCode::NOT_FOUND))
    }
}

/// The query string as `(name, value)` pairs, in order.
#[derive(Debug, Clone, Default)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    /// The last value given for `name` (as DRF's `query_params.get` does).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str::<Vec<(String, String)>>(q)
            .map(QueryPairs)
            .map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "malformed query string",
                )
            })
    }
}

/// The host a request was sent to: the `Host` header, or the URI's
/// authority (HTTP/2).
pub(crate) fn request_host(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
}

/// The request's tenant: from `X-Tenant: <slug>` when enabled and present,
/// else from the Host header (port ignored). Unknown, suspended and
/// malformed all answer 404 here; [`Auth`] and the token endpoints answer
/// them as a known tenant answers a bad token instead.
#[derive(Debug, Clone)]
pub struct CurrentTenant(pub Tenant);

/// Header naming the tenant by slug, when [`crate::HttpConfig::x_tenant`] is on.
pub const X_TENANT: &str = "x-tenant";

/// The name the request gives its tenant: the `X-Tenant` slug when enabled
/// and sent, else the Host header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TenantName<'a> {
    Slug(&'a str),
    Host(&'a str),
    Unreadable,
}

impl TenantName<'_> {
    /// A short text for the name, for throttle keys of tenants that do
    /// not resolve (cut, so a huge header cannot make a huge key).
    pub(crate) fn key(&self) -> String {
        let (kind, name) = match self {
            TenantName::Slug(s) => ("slug", *s),
            TenantName::Host(h) => ("host", *h),
            TenantName::Unreadable => ("none", ""),
        };
        let name: String = name.trim().chars().take(260).collect();
        format!("{kind}:{}", name.to_ascii_lowercase())
    }
}

pub(crate) fn tenant_name<'a>(parts: &'a Parts, state: &AppState) -> TenantName<'a> {
    match parts.headers.get(X_TENANT) {
        Some(v) if state.config().x_tenant => match v.to_str() {
            Ok(slug) => TenantName::Slug(slug.trim()),
            Err(_) => TenantName::Unreadable,
        },
        _ => match request_host(parts) {
            Some(host) => TenantName::Host(host),
            None => TenantName::Unreadable,
        },
    }
}

/// The active tenant the request names, `None` when no active tenant has
/// that name (unknown, suspended, malformed); backend failures are errors.
pub(crate) async fn resolve_tenant(
    parts: &mut Parts,
    state: &AppState,
) -> Result<Option<Tenant>, ApiError> {
    if let Some(CurrentTenant(t)) = parts.extensions.get::<CurrentTenant>() {
        return Ok(Some(t.clone()));
    }
    let saas = state.saas();
    let resolved = match tenant_name(parts, state) {
        TenantName::Slug(slug) => saas.resolve_slug(slug).await,
        TenantName::Host(host) => saas.resolve_host(host).await,
        TenantName::Unreadable => Err(saas_core::Error::not_found(saas_core::Entity::Tenant)),
    };
    match resolved {
        Ok(tenant) => {
            parts.extensions.insert(CurrentTenant(tenant.clone()));
            Ok(Some(tenant))
        }
        Err(saas_core::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl<S> FromRequestParts<S> for CurrentTenant
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        resolve_tenant(parts, &AppState::from_ref(state))
            .await?
            .map(CurrentTenant)
            .ok_or_else(|| ApiError::not_found("tenant"))
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(ApiError::credentials_missing)?;
    let value = value.to_str().map_err(|_| {
        ApiError::unauthenticated("malformed Authorization header")
            .drf("Authentication credentials were not provided.", None)
    })?;
    let expected = || {
        ApiError::unauthenticated("expected `Authorization: Bearer <token>`")
            .drf("Authentication credentials were not provided.", None)
    };
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(expected)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(expected());
    }
    Ok(token.trim())
}

/// An authenticated user of the request's tenant.
///
/// An unknown or suspended tenant answers exactly as a known tenant answers
/// the same token: 401, missing or invalid, so that no answer tells which
/// hosts are customers. The two paths cost the same, too: a known tenant
/// resolves from the tenant cache and then checks the token's signature
/// before touching its storage (a token it refuses never gets further); an
/// unknown one resolves from the same cache, which keeps misses as well,
/// and then has its token's signature checked all the same
/// ([`Saas::refuse_token`](saas_core::Saas::refuse_token)).
///
/// Usable in any router whose state gives an [`AppState`] (`impl
/// FromRef<MyState> for AppState`). `Option<Auth>` is `None` when the
/// request carries no `Authorization` header, and refuses a bad token as
/// `Auth` does.
#[derive(Debug, Clone)]
pub struct Auth(pub Session);

impl<S> FromRequestParts<S> for Auth
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let tenant = resolve_tenant(parts, &state).await?;
        let token = bearer(parts)?;
        let saas = state.saas();
        let Some(tenant) = tenant else {
            saas.refuse_token(token, TokenKind::Access);
            return Err(ApiError::token_invalid());
        };
        match saas.authenticate(&tenant, token).await {
            Ok(session) => Ok(Auth(session)),
            // Suspended since it resolved: the same as any refused token.
            Err(saas_core::Error::Unauthenticated | saas_core::Error::NotFound { .. }) => {
                Err(ApiError::token_invalid())
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl<S> OptionalFromRequestParts<S> for Auth
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        if !parts.headers.contains_key(header::AUTHORIZATION) {
            return Ok(None);
        }
        <Auth as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}

/// The client's address, as every throttle counts it: the peer address
/// (from axum's [`ConnectInfo`], which [`crate::serve`] provides), or, when
/// [`crate::HttpConfig::trust_forwarded_for`] is on, the last address of
/// `X-Forwarded-For` (the one the trusted proxy appended; earlier entries
/// are whatever the client claimed). `None` when the router is served
/// without the peer address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S> FromRequestParts<S> for ClientAddr
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if AppState::from_ref(state).config().trust_forwarded_for
            && let Some(forwarded) = forwarded_for(parts)
        {
            return Ok(ClientAddr(Some(forwarded)));
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        if peer.is_none() {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!(
                    "requests carry no peer address (serve the router with saas_http::serve, \
                     or with axum's connect info): throttles count every client as one"
                );
            });
        }
        Ok(ClientAddr(peer))
    }
}

/// The last address of the last `X-Forwarded-For` header, if it reads as one.
fn forwarded_for(parts: &Parts) -> Option<IpAddr> {
    let last = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()?;
    let entry = last.to_str().ok()?.rsplit(',').next()?.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// A platform superuser, authenticated by a platform bearer token, acting
/// from the request's [`ClientAddr`] (for the audit log). Served on any host.
#[derive(Debug, Clone)]
pub struct PlatformAuth(pub Operator);

impl<S> FromRequestParts<S> for PlatformAuth
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        match AppState::from_ref(state).saas().operator(token).await {
            Ok(op) => {
                let ClientAddr(addr) =
                    <ClientAddr as FromRequestParts<S>>::from_request_parts(parts, state).await?;
                Ok(PlatformAuth(op.from_client(addr.map(|a| a.to_string()))))
            }
            Err(saas_core::Error::Unauthenticated) => Err(ApiError::token_invalid()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn content_types() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/vnd.api+json",
        ] {
            assert!(is_json(Some(&HeaderValue::from_static(ok))), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "json",
            "",
        ] {
            assert!(!is_json(Some(&HeaderValue::from_static(bad))), "{bad}");
        }
        assert!(!is_json(None));
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        n: u32,
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        s: String,
    }

    #[test]
    fn json_errors_name_the_field() {
        let e = parse_json::<Body>(br#"{"n": "x"}"#).unwrap_err();
        assert_eq!(e.code(), "invalid");
        assert!(e.fields().contains_key("n"), "{:?}", e.fields());
        let e = parse_json::<Body>(br#"{}"#).unwrap_err();
        assert!(e.fields().contains_key("n"), "{:?}", e.fields());
        let e = parse_json::<Body>(br#"{"n": 1, "inner": {}}"#).unwrap_err();
        assert!(e.fields().contains_key("inner.s"), "{:?}", e.fields());
        let e = parse_json::<Body>(br#"{"n": 99999999999999999999999}"#).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        let e = parse_json::<Body>(b"{").unwrap_err();
        assert_eq!(e.code(), "malformed_json");
        let e = parse_json::<Body>(br#"{"n": 1} x"#).unwrap_err();
        assert_eq!(e.code(), "malformed_json");
        let deep = "[".repeat(10_000);
        let e = parse_json::<serde_json::Value>(deep.as_bytes()).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }
}
