//! Loudness normalisation through the real daemon: two files of the same
//! tone 12 LU apart go out at the same loudness (measured on what was
//! received, decoded with libopus), and a file's measurement is kept in
//! SQLite by content hash, so it is measured once, even across a restart.

mod common;

use std::path::Path;
use std::time::Duration;

use common::daemon::{base_config, zone_toml, Daemon, Packet, RtpListener};
use common::{poll_until, require_netns, write_tones_wav_at};

const SECS: f32 = 3.0;

/// Integrated loudness (LUFS) of mono 48 kHz samples.
fn lufs(x: &[f32]) -> f64 {
    let mut meter = ebur128::EbuR128::new(1, 48_000, ebur128::Mode::I).unwrap();
    meter.add_frames_f32(x).unwrap();
    meter.loudness_global().unwrap()
}

/// Decodes the packets in order and splits the audio by which of the two
/// tones each 20 ms packet carries (silence goes nowhere).
fn split_by_tone(packets: &[Packet], low: f32, high: f32) -> (Vec<f32>, Vec<f32>) {
    let mut decoder = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
    let mut pcm = vec![0f32; 5760];
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for p in packets {
        let n = decoder
            .decode_float(&p.payload, &mut pcm, false)
            .unwrap_or(0);
        let x = &pcm[..n];
        let energy: f32 = x.iter().map(|v| v * v).sum::<f32>() / n.max(1) as f32;
        if energy < 1e-5 {
            continue;
        }
        let pl = common::goertzel_power(x, 48_000, low);
        let ph = common::goertzel_power(x, 48_000, high);
        if pl > ph {
            a.extend_from_slice(x)
        } else {
            b.extend_from_slice(x)
        }
    }
    (a, b)
}

fn measured_lines(daemon: &Daemon) -> usize {
    daemon.log_text().matches("measured loudness").count()
}

/// Plays both files in one program, receives them, returns (loud, quiet)
/// received loudness and the gains status showed.
fn play_and_measure(daemon: &Daemon, group: &str, port: u16) -> (f64, f64, Vec<f64>) {
    let listener = RtpListener::start(group, port);
    daemon.json(&["play", "--zones", "thon-1", "loud.wav", "quiet.wav"]);
    // Until the program ends, note each gain status shows on the way.
    let mut gains = Vec::new();
    daemon.wait_status("the program to end", Duration::from_secs(20), |status| {
        let programs = status["programs"].as_array().cloned().unwrap_or_default();
        if let Some(g) = programs.first().and_then(|p| p["item"]["gain_db"].as_f64()) {
            if gains.last() != Some(&g) {
                gains.push(g);
            }
        }
        programs.is_empty()
    });
    let packets = listener.stop();
    let (loud, quiet) = split_by_tone(&packets, 500.0, 1000.0);
    assert!(
        loud.len() > 48_000 * 2 && quiet.len() > 48_000 * 2,
        "both items were received: {} {}",
        loud.len(),
        quiet.len()
    );
    (lufs(&loud), lufs(&quiet), gains)
}

#[test]
fn two_files_12_lu_apart_go_out_at_the_target_and_are_measured_once() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (zone, group, port) = zone_toml("thon-1");
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    // Different tones so the received stream can be split by item. K-weighting
    // rates 500 Hz 0.6 dB below 1 kHz, made up here so the items are 12 LU
    // apart (−9 and −21 LUFS); both have room under −1 dBTP at −16 LUFS.
    write_tones_wav_at(&media.join("loud.wav"), 48_000, 1, &[(500.0, SECS)], 0.536);
    write_tones_wav_at(&media.join("quiet.wav"), 48_000, 1, &[(1000.0, SECS)], 0.125);
    let source_loud = lufs(&read_wav(&media.join("loud.wav")));
    let source_quiet = lufs(&read_wav(&media.join("quiet.wav")));
    eprintln!("source: loud {source_loud:.2} LUFS, quiet {source_quiet:.2} LUFS");
    assert!(
        (source_loud - source_quiet - 12.0).abs() < 0.5,
        "the sources are 12 LU apart"
    );

    let config = format!("{}{zone}", base_config(dir.path()));
    let mut daemon = Daemon::start(dir.path(), &config);
    let (loud, quiet, gains) = play_and_measure(&daemon, &group, port);
    eprintln!("first play: loud {loud:.2} LUFS, quiet {quiet:.2} LUFS, gains {gains:?}");
    assert!(
        (loud - quiet).abs() <= 1.0,
        "within 1 LU of each other: {loud:.2} vs {quiet:.2}"
    );
    assert!(
        (loud + 16.0).abs() <= 1.0 && (quiet + 16.0).abs() <= 1.0,
        "near −16 LUFS: {loud:.2}, {quiet:.2}"
    );
    assert_eq!(
        measured_lines(&daemon),
        2,
        "each file measured once:\n{}",
        daemon.log_text()
    );

    // Second play of the same files: from the cache, same result.
    let (loud2, quiet2, _) = play_and_measure(&daemon, &group, port);
    eprintln!("second play: loud {loud2:.2} LUFS, quiet {quiet2:.2} LUFS");
    assert!((loud2 - loud).abs() < 0.5 && (quiet2 - quiet).abs() < 0.5);
    assert_eq!(
        measured_lines(&daemon),
        2,
        "not measured again:\n{}",
        daemon.log_text()
    );

    // After a restart the measurements come from SQLite.
    assert!(daemon.stop());
    let daemon = Daemon::start_existing(dir.path());
    let (loud3, quiet3, _) = play_and_measure(&daemon, &group, port);
    eprintln!("after restart: loud {loud3:.2} LUFS, quiet {quiet3:.2} LUFS");
    assert!((loud3 - loud).abs() < 0.5 && (quiet3 - quiet).abs() < 0.5);
    assert_eq!(
        measured_lines(&daemon),
        0,
        "the restarted daemon measured again:\n{}",
        daemon.log_text()
    );
}

fn read_wav(path: &Path) -> Vec<f32> {
    let mut r = hound::WavReader::open(path).unwrap();
    r.samples::<i16>()
        .map(|s| s.unwrap() as f32 / i16::MAX as f32)
        .collect()
}

/// Integrated loudness (LUFS) and true peak (dBTP) of mono 48 kHz samples.
fn loudness_and_peak(x: &[f32]) -> (f64, f64) {
    let mut meter = ebur128::EbuR128::new(1, 48_000, ebur128::Mode::I | ebur128::Mode::TRUE_PEAK).unwrap();
    meter.add_frames_f32(x).unwrap();
    (meter.loudness_global().unwrap(), 20.0 * meter.true_peak(0).unwrap().log10())
}

/// The gain rule with the default settings (−16 LUFS, −1 dBTP):
/// `min(target − loudness, max_peak − true_peak)`.
fn default_gain((lufs, peak): (f64, f64)) -> f64 {
    (-16.0 - lufs).min(-1.0 - peak)
}

/// The packets decoded in order, at most the first `seconds` of them.
fn decoded(packets: &[Packet], seconds: usize) -> Vec<f32> {
    let mut decoder = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
    let mut pcm = vec![0f32; 5760];
    let mut out = Vec::new();
    for p in packets {
        let n = decoder.decode_float(&p.payload, &mut pcm, false).unwrap();
        out.extend_from_slice(&pcm[..n]);
    }
    out.truncate(seconds * 48_000);
    out
}

/// 21 s of a 1 kHz tone at −23 LUFS, then 19 s at about −11 LUFS: the
/// first 20 s call for +7 dB, the whole file for about −2 dB, so the
/// gain on air tells which measurement set it.
fn quiet_then_loud() -> Vec<f32> {
    (0..40 * 48_000)
        .map(|i| {
            let amplitude = if i < 21 * 48_000 { 0.1 } else { 0.4 };
            (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 48_000.0).sin() * amplitude
        })
        .collect()
}

#[test]
fn a_long_new_file_starts_on_its_first_20_s_and_is_measured_whole_beside_playback() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (zone, group, port) = zone_toml("thon-1");
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    // 40 s: longer than the 20 s measured before a first play.
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(media.join("long.wav"), spec).unwrap();
    for v in quiet_then_loud() {
        w.write_sample((v * i16::MAX as f32) as i16).unwrap();
    }
    w.finalize().unwrap();
    let source = read_wav(&media.join("long.wav"));
    let first_20_s = loudness_and_peak(&source[..20 * 48_000]);
    let whole = loudness_and_peak(&source);
    let (gain_first, gain_whole) = (default_gain(first_20_s), default_gain(whole));
    eprintln!(
        "source: first 20 s {:.2} LUFS {:.2} dBTP (gain {gain_first:+.2} dB), whole {:.2} LUFS {:.2} dBTP (gain {gain_whole:+.2} dB)",
        first_20_s.0, first_20_s.1, whole.0, whole.1
    );
    assert!(gain_first - gain_whole > 6.0, "the two measurements call for clearly different gains");

    let config = format!("{}{zone}", base_config(dir.path()));
    let mut daemon = Daemon::start(dir.path(), &config);
    let listener = RtpListener::start(&group, port);
    daemon.json(&["play", "--zones", "thon-1", "long.wav"]);
    // The whole-file measurement finishes beside playback, long before
    // the 40 s item would end; and 3 s are on air to measure.
    let _ = poll_until(Duration::from_secs(15), || (measured_lines(&daemon) > 0).then_some(()).ok_or(()));
    assert!(measured_lines(&daemon) > 0, "never measured whole:\n{}", daemon.log_text());
    listener.wait_packets(150, Duration::from_secs(10));
    let status = daemon.json(&["status"]);
    let gain = status["programs"][0]["item"]["gain_db"].as_f64();
    daemon.loa(&["stop", "--all"]);
    let packets = listener.stop();
    // What went on air in the item's first 20 s (all of the quiet part):
    // at the target if the first 20 s set the gain; the whole file's
    // measurement would put it near −25 LUFS.
    let on_air = decoded(&packets, 20);
    let first_play = lufs(&on_air);
    let expected = first_20_s.0 + gain_first;
    eprintln!(
        "first play: {:.1} s on air at {first_play:.2} LUFS (first-20-s gain gives {expected:.2}, whole-file gain {:.2})",
        on_air.len() as f64 / 48_000.0,
        first_20_s.0 + gain_whole
    );
    assert!(
        (first_play - expected).abs() <= 1.0,
        "the first play's audio is at {first_play:.2} LUFS, not the {expected:.2} LUFS its first 20 s call for"
    );
    assert!(
        daemon.log_text().contains("first-play loudness from the first 20 s"),
        "{}",
        daemon.log_text()
    );
    assert!(gain.is_some_and(|g| (g - gain_first).abs() < 1.0), "{status:#}");

    // A restart finds the whole-file measurement in SQLite: the next play
    // carries the whole file's gain, with nothing measured again.
    assert!(daemon.stop());
    let daemon = Daemon::start_existing(dir.path());
    let listener = RtpListener::start(&group, port);
    daemon.json(&["play", "--zones", "thon-1", "long.wav"]);
    listener.wait_packets(150, Duration::from_secs(10));
    daemon.loa(&["stop", "--all"]);
    let packets = listener.stop();
    let second_play = lufs(&decoded(&packets, 20));
    let expected = first_20_s.0 + gain_whole;
    eprintln!("after restart: {second_play:.2} LUFS on air (whole-file gain gives {expected:.2})");
    assert!(
        (second_play - expected).abs() <= 1.0,
        "after the restart the audio is at {second_play:.2} LUFS, not the {expected:.2} LUFS of the whole file's gain"
    );
    let log = daemon.log_text();
    assert!(
        !log.contains("loudness"),
        "nothing measured after the restart:\n{log}"
    );
}
