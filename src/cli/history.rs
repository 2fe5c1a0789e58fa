//! `loa history`: the audit trail as a table in the daemon's local time,
//! as CSV (`proto::history`'s one CSV writer), or as JSON.
//!
//! Must not touch: daemon state (everything goes through the socket).

use std::process::ExitCode;

use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::proto::history::{History, HistoryParams, HistoryRow, CSV_HEADER};

use super::args::{Global, HistoryArgs};
use super::call_and_print;
use super::table::{file_name, table};

pub fn run(args: HistoryArgs, global: &Global) -> ExitCode {
    let HistoryArgs { since, limit, csv } = args;
    let render = if csv { csv_text } else { history_text };
    call_and_print(global, &HistoryParams { since, limit }, render)
}

/// The header, then one line per row.
pub fn csv_text(v: &History) -> String {
    let mut out = format!("{CSV_HEADER}\n");
    for row in &v.rows {
        out += &row.to_csv();
        out.push('\n');
    }
    out
}

pub fn history_text(v: &History) -> String {
    if v.rows.is_empty() {
        return "no history in this period\n".into();
    }
    // A zone name the tz database does not know (a daemon on a newer one)
    // still shows the rows, in UTC.
    let tz = TimeZone::get(&v.timezone).unwrap_or(TimeZone::UTC);
    let rows: Vec<Vec<String>> = v.rows.iter().map(|r| row(r, &tz)).collect();
    table(&["START", "END", "OUTCOME", "PROGRAM", "FILE", "ZONES", "PRIORITY", "BY", "SHA-256", "NOTE"], &rows)
}

fn row(r: &HistoryRow, tz: &TimeZone) -> Vec<String> {
    let local = |t: Timestamp, format: &str| t.to_zoned_datetime(tz.clone()).strftime(format).to_string();
    let sha = r.sha256.as_deref().unwrap_or("");
    vec![
        local(r.start, "%Y-%m-%d %H:%M:%S"),
        r.end.map(|t| local(t, "%H:%M:%S")).unwrap_or_default(),
        r.outcome.map(|o| o.to_string()).unwrap_or_default(),
        // Missed fires and refused requests never became a program.
        match r.program {
            Some(id) => format!("#{id} {}", r.program_name),
            None => r.program_name.clone(),
        },
        file_name(&r.source).to_string(),
        r.zones.join(","),
        r.priority.to_string(),
        match r.caller_uid {
            Some(uid) => format!("uid {uid}"),
            None => r.origin.clone(),
        },
        sha.get(..12).unwrap_or(sha).to_string(),
        note(r),
    ]
}

/// The error, and the silence pacer stalls put into the item.
fn note(r: &HistoryRow) -> String {
    let stall = r.skipped_ms.map(|ms| format!("{:.2} s silent (pacer stall)", ms as f64 / 1e3));
    [r.error.clone(), stall].into_iter().flatten().collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Outcome, Priority, ProgramId};

    fn history() -> History {
        let played = HistoryRow {
            id: 1,
            program: ProgramId::new(3),
            program_name: "ban-tin".into(),
            source: "/srv/audio/tin, \"sáng\".mp3".into(),
            sha256: Some("0123456789abcdef0123".into()),
            zones: vec!["thon-1".into(), "thon-2".into()],
            priority: Priority::Scheduled,
            origin: "schedule:sang".into(),
            caller_uid: None,
            caller_pid: None,
            start: "2026-11-27T23:00:00Z".parse().unwrap(),
            end: Some("2026-11-27T23:01:30Z".parse().unwrap()),
            outcome: Some(Outcome::Completed),
            error: None,
            skipped_ms: Some(1_500),
        };
        let missed = HistoryRow {
            id: 2,
            program: None,
            program_name: "trua".into(),
            source: "playlist:tin-tuc".into(),
            sha256: None,
            zones: vec!["thon-1".into()],
            priority: Priority::Announcement,
            origin: "uid:1000".into(),
            caller_uid: Some(1000),
            caller_pid: Some(4242),
            start: "2026-11-28T05:00:00Z".parse().unwrap(),
            end: None,
            outcome: Some(Outcome::Missed),
            error: Some("the daemon was down at 12:00".into()),
            skipped_ms: None,
        };
        History { timezone: "Asia/Ho_Chi_Minh".into(), rows: vec![played, missed] }
    }

    #[test]
    fn the_table_shows_local_times_programs_files_callers_and_short_hashes() {
        let text = history_text(&history());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("START                END       OUTCOME    PROGRAM     FILE"), "{text}");
        assert!(
            lines[1].starts_with(
                "2026-11-28 06:00:00  06:01:30  completed  #3 ban-tin  tin, \"sáng\".mp3   thon-1,thon-2  scheduled     schedule:sang  0123456789ab"
            ),
            "{text}"
        );
        assert!(lines[1].trim_end().ends_with("0123456789ab  1.50 s silent (pacer stall)"), "{text}");
        assert!(
            lines[2].starts_with("2026-11-28 12:00:00            missed     trua        playlist:tin-tuc"),
            "a missed fire has no program number and no end: {text}"
        );
        assert!(lines[2].ends_with("uid 1000                     the daemon was down at 12:00"), "{text}");
        let empty = History { timezone: "UTC".into(), rows: vec![] };
        assert_eq!(history_text(&empty), "no history in this period\n");
    }

    #[test]
    fn csv_is_the_header_then_one_quoted_line_per_row() {
        let csv = csv_text(&history());
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert!(lines[0].starts_with("id,start,end,outcome,program,"));
        assert_eq!(
            lines[1],
            "1,2026-11-27T23:00:00Z,2026-11-27T23:01:30Z,completed,3,ban-tin,\"/srv/audio/tin, \"\"sáng\"\".mp3\",0123456789abcdef0123,thon-1;thon-2,scheduled,schedule:sang,,,,1500"
        );
        assert_eq!(lines[2], "2,2026-11-28T05:00:00Z,,missed,,trua,playlist:tin-tuc,,thon-1,announcement,uid:1000,1000,4242,the daemon was down at 12:00,");
        assert_eq!(lines.len(), 3);
    }
}
