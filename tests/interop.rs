//! Interop: `loa stream` received by real receivers (GStreamer, ffmpeg from
//! `loa sdp`) on loopback, checked against a tone sequence the test made,
//! and a packet capture checked for sequence gaps, SSRC, marker, timestamps
//! and RTCP. Runs inside the private network namespace (`make test`).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

const STOP_GRACE: Duration = Duration::from_secs(5);

/// Lets a receiver write out what it holds after the sender exits. Real
/// time, not a condition: GStreamer's jitter buffer (100 ms) and ffmpeg's
/// demuxer release the last packets on their own clocks, and nothing
/// outside them says when those reach the file.
fn settle() {
    std::thread::sleep(Duration::from_millis(500));
}

/// Tone plan: (frequency, seconds).
fn five_tones() -> Vec<(f32, f32)> {
    TONES[..5].iter().map(|&f| (f, 1.0)).collect()
}

fn stream(zone: &TestZone, files: &[&Path]) -> std::process::Output {
    let mut cmd = Command::new(LOA);
    cmd.arg("stream").arg("--config").arg(&zone.config).args(["--zone", "z"]);
    cmd.args(files);
    cmd.output().unwrap()
}

/// Checks the capture: one SSRC, PT 96, no sequence gaps, timestamps
/// advancing by exactly one frame, marker only on the first packet, SR+SDES
/// while sending and a BYE at the end.
fn assert_clean_capture(pcap: &Path, port: u16, expected_seconds: f64) {
    let packets = rtp_packets(pcap, port);
    assert!(!packets.is_empty(), "capture holds RTP packets");
    let expected_packets = expected_seconds / 0.02;
    assert!(
        (packets.len() as f64 - expected_packets).abs() <= 3.0,
        "{} packets for {expected_seconds} s of audio",
        packets.len()
    );
    assert_eq!(sequence_gaps(&packets), 0, "sequence numbers are continuous");
    let ssrc = packets[0].ssrc;
    assert!(packets.iter().all(|p| p.ssrc == ssrc), "one SSRC for the whole stream");
    assert!(packets.iter().all(|p| p.payload_type == 96));
    for w in packets.windows(2) {
        assert_eq!(
            w[1].timestamp.wrapping_sub(w[0].timestamp),
            960,
            "timestamp advances by one 20 ms frame"
        );
    }
    assert!(packets[0].marker, "first packet carries the marker bit");
    assert!(packets[1..].iter().all(|p| !p.marker), "no marker inside a continuous stream");

    let rtcp = rtcp_packet_types(pcap, port);
    assert!(
        rtcp.iter().any(|c| c.first() == Some(&200) && c.contains(&202)),
        "a sender report with SDES was sent: {rtcp:?}"
    );
    let last = rtcp.last().expect("RTCP was sent");
    assert!(last.contains(&203), "the stream ends with an RTCP BYE: {rtcp:?}");
}

#[test]
fn gstreamer_receives_the_tone_sequence_in_order_with_no_sequence_gaps() {
    require_netns();
    let zone = zone_config("");
    let dir = zone.dir.path();
    let tones = five_tones();
    let source = dir.join("tones.wav");
    write_tones_wav(&source, 44_100, 2, &tones);

    let pcap = dir.join("cap.pcapng");
    let cap = capture(zone.port, &pcap);
    let wav = dir.join("gst.wav");
    let rx = gst_receiver(&zone.group, zone.port, &wav);

    let out = stream(&zone, &[&source]);
    assert!(out.status.success(), "loa stream failed: {}", String::from_utf8_lossy(&out.stderr));
    settle();
    let rx_out = rx.stop(STOP_GRACE);
    cap.stop(STOP_GRACE);

    let (rate, audio) = read_wav_mono(&wav);
    let segments = tone_segments(rate, &audio, &TONES);
    assert_tones(
        &segments,
        &tones,
        0.05,
        &format!("gstreamer ({})", String::from_utf8_lossy(&rx_out.stderr)),
    );
    assert_clean_capture(&pcap, zone.port, 5.0);
}

#[test]
fn ffmpeg_opens_the_sdp_from_loa_sdp_and_receives_the_tone_sequence() {
    require_netns();
    let zone = zone_config("");
    let dir = zone.dir.path();
    let tones = five_tones();
    let source = dir.join("tones.flac");
    let wav_source = dir.join("tones.wav");
    write_tones_wav(&wav_source, 48_000, 1, &tones);
    ffmpeg_convert(&wav_source, &source, &[]);

    let sdp = loa(&["sdp", "--config", zone.config.to_str().unwrap(), "--zone", "z"]);
    assert!(sdp.status.success(), "loa sdp: {}", String::from_utf8_lossy(&sdp.stderr));
    let sdp_path = dir.join("zone.sdp");
    std::fs::write(&sdp_path, &sdp.stdout).unwrap();

    let wav = dir.join("ffmpeg.wav");
    let rx = ffmpeg_receiver(&sdp_path, &wav);
    let out = stream(&zone, &[&source]);
    assert!(out.status.success(), "loa stream failed: {}", String::from_utf8_lossy(&out.stderr));
    settle();
    let rx_out = rx.stop(STOP_GRACE);

    let (rate, audio) = read_wav_mono(&wav);
    let segments = tone_segments(rate, &audio, &TONES);
    assert_tones(
        &segments,
        &tones,
        0.05,
        &format!("ffmpeg ({})", String::from_utf8_lossy(&rx_out.stderr)),
    );
}

#[test]
fn files_play_back_to_back_as_one_stream_and_a_bad_file_in_the_middle_is_skipped() {
    require_netns();
    let zone = zone_config("");
    let dir = zone.dir.path();

    // First file: 44.1 kHz stereo WAV; second: random bytes named .mp3;
    // third: 32 kHz mono MP3; fourth: 22.05 kHz Ogg Vorbis.
    let first = dir.join("first.wav");
    write_tones_wav(&first, 44_100, 2, &[(TONES[0], 1.0), (TONES[1], 1.0)]);
    let bad = dir.join("broken.mp3");
    std::fs::write(&bad, (0..20_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect::<Vec<u8>>()).unwrap();
    let third_wav = dir.join("third-src.wav");
    write_tones_wav(&third_wav, 32_000, 1, &[(TONES[2], 1.0), (TONES[3], 1.0)]);
    let third = dir.join("third.mp3");
    ffmpeg_convert(&third_wav, &third, &["-b:a", "96k"]);
    let fourth_wav = dir.join("fourth-src.wav");
    write_tones_wav(&fourth_wav, 22_050, 1, &[(TONES[4], 1.0)]);
    let fourth = dir.join("fourth.ogg");
    ffmpeg_convert(&fourth_wav, &fourth, &["-c:a", "libvorbis"]);

    let pcap = dir.join("cap.pcapng");
    let cap = capture(zone.port, &pcap);
    let wav = dir.join("gst.wav");
    let rx = gst_receiver(&zone.group, zone.port, &wav);

    let out = stream(&zone, &[&first, &bad, &third, &fourth]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "loa stream failed: {stderr}");
    settle();
    rx.stop(STOP_GRACE);
    cap.stop(STOP_GRACE);

    let skipped: Vec<&str> = stderr.lines().filter(|l| l.starts_with("loa: skipped")).collect();
    assert_eq!(skipped.len(), 1, "one skip line: {stderr}");
    assert!(skipped[0].contains("broken.mp3"), "the skip line names the file: {stderr}");

    let (rate, audio) = read_wav_mono(&wav);
    let segments = tone_segments(rate, &audio, &TONES);
    let expected: Vec<(f32, f32)> = TONES[..5].iter().map(|&f| (f, 1.0)).collect();
    // MP3 and Vorbis add encoder priming the decoder may not fully trim, so
    // file boundaries get a little more slack than tones inside one file.
    assert_tones(&segments, &expected, 0.07, "multi-file run");

    // One continuous RTP stream across all files: no gap, one SSRC, marker
    // only on the very first packet.
    let packets = rtp_packets(&pcap, zone.port);
    assert_eq!(sequence_gaps(&packets), 0, "no sequence gap between files");
    assert!(packets[0].marker && packets[1..].iter().all(|p| !p.marker));
    assert!(packets.iter().all(|p| p.ssrc == packets[0].ssrc));
    for w in packets.windows(2) {
        assert_eq!(w[1].timestamp.wrapping_sub(w[0].timestamp), 960, "no timestamp jump between files");
    }
}
