//! The one error type of the HTTP layer and its JSON shapes.
//!
//! Every failure a handler, an extractor or a middleware produces becomes an
//! [`ApiError`], and every [`ApiError`] is answered as
//! `{"error": {"code", "message", "fields"}}`, or, with
//! [`ErrorFormat::Drf`], in the shapes DRF gives the seed's clients
//! (`{"detail": ...}`, `{"field": ["message"]}`; see `error/drf.rs`). Server-side
//! failures (5xx) say nothing internal: the cause is logged inside the
//! request's span (which carries the request id) and the client gets a
//! generic message.

mod drf;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use saas_core::Error;
use serde::Serialize;
use utoipa::ToSchema;

/// How error bodies are written ([`crate::HttpConfig::error_format`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ErrorFormat {
    /// `{"error": {"code", "message", "fields"}}`, with the statuses of
    /// the crate's documentation: a stable code for every failure, for new
    /// clients.
    #[default]
    Native,
    /// What DRF answers the seed's clients: `{"detail": "..."}` (with
    /// `"code"` where the seed adds one), or `{"field": ["message"]}` for
    /// invalid input, with DRF's statuses (a duplicate is a 400 on its
    /// field, not a 409). For clients written against the seed.
    Drf,
}

impl std::str::FromStr for ErrorFormat {
    type Err = String;

    /// `native` or `drf`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "native" | "" => Ok(ErrorFormat::Native),
            "drf" => Ok(ErrorFormat::Drf),
            other => Err(format!("{other:?} is not an error format (native or drf)")),
        }
    }
}

/// Field name to message, for input that failed validation.
pub type Fields = BTreeMap<String, String>;

/// An error answered to an HTTP client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: Cow<'static, str>,
    message: Cow<'static, str>,
    fields: Fields,
    retry_after: Option<Duration>,
    /// What DRF says where it differs from ours (boxed: most errors have
    /// none, and every handler's `Result` carries this type).
    drf: Option<Box<DrfWords>>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// DRF's words for an error, where the seed's clients see DRF's or
/// simplejwt's own.
#[derive(Debug, Clone, Default)]
struct DrfWords {
    /// Said instead of the message.
    detail: Option<Cow<'static, str>>,
    /// The `code` DRF adds next to `detail` (simplejwt's `token_not_valid`,
    /// the seed's `plan_limit_reached`).
    code: Option<&'static str>,
}

/// What an error response says, in every format. [`ApiError`] leaves it in
/// the response's extensions, where the router's outermost error layer
/// finds it and writes the body the configuration asks for.
#[derive(Debug, Clone)]
pub(crate) struct ErrorReport {
    pub(crate) status: StatusCode,
    pub(crate) code: Cow<'static, str>,
    pub(crate) message: Cow<'static, str>,
    pub(crate) fields: Fields,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) detail: Option<Cow<'static, str>>,
    pub(crate) drf_code: Option<&'static str>,
    /// What caused a storage outage, for the outage layer's one log line.
    pub(crate) cause: Option<String>,
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong, for machines (`code`, `fields`) and people (`message`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid`, `not_found`,
    /// `plan_limit_exceeded`, `unauthenticated`, `throttled`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Field name to message, for invalid input (empty otherwise).
    pub fields: Fields,
}

impl ApiError {
    /// An error with a status, a code and a message.
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            fields: Fields::new(),
            retry_after: None,
            drf: None,
            source: None,
        }
    }

    /// Says `detail` (and `code`, if any) to clients of [`ErrorFormat::Drf`].
    pub(crate) fn drf(
        mut self,
        detail: impl Into<Cow<'static, str>>,
        code: Option<&'static str>,
    ) -> Self {
        self.drf = Some(Box::new(DrfWords {
            detail: Some(detail.into()),
            code,
        }));
        self
    }

    /// 401: the request carries no bearer token.
    pub fn credentials_missing() -> Self {
        ApiError::unauthenticated("authentication credentials were not provided")
            .drf("Authentication credentials were not provided.", None)
    }

    /// 401: the bearer token is not valid here (malformed, expired,
    /// revoked, another tenant's, or no tenant at all).
    pub fn token_invalid() -> Self {
        ApiError::unauthenticated("invalid or expired token").drf(
            "Given token not valid for any token type",
            Some("token_not_valid"),
        )
    }

    /// 401: a username and password that open no account here.
    pub fn login_failed() -> Self {
        ApiError::unauthenticated("invalid credentials")
            .drf("No active account found with the given credentials", None)
    }

    /// 401: a refresh token that is not valid here.
    pub fn refresh_invalid() -> Self {
        ApiError::unauthenticated("invalid, expired or reused refresh token")
            .drf("Token is invalid or expired", Some("token_not_valid"))
    }

    /// 415: the body is not JSON; `content_type` is what the client said.
    pub fn unsupported_media_type(content_type: Option<&str>) -> Self {
        let shown: String = content_type.unwrap_or("").chars().take(100).collect();
        ApiError::from_status(StatusCode::UNSUPPORTED_MEDIA_TYPE).drf(
            format!("Unsupported media type \"{shown}\" in request."),
            None,
        )
    }

    /// 405 for `method`.
    pub fn method_not_allowed(method: &str) -> Self {
        ApiError::from_status(StatusCode::METHOD_NOT_ALLOWED)
            .drf(format!("Method \"{method}\" not allowed."), None)
    }

    /// 400 `invalid` with one field error.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut e = ApiError::new(StatusCode::BAD_REQUEST, "invalid", "invalid input");
        e.fields.insert(field.into(), message.into());
        e
    }

    /// 404 `not_found`.
    pub fn not_found(what: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated(message: impl Into<Cow<'static, str>>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 429 `throttled`, telling the client when to come back.
    pub fn throttled(retry_after: Duration) -> Self {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            "too many attempts; try again later",
        );
        e.retry_after = Some(retry_after);
        e
    }

    /// 503 `storage_unavailable` with `Retry-After`: the database cannot be
    /// reached now; nothing was changed.
    pub fn storage_unavailable() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "the database cannot be reached; nothing was changed, try again shortly",
        )
        .with_retry_after(RETRY_AFTER)
    }

    /// 500 `internal`, keeping `source` for the log only.
    /// Accepts any error, `anyhow::Error` and `Box<dyn Error>` included.
    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        let mut e = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error",
        );
        e.source = Some(source.into());
        e
    }

    /// The default error for a bare status (used to give responses produced
    /// by layers, such as 405 or a timeout, our JSON shape).
    pub fn from_status(status: StatusCode) -> Self {
        let (code, message) = match status {
            StatusCode::BAD_REQUEST => ("bad_request", "bad request"),
            StatusCode::UNAUTHORIZED => ("unauthenticated", "authentication required"),
            StatusCode::FORBIDDEN => ("forbidden", "forbidden"),
            StatusCode::NOT_FOUND => ("not_found", "not found"),
            StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "method not allowed"),
            StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request body came too slowly"),
            StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "request body too large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                "the request body must be JSON (Content-Type: application/json)",
            ),
            StatusCode::TOO_MANY_REQUESTS => ("throttled", "too many requests"),
            StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "service unavailable"),
            StatusCode::GATEWAY_TIMEOUT => ("timeout", "the request took too long"),
            s if s.is_server_error() => ("internal", "internal server error"),
            _ => ("error", "request failed"),
        };
        ApiError::new(status, code, message)
    }

    /// Tells the client when to come back (`Retry-After`).
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Adds (or replaces) a field error.
    pub fn with_field(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.fields.insert(field.into(), message.into());
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// How long the client should wait before trying again, if it should.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The message, for people.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Field errors, by field name.
    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    /// Renames field keys, `(from, to)`: the core's names for fields to the
    /// names a request body gives them (see `models::fields::RequestBody`).
    pub(crate) fn rename_fields(mut self, renames: &[(&str, &str)]) -> Self {
        for (from, to) in renames {
            if let Some(v) = self.fields.remove(*from) {
                self.fields.insert((*to).to_owned(), v);
            }
        }
        self
    }
}

/// What a client refused for an unreachable storage is told to wait (the
/// outage layer's answers and the backend's alike).
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// When a client refused for too many pending jobs is told to come back.
const TOO_MANY_JOBS_RETRY: Duration = Duration::from_secs(30);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid { fields } => {
                let mut out = ApiError::new(StatusCode::BAD_REQUEST, "invalid", "invalid input");
                out.fields = fields;
                out
            }
            Error::NotFound { entity } => ApiError::not_found(entity.as_str()),
            Error::Conflict { entity, field } => {
                let message = format!("a {entity} with this {field} already exists");
                ApiError::new(StatusCode::CONFLICT, "conflict", message.clone())
                    .with_field(field, message)
            }
            Error::Forbidden { reason } => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", reason)
            }
            e @ Error::PlanLimitExceeded { .. } => {
                let mut out =
                    ApiError::new(StatusCode::FORBIDDEN, "plan_limit_exceeded", e.to_string());
                out.drf = Some(Box::new(DrfWords {
                    detail: None,
                    code: Some("plan_limit_reached"),
                }));
                out
            }
            e @ Error::TooManyJobs { .. } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_jobs",
                format!("{e}; try again when some have finished"),
            )
            .with_retry_after(TOO_MANY_JOBS_RETRY),
            Error::Unauthenticated => {
                ApiError::unauthenticated("invalid or expired credentials or token")
            }
            Error::State(message) => ApiError::new(StatusCode::CONFLICT, "invalid_state", message),
            e @ Error::Unavailable { .. } => {
                let mut out = ApiError::storage_unavailable();
                out.source = Some(Box::new(e));
                out
            }
            e @ Error::StorageFull { .. } => {
                let mut out = ApiError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "storage_full",
                    "the server's storage is full; nothing was changed (reading still works)",
                );
                out.source = Some(Box::new(e));
                out
            }
            other => ApiError::internal(other),
        }
    }
}

impl ApiError {
    fn report(self) -> ErrorReport {
        let drf = self.drf.map(|d| *d).unwrap_or_default();
        let cause = outage(&self.code)
            .then(|| {
                self.source
                    .as_deref()
                    .map(|e| saas_core::error::chain(e as &(dyn std::error::Error + 'static)))
            })
            .flatten();
        ErrorReport {
            status: self.status,
            code: self.code,
            message: self.message,
            fields: self.fields,
            retry_after: self.retry_after,
            detail: drf.detail,
            drf_code: drf.code,
            cause,
        }
    }
}

impl ErrorReport {
    /// The response in `format`.
    pub(crate) fn render(&self, format: ErrorFormat) -> Response {
        let mut response = match format {
            ErrorFormat::Native => {
                let body = ErrorBody {
                    error: ErrorDetail {
                        code: self.code.clone().into_owned(),
                        message: self.message.clone().into_owned(),
                        fields: self.fields.clone(),
                    },
                };
                (self.status, Json(body)).into_response()
            }
            ErrorFormat::Drf => {
                let (status, body) = drf::body(self);
                (status, Json(body)).into_response()
            }
        };
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"api\""),
            );
        }
        if let Some(after) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_seconds(after)));
        }
        response.extensions_mut().insert(self.clone());
        response
    }
}

/// Whole seconds to wait, rounded up and at least one.
pub(crate) fn retry_seconds(after: Duration) -> u64 {
    (after.as_secs() + u64::from(after.subsec_nanos() > 0)).max(1)
}

impl IntoResponse for ApiError {
    /// Our shape; the router's error layer rewrites it in DRF's when
    /// configured (a host using [`crate::routes`] alone gets ours).
    fn into_response(self) -> Response {
        // Storage outages are logged once by the outage layer, not per request.
        if self.status.is_server_error() && !outage(&self.code) {
            match &self.source {
                Some(source) => tracing::error!(
                    status = self.status.as_u16(),
                    error = %saas_core::error::chain(source.as_ref()),
                    "request failed"
                ),
                None => {
                    tracing::error!(status = self.status.as_u16(), code = %self.code, "request failed")
                }
            }
        }
        self.report().render(ErrorFormat::Native)
    }
}

/// Whether `code` is a storage outage's, which the outage layer logs once.
fn outage(code: &str) -> bool {
    matches!(code, "storage_unavailable" | "storage_full")
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;
    use saas_core::{Entity, Resource};

    #[test]
    fn core_errors_map_to_statuses() {
        let cases: Vec<(Error, StatusCode, &str)> = vec![
            (
                Error::invalid("name", "may not be blank"),
                StatusCode::BAD_REQUEST,
                "invalid",
            ),
            (
                Error::not_found(Entity::Task),
                StatusCode::NOT_FOUND,
                "not_found",
            ),
            (
                Error::Conflict {
                    entity: Entity::User,
                    field: "username",
                },
                StatusCode::CONFLICT,
                "conflict",
            ),
            (
                Error::Forbidden { reason: "no" },
                StatusCode::FORBIDDEN,
                "forbidden",
            ),
            (
                Error::PlanLimitExceeded {
                    resource: Resource::Projects,
                    limit: 3,
                    plan: "free".into(),
                },
                StatusCode::FORBIDDEN,
                "plan_limit_exceeded",
            ),
            (
                Error::Unauthenticated,
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
            ),
            (
                Error::State("cannot remove the primary domain"),
                StatusCode::CONFLICT,
                "invalid_state",
            ),
            (
                Error::unavailable(std::io::Error::other("connection refused")),
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
            ),
            (
                Error::storage_full(std::io::Error::other("no space left on device")),
                StatusCode::INSUFFICIENT_STORAGE,
                "storage_full",
            ),
            (
                Error::backend(std::io::Error::other("disk on fire")),
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
            ),
        ];
        for (e, status, code) in cases {
            let api = ApiError::from(e);
            assert_eq!(api.status(), status);
            assert_eq!(api.code(), code);
        }
    }

    #[test]
    fn internal_errors_say_nothing_internal() {
        let api = ApiError::from(Error::backend(std::io::Error::other("secret path /x")));
        assert_eq!(api.message, "internal server error");
    }
}
