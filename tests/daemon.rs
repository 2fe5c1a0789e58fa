//! The daemon through its real surfaces: `loa serve` on a temp config, the
//! CLI over the real socket, SQLite on disk, RTP on loopback multicast
//! (inside the private namespace `make test` creates), receivers that
//! decode what was sent.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant, SystemTime};

use common::daemon::{base_config, packet_tones, seq_gaps, zone_toml, Daemon, Packet, RtpListener};
use common::{poll_until, require_netns, write_tones_wav};
use serde_json::Value;

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Seconds since the epoch as f64, for comparing arrival with fire times.
fn epoch(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64()
}

/// The schedule period of `schedule_fires_at_the_cron_instant`, in seconds.
const PERIOD_S: u64 = 2;

#[test]
fn schedule_fires_at_the_cron_instant() {
    require_netns();
    let dir = tempdir();
    let (zone, group, port) = zone_toml("thon-1");
    std::fs::create_dir_all(dir.path().join("media")).unwrap();
    write_tones_wav(&dir.path().join("media/tin.wav"), 44_100, 2, &[(600.0, 0.5)]);
    // Every 2 s: half a second of tone, then idle, so each fire's first
    // packet follows a gap and carries the marker bit. It starts disabled:
    // enabling it at a known moment arms it then, so the test knows which
    // cron instant is the first (`Scheduler::set_enabled`: the next fire
    // strictly after now).
    let config = format!(
        "{}{zone}[[schedule]]\nname = \"tin\"\ncron = \"*/{PERIOD_S} * * * * *\"\nfile = \"tin.wav\"\nzones = [\"thon-1\"]\nenabled = false\n",
        base_config(dir.path())
    );
    let listener = RtpListener::start(&group, port);
    let daemon = Daemon::start(dir.path(), &config);
    let fires: usize = std::env::var("LOA_FIRES").ok().and_then(|n| n.parse().ok()).unwrap_or(4);

    // Arm it just after a cron instant, so the whole period (less the CLI's
    // round trip) separates the arming from the first instant due.
    let period = PERIOD_S as f64;
    let now = epoch(SystemTime::now());
    let arm_at = (now / period).floor() * period + period + 0.02;
    // Real time, not a condition: waiting for a point on the wall clock.
    std::thread::sleep(Duration::from_secs_f64(arm_at - now));
    let asked = epoch(SystemTime::now());
    let enabled = daemon.json(&["schedule", "enable", "tin"]);
    let answered = epoch(SystemTime::now());
    assert_eq!(enabled["schedule"]["enabled"], true, "{enabled:#}");
    let first_instant = (asked / period).floor() * period + period;
    assert!(
        answered < first_instant,
        "`loa schedule enable` took {:.3} s and its answer came after the cron instant {first_instant}: \
         the test cannot tell whether that instant was armed",
        answered - asked
    );

    // Fire k belongs to the instant first_instant + k × period; its first
    // packet is the first one after a pause (marker bit).
    let first_packets = |packets: &[Packet]| -> Vec<f64> {
        packets
            .iter()
            .enumerate()
            .filter(|(i, p)| *i == 0 || p.marker)
            .map(|(_, p)| epoch(p.arrival))
            .collect()
    };
    let _ = poll_until(Duration::from_secs(PERIOD_S * fires as u64 + 20), || {
        (first_packets(&listener.packets()).len() >= fires).then_some(()).ok_or(())
    });
    let packets = listener.stop();
    let starts = first_packets(&packets);
    assert!(starts.len() >= fires, "expected ≥{fires} fires, saw {}:\n{}", starts.len(), daemon.log_text());
    // The offset of each start from the instant it is for, not from the
    // nearest instant: a fire a whole period late reads as 2000 ms.
    let mut offsets: Vec<f64> = starts
        .iter()
        .enumerate()
        .map(|(k, t)| (t - (first_instant + k as f64 * period)) * 1e3)
        .collect();
    println!("schedule start offsets (ms) from their cron instants: {offsets:.1?}");
    for (k, offset) in offsets.iter().enumerate() {
        assert!(
            offset.abs() < 50.0,
            "fire {k} (due at {:.3}) began {offset:.1} ms from its cron instant: {offsets:.1?}\n{}",
            first_instant + k as f64 * period,
            daemon.log_text()
        );
    }
    offsets.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
    println!(
        "schedule start offset over {} fires: p50 {:.1} ms, max {:.1} ms",
        offsets.len(),
        offsets[offsets.len() / 2].abs(),
        offsets.last().unwrap().abs()
    );
    daemon.wait_history("a fire's row to complete", Duration::from_secs(10), |rows| {
        rows.iter().any(|r| r["outcome"] == "completed" && r["origin"] == "schedule:tin")
    });
}

#[test]
fn emergency_preempts_one_zone_and_the_scheduled_program_resumes_where_it_paused() {
    require_netns();
    let dir = tempdir();
    let (z1, g1, p1) = zone_toml("thon-1");
    let (z2, g2, p2) = zone_toml("thon-2");
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    let sched = [(400.0, 1.0), (600.0, 1.0), (800.0, 1.0), (1000.0, 1.0)];
    write_tones_wav(&media.join("news.wav"), 44_100, 2, &sched);
    write_tones_wav(&media.join("alert.wav"), 48_000, 1, &[(1400.0, 1.5)]);
    let daemon = Daemon::start(dir.path(), &format!("{}{z1}{z2}", base_config(dir.path())));

    let zone1 = RtpListener::start(&g1, p1);
    let zone2 = RtpListener::start(&g2, p2);
    let wav = dir.path().join("zone1.wav");
    let receiver = common::gst_receiver(&g1, p1, &wav);
    for zone in ["thon-1", "thon-2"] {
        let out = daemon.loa(&["play", "--zones", zone, "--priority", "scheduled", "news.wav"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // The emergency comes half a second into the 600 Hz tone.
    zone1.wait_packets_where("half a second of 600 Hz on thon-1", Duration::from_secs(20), |p| {
        packet_tones(p, &common::TONES).iter().filter(|t| **t == Some(600.0)).count() >= 25
    });
    let command = Instant::now();
    let out = daemon.loa(&["play", "--zones", "thon-1", "--priority", "emergency", "alert.wav"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    daemon.wait_idle(Duration::from_secs(30));
    let zone1 = zone1.stop();
    let zone2 = zone2.stop();
    // Real time, not a condition: GStreamer's jitter buffer (100 ms) and
    // file sink still hold the last packets, and nothing outside it says
    // when they reach the file.
    std::thread::sleep(Duration::from_millis(500));
    receiver.stop(Duration::from_secs(3));

    // Latency: first packet on thon-1 that decodes to the emergency tone.
    let tones = packet_tones(&zone1, &common::TONES);
    let first_alert = zone1
        .iter()
        .zip(&tones)
        .find(|(_, t)| **t == Some(1400.0))
        .map(|(p, _)| p.at)
        .expect("the emergency tone never arrived on thon-1");
    let latency = first_alert.saturating_duration_since(command);
    println!("preemption latency (command → first emergency packet): {:.1} ms", latency.as_secs_f64() * 1e3);
    assert!(latency < Duration::from_millis(100), "preemption took {latency:?}");

    // thon-2 never noticed: continuous sequence, one tone sequence, no alert.
    assert_eq!(seq_gaps(&zone2), 0, "thon-2 lost packets");
    assert!(!packet_tones(&zone2, &common::TONES).contains(&Some(1400.0)), "the emergency leaked to thon-2");

    // thon-1 as a real receiver heard it: 400, 600 (cut), alert, the rest
    // of 600, 800, 1000 — every scheduled tone whole in total.
    let (rate, x) = common::read_wav_mono(&wav);
    let segments = common::tone_segments(rate, &x, &common::TONES);
    let freqs: Vec<f32> = segments.iter().map(|s| s.freq).collect();
    assert_eq!(freqs, vec![400.0, 600.0, 1400.0, 600.0, 800.0, 1000.0], "{segments:#?}");
    let total = |f: f32| segments.iter().filter(|s| s.freq == f).map(|s| s.seconds).sum::<f64>();
    for (f, secs) in sched {
        assert!((total(f) - secs as f64).abs() < 0.08, "{f} Hz played {:.3} s in total: {segments:#?}", total(f));
    }
    assert!((total(1400.0) - 1.5).abs() < 0.08, "{segments:#?}");
    assert_eq!(seq_gaps(&zone1), 0, "thon-1 lost packets");

    let history = daemon.json(&["history"]);
    let rows = history["rows"].as_array().unwrap();
    let emergency = rows.iter().find(|r| r["priority"] == "emergency").expect("emergency row");
    assert_eq!(emergency["outcome"], "completed");
    assert_eq!(emergency["zones"], serde_json::json!(["thon-1"]));
    assert_eq!(emergency["caller_uid"], unsafe { libc::getuid() });
    assert_eq!(emergency["sha256"].as_str().map(str::len), Some(64), "{emergency:#}");
    assert_eq!(rows.iter().filter(|r| r["priority"] == "scheduled" && r["outcome"] == "completed").count(), 2);
}

#[test]
fn kill_9_leaves_interrupted_rows_and_runtime_schedules_survive_and_fire() {
    require_netns();
    let dir = tempdir();
    let (z1, group, port) = zone_toml("thon-1");
    std::fs::create_dir_all(dir.path().join("media")).unwrap();
    write_tones_wav(&dir.path().join("media/long.wav"), 48_000, 1, &[(800.0, 20.0)]);
    let mut daemon = Daemon::start(dir.path(), &format!("{}{z1}", base_config(dir.path())));
    let added = daemon.json(&["schedule", "add", "morning", "--cron", "* * * * * *", "--file", "long.wav", "--zones", "thon-1"]);
    assert_eq!(added["schedule"]["name"], "morning", "{added:#}");
    // Wait until it plays and its row is written, then pull the plug.
    daemon.wait_history("the schedule's row to begin", Duration::from_secs(10), |rows| {
        rows.iter().any(|r| r["origin"] == "schedule:morning" && r["outcome"].is_null())
    });
    daemon.kill9();

    let listener = RtpListener::start(&group, port);
    let daemon = Daemon::start_existing(dir.path());
    let history = daemon.json(&["history"]);
    let rows = history["rows"].as_array().unwrap();
    assert!(
        rows.iter().any(|r| r["outcome"] == "interrupted" && r["origin"] == "schedule:morning"),
        "{history:#}"
    );
    let schedules = daemon.json(&["schedule", "list"]);
    assert!(
        schedules["schedules"].as_array().unwrap().iter().any(|s| s["name"] == "morning" && s["source"] == "runtime"),
        "{schedules:#}"
    );
    let _ = poll_until(Duration::from_secs(10), || (listener.packets().len() > 50).then_some(()).ok_or(()));
    let packets = listener.stop();
    assert!(packets.len() > 50, "the restored schedule did not fire: {} packets\n{}", packets.len(), daemon.log_text());
    let db = dir.path().join("state/loa.db");
    let store = loa::store::Store::open(db.parent().unwrap()).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

/// `status` answered within 100 ms, measured on a fresh connection.
fn status_latency(daemon: &Daemon) -> Duration {
    let start = Instant::now();
    let mut client = loa::cli::client::Client::connect(&daemon.socket, Duration::from_secs(5)).unwrap();
    client.call_raw("status", serde_json::json!({})).unwrap();
    start.elapsed()
}

#[test]
fn the_control_socket_survives_garbage_huge_lines_floods_and_silent_clients() {
    require_netns();
    let dir = tempdir();
    let (z1, _, _) = zone_toml("thon-1");
    let daemon = Daemon::start(dir.path(), &format!("{}{z1}", base_config(dir.path())));
    let ask = |line: &[u8]| -> Value {
        let mut s = UnixStream::connect(&daemon.socket).unwrap();
        s.write_all(line).unwrap();
        s.write_all(b"\n").unwrap();
        let mut reply = String::new();
        BufReader::new(s).read_line(&mut reply).unwrap();
        serde_json::from_str(&reply).unwrap()
    };
    let garbage = ask(b"\x00\xffnot json at all");
    assert_eq!(garbage["error"]["code"], -32700, "{garbage}");
    let unknown = ask(br#"{"jsonrpc":"2.0","id":1,"method":"launch.missiles"}"#);
    assert!(unknown["error"]["message"].as_str().unwrap().contains("unknown method"), "{unknown}");
    let bad = ask(br#"{"jsonrpc":"2.0","id":2,"method":"broadcast.start","params":{"zones":5}}"#);
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    let huge = ask(&vec![b'x'; 1 << 20]);
    assert!(huge["error"]["message"].as_str().unwrap().contains("longer than"), "{huge}");

    // A client that sends requests and never reads its replies.
    let mut silent = UnixStream::connect(&daemon.socket).unwrap();
    silent.set_nonblocking(true).unwrap();
    let request = br#"{"jsonrpc":"2.0","id":1,"method":"status"}
"#;
    let flood = std::thread::spawn({
        let socket = daemon.socket.clone();
        move || {
            // 200 clients at once.
            let threads: Vec<_> = (0..200)
                .map(|_| {
                    let socket = socket.clone();
                    std::thread::spawn(move || {
                        let mut c = loa::cli::client::Client::connect(&socket, Duration::from_secs(10)).unwrap();
                        c.call_raw("status", serde_json::json!({})).is_ok()
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).filter(|ok| *ok).count()
        }
    });
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        for _ in 0..200 {
            let _ = silent.write(request);
        }
        worst = worst.max(status_latency(&daemon));
        // Real time, not a condition: the abuse is spread over 20 rounds.
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(flood.join().unwrap(), 200, "every one of 200 concurrent clients got its status");
    println!("worst status latency under abuse: {:.1} ms", worst.as_secs_f64() * 1e3);
    assert!(worst < Duration::from_millis(100), "status took {worst:?}");
    assert!(daemon.loa(&["status"]).status.success(), "daemon still serves");
}

#[test]
fn reload_refuses_a_broken_file_and_a_valid_one_adds_a_zone_without_a_gap() {
    require_netns();
    let dir = tempdir();
    let (z1, g1, p1) = zone_toml("thon-1");
    let (z2, g2, p2) = zone_toml("thon-2");
    std::fs::create_dir_all(dir.path().join("media")).unwrap();
    write_tones_wav(&dir.path().join("media/long.wav"), 48_000, 1, &[(600.0, 6.0)]);
    let base = format!("{}{z1}", base_config(dir.path()));
    let daemon = Daemon::start(dir.path(), &base);
    let zone1 = RtpListener::start(&g1, p1);
    assert!(daemon.loa(&["play", "--zones", "thon-1", "long.wav"]).status.success());
    zone1.wait_packets(25, Duration::from_secs(10));

    std::fs::write(&daemon.config, format!("{base}[[zone]]\nname = \"thon-2\"\ngroup = \"10.0.0.1:5004\"\n")).unwrap();
    let out = daemon.loa(&["reload"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loa.toml:") && err.contains("is not a multicast address"), "{err}");
    assert!(err.contains("the old one stays"), "{err}");

    std::fs::write(&daemon.config, format!("{base}{z2}")).unwrap();
    let out = daemon.loa(&["reload"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("zones added: thon-2"));
    let zone2 = RtpListener::start(&g2, p2);
    assert!(daemon.loa(&["play", "--zones", "thon-2", "long.wav"]).status.success());
    // Real time, not a condition: thon-1's packet count over this second
    // and a half is what shows the reload did not pause it.
    std::thread::sleep(Duration::from_millis(1500));
    let one = zone1.stop();
    let two = zone2.stop();
    assert!(one.len() > 90 && seq_gaps(&one) == 0, "thon-1 was interrupted: {} packets, {} gaps", one.len(), seq_gaps(&one));
    assert!(two.len() > 40, "the new zone does not play: {} packets\n{}", two.len(), daemon.log_text());
}

#[test]
fn media_paths_outside_the_media_folders_are_refused() {
    require_netns();
    let dir = tempdir();
    let (z1, _, _) = zone_toml("thon-1");
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    let secret = dir.path().join("secret.wav");
    write_tones_wav(&secret, 48_000, 1, &[(600.0, 0.5)]);
    std::os::unix::fs::symlink(&secret, media.join("link.wav")).unwrap();
    let daemon = Daemon::start(dir.path(), &format!("{}{z1}", base_config(dir.path())));
    for path in ["../secret.wav", secret.to_str().unwrap(), "link.wav", "/etc/passwd"] {
        let out = daemon.loa(&["play", "--zones", "thon-1", path]);
        assert_eq!(out.status.code(), Some(1), "{path} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("outside the media folders") || err.contains("`..`") || err.contains(".."), "{path}: {err}");
    }
    assert!(daemon.json(&["status"])["programs"].as_array().unwrap().is_empty());
}

#[test]
fn cli_says_the_daemon_is_not_running_with_exit_2() {
    let dir = tempdir();
    let out = common::loa(&["status", "--socket", dir.path().join("none.sock").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
}

#[test]
fn sigterm_stops_programs_closes_history_and_exits_0() {
    require_netns();
    let dir = tempdir();
    let (z1, _, _) = zone_toml("thon-1");
    std::fs::create_dir_all(dir.path().join("media")).unwrap();
    write_tones_wav(&dir.path().join("media/long.wav"), 48_000, 1, &[(600.0, 10.0)]);
    let mut daemon = Daemon::start(dir.path(), &format!("{}{z1}", base_config(dir.path())));
    assert!(daemon.loa(&["play", "--zones", "thon-1", "long.wav"]).status.success());
    daemon.wait_history("the program's row to begin", Duration::from_secs(10), |rows| !rows.is_empty());
    let asked = Instant::now();
    assert!(daemon.stop(), "exit status not 0:\n{}", daemon.log_text());
    // Every task lets go of the store at once: no waiting out the flush timeout.
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(3), "shutdown took {took:?}:\n{}", daemon.log_text());
    assert!(!daemon.log_text().contains("did not finish"), "{}", daemon.log_text());
    let store = loa::store::Store::open(&dir.path().join("state")).unwrap();
    let rows = store.history(&loa::store::HistoryQuery { since: None, limit: None }).unwrap();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].outcome, Some(loa::store::Outcome::Stopped));
    assert!(rows[0].end.is_some());
}

#[test]
fn playlists_load_list_and_play_and_bad_items_are_recorded_as_failed() {
    require_netns();
    let dir = tempdir();
    let (z1, group, port) = zone_toml("thon-1");
    let media = dir.path().join("media");
    std::fs::create_dir_all(media.join("news")).unwrap();
    write_tones_wav(&media.join("news/a.wav"), 48_000, 1, &[(400.0, 0.6)]);
    write_tones_wav(&media.join("news/b.wav"), 22_050, 2, &[(800.0, 0.6)]);
    std::fs::write(media.join("news/broken.mp3"), b"this is not audio at all").unwrap();
    std::fs::write(media.join("news/today.m3u"), "#EXTM3U\n#EXTINF:1,A\na.wav\nbroken.mp3\nmissing.wav\nb.wav\n").unwrap();
    let config = format!(
        "{}{z1}[[playlist]]\nname = \"folder\"\ndir = \"news\"\n",
        base_config(dir.path())
    );
    let daemon = Daemon::start(dir.path(), &config);
    let loaded = daemon.json(&["playlist", "load", "today", media.join("news/today.m3u").to_str().unwrap()]);
    assert_eq!(loaded["items"], 4, "{loaded:#}");
    assert_eq!(loaded["missing"].as_array().unwrap().len(), 1, "{loaded:#}");
    let listed = daemon.json(&["playlist", "list"]);
    let lists = listed["playlists"].as_array().unwrap();
    let folder = lists.iter().find(|p| p["name"] == "folder").unwrap();
    // a.wav, b.wav and broken.mp3 (by extension); the m3u is not audio.
    assert_eq!(folder["items"], 3, "dir lists audio files only: {folder:#}");
    assert_eq!(folder["unknown_durations"], 1, "broken.mp3 has no duration: {folder:#}");
    assert!((folder["duration_secs"].as_f64().unwrap() - 1.2).abs() < 0.05, "{folder:#}");
    let text = String::from_utf8(daemon.loa(&["playlist", "list"]).stdout).unwrap();
    assert!(text.contains("today") && text.contains("folder") && text.contains("0:01"), "{text}");

    let listener = RtpListener::start(&group, port);
    let started = daemon.json(&["play", "--playlist", "today", "--zones", "thon-1"]);
    assert_eq!(started["zones"], serde_json::json!(["thon-1"]));
    daemon.wait_idle(Duration::from_secs(30));
    let packets = listener.stop();
    let tones: Vec<f32> = packet_tones(&packets, &common::TONES).into_iter().flatten().collect();
    assert!(tones.contains(&400.0) && tones.contains(&800.0), "both good items played");
    assert_eq!(seq_gaps(&packets), 0);

    let rows = daemon.json(&["history"])["rows"].as_array().unwrap().clone();
    let outcome = |file: &str| {
        rows.iter()
            .find(|r| r["source"].as_str().unwrap().ends_with(file))
            .map(|r| (r["outcome"].as_str().unwrap().to_string(), r["error"].as_str().unwrap_or("").to_string()))
            .unwrap_or_else(|| panic!("no row for {file}: {rows:#?}"))
    };
    assert_eq!(outcome("a.wav").0, "completed");
    assert_eq!(outcome("b.wav").0, "completed");
    let (o, e) = outcome("broken.mp3");
    assert_eq!(o, "failed");
    assert!(!e.is_empty(), "a reason is recorded");
    assert_eq!(outcome("missing.wav").0, "failed");

    let csv = String::from_utf8(daemon.loa(&["history", "--csv"]).stdout).unwrap();
    assert!(csv.starts_with("id,start,end,outcome,"), "{csv}");
    assert_eq!(csv.lines().count(), rows.len() + 1, "{csv}");
}

#[test]
fn runtime_schedules_list_next_fire_in_local_time_and_can_be_disabled_and_removed() {
    require_netns();
    let dir = tempdir();
    let (z1, _, _) = zone_toml("thon-1");
    std::fs::create_dir_all(dir.path().join("media")).unwrap();
    write_tones_wav(&dir.path().join("media/tin.wav"), 48_000, 1, &[(600.0, 0.5)]);
    let config = base_config(dir.path()).replace("timezone = \"UTC\"", "timezone = \"Asia/Ho_Chi_Minh\"");
    let daemon = Daemon::start(dir.path(), &format!("{config}{z1}"));
    let added = daemon.json(&["schedule", "add", "sang", "--cron", "0 6 * * *", "--file", "tin.wav", "--zones", "all"]);
    let next = added["schedule"]["next"].as_str().unwrap().to_string();
    assert!(next.ends_with("T06:00:00+07:00"), "next fire in local time: {next}");
    let dup = daemon.loa(&["schedule", "add", "sang", "--cron", "0 7 * * *", "--file", "tin.wav", "--zones", "all"]);
    assert_eq!(dup.status.code(), Some(1));
    let bad = daemon.loa(&["schedule", "add", "x", "--cron", "61 * * * *", "--file", "tin.wav", "--zones", "all"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("minute"), "{}", String::from_utf8_lossy(&bad.stderr));
    let unknown_zone = daemon.loa(&["schedule", "add", "y", "--cron", "0 6 * * *", "--file", "tin.wav", "--zones", "thon-9"]);
    assert!(String::from_utf8_lossy(&unknown_zone.stderr).contains("unknown zone \"thon-9\""));

    let disabled = daemon.json(&["schedule", "disable", "sang"]);
    assert_eq!(disabled["schedule"]["enabled"], false);
    let text = String::from_utf8(daemon.loa(&["schedule", "list"]).stdout).unwrap();
    assert!(text.contains("sang") && text.contains("disabled"), "{text}");
    daemon.json(&["schedule", "enable", "sang"]);
    let status = daemon.json(&["status"]);
    assert_eq!(status["next"][0]["schedule"], "sang", "{status:#}");
    daemon.json(&["schedule", "remove", "sang"]);
    assert!(daemon.json(&["schedule", "list"])["schedules"].as_array().unwrap().is_empty());
}

#[test]
fn a_fire_missed_while_the_daemon_was_down_is_recorded_as_missed() {
    require_netns();
    let dir = tempdir();
    let (z1, _, _) = zone_toml("thon-1");
    std::fs::create_dir_all(dir.path().join("media")).unwrap();
    write_tones_wav(&dir.path().join("media/tin.wav"), 48_000, 1, &[(600.0, 0.3)]);
    let config = format!(
        "{}{z1}[[schedule]]\nname = \"tin\"\ncron = \"*/3 * * * * *\"\nfile = \"tin.wav\"\nzones = \"all\"\nmisfire_grace = \"2s\"\n",
        base_config(dir.path())
    );
    let mut daemon = Daemon::start(dir.path(), &config);
    daemon.wait_history("a fire to complete", Duration::from_secs(15), |rows| {
        rows.iter().any(|r| r["outcome"] == "completed")
    });
    assert!(daemon.stop());
    // Real time, not a condition: down for over two fire periods, longer
    // than the grace.
    std::thread::sleep(Duration::from_millis(7000));
    let daemon = Daemon::start_existing(dir.path());
    let rows = daemon.wait_history("the missed row", Duration::from_secs(10), |rows| {
        rows.iter().any(|r| r["outcome"] == "missed")
    });
    let missed = rows.iter().find(|r| r["outcome"] == "missed").unwrap_or_else(|| panic!("{rows:#?}"));
    assert!(missed["error"].as_str().unwrap().contains("misfire_grace"), "{missed:#}");
    assert!(rows.iter().any(|r| r["outcome"] == "completed"), "{rows:#?}");
}

#[test]
fn max_duration_cuts_stop_by_zone_ends_and_sighup_reloads() {
    require_netns();
    let dir = tempdir();
    let (z1, _, _) = zone_toml("thon-1");
    let (z2, _, _) = zone_toml("thon-2");
    std::fs::create_dir_all(dir.path().join("media")).unwrap();
    write_tones_wav(&dir.path().join("media/long.wav"), 48_000, 1, &[(600.0, 20.0)]);
    let base = format!("{}{z1}", base_config(dir.path()));
    let daemon = Daemon::start(dir.path(), &base);
    daemon.json(&["play", "--zones", "thon-1", "--max-duration", "1s", "--name", "short", "long.wav"]);
    fn ended(name: &'static str) -> impl Fn(&[Value]) -> bool {
        move |rows| rows.iter().any(|r| r["program_name"] == name && r["outcome"].is_string())
    }
    daemon.wait_history("max_duration to end \"short\"", Duration::from_secs(10), ended("short"));
    let played = daemon.json(&["play", "--zones", "thon-1", "--name", "manual", "long.wav"]);
    assert_eq!(played["zones"], serde_json::json!(["thon-1"]));
    daemon.wait_history("the row of \"manual\" to begin", Duration::from_secs(10), |rows| {
        rows.iter().any(|r| r["program_name"] == "manual")
    });
    let out = daemon.loa(&["stop", "--zone", "thon-1"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("stopped #"), "{}", String::from_utf8_lossy(&out.stdout));
    let rows = daemon.wait_history("\"manual\" to end", Duration::from_secs(10), ended("manual"));
    let row = |name: &str| rows.iter().find(|r| r["program_name"] == name).unwrap_or_else(|| panic!("{rows:#?}"));
    assert_eq!(row("short")["outcome"], "stopped");
    assert!(row("short")["error"].as_str().unwrap().contains("max_duration"), "{rows:#?}");
    assert_eq!(row("manual")["outcome"], "stopped");
    assert!(row("manual")["error"].as_str().unwrap().contains("stopped by uid"), "{rows:#?}");

    std::fs::write(&daemon.config, format!("{base}{z2}")).unwrap();
    let pid = daemon.child.as_ref().unwrap().id().to_string();
    std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    daemon.wait_status("SIGHUP to add the zone", Duration::from_secs(5), |s| {
        s["zones"].as_array().is_some_and(|z| z.len() == 2)
    });
}
