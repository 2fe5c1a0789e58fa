//! SRTP zones through the real path: a `loa serve` whose zone is SRTP (the
//! default), `loa sdp` giving the key, and independent receivers decoding
//! the tone sequence from what the daemon sends — GStreamer's `srtpdec`
//! keyed from the SDP's `a=crypto`, and a libsrtp receiver across a key
//! rotation with no packet lost. Runs inside the private network namespace
//! (`scripts/netns.sh cargo test --test srtp_zone`).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::daemon::{base_config, Daemon, Packet, RtpListener};
use common::*;
use loa::rtp::srtp::{CryptoAttribute, SrtpReceiver};

const STOP_GRACE: Duration = Duration::from_secs(5);

/// A daemon with one SRTP zone `z` (no `security` line: the default).
fn srtp_daemon(dir: &Path, more: &str) -> (Daemon, String, u16) {
    let (group, port) = unique_group();
    let config = format!("{}{more}[[zone]]\nname = \"z\"\ngroup = \"{group}:{port}\"\n", base_config(dir));
    (Daemon::start(dir, &config), group, port)
}

/// `loa sdp --zone z --out FILE`: the file (mode 0600) and its a=crypto.
fn zone_sdp(daemon: &Daemon) -> (String, CryptoAttribute) {
    let path = daemon.dir.join("z.sdp");
    let config = daemon.config.to_str().unwrap();
    let out = daemon.loa(&["sdp", "--config", config, "--zone", "z", "--out", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("it is a secret"), "{stderr}");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(" RTP/SAVP 96\r\n"), "{text}");
    let line = text.lines().find(|l| l.starts_with("a=crypto:")).expect("an a=crypto line");
    (text.clone(), CryptoAttribute::parse(line.trim_start_matches("a=")).unwrap())
}

fn gst_srtp_receiver(group: &str, port: u16, ssrc: u32, crypto: &CryptoAttribute, wav: &Path) -> Background {
    let keys = crypto.expose_gst_caps_fields();
    let caps = format!(
        "application/x-srtp,media=(string)audio,clock-rate=(int)48000,encoding-name=(string)OPUS,payload=(int)96,ssrc=(uint){ssrc},{keys}"
    );
    let pipeline = format!(
        "udpsrc address={group} port={port} multicast-iface=lo ! srtpdec name=d ! rtpjitterbuffer latency=100 ! \
         rtpopusdepay ! opusdec ! audioconvert ! audio/x-raw,channels=1,format=S16LE ! wavenc ! filesink location={}",
        wav.display()
    );
    // The caps go on udpsrc as one argument (they contain spaces after commas).
    let mut args: Vec<String> = pipeline.split_whitespace().map(String::from).collect();
    args.insert(4, format!("caps={caps}"));
    let mut cmd = Command::new("gst-launch-1.0");
    cmd.args(["-q", "-e"]).args(args);
    Background::spawn("gst-launch-1.0", &mut cmd)
}

#[test]
fn gstreamer_decodes_the_tone_sequence_from_an_srtp_zone_with_the_key_from_loa_sdp() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (daemon, group, port) = srtp_daemon(dir.path(), "");
    let tones: Vec<(f32, f32)> = TONES[..4].iter().map(|&f| (f, 1.0)).collect();
    write_tones_wav(&dir.path().join("media/tones.wav"), 48_000, 1, &tones);
    let (_, crypto) = zone_sdp(&daemon);
    assert_eq!(crypto.keys.len(), 2, "the current and the next key");

    // The SSRC is not in the SDP: read it off the group, as a receiver would.
    let listener = RtpListener::start(&group, port);
    assert!(daemon.loa(&["play", "--zones", "z", "tones.wav"]).status.success());
    let first = listener.wait_packets(1, Duration::from_secs(10));
    let ssrc = first[0].ssrc;
    daemon.wait_idle(Duration::from_secs(15));
    // Then GStreamer, keyed from the SDP, hears the whole sequence once.
    let wav = dir.path().join("gst.wav");
    let before = group_members(&group);
    let gst = gst_srtp_receiver(&group, port, ssrc, &crypto, &wav);
    poll_until(Duration::from_secs(10), || if group_members(&group) > before { Ok(()) } else { Err(()) })
        .expect("GStreamer joined the group");
    std::thread::sleep(Duration::from_millis(500));
    assert!(daemon.loa(&["play", "--zones", "z", "tones.wav"]).status.success());
    daemon.wait_idle(Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(500));
    let log = gst.stop(STOP_GRACE);
    let packets = listener.stop();
    // On the wire: never the plain Opus payload (ciphertext, MKI, tag).
    assert!(packets.iter().all(|p| p.payload.len() > 14));
    let (rate, samples) = read_wav_mono(&wav);
    let segments = tone_segments(rate, &samples, &TONES);
    assert_tones(&segments, &tones, 0.06, &format!("gstreamer ({})", String::from_utf8_lossy(&log.stderr)));
}

#[test]
fn a_receiver_holding_the_sdp_decodes_across_a_key_rotation_with_no_packet_lost() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    // Keys live 6 s: the 8 s programme crosses at least one switch.
    let (daemon, group, port) = srtp_daemon(dir.path(), "[security]\nrotate = \"6s\"\n");
    write_tones_wav(&dir.path().join("media/long.wav"), 48_000, 1, &[(600.0, 8.0)]);
    let (_, crypto) = zone_sdp(&daemon);
    let listener = RtpListener::start(&group, port);
    assert!(daemon.loa(&["play", "--zones", "z", "long.wav"]).status.success());
    daemon.wait_idle(Duration::from_secs(20));
    let packets = listener.stop();
    assert!(packets.len() >= 390, "{} packets", packets.len());
    let ssrc = packets[0].ssrc;
    let (first, second) = (crypto.keys[0].mki.unwrap(), crypto.keys[1].mki.unwrap());
    let mut rx = SrtpReceiver::new(ssrc, crypto.keys[0].key.clone(), Some(first), 128).unwrap();
    rx.add_key(crypto.keys[1].key.clone(), second).unwrap();
    let mut mkis = Vec::new();
    let mut seqs = Vec::new();
    for p in &packets {
        let mut bytes = rtp_bytes(p);
        let mki = u32::from_be_bytes(bytes[bytes.len() - 14..bytes.len() - 10].try_into().unwrap());
        rx.unprotect_rtp(&mut bytes).unwrap_or_else(|e| panic!("packet seq {} (MKI {mki}): {e}", p.seq));
        mkis.push(mki);
        seqs.push(p.seq);
    }
    assert!(mkis.contains(&first.value()) && mkis.contains(&second.value()), "the switch happened mid-programme: {mkis:?}");
    let switches = mkis.windows(2).filter(|w| w[0] != w[1]).count();
    assert_eq!(switches, 1, "one switch, at a packet boundary");
    assert_eq!(seq_gaps_of(&seqs), 0, "no packet lost across the switch");
}

fn rtp_bytes(p: &Packet) -> Vec<u8> {
    let mut b = vec![0x80, 96 | if p.marker { 0x80 } else { 0 }];
    b.extend(p.seq.to_be_bytes());
    b.extend(p.timestamp.to_be_bytes());
    b.extend(p.ssrc.to_be_bytes());
    b.extend(&p.payload);
    b
}

fn seq_gaps_of(seqs: &[u16]) -> usize {
    seqs.windows(2).filter(|w| w[1] != w[0].wrapping_add(1)).count()
}
