//! `loa speaker` through the real binary: it plays what `loa stream` sends
//! into a WAV with every tone in place, recovers lost packets from in-band
//! FEC, reports back with RTCP Receiver Reports about the stream's SSRC from
//! its own address, and shrugs off bad input. Runs inside the private
//! network namespace (scripts/netns.sh).

mod common;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;
use loa::rtp::rtcp::{parse_compound, RtcpPacket};

/// The speaker's own address in these tests: what the daemon would see.
const SPEAKER_IP: &str = "127.0.0.2";

/// Half a second of each test tone, 3 s in all.
fn tone_sequence() -> Vec<(f32, f32)> {
    TONES.iter().map(|&f| (f, 0.5)).collect()
}

struct Speaker {
    child: Child,
    stderr: PathBuf,
}

impl Speaker {
    /// Starts `loa speaker ARGS` with stderr to a file, and waits for its
    /// "listening" line: from then on it hears the group.
    fn start(dir: &Path, args: &[&str]) -> Speaker {
        let stderr = dir.join(format!("speaker-{}.log", std::process::id() ^ rand_tag()));
        let child = Command::new(LOA)
            .arg("speaker")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut speaker = Speaker { child, stderr };
        wait_until("the speaker to say it is listening", Duration::from_secs(10), || {
            let text = std::fs::read_to_string(&speaker.stderr).unwrap_or_default();
            if text.contains("listening") {
                return Ok(());
            }
            if let Ok(Some(status)) = speaker.child.try_wait() {
                panic!("speaker exited ({status}) before listening:\n{text}");
            }
            Err(text)
        });
        speaker
    }

    /// SIGINT (the speaker finalises its WAV and sends BYE), then its exit
    /// status and stderr.
    fn stop(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-INT", &pid]).status().unwrap();
        let exited = poll_until(Duration::from_secs(10), || self.child.try_wait().unwrap().ok_or(()));
        let status = exited.unwrap_or_else(|()| {
            let _ = self.child.kill();
            panic!("speaker ignored SIGINT");
        });
        (status, std::fs::read_to_string(&self.stderr).unwrap())
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rand_tag() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed) << 20
}

/// A counter from the speaker's final stats line, e.g. `stat(e, "lost")`.
fn stat(stderr: &str, name: &str) -> u64 {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("loa speaker: received"))
        .unwrap_or_else(|| panic!("no stats line in:\n{stderr}"));
    let at = line
        .find(&format!("{name} "))
        .unwrap_or_else(|| panic!("no {name:?} in {line}"));
    line[at + name.len() + 1..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {name:?} in {line}"))
}

fn stream(zone: &TestZone, file: &Path) -> Command {
    let mut cmd = Command::new(LOA);
    cmd.arg("stream")
        .arg("--config")
        .arg(&zone.config)
        .args(["--zone", "z"])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

fn stream_to_end(zone: &TestZone, file: &Path) {
    let out = stream(zone, file).output().unwrap();
    assert!(
        out.status.success(),
        "loa stream failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    play_out();
}

/// Lets the speaker's jitter buffer play out the last packets. Real time,
/// not a condition: it plays them on its own clock, and nothing outside the
/// speaker says when they reach the WAV.
fn play_out() {
    std::thread::sleep(Duration::from_millis(400));
}

/// A UDP socket on `group:port`, sharing the port with the speaker the way
/// it shares it with GStreamer.
fn group_socket(group: &str, port: u16) -> UdpSocket {
    let group: Ipv4Addr = group.parse().unwrap();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    socket.set_reuse_address(true).unwrap();
    socket.set_reuse_port(true).unwrap();
    socket.bind(&SocketAddrV4::new(group, port).into()).unwrap();
    socket
        .join_multicast_v4(&group, &Ipv4Addr::LOCALHOST)
        .unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    socket.into()
}

fn speaker_args(zone: &TestZone, wav: &Path) -> Vec<String> {
    vec![
        "--group".into(),
        format!("{}:{}", zone.group, zone.port),
        "--interface".into(),
        "127.0.0.1".into(),
        "--bind".into(),
        SPEAKER_IP.into(),
        "--out".into(),
        wav.display().to_string(),
    ]
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn a_streamed_tone_sequence_plays_back_in_the_speakers_wav_without_loss() {
    require_netns();
    let zone = zone_config("fec = true\nexpected_loss_pct = 10");
    let dir = zone.dir.path();
    let src = dir.join("tones.wav");
    let tones = tone_sequence();
    write_tones_wav(&src, 48_000, 1, &tones);
    let wav = dir.join("speaker.wav");

    let speaker = Speaker::start(dir, &strs(&speaker_args(&zone, &wav)));
    stream_to_end(&zone, &src);
    let (status, stderr) = speaker.stop();

    assert!(status.success(), "speaker exits 0 on SIGINT:\n{stderr}");
    let (rate, samples) = read_wav_mono(&wav);
    assert_eq!(rate, 48_000);
    assert_tones(
        &tone_segments(rate, &samples, &TONES),
        &tones,
        0.06,
        "speaker WAV",
    );
    assert!(
        stat(&stderr, "received") >= 140,
        "about 150 packets of 20 ms:\n{stderr}"
    );
    assert_eq!(stat(&stderr, "lost"), 0, "{stderr}");
    assert_eq!(stat(&stderr, "concealed"), 0, "{stderr}");
}

#[test]
fn packets_lost_on_a_lossy_link_are_recovered_from_in_band_fec() {
    require_netns();
    let zone = zone_config("fec = true\nexpected_loss_pct = 10");
    let dir = zone.dir.path();
    let src = dir.join("tones.wav");
    let tones = tone_sequence();
    write_tones_wav(&src, 48_000, 1, &tones);
    let wav = dir.join("speaker.wav");

    let mut args = speaker_args(&zone, &wav);
    args.extend(["--drop", "10", "--seed", "7"].map(String::from));
    let speaker = Speaker::start(dir, &strs(&args));
    stream_to_end(&zone, &src);
    let (status, stderr) = speaker.stop();

    assert!(status.success(), "{stderr}");
    assert!(
        stat(&stderr, "dropped") >= 5,
        "about 15 of 150 dropped:\n{stderr}"
    );
    assert!(
        stat(&stderr, "lost") >= 5,
        "drops count as losses:\n{stderr}"
    );
    assert!(stat(&stderr, "recovered by FEC") > 0, "{stderr}");
    let (rate, samples) = read_wav_mono(&wav);
    assert_tones(
        &tone_segments(rate, &samples, &TONES),
        &tones,
        0.1,
        "speaker WAV over a lossy link",
    );
}

#[test]
fn the_speaker_reports_on_the_streams_ssrc_from_its_own_address() {
    require_netns();
    let zone = zone_config("");
    let dir = zone.dir.path();
    let src = dir.join("tone.wav");
    write_tones_wav(&src, 48_000, 1, &[(TONES[0], 3.0)]);
    let rtp = group_socket(&zone.group, zone.port);
    let rtcp = group_socket(&zone.group, zone.port + 1);

    let mut args = speaker_args(&zone, &dir.join("speaker.wav"));
    args.extend(["--rtcp-interval", "0.5"].map(String::from));
    let speaker = Speaker::start(dir, &strs(&args));
    let mut sender = stream(&zone, &src).spawn().unwrap();

    let mut buf = [0u8; 2048];
    let (n, _) = rtp
        .recv_from(&mut buf)
        .expect("the stream reaches the group");
    let stream_ssrc = rtp_rs::RtpReader::new(&buf[..n]).unwrap().ssrc();

    let deadline = Instant::now() + Duration::from_secs(8);
    let (speaker_ssrc, block) = loop {
        assert!(
            Instant::now() < deadline,
            "no receiver report about the stream from {SPEAKER_IP}"
        );
        let Ok((n, from)) = rtcp.recv_from(&mut buf) else {
            continue;
        };
        if from.ip().to_string() != SPEAKER_IP {
            continue; // the sender's own SRs
        }
        let packets = parse_compound(&buf[..n]).expect("the speaker's RTCP parses");
        assert!(
            packets
                .iter()
                .any(|p| matches!(p, RtcpPacket::Sdes { cnames } if !cnames.is_empty())),
            "every report carries SDES CNAME: {packets:?}"
        );
        match packets.first() {
            Some(RtcpPacket::ReceiverReport { ssrc, reports }) if !reports.is_empty() => {
                break (*ssrc, reports[0])
            }
            Some(RtcpPacket::ReceiverReport { .. }) => continue, // before the first RTP packet
            other => panic!("a speaker's compound starts with an RR: {other:?}"),
        }
    };
    assert_eq!(
        block.ssrc, stream_ssrc,
        "the report block is about the stream"
    );
    assert_ne!(speaker_ssrc, stream_ssrc);
    assert_eq!(block.fraction_lost, 0);
    assert!(block.extended_sequence_number > 0);

    assert!(sender.wait().unwrap().success());
    let (status, stderr) = speaker.stop();
    assert!(status.success(), "{stderr}");
    // After SIGINT the speaker says goodbye.
    let deadline = Instant::now() + Duration::from_secs(3);
    let bye = loop {
        assert!(
            Instant::now() < deadline,
            "no BYE from the speaker after SIGINT:\n{stderr}"
        );
        let Ok((n, from)) = rtcp.recv_from(&mut buf) else {
            continue;
        };
        if from.ip().to_string() != SPEAKER_IP {
            continue;
        }
        let packets = parse_compound(&buf[..n]).unwrap();
        if let Some(RtcpPacket::Bye { ssrcs, .. }) = packets.last() {
            break ssrcs.clone();
        }
    };
    assert_eq!(bye, vec![speaker_ssrc]);
}

#[test]
fn a_missing_or_audio_less_sdp_is_refused_with_a_clear_message() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.sdp");
    let out = loa(&["speaker", "--sdp", missing.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot read SDP file") && stderr.contains("missing.sdp"),
        "{stderr}"
    );

    let no_media = dir.path().join("no-media.sdp");
    std::fs::write(
        &no_media,
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=z\r\nc=IN IP4 239.255.9.9/1\r\nt=0 0\r\n",
    )
    .unwrap();
    let out = loa(&["speaker", "--sdp", no_media.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no-media.sdp") && stderr.contains("no audio stream (m=audio line)"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line says it all: {stderr}");
}

#[test]
fn garbage_datagrams_on_the_rtp_port_are_ignored_and_playback_goes_on() {
    require_netns();
    let zone = zone_config("");
    let dir = zone.dir.path();
    let src = dir.join("tones.wav");
    let tones = tone_sequence();
    write_tones_wav(&src, 48_000, 1, &tones);
    let wav = dir.join("speaker.wav");

    let speaker = Speaker::start(dir, &strs(&speaker_args(&zone, &wav)));
    let mut sender = stream(&zone, &src).spawn().unwrap();
    let junk = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket2::SockRef::from(&junk)
        .set_multicast_if_v4(&Ipv4Addr::LOCALHOST)
        .unwrap();
    let target = format!("{}:{}", zone.group, zone.port);
    let mut state = 0x9E37_79B9u32;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let mut sure_rejects = 0;
    for i in 0..60 {
        let datagram: Vec<u8> = match i % 4 {
            // Too short for an RTP header.
            0 => vec![0x80, 96, 1],
            // RTP version 1.
            1 => [&[0x40u8, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1][..], &[0xFC; 40]].concat(),
            // Version 2 but payload type 0 (PCMU), not this stream.
            2 => [&[0x80u8, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1][..], &[0xFC; 40]].concat(),
            // Random bytes of random length.
            _ => (0..(random() % 300)).map(|_| random() as u8).collect(),
        };
        if i % 4 != 3 {
            sure_rejects += 1;
        }
        junk.send_to(&datagram, &target).unwrap();
        // Real time, not a condition: the garbage is spread over the stream.
        std::thread::sleep(Duration::from_millis(30));
    }
    assert!(sender.wait().unwrap().success());
    play_out();
    let (status, stderr) = speaker.stop();

    assert!(status.success(), "{stderr}");
    assert!(stat(&stderr, "ignored") >= sure_rejects, "{stderr}");
    let (rate, samples) = read_wav_mono(&wav);
    assert_tones(
        &tone_segments(rate, &samples, &TONES),
        &tones,
        0.06,
        "speaker WAV amid garbage",
    );
}
