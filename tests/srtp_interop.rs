//! Interop of `loa::rtp::srtp` with real receivers: a tone sequence encoded
//! to Opus, packetised by `rtp::session`, protected by `SrtpSender` and sent
//! to a loopback multicast group in real time (with SRTCP sender reports on
//! port + 1), while ffmpeg (from an `RTP/SAVP` SDP with `a=crypto`) and
//! GStreamer (`srtpdec` keyed by caps) decode it to WAV; the WAVs must hold
//! the tones in order. Runs inside the private network namespace.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use common::*;
use loa::media::opus::{OpusEncoder, MAX_PAYLOAD_BYTES};
use loa::rtp::session::{Session, SessionConfig};
use loa::rtp::srtp::{CryptoAttribute, KeyParam, MasterKey, Mki, SrtpSender, Suite};

const SSRC: u32 = 0x4c4f_4131;
const STOP_GRACE: Duration = Duration::from_secs(5);
const FFMPEG_SRTP_GRACE: Duration = Duration::from_secs(15);

fn three_tones() -> Vec<(f32, f32)> {
    TONES[..3].iter().map(|&f| (f, 1.0)).collect()
}

/// 48 kHz mono sines with 5 ms fades, 0.2 s of silence before and after.
fn tone_pcm(tones: &[(f32, f32)]) -> Vec<f32> {
    let rate = 48_000.0;
    let mut pcm = vec![0.0; 9600];
    for &(freq, seconds) in tones {
        let n = (seconds * rate) as usize;
        let fade = (0.005 * rate) as usize;
        pcm.extend((0..n).map(|i| {
            let ramp = (i.min(n - 1 - i) as f32 / fade as f32).min(1.0);
            0.5 * ramp * (2.0 * std::f32::consts::PI * freq * i as f32 / rate).sin()
        }));
    }
    pcm.extend(std::iter::repeat_n(0.0, 9600));
    pcm
}

/// When to switch keys: after this many packets, to this MKI.
struct Switch {
    after_packets: usize,
    to: Mki,
}

/// Sends the tones as SRTP to `group:port` and SRTCP reports to port + 1,
/// paced on absolute 20 ms deadlines. Returns packets sent.
fn send(
    group: &str,
    port: u16,
    mut tx: SrtpSender,
    tones: &[(f32, f32)],
    first_seq: u16,
    switch: Option<Switch>,
) -> usize {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    socket.set_multicast_loop_v4(true).unwrap();
    let group: Ipv4Addr = group.parse().unwrap();
    let (rtp_to, rtcp_to) = (
        SocketAddrV4::new(group, port),
        SocketAddrV4::new(group, port + 1),
    );
    let start = Instant::now();
    let mut session = Session::new(
        SessionConfig {
            ssrc: SSRC,
            initial_seq: first_seq,
            initial_timestamp: 1234,
            payload_type: 96,
            cname: "loa@srtp-interop".into(),
            session_bandwidth_bps: 40_000,
            rng_seed: 7,
        },
        start,
    );
    let mut encoder = OpusEncoder::new(&test_audio()).unwrap();
    let mut payload = [0u8; MAX_PAYLOAD_BYTES];
    let mut packet = Vec::with_capacity(1500);
    let mut report = Vec::with_capacity(1500);
    let pcm = tone_pcm(tones);
    let mut sent = 0;
    for (n, frame) in pcm.chunks_exact(960).enumerate() {
        let due = start + Duration::from_millis(20 * n as u64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        if let Some(s) = &switch {
            if n == s.after_packets {
                tx.use_key(s.to).unwrap();
            }
        }
        let len = encoder.encode(frame, &mut payload).unwrap();
        session.handle_frame(due, 960 * n as u64, 960, &payload[..len], &mut packet);
        tx.protect_rtp(&mut packet).unwrap();
        socket.send_to(&packet, rtp_to).unwrap();
        sent += 1;
        if session.poll_rtcp(Instant::now(), SystemTime::now(), &mut report) {
            tx.protect_rtcp(&mut report).unwrap();
            socket.send_to(&report, rtcp_to).unwrap();
        }
    }
    sent
}

fn wait_joined(group: &str, before: u32, receivers: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while group_members(group) < before + receivers && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The SDP `loa sdp` will print for an SRTP zone.
fn savp_sdp(group: &str, port: u16, crypto: &CryptoAttribute) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=loa srtp interop\r\nc=IN IP4 {group}/1\r\nt=0 0\r\n\
         m=audio {port} RTP/SAVP 96\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 sprop-stereo=0\r\na=ptime:20\r\n{}\r\n",
        crypto.expose_sdp_line()
    )
}

fn ffmpeg_srtp_receiver(sdp: &Path, out: &Path) -> Background {
    Background::spawn(
        "ffmpeg",
        Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "warning",
                "-protocol_whitelist",
                "file,udp,rtp,srtp",
                "-i",
            ])
            .arg(sdp)
            .args(["-ac", "1", "-y"])
            .arg(out),
    )
}

/// srtpdec with RTP on `port` and SRTCP on port + 1; the decrypted RTCP
/// goes to `rtcp_out` so the test can see SRTCP was accepted.
fn gst_srtp_receiver(
    group: &str,
    port: u16,
    crypto: &CryptoAttribute,
    wav: &Path,
    rtcp_out: &Path,
) -> Background {
    let keys = crypto.expose_gst_caps_fields();
    let rtp_caps = format!(
        "application/x-srtp,media=(string)audio,clock-rate=(int)48000,encoding-name=(string)OPUS,payload=(int)96,ssrc=(uint){SSRC},{keys}"
    );
    let rtcp_caps = format!("application/x-srtcp,ssrc=(uint){SSRC},{keys}");
    let args: Vec<String> = vec![
        "-q".into(),
        "-e".into(),
        "srtpdec".into(),
        "name=d".into(),
        "udpsrc".into(),
        format!("address={group}"),
        format!("port={port}"),
        "multicast-iface=lo".into(),
        format!("caps={rtp_caps}"),
        "!".into(),
        "d.rtp_sink".into(),
        "udpsrc".into(),
        format!("address={group}"),
        format!("port={}", port + 1),
        "multicast-iface=lo".into(),
        format!("caps={rtcp_caps}"),
        "!".into(),
        "d.rtcp_sink".into(),
    ];
    let tail = format!(
        "d.rtp_src ! rtpjitterbuffer latency=100 ! rtpopusdepay ! opusdec ! audioconvert ! \
         audio/x-raw,channels=1,format=S16LE ! wavenc ! filesink location={} d.rtcp_src ! filesink location={}",
        wav.display(),
        rtcp_out.display()
    );
    let mut cmd = Command::new("gst-launch-1.0");
    cmd.args(args).args(tail.split_whitespace());
    Background::spawn("gst-launch-1.0", &mut cmd)
}

fn assert_wav_tones(wav: &Path, tones: &[(f32, f32)], what: &str, log: &std::process::Output) {
    let (rate, samples) = read_wav_mono(wav);
    let segments = tone_segments(rate, &samples, &TONES);
    assert_tones(
        &segments,
        tones,
        0.06,
        &format!("{what} ({})", String::from_utf8_lossy(&log.stderr)),
    );
}

/// No lifetime: ffmpeg (5.1, and its current srtp.c) base64-decodes
/// everything after `inline:`, so `|2^31` or `|1:1` make it log
/// "Incorrect amount of SRTP params" and hand ciphertext to the decoder.
fn key_param(key: &MasterKey, mki: Option<Mki>) -> KeyParam {
    KeyParam {
        key: key.clone(),
        lifetime: None,
        mki,
    }
}

#[test]
fn ffmpeg_and_gstreamer_decode_aes_cm_srtp_from_sdp_and_caps() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (group, port) = unique_group();
    let suite = Suite::AesCm128HmacSha1_80;
    let key = MasterKey::generate(suite, &mut rand::rng());
    let crypto = CryptoAttribute {
        tag: 1,
        suite,
        keys: vec![key_param(&key, None)],
    };
    let sdp = dir.path().join("zone.sdp");
    std::fs::write(&sdp, savp_sdp(&group, port, &crypto)).unwrap();

    let before = group_members(&group);
    let (ff_wav, gst_wav, rtcp) = (
        dir.path().join("ff.wav"),
        dir.path().join("gst.wav"),
        dir.path().join("rtcp.bin"),
    );
    let ff = ffmpeg_srtp_receiver(&sdp, &ff_wav);
    let gst = gst_srtp_receiver(&group, port, &crypto, &gst_wav, &rtcp);
    wait_joined(&group, before, 2);
    std::thread::sleep(Duration::from_millis(500));

    let tones = three_tones();
    // Start near the wrap so the stream crosses seq 65535 → 0 (ROC 1).
    let tx = SrtpSender::new(SSRC, key, None).unwrap();
    send(&group, port, tx, &tones, 65_500, None);
    std::thread::sleep(Duration::from_millis(500));
    // ffmpeg's SRTP input only sees SIGINT when its socket read times out
    // (about 10 s after the last packet); a shorter grace kills it before
    // it finalises the WAV.
    let ff_log = ff.stop(FFMPEG_SRTP_GRACE);
    let gst_log = gst.stop(STOP_GRACE);

    assert_wav_tones(&ff_wav, &tones, "ffmpeg", &ff_log);
    assert_wav_tones(&gst_wav, &tones, "gstreamer", &gst_log);
    let rtcp = std::fs::read(&rtcp).unwrap();
    assert!(
        rtcp.len() >= 28 && rtcp[1] == 200,
        "srtpdec passed a decrypted sender report: {rtcp:02x?}"
    );
    assert!(
        rtcp.windows(16).any(|w| w == b"loa@srtp-interop"),
        "the SDES CNAME is readable after SRTCP"
    );
}

#[test]
fn gstreamer_decodes_aead_aes_128_gcm() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (group, port) = unique_group();
    let suite = Suite::AeadAes128Gcm;
    let key = MasterKey::generate(suite, &mut rand::rng());
    let crypto = CryptoAttribute {
        tag: 1,
        suite,
        keys: vec![key_param(&key, None)],
    };
    let before = group_members(&group);
    let (gst_wav, rtcp) = (dir.path().join("gst.wav"), dir.path().join("rtcp.bin"));
    let gst = gst_srtp_receiver(&group, port, &crypto, &gst_wav, &rtcp);
    wait_joined(&group, before, 1);
    std::thread::sleep(Duration::from_millis(500));

    let tones = three_tones();
    send(
        &group,
        port,
        SrtpSender::new(SSRC, key, None).unwrap(),
        &tones,
        100,
        None,
    );
    std::thread::sleep(Duration::from_millis(500));
    let gst_log = gst.stop(STOP_GRACE);
    assert_wav_tones(&gst_wav, &tones, "gstreamer", &gst_log);
    let rtcp = std::fs::read(&rtcp).unwrap();
    assert!(
        rtcp.windows(16).any(|w| w == b"loa@srtp-interop"),
        "SRTCP with GCM decrypts: {rtcp:02x?}"
    );
}

#[test]
fn gstreamer_follows_an_mki_key_switch_mid_stream() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (group, port) = unique_group();
    let suite = Suite::AesCm128HmacSha1_80;
    let today = MasterKey::generate(suite, &mut rand::rng());
    let tomorrow = MasterKey::generate(suite, &mut rand::rng());
    let (mki1, mki2) = (Mki::new(1, 1).unwrap(), Mki::new(2, 1).unwrap());
    // The next key is in the SDP/caps before the switch, as a second
    // key parameter (RFC 4568 §6.1).
    let crypto = CryptoAttribute {
        tag: 1,
        suite,
        keys: vec![
            key_param(&today, Some(mki1)),
            key_param(&tomorrow, Some(mki2)),
        ],
    };
    let before = group_members(&group);
    let (gst_wav, rtcp) = (dir.path().join("gst.wav"), dir.path().join("rtcp.bin"));
    let gst = gst_srtp_receiver(&group, port, &crypto, &gst_wav, &rtcp);
    wait_joined(&group, before, 1);
    std::thread::sleep(Duration::from_millis(500));

    let mut tx = SrtpSender::new(SSRC, today, Some(mki1)).unwrap();
    tx.add_key(tomorrow, mki2).unwrap();
    let tones = three_tones();
    // Switch in the middle of the second tone.
    let switch = Switch {
        after_packets: 10 + 75,
        to: mki2,
    };
    send(&group, port, tx, &tones, 40_000, Some(switch));
    std::thread::sleep(Duration::from_millis(500));
    let gst_log = gst.stop(STOP_GRACE);
    assert_wav_tones(
        &gst_wav,
        &tones,
        "gstreamer across the key switch",
        &gst_log,
    );
}
