//! `loa status`: what plays on each zone, what waits, the next fires, and
//! whether the network and the history work — from the typed `Status`.
//!
//! Must not touch: daemon state (the answer is all it reads).

use std::process::ExitCode;
use std::time::Duration;

use crate::proto::status::{HistoryHealth, NetworkStatus, PacerStatus, ProgramState, Status, StatusParams, ZoneSecurity, ZoneStatus};
use crate::proto::text::{clock_text, humanize};
use crate::proto::EndpointCounts;

use super::args::Global;
use super::table::{file_name, spaced, table};

pub fn run(global: &Global) -> ExitCode {
    super::call_and_print(global, &StatusParams {}, status_text)
}

/// Seconds as the daemon sends them, `None` when negative or not finite.
fn secs(s: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(s).ok()
}

/// A position or length as a player shows it; "?" when unknown.
pub(crate) fn clock(s: Option<f64>) -> String {
    s.and_then(secs).map(clock_text).unwrap_or_else(|| "?".into())
}

pub fn status_text(v: &Status) -> String {
    let mut out = format!(
        "loa {} · up {} · {} · config {}\n\n",
        v.version,
        humanize(Duration::from_secs(v.uptime_secs)),
        v.timezone,
        v.config
    );
    out += &network_line(&v.network);
    out += &pacer_lines(&v.pacer, &v.zones);
    let mut rows = Vec::new();
    for zone in &v.zones {
        let program = zone.program.and_then(|id| v.programs.iter().find(|p| p.id == id));
        let (playing, priority, position) = match program {
            Some(p) => {
                let (file, of, position) = match &p.item {
                    Some(item) => (
                        item.file.as_deref().map(file_name).unwrap_or("starting"),
                        if item.count > 1 { format!(" [{}/{}]", item.index + 1, item.count) } else { String::new() },
                        format!("{} / {}", clock(Some(item.position_secs)), clock(item.duration_secs)),
                    ),
                    None => ("starting", String::new(), String::new()),
                };
                (format!("#{} {} · {file}{of}", p.id, p.name), p.priority.to_string(), position)
            }
            None => ("(idle)".into(), String::new(), String::new()),
        };
        rows.push(vec![zone.name.clone(), playing, priority, position, speakers(&zone.endpoints)]);
    }
    out += &table(&["ZONE", "ON AIR", "PRIORITY", "POSITION", "SPEAKERS"], &rows);
    for zone in v.zones.iter().filter(|z| z.security == ZoneSecurity::None) {
        out += &format!("warning: {}\n", crate::config::insecure_zone_warning(&zone.name));
    }
    let waiting: Vec<Vec<String>> = v
        .programs
        .iter()
        .filter(|p| p.state != ProgramState::Playing)
        .map(|p| vec![format!("#{}", p.id), p.name.clone(), p.priority.to_string(), p.state.to_string(), p.zones.join(",")])
        .collect();
    if !waiting.is_empty() {
        out += "\n";
        out += &table(&["PROGRAM", "NAME", "PRIORITY", "STATE", "ZONES"], &waiting);
    }
    let next: Vec<Vec<String>> =
        v.next.iter().map(|n| vec![spaced(&n.at), n.schedule.clone(), n.zones.join(",")]).collect();
    out += "\n";
    if next.is_empty() {
        out += "NEXT: nothing scheduled\n";
    } else {
        out += &table(&["NEXT", "SCHEDULE", "ZONES"], &next);
    }
    out += &history_health_text(&v.history);
    out
}

/// "2 online, 1 offline": online always, the other states when any.
fn speakers(e: &EndpointCounts) -> String {
    let mut text = format!("{} online", e.online);
    for (n, state) in [(e.degraded, "degraded"), (e.offline, "offline"), (e.unknown, "unknown"), (e.unregistered, "unregistered")] {
        if n > 0 {
            text += &format!(", {n} {state}");
        }
    }
    text
}

/// The history lines of `loa status`: nothing while all is well; else
/// whether writes fail now and why, what waits, what was lost, and when the
/// history caught up.
pub fn history_health_text(h: &HistoryHealth) -> String {
    let time = |t: Option<jiff::Timestamp>| t.map(|t| spaced(&t.to_string())).unwrap_or_default();
    let last_error = h.last_error.as_deref().unwrap_or("");
    let mut out = String::new();
    if let Some(failing) = &h.failing {
        out += &format!(
            "\nWARNING: history writes are failing since {}: {}.\n  Broadcasts go on; {} write(s) wait in memory and are saved when this is fixed.\n  Database: {}\n  Last error: {}\n",
            spaced(&failing.since.to_string()),
            failing.problem,
            h.waiting_writes,
            h.path,
            last_error
        );
    } else if h.caught_up_at.is_some() {
        out += &format!("\nhistory caught up at {} after writes failed ({last_error})\n", time(h.caught_up_at));
    } else if h.write_errors > 0 {
        out += &format!("\nWARNING: {} history request(s) failed ({}); last error: {last_error}\n", h.write_errors, h.path);
    }
    if h.lost_writes > 0 {
        out += &format!(
            "WARNING: {} history write(s) lost since {} ({} row(s) missing entirely)\n",
            h.lost_writes,
            time(h.lost_since),
            h.lost_rows
        );
    }
    out
}

/// Nothing while the pacer never stalled; else one line with the totals
/// ("pacer: 1 stall, 75 ticks skipped, longest 1.50 s") and one per zone
/// that was on air then, with the silence its speakers heard.
fn pacer_lines(p: &PacerStatus, zones: &[ZoneStatus]) -> String {
    if p.stalls == 0 {
        return String::new();
    }
    let plural = |n: u64, word: &str| if n == 1 { format!("{n} {word}") } else { format!("{n} {word}s") };
    let mut out = format!(
        "PACER: {}, {} skipped, longest {:.2} s (the machine suspended or loa was stopped)\n",
        plural(p.stalls, "stall"),
        plural(p.skipped_ticks, "tick"),
        p.longest_stall_ms as f64 / 1e3
    );
    for zone in zones.iter().filter(|z| z.stalls > 0) {
        out += &format!(
            "  zone {}: {:.2} s of silence ({})\n",
            zone.name,
            zone.skipped_ms as f64 / 1e3,
            plural(zone.stalls, "stall")
        );
    }
    out + "\n"
}

/// One line on the sending interface: ok, or the error, since when and
/// what it cost.
fn network_line(n: &NetworkStatus) -> String {
    let total = n.packets_not_sent_total;
    match &n.error {
        None if total > 0 => format!("NETWORK: sending on {} ok ({total} packets not sent since start)\n\n", n.interface),
        None => format!("NETWORK: sending on {} ok\n\n", n.interface),
        Some(error) => format!(
            "NETWORK: ERROR cannot send on interface {}: {error}; since {} ({}), {} packets not sent; retrying\n\n",
            n.interface,
            n.since.as_deref().map(spaced).unwrap_or_default(),
            n.down_secs.and_then(secs).map(humanize).unwrap_or_default(),
            n.packets_not_sent,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::status::{Failing, ItemStatus, NetState, NextFire, ProgramStatus, SapStatus, ZoneStatus};
    use crate::proto::{Priority, ProgramId};

    fn zone(name: &str, program: Option<u64>, endpoints: EndpointCounts) -> ZoneStatus {
        ZoneStatus {
            name: name.into(),
            packets_not_sent: 0,
            group: Some("239.255.77.1:5004".into()),
            program: program.and_then(ProgramId::new),
            priority: None,
            endpoints,
            security: ZoneSecurity::Srtp,
            stalls: 0,
            skipped_ms: 0,
        }
    }

    fn program(id: u64, name: &str, state: ProgramState, zones: &[&str], item: Option<ItemStatus>) -> ProgramStatus {
        ProgramStatus {
            id: ProgramId::new(id).unwrap(),
            name: name.into(),
            priority: Priority::Scheduled,
            origin: "schedule:sang".into(),
            state,
            zones: zones.iter().map(|z| z.to_string()).collect(),
            playing_on: vec![],
            looped: false,
            item,
            created: "2026-11-27T09:00:00Z".into(),
            on_air_since: None,
        }
    }

    fn network_ok() -> NetworkStatus {
        NetworkStatus {
            interface: "127.0.0.1".into(),
            state: NetState::Ok,
            error: None,
            since: None,
            down_secs: None,
            packets_not_sent: 0,
            packets_not_sent_total: 0,
        }
    }

    fn status() -> Status {
        let item = ItemStatus {
            index: 0,
            count: 2,
            file: Some("/m/tin.mp3".into()),
            position_secs: 12.5,
            duration_secs: Some(90.0),
            sha256: None,
            gain_db: Some(-2.5),
        };
        let mut waiting = program(4, "quang-cao", ProgramState::Waiting, &["thon-1", "thon-2"], None);
        waiting.priority = Priority::Background;
        Status {
            version: "0.1.0".into(),
            config: "/etc/loa/loa.toml".into(),
            timezone: "Asia/Ho_Chi_Minh".into(),
            started_at: "2026-11-27T16:00:00+07:00".into(),
            uptime_secs: 3700,
            zones: vec![
                zone("thon-1", Some(3), EndpointCounts { online: 2, offline: 1, ..Default::default() }),
                zone("thon-2", None, EndpointCounts::default()),
            ],
            programs: vec![program(3, "ban-tin", ProgramState::Playing, &["thon-1"], Some(item)), waiting],
            next: vec![NextFire { schedule: "chieu".into(), at: "2026-11-27T17:00:00+07:00".into(), zones: vec!["thon-1".into(), "thon-2".into()] }],
            network: network_ok(),
            history: HistoryHealth::default(),
            sap: SapStatus::default(),
            pacer: PacerStatus::default(),
        }
    }

    #[test]
    fn status_lists_zones_a_playing_and_a_waiting_program_and_next_fires() {
        let text = status_text(&status());
        assert!(text.starts_with("loa 0.1.0 · up 1h 1m · Asia/Ho_Chi_Minh · config /etc/loa/loa.toml\n\n"), "{text}");
        assert!(text.contains("NETWORK: sending on 127.0.0.1 ok\n\n"), "{text}");
        assert!(text.contains("thon-1  #3 ban-tin · tin.mp3 [1/2]  scheduled  0:12 / 1:30  2 online, 1 offline\n"), "{text}");
        assert!(text.contains("thon-2  (idle)"), "{text}");
        assert!(text.contains("PROGRAM  NAME       PRIORITY    STATE    ZONES\n#4       quang-cao  background  waiting  thon-1,thon-2\n"), "{text}");
        assert!(!text.contains("#3       ban-tin"), "a playing program is not listed as waiting: {text}");
        assert!(text.contains("2026-11-27 17:00:00+07:00  chieu     thon-1,thon-2"), "{text}");
        assert!(!text.contains("WARNING"), "{text}");
    }

    #[test]
    fn a_plain_rtp_zone_is_a_warning_under_the_zones() {
        let mut v = status();
        assert!(!status_text(&v).contains("warning"));
        v.zones[1].security = ZoneSecurity::None;
        let text = status_text(&v);
        assert!(
            text.contains("thon-2  (idle)")
                && text.contains("\nwarning: zone thon-2 has security = \"none\": its audio is plain RTP, so anyone on the network can play audio on its speakers\n"),
            "{text}"
        );
    }

    #[test]
    fn a_program_before_its_first_item_is_starting_and_nothing_next_says_so() {
        let mut v = status();
        v.programs[0].item = None;
        v.next.clear();
        let text = status_text(&v);
        assert!(text.contains("thon-1  #3 ban-tin · starting  scheduled  "), "{text}");
        assert!(text.contains("NEXT: nothing scheduled\n"), "{text}");
    }

    #[test]
    fn status_says_when_the_interface_cannot_send() {
        let mut v = status();
        v.network.packets_not_sent_total = 40;
        assert!(status_text(&v).contains("NETWORK: sending on 127.0.0.1 ok (40 packets not sent since start)\n"));
        v.network = NetworkStatus {
            interface: "10.200.0.1".into(),
            state: NetState::Error,
            error: Some("the address is no longer on this machine".into()),
            since: Some("2026-11-27T14:50:03+07:00".into()),
            down_secs: Some(12.4),
            packets_not_sent: 620,
            packets_not_sent_total: 620,
        };
        let text = status_text(&v);
        assert!(
            text.contains(
                "NETWORK: ERROR cannot send on interface 10.200.0.1: the address is no longer on this machine; \
                 since 2026-11-27 14:50:03+07:00 (12s), 620 packets not sent; retrying\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn status_shows_pacer_stalls_and_the_zones_they_hit_only_when_there_were_any() {
        let mut v = status();
        assert!(!status_text(&v).contains("PACER"), "no stall, no line");
        v.pacer = PacerStatus { stalls: 1, skipped_ticks: 75, longest_stall_ms: 1_504 };
        v.zones[0].stalls = 1;
        v.zones[0].skipped_ms = 1_500;
        let text = status_text(&v);
        assert!(
            text.contains(
                "NETWORK: sending on 127.0.0.1 ok\n\n\
                 PACER: 1 stall, 75 ticks skipped, longest 1.50 s (the machine suspended or loa was stopped)\n  \
                 zone thon-1: 1.50 s of silence (1 stall)\n\n"
            ),
            "{text}"
        );
        assert!(!text.contains("zone thon-2:"), "an idle zone heard no silence from it: {text}");
        v.pacer.stalls = 2;
        assert!(status_text(&v).contains("PACER: 2 stalls, 75 ticks skipped"));
    }

    #[test]
    fn status_says_why_history_writes_fail_what_waits_and_what_was_lost() {
        let failing = HistoryHealth {
            path: "/var/lib/loa/loa.db".into(),
            write_errors: 1,
            last_error: Some("database or disk is full".into()),
            failing: Some(Failing { since: "2026-11-27T07:00:00Z".parse().unwrap(), problem: "the disk is full".into() }),
            waiting_writes: 42,
            ..Default::default()
        };
        let text = history_health_text(&failing);
        assert!(text.contains("history writes are failing since 2026-11-27 07:00:00Z: the disk is full."), "{text}");
        assert!(text.contains("42 write(s) wait in memory"), "{text}");
        assert!(text.contains("Database: /var/lib/loa/loa.db\n  Last error: database or disk is full\n"), "{text}");

        let recovered = HistoryHealth {
            path: "/var/lib/loa/loa.db".into(),
            write_errors: 1,
            last_error: Some("database or disk is full".into()),
            lost_writes: 3,
            lost_rows: 1,
            lost_since: Some("2026-11-27T07:01:00Z".parse().unwrap()),
            caught_up_at: Some("2026-11-27T07:05:00Z".parse().unwrap()),
            ..Default::default()
        };
        let text = history_health_text(&recovered);
        assert!(text.contains("history caught up at 2026-11-27 07:05:00Z after writes failed (database or disk is full)"), "{text}");
        assert!(text.contains("3 history write(s) lost since 2026-11-27 07:01:00Z (1 row(s) missing entirely)"), "{text}");
        assert!(!text.contains("failing"), "{text}");

        let refused = HistoryHealth { path: "/x".into(), write_errors: 2, last_error: Some("locked".into()), ..Default::default() };
        assert_eq!(history_health_text(&refused), "\nWARNING: 2 history request(s) failed (/x); last error: locked\n");
        assert_eq!(history_health_text(&HistoryHealth::default()), "");
    }
}
