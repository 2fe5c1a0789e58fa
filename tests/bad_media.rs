//! A playlist mixing good files with every kind of bad one, played by the
//! real daemon: every good file plays, every bad one is a `failed` history
//! row with a reason a person understands, and the daemon stays up. A file
//! damaged in the middle keeps playing after the damage.

mod common;

use std::time::Duration;

use common::daemon::{base_config, packet_tones, seq_gaps, zone_toml, Daemon, RtpListener};
use common::{ffmpeg_convert, require_netns, write_tones_wav};

fn corrupt(path: &std::path::Path, at: f64, len: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let start = (bytes.len() as f64 * at) as usize;
    let mut x = 0x9e37_79b9u32;
    for b in &mut bytes[start..start + len] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_playlist_of_good_and_bad_files_plays_every_good_one_and_records_every_bad_one() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();

    // Good files, each with its own tone.
    write_tones_wav(&media.join("01-good.wav"), 44_100, 2, &[(400.0, 0.6)]);
    write_tones_wav(&tmp.join("two-tones.wav"), 44_100, 1, &[(600.0, 1.0), (1000.0, 1.0)]);
    ffmpeg_convert(&tmp.join("two-tones.wav"), &media.join("04-damaged-middle.mp3"), &["-b:a", "128k"]);
    corrupt(&media.join("04-damaged-middle.mp3"), 0.35, 3000);
    write_tones_wav(&tmp.join("wrong.wav"), 48_000, 1, &[(1200.0, 0.5)]);
    std::fs::copy(tmp.join("wrong.wav"), media.join("06-wav-named.mp3")).unwrap();
    write_tones_wav(&media.join("12-good.wav"), 48_000, 1, &[(1400.0, 0.6)]);

    // Bad files.
    std::fs::write(media.join("02-empty.mp3"), b"").unwrap();
    std::fs::write(media.join("03-random.flac"), (0..20_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect::<Vec<_>>()).unwrap();
    write_tones_wav(&tmp.join("long.wav"), 44_100, 2, &[(800.0, 2.0)]);
    ffmpeg_convert(&tmp.join("long.wav"), &tmp.join("long.mp3"), &["-b:a", "128k"]);
    let mp3 = std::fs::read(tmp.join("long.mp3")).unwrap();
    std::fs::write(media.join("05-truncated.mp3"), &mp3[..mp3.len() / 2]).unwrap();
    // A WAV header claiming 0 channels and a 4 GB data chunk.
    let mut absurd = b"RIFF\xff\xff\xff\xffWAVEfmt \x10\x00\x00\x00\x01\x00\x00\x00\x80\xbb\x00\x00\x00\x00\x00\x00\x00\x00\x10\x00data\xf0\xff\xff\xff".to_vec();
    absurd.extend_from_slice(&[0u8; 64]);
    std::fs::write(media.join("07-absurd-header.wav"), absurd).unwrap();
    write_tones_wav(&media.join("08-no-samples.wav"), 48_000, 1, &[]);
    ffmpeg_convert(&tmp.join("wrong.wav"), &media.join("09-opus.ogg"), &["-c:a", "libopus"]);
    std::fs::write(media.join("10-text.mp3"), "not audio, a text file with an audio name\n".repeat(50)).unwrap();

    let m3u: Vec<&str> = vec![
        "01-good.wav", "02-empty.mp3", "03-random.flac", "04-damaged-middle.mp3", "05-truncated.mp3",
        "06-wav-named.mp3", "07-absurd-header.wav", "08-no-samples.wav", "09-opus.ogg", "10-text.mp3",
        "11-missing.wav", "12-good.wav",
    ];
    std::fs::write(media.join("mixed.m3u"), m3u.join("\n")).unwrap();

    let (zone, group, port) = zone_toml("thon-1");
    let daemon = Daemon::start(dir.path(), &format!("{}{zone}", base_config(dir.path())));
    let loaded = daemon.json(&["playlist", "load", "mixed", media.join("mixed.m3u").to_str().unwrap()]);
    assert_eq!(loaded["items"], 12, "{loaded:#}");
    let listener = RtpListener::start(&group, port);
    daemon.json(&["play", "--playlist", "mixed", "--zones", "thon-1"]);
    daemon.wait_idle(Duration::from_secs(30));
    let packets = listener.stop();
    assert!(daemon.loa(&["status"]).status.success(), "the daemon is still up");

    let tones: Vec<f32> = packet_tones(&packets, &common::TONES).into_iter().flatten().collect();
    for (tone, what) in [(400.0, "01-good"), (1000.0, "the part after the damage in 04"), (1200.0, "06 (WAV named .mp3)"), (1400.0, "12-good")] {
        assert!(tones.contains(&tone), "{what} did not play ({tone} Hz missing)");
    }

    let rows = daemon.json(&["history"])["rows"].as_array().unwrap().clone();
    let row = |file: &str| {
        rows.iter()
            .find(|r| r["source"].as_str().unwrap().ends_with(file))
            .unwrap_or_else(|| panic!("no history row for {file}: {rows:#?}"))
    };
    for good in ["01-good.wav", "06-wav-named.mp3", "12-good.wav"] {
        assert_eq!(row(good)["outcome"], "completed", "{good}: {:#}", row(good));
    }
    for bad in [
        "02-empty.mp3", "03-random.flac", "07-absurd-header.wav", "08-no-samples.wav", "09-opus.ogg", "10-text.mp3",
        "11-missing.wav",
    ] {
        let r = row(bad);
        assert_eq!(r["outcome"], "failed", "{bad}: {r:#}");
        let reason = r["error"].as_str().unwrap_or("");
        assert!(reason.len() > 10 && !reason.contains("Error {") && !reason.contains("Os {"), "{bad}: reason in plain words: {reason}");
        println!("{bad}: {reason}");
    }
    assert!(row("08-no-samples.wav")["error"].as_str().unwrap().contains("no audio (0 samples)"));
    let truncated = row("05-truncated.mp3");
    assert_eq!(truncated["outcome"], "failed", "{truncated:#}");
    assert!(truncated["error"].as_str().unwrap().contains("stopped at"), "{truncated:#}");
    println!("05-truncated.mp3: {}", truncated["error"]);
    println!("04-damaged-middle.mp3: {} {}", row("04-damaged-middle.mp3")["outcome"], row("04-damaged-middle.mp3")["error"]);
}

/// The capability bits that let root read any file whatever its mode.
const DAC_CAPS: u64 = (1 << 1) | (1 << 2); // CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH

fn effective_caps(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("CapEff:")).unwrap();
    u64::from_str_radix(line["CapEff:".len()..].trim(), 16).unwrap()
}

/// Waits until a packet carries `tone`.
fn wait_for_tone(listener: &RtpListener, tone: f32) {
    listener.wait_tone(tone, &common::TONES, Duration::from_secs(20));
}

#[test]
fn files_unreadable_deleted_or_cut_while_the_playlist_plays_are_failed_rows_and_the_stream_goes_on() {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::PermissionsExt;
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    write_tones_wav(&media.join("a-deleted-while-playing.wav"), 48_000, 1, &[(400.0, 4.0)]);
    write_tones_wav(&media.join("b-unreadable.wav"), 48_000, 1, &[(600.0, 0.6)]);
    std::fs::set_permissions(media.join("b-unreadable.wav"), std::fs::Permissions::from_mode(0o000)).unwrap();
    write_tones_wav(&media.join("c-deleted-before-its-turn.wav"), 48_000, 1, &[(800.0, 0.6)]);
    write_tones_wav(&media.join("d-cut-while-playing.wav"), 48_000, 1, &[(1000.0, 4.0)]);
    write_tones_wav(&media.join("e-good.wav"), 48_000, 1, &[(1400.0, 0.6)]);
    let a_sha256 = format!("{:x}", Sha256::digest(std::fs::read(media.join("a-deleted-while-playing.wav")).unwrap()));
    let m3u = ["a-deleted-while-playing.wav", "b-unreadable.wav", "c-deleted-before-its-turn.wav", "d-cut-while-playing.wav", "e-good.wav"];
    std::fs::write(media.join("changing.m3u"), m3u.join("\n")).unwrap();

    // Root (even root of a user namespace) reads mode-000 files: run the
    // daemon without the two capabilities that allow it, as a daemon under
    // its own user would be.
    let prefix: &[&str] = if effective_caps("self") & DAC_CAPS != 0 {
        &["setpriv", "--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search"]
    } else {
        &[]
    };
    let (zone, group, port) = zone_toml("thon-1");
    let daemon = Daemon::start_via(dir.path(), &format!("{}{zone}", base_config(dir.path())), prefix);
    let pid = daemon.child.as_ref().unwrap().id().to_string();
    assert_eq!(effective_caps(&pid) & DAC_CAPS, 0, "the daemon still may read any file");

    // Asked for directly, the unreadable file is refused at request time.
    let out = daemon.loa(&["play", "--zones", "thon-1", media.join("b-unreadable.wav").to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("permission denied: the user loa runs as cannot read this file (check its owner and mode)"), "{stderr}");
    println!("loa play b-unreadable.wav: {}", stderr.trim());

    let loaded = daemon.json(&["playlist", "load", "changing", media.join("changing.m3u").to_str().unwrap()]);
    assert_eq!(loaded["items"], 5, "{loaded:#}");
    let listener = RtpListener::start(&group, port);
    daemon.json(&["play", "--playlist", "changing", "--zones", "thon-1"]);
    // a is on air (and open); c has not been opened yet (the worker reads
    // about a second ahead, a lasts 4 s).
    wait_for_tone(&listener, 400.0);
    std::fs::remove_file(media.join("a-deleted-while-playing.wav")).unwrap();
    std::fs::remove_file(media.join("c-deleted-before-its-turn.wav")).unwrap();
    // d is on air; cut it to 1000 bytes while the worker is mid-file.
    wait_for_tone(&listener, 1000.0);
    std::fs::OpenOptions::new().write(true).open(media.join("d-cut-while-playing.wav")).unwrap().set_len(1000).unwrap();
    wait_for_tone(&listener, 1400.0);

    let row_of = |rows: &[serde_json::Value], file: &str| -> Option<serde_json::Value> {
        rows.iter().rev().find(|r| r["source"].as_str().unwrap().ends_with(file)).cloned()
    };
    let rows = daemon.wait_history("e-good.wav to complete", Duration::from_secs(10), |rows| {
        row_of(rows, "e-good.wav").is_some_and(|r| r["outcome"] == "completed")
    });
    let packets = listener.stop();
    assert!(daemon.loa(&["status"]).status.success(), "the daemon is still up");
    let row = |file: &str| row_of(&rows, file).unwrap_or_else(|| panic!("no history row for {file}: {rows:#?}"));
    for r in &rows {
        println!("{}: {} {}", r["source"], r["outcome"], r["error"]);
    }

    let a = row("a-deleted-while-playing.wav");
    assert_eq!(a["outcome"], "completed", "{a:#}");
    assert_eq!(a["sha256"], a_sha256.as_str(), "the hash of what played: {a:#}");
    let unreadable: Vec<_> = rows.iter().filter(|r| r["source"].as_str().unwrap().ends_with("b-unreadable.wav")).collect();
    assert_eq!(unreadable.len(), 2, "one row for the refused play, one in the playlist: {unreadable:#?}");
    for b in unreadable {
        assert_eq!(b["outcome"], "failed", "{b:#}");
        assert!(b["error"].as_str().unwrap().contains("permission denied: the user loa runs as cannot read this file"), "{b:#}");
    }
    let c = row("c-deleted-before-its-turn.wav");
    assert_eq!(c["outcome"], "failed", "{c:#}");
    assert_eq!(c["error"], "file not found", "{c:#}");
    let d = row("d-cut-while-playing.wav");
    assert_eq!(d["outcome"], "failed", "{d:#}");
    assert!(d["error"].as_str().unwrap().starts_with("stopped at 0:0"), "{d:#}");

    // The stream went on through every fault: 400, 1000 then 1400 Hz, no
    // lost sequence numbers, no pause of a second or more, and d stopped
    // well before its 4 s.
    let tones = packet_tones(&packets, &common::TONES);
    for tone in [400.0, 1000.0, 1400.0] {
        assert!(tones.contains(&Some(tone)), "{tone} Hz missing");
    }
    for tone in [600.0, 800.0] {
        assert!(!tones.contains(&Some(tone)), "{tone} Hz played from a file that should have failed");
    }
    assert_eq!(seq_gaps(&packets), 0);
    let pause = packets.windows(2).map(|w| w[1].at - w[0].at).max().unwrap();
    assert!(pause < Duration::from_secs(1), "the stream paused for {pause:?}");
    let packet = packets[1].timestamp.wrapping_sub(packets[0].timestamp) as f64 / 48_000.0;
    let d_played = tones.iter().filter(|t| **t == Some(1000.0)).count() as f64 * packet;
    assert!(d_played < 3.5, "d played {d_played:.1} s of its 4 s after being cut");
    println!("a sha256 {}; d played {d_played:.2} s; {} packets", a["sha256"], packets.len());
}
