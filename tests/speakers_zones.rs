//! Joined speakers that take multicast, speakers in several zones, and
//! zones changed by a reload while speakers are joined (issue 15), through
//! the real path: `loa serve`, `loa speakers add`, `loa speaker --join`,
//! the decoded WAV checked for the tone sequence. Loopback only, inside
//! the private namespace (`scripts/netns.sh cargo test --test speakers_zones`).

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::daemon::{base_config, enrol, join_daemon, Daemon};
use common::*;
use serde_json::Value;

const STOP_GRACE: Duration = Duration::from_secs(5);

fn speaker(listen: &str, credential: &Path, wav: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(LOA);
    cmd.args(["speaker", "--join", listen, "--credential", credential.to_str().unwrap(), "--out", wav.to_str().unwrap()]);
    cmd.args(extra);
    cmd
}

fn online(daemon: &Daemon, name: &str) -> Value {
    let list = daemon.wait_json(&["speakers", "list"], &format!("{name} online"), Duration::from_secs(5), |list| {
        list["speakers"].as_array().is_some_and(|rows| rows.iter().any(|s| s["name"] == name && s["state"] == "online"))
    });
    list["speakers"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap().clone()
}

/// The speaker's last stats line: "joined: N packet(s) by multicast, M by unicast, …".
fn arrived(stderr: &str) -> (u64, u64, u64) {
    let line = stderr.lines().rev().find(|l| l.contains("joined: ")).unwrap_or_else(|| panic!("no joined stats: {stderr}"));
    let tail = &line[line.find("joined: ").unwrap() + 8..];
    let numbers: Vec<u64> = tail.split(|c: char| !c.is_ascii_digit()).filter(|w| !w.is_empty()).map(|w| w.parse().unwrap()).collect();
    (numbers[0], numbers[1], numbers[2])
}

fn play(daemon: &Daemon, zone: &str, file: &str) {
    let out = daemon.loa(&["play", "--zones", zone, file]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn stopped(spk: Background) -> (Output, String) {
    let out = spk.stop(STOP_GRACE);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (out, stderr)
}

#[test]
fn a_speaker_that_takes_multicast_plays_the_group_and_gets_no_unicast() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (daemon, listen, _, _) = join_daemon(dir.path());
    let tones: Vec<(f32, f32)> = TONES[..4].iter().map(|&f| (f, 1.0)).collect();
    write_tones_wav(&dir.path().join("media/tones.wav"), 48_000, 1, &tones);
    let credential = enrol(&daemon, "cho");
    let wav = dir.path().join("cho.wav");
    let spk = Background::spawn("loa speaker", &mut speaker(&listen, &credential, &wav, &["--multicast-interface", "127.0.0.1"]));

    // Online by its keepalives, which still go to loa's port.
    let row = online(&daemon, "cho");
    assert_eq!(row["transport"], "multicast", "{row}");
    assert!(row["last_keepalive"].is_string(), "{row}");
    let table = String::from_utf8_lossy(&daemon.loa(&["speakers", "list"]).stdout).into_owned();
    assert!(table.contains("multicast") && table.contains("online"), "{table}");

    play(&daemon, "z", "tones.wav");
    daemon.wait_idle(Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(500));
    let (_, stderr) = stopped(spk);
    let (rate, samples) = read_wav_mono(&wav);
    assert_tones(&tone_segments(rate, &samples, &TONES), &tones, 0.06, &format!("multicast speaker ({stderr})"));
    // 4 s of 20 ms packets came from the group; not one unicast copy.
    let (multicast, unicast, _) = arrived(&stderr);
    assert!(multicast >= 195, "{stderr}");
    assert_eq!(unicast, 0, "{stderr}");
    assert!(stderr.contains("rejected 0 "), "every packet verified: {stderr}");
    let log = daemon.log_text();
    assert!(log.contains("speaker online: multicast"), "{log}");
}

/// A daemon with SRTP zones `z` and `y` taking joins; the config text's
/// first part (so a test can write a changed one) and the join address.
fn two_zone_config(dir: &Path, z_group: &str, y_group: &str, listen: &str) -> String {
    format!(
        "{}[speakers]\nlisten = \"{listen}\"\nkeepalive = \"1s\"\nmissed_keepalives = 2\n\
         [[zone]]\nname = \"z\"\ngroup = \"{z_group}\"\n[[zone]]\nname = \"y\"\ngroup = \"{y_group}\"\n",
        base_config(dir)
    )
}

fn group() -> String {
    let (group, port) = unique_group();
    format!("{group}:{port}")
}

#[test]
fn a_speaker_in_two_zones_hears_a_program_on_either_and_never_a_mix() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", unique_group().1);
    let daemon = Daemon::start(dir.path(), &two_zone_config(dir.path(), &group(), &group(), &listen));
    let first: Vec<(f32, f32)> = TONES[..2].iter().map(|&f| (f, 1.0)).collect();
    let second: Vec<(f32, f32)> = TONES[2..4].iter().map(|&f| (f, 1.0)).collect();
    let other: Vec<(f32, f32)> = vec![(TONES[5], 1.0)];
    write_tones_wav(&dir.path().join("media/first.wav"), 48_000, 1, &first);
    write_tones_wav(&dir.path().join("media/second.wav"), 48_000, 1, &second);
    write_tones_wav(&dir.path().join("media/other.wav"), 48_000, 1, &other);
    let credential = dir.path().join("hai.toml");
    let out = daemon.loa(&["speakers", "add", "hai", "--zones", "z,y", "--out", credential.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let wav = dir.path().join("hai.wav");
    let spk = Background::spawn("loa speaker", &mut speaker(&listen, &credential, &wav, &[]));
    assert_eq!(online(&daemon, "hai")["transport"], "unicast");

    // z alone, then y alone.
    play(&daemon, "z", "first.wav");
    daemon.wait_idle(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(800));
    play(&daemon, "y", "second.wav");
    daemon.wait_idle(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(800));
    // Both on air: z first keeps the speaker; y's 1400 Hz, which ends
    // while z still plays, is never heard.
    play(&daemon, "z", "first.wav");
    daemon.wait_status("z on air", Duration::from_secs(5), |s| s["programs"].as_array().is_some_and(|p| !p.is_empty()));
    std::thread::sleep(Duration::from_millis(300));
    play(&daemon, "y", "other.wav");
    daemon.wait_idle(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));

    let (_, stderr) = stopped(spk);
    let (rate, samples) = read_wav_mono(&wav);
    let mut expected = first.clone();
    expected.extend(&second);
    expected.extend(&first);
    assert_tones(&tone_segments(rate, &samples, &TONES), &expected, 0.06, &format!("speaker in two zones ({stderr})"));
    let (_, unicast, not_played) = arrived(&stderr);
    assert!(unicast >= 5 * 50 + 45, "{stderr}");
    assert!(not_played >= 45, "y's packets arrived while z played: {stderr}");
    assert!(stderr.contains("playing zone z") && stderr.contains("playing zone y"), "{stderr}");
}

#[test]
fn after_a_reload_moves_its_zone_a_joined_speaker_plays_the_next_program_without_rejoining() {
    reload_moves_the_zone(&[], "unicast");
}

#[test]
fn after_a_reload_moves_its_zone_a_multicast_speaker_follows_it_to_the_new_group() {
    reload_moves_the_zone(&["--multicast-interface", "127.0.0.1"], "multicast");
}

fn reload_moves_the_zone(flags: &[&str], transport: &str) {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", unique_group().1);
    let y = group();
    let daemon = Daemon::start(dir.path(), &two_zone_config(dir.path(), &group(), &y, &listen));
    let tones: Vec<(f32, f32)> = TONES[..3].iter().map(|&f| (f, 1.0)).collect();
    write_tones_wav(&dir.path().join("media/tones.wav"), 48_000, 1, &tones);
    let credential = enrol(&daemon, "ba");
    let wav = dir.path().join("ba.wav");
    let spk = Background::spawn("loa speaker", &mut speaker(&listen, &credential, &wav, flags));
    assert_eq!(online(&daemon, "ba")["transport"], transport);

    // z moves to another group: loa sends it anew (new SSRC, new keys).
    std::fs::write(&daemon.config, two_zone_config(dir.path(), &group(), &y, &listen)).unwrap();
    let out = daemon.loa(&["reload"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_until("the speaker told of z's change", Duration::from_secs(5), || {
        let log = daemon.log_text();
        if log.contains("joined speaker told of its zone's change") { Ok(()) } else { Err(log) }
    });
    play(&daemon, "z", "tones.wav");
    daemon.wait_idle(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(online(&daemon, "ba")["transport"], transport);

    let (_, stderr) = stopped(spk);
    let (rate, samples) = read_wav_mono(&wav);
    assert_tones(&tone_segments(rate, &samples, &TONES), &tones, 0.06, &format!("speaker after the reload ({stderr})"));
    assert!(stderr.contains("zone z changed"), "{stderr}");
    assert!(stderr.contains("rejected 0 "), "{stderr}");
    let (multicast, unicast, _) = arrived(&stderr);
    match transport {
        "multicast" => assert!(multicast >= 145 && unicast == 0, "{stderr}"),
        _ => assert!(unicast >= 145 && multicast == 0, "{stderr}"),
    }
    let log = daemon.log_text();
    assert_eq!(log.matches("speaker joined").count(), 1, "one join, no rejoin: {log}");
}
