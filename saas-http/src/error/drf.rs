//! DRF's error bodies, for clients written against the seed
//! ([`ErrorFormat::Drf`](super::ErrorFormat::Drf)).
//!
//! The seed answers with DRF's exception handler: `{"detail": "..."}` for
//! most failures (simplejwt and the seed's plan check add a `"code"`),
//! and, for invalid input, one list of messages per field
//! (`{"name": ["This field may not be blank."]}`, `non_field_errors` for
//! the body as a whole). DRF has no 409: a duplicate is invalid input on
//! its field. What only we have (the platform API's `invalid_state`) is a
//! 400 `detail` too, the status DRF gives any validation failure.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::{ErrorReport, retry_seconds};

/// The status and body DRF would answer for `e`.
pub(super) fn body(e: &ErrorReport) -> (StatusCode, Value) {
    match e.code.as_ref() {
        "invalid" | "conflict" if !e.fields.is_empty() => {
            let fields: Map<String, Value> = e
                .fields
                .iter()
                .map(|(field, message)| (field.clone(), json!([message])))
                .collect();
            (StatusCode::BAD_REQUEST, Value::Object(fields))
        }
        "conflict" | "invalid_state" => (StatusCode::BAD_REQUEST, detail(e, None)),
        _ => (e.status, detail(e, e.drf_code)),
    }
}

/// `{"detail": ..., "code"?: ...}`: DRF's words where they differ from ours.
fn detail(e: &ErrorReport, code: Option<&str>) -> Value {
    let text = match (&e.detail, e.status) {
        (Some(d), _) => d.to_string(),
        (None, StatusCode::NOT_FOUND) => "Not found.".to_owned(),
        (None, StatusCode::TOO_MANY_REQUESTS) => match e.retry_after {
            Some(after) => format!(
                "Request was throttled. Expected available in {} seconds.",
                retry_seconds(after)
            ),
            None => "Request was throttled.".to_owned(),
        },
        (None, s) if s.is_server_error() && s != StatusCode::SERVICE_UNAVAILABLE => {
            "Internal server error.".to_owned()
        }
        (None, _) => e.message.to_string(),
    };
    match code {
        Some(code) => json!({"detail": text, "code": code}),
        None => json!({"detail": text}),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::{ApiError, ErrorFormat};
    use saas_core::{Entity, Error, Resource};

    fn drf(e: ApiError) -> (u16, Value) {
        let r = e.report();
        let (status, body) = body(&r);
        (status.as_u16(), body)
    }

    #[test]
    fn shapes_as_the_seed_answers() {
        assert_eq!(
            drf(ApiError::from(Error::invalid("name", "may not be blank"))),
            (400, json!({"name": ["may not be blank"]}))
        );
        assert_eq!(
            drf(ApiError::from(Error::Conflict {
                entity: Entity::User,
                field: "username"
            })),
            (
                400,
                json!({"username": ["a user with this username already exists"]})
            )
        );
        let (status, body) = drf(ApiError::from(Error::PlanLimitExceeded {
            resource: Resource::Projects,
            limit: 3,
            plan: "free".into(),
        }));
        assert_eq!((status, &body["code"]), (403, &json!("plan_limit_reached")));
        assert_eq!(
            drf(ApiError::not_found("task")),
            (404, json!({"detail": "Not found."}))
        );
        assert_eq!(
            drf(ApiError::throttled(Duration::from_millis(55_500))),
            (
                429,
                json!({"detail": "Request was throttled. Expected available in 56 seconds."})
            )
        );
        assert_eq!(
            drf(ApiError::from(Error::TooManyJobs { limit: 5 })),
            (
                429,
                json!({"detail": "Request was throttled. Expected available in 30 seconds."})
            )
        );
        assert_eq!(
            drf(ApiError::internal(std::io::Error::other("secret"))),
            (500, json!({"detail": "Internal server error."}))
        );
        assert_eq!(
            drf(ApiError::from(Error::State(
                "cannot remove the primary domain"
            ))),
            (400, json!({"detail": "cannot remove the primary domain"}))
        );
        assert_eq!(ErrorFormat::default(), ErrorFormat::Native);
        assert_eq!("DRF".parse::<ErrorFormat>(), Ok(ErrorFormat::Drf));
        assert!("xml".parse::<ErrorFormat>().is_err());
    }
}
