//! Text-to-speech through the real daemon: `loa say` (and a `say`
//! schedule) makes espeak-ng speak Vietnamese, the speech goes out on the
//! zone as Opus/RTP, and history records the text and the WAV's hash.

mod common;

use std::path::Path;
use std::time::Duration;

use common::daemon::{base_config, zone_toml, Daemon, Packet, RtpListener};
use common::{poll_until, require_netns};
use serde_json::Value;

/// A packet counts as speech above this mean square (about -40 dBFS).
const VOICED: f32 = 1e-4;

/// What a listener on the zone heard: seconds from the first to the last
/// voiced packet, and the RMS over that span.
struct Heard {
    voiced_secs: f64,
    rms: f32,
}

fn heard(packets: &[Packet]) -> Heard {
    let mut decoder = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
    let mut pcm = vec![0f32; 5760];
    let frames: Vec<Vec<f32>> = packets
        .iter()
        .map(|p| {
            let n = decoder
                .decode_float(&p.payload, &mut pcm, false)
                .unwrap_or(0);
            pcm[..n].to_vec()
        })
        .collect();
    let energy = |x: &[f32]| x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32;
    let voiced: Vec<usize> = (0..frames.len())
        .filter(|&i| energy(&frames[i]) > VOICED)
        .collect();
    let (Some(&first), Some(&last)) = (voiced.first(), voiced.last()) else {
        return Heard {
            voiced_secs: 0.0,
            rms: 0.0,
        };
    };
    let span: Vec<f32> = frames[first..=last].iter().flatten().copied().collect();
    Heard {
        voiced_secs: span.len() as f64 / 48_000.0,
        rms: energy(&span).sqrt(),
    }
}

/// Waits until history has `n` rows that have ended; returns the rows,
/// oldest first.
fn wait_rows(daemon: &Daemon, n: usize, secs: u64) -> Vec<Value> {
    daemon.wait_history(&format!("{n} ended rows"), Duration::from_secs(secs), |rows| {
        rows.iter().filter(|r| r["outcome"].is_string()).count() >= n
    })
}

/// The finished WAVs in the speech cache.
fn cached(state: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(state.join("tts"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'));
    files.sort();
    files
}

fn sha256_hex(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn say_speaks_on_the_zone_records_text_and_hash_and_reuses_the_cache() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (zone, group, port) = zone_toml("thon-1");
    let listener = RtpListener::start(&group, port);
    let mut daemon = Daemon::start(dir.path(), &format!("{}{zone}", base_config(dir.path())));

    // 1. A short sentence: heard as speech of a plausible length.
    let out = daemon.loa(&["say", "--zones", "thon-1", "Xin chào bà con"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        daemon.log_text()
    );
    let rows1 = wait_rows(&daemon, 1, 15);
    let first = listener.stop();
    let h = heard(&first);
    println!(
        "heard {:.2} s of speech, RMS {:.4} ({} packets)",
        h.voiced_secs,
        h.rms,
        first.len()
    );
    assert!(
        (0.5..=5.0).contains(&h.voiced_secs),
        "speech lasted {:.2} s",
        h.voiced_secs
    );
    assert!(h.rms > 0.01, "speech RMS {:.4} is near silence", h.rms);

    let row = &rows1[0];
    assert_eq!(row["source"], "say:vi:\"Xin chào bà con\"", "{row:#}");
    assert_eq!(row["outcome"], "completed", "{row:#}");
    assert_eq!(row["zones"], serde_json::json!(["thon-1"]));
    let files = cached(&state);
    assert_eq!(files.len(), 1, "{files:?}");
    let sha = sha256_hex(&files[0]);
    assert_eq!(
        row["sha256"],
        sha.as_str(),
        "history holds the synthesised WAV's hash"
    );

    // 2. The same text again: the cached WAV is reused (same hash, no new
    // file, not rewritten) and marked as used now for the cache cleaning.
    let before = std::fs::metadata(&files[0]).unwrap();
    // Real time, not a condition: the clock must move for the cache hit's
    // touch to give a later mtime.
    std::thread::sleep(Duration::from_millis(20));
    assert!(daemon
        .loa(&["say", "--zones", "thon-1", "Xin chào bà con"])
        .status
        .success());
    let rows2 = wait_rows(&daemon, 2, 15);
    assert_eq!(rows2[1]["source"], row["source"]);
    assert_eq!(rows2[1]["sha256"], sha.as_str());
    assert_eq!(
        cached(&state),
        files,
        "no new file for the same text and voice"
    );
    let after = std::fs::metadata(&files[0]).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (after.ino(), after.len()),
        (before.ino(), before.len()),
        "not rewritten"
    );
    assert!(
        after.modified().unwrap() > before.modified().unwrap(),
        "a cache hit touches the file"
    );

    // 3. The southern voice, from a file: another WAV, also heard.
    let notice = dir.path().join("notice.txt");
    std::fs::write(&notice, "Thông báo: chiều nay họp thôn.\n").unwrap();
    let listener = RtpListener::start(&group, port);
    let out = daemon.loa(&[
        "say",
        "--zones",
        "thon-1",
        "--voice",
        "vi-vn-x-south",
        "--file",
        notice.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows3 = wait_rows(&daemon, 3, 15);
    let h = heard(&listener.stop());
    assert_spoken(&h, "southern voice");
    assert_eq!(
        rows3[2]["source"],
        "say:vi-vn-x-south:\"Thông báo: chiều nay họp thôn.\""
    );
    assert_eq!(cached(&state).len(), 2);

    // 4. Errors in plain words; the daemon keeps running.
    let out = daemon.loa(&["say", "--zones", "thon-1", "--voice", "xx-nope", "Xin chào"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("espeak-ng does not know voice \"xx-nope\""),
        "{err}"
    );
    let rows4 = wait_rows(&daemon, 4, 10);
    let failed = rows4
        .iter()
        .find(|r| r["outcome"] == "failed")
        .expect("a failed row");
    assert_eq!(failed["source"], "say:xx-nope:\"Xin chào\"");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("does not know voice"),
        "{failed:#}"
    );

    let out = daemon.loa(&[
        "say",
        "--zones",
        "thon-1",
        "--voice",
        "vi;rm -rf /",
        "Xin chào",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("is not a voice name"),
        "{err}"
    );
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, " \n").unwrap();
    let out = daemon.loa(&[
        "say",
        "--zones",
        "thon-1",
        "--file",
        empty.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("the text to say is empty"),
        "{err}"
    );
    let long = "a".repeat(5001);
    let out = daemon.loa(&["say", "--zones", "thon-1", &long]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("the limit is 5000"),
        "{err}"
    );

    assert!(
        daemon.json(&["status"]).is_object(),
        "the daemon still answers"
    );
    assert!(daemon.stop());
}

#[test]
fn a_schedule_with_say_fires_and_speaks() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (zone, group, port) = zone_toml("thon-1");
    let listener = RtpListener::start(&group, port);
    let config = format!(
        "{}[tts]\nvoice = \"vi-vn-x-central\"\n{zone}[[schedule]]\nname = \"loa-sang\"\ncron = \"*/2 * * * * *\"\n\
         say = \"Kính thưa bà con\"\nzones = [\"thon-1\"]\n",
        base_config(dir.path())
    );
    let mut daemon = Daemon::start(dir.path(), &config);
    let schedules = daemon.json(&["schedule", "list"]);
    assert_eq!(
        schedules["schedules"][0]["target"], "say:vi-vn-x-central:\"Kính thưa bà con\"",
        "{schedules:#}"
    );
    let rows = wait_rows(&daemon, 1, 15);
    let row = rows
        .iter()
        .find(|r| r["outcome"] == "completed")
        .unwrap_or_else(|| panic!("{rows:#?}"));
    assert_eq!(row["source"], "say:vi-vn-x-central:\"Kính thưa bà con\"");
    assert_eq!(row["origin"], "schedule:loa-sang");
    assert_eq!(row["sha256"].as_str().map(str::len), Some(64), "{row:#}");
    assert!(daemon.stop());
    let h = heard(&listener.stop());
    println!("scheduled speech: {:.2} s, RMS {:.4}", h.voiced_secs, h.rms);
    assert!(
        h.voiced_secs > 0.5 && h.rms > 0.01,
        "{:.2} s, RMS {:.4}",
        h.voiced_secs,
        h.rms
    );
}

/// Speech of a plausible length for a short notice (0.8–8 s voiced), not
/// near silence; prints what was heard.
fn assert_spoken(h: &Heard, what: &str) {
    println!("{what}: {:.2} s of speech, RMS {:.4}", h.voiced_secs, h.rms);
    assert!(
        (0.8..=8.0).contains(&h.voiced_secs) && h.rms > 0.01,
        "{:.2} s, RMS {:.4}",
        h.voiced_secs,
        h.rms
    );
}

/// Sets a file's mtime (when the speech cache last used it).
fn set_used(path: &Path, at: std::time::SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(at)
        .unwrap();
}

#[test]
fn a_runtime_say_schedule_speaks_is_listed_and_survives_a_restart() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");

    // The speech cache before the start: one WAV unused for 40 days, one
    // used 2 days ago. The start deletes the old one only.
    let day = Duration::from_secs(24 * 3600);
    let now = std::time::SystemTime::now();
    std::fs::create_dir_all(state.join("tts")).unwrap();
    let old = state.join("tts").join(format!("{}.wav", "a".repeat(64)));
    let recent = state.join("tts").join(format!("{}.wav", "b".repeat(64)));
    std::fs::write(&old, vec![0u8; 4096]).unwrap();
    std::fs::write(&recent, vec![0u8; 4096]).unwrap();
    set_used(&old, now - 40 * day);
    set_used(&recent, now - 2 * day);

    let (zone, group, port) = zone_toml("thon-1");
    let listener = RtpListener::start(&group, port);
    let mut daemon = Daemon::start(dir.path(), &format!("{}{zone}", base_config(dir.path())));
    let _ = poll_until(Duration::from_secs(10), || (!old.exists()).then_some(()).ok_or(()));
    assert!(!old.exists(), "unused for 40 days: deleted at start");
    assert!(recent.exists(), "used 2 days ago: kept");
    assert!(
        daemon
            .log_text()
            .contains("speech cache: deleted 1 WAV(s), 4096 bytes, unused for 30 days"),
        "{}",
        daemon.log_text()
    );

    // Refused in plain words, exit 1, nothing stored.
    let refused = |args: &[&str], why: &str| {
        let mut all = vec![
            "schedule",
            "add",
            "x",
            "--cron",
            "0 6 * * *",
            "--zones",
            "thon-1",
        ];
        all.extend_from_slice(args);
        let out = daemon.loa(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: {err}");
    };
    refused(
        &["--say", "Xin chào", "--voice", "vi;rm -rf /"],
        "voice \"vi;rm -rf /\" is not a voice name",
    );
    refused(&["--say", "  \n"], "the text to say is empty");
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, " \n").unwrap();
    refused(
        &["--say-file", empty.to_str().unwrap()],
        "the text to say is empty",
    );
    refused(&["--say", &"a".repeat(5001)], "the limit is 5000");
    refused(
        &["--file", "tin.wav", "--voice", "vi"],
        "a voice is only for a schedule that says text",
    );
    assert_eq!(
        daemon.json(&["schedule", "list"])["schedules"],
        serde_json::json!([]),
        "nothing was added"
    );

    // A notice from a file in the southern voice, 3 s from now; and a
    // disabled one in the configured voice.
    let notice = dir.path().join("notice.txt");
    std::fs::write(&notice, "Thông báo: chiều nay họp thôn.\n").unwrap();
    let fire = (jiff::Timestamp::now().as_second() + 3) % 60;
    let cron = format!("{fire} * * * * *");
    let added = daemon.json(&[
        "schedule",
        "add",
        "thong-bao",
        "--cron",
        &cron,
        "--zones",
        "thon-1",
        "--say-file",
        notice.to_str().unwrap(),
        "--voice",
        "vi-vn-x-south",
    ]);
    let notice_target = "say:vi-vn-x-south:\"Thông báo: chiều nay họp thôn.\"";
    assert_eq!(added["schedule"]["target"], notice_target, "{added:#}");
    daemon.json(&[
        "schedule",
        "add",
        "loa-sang",
        "--cron",
        "0 6 * * *",
        "--zones",
        "thon-1",
        "--say",
        "Kính thưa bà con",
        "--disabled",
    ]);
    let greeting_target = "say:vi:\"Kính thưa bà con\"";
    let listed = daemon.loa(&["schedule", "list"]);
    let table = String::from_utf8_lossy(&listed.stdout);
    println!("{table}");
    assert!(
        table.contains(notice_target) && table.contains(greeting_target),
        "{table}"
    );

    let rows = wait_rows(&daemon, 1, 70);
    let row = &rows[0];
    assert_eq!(row["source"], notice_target, "{row:#}");
    assert_eq!(row["origin"], "schedule:thong-bao", "{row:#}");
    assert_eq!(row["outcome"], "completed", "{row:#}");
    let h = heard(&listener.stop());
    assert_spoken(&h, "runtime say schedule");

    // Kept across a restart, text and voice included.
    assert!(daemon.stop());
    let mut daemon = Daemon::start_existing(dir.path());
    let listed = daemon.json(&["schedule", "list"]);
    let targets: Vec<(&str, &str, bool)> = listed["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["target"].as_str().unwrap(),
                s["enabled"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        targets,
        vec![
            ("loa-sang", greeting_target, false),
            ("thong-bao", notice_target, true)
        ],
        "{listed:#}"
    );
    assert!(daemon.stop());
}
