//! A programme on two zones, cut on one by an emergency, through the real
//! daemon and decoded on both zones by GStreamer: with `on_preempt =
//! "pause"` (the default) each zone hears the whole programme, the cut one
//! from where it was cut once the emergency is over (a branch of the
//! programme resumes there); with `"rejoin"` the cut zone joins the
//! programme where the other zone is, and what it missed is lost.

mod common;

use std::path::Path;
use std::time::Duration;

use common::daemon::{base_config, packet_tones, seq_gaps, zone_toml, Daemon, RtpListener};
use common::{ffmpeg_convert, read_wav_mono, require_netns, tone_segments, write_tones_wav, Segment};
use serde_json::Value;

/// seq_a.mp3 = 900 Hz 1 s + 1100 Hz 1.5 s; seq_b.flac = 1300 Hz 1.2 s; the
/// emergency is 1600 Hz for 2 s.
const CANDIDATES: [f32; 5] = [700.0, 900.0, 1100.0, 1300.0, 1600.0];
const SEQ_A: [(f32, f32); 2] = [(900.0, 1.0), (1100.0, 1.5)];
const SEQ_B: [(f32, f32); 1] = [(1300.0, 1.2)];
const ALERT: f32 = 1600.0;

struct Heard {
    thon1: Vec<Segment>,
    thon2: Vec<Segment>,
    rows: Vec<Value>,
}

fn total(segments: &[Segment], freq: f32) -> f64 {
    segments.iter().filter(|s| s.freq == freq).map(|s| s.seconds).sum()
}

fn freqs(segments: &[Segment]) -> Vec<f32> {
    segments.iter().map(|s| s.freq).collect()
}

fn media(dir: &Path) {
    let media = dir.join("media");
    std::fs::create_dir_all(&media).unwrap();
    write_tones_wav(&dir.join("a.wav"), 44_100, 2, &SEQ_A);
    ffmpeg_convert(&dir.join("a.wav"), &media.join("seq_a.mp3"), &["-b:a", "192k"]);
    write_tones_wav(&dir.join("b.wav"), 48_000, 1, &SEQ_B);
    ffmpeg_convert(&dir.join("b.wav"), &media.join("seq_b.flac"), &[]);
    write_tones_wav(&media.join("alert.wav"), 48_000, 1, &[(ALERT, 2.0)]);
}

/// Plays the bulletin from a schedule on both zones, with an emergency on
/// thon-1 half a second into its 1100 Hz tone, and decodes both zones.
fn bulletin_with_an_emergency(on_preempt: &str) -> Heard {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    media(dir.path());
    let (z1, g1, p1) = zone_toml("thon-1");
    let (z2, g2, p2) = zone_toml("thon-2");
    let config = format!("{}{z1}{z2}[[playlist]]\nname = \"ban-tin\"\nitems = [\"seq_a.mp3\", \"seq_b.flac\"]\n", base_config(dir.path()));
    let daemon = Daemon::start(dir.path(), &config);
    let zone1 = RtpListener::start(&g1, p1);
    let zone2 = RtpListener::start(&g2, p2);
    let (wav1, wav2) = (dir.path().join("thon1.wav"), dir.path().join("thon2.wav"));
    let receiver1 = common::gst_receiver(&g1, p1, &wav1);
    let receiver2 = common::gst_receiver(&g2, p2, &wav2);
    // The schedule fires three seconds from now (added by a reload, so the
    // instant is known when the file is written).
    let fire = (jiff::Timestamp::now().as_second() + 3) % 60;
    let schedule = format!(
        "[[schedule]]\nname = \"sang\"\ncron = \"{fire} * * * * *\"\nplaylist = \"ban-tin\"\nzones = \"all\"\non_preempt = \"{on_preempt}\"\n"
    );
    std::fs::write(&daemon.config, format!("{config}{schedule}")).unwrap();
    let out = daemon.loa(&["reload"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    zone1.wait_packets_where("half a second of 1100 Hz on thon-1", Duration::from_secs(20), |p| {
        packet_tones(p, &CANDIDATES).iter().filter(|t| **t == Some(1100.0)).count() >= 25
    });
    let out = daemon.loa(&["play", "--zones", "thon-1", "--priority", "emergency", "alert.wav"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    daemon.wait_idle(Duration::from_secs(30));
    let zone1 = zone1.stop();
    let zone2 = zone2.stop();
    assert_eq!(seq_gaps(&zone1), 0, "thon-1 lost packets");
    assert_eq!(seq_gaps(&zone2), 0, "thon-2 lost packets");
    // Real time, not a condition: GStreamer's jitter buffer (100 ms) and
    // file sink still hold the last packets, and nothing outside it says
    // when they reach the file.
    std::thread::sleep(Duration::from_millis(500));
    receiver1.stop(Duration::from_secs(3));
    receiver2.stop(Duration::from_secs(3));
    let (rate1, x1) = read_wav_mono(&wav1);
    let (rate2, x2) = read_wav_mono(&wav2);
    let rows = daemon.json(&["history"])["rows"].as_array().unwrap().clone();
    Heard { thon1: tone_segments(rate1, &x1, &CANDIDATES), thon2: tone_segments(rate2, &x2, &CANDIDATES), rows }
}

#[test]
fn a_zone_cut_by_an_emergency_hears_the_whole_programme_from_where_it_was_cut() {
    let heard = bulletin_with_an_emergency("pause");
    let all = SEQ_A.iter().chain(&SEQ_B);
    // thon-2 never noticed: the bulletin whole, no alert.
    assert_eq!(freqs(&heard.thon2), vec![900.0, 1100.0, 1300.0], "{:#?}", heard.thon2);
    for &(f, secs) in all.clone() {
        assert!((total(&heard.thon2, f) - secs as f64).abs() < 0.08, "thon-2 heard {f} Hz for {:.3} s: {:#?}", total(&heard.thon2, f), heard.thon2);
    }
    // thon-1: 900, 1100 (cut), the alert, the rest of 1100, all of 1300.
    assert_eq!(freqs(&heard.thon1), vec![900.0, 1100.0, ALERT, 1100.0, 1300.0], "{:#?}", heard.thon1);
    for &(f, secs) in all {
        assert!((total(&heard.thon1, f) - secs as f64).abs() < 0.08, "thon-1 heard {f} Hz for {:.3} s: {:#?}", total(&heard.thon1, f), heard.thon1);
    }
    assert!((total(&heard.thon1, ALERT) - 2.0).abs() < 0.08, "{:#?}", heard.thon1);

    // History: the programme's rows, and its branch's rows for thon-1 only.
    let scheduled: Vec<&Value> = heard.rows.iter().filter(|r| r["origin"] == "schedule:sang").collect();
    assert!(scheduled.iter().all(|r| r["outcome"] == "completed"), "{scheduled:#?}");
    let programs: std::collections::BTreeSet<u64> = scheduled.iter().map(|r| r["program"].as_u64().unwrap()).collect();
    assert_eq!(programs.len(), 2, "the programme and one branch: {scheduled:#?}");
    let branch = *programs.iter().max().unwrap();
    let branch_rows: Vec<&&Value> = scheduled.iter().filter(|r| r["program"] == branch).collect();
    assert_eq!(branch_rows.len(), 2, "the rest of seq_a and all of seq_b: {branch_rows:#?}");
    assert!(branch_rows.iter().all(|r| r["zones"] == serde_json::json!(["thon-1"])), "{branch_rows:#?}");
    assert!(branch_rows.iter().all(|r| r["program_name"] == "sang"), "{branch_rows:#?}");
}

#[test]
fn with_rejoin_the_cut_zone_joins_the_programme_where_it_is() {
    let heard = bulletin_with_an_emergency("rejoin");
    assert_eq!(freqs(&heard.thon2), vec![900.0, 1100.0, 1300.0], "{:#?}", heard.thon2);
    // thon-1 missed what thon-2 heard during the alert: the rest of
    // 1100 Hz (1 s) and the first second of 1300 Hz.
    assert!((total(&heard.thon1, 1100.0) - 0.5).abs() < 0.1, "{:#?}", heard.thon1);
    assert!(total(&heard.thon1, 1300.0) < 0.4, "{:#?}", heard.thon1);
    let programs: std::collections::BTreeSet<u64> =
        heard.rows.iter().filter(|r| r["origin"] == "schedule:sang").map(|r| r["program"].as_u64().unwrap()).collect();
    assert_eq!(programs.len(), 1, "no branch");
}
