//! Cron expressions (parsed by croner) evaluated in the civil time of an IANA
//! time zone (jiff). Owns the mapping from civil matches to instants across
//! DST transitions; knows nothing of entries, grace or persistence.
//!
//! croner searches *civil* time: we hand it chrono `Utc` values as a stand-in
//! for naive local time, so croner's own DST logic never runs and every
//! transition rule lives in [`civil_to_instant`]:
//!
//! - gap (spring forward, civil time does not exist): the match fires at the
//!   first instant after the gap, i.e. when the clock jumps. A 02:30 news on
//!   the night the clock goes 02:00→03:00 plays at 03:00 rather than being
//!   lost, as cronie/Vixie cron do. Several matches inside one gap collapse
//!   into that single instant.
//! - fold (fall back, civil time happens twice): the match fires once, at the
//!   earlier instant. A civil time that already played in the first pass is
//!   not played again in the repeated hour, so a daily 02:30 news plays once
//!   and a `*/30` schedule is silent for the repeated hour instead of
//!   playing it twice.

use chrono::{Datelike as _, TimeZone as _, Timelike as _};
use croner::parser::{CronParser, Seconds, Year};
use jiff::civil;
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::Timestamp;

/// Names and valid values of the fields of a 6-field expression, in order.
const FIELDS: [(&str, &str); 6] = [
    ("second", "0-59"),
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31, L or W"),
    ("month", "1-12 or JAN-DEC"),
    ("weekday", "0-7 or SUN-SAT (0 and 7 are Sunday)"),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error(
        "cron expression is empty; expected 5 fields (minute hour day month weekday) or 6 (with seconds first)"
    )]
    Empty,
    #[error(
        "cron expression {expr:?} has {fields} fields; expected 5 (minute hour day month weekday) or 6 (with seconds first)"
    )]
    FieldCount { expr: String, fields: usize },
    /// One field is out of range or malformed; `field` names it.
    #[error(
        "cron expression {expr:?} has an invalid {field} field {value:?}: {reason}; expected {expected}"
    )]
    Field {
        expr: String,
        field: &'static str,
        value: String,
        reason: String,
        expected: &'static str,
    },
    /// croner refused the whole expression (e.g. a bad @nickname).
    #[error("cron expression {expr:?} is invalid: {reason}")]
    Invalid { expr: String, reason: String },
}

#[derive(Debug, Clone)]
pub struct CronExpr {
    text: String,
    cron: croner::Cron,
}

impl PartialEq for CronExpr {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl CronExpr {
    /// 5 fields (min hour dom month dow) or 6 (sec min hour dom month dow),
    /// or a croner nickname (`@hourly`, `@daily`, `@weekly`, `@monthly`,
    /// `@yearly`). Day-of-month and weekday combine with OR, as in Vixie cron.
    pub fn parse(expr: &str) -> Result<CronExpr, CronError> {
        let text = expr.trim();
        if text.is_empty() {
            return Err(CronError::Empty);
        }
        let fields: Vec<&str> = text.split_whitespace().collect();
        let nickname = fields.len() == 1 && fields[0].starts_with('@');
        if !nickname && !(5..=6).contains(&fields.len()) {
            return Err(CronError::FieldCount {
                expr: text.to_string(),
                fields: fields.len(),
            });
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build();
        match parser.parse(text) {
            Ok(cron) => Ok(CronExpr {
                text: text.to_string(),
                cron,
            }),
            Err(e) if nickname => Err(CronError::Invalid {
                expr: text.to_string(),
                reason: croner_reason(&e),
            }),
            Err(e) => Err(blame_field(text, &fields, &e)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first fire instant strictly after `after`, evaluated in civil time
    /// of `tz`, DST-correct (see the module comment). None if the expression
    /// never matches again (e.g. `0 0 30 2 *`) before croner's year limit.
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        // Whole seconds: croner works on seconds, and a match in the same
        // second as a fractional `after` lies before it anyway.
        let mut civil = floor_second(tz.to_datetime(after));
        loop {
            let start = to_chrono(civil)?;
            let found = self.cron.find_next_occurrence(&start, false).ok()?;
            civil = from_chrono(found)?;
            let instant = civil_to_instant(civil, tz)?;
            if instant > after {
                return Some(instant);
            }
            // A fold match whose earlier instant is already past (we are in
            // the repeated hour): keep walking civil time. Bounded by the
            // number of matches in one fold.
        }
    }

    /// The last fire instant at or before `at` (the inverse of
    /// [`CronExpr::next_after`]): `next_after(t) == Some(x)` implies
    /// `prev_at_or_before(x) == Some(x)`. Used to find the latest missed fire
    /// without walking every one of them.
    pub fn prev_at_or_before(&self, at: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let civil_at = tz.to_datetime(at);
        if let AmbiguousOffset::Fold { before, after } =
            tz.to_ambiguous_timestamp(civil_at).offset()
        {
            if before != after && tz.to_offset(at) == after {
                // Second pass of a fold: every civil time of the fold maps to
                // its first-pass instant, all before the transition.
                let transition = tz
                    .preceding(at.checked_add(jiff::SignedDuration::from_nanos(1)).ok()?)
                    .next()?
                    .timestamp();
                let last_of_first_pass = transition
                    .checked_sub(jiff::SignedDuration::from_nanos(1))
                    .ok()?;
                return self.prev_at_or_before(last_of_first_pass, tz);
            }
        }
        let start = to_chrono(floor_second(civil_at))?;
        let found = self.cron.find_previous_occurrence(&start, true).ok()?;
        civil_to_instant(from_chrono(found)?, tz)
    }
}

impl std::fmt::Display for CronExpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for CronExpr {
    type Err = CronError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CronExpr::parse(s)
    }
}

/// Maps a civil match to the instant it fires (see the module comment).
fn civil_to_instant(civil: civil::DateTime, tz: &TimeZone) -> Option<Timestamp> {
    match tz.to_ambiguous_timestamp(civil).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(civil).ok(),
        AmbiguousOffset::Fold { before, .. } => before.to_timestamp(civil).ok(),
        AmbiguousOffset::Gap { after, .. } => {
            // Read with the offset after the gap, the civil time lies before
            // the transition; the transition is the first instant that exists.
            let before_gap = after.to_timestamp(civil).ok()?;
            Some(tz.following(before_gap).next()?.timestamp())
        }
    }
}

/// Finds which field croner objects to, so the message names it.
fn blame_field(text: &str, fields: &[&str], whole: &croner::errors::CronError) -> CronError {
    let six: Vec<&str> = if fields.len() == 5 {
        std::iter::once("0").chain(fields.iter().copied()).collect()
    } else {
        fields.to_vec()
    };
    let parser = CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Disallowed)
        .build();
    for (i, value) in six.iter().enumerate() {
        let mut probe = ["*"; 6];
        probe[0] = "0";
        probe[i] = value;
        if let Err(e) = parser.parse(&probe.join(" ")) {
            return CronError::Field {
                expr: text.to_string(),
                field: FIELDS[i].0,
                value: value.to_string(),
                reason: croner_reason(&e),
                expected: FIELDS[i].1,
            };
        }
    }
    CronError::Invalid {
        expr: text.to_string(),
        reason: croner_reason(whole),
    }
}

/// croner's message in our style: lowercase, no trailing period, and the
/// allowed range spelled out.
fn croner_reason(e: &croner::errors::CronError) -> String {
    use croner::errors::CronError as E;
    let raw = match e {
        E::EmptyPattern => "empty pattern".to_string(),
        E::InvalidDate => "invalid date".to_string(),
        E::InvalidTime => "invalid time".to_string(),
        E::TimeSearchLimitExceeded => "time search limit exceeded".to_string(),
        E::InvalidPattern(m) | E::IllegalCharacters(m) | E::ComponentError(m) => m.clone(),
    };
    let raw = raw
        .replace(
            "is out of bounds for the current range",
            "is outside the allowed range",
        )
        .replace("Position ", "value ");
    let mut s = raw.trim().trim_end_matches('.').to_string();
    if let Some(first) = s.get(0..1) {
        s = first.to_lowercase() + &s[1..];
    }
    s
}

fn floor_second(dt: civil::DateTime) -> civil::DateTime {
    dt.with().subsec_nanosecond(0).build().unwrap_or(dt)
}

fn to_chrono(dt: civil::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    let naive =
        chrono::NaiveDate::from_ymd_opt(dt.year().into(), dt.month() as u32, dt.day() as u32)?
            .and_hms_opt(dt.hour() as u32, dt.minute() as u32, dt.second() as u32)?;
    Some(chrono::Utc.from_utc_datetime(&naive))
}

fn from_chrono(dt: chrono::DateTime<chrono::Utc>) -> Option<civil::DateTime> {
    let n = dt.naive_utc();
    civil::DateTime::new(
        i16::try_from(n.year()).ok()?,
        n.month() as i8,
        n.day() as i8,
        n.hour() as i8,
        n.minute() as i8,
        n.second() as i8,
        0,
    )
    .ok()
}
