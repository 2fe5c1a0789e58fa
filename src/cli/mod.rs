//! The operator's side of the control socket: builds JSON-RPC params from
//! command-line arguments, calls the daemon, and prints tables people read
//! (or the raw JSON with `--json`). Exit codes: 0 ok, 1 refused or bad
//! input, 2 daemon unreachable.
//!
//! Must not touch: daemon state; everything goes through the socket.

pub mod client;
pub mod live;
pub mod stream;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};

use crate::cli::client::{Client, ClientError};

/// How long a CLI call waits for the daemon (a `play` answers once the
/// program is on air, which takes a prefill).
const TIMEOUT: Duration = Duration::from_secs(30);

pub struct Output {
    pub json: bool,
}

/// Calls `method` and prints the result with `human`, or as JSON.
pub fn call(socket: &Path, method: &str, params: Value, out: &Output, human: impl FnOnce(&Value) -> String) -> ExitCode {
    let result = Client::connect(socket, TIMEOUT).and_then(|mut c| c.call(method, params));
    match result {
        Ok(value) => {
            let text = if out.json {
                serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
            } else {
                human(&value)
            };
            let _ = std::io::stdout().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn fail(e: ClientError) -> ExitCode {
    eprintln!("loa: {e}");
    ExitCode::from(e.exit_code())
}

/// A path the operator typed: made absolute when it exists here, so
/// `loa play ./tin.mp3` means this folder's file; otherwise sent as typed
/// for the daemon to look up in its media folders.
pub fn media_arg(path: &Path) -> String {
    match std::fs::canonicalize(path) {
        Ok(abs) => abs.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

/// Sets each `key` that has a value (optional command-line flags).
pub fn set_optional<const N: usize>(params: &mut Value, pairs: [(&str, Option<String>); N]) {
    for (key, value) in pairs {
        if let Some(v) = value {
            params[key] = json!(v);
        }
    }
}

pub fn zones_arg(zones: &str) -> Value {
    if zones == "all" {
        json!("all")
    } else {
        json!(zones.split(',').map(str::trim).filter(|z| !z.is_empty()).collect::<Vec<_>>())
    }
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn secs(v: &Value) -> Option<Duration> {
    v.as_f64().filter(|s| *s >= 0.0).map(Duration::from_secs_f64)
}

fn clock(v: &Value) -> String {
    secs(v).map(crate::proto::text::clock_text).unwrap_or_else(|| "?".into())
}

/// Left-aligned columns sized to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.extend(std::iter::repeat_n(' ', widths[i] - cell.chars().count() + 2));
            }
        }
        text.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out += &line(row.iter().map(String::as_str).collect());
    }
    out
}

fn file_name(path: &str) -> &str {
    Path::new(path).file_name().and_then(|n| n.to_str()).unwrap_or(path)
}

pub fn status_text(v: &Value) -> String {
    let uptime = v["uptime_secs"].as_u64().map(|s| crate::proto::text::humanize(Duration::from_secs(s))).unwrap_or_default();
    let mut out = format!(
        "loa {} · up {uptime} · {} · config {}\n\n",
        s(v, "version"),
        s(v, "timezone"),
        s(v, "config")
    );
    out += &network_line(&v["network"]);
    let programs = v["programs"].as_array().cloned().unwrap_or_default();
    let find = |id: &Value| programs.iter().find(|p| p["id"] == *id);
    let mut rows = Vec::new();
    for zone in v["zones"].as_array().into_iter().flatten() {
        let (playing, priority, position) = match find(&zone["program"]) {
            Some(p) => {
                let item = &p["item"];
                let file = item["file"].as_str().map(file_name).unwrap_or("starting");
                let of = if item["count"].as_u64().unwrap_or(1) > 1 {
                    format!(" [{}/{}]", item["index"].as_u64().unwrap_or(0) + 1, item["count"])
                } else {
                    String::new()
                };
                (
                    format!("#{} {} · {file}{of}", p["id"], s(p, "name")),
                    s(p, "priority").to_string(),
                    if item.is_null() {
                        String::new()
                    } else {
                        format!("{} / {}", clock(&item["position_secs"]), clock(&item["duration_secs"]))
                    },
                )
            }
            None => ("(idle)".into(), String::new(), String::new()),
        };
        let e = &zone["endpoints"];
        let speakers = if e.is_object() {
            let n = |k: &str| e[k].as_u64().unwrap_or(0);
            let mut text = format!("{} online", n("online"));
            for key in ["degraded", "offline", "unknown", "unregistered"] {
                if n(key) > 0 {
                    text += &format!(", {} {key}", n(key));
                }
            }
            text
        } else {
            String::new()
        };
        rows.push(vec![s(zone, "name").to_string(), playing, priority, position, speakers]);
    }
    out += &table(&["ZONE", "ON AIR", "PRIORITY", "POSITION", "SPEAKERS"], &rows);
    let waiting: Vec<Vec<String>> = programs
        .iter()
        .filter(|p| s(p, "state") != "playing")
        .map(|p| {
            vec![
                format!("#{}", p["id"]),
                s(p, "name").to_string(),
                s(p, "priority").to_string(),
                s(p, "state").to_string(),
                p["zones"].as_array().map(|z| z.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")).unwrap_or_default(),
            ]
        })
        .collect();
    if !waiting.is_empty() {
        out += "\n";
        out += &table(&["PROGRAM", "NAME", "PRIORITY", "STATE", "ZONES"], &waiting);
    }
    let next: Vec<Vec<String>> = v["next"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            vec![
                s(n, "at").replace('T', " "),
                s(n, "schedule").to_string(),
                n["zones"].as_array().map(|z| z.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")).unwrap_or_default(),
            ]
        })
        .collect();
    out += "\n";
    if next.is_empty() {
        out += "NEXT: nothing scheduled\n";
    } else {
        out += &table(&["NEXT", "SCHEDULE", "ZONES"], &next);
    }
    out += &history_health_text(&v["history"]);
    out
}

/// The history lines of `loa status`: nothing while all is well; else
/// whether writes fail now and why, what waits, what was lost, and when the
/// history caught up.
pub fn history_health_text(h: &Value) -> String {
    let n = |k: &str| h[k].as_u64().unwrap_or(0);
    let time = |k: &str| s(h, k).replace('T', " ");
    let mut out = String::new();
    if h["failing"].is_object() {
        out += &format!(
            "\nWARNING: history writes are failing since {}: {}.\n  Broadcasts go on; {} write(s) wait in memory and are saved when this is fixed.\n  Database: {}\n  Last error: {}\n",
            s(&h["failing"], "since").replace('T', " "),
            s(&h["failing"], "problem"),
            n("waiting_writes"),
            s(h, "path"),
            s(h, "last_error")
        );
    } else if h["caught_up_at"].is_string() {
        out += &format!("\nhistory caught up at {} after writes failed ({})\n", time("caught_up_at"), s(h, "last_error"));
    } else if n("write_errors") > 0 {
        out += &format!(
            "\nWARNING: {} history request(s) failed ({}); last error: {}\n",
            n("write_errors"),
            s(h, "path"),
            s(h, "last_error")
        );
    }
    if n("lost_writes") > 0 {
        out += &format!(
            "WARNING: {} history write(s) lost since {} ({} row(s) missing entirely)\n",
            n("lost_writes"),
            time("lost_since"),
            n("lost_rows")
        );
    }
    out
}

/// One line on the sending interface: ok, or the error, since when and
/// what it cost; nothing for a daemon too old to report it.
fn network_line(n: &Value) -> String {
    if !n.is_object() {
        return String::new();
    }
    let total = n["packets_not_sent_total"].as_u64().unwrap_or(0);
    match n["error"].as_str() {
        None if total > 0 => format!("NETWORK: sending on {} ok ({total} packets not sent since start)\n\n", s(n, "interface")),
        None => format!("NETWORK: sending on {} ok\n\n", s(n, "interface")),
        Some(error) => format!(
            "NETWORK: ERROR cannot send on interface {}: {error}; since {} ({}), {} packets not sent; retrying\n\n",
            s(n, "interface"),
            s(n, "since").replace('T', " "),
            n["down_secs"].as_f64().map(|d| crate::proto::text::humanize(Duration::from_secs_f64(d))).unwrap_or_default(),
            n["packets_not_sent"].as_u64().unwrap_or(0),
        ),
    }
}

pub fn play_text(v: &Value) -> String {
    let list = |key: &str| v[key].as_array().map(|z| z.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default();
    let mut out = format!("program #{} on air on {}", v["id"], if list("zones").is_empty() { "no zone yet".into() } else { list("zones") });
    if !list("waiting").is_empty() {
        out += &format!("; waiting for {} (busy with higher or earlier programs)", list("waiting"));
    }
    out + &format!("\nstop it with: loa stop {}\n", v["id"])
}

/// Text for `loa say --file`: UTF-8, not blank, at most `tts::MAX_CHARS`
/// characters (checked before reading a huge file whole).
pub fn read_say_file(path: &std::path::Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    // Vietnamese letters take up to 4 bytes in UTF-8.
    if meta.len() > 4 * crate::media::tts::MAX_CHARS as u64 + 16 {
        return Err(format!(
            "{} is {} bytes: longer than the {} characters loa will speak; record a file for long notices",
            path.display(),
            meta.len(),
            crate::media::tts::MAX_CHARS
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text; save it as UTF-8", path.display()))?;
    let text = text.trim_start_matches('\u{feff}').to_string();
    crate::media::tts::check_text(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text)
}

pub fn stop_text(v: &Value) -> String {
    match v["stopped"].as_array() {
        Some(ids) if !ids.is_empty() => {
            format!("stopped {}\n", ids.iter().map(|i| format!("#{i}")).collect::<Vec<_>>().join(", "))
        }
        _ => "nothing was playing\n".into(),
    }
}

pub fn schedules_text(v: &Value) -> String {
    let rows: Vec<Vec<String>> = v["schedules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s_| {
            vec![
                s(s_, "name").to_string(),
                s(s_, "cron").to_string(),
                s(s_, "target").to_string(),
                match &s_["zones"] {
                    Value::String(w) => w.clone(),
                    z => z.as_array().map(|z| z.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")).unwrap_or_default(),
                },
                s(s_, "priority").to_string(),
                if s_["enabled"].as_bool() == Some(true) {
                    s(s_, "next").replace('T', " ")
                } else {
                    "disabled".into()
                },
                s(s_, "source").to_string(),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "no schedules\n".into();
    }
    table(&["NAME", "CRON", "PLAYS", "ZONES", "PRIORITY", "NEXT FIRE", "FROM"], &rows)
}

pub fn schedule_changed_text(v: &Value) -> String {
    let mut out = match v.get("schedule") {
        Some(sc) if !sc.is_null() => schedules_text(&json!({ "schedules": [sc] })),
        _ => match v.get("removed") {
            Some(name) => format!("removed schedule {}\n", name.as_str().unwrap_or("")),
            None => "ok\n".into(),
        },
    };
    if let Some(note) = v.get("note").and_then(Value::as_str) {
        out += &format!("note: {note}\n");
    }
    out
}

pub fn playlists_text(v: &Value) -> String {
    let rows: Vec<Vec<String>> = v["playlists"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let unknown = p["unknown_durations"].as_u64().unwrap_or(0);
            let mut flags = Vec::new();
            if p["shuffle"].as_bool() == Some(true) {
                flags.push("shuffle");
            }
            if p["loop"].as_bool() == Some(true) {
                flags.push("loop");
            }
            vec![
                s(p, "name").to_string(),
                p["items"].to_string(),
                format!(
                    "{}{}",
                    clock(&p["duration_secs"]),
                    if unknown > 0 { format!(" (+{unknown} unknown)") } else { String::new() }
                ),
                flags.join(","),
                s(p, "origin").to_string(),
                match p["error"].as_str() {
                    Some(e) => format!("ERROR: {e}"),
                    None => s(p, "source").to_string(),
                },
            ]
        })
        .collect();
    if rows.is_empty() {
        return "no playlists\n".into();
    }
    table(&["NAME", "ITEMS", "DURATION", "OPTIONS", "FROM", "SOURCE"], &rows)
}

pub fn playlist_loaded_text(v: &Value) -> String {
    let mut out = format!("playlist {} loaded: {} item(s)\n", s(v, "name"), v["items"]);
    for missing in v["missing"].as_array().into_iter().flatten() {
        out += &format!("warning: {} does not exist (it will be skipped when played)\n", missing.as_str().unwrap_or(""));
    }
    out
}

pub fn reload_text(v: &Value) -> String {
    let mut out = String::from("config reloaded\n");
    for (key, label) in [("zones_added", "zones added"), ("zones_removed", "zones removed")] {
        if let Some(z) = v[key].as_array().filter(|z| !z.is_empty()) {
            out += &format!("{label}: {}\n", z.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "));
        }
    }
    for note in v["notes"].as_array().into_iter().flatten() {
        out += &format!("note: {}\n", note.as_str().unwrap_or(""));
    }
    out
}

fn num(v: &Value, digits: usize) -> String {
    v.as_f64().map(|x| format!("{x:.digits$}")).unwrap_or_else(|| "-".into())
}

pub fn endpoints_text(v: &Value) -> String {
    let rows: Vec<Vec<String>> = v["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let state = s(e, "state");
            vec![
                s(e, "name").to_string(),
                s(e, "zone").to_string(),
                s(e, "address").to_string(),
                if state == "unregistered" { "UNREGISTERED".into() } else { state.to_string() },
                secs(&e["since_secs"]).map(crate::proto::text::humanize).unwrap_or_default(),
                num(&e["loss_pct"], 1),
                num(&e["jitter_ms"], 1),
                num(&e["rtt_ms"], 1),
                secs(&e["last_report_secs"]).map(|d| format!("{}s ago", d.as_secs())).unwrap_or_else(|| "never".into()),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "no endpoints listed in the config and none heard\n".into();
    }
    let mut out = table(
        &["ENDPOINT", "ZONE", "ADDRESS", "STATE", "SINCE", "LOSS %", "JITTER ms", "RTT ms", "LAST REPORT"],
        &rows,
    );
    if rows.iter().any(|r| r[3] == "UNREGISTERED") {
        out += "\nUNREGISTERED: reports from addresses not in the inventory — check who is listening\n";
    }
    out
}

/// `loa endpoints --watch`: the table, then one line per state change.
pub fn watch_endpoints(socket: &Path, params: Value, out: &Output) -> ExitCode {
    let mut client = match Client::connect(socket, TIMEOUT) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    match client.call("endpoints.subscribe", params.clone()) {
        Ok(v) if out.json => println!("{}", serde_json::to_string(&v).unwrap_or_default()),
        Ok(v) => print!("{}", endpoints_text(&v)),
        Err(e) => return fail(e),
    }
    let zone = params["zone"].as_str().map(str::to_string);
    loop {
        match client.next_notification() {
            Ok((_, change)) => {
                if zone.as_deref().is_some_and(|z| change["zone"] != z) {
                    continue;
                }
                if out.json {
                    println!("{}", serde_json::to_string(&change).unwrap_or_default());
                } else {
                    println!(
                        "{}  {} ({}) in {}: {} → {}  {}",
                        s(&change, "at"),
                        s(&change, "endpoint"),
                        s(&change, "address"),
                        s(&change, "zone"),
                        s(&change, "from"),
                        s(&change, "to"),
                        s(&change, "detail")
                    );
                }
                let _ = std::io::stdout().flush();
            }
            Err(e) => return fail(e),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum HistoryFormat {
    Table,
    Csv,
}

pub fn history_text(v: &Value, format: HistoryFormat) -> String {
    let rows = v["rows"].as_array().cloned().unwrap_or_default();
    if format == HistoryFormat::Csv {
        let mut out = String::from("id,start,end,outcome,program,program_name,source,sha256,zones,priority,origin,caller_uid,caller_pid,error\n");
        for r in &rows {
            let cells: Vec<String> = [
                "id", "start", "end", "outcome", "program", "program_name", "source", "sha256", "zones", "priority", "origin",
                "caller_uid", "caller_pid", "error",
            ]
            .iter()
            .map(|k| match &r[*k] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(";"),
                other => other.to_string(),
            })
            .map(|cell| {
                if cell.contains([',', '"', '\n', '\r']) {
                    format!("\"{}\"", cell.replace('"', "\"\""))
                } else {
                    cell
                }
            })
            .collect();
            out += &(cells.join(",") + "\n");
        }
        return out;
    }
    if rows.is_empty() {
        return "no history in this period\n".into();
    }
    let tz = jiff::tz::TimeZone::get(s(v, "timezone")).unwrap_or(jiff::tz::TimeZone::UTC);
    let local = |t: &Value| {
        t.as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(|t| t.to_zoned_datetime(tz.clone()).strftime("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default()
    };
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let zones = r["zones"].as_array().map(|z| z.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")).unwrap_or_default();
            let by = match r["caller_uid"].as_u64() {
                Some(uid) => format!("uid {uid}"),
                None => s(r, "origin").to_string(),
            };
            let sha = s(r, "sha256");
            vec![
                local(&r["start"]),
                local(&r["end"]).split(' ').nth(1).unwrap_or("").to_string(),
                s(r, "outcome").to_string(),
                // Missed fires and refused requests never became a program.
                match r["program"].as_u64() {
                    Some(0) | None => s(r, "program_name").to_string(),
                    Some(id) => format!("#{id} {}", s(r, "program_name")),
                },
                file_name(s(r, "source")).to_string(),
                zones,
                s(r, "priority").to_string(),
                by,
                sha.get(..12).unwrap_or(sha).to_string(),
                s(r, "error").to_string(),
            ]
        })
        .collect();
    table(&["START", "END", "OUTCOME", "PROGRAM", "FILE", "ZONES", "PRIORITY", "BY", "SHA-256", "NOTE"], &table_rows)
}

/// Default socket: the one in the config file when it can be read, else
/// the packaged default.
pub fn socket_path(socket: Option<PathBuf>, config: &Path) -> PathBuf {
    socket
        .or_else(|| crate::config::Config::load(config).ok().map(|c| c.daemon.socket))
        .unwrap_or_else(|| PathBuf::from("/run/loa/loa.sock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_to_the_widest_cell() {
        let t = table(&["A", "BB"], &[vec!["xxx".into(), "y".into()], vec!["z".into(), "w".into()]]);
        assert_eq!(t, "A    BB\nxxx  y\nz    w\n");
    }

    #[test]
    fn status_text_lists_zones_programs_and_next_fires() {
        let v = json!({
            "version": "0.1.0", "timezone": "Asia/Ho_Chi_Minh", "config": "/etc/loa/loa.toml", "uptime_secs": 3700,
            "zones": [{"name": "thon-1", "program": 3}, {"name": "thon-2", "program": null}],
            "programs": [{"id": 3, "name": "ban-tin", "priority": "scheduled", "state": "playing", "zones": ["thon-1"],
                          "item": {"index": 0, "count": 2, "file": "/m/tin.mp3", "position_secs": 12.5, "duration_secs": 90.0}}],
            "next": [{"schedule": "chieu", "at": "2026-11-27T17:00:00+07:00", "zones": ["thon-1", "thon-2"]}],
            "history": {"write_errors": 0}
        });
        let text = status_text(&v);
        assert!(text.contains("up 1h 1m"), "{text}");
        assert!(text.contains("thon-1  #3 ban-tin · tin.mp3 [1/2]  scheduled  0:12 / 1:30"), "{text}");
        assert!(text.contains("thon-2  (idle)"), "{text}");
        assert!(text.contains("2026-11-27 17:00:00+07:00  chieu     thon-1,thon-2"), "{text}");
    }

    #[test]
    fn status_text_says_when_the_interface_cannot_send() {
        let mut v = json!({"zones": [], "programs": [], "next": [], "history": {"write_errors": 0},
            "network": {"interface": "10.200.0.1", "state": "ok", "error": null, "packets_not_sent_total": 0}});
        assert!(status_text(&v).contains("NETWORK: sending on 10.200.0.1 ok\n"), "{}", status_text(&v));
        v["network"] = json!({"interface": "10.200.0.1", "state": "error", "error": "the address is no longer on this machine",
            "since": "2026-11-27T14:50:03+07:00", "down_secs": 12.4, "packets_not_sent": 620, "packets_not_sent_total": 620});
        let text = status_text(&v);
        assert!(
            text.contains("NETWORK: ERROR cannot send on interface 10.200.0.1: the address is no longer on this machine; \
                           since 2026-11-27 14:50:03+07:00 (12s), 620 packets not sent; retrying"),
            "{text}"
        );
    }

    #[test]
    fn status_says_why_history_writes_fail_what_waits_and_what_was_lost() {
        let failing = json!({
            "path": "/var/lib/loa/loa.db", "write_errors": 1, "last_error": "database or disk is full",
            "failing": {"since": "2026-11-27T07:00:00Z", "problem": "the disk is full"},
            "waiting_writes": 42, "lost_writes": 0, "lost_rows": 0, "lost_since": null, "caught_up_at": null
        });
        let text = history_health_text(&failing);
        assert!(text.contains("history writes are failing since 2026-11-27 07:00:00Z: the disk is full."), "{text}");
        assert!(text.contains("42 write(s) wait in memory"), "{text}");

        let recovered = json!({
            "path": "/var/lib/loa/loa.db", "write_errors": 1, "last_error": "database or disk is full",
            "failing": null, "waiting_writes": 0, "lost_writes": 3, "lost_rows": 1,
            "lost_since": "2026-11-27T07:01:00Z", "caught_up_at": "2026-11-27T07:05:00Z"
        });
        let text = history_health_text(&recovered);
        assert!(text.contains("history caught up at 2026-11-27 07:05:00Z"), "{text}");
        assert!(text.contains("3 history write(s) lost since 2026-11-27 07:01:00Z (1 row(s) missing entirely)"), "{text}");
        assert!(!text.contains("failing"), "{text}");

        let healthy = json!({"path": "/x", "write_errors": 0, "failing": null, "waiting_writes": 0, "lost_writes": 0});
        assert_eq!(history_health_text(&healthy), "");
    }

    #[test]
    fn history_csv_quotes_commas_and_quotes() {
        let v = json!({"rows": [{"id": 1, "source": "/m/a,\"b\".mp3", "zones": ["thon-1", "thon-2"], "outcome": "completed"}]});
        let csv = history_text(&v, HistoryFormat::Csv);
        assert!(csv.lines().nth(1).unwrap().contains(",\"/m/a,\"\"b\"\".mp3\","), "{csv}");
        assert!(csv.contains("thon-1;thon-2"), "{csv}");
    }
}
