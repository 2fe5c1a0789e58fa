//! Network faults on the real daemon in the private namespace: the sending
//! interface's address vanishes and comes back (`ip addr del/add` on lo),
//! or is not there yet when the daemon starts. Each test uses its own
//! 10.200.0.x address on lo, so they run in parallel.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{base_config, seq_gaps, zone_toml, Daemon, RtpListener};
use common::{poll_until, require_netns, wait_until, write_tones_wav, LOA};
use serde_json::Value;

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An address on lo for one test, removed when dropped.
struct LoAddress(&'static str, bool);

impl LoAddress {
    fn new(address: &'static str) -> LoAddress {
        LoAddress(address, false)
    }
    fn add(&mut self) {
        ip(&["addr", "add", &format!("{}/32", self.0), "dev", "lo"]);
        self.1 = true;
    }
    fn del(&mut self) {
        ip(&["addr", "del", &format!("{}/32", self.0), "dev", "lo"]);
        self.1 = false;
    }
}

impl Drop for LoAddress {
    fn drop(&mut self) {
        if self.1 {
            let _ = Command::new("ip")
                .args(["addr", "del", &format!("{}/32", self.0), "dev", "lo"])
                .output();
        }
    }
}

fn config(dir: &std::path::Path, interface: &str, zone: &str) -> String {
    format!("{}{zone}", base_config(dir)).replace("interface = \"127.0.0.1\"", &format!("interface = \"{interface}\""))
}

/// Waits until `check` holds on the `network` object of `loa status
/// --json`; returns the status and how long it took. The timeouts are the
/// bounds these tests hold the daemon to.
fn wait_network(daemon: &Daemon, what: &str, timeout: Duration, check: impl Fn(&Value) -> bool) -> (Value, Duration) {
    let start = Instant::now();
    let status = daemon.wait_status(what, timeout, |s| check(&s["network"]));
    (status, start.elapsed())
}

/// Waits until more than `more_than` packets have arrived; returns how
/// long it took.
fn wait_packets(listener: &RtpListener, more_than: usize, timeout: Duration) -> Duration {
    let start = Instant::now();
    listener.wait_packets(more_than + 1, timeout);
    start.elapsed()
}

/// The state `loa endpoints` gives the first endpoint.
fn endpoint_state(daemon: &Daemon) -> String {
    daemon.json(&["endpoints"])["endpoints"][0]["state"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_vanished_interface_address_is_reported_and_sending_resumes_after_a_clean_pause() {
    require_netns();
    let mut address = LoAddress::new("10.200.0.11");
    address.add();
    let dir = tempfile::tempdir().unwrap();
    let (zone, group, port) = zone_toml("thon-1");
    std::fs::create_dir_all(dir.path().join("media")).unwrap();
    write_tones_wav(&dir.path().join("media/loop.wav"), 48_000, 1, &[(600.0, 2.0)]);
    let listener = RtpListener::start(&group, port);
    let mut daemon = Daemon::start(dir.path(), &config(dir.path(), "10.200.0.11", &zone));
    assert!(daemon
        .loa(&["play", "--zones", "thon-1", "--loop", "loop.wav"])
        .status
        .success());
    wait_packets(&listener, 50, Duration::from_secs(5));
    let (status, _) = wait_network(&daemon, "network ok", Duration::from_secs(1), |n| n["state"] == "ok");
    assert_eq!(status["network"]["interface"], "10.200.0.11");

    address.del();
    let (status, took) = wait_network(&daemon, "the error in status", Duration::from_secs(2), |n| n["state"] == "error");
    println!(
        "status showed the error {:.0} ms after the address went",
        took.as_secs_f64() * 1e3
    );
    assert_eq!(
        status["network"]["error"], "the address is no longer on this machine",
        "{status:#}"
    );
    assert!(status["network"]["since"].is_string(), "{status:#}");
    // Real time, not a condition: the outage lasts 2.5 s, and the count of
    // packets not sent over it is what is checked.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        daemon.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "daemon died:\n{}",
        daemon.log_text()
    );
    let status = daemon.json(&["status"]);
    let not_sent = status["network"]["packets_not_sent"].as_u64().unwrap();
    // 2.5 s at 50 packets/s; the pacer reports its count once a second.
    assert!(not_sent >= 75, "{status:#}");
    let text = String::from_utf8(daemon.loa(&["status"]).stdout).unwrap();
    assert!(
        text.contains(
            "NETWORK: ERROR cannot send on interface 10.200.0.11: the address is no longer on this machine; since"
        ),
        "{text}"
    );
    assert_eq!(
        status["programs"][0]["state"], "playing",
        "the program plays on: {status:#}"
    );
    let before = listener.packets().len();

    address.add();
    let back = wait_packets(&listener, before, Duration::from_secs(3));
    println!(
        "packets again {:.0} ms after the address came back",
        back.as_secs_f64() * 1e3
    );
    let (status, _) = wait_network(&daemon, "network ok again", Duration::from_secs(2), |n| n["state"] == "ok");
    let recovered = "sending on 10.200.0.11 again after ";
    // The log line read below.
    let _ = poll_until(Duration::from_secs(10), || daemon.log_text().contains(recovered).then_some(()).ok_or(()));
    let packets = listener.stop();

    // No sequence gap (packets never sent take no number, RFC 3550 §5.1,
    // so speakers report no loss for our outage); the RTP clock ran on
    // through it (960 samples per 20 ms frame) and the first packet after
    // it carries the marker, like any pause.
    let zone_not_sent = status["zones"][0]["packets_not_sent"].as_u64().unwrap();
    assert_eq!(
        status["network"]["packets_not_sent_total"].as_u64().unwrap(),
        zone_not_sent
    );
    assert!(zone_not_sent > 0);
    assert_eq!(seq_gaps(&packets), 0, "no sequence gap");
    let jump = packets
        .windows(2)
        .find(|w| w[1].timestamp.wrapping_sub(w[0].timestamp) != 960)
        .expect("a timestamp jump where packets were not sent");
    let missing = u64::from(jump[1].timestamp.wrapping_sub(jump[0].timestamp)) / 960 - 1;
    assert_eq!(missing, zone_not_sent, "timestamp jump = frames not sent");
    assert!(jump[1].marker, "marker on the first packet after the outage");
    let silent = jump[1].at.duration_since(jump[0].at);
    println!(
        "outage: {missing} packets not sent, {:.2} s without packets",
        silent.as_secs_f64()
    );
    assert!(
        (silent.as_secs_f64() - (missing + 1) as f64 * 0.02).abs() < 0.1,
        "{silent:?} vs {missing} packets"
    );

    let log = daemon.log_text();
    assert!(
        log.contains("cannot send on interface 10.200.0.11: the address is no longer on this machine; retrying"),
        "{log}"
    );
    let line = log
        .lines()
        .find(|l| l.contains(recovered))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains(&format!(", {missing} packets not sent")), "{line}");
    assert_eq!(log.matches("cannot send on interface").count(), 1, "said once: {log}");
    assert!(daemon.stop());
}

struct Speaker(Child);

impl Drop for Speaker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_daemon_started_before_its_address_exists_waits_then_sends_and_hears_speakers() {
    require_netns();
    let mut address = LoAddress::new("10.200.0.12");
    let dir = tempfile::tempdir().unwrap();
    let (zone, group, port) = zone_toml("thon-1");
    let zone = format!("{zone}endpoints = [{{ name = \"loa-1\", address = \"127.0.0.2\" }}]\n");
    std::fs::create_dir_all(dir.path().join("media")).unwrap();
    write_tones_wav(&dir.path().join("media/loop.wav"), 48_000, 1, &[(600.0, 2.0)]);
    let text =
        config(dir.path(), "10.200.0.12", &zone).replace("[[zone]]", "[health]\nreport_interval = \"1s\"\n[[zone]]");
    std::fs::write(dir.path().join("loa.toml"), &text).unwrap();

    // `loa check` points at the missing address but does not fail: the
    // box may check its config before the network is up.
    let check = Command::new(LOA)
        .args(["check", "--config"])
        .arg(dir.path().join("loa.toml"))
        .output()
        .unwrap();
    assert!(check.status.success());
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        stderr.contains("warning: interface 10.200.0.12 is not on this machine"),
        "{stderr}"
    );

    let listener = RtpListener::start(&group, port);
    let daemon = Daemon::start(dir.path(), &text);
    assert!(
        daemon
            .log_text()
            .contains("interface 10.200.0.12 is not on this machine yet; retrying every second"),
        "{}",
        daemon.log_text()
    );
    let status = daemon.json(&["status"]);
    assert_eq!(status["network"]["state"], "error", "{status:#}");
    assert!(daemon
        .loa(&["play", "--zones", "thon-1", "--loop", "loop.wav"])
        .status
        .success());
    // Real time, not a condition: nothing may leave during it.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(listener.packets().len(), 0, "nothing leaves without the address");

    address.add();
    let took = wait_packets(&listener, 0, Duration::from_secs(3));
    println!(
        "first packet {:.0} ms after the address appeared",
        took.as_secs_f64() * 1e3
    );
    wait_network(&daemon, "network ok", Duration::from_secs(2), |n| n["state"] == "ok");
    assert!(
        daemon.log_text().contains("sending on 10.200.0.12 again after"),
        "{}",
        daemon.log_text()
    );

    // The RTCP listener could not join its group at start; after the
    // address came it did, so a speaker's reports are heard.
    let _speaker = Speaker(
        Command::new(LOA)
            .args([
                "speaker",
                "--group",
                &format!("{group}:{port}"),
                "--interface",
                "127.0.0.1",
                "--bind",
                "127.0.0.2",
            ])
            .args(["--out", "/dev/null", "--rtcp-interval", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    daemon.wait_json(&["endpoints"], "the speaker to be heard", Duration::from_secs(10), |e| {
        e["endpoints"]
            .as_array()
            .is_some_and(|rows| rows.iter().any(|r| r["address"] == "127.0.0.2" && r["state"] == "online"))
    });
    let packets = listener.stop();
    assert_eq!(seq_gaps(&packets), 0);
}

#[test]
fn a_broadcast_that_ends_during_the_outage_does_not_keep_the_error_after_the_address_returns() {
    require_netns();
    let mut address = LoAddress::new("10.200.0.13");
    address.add();
    let dir = tempfile::tempdir().unwrap();
    let (zone, group, port) = zone_toml("thon-1");
    std::fs::create_dir_all(dir.path().join("media")).unwrap();
    write_tones_wav(&dir.path().join("media/short.wav"), 48_000, 1, &[(600.0, 1.5)]);
    let listener = RtpListener::start(&group, port);
    let daemon = Daemon::start(dir.path(), &config(dir.path(), "10.200.0.13", &zone));
    assert!(daemon.loa(&["play", "--zones", "thon-1", "short.wav"]).status.success());
    wait_packets(&listener, 10, Duration::from_secs(5));
    address.del();
    wait_network(&daemon, "the error in status", Duration::from_secs(2), |n| n["state"] == "error");
    // The broadcast plays out (unheard) and ends while the address is gone.
    daemon.wait_idle(Duration::from_secs(5));
    // Real time, not a condition: with nothing left to send, the error
    // must stay through the engine's once-a-second checks.
    std::thread::sleep(Duration::from_millis(1500));
    let (status, _) = wait_network(&daemon, "still down", Duration::from_secs(1), |n| n["state"] == "error");
    assert_eq!(status["network"]["error"], "the address is no longer on this machine");
    address.add();
    let (_, took) = wait_network(&daemon, "ok with nothing to send", Duration::from_secs(3), |n| n["state"] == "ok");
    println!(
        "idle daemon saw the address back after {:.0} ms",
        took.as_secs_f64() * 1e3
    );
    let rows = daemon.json(&["history"])["rows"].as_array().unwrap().clone();
    assert_eq!(rows[0]["outcome"], "completed", "{rows:#?}");
}

/// Silence from a speaker while our own interface cannot send is not the
/// speaker's fault: no offline verdict during the outage, and detection
/// resumes (with a fresh grace period) once sending does.
#[test]
fn speakers_are_not_judged_offline_for_our_own_outage() {
    require_netns();
    let mut address = LoAddress::new("10.200.0.14");
    address.add();
    let dir = tempfile::tempdir().unwrap();
    let (zone, group, port) = zone_toml("thon-1");
    let zone = format!("{zone}endpoints = [{{ name = \"loa-cho\", address = \"127.0.0.24\" }}]\n");
    let health = "[health]\nreport_interval = \"1s\"\noffline_intervals = 3\n";
    std::fs::create_dir_all(dir.path().join("media")).unwrap();
    write_tones_wav(&dir.path().join("media/loop.wav"), 48_000, 1, &[(600.0, 2.0)]);
    let mut daemon = Daemon::start(dir.path(), &format!("{}{health}", config(dir.path(), "10.200.0.14", &zone)));
    assert!(daemon
        .loa(&["play", "--zones", "thon-1", "--loop", "loop.wav"])
        .status
        .success());
    let mut speaker = Command::new(LOA)
        .args(["speaker", "--group", &format!("{group}:{port}"), "--interface", "127.0.0.1"])
        .args(["--bind", "127.0.0.24", "--out", "/dev/null", "--rtcp-interval", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start loa speaker");
    wait_until("the speaker online", Duration::from_secs(10), || {
        let state = endpoint_state(&daemon);
        (state == "online").then_some(()).ok_or(state)
    });

    // The speaker falls silent just as our address goes: 5 s is well past
    // the 3 s after which a silent speaker on a sending zone is offline.
    let _ = speaker.kill();
    let _ = speaker.wait();
    address.del();
    wait_network(&daemon, "the error in status", Duration::from_secs(2), |n| n["state"] == "error");
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(5) {
        assert_ne!(endpoint_state(&daemon), "offline", "judged offline during our own outage:\n{}", daemon.log_text());
        // Real time, not a condition: the verdict is watched all through
        // the 5 s outage.
        std::thread::sleep(Duration::from_millis(200));
    }

    // Sending again: now its silence counts, and it goes offline.
    address.add();
    wait_network(&daemon, "network ok again", Duration::from_secs(3), |n| n["state"] == "ok");
    let back = Instant::now();
    wait_until("the speaker offline after sending resumed", Duration::from_secs(8), || {
        let state = endpoint_state(&daemon);
        (state == "offline").then_some(()).ok_or(state)
    });
    println!("offline {:.1} s after sending resumed", back.elapsed().as_secs_f64());
    assert!(back.elapsed() >= Duration::from_secs(2), "no fresh grace period after the outage");
    assert!(daemon.stop());
}
