//! Health on an SRTP zone, through the real daemon in the private
//! namespace: what arrives at the zone's RTCP port without authenticating
//! (plain RTCP, SRTCP under a key the daemon does not hold, garbage) is
//! never a speaker, is counted in `loa status`, and is said as one
//! SECURITY line per address, rate-limited, with a count.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::daemon::{base_config, Daemon};
use common::{require_netns, unique_group, write_tones_wav};

/// An RR from `ssrc` with one report block about `about` (RFC 3550 §6.4.2).
fn receiver_report(ssrc: u32, about: u32) -> Vec<u8> {
    let mut p = vec![0x81, 201, 0, 7];
    p.extend(ssrc.to_be_bytes());
    p.extend(about.to_be_bytes());
    p.extend([0u8; 20]);
    p
}

#[test]
fn an_attackers_plain_report_on_an_srtp_zone_is_no_endpoint_and_one_rate_limited_security_line() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (group, port) = unique_group();
    std::fs::create_dir_all(dir.path().join("media")).unwrap();
    write_tones_wav(&dir.path().join("media/loop.wav"), 48_000, 1, &[(600.0, 2.0)]);
    let config = format!(
        "{}[health]\nreport_interval = \"1s\"\n[[zone]]\nname = \"thon-1\"\ngroup = \"{group}:{port}\"\n",
        base_config(dir.path())
    );
    let daemon = Daemon::start(dir.path(), &config);
    assert!(daemon.loa(&["play", "--zones", "thon-1", "--loop", "loop.wav"]).status.success());
    // The zone's own SRTCP loops back meanwhile: it must count for nothing.
    std::thread::sleep(Duration::from_millis(1500));

    let to = format!("127.0.0.1:{}", port + 1);
    let attacker = UdpSocket::bind("127.0.0.66:0").unwrap();
    let rr = receiver_report(0x0bad_0001, 0x1234_5678);
    for _ in 0..20 {
        attacker.send_to(&rr, &to).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    // Another address: "SRTCP" under a key the daemon does not hold (an RTCP
    // header, then what no plain RTCP reads as), and bytes that are not RTCP.
    let other = UdpSocket::bind("127.0.0.67:0").unwrap();
    let mut forged = rr.clone();
    forged.extend([0x80, 0, 0, 1]);
    forged.extend([0x5a; 10]);
    for _ in 0..10 {
        other.send_to(&forged, &to).unwrap();
        other.send_to(b"\x17\x03\x03 not rtcp at all", &to).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1500));

    let rows = daemon.json(&["endpoints"])["endpoints"].as_array().unwrap().clone();
    assert!(rows.is_empty(), "no endpoint from unauthenticated reports: {rows:#?}");
    let status = daemon.json(&["status"]);
    assert_eq!(status["zones"][0]["unauthenticated"], 40, "{status:#}");
    let text = String::from_utf8_lossy(&daemon.loa(&["status"]).stdout).into_owned();
    assert!(text.contains("warning: zone thon-1: 40 unauthenticated datagram(s) at its RTCP port"), "{text}");

    let log = daemon.log_text();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("SECURITY")).collect();
    assert_eq!(lines.len(), 2, "one line per address, however many datagrams:\n{log}");
    assert!(
        lines[0].contains("SECURITY: 1 unauthenticated datagram(s) from 127.0.0.66 at SRTP zone thon-1's RTCP port (the latest: plain RTCP)"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("from 127.0.0.67"), "{}", lines[1]);
    assert!(lines.iter().all(|l| l.contains("never taken for a speaker")), "{lines:#?}");
}

#[test]
fn a_speaker_holding_the_zones_sdp_reports_over_srtcp_and_is_online() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (group, port) = unique_group();
    std::fs::create_dir_all(dir.path().join("media")).unwrap();
    write_tones_wav(&dir.path().join("media/loop.wav"), 48_000, 1, &[(600.0, 2.0)]);
    let config = format!(
        "{}[health]\nreport_interval = \"1s\"\n[[zone]]\nname = \"thon-1\"\ngroup = \"{group}:{port}\"\n\
         endpoints = [{{ name = \"cho\", address = \"127.0.0.2\" }}]\n",
        base_config(dir.path())
    );
    let daemon = Daemon::start(dir.path(), &config);
    let sdp = dir.path().join("thon-1.sdp");
    let config = daemon.config.to_str().unwrap();
    let out = daemon.loa(&["sdp", "--config", config, "--zone", "thon-1", "--out", sdp.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(daemon.loa(&["play", "--zones", "thon-1", "--loop", "loop.wav"]).status.success());
    let mut speaker = std::process::Command::new(common::LOA)
        .args(["speaker", "--sdp", sdp.to_str().unwrap(), "--bind", "127.0.0.2", "--out", "/dev/null", "--rtcp-interval", "1"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    daemon.wait_json(&["endpoints"], "the SDP speaker online", Duration::from_secs(20), |e| {
        e["endpoints"]
            .as_array()
            .is_some_and(|rows| rows.iter().any(|r| r["address"] == "127.0.0.2" && r["state"] == "online"))
    });
    let _ = speaker.kill();
    let _ = speaker.wait();
    let status = daemon.json(&["status"]);
    assert_eq!(status["zones"][0]["unauthenticated"], 0, "its SRTCP reports are not intrusions: {status}");
    assert!(!daemon.log_text().contains("SECURITY"), "{}", daemon.log_text());
}
