//! `loa stream` and `loa sdp` through the real binary: bad input of each kind
//! is reported in one line naming the file and the stream goes on; exit
//! codes follow the CLI contract. Runs inside the private network namespace.

mod common;

use std::process::Command;

use common::*;

fn stream_files(zone: &TestZone, files: &[&std::path::Path]) -> (i32, String) {
    let out = Command::new(LOA)
        .arg("stream")
        .arg("--config")
        .arg(&zone.config)
        .args(["--zone", "z"])
        .args(files)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The one stderr line that names `file`.
fn line_for<'a>(stderr: &'a str, file: &str) -> &'a str {
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(file)).collect();
    assert_eq!(lines.len(), 1, "exactly one line names {file}:\n{stderr}");
    lines[0]
}

#[test]
fn each_bad_file_kind_is_skipped_with_a_reason_and_the_stream_goes_on() {
    require_netns();
    let zone = zone_config("");
    let dir = zone.dir.path();
    let good = dir.join("good.wav");
    write_tones_wav(&good, 48_000, 1, &[(TONES[0], 0.3)]);

    let missing = dir.join("missing.mp3");
    let empty = dir.join("empty.flac");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.join("notes.wav");
    std::fs::write(&text, "Lịch phát thanh tuần này\n".repeat(50)).unwrap();
    let random = dir.join("noise.mp3");
    std::fs::write(&random, (0..8192u32).map(|i| (i.wrapping_mul(2246822519) >> 11) as u8).collect::<Vec<u8>>()).unwrap();
    // A FLAC whose audio frames were overwritten after the header.
    let flac_src = dir.join("flac-src.wav");
    write_tones_wav(&flac_src, 44_100, 1, &[(TONES[1], 1.0)]);
    let corrupt = dir.join("corrupt.flac");
    ffmpeg_convert(&flac_src, &corrupt, &[]);
    let mut bytes = std::fs::read(&corrupt).unwrap();
    let len = bytes.len();
    for (i, b) in bytes[len / 10..].iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(2654435761).to_be_bytes()[0];
    }
    std::fs::write(&corrupt, bytes).unwrap();

    let (code, stderr) = stream_files(&zone, &[&missing, &good, &empty, &text, &random, &corrupt, &good]);
    assert_eq!(code, 0, "good files played, so exit 0:\n{stderr}");
    assert!(line_for(&stderr, "missing.mp3").contains("not found"), "{stderr}");
    assert!(line_for(&stderr, "empty.flac").contains("empty"), "{stderr}");
    assert!(line_for(&stderr, "notes.wav").contains("not a recognised audio format"), "{stderr}");
    assert!(line_for(&stderr, "noise.mp3").contains("not a recognised audio format"), "{stderr}");
    let corrupt_line = line_for(&stderr, "corrupt.flac");
    assert!(corrupt_line.contains("corrupt") || corrupt_line.contains("stopped at"), "{stderr}");
    assert!(stderr.contains("played 2 file(s)") || stderr.contains("played 3 file(s)"), "{stderr}");
}

#[test]
fn a_truncated_file_plays_what_is_there_and_says_where_it_stopped() {
    require_netns();
    let zone = zone_config("");
    let dir = zone.dir.path();
    let src = dir.join("long.wav");
    write_tones_wav(&src, 44_100, 2, &[(TONES[2], 2.0)]);
    let mp3 = dir.join("cut.mp3");
    ffmpeg_convert(&src, &mp3, &["-b:a", "128k"]);
    let bytes = std::fs::read(&mp3).unwrap();
    std::fs::write(&mp3, &bytes[..bytes.len() / 2]).unwrap();

    let (code, stderr) = stream_files(&zone, &[&mp3]);
    assert_eq!(code, 0, "{stderr}");
    let line = line_for(&stderr, "cut.mp3");
    assert!(line.contains("truncated"), "the line says the file is truncated: {stderr}");
}

#[test]
fn when_every_file_fails_the_stream_exits_1() {
    require_netns();
    let zone = zone_config("");
    let missing = zone.dir.path().join("nope.ogg");
    let (code, stderr) = stream_files(&zone, &[&missing]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("nope.ogg"), "{stderr}");
    assert!(stderr.contains("none of the 1 file(s) could be played"), "{stderr}");
}

#[test]
fn an_unknown_zone_exits_1_and_lists_the_configured_zones() {
    let zone = zone_config("");
    let out = loa(&["stream", "--config", zone.config.to_str().unwrap(), "--zone", "nowhere", "x.mp3"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown zone \"nowhere\"") && stderr.contains("z"), "{stderr}");
    let out = loa(&["sdp", "--config", zone.config.to_str().unwrap(), "--zone", "nowhere"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn loa_sdp_prints_the_zone_session_description() {
    let zone = zone_config("channels = 2\nfec = true\nframe_ms = 40\npayload_type = 101");
    let out = loa(&["sdp", "--config", zone.config.to_str().unwrap(), "--zone", "z"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sdp = String::from_utf8(out.stdout).unwrap();
    assert!(sdp.starts_with("v=0\r\n"), "{sdp}");
    assert!(sdp.contains(&format!("c=IN IP4 {}/1\r\n", zone.group)), "{sdp}");
    assert!(sdp.contains(&format!("m=audio {} RTP/AVP 101\r\n", zone.port)), "{sdp}");
    assert!(sdp.contains("a=rtpmap:101 opus/48000/2\r\n"), "{sdp}");
    assert!(sdp.contains("a=fmtp:101 sprop-stereo=1;useinbandfec=1"), "{sdp}");
    assert!(sdp.contains("a=ptime:40\r\n"), "{sdp}");
}

#[test]
fn on_a_terminal_progress_shows_the_file_and_its_position() {
    require_netns();
    let zone = zone_config("");
    let good = zone.dir.path().join("tin-sang.wav");
    write_tones_wav(&good, 48_000, 1, &[(TONES[0], 2.5)]);
    // `script` gives loa a pseudo-terminal, as an operator's shell would.
    let cmd = format!(
        "{LOA} stream --config {} --zone z {}",
        zone.config.display(),
        good.display()
    );
    let out = Command::new("script").args(["-qec", &cmd, "/dev/null"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(screen.contains("[1/1] tin-sang.wav  0:01 / 0:02"), "progress line: {screen:?}");
    assert!(screen.contains("played 1 file(s)"), "{screen:?}");
}

#[test]
fn without_a_terminal_there_is_no_progress_line() {
    require_netns();
    let zone = zone_config("");
    let good = zone.dir.path().join("quiet.wav");
    write_tones_wav(&good, 48_000, 1, &[(TONES[0], 1.2)]);
    let (code, stderr) = stream_files(&zone, &[&good]);
    assert_eq!(code, 0);
    assert!(!stderr.contains('▶') && !stderr.contains('\r'), "{stderr:?}");
}
