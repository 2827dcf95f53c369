//! The fields of request bodies: how each kind of value is read, and under
//! which name an error about it reaches the client.
//!
//! Every field of an `*In` type that holds an id, a date or a time is read
//! through [`required`], [`optional`] or [`patch`] (`#[serde(deserialize_with
//! = ...)]`), which read the value through its [`Field`] impl. What the API
//! accepts for each kind of value is therefore decided once, here: today
//! what serde accepts (ids as JSON integers, dates as `YYYY-MM-DD`, times as
//! RFC 3339).

use chrono::{DateTime, NaiveDate, Utc};
use saas_core::patch::Patch;
use saas_core::projects::ProjectId;
use saas_core::users::UserId;
use saas_core::{Entity, Error};
use serde::{Deserialize, Deserializer};

use crate::error::ApiError;

/// A kind of value a body field holds, and how it is read from JSON.
pub(crate) trait Field<'de>: Sized {
    /// Reads the value.
    fn read<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
}

impl<'de> Field<'de> for ProjectId {
    fn read<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        i64::deserialize(d).map(ProjectId)
    }
}

impl<'de> Field<'de> for UserId {
    fn read<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        i64::deserialize(d).map(UserId)
    }
}

impl<'de> Field<'de> for NaiveDate {
    fn read<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        NaiveDate::deserialize(d)
    }
}

impl<'de> Field<'de> for DateTime<Utc> {
    fn read<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        DateTime::<Utc>::deserialize(d)
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
