//! The calendar every backend stores: years 1 to 9999.
//!
//! PostgreSQL's `date` reaches back to 4713 BC and SQLite stores text, but
//! each refuses or mangles something of what chrono can hold (years before
//! 1, or past 9999, where an ISO 8601 text is no longer four digits and
//! stops sorting as text). The seed's Python refuses the same years. A date
//! outside this range is a client's mistake, so every command carrying one
//! is checked here before anything is written, whichever caller sent it.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use crate::error::Validator;

/// The first year stored.
pub const MIN_YEAR: i32 = 1;
/// The last year stored.
pub const MAX_YEAR: i32 = 9999;

/// What a refused date is told.
const OUT_OF_RANGE: &str = "must be within the years 1 to 9999";

/// Whether `date` is within years 1 to 9999.
pub fn date_in_range(date: NaiveDate) -> bool {
    (MIN_YEAR..=MAX_YEAR).contains(&date.year())
}

/// Whether `time` is within years 1 to 9999, in UTC.
pub fn datetime_in_range(time: DateTime<Utc>) -> bool {
    date_in_range(time.date_naive())
}

/// Records an error under `field` when `date` is out of range.
pub(crate) fn check_date(v: &mut Validator, field: &str, date: Option<NaiveDate>) {
    if date.is_some_and(|d| !date_in_range(d)) {
        v.add(field, OUT_OF_RANGE);
    }
}

/// Records an error under `field` when `time` is out of range.
pub(crate) fn check_datetime(v: &mut Validator, field: &str, time: Option<DateTime<Utc>>) {
    if time.is_some_and(|t| !datetime_in_range(t)) {
        v.add(field, OUT_OF_RANGE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_one_to_9999() {
        let d = |y| NaiveDate::from_ymd_opt(y, 1, 1).unwrap();
        assert!(date_in_range(d(1)) && date_in_range(d(9999)));
        assert!(!date_in_range(d(0)) && !date_in_range(d(10_000)) && !date_in_range(d(-5000)));
        let mut v = Validator::new();
        check_date(&mut v, "start_date", Some(d(-5000)));
        check_datetime(
            &mut v,
            "due_date",
            Some(d(2024).and_hms_opt(0, 0, 0).unwrap().and_utc()),
        );
        let Err(crate::Error::Invalid { fields }) = v.finish() else {
            panic!("out of range accepted");
        };
        assert_eq!(fields.keys().collect::<Vec<_>>(), ["start_date"]);
    }
}
