//! The fields of request bodies: how each kind of value is read, and under
//! which name an error about it reaches the client.
//!
//! Every field of an `*In` type that holds an id, a date or a time is read
//! through [`required`], [`optional`] or [`patch`] (`#[serde(deserialize_with
//! = ...)]`), which read the value through its [`Field`] impl. What the API
//! accepts for each kind of value is therefore decided once, here, and it is
//! what the seed's DRF accepts: an id as a JSON integer, an integral number
//! (`1.0`) or a string of one (`"1"`, `" 1 "`, `"1.0"`), as DRF's
//! `IntegerField` reads it; dates and times as ISO 8601 in every spelling
//! Django parses ([`iso8601`]).

mod iso8601;

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use saas_core::patch::Patch;
use saas_core::projects::ProjectId;
use saas_core::users::UserId;
use saas_core::{Entity, Error};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

use crate::error::ApiError;

/// A kind of value a body field holds, and how it is read from JSON.
pub(crate) trait Field<'de>: Sized {
    /// Reads the value.
    fn read<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
}

impl<'de> Field<'de> for ProjectId {
    fn read<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IdVisitor).map(ProjectId)
    }
}

impl<'de> Field<'de> for UserId {
    fn read<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IdVisitor).map(UserId)
    }
}

impl<'de> Field<'de> for NaiveDate {
    fn read<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor {
            expecting: "a date (YYYY-MM-DD)",
            parse: iso8601::parse_date,
        })
    }
}

impl<'de> Field<'de> for DateTime<Utc> {
    fn read<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor {
            expecting: "a date and time (ISO 8601)",
            parse: iso8601::parse_datetime,
        })
    }
}

/// DRF's message for an id that is not one.
const NOT_AN_ID: &str = "A valid integer is required.";

/// Reads an id the way DRF's `IntegerField` does: a JSON integer, a number
/// without a fraction, or a string holding either (surrounding whitespace,
/// a sign and a `.0` tail allowed). Booleans are not ids, whatever Python
/// thinks of `True`.
struct IdVisitor;

impl<'de> Visitor<'de> for IdVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an id (an integer, or a string holding one)")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom(NOT_AN_ID))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        // Every integral f64 within ±2^63 converts exactly.
        if v.fract() == 0.0 && v.abs() < 9.2e18 {
            Ok(v as i64)
        } else {
            Err(E::custom(NOT_AN_ID))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        id_from_text(v).ok_or_else(|| E::custom(NOT_AN_ID))
    }
}

/// DRF's `IntegerField` on a string: `int(re.sub(r"\.0*\s*$", "", text))`,
/// Python's `int` taking surrounding whitespace and a sign.
fn id_from_text(text: &str) -> Option<i64> {
    let trimmed = text.trim_end();
    let number = match trimmed.rfind('.') {
        Some(point) if trimmed[point + 1..].bytes().all(|b| b == b'0') => &trimmed[..point],
        _ => trimmed,
    };
    let number = number.trim();
    let digits = number.strip_prefix(['+', '-']).unwrap_or(number);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    number.parse().ok()
}

/// Reads a JSON string with `parse`, reporting a refusal in DRF's words.
struct TextVisitor<T> {
    expecting: &'static str,
    parse: fn(&str) -> Result<T, iso8601::Refusal>,
}

impl<'de, T> Visitor<'de> for TextVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.parse)(v).map_err(|refusal| E::custom(refusal.message()))
    }
}

/// A [`Field`] where serde wants a `Deserialize` (inside an `Option`).
struct Read<T>(T);

impl<'de, T: Field<'de>> Deserialize<'de> for Read<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::read(d).map(Read)
    }
}

/// A required field.
pub(crate) fn required<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Field<'de>,
{
    T::read(d)
}

/// An optional field (with `#[serde(default)]`): absent or `null` is `None`.
pub(crate) fn optional<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Field<'de>,
{
    Ok(Option::<Read<T>>::deserialize(d)?.map(|Read(v)| v))
}

/// A PATCH field that may be cleared (with `#[serde(default)]`): absent is
/// [`Patch::Keep`], `null` is [`Patch::Clear`], a value is [`Patch::Set`].
pub(crate) fn patch<'de, D, T>(d: D) -> Result<Patch<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Field<'de>,
{
    Ok(match Option::<Read<T>>::deserialize(d)? {
        None => Patch::Clear,
        Some(Read(v)) => Patch::Set(v),
    })
}

/// How a request body's fields answer for saas-core's errors.
///
/// The core reports a bad value under its own name for it: a validation
/// error under its parameter's name (`subscription_plan`), a conflict under
/// the taken entity's field (`slug`), and an id that names nothing as not
/// found. A body whose client knows these by other names declares the
/// correspondence here, once, and its handler reports the core's errors
/// through [`RequestBody::error`].
pub(crate) trait RequestBody {
    /// `(core's name, this body's name)` for each field named otherwise.
    const FIELD_NAMES: &'static [(&'static str, &'static str)] = &[];

    /// `(entity, field)` for each id in the body: the core not finding that
    /// entity is a 400 on the field (the URL was right, the body was not).
    const REFERENCES: &'static [(Entity, &'static str)] = &[];

    /// `e` as this body's client sees it.
    fn error(e: Error) -> ApiError {
        if let Error::NotFound { entity } = &e
            && let Some((_, field)) = Self::REFERENCES.iter().find(|(r, _)| r == entity)
        {
            return ApiError::invalid_field(*field, format!("no such {entity}"));
        }
        ApiError::from(e).rename_fields(Self::FIELD_NAMES)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(deserialize_with = "required")]
        id: UserId,
    }

    /// Ids as DRF's `IntegerField` reads them, as probed on the seed.
    #[test]
    fn ids_as_drf_reads_them() {
        for (value, id) in [
            (json!(2), 2),
            (json!("2"), 2),
            (json!(" 2 "), 2),
            (json!("+2"), 2),
            (json!("02"), 2),
            (json!(2.0), 2),
            (json!("2.0"), 2),
            (json!("2.00 "), 2),
            (json!("-1"), -1),
        ] {
            let body: Body = serde_json::from_value(json!({ "id": value }))
                .unwrap_or_else(|e| panic!("{value}: {e}"));
            assert_eq!(body.id, UserId(id), "{value}");
        }
        for value in [
            json!("x"),
            json!(""),
            json!("1e0"),
            json!("1.5"),
            json!(1.5),
            json!("1_0"),
            json!("٢"),
            json!(true),
            json!([1]),
            json!({}),
            json!(null),
            json!(u64::MAX),
            json!(1e300),
        ] {
            assert!(
                serde_json::from_value::<Body>(json!({ "id": value })).is_err(),
                "{value} accepted"
            );
        }
    }
}
