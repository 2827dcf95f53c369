//! The one error type of the HTTP layer and its JSON shape.
//!
//! Every failure a handler, an extractor or a middleware produces becomes an
//! [`ApiError`], and every [`ApiError`] is answered as
//! `{"error": {"code", "message", "fields"}}`. Server-side failures (5xx) say
//! nothing internal: the cause is logged inside the request's span (which
//! carries the request id) and the client gets a generic message.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use saas_core::Error;
use serde::Serialize;
use utoipa::ToSchema;

/// How error bodies are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ErrorFormat {
    /// `{"error": {"code", "message", "fields"}}`.
    #[default]
    Native,
    /// DRF's shapes.
    Drf,
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
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
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
            source: None,
        }
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

    /// 500 `internal`, keeping `source` for the log only.
    pub fn internal(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        let mut e = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error",
        );
        e.source = Some(Box::new(source));
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

    /// The field errors.
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
                ApiError::new(StatusCode::FORBIDDEN, "plan_limit_exceeded", e.to_string())
            }
            Error::Unauthenticated => {
                ApiError::unauthenticated("invalid or expired credentials or token")
            }
            Error::State(message) => ApiError::new(StatusCode::CONFLICT, "invalid_state", message),
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
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
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.into_owned(),
                message: self.message.into_owned(),
                fields: self.fields,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"api\""),
            );
        }
        if let Some(after) = self.retry_after {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
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
