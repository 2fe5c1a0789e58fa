//! The one schedule validator: the config file's `[[schedule]]` tables, the
//! control socket's `schedule.add` and the runtime schedules read back from
//! the database all go through [`check`], so they follow the same rules and
//! say the same words. A [`FieldError`] names the field it is about; the
//! config turns that into `FILE:LINE:COL: field: message`, the socket into
//! `invalid params: schedule.add: field: message` (the shape the typed
//! protocol gives its own parse errors, so a bad word reads the same
//! whichever layer caught it).
//!
//! Must not touch: files (a `file` target is taken as written here; the
//! daemon checks socket paths against the media roots), the clock.

use std::fmt;
use std::time::Duration;

use super::{name_ok, parse_duration, Schedule, ScheduleTarget, ZoneSelection, DEFAULT_MISFIRE_GRACE};
use crate::proto::say::{check_text, check_voice};
use crate::proto::{OnBusy, OnPreempt, Priority};
use crate::schedule::CronExpr;

/// A schedule as written: every value in the operator's words.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleFields<'a> {
    pub name: &'a str,
    pub cron: &'a str,
    pub playlist: Option<&'a str>,
    pub file: Option<&'a str>,
    /// Text to speak.
    pub say: Option<&'a str>,
    pub voice: Option<&'a str>,
    /// `None` is "all"; otherwise zone names.
    pub zones: Option<&'a [String]>,
    pub priority: Option<&'a str>,
    pub max_duration: Option<&'a str>,
    pub misfire_grace: Option<&'a str>,
    pub on_preempt: Option<&'a str>,
    pub on_busy: Option<&'a str>,
    pub enabled: bool,
}

/// What a schedule may name.
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    pub zones: &'a [String],
    pub playlists: &'a [String],
}

/// The field an error is about, named as the config and the wire name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    Cron,
    /// Which of playlist / file / say: no one field.
    Target,
    Playlist,
    Say,
    Voice,
    Zones,
    Priority,
    MaxDuration,
    MisfireGrace,
    OnPreempt,
    OnBusy,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Cron => "cron",
            Field::Target => "target",
            Field::Playlist => "playlist",
            Field::Say => "say",
            Field::Voice => "voice",
            Field::Zones => "zones",
            Field::Priority => "priority",
            Field::MaxDuration => "max_duration",
            Field::MisfireGrace => "misfire_grace",
            Field::OnPreempt => "on_preempt",
            Field::OnBusy => "on_busy",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: Field,
    pub message: String,
}

impl fmt::Display for FieldError {
    /// `field: message`, or the message alone when no one field is meant.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Field::Target => f.write_str(&self.message),
            field => write!(f, "{}: {}", field.as_str(), self.message),
        }
    }
}

/// A duration's words back, as [`parse_duration`] reads them ("1h 30m",
/// "0s"): for values that arrived typed and must go through [`check`].
pub fn duration_words(d: Duration) -> String {
    match jiff::SignedDuration::try_from(d) {
        Ok(d) => format!("{d:#}"),
        Err(_) => format!("{}s", d.as_secs()),
    }
}

/// What the typed protocol says of a duration it cannot read, word for word.
fn not_a_duration(text: &str) -> String {
    format!(r#""{text}" is not a duration; write e.g. "90s", "30m" or "1h30m""#)
}

fn listed(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Checks every field (all errors, in field order) and builds the schedule.
pub fn check(f: &ScheduleFields<'_>, known: Known<'_>) -> Result<Schedule, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut error = |field: Field, message: String| errors.push(FieldError { field, message });

    if !name_ok(f.name) {
        error(
            Field::Name,
            format!("schedule name \"{}\" may only use letters A–Z, a–z, digits 0–9, '-' and '_'", f.name),
        );
    }
    let cron = CronExpr::parse(f.cron).map_err(|e| error(Field::Cron, e.to_string())).ok();
    if let (Some(_), None) = (f.voice, f.say) {
        error(Field::Voice, "a voice is only for a schedule that says text (say)".into());
    }
    if let Some(Err(e)) = f.voice.map(check_voice) {
        error(Field::Voice, e.to_string());
    }
    let target = match (f.playlist, f.file, f.say) {
        (None, None, Some(text)) => {
            let text = text.trim();
            if let Err(e) = check_text(text) {
                error(Field::Say, e.to_string());
            }
            Some(ScheduleTarget::Say { text: text.to_string(), voice: f.voice.map(str::to_string) })
        }
        (Some(playlist), None, None) => {
            if !known.playlists.iter().any(|p| p == playlist) {
                error(Field::Playlist, format!("unknown playlist \"{playlist}\"; playlists: {}", listed(known.playlists)));
            }
            Some(ScheduleTarget::Playlist(playlist.to_string()))
        }
        (None, Some(file), None) => Some(ScheduleTarget::File(file.into())),
        _ => {
            error(
                Field::Target,
                "a schedule needs exactly one of playlist (a name), file (a path) or say (text to speak)".into(),
            );
            None
        }
    };
    let zones = match f.zones {
        None => ZoneSelection::All,
        Some(names) => {
            if names.is_empty() {
                error(Field::Zones, "no zones given; list zone names or write \"all\"".into());
            }
            for zone in names {
                if known.zones.contains(zone) {
                    continue;
                }
                if zone.contains(',') {
                    let parts: Vec<String> = zone.split(',').map(|z| format!("\"{}\"", z.trim())).collect();
                    error(
                        Field::Zones,
                        format!("\"{zone}\" is not one zone name; list zones one by one, e.g. [{}]", parts.join(", ")),
                    );
                } else {
                    error(Field::Zones, format!("unknown zone \"{zone}\"; zones: {}", listed(known.zones)));
                }
            }
            ZoneSelection::Named(names.to_vec())
        }
    };
    let priority = match f.priority.map(str::parse::<Priority>) {
        None => Priority::Scheduled,
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            error(Field::Priority, e.to_string());
            Priority::Scheduled
        }
    };
    let max_duration = f.max_duration.and_then(|text| match parse_duration(text) {
        Some(d) if d.is_zero() => {
            error(Field::MaxDuration, "must be more than zero (leave it out for no limit)".into());
            None
        }
        Some(d) => Some(d),
        None => {
            error(Field::MaxDuration, not_a_duration(text));
            None
        }
    });
    // Zero is allowed: "never late" (the scheduler still allows its
    // minimum for timer jitter).
    let misfire_grace = match f.misfire_grace.map(|text| (text, parse_duration(text))) {
        None => DEFAULT_MISFIRE_GRACE,
        Some((_, Some(d))) => d,
        Some((text, None)) => {
            error(Field::MisfireGrace, not_a_duration(text));
            DEFAULT_MISFIRE_GRACE
        }
    };
    let on_preempt = match f.on_preempt.map(str::parse::<OnPreempt>) {
        None => OnPreempt::default(),
        Some(Ok(v)) => v,
        Some(Err(e)) => {
            error(Field::OnPreempt, e.to_string());
            OnPreempt::default()
        }
    };
    let on_busy = match f.on_busy.map(str::parse::<OnBusy>) {
        None => OnBusy::default(),
        Some(Ok(v)) => v,
        Some(Err(e)) => {
            error(Field::OnBusy, e.to_string());
            OnBusy::default()
        }
    };
    match (cron, target) {
        (Some(cron), Some(target)) if errors.is_empty() => Ok(Schedule {
            name: f.name.to_string(),
            cron,
            target,
            zones,
            priority,
            max_duration,
            misfire_grace,
            enabled: f.enabled,
            on_preempt,
            on_busy,
        }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests;
