//! A joined speaker whose network lets its UDP out but not loa's back in
//! (issue 15's weak spot), and `loa speaker --tls-only`, through the real
//! path: `loa serve` in loa's host, `loa speaker --join` behind the NAT rig
//! (tests/common/nat.rs), whose forward chain drops UDP towards the speaker
//! (`NatRig::block_udp_inward`), replies on its own mappings included. The
//! speaker's keepalives still reach loa and authenticate, so loa alone
//! would send unicast into the void for good; the speaker hears no answer
//! to them and asks for its audio inside TLS (src/speaker/downstream.rs).
//! The WAV the speaker writes is what is judged, with the figures the
//! report asks for printed: join to first audio with UDP dropped from the
//! start, and the silence when it is dropped mid-stream.

mod common;

use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::joined::{config, longest_hole, play, row, stats_line, wait_online, Speaker, KEEPALIVE};
use common::nat::{NatRig, NAT_PUBLIC, SPEAKER_ADDR};
use common::{tone_segments, TONES};

/// The speaker's rule: 0.2 s without audio before it sends a keepalive,
/// 1 s for loa's answer (src/speaker/downstream.rs `GAP`, `ANSWER_WITHIN`).
const GAP: f64 = 0.2;
const ANSWER_WITHIN: f64 = 1.0;
/// What a loaded 2-core machine may add to a switch (processes, the CLI).
const SLACK: f64 = 1.0;

/// Twelve one-second tones: the tone sequence twice.
fn twice() -> Vec<(f32, f32)> {
    TONES.iter().chain(&TONES).map(|&f| (f, 1.0)).collect()
}

fn program_playing(daemon: &Daemon) {
    daemon.wait_status("the programme to play", Duration::from_secs(10), |s| s["programs"].as_array().is_some_and(|p| !p.is_empty()));
}

#[test]
fn udp_that_reaches_loa_but_never_the_speaker_moves_its_audio_inside_tls_and_it_plays_the_tones() {
    let rig = NatRig::new();
    rig.block_udp_inward();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_via(dir.path(), &config(dir.path()), &rig.loa.prefix());
    // The programme is under way when the speaker starts: its first audio
    // shows how long joining took.
    let tones = twice();
    play(&daemon, dir.path(), "tones.wav", &tones);
    let started = Instant::now();
    program_playing(&daemon);
    std::thread::sleep(Duration::from_millis(1500));
    let spawned = Instant::now();
    let speaker = Speaker::join(&rig, &daemon, dir.path(), "xa-dong");
    let joined = Instant::now();
    let address = wait_online(&daemon, "xa-dong", "tls", Duration::from_secs(10), None);
    let tls_after = joined.elapsed();
    assert!(address.starts_with(&format!("{NAT_PUBLIC}:")), "listed at its TLS connection's public address, not {address}");
    let limit = Duration::from_secs_f64(ANSWER_WITHIN + SLACK);
    assert!(tls_after <= limit, "listed tls {tls_after:?} after joining (limit {limit:?})");

    daemon.wait_idle(Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500)); // the jitter buffer plays out on its own clock
    let now = row(&daemon.json(&["speakers", "list"]), "xa-dong").clone();
    assert_eq!((now["transport"].as_str(), now["state"].as_str()), (Some("tls"), Some("online")), "{now}");
    let (rate, samples) = speaker.stop();
    let segments = tone_segments(rate, &samples, &TONES);
    let log = std::fs::read_to_string(dir.path().join("xa-dong.log")).unwrap();

    // Where in the programme the first audio fell: the first segment ends
    // at its tone's end.
    let first = segments.first().unwrap_or_else(|| panic!("the speaker heard nothing:\n{log}"));
    let from = (spawned - started).as_secs_f64().floor() as usize;
    let index = (from..tones.len()).find(|&i| tones[i].0 == first.freq).unwrap_or_else(|| panic!("{segments:#?}"));
    let first_audio = started + Duration::from_secs_f64(index as f64 + 1.0 - first.seconds);
    let join_to_audio = first_audio.saturating_duration_since(spawned);
    eprintln!(
        "UDP towards the speaker dropped from the start: listed tls {tls_after:?} after the join line; \
         first audio {join_to_audio:?} after starting the speaker (join line {:?} after starting it)",
        joined - spawned
    );
    assert!(
        join_to_audio.as_secs_f64() <= (joined - spawned).as_secs_f64() + ANSWER_WITHIN + SLACK,
        "first audio {join_to_audio:?} after starting the speaker: {segments:#?}"
    );
    // Everything after it inside TLS: the whole second run, each tone whole.
    assert!(segments.len() >= TONES.len(), "{segments:#?}");
    common::assert_tones(&segments[segments.len() - TONES.len()..], &tones[TONES.len()..], 0.1, "the speaker that hears no UDP");
    assert!(stats_line(&log).contains("SRTP rejected 0 "), "every packet inside TLS verified: {log}");
    assert!(log.contains("asking for the audio inside TLS"), "the speaker says why: {log}");
    assert!(
        daemon.log_text().contains("says loa's UDP does not reach it"),
        "the daemon says why: {}",
        daemon.log_text()
    );
}

#[test]
fn udp_towards_the_speaker_dropped_mid_stream_costs_about_a_second_and_comes_back_to_unicast() {
    let rig = NatRig::new();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_via(dir.path(), &config(dir.path()), &rig.loa.prefix());
    let speaker = Speaker::join(&rig, &daemon, dir.path(), "xa-dong");
    let before = wait_online(&daemon, "xa-dong", "unicast", Duration::from_secs(10), None);

    let tones = twice();
    play(&daemon, dir.path(), "tones.wav", &tones);
    program_playing(&daemon);
    std::thread::sleep(Duration::from_millis(2500)); // into the third tone
    rig.block_udp_inward();
    let blocked = Instant::now();
    wait_online(&daemon, "xa-dong", "tls", Duration::from_secs(10), None);
    let inside = blocked.elapsed();
    // Two seconds inside TLS, then UDP reaches the speaker again: its next
    // keepalive is answered, confirmed at once, and it asks for unicast.
    std::thread::sleep(Duration::from_secs(2));
    rig.unblock_udp_inward();
    let unblocked = Instant::now();
    let after = wait_online(&daemon, "xa-dong", "unicast", Duration::from_secs(10), None);
    let back = unblocked.elapsed();
    eprintln!("UDP towards the speaker dropped mid-stream: tls after {inside:?}; let through again: unicast after {back:?} ({before} -> {after})");
    // Keepalive periods are randomised up to 1.5 times (RFC 3550 §6.3.1).
    assert!(back <= KEEPALIVE * 3 / 2 + Duration::from_millis(500), "the next answered keepalive wins unicast back, not {back:?}");

    daemon.wait_idle(Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    let (rate, samples) = speaker.stop();
    let segments = tone_segments(rate, &samples, &TONES);
    let log = std::fs::read_to_string(dir.path().join("xa-dong.log")).unwrap();
    let hole = longest_hole(&segments);
    let heard_secs: f64 = segments.iter().map(|s| s.seconds).sum();
    let missing = tones.len() as f64 - heard_secs;
    eprintln!("silence when UDP towards the speaker stopped: longest hole {hole:.3} s, audio lost {missing:.3} s in all");
    let limit = GAP + ANSWER_WITHIN + SLACK;
    assert!(hole <= limit, "the speaker was silent {hole:.2} s (limit {limit:.1} s): {segments:#?}\n{log}");
    // Every tone after the hole is there, in order: inside TLS, then by
    // unicast again (the second run begins inside TLS).
    let mut heard: Vec<f32> = segments.iter().map(|s| s.freq).collect();
    heard.dedup();
    assert!(heard.ends_with(&TONES), "the tones inside TLS and by unicast again: {segments:#?}");
    assert!(log.contains("asking for unicast"), "{log}");
    assert!(!log.contains("ended the session"), "the session lasted through both switches: {log}");
}

#[test]
fn a_tls_only_speaker_plays_inside_tls_with_udp_wide_open_and_sends_no_udp() {
    let rig = NatRig::new();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_via(dir.path(), &config(dir.path()), &rig.loa.prefix());
    let speaker = Speaker::join_with(&rig, &daemon, dir.path(), "xa-dong", &["--tls-only"]);
    let joined = Instant::now();
    wait_online(&daemon, "xa-dong", "tls", Duration::from_secs(5), None);
    eprintln!("--tls-only: listed tls {:?} after joining", joined.elapsed());

    let tones: Vec<(f32, f32)> = TONES.iter().map(|&f| (f, 1.0)).collect();
    play(&daemon, dir.path(), "tones.wav", &tones);
    daemon.wait_idle(Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    let now = row(&daemon.json(&["speakers", "list"]), "xa-dong").clone();
    assert_eq!((now["transport"].as_str(), now["state"].as_str()), (Some("tls"), Some("online")), "{now}");
    // Not one datagram left the speaker: the NAT never mapped its UDP.
    let mappings = rig.udp_mappings();
    assert!(mappings.iter().all(|m| *m.private.ip() != SPEAKER_ADDR), "the speaker sent UDP: {mappings:?}");
    let (rate, samples) = speaker.stop();
    let log = std::fs::read_to_string(dir.path().join("xa-dong.log")).unwrap();
    common::assert_tones(&tone_segments(rate, &samples, &TONES), &tones, 0.1, &format!("the --tls-only speaker\n{log}"));
    assert!(log.contains("by TLS only"), "{log}");
    assert!(stats_line(&log).contains("SRTP rejected 0 "), "{log}");
    assert!(daemon.log_text().contains("hello said it has no UDP"), "{}", daemon.log_text());
}
