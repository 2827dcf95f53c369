//! Dates and times spelled the way the seed's DRF reads them.
//!
//! DRF's `DateField` and `DateTimeField` (ISO 8601 input) call Django's
//! `parse_date` and `parse_datetime`, which try Python 3.11's
//! `fromisoformat` first and fall back to a regular expression. What they
//! accept is therefore the union of two grammars, and so is what this module
//! accepts:
//!
//! - `fromisoformat`: a date `YYYY-MM-DD`, `YYYYMMDD` or an ISO week date
//!   (`YYYY-Www[-D]`, `YYYYWww[D]`); for a datetime, then any one separator
//!   character and a time `hh[:mm[:ss[.f…]]]` (or `hhmm[ss]`, fractions after
//!   `.` or `,`, digits past the sixth dropped), then `Z` or an offset
//!   `±hh[:mm[:ss[.f…]]]` (or `±hhmm…`).
//! - Django's expressions: `YYYY-M-D` with one- or two-digit month and day;
//!   for a datetime `T` or a space, `h:m[:s[.f]]` with one or two digits
//!   each, then optional whitespace and `Z`, `±hh`, `±hhmm` or `±hh:mm`.
//!
//! A datetime without an offset is UTC (the seed's `TIME_ZONE`); one with
//! an offset is converted to UTC, and must still fall within years 1 to
//! 9999 ("Datetime value out of range", as DRF says).
//!
//! Deliberate differences, all refusals of what the seed takes by accident:
//! digits other than ASCII (Python's `\d` also matches `٢٠٢٤`), a trailing
//! newline (Python's `$` matches before one), and a fraction point with no
//! digit after it.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use saas_core::dates;

/// Why a spelling was refused: the message DRF gives for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not a date of the grammar, or not a day of the calendar.
    BadDate,
    /// Not a datetime of the grammar, or not a time of the calendar.
    BadDateTime,
    /// A datetime whose offset takes it outside years 1 to 9999 in UTC.
    OutOfRange,
}

impl Refusal {
    /// DRF's message for it, which clients of the seed may match on.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Refusal::BadDate => {
                "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
            }
            Refusal::BadDateTime => {
                "Datetime has wrong format. Use one of these formats instead: \
                 YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
            }
            Refusal::OutOfRange => "Datetime value out of range.",
        }
    }
}

/// A date as DRF's `DateField` reads it.
pub(crate) fn parse_date(s: &str) -> Result<NaiveDate, Refusal> {
    let whole = |read: fn(&mut Cursor<'_>) -> Option<NaiveDate>| {
        let mut c = Cursor::new(s);
        read(&mut c).filter(|_| c.at_end())
    };
    whole(iso_date)
        .or_else(|| whole(loose_date))
        .filter(|d| dates::date_in_range(*d))
        .ok_or(Refusal::BadDate)
}

/// A datetime as DRF's `DateTimeField` reads it, in UTC.
pub(crate) fn parse_datetime(s: &str) -> Result<DateTime<Utc>, Refusal> {
    let (local, offset) = iso_datetime(s)
        .or_else(|| loose_datetime(s))
        .ok_or(Refusal::BadDateTime)?;
    if !dates::date_in_range(local.date()) {
        return Err(Refusal::BadDateTime);
    }
    let utc = local
        .checked_sub_signed(offset)
        .map(|t| t.and_utc())
        .filter(|t| dates::datetime_in_range(*t))
        .ok_or(Refusal::OutOfRange)?;
    Ok(utc)
}

/// `fromisoformat`'s datetime: a date, then (unless the string ends) one
/// separator character and a time with an optional offset.
fn iso_datetime(s: &str) -> Option<(NaiveDateTime, TimeDelta)> {
    let mut c = Cursor::new(s);
    let date = iso_date(&mut c)?;
    if c.at_end() {
        return Some((date.and_time(NaiveTime::MIN), TimeDelta::zero()));
    }
    c.any_char()?;
    let time = c.rest();
    // The offset starts at the first sign or `Z`; what comes before is the time.
    let (clock, zone) = match time.find(['+', '-', 'Z']) {
        Some(i) => (&time[..i], Some(&time[i..])),
        None => (time, None),
    };
    let (h, m, sec, micro) = iso_clock(clock)?;
    let offset = match zone {
        None => TimeDelta::zero(),
        Some("Z") => TimeDelta::zero(),
        Some(z) => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let digits = &z[1..];
            if matches!(digits.len(), 0 | 1 | 3) || z.starts_with('Z') {
                return None;
            }
            let (oh, om, os, ou) = iso_clock(digits)?;
            let total = TimeDelta::hours(oh.into())
                + TimeDelta::minutes(om.into())
                + TimeDelta::seconds(os.into())
                + TimeDelta::microseconds(ou.into());
            if total >= TimeDelta::hours(24) {
                return None;
            }
            total * sign
        }
    };
    let time = NaiveTime::from_hms_micro_opt(h, m, sec, micro)?;
    Some((date.and_time(time), offset))
}

/// `fromisoformat`'s date at the cursor: `YYYY-MM-DD`, `YYYYMMDD`,
/// `YYYY-Www[-D]` or `YYYYWww[D]`.
fn iso_date(c: &mut Cursor<'_>) -> Option<NaiveDate> {
    let year = c.digits(4)?;
    let dashed = c.eat('-');
    if c.eat('W') {
        let week = c.digits(2)?;
        let mut day = 1;
        let save = c.pos;
        let dash = c.eat('-');
        if dash == dashed
            && let Some(d) = c.digits(1)
        {
            day = d;
        } else {
            c.pos = save;
        }
        let weekday = chrono::Weekday::try_from(u8::try_from(day).ok()?.checked_sub(1)?).ok()?;
        return NaiveDate::from_isoywd_opt(i32::try_from(year).ok()?, week, weekday);
    }
    let month = c.digits(2)?;
    if c.eat('-') != dashed {
        return None;
    }
    let day = c.digits(2)?;
    NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)
}

/// `fromisoformat`'s clock: `hh[:?mm[:?ss[{.,}f…]]]`, the colons used
/// throughout or not at all; digits past the sixth of a fraction dropped.
fn iso_clock(s: &str) -> Option<(u32, u32, u32, u32)> {
    let mut c = Cursor::new(s);
    let h = c.digits(2)?;
    if c.at_end() {
        return Some((h, 0, 0, 0));
    }
    let colons = c.eat(':');
    let m = c.digits(2)?;
    if c.at_end() {
        return Some((h, m, 0, 0));
    }
    if c.eat(':') != colons {
        return None;
    }
    let sec = c.digits(2)?;
    if c.at_end() {
        return Some((h, m, sec, 0));
    }
    if !(c.eat('.') || c.eat(',')) {
        return None;
    }
    let micro = c.fraction(usize::MAX)?;
    c.at_end().then_some((h, m, sec, micro))
}

/// Django's `date_re`: `YYYY-M{1,2}-D{1,2}`.
fn loose_date(c: &mut Cursor<'_>) -> Option<NaiveDate> {
    let year = c.digits(4)?;
    c.expect('-')?;
    let month = c.digits_between(1, 2)?;
    c.expect('-')?;
    let day = c.digits_between(1, 2)?;
    NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)
}

/// Django's `datetime_re`: a loose date, `T` or a space, `h:m[:s[.f]]`,
/// optional whitespace and an optional `Z`, `±hh`, `±hhmm` or `±hh:mm`.
fn loose_datetime(s: &str) -> Option<(NaiveDateTime, TimeDelta)> {
    let mut c = Cursor::new(s);
    let date = loose_date(&mut c)?;
    if !(c.eat('T') || c.eat(' ')) {
        return None;
    }
    let h = c.digits_between(1, 2)?;
    c.expect(':')?;
    let m = c.digits_between(1, 2)?;
    let (mut sec, mut micro) = (0, 0);
    if c.eat(':') {
        sec = c.digits_between(1, 2)?;
        if c.eat('.') || c.eat(',') {
            micro = c.fraction(12)?;
        }
    }
    while c.peek().is_some_and(|b| b.is_ascii_whitespace()) {
        c.pos += 1;
    }
    let offset = if c.eat('Z') {
        TimeDelta::zero()
    } else if let Some(sign) = c.peek().filter(|b| *b == b'+' || *b == b'-') {
        c.pos += 1;
        let oh = c.digits(2)?;
        let om = if c.at_end() {
            0
        } else {
            c.eat(':');
            c.digits(2)?
        };
        let total = TimeDelta::hours(oh.into()) + TimeDelta::minutes(om.into());
        if total >= TimeDelta::hours(24) {
            return None;
        }
        if sign == b'-' { -total } else { total }
    } else {
        TimeDelta::zero()
    };
    if !c.at_end() {
        return None;
    }
    let time = NaiveTime::from_hms_micro_opt(h, m, sec, micro)?;
    Some((date.and_time(time), offset))
}

/// A position in a string being read.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }

    fn at_end(&self) -> bool {
        self.pos == self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    /// Takes `ch` if it is next.
    fn eat(&mut self, ch: char) -> bool {
        if self.rest().starts_with(ch) {
            self.pos += ch.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, ch: char) -> Option<()> {
        self.eat(ch).then_some(())
    }

    /// Takes one character, whatever it is.
    fn any_char(&mut self) -> Option<char> {
        let ch = self.rest().chars().next()?;
        self.pos += ch.len_utf8();
        Some(ch)
    }

    /// Exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Option<u32> {
        self.digits_between(n, n)
    }

    /// `min` to `max` ASCII digits (as many as there are, up to `max`).
    fn digits_between(&mut self, min: usize, max: usize) -> Option<u32> {
        let run = self.rest().bytes().take_while(u8::is_ascii_digit).count();
        let take = run.min(max);
        if take < min {
            return None;
        }
        let value = self.s[self.pos..self.pos + take].parse().ok()?;
        self.pos += take;
        Some(value)
    }

    /// A fraction of a second of 1 to `max` digits, as microseconds (the
    /// digits past the sixth dropped, as Python does).
    fn fraction(&mut self, max: usize) -> Option<u32> {
        let run = self.rest().bytes().take_while(u8::is_ascii_digit).count();
        if run == 0 || run > max {
            return None;
        }
        let digits = &self.s[self.pos..self.pos + run];
        self.pos += run;
        let kept = &digits[..run.min(6)];
        let scale = 10u32.pow(u32::try_from(6 - kept.len()).ok()?);
        Some(kept.parse::<u32>().ok()? * scale)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, Timelike};

    use super::*;

    fn at(s: &str) -> String {
        match parse_datetime(s) {
            Ok(t) => t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
            Err(e) => format!("{e:?}"),
        }
    }

    /// Each spelling with what DRF (Django 5.2, Python 3.11) makes of it,
    /// as probed on the seed.
    #[test]
    fn datetimes_as_drf_reads_them() {
        let accepted = [
            ("2026-12-11", "2026-12-11T00:00:00.000000"),
            ("2024-12-31T23:59:59Z", "2024-12-31T23:59:59.000000"),
            ("2024-12-31 23:59", "2024-12-31T23:59:00.000000"),
            (
                "2024-12-31T23:59:59.123456+05:30",
                "2024-12-31T18:29:59.123456",
            ),
            (
                "2024-12-31T23:59:59.1234567890Z",
                "2024-12-31T23:59:59.123456",
            ),
            ("2024-12-31T23", "2024-12-31T23:00:00.000000"),
            ("2024-12-31T23:59:59,5Z", "2024-12-31T23:59:59.500000"),
            ("20241231", "2024-12-31T00:00:00.000000"),
            ("20241231T235959Z", "2024-12-31T23:59:59.000000"),
            ("2024-W01-1", "2024-01-01T00:00:00.000000"),
            ("2024-W01T10:00", "2024-01-01T10:00:00.000000"),
            ("2024W011T10", "2024-01-01T10:00:00.000000"),
            ("2020-W53-5T00:00", "2021-01-01T00:00:00.000000"),
            ("2024-12-31x23:59", "2024-12-31T23:59:00.000000"),
            ("2024-12-31é03:04", "2024-12-31T03:04:00.000000"),
            ("2024-1-5 3:4", "2024-01-05T03:04:00.000000"),
            ("2024-1-5T3:4:5,12 +0530", "2024-01-04T21:34:05.120000"),
            ("2024-12-31T23:59 Z", "2024-12-31T23:59:00.000000"),
            ("2024-12-31T12:00:00 ", "2024-12-31T12:00:00.000000"),
            ("2024-12-31T23:59:59+05", "2024-12-31T18:59:59.000000"),
            ("2024-12-31T23:59:59+0530", "2024-12-31T18:29:59.000000"),
            ("2024-12-31T23:59:59-05:30", "2025-01-01T05:29:59.000000"),
            ("2024-12-31T23:59:59-0000", "2024-12-31T23:59:59.000000"),
            ("2024-12-31T23:59:59+01:00:00", "2024-12-31T22:59:59.000000"),
            (
                "2024-12-31T03:04:05+05:30:15.5",
                "2024-12-30T21:33:49.500000",
            ),
            ("2024-12-31T12:00:00-23:59", "2025-01-01T11:59:00.000000"),
            ("2024-12-31T030405", "2024-12-31T03:04:05.000000"),
            ("2024-12-31T1200Z", "2024-12-31T12:00:00.000000"),
            ("2024-12-31T12:0", "2024-12-31T12:00:00.000000"),
            ("2024-12-31t23:59:59Z", "2024-12-31T23:59:59.000000"),
            ("0001-01-01T00:00:00", "0001-01-01T00:00:00.000000"),
            ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999"),
        ];
        for (spelling, utc) in accepted {
            assert_eq!(at(spelling), utc, "{spelling:?}");
        }
        let format = [
            "",
            "tomorrow",
            "2024-12-31T24:00:00",
            "2024-12-31T23:59:60",
            "2024-12-31T2",
            "2024-12-31T",
            "2024-12-31T23:59:59.",
            "2024-12-31T23:59:59+5",
            "2024-12-31T23:59:59+05:3",
            "2024-12-31T23:59:59+24:00",
            "2024-12-31T23:59:59Z+01",
            "2024-12-31T23:59:59+05:30Z",
            "2024-12-31T23:59:59z",
            "2024-12-31T23:59:59UTC",
            "2024-12-31T03:0405",
            "2024-12-3103:04",
            "2024-W0110:00",
            " 2024-12-31",
            "2024-12-31 ",
            "2024-12-31\n",
            "0000-01-01",
            "10000-01-01",
            "-5000-01-01",
            "+2024-12-31",
            "2024-02-30",
            "2024-001",
            "٢٠٢٤-01-05",
        ];
        for spelling in format {
            assert_eq!(
                parse_datetime(spelling),
                Err(Refusal::BadDateTime),
                "{spelling:?}"
            );
        }
        for spelling in ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-00:01"] {
            assert_eq!(
                parse_datetime(spelling),
                Err(Refusal::OutOfRange),
                "{spelling:?}"
            );
        }
    }

    #[test]
    fn dates_as_drf_reads_them() {
        for (spelling, (y, m, d)) in [
            ("2026-12-11", (2026, 12, 11)),
            ("20241231", (2024, 12, 31)),
            ("2024-W01-1", (2024, 1, 1)),
            ("2024-W01", (2024, 1, 1)),
            ("2024W01", (2024, 1, 1)),
            ("2024W011", (2024, 1, 1)),
            ("2024-1-5", (2024, 1, 5)),
            ("2024-1-05", (2024, 1, 5)),
            ("2024-01-5", (2024, 1, 5)),
            ("2024-02-29", (2024, 2, 29)),
            ("0001-01-01", (1, 1, 1)),
            ("9999-12-31", (9999, 12, 31)),
        ] {
            let got = parse_date(spelling).unwrap_or_else(|e| panic!("{spelling:?}: {e:?}"));
            assert_eq!(
                (got.year(), got.month(), got.day()),
                (y, m, d),
                "{spelling:?}"
            );
        }
        for spelling in [
            "",
            "2024-12-31T23:59:59Z",
            "2024-12-31T00:00",
            "20241231T00",
            "2024-12-31 ",
            " 2024-12-31",
            "2024-12-31\n",
            "2024-001",
            "2024-12",
            "2024",
            "2024/12/31",
            "2024-12-31Z",
            "+2024-12-31",
            "0000-01-01",
            "10000-01-01",
            "-5000-01-01",
            "2023-02-29",
            "2024-00-10",
            "2024-W53-1",
            "2023-W53-1",
            "2024-W01-8",
            "2024-W00-1",
            "2024-W01-0",
            "2024-W011",
            "٢٠٢٤-01-05",
        ] {
            assert_eq!(parse_date(spelling), Err(Refusal::BadDate), "{spelling:?}");
        }
    }

    #[test]
    fn fractions_keep_six_digits() {
        let t = parse_datetime("2024-01-01T00:00:00.000001Z").unwrap();
        assert_eq!(t.nanosecond(), 1_000);
        let t = parse_datetime("2024-01-01 00:00:00.1").unwrap();
        assert_eq!(t.nanosecond(), 100_000_000);
    }
}
