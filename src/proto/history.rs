//! `history`: what played, where, when, who started it, and the hash —
//! the audit trail's rows as the store keeps them and the wire carries
//! them, and the one CSV writer.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Priority, ProgramId};

crate::words! {
    /// How a history item ended.
    pub enum Outcome("outcome") {
        Completed = "completed",
        Preempted = "preempted",
        Stopped = "stopped",
        Failed = "failed",
        /// The daemon stopped (crash, power cut, restart) while it played.
        Interrupted = "interrupted",
        /// A schedule fired too late to play (past its misfire grace).
        Missed = "missed",
    }
}

/// `history` params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    /// `2026-11-27` (local midnight), `2026-11-27 06:00`, an RFC 3339
    /// instant, or an age such as `2h` / `3d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Only the newest N rows (the daemon caps an unlimited query at 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// `history` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The daemon's IANA time zone, for showing local times.
    pub timezone: String,
    pub rows: Vec<HistoryRow>,
}

/// One audit row: one item of one program on air (or a refusal, a missed
/// fire, a failed item).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRow {
    pub id: i64,
    /// None for rows that never became a program (a missed fire, a refused
    /// request before it had an id).
    pub program: Option<ProgramId>,
    pub program_name: String,
    pub source: String,
    pub sha256: Option<String>,
    pub zones: Vec<String>,
    pub priority: Priority,
    pub origin: String,
    pub caller_uid: Option<u32>,
    pub caller_pid: Option<i32>,
    pub start: Timestamp,
    pub end: Option<Timestamp>,
    pub outcome: Option<Outcome>,
    pub error: Option<String>,
    /// Silence in this item because the pacer stalled while it was on air
    /// (milliseconds, all stalls added up; the item resumed where it
    /// stopped, that much later); None: no stall hit it. Absent from
    /// daemons before issue 14.
    #[serde(default)]
    pub skipped_ms: Option<u64>,
}

/// The CSV header matching [`HistoryRow::to_csv`].
pub const CSV_HEADER: &str =
    "id,start,end,outcome,program,program_name,source,sha256,zones,priority,origin,caller_uid,caller_pid,error,skipped_ms";

impl HistoryRow {
    /// One CSV line (RFC 4180 quoting, no trailing newline); zones are
    /// joined with `;`.
    pub fn to_csv(&self) -> String {
        let opt = |v: Option<String>| v.unwrap_or_default();
        let fields = [
            self.id.to_string(),
            self.start.to_string(),
            opt(self.end.map(|t| t.to_string())),
            opt(self.outcome.map(|o| o.to_string())),
            opt(self.program.map(|p| p.to_string())),
            self.program_name.clone(),
            self.source.clone(),
            opt(self.sha256.clone()),
            self.zones.join(";"),
            self.priority.to_string(),
            self.origin.clone(),
            opt(self.caller_uid.map(|u| u.to_string())),
            opt(self.caller_pid.map(|p| p.to_string())),
            opt(self.error.clone()),
            opt(self.skipped_ms.map(|ms| ms.to_string())),
        ];
        fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",")
    }
}

fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> HistoryRow {
        HistoryRow {
            id: 7,
            program: ProgramId::new(3),
            program_name: "tin-tuc".into(),
            source: "/m/a,\"b\".mp3".into(),
            sha256: None,
            zones: vec!["thon-1".into(), "thon-2".into()],
            priority: Priority::Scheduled,
            origin: "schedule:sang".into(),
            caller_uid: None,
            caller_pid: None,
            start: "2026-12-04T00:00:00Z".parse().unwrap(),
            end: None,
            outcome: Some(Outcome::Completed),
            error: Some("line one\nline two".into()),
            skipped_ms: None,
        }
    }

    #[test]
    fn csv_quotes_commas_quotes_and_newlines_and_matches_the_header() {
        let line = row().to_csv();
        assert_eq!(
            line,
            "7,2026-12-04T00:00:00Z,,completed,3,tin-tuc,\"/m/a,\"\"b\"\".mp3\",,thon-1;thon-2,scheduled,schedule:sang,,,\"line one\nline two\","
        );
        assert_eq!(CSV_HEADER.split(',').count(), 15);
    }

    #[test]
    fn csv_of_a_vietnamese_path_with_a_comma_and_a_quote() {
        let mut r = row();
        r.source = r#"/srv/audio/lũ, "khẩn".opus"#.into();
        r.error = None;
        r.end = Some("2024-06-01T05:01:30.250Z".parse().unwrap());
        r.skipped_ms = Some(1500);
        assert_eq!(
            r.to_csv(),
            r#"7,2026-12-04T00:00:00Z,2024-06-01T05:01:30.25Z,completed,3,tin-tuc,"/srv/audio/lũ, ""khẩn"".opus",,thon-1;thon-2,scheduled,schedule:sang,,,,1500"#
        );
    }

    #[test]
    fn a_row_round_trips_and_a_bad_stored_word_is_an_error() {
        let json = serde_json::to_value(row()).unwrap();
        assert_eq!(json["program"], 3);
        assert_eq!(json["outcome"], "completed");
        assert_eq!(serde_json::from_value::<HistoryRow>(json.clone()).unwrap(), row());
        let mut old = json.clone();
        old.as_object_mut().unwrap().remove("skipped_ms");
        assert_eq!(serde_json::from_value::<HistoryRow>(old).unwrap(), row(), "a row from an older daemon reads");
        let mut bad = json;
        bad["outcome"] = "finished".into();
        let err = serde_json::from_value::<HistoryRow>(bad).unwrap_err().to_string();
        assert!(err.contains(r#"unknown outcome "finished"; valid: completed, preempted"#), "{err}");
    }
}
