//! A playlist mixing good files with every kind of bad one, played by the
//! real daemon: every good file plays, every bad one is a `failed` history
//! row with a reason a person understands, and the daemon stays up. A file
//! damaged in the middle keeps playing after the damage.

mod common;

use std::time::Duration;

use common::daemon::{base_config, packet_tones, zone_toml, Daemon, RtpListener};
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
    std::thread::sleep(Duration::from_millis(6500));
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
