//! A stall the operator can see (issue 14): the daemon is stopped with
//! SIGSTOP for 1.5 s in the middle of a broadcast, as a suspend or a
//! debugger would. The pacer skips the missed frames on the same grid, and
//! the figures must show it: `loa status` (the stall, the skipped ticks,
//! the longest stall, the zone that went silent), the history row of the
//! item on air, the "pacer stopped" line, and the RTP timestamps on the
//! wire.

mod common;

use std::process::Command;
use std::time::Duration;

use common::daemon::{base_config, seq_gaps, zone_toml, Daemon, RtpListener};
use common::{require_netns, strip_ansi, write_tones_wav};
use serde_json::Value;

const FRAME_MS: u64 = 20;
/// 20 ms at 48 kHz: the RTP timestamp step of one frame.
const FRAME_SAMPLES: u32 = 960;
const STOPPED: Duration = Duration::from_millis(1500);

fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill").args([signal, &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill {signal} {pid} failed");
}

fn number(v: &Value, what: &str) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("{what} is not a number: {v}"))
}

/// The `key=value` fields of the last log line containing `needle`.
fn log_field(log: &str, needle: &str, key: &str) -> Option<u64> {
    let line = log.lines().rev().find(|l| l.contains(needle))?;
    let rest = line.split(&format!("{key}=")).nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

#[test]
fn a_daemon_stopped_for_one_and_a_half_seconds_shows_the_stall_everywhere() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (zone, group, port) = zone_toml("thon-1");
    let config = base_config(dir.path()).replace("fec = true\n", &format!("fec = true\nframe_ms = {FRAME_MS}\n"));
    std::fs::create_dir_all(dir.path().join("media")).unwrap();
    write_tones_wav(&dir.path().join("media/tin.wav"), 48_000, 1, &[(600.0, 6.0)]);
    let listener = RtpListener::start(&group, port);
    let mut daemon = Daemon::start(dir.path(), &format!("{config}{zone}"));

    let out = daemon.loa(&["play", "--zones", "thon-1", "tin.wav"]);
    assert!(out.status.success(), "loa play: {}", String::from_utf8_lossy(&out.stderr));
    // A second on air: the stall falls in the middle of the item.
    listener.wait_packets(50, Duration::from_secs(10));
    let before = daemon.json(&["status"]);
    assert_eq!(number(&before["pacer"]["stalls"], "stalls before"), 0, "{before:#}");

    let pid = daemon.child.as_ref().unwrap().id();
    signal(pid, "-STOP");
    std::thread::sleep(STOPPED);
    signal(pid, "-CONT");

    let status = daemon.wait_status("the stall in `loa status`", Duration::from_secs(10), |s| {
        s["pacer"]["stalls"].as_u64().is_some_and(|n| n >= 1)
    });
    let pacer = &status["pacer"];
    let stalls = number(&pacer["stalls"], "stalls");
    let skipped_ticks = number(&pacer["skipped_ticks"], "skipped_ticks");
    let longest_ms = number(&pacer["longest_stall_ms"], "longest_stall_ms");
    println!("status after SIGSTOP for {STOPPED:?}: {pacer}");
    assert_eq!(stalls, 1, "one stop, one stall: {status:#}");
    // The stop lasted 1.5 s; waking and resuming may add a little on a busy
    // machine, never take any away (a wake-up a few ms early is not a stall).
    assert!((1_400..=2_500).contains(&longest_ms), "longest stall {longest_ms} ms after a 1.5 s stop");
    assert_eq!(skipped_ticks, longest_ms / FRAME_MS, "whole frames of the stall are skipped");
    assert!((70..=125).contains(&skipped_ticks), "≈75 ticks skipped: {skipped_ticks}");
    let zone = &status["zones"][0];
    assert_eq!(number(&zone["stalls"], "zone stalls"), 1, "{zone:#}");
    let zone_skipped_ms = number(&zone["skipped_ms"], "zone skipped_ms");
    assert_eq!(zone_skipped_ms, skipped_ticks * FRAME_MS, "the zone was silent for the skipped ticks");

    let text = strip_ansi(&String::from_utf8_lossy(&daemon.loa(&["status"]).stdout));
    assert!(
        text.contains(&format!("PACER: 1 stall, {skipped_ticks} ticks skipped, longest {:.2} s", longest_ms as f64 / 1e3)),
        "{text}"
    );
    assert!(text.contains(&format!("zone thon-1: {:.2} s of silence (1 stall)", zone_skipped_ms as f64 / 1e3)), "{text}");

    // The item's history row says how much silence the stall put into it.
    daemon.wait_idle(Duration::from_secs(20));
    let rows = daemon.wait_history("the item's row to finish", Duration::from_secs(10), |rows| {
        rows.iter().any(|r| r["source"].as_str().is_some_and(|s| s.ends_with("tin.wav")) && !r["end"].is_null())
    });
    let row = rows.iter().find(|r| r["source"].as_str().is_some_and(|s| s.ends_with("tin.wav"))).unwrap();
    println!("history row: {row}");
    assert_eq!(row["outcome"], "completed", "{row:#}");
    assert_eq!(number(&row["skipped_ms"], "row skipped_ms"), zone_skipped_ms, "{row:#}");
    let history = strip_ansi(&String::from_utf8_lossy(&daemon.loa(&["history"]).stdout));
    assert!(history.contains(&format!("{:.2} s silent (pacer stall)", zone_skipped_ms as f64 / 1e3)), "{history}");
    let csv = String::from_utf8(daemon.loa(&["history", "--csv"]).stdout).unwrap();
    assert!(csv.lines().next().unwrap().ends_with(",error,skipped_ms"), "{csv}");
    assert!(csv.lines().any(|l| l.ends_with(&format!(",{zone_skipped_ms}"))), "{csv}");

    // The stats line when the daemon stops, and the warning at the stall.
    assert!(daemon.stop(), "loa serve did not stop cleanly");
    let log = strip_ansi(&daemon.log_text());
    let line = log.lines().rev().find(|l| l.contains("pacer stopped")).unwrap_or_else(|| panic!("no pacer line:\n{log}"));
    println!("{line}");
    assert_eq!(log_field(&log, "pacer stopped", "stalls"), Some(1), "{line}");
    assert_eq!(log_field(&log, "pacer stopped", "skipped_ticks"), Some(skipped_ticks), "{line}");
    assert_eq!(log_field(&log, "pacer stopped", "longest_stall_ms"), Some(longest_ms), "{line}");
    let warning = log.lines().find(|l| l.contains("pacer stalled")).unwrap_or_else(|| panic!("no stall warning:\n{log}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains(&format!("{skipped_ticks} frame ticks skipped")) && warning.contains("of silence on thon-1"), "{warning}");
    assert!(warning.contains("resuming where it stopped: #1 "), "{warning}");

    // On the wire: nothing for the skipped ticks — sequence numbers stay
    // contiguous, the timestamp jumps over the stall.
    let rtp = listener.stop();
    assert_eq!(seq_gaps(&rtp), 0, "sequence numbers stay contiguous across a stall");
    let (gap, jump) = rtp
        .windows(2)
        .map(|w| (w[1].at.duration_since(w[0].at), w[1].timestamp.wrapping_sub(w[0].timestamp)))
        .max_by_key(|(gap, _)| *gap)
        .unwrap();
    println!("longest silence on the wire {gap:?}, RTP timestamp jump {jump} samples");
    assert!(gap >= Duration::from_millis(1_400), "{gap:?}");
    let skipped = skipped_ticks as u32 * FRAME_SAMPLES;
    assert!(
        (skipped..=skipped + FRAME_SAMPLES).contains(&jump),
        "the timestamp jumps by the skipped frames (+ the frame that goes out late): {jump} vs {skipped}"
    );
}
