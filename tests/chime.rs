//! The pre-announcement chime through the real daemon: configured per
//! priority, it plays before the program's own audio on the zone, and goes
//! into history like any item.

mod common;

use std::time::Duration;

use common::daemon::{base_config, packet_tones, zone_toml, Daemon, RtpListener};
use common::{require_netns, write_tones_wav};

/// loa's chime notes, then the test's own tones.
const CANDIDATES: [f32; 6] = [880.0, 698.46, 523.25, 1500.0, 300.0, 1200.0];

/// Consecutive runs of the same detected tone (≥ 3 packets, so a note's
/// attack or a transition frame does not count).
fn runs(tones: &[Option<f32>]) -> Vec<f32> {
    let mut out: Vec<(f32, usize)> = Vec::new();
    for t in tones.iter().flatten() {
        match out.last_mut() {
            Some((f, n)) if f == t => *n += 1,
            _ => out.push((*t, 1)),
        }
    }
    let mut seq: Vec<f32> = Vec::new();
    for (f, _) in out.into_iter().filter(|(_, n)| *n >= 3) {
        if seq.last() != Some(&f) {
            seq.push(f);
        }
    }
    seq
}

/// Plays `args` and returns the tone runs heard on the zone once the
/// program has ended.
fn play_and_listen(daemon: &Daemon, group: &str, port: u16, args: &[&str]) -> Vec<f32> {
    let listener = RtpListener::start(group, port);
    assert!(daemon.loa(args).status.success(), "{}", daemon.log_text());
    daemon.wait_idle(Duration::from_secs(30));
    runs(&packet_tones(&listener.stop(), &CANDIDATES))
}

#[test]
fn chime_precedes_emergency_and_announcement_audio_but_not_background() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (zone, group, port) = zone_toml("thon-1");
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    write_tones_wav(&media.join("alert.wav"), 48_000, 1, &[(1500.0, 1.0)]);
    write_tones_wav(&media.join("notice.wav"), 48_000, 1, &[(1200.0, 1.0)]);
    write_tones_wav(&media.join("music.wav"), 48_000, 1, &[(300.0, 1.0)]);
    // An operator's own chime for announcements: two short tones, rising.
    write_tones_wav(&media.join("gong.wav"), 48_000, 1, &[(523.25, 0.4), (880.0, 0.4)]);
    let config = format!(
        "{}[chime]\nemergency = true\nannouncement = \"gong.wav\"\n{zone}",
        base_config(dir.path())
    );
    let mut daemon = Daemon::start(dir.path(), &config);

    let heard = play_and_listen(&daemon, &group, port, &["play", "--zones", "thon-1", "--priority", "emergency", "alert.wav"]);
    assert_eq!(heard, [880.0, 698.46, 523.25, 1500.0], "loa's chime (A5 F5 C5), then the alert");

    let heard = play_and_listen(&daemon, &group, port, &["play", "--zones", "thon-1", "notice.wav"]);
    assert_eq!(heard, [523.25, 880.0, 1200.0], "the configured gong, then the notice");

    let heard = play_and_listen(&daemon, &group, port, &["play", "--zones", "thon-1", "--priority", "background", "music.wav"]);
    assert_eq!(heard, [300.0], "no chime for background");

    // History says what played, chime included.
    let rows = daemon.json(&["history"])["rows"].as_array().unwrap().clone();
    let sources: Vec<&str> = rows.iter().map(|r| r["source"].as_str().unwrap()).collect();
    let ends = |suffix: &str| sources.iter().filter(|s| s.ends_with(suffix)).count();
    assert_eq!(ends("/chime.wav"), 1, "{sources:?}");
    assert_eq!(ends("/gong.wav"), 1, "{sources:?}");
    assert!(rows.iter().all(|r| r["outcome"] == "completed"), "{rows:#?}");
    let chime = rows.iter().find(|r| r["source"].as_str().unwrap().ends_with("/chime.wav")).unwrap();
    assert_eq!(chime["priority"], "emergency");
    assert!(chime["sha256"].is_string(), "{chime:#}");
    assert!(daemon.stop());
}
