//! SRTP zones through the real path: a `loa serve` whose zone is SRTP (the
//! default), `loa sdp` giving the key, and independent receivers decoding
//! the tone sequence from what the daemon sends — GStreamer's `srtpdec`
//! keyed from the SDP's `a=crypto`, ffmpeg on a zone with `mki = false`
//! (it cannot read an MKI, so it plays nothing of a default zone), and a
//! libsrtp receiver across a key rotation with no packet lost. Runs inside
//! the private network namespace (`scripts/netns.sh cargo test --test
//! srtp_zone`).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::daemon::{base_config, Daemon, Packet, RtpListener};
use common::*;
use loa::rtp::srtp::{CryptoAttribute, SrtpReceiver};

const STOP_GRACE: Duration = Duration::from_secs(5);
/// ffmpeg's SRTP input sees SIGINT only when its socket read times out,
/// about 10 s after the last packet; a shorter grace kills it before it
/// finalises the WAV.
const FFMPEG_SRTP_GRACE: Duration = Duration::from_secs(15);

/// A daemon with one SRTP zone `z` (no `security` line: the default).
fn srtp_daemon(dir: &Path, more: &str) -> (Daemon, String, u16) {
    srtp_daemon_with_zone_lines(dir, more, "")
}

/// The same, with `zone_lines` added to the zone's table.
fn srtp_daemon_with_zone_lines(dir: &Path, more: &str, zone_lines: &str) -> (Daemon, String, u16) {
    let (group, port) = unique_group();
    let config =
        format!("{}{more}[[zone]]\nname = \"z\"\ngroup = \"{group}:{port}\"\n{zone_lines}", base_config(dir));
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
    let (text, crypto) = zone_sdp(&daemon);
    assert_eq!(crypto.keys.len(), 2, "the current and the next key");

    // The SSRC GStreamer's caps need is the SDP's a=ssrc (RFC 5576), the one
    // on the wire.
    let ssrc_line = text.lines().find_map(|l| l.strip_prefix("a=ssrc:")).expect("an a=ssrc line");
    assert!(ssrc_line.ends_with(" cname:loa@127.0.0.1"), "{ssrc_line:?}");
    let ssrc: u32 = ssrc_line.split(' ').next().unwrap().parse().unwrap();
    let listener = RtpListener::start(&group, port);
    assert!(daemon.loa(&["play", "--zones", "z", "tones.wav"]).status.success());
    let first = listener.wait_packets(1, Duration::from_secs(10));
    assert_eq!(first[0].ssrc, ssrc, "the SDP names the zone's SSRC");
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

/// ffmpeg opening `loa sdp`'s output (`-protocol_whitelist
/// file,udp,rtp,srtp -i zone.sdp out.wav`) while the daemon plays
/// `media/tones.wav` on zone `z`: the tones found in its WAV, and its
/// stderr. Stops the daemon: ffmpeg's SRTP input notices SIGINT only once
/// its socket has been quiet for ~10 s, and the daemon's RTCP on the idle
/// zone never lets it be.
fn ffmpeg_hears(daemon: &mut Daemon, group: &str) -> (Vec<Segment>, String) {
    let sdp = daemon.dir.join("z.sdp");
    let wav = daemon.dir.join("ffmpeg.wav");
    let before = group_members(group);
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "warning", "-protocol_whitelist", "file,udp,rtp,srtp", "-i"])
        .arg(&sdp)
        .args(["-ac", "1", "-y"])
        .arg(&wav);
    let ffmpeg = Background::spawn("ffmpeg", &mut cmd);
    poll_until(Duration::from_secs(10), || if group_members(group) > before { Ok(()) } else { Err(()) })
        .expect("ffmpeg joined the group");
    std::thread::sleep(Duration::from_millis(500));
    assert!(daemon.loa(&["play", "--zones", "z", "tones.wav"]).status.success());
    daemon.wait_idle(Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(500));
    assert!(daemon.stop(), "the daemon stops cleanly");
    let log = ffmpeg.stop(FFMPEG_SRTP_GRACE);
    let stderr = String::from_utf8_lossy(&log.stderr).into_owned();
    let segments = match std::fs::metadata(&wav) {
        Ok(m) if m.len() > 44 => {
            let (rate, samples) = read_wav_mono(&wav);
            tone_segments(rate, &samples, &TONES)
        }
        _ => Vec::new(),
    };
    (segments, stderr)
}

#[test]
fn ffmpeg_decodes_the_tone_sequence_from_a_zone_whose_packets_carry_no_mki() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (mut daemon, group, _) = srtp_daemon_with_zone_lines(dir.path(), "", "mki = false\n");
    let tones: Vec<(f32, f32)> = TONES[..4].iter().map(|&f| (f, 1.0)).collect();
    write_tones_wav(&dir.path().join("media/tones.wav"), 48_000, 1, &tones);
    let (text, crypto) = zone_sdp(&daemon);
    assert_eq!(crypto.keys.len(), 1, "the key in use only:\n{text}");
    assert!(crypto.keys[0].mki.is_none(), "{text}");
    let line = text.lines().find(|l| l.starts_with("a=crypto:")).unwrap();
    assert!(!line.contains('|'), "nothing after the key, which ffmpeg cannot read: {line}");
    let (segments, stderr) = ffmpeg_hears(&mut daemon, &group);
    assert_tones(&segments, &tones, 0.06, &format!("ffmpeg ({stderr})"));
}

#[test]
fn ffmpeg_cannot_decode_a_zone_whose_packets_carry_an_mki() {
    // The reason `mki = false` exists: ffmpeg's SRTP input (libavformat
    // srtp.c) takes the MKI for payload and fails every tag. If this test
    // fails, ffmpeg learnt MKIs and the docs' advice can change.
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (mut daemon, group, _) = srtp_daemon(dir.path(), "");
    let tones: Vec<(f32, f32)> = TONES[..2].iter().map(|&f| (f, 1.0)).collect();
    write_tones_wav(&dir.path().join("media/tones.wav"), 48_000, 1, &tones);
    // As printed, the a=crypto line (two keys with MKIs) is already more
    // than ffmpeg reads: "Incorrect amount of SRTP params", and it decodes
    // ciphertext. Given the key in use alone, with nothing after it, it
    // still fails: it takes the packets' MKI for part of what the tag
    // covers.
    let (text, crypto) = zone_sdp(&daemon);
    let line = text.lines().find(|l| l.starts_with("a=crypto:")).unwrap();
    let single = format!("a=crypto:1 {} inline:{}", crypto.suite, crypto.keys[0].key.to_inline());
    std::fs::write(daemon.dir.join("z.sdp"), text.replace(line, &single)).unwrap();
    let (segments, stderr) = ffmpeg_hears(&mut daemon, &group);
    assert!(segments.is_empty(), "ffmpeg heard {segments:#?}\n{stderr}");
    eprintln!("ffmpeg said:\n{stderr}");
    assert!(stderr.contains("HMAC mismatch"), "every tag fails, as the MKI is read as tag:\n{stderr}");
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

#[test]
fn without_mki_a_receiver_holding_the_old_sdp_stops_at_the_switch_and_a_new_sdp_plays_on() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    // Keys live 6 s: the 8 s programme crosses one switch.
    let (daemon, group, port) = srtp_daemon_with_zone_lines(dir.path(), "[security]\nrotate = \"6s\"\n", "mki = false\n");
    write_tones_wav(&dir.path().join("media/long.wav"), 48_000, 1, &[(600.0, 8.0)]);
    let (_, before) = zone_sdp(&daemon);
    let listener = RtpListener::start(&group, port);
    assert!(daemon.loa(&["play", "--zones", "z", "long.wav"]).status.success());
    daemon.wait_idle(Duration::from_secs(20));
    // Before the next switch (12 s after the start): the key now in use.
    let (_, after) = zone_sdp(&daemon);
    let packets = listener.stop();
    assert!(packets.len() >= 390, "{} packets", packets.len());
    assert_ne!(before.keys[0].key.expose_bytes(), after.keys[0].key.expose_bytes(), "the key changed");
    let ssrc = packets[0].ssrc;
    let mut old = SrtpReceiver::new(ssrc, before.keys[0].key.clone(), None, 128).unwrap();
    let mut new = SrtpReceiver::new(ssrc, after.keys[0].key.clone(), None, 128).unwrap();
    let mut plays = Vec::new();
    for p in &packets {
        let bytes = rtp_bytes(p);
        if old.unprotect_rtp(&mut bytes.clone()).is_ok() {
            plays.push('o');
            continue;
        }
        if new.highest_index().is_none() {
            // Where the stream is, as any late joiner must be told.
            new.expect_index(old.highest_index().unwrap() + 1).unwrap();
        }
        let played = new.unprotect_rtp(&mut bytes.clone()).is_ok();
        plays.push(if played { 'n' } else { '-' });
    }
    let text: String = plays.iter().collect();
    let switch = text.find('n').unwrap_or_else(|| panic!("the new key never played: {text}"));
    assert!(switch > 0, "the old key played first: {text}");
    assert!(text[..switch].chars().all(|c| c == 'o') && text[switch..].chars().all(|c| c == 'n'), "{text}");
    let seqs: Vec<u16> = packets.iter().map(|p| p.seq).collect();
    assert_eq!(seq_gaps_of(&seqs), 0, "the sender lost nothing at the switch");
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

#[test]
fn injected_plain_forged_replayed_and_truncated_packets_never_reach_the_speakers_audio() {
    use loa::rtp::srtp::{MasterKey, SrtpSender};
    use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
    use std::process::Stdio;

    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (daemon, group, port) = srtp_daemon(dir.path(), "");
    // The programme: the first four tones, half a second each; the
    // attacker plays the sixth, loud, all the way through.
    let tones: Vec<(f32, f32)> = TONES[..4].iter().map(|&f| (f, 0.5)).collect();
    let attack_tone = TONES[5];
    write_tones_wav(&dir.path().join("media/tones.wav"), 48_000, 1, &tones);
    let sdp = dir.path().join("z.sdp");
    let (_, crypto) = zone_sdp(&daemon);

    let wav = dir.path().join("speaker.wav");
    let log = dir.path().join("speaker.log");
    let mut speaker = Command::new(LOA)
        .args(["speaker", "--sdp", sdp.to_str().unwrap(), "--interface", "127.0.0.1", "--bind", "127.0.0.2", "--out"])
        .arg(&wav)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_until("the speaker to listen", Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("listening") { Ok(()) } else { Err(text) }
    });

    let listener = RtpListener::start(&group, port);
    assert!(daemon.loa(&["play", "--zones", "z", "tones.wav"]).status.success());
    let seen = listener.wait_packets(10, Duration::from_secs(10));
    let ssrc = seen[0].ssrc;

    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let to = SocketAddrV4::new(group.parse().unwrap(), port);
    let frames = tone_frames(attack_tone, 0.5, 150);
    let wrong = MasterKey::generate(crypto.suite, &mut rand::rng());
    let mut forger = SrtpSender::new(ssrc, wrong, crypto.keys[0].mki).unwrap();
    let (mut plain, mut forged, mut replayed, mut truncated) = (0, 0, 0, 0);
    for (n, frame) in frames.iter().enumerate() {
        let latest = listener.packets().last().cloned().unwrap();
        // Plain RTP, with the zone's SSRC and the next sequence numbers.
        let ahead = latest.seq.wrapping_add(1 + n as u16 % 3);
        let ts = latest.timestamp.wrapping_add(960);
        socket.send_to(&rtp_packet(ssrc, ahead, ts, false, frame), to).unwrap();
        plain += 1;
        // The same under a key that is not the zone's, same MKI.
        let mut p = rtp_packet(ssrc, ahead.wrapping_add(40), ts, false, frame);
        if forger.protect_rtp(&mut p).is_ok() {
            socket.send_to(&p, to).unwrap();
            forged += 1;
        }
        // A captured packet again, and one cut short.
        let genuine = rtp_bytes(&latest);
        socket.send_to(&genuine, to).unwrap();
        replayed += 1;
        socket.send_to(&genuine[..genuine.len() - 6], to).unwrap();
        truncated += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon.wait_idle(Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(400));
    Command::new("kill").args(["-INT", &speaker.id().to_string()]).status().unwrap();
    poll_until(Duration::from_secs(10), || speaker.try_wait().unwrap().ok_or(())).expect("the speaker stops on SIGINT");
    drop(listener);
    let stderr = std::fs::read_to_string(&log).unwrap();

    // The audio: the programme whole, in order, and no attacker tone.
    let (rate, samples) = read_wav_mono(&wav);
    let segments = tone_segments(rate, &samples, &TONES);
    assert_tones(&segments, &tones, 0.06, &format!("speaker\n{stderr}"));
    assert!(segments.iter().all(|s| s.freq != attack_tone), "{segments:#?}");
    // The counters: every kind of attack was refused.
    let line = stderr.lines().rev().find(|l| l.contains("SRTP rejected")).unwrap_or_else(|| panic!("{stderr}"));
    eprintln!("{line}\nsent: {plain} plain, {forged} forged, {replayed} replayed, {truncated} truncated");
    let count = |name: &str| -> u64 {
        let at = line.find(&format!("{name} ")).unwrap_or_else(|| panic!("{name} in {line}"));
        line[at + name.len() + 1..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    };
    assert!(count("bad auth") >= forged / 2, "{line} ({forged} forged)");
    assert!(count("replay") >= replayed / 2, "{line} ({replayed} replayed)");
    assert!(count("malformed") + count("bad auth") >= (plain + truncated) / 2, "{line}");
}
