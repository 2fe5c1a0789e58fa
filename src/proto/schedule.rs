//! `schedule.*`: runtime schedules added, listed, removed, switched.

use serde::{Deserialize, Serialize};

use super::text::HumanDuration;
use super::{OnBusy, OnPreempt, Priority, ZoneSelection};

/// `schedule.add` params: what the config's `[[schedule]]` takes, as the
/// same words (one validator checks both).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleAddParams {
    pub name: String,
    /// 5 fields (min hour day month weekday) or 6 (seconds first).
    pub cron: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playlist: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Text to speak (espeak-ng) instead of a playlist or file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub say: Option<String>,
    /// The voice for `say` (default: `[tts] voice`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
    pub zones: ZoneSelection,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misfire_grace: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_preempt: Option<OnPreempt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_busy: Option<OnBusy>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// `schedule.remove`, `schedule.enable`, `schedule.disable` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleName {
    pub name: String,
}

/// `schedule.list` params (none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleListParams {}

crate::words! {
    /// Where a schedule is defined.
    pub enum ScheduleSource("schedule source") {
        /// The config file (the source of truth; changed there and reloaded).
        Config = "config",
        /// Added with `loa schedule add`, kept in the database.
        Runtime = "runtime",
    }
}

/// One schedule as `schedule.list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleInfo {
    pub name: String,
    pub cron: String,
    /// `playlist:NAME`, a file path, or `say:VOICE:"text"`.
    pub target: String,
    pub zones: ZoneSelection,
    pub priority: Priority,
    pub enabled: bool,
    pub source: ScheduleSource,
    pub max_duration_secs: Option<u64>,
    pub misfire_grace_secs: u64,
    pub on_preempt: OnPreempt,
    pub on_busy: OnBusy,
    /// Local time with offset of the next fire.
    pub next: Option<String>,
}

/// `schedule.list` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleList {
    pub schedules: Vec<ScheduleInfo>,
}

/// `schedule.add` / `schedule.enable` / `schedule.disable` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleChanged {
    pub schedule: ScheduleInfo,
    /// e.g. that a config schedule's switch lasts until the next reload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `schedule.remove` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleRemoved {
    pub removed: String,
}
