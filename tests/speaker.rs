//! `loa speaker` through the real binary: it plays what `loa stream` sends
//! into a WAV with every tone in place, recovers lost packets from in-band
//! FEC, reports back with RTCP Receiver Reports about the stream's SSRC from
//! its own address, and shrugs off bad input. Runs inside the private
//! network namespace (scripts/netns.sh).

mod common;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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

/// A lossy link between a zone and a speaker: takes every RTP packet on
/// the zone's group, keeps it (in order: the lossless reference) and
/// forwards it to another group unless `lose` picks its index.
struct LossyLink {
    packets: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    join: Option<std::thread::JoinHandle<()>>,
}

impl LossyLink {
    fn start(from: (&str, u16), to: (&str, u16), lose: fn(usize) -> bool) -> LossyLink {
        let input = group_socket(from.0, from.1);
        let output = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket2::SockRef::from(&output)
            .set_multicast_if_v4(&Ipv4Addr::LOCALHOST)
            .unwrap();
        let target = format!("{}:{}", to.0, to.1);
        let packets = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (kept, stopping) = (packets.clone(), stop.clone());
        let join = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stopping.load(Ordering::Relaxed) {
                let Ok(n) = input.recv(&mut buf) else { continue };
                let mut kept = kept.lock().unwrap();
                if !lose(kept.len()) {
                    output.send_to(&buf[..n], &target).unwrap();
                }
                kept.push(buf[..n].to_vec());
            }
        });
        LossyLink {
            packets,
            stop,
            join: Some(join),
        }
    }

    /// Every packet the zone sent, lost on the way or not.
    fn stop(mut self) -> Vec<Vec<u8>> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(join) = self.join.take() {
            join.join().unwrap();
        }
        std::mem::take(&mut *self.packets.lock().unwrap())
    }
}

impl Drop for LossyLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Every tenth packet from the 16th on (never two in a row, never the
/// last ones, whose loss no later packet could repair): 13 of ~150.
fn lost_on_the_link(index: usize) -> bool {
    (15..140).contains(&index) && index % 10 == 5
}

/// Decodes RTP packets (libopus, 48 kHz mono) one 20 ms frame each; a
/// packet `lost` picks is concealed by libopus alone (PLC), never
/// rebuilt from the next packet's FEC.
fn decode_frames(packets: &[Vec<u8>], lost: fn(usize) -> bool) -> Vec<Vec<f32>> {
    let mut decoder = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
    let mut pcm = vec![0f32; 960];
    packets
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let payload = rtp_rs::RtpReader::new(p).unwrap().payload().to_vec();
            let input: &[u8] = if lost(i) { &[] } else { &payload };
            let n = decoder.decode_float(input, &mut pcm, false).unwrap();
            pcm[..n].to_vec()
        })
        .collect()
}

/// Signal-to-error ratio (dB) of `x` against `reference`.
fn snr_db(reference: &[f32], x: &[f32]) -> f64 {
    let signal: f64 = reference.iter().map(|v| f64::from(*v).powi(2)).sum();
    let error: f64 = reference.iter().zip(x).map(|(a, b)| f64::from(a - b).powi(2)).sum();
    10.0 * (signal / error.max(1e-12)).log10()
}

/// The median over the lost packets of the SNR of `frames` against the
/// lossless `reference`, over the lost frame and the one after it (where
/// a concealment's error lingers).
fn median_snr_around_losses(reference: &[Vec<f32>], frames: &[Vec<f32>], lost: &[usize]) -> (f64, Vec<f64>) {
    let mut snrs: Vec<f64> = lost
        .iter()
        .map(|&k| snr_db(&[&reference[k][..], &reference[k + 1][..]].concat(), &[&frames[k][..], &frames[k + 1][..]].concat()))
        .collect();
    let shown = snrs.clone();
    snrs.sort_by(f64::total_cmp);
    (snrs[snrs.len() / 2], shown)
}

/// What FEC recovery must reach around a lost packet, median over the
/// losses: libopus's LBRR copy of a frame comes back within tens of dB
/// of the original (21–32 dB per loss on the sweep below), while
/// concealment (PLC) extrapolates what came before and lands within a
/// few dB of nothing (median under 1 dB, with FEC on or off at the sender).
const FEC_MEDIAN_SNR_DB: f64 = 15.0;

/// A 3 s sine sweeping 300 Hz → 3 kHz, s16 mono 48 kHz. Not steady
/// tones: with FEC off at the sender, libopus's CELT concealment repeats
/// a steady tone so well (35 dB) that PLC alone would pass; a sweep moves
/// on during each lost frame, so only the frame's FEC copy brings it back.
fn write_sweep_wav(path: &Path) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let mut phase = 0f64;
    for i in 0..3 * 48_000 {
        let freq = 300.0 + 900.0 * f64::from(i) / 48_000.0;
        phase += 2.0 * std::f64::consts::PI * freq / 48_000.0;
        w.write_sample((phase.sin() * 0.3 * f64::from(i16::MAX)) as i16).unwrap();
    }
    w.finalize().unwrap();
}

#[test]
fn packets_lost_on_a_lossy_link_are_recovered_from_in_band_fec() {
    require_netns();
    let zone = zone_config("fec = true\nexpected_loss_pct = 10");
    let dir = zone.dir.path();
    let src = dir.join("sweep.wav");
    write_sweep_wav(&src);
    let wav = dir.join("speaker.wav");

    // The speaker listens on a group of its own, fed by the lossy link.
    let (speaker_group, speaker_port) = unique_group();
    let link = LossyLink::start((&zone.group, zone.port), (&speaker_group, speaker_port), lost_on_the_link);
    let mut args = speaker_args(&zone, &wav);
    args[1] = format!("{speaker_group}:{speaker_port}");
    let speaker = Speaker::start(dir, &strs(&args));
    stream_to_end(&zone, &src);
    let (status, stderr) = speaker.stop();
    let sent = link.stop();

    assert!(status.success(), "{stderr}");
    let lost: Vec<usize> = (0..sent.len()).filter(|&i| lost_on_the_link(i)).collect();
    assert!(sent.len() >= 145 && lost.len() == 13, "{} packets sent, {} lost", sent.len(), lost.len());
    assert_eq!(stat(&stderr, "lost"), 13, "{stderr}");
    assert_eq!(stat(&stderr, "late"), 0, "{stderr}");
    // The sweep is coded in a mode that carries FEC (SILK/hybrid LBRR),
    // so the packet after each loss holds a copy of the lost frame.
    assert_eq!(stat(&stderr, "recovered by FEC"), 13, "every lost frame rebuilt from FEC:\n{stderr}");
    assert_eq!(stat(&stderr, "concealed"), 0, "{stderr}");

    // The speaker's WAV, frame by frame, against the same packets decoded
    // without loss. Its first frames (before any loss) decode the same
    // packets with the same libopus: they match to the sample, which also
    // finds where the stream starts in the WAV.
    let reference = decode_frames(&sent, |_| false);
    let (rate, samples) = read_wav_mono(&wav);
    assert_eq!(rate, 48_000);
    let lsb = 2.0 / 32_768.0;
    let same = |a: &[f32], b: &[f32]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= lsb);
    let frames: Vec<Vec<f32>> = samples.chunks_exact(960).map(<[f32]>::to_vec).collect();
    let start = (0..25)
        .find(|&o| (0..lost[0]).all(|k| frames.get(o + k).is_some_and(|f| same(f, &reference[k]))))
        .unwrap_or_else(|| panic!("the speaker's WAV does not begin with the stream's first {} frames", lost[0]));
    let played = &frames[start..];
    assert!(played.len() >= sent.len(), "{} frames played of {}", played.len(), sent.len());

    // Around each lost packet: the speaker's audio against the lossless
    // decode, and, as the yardstick, libopus concealing the same losses
    // without FEC (what a speaker without FEC, or a stream without it,
    // would play).
    let (fec, fec_each) = median_snr_around_losses(&reference, played, &lost);
    let plc_only = decode_frames(&sent, lost_on_the_link);
    let (plc, plc_each) = median_snr_around_losses(&reference, &plc_only, &lost);
    eprintln!("around the 13 lost packets, SNR against the lossless decode: speaker median {fec:.1} dB {fec_each:.1?}; PLC alone median {plc:.1} dB {plc_each:.1?}");
    assert!(
        plc < FEC_MEDIAN_SNR_DB,
        "concealment alone reaches {plc:.1} dB: the bound would not tell FEC from PLC"
    );
    assert!(
        fec >= FEC_MEDIAN_SNR_DB,
        "the speaker's audio around lost packets is {fec:.1} dB from the original (median), under {FEC_MEDIAN_SNR_DB} dB: \
         not restored by FEC (PLC alone: {plc:.1} dB)\n{stderr}"
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
