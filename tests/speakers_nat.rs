//! A speaker behind a carrier NAT (issue 15 point 7), through the real
//! path: `loa serve` in loa's host, `loa speaker --join` in a host behind the
//! NAT rig (tests/common/nat.rs), which loa's host has no route to. The
//! speaker's keepalives open and hold the NAT mapping the unicast SRTP comes
//! back through; a conntrack flush (the carrier dropping the mapping) is
//! recovered from the next authenticated keepalive; the WAV the speaker
//! writes is what is judged.
//!
//! With UDP blocked at the NAT (`NatRig::block_udp`) the audio comes inside
//! the speaker's TLS connection instead (RFC 4571 framing), and a UDP path
//! that opens again wins unicast back. UDP that reaches loa but not the
//! speaker, and `--tls-only`, are tests/speakers_downstream.rs.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::daemon::{base_config, Daemon};
use common::joined::{config, listen, longest_hole, play, row, stats_line, wait_online, Speaker, KEEPALIVE};
use common::nat::{NatOptions, NatRig, NAT_PUBLIC};
use common::{rtp_packet, tone_frames, tone_segments, unique_group, wait_until, TONES};
use base64::Engine;
use loa::proto::speakers::SpeakerTransport;
use loa::rtp::srtp::{MasterKey, SrtpSender, Suite};
use loa::speakers::join::{self, Deframer, Message, Payload};
use loa::speakers::Credential;
use serde_json::Value;

#[test]
fn a_speaker_behind_the_nat_plays_the_tones_across_several_nat_timeouts() {
    let rig = NatRig::with(NatOptions {
        // Three keepalives per timeout: a loaded machine may delay one.
        udp_timeout: Duration::from_secs(3),
        udp_stream_timeout: Duration::from_secs(4),
        attacker: false,
    });
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_via(dir.path(), &config(dir.path()), &rig.loa.prefix());
    let speaker = Speaker::join(&rig, &daemon, dir.path(), "xa-dong");
    let address = wait_online(&daemon, "xa-dong", "unicast", Duration::from_secs(10), None);
    assert!(address.starts_with(&format!("{NAT_PUBLIC}:")), "loa must send to the NAT's public side, not {address}");

    // Idle for four stream timeouts: loa sends nothing, only the
    // keepalives hold the mapping (a lapse would show as a new port).
    let until = Instant::now() + rig.options.udp_stream_timeout * 4;
    while Instant::now() < until {
        std::thread::sleep(KEEPALIVE / 2);
        let now = row(&daemon.json(&["speakers", "list"]), "xa-dong").clone();
        assert_eq!(now["address"], address.as_str(), "the mapping moved while idle: {now}");
    }

    // Then a programme (12 s) longer than several timeouts.
    let tones: Vec<(f32, f32)> = TONES.iter().chain(&TONES).map(|&f| (f, 1.0)).collect();
    play(&daemon, dir.path(), "tones.wav", &tones);
    daemon.wait_idle(Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500)); // the jitter buffer plays out on its own clock
    assert_eq!(row(&daemon.json(&["speakers", "list"]), "xa-dong")["address"], address.as_str());
    let (rate, samples) = speaker.stop();
    let segments = tone_segments(rate, &samples, &TONES);
    common::assert_tones(&segments, &tones, 0.1, "the speaker behind the NAT");
}

#[test]
fn a_conntrack_flush_mid_stream_is_recovered_within_one_keepalive() {
    let rig = NatRig::new();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_via(dir.path(), &config(dir.path()), &rig.loa.prefix());
    let speaker = Speaker::join(&rig, &daemon, dir.path(), "xa-dong");
    let before = wait_online(&daemon, "xa-dong", "unicast", Duration::from_secs(10), None);

    let tones: Vec<(f32, f32)> = TONES.iter().map(|&f| (f, 1.0)).collect();
    play(&daemon, dir.path(), "tones.wav", &tones);
    daemon.wait_status("the programme to play", Duration::from_secs(10), |s| {
        s["programs"].as_array().is_some_and(|p| !p.is_empty())
    });
    std::thread::sleep(Duration::from_millis(2500)); // into the third tone
    rig.flush_conntrack();
    let flushed = Instant::now();
    let after = wait_online(&daemon, "xa-dong", "unicast", Duration::from_secs(10), Some(&before));
    let adopted = flushed.elapsed();
    assert!(after.starts_with(&format!("{NAT_PUBLIC}:")), "{after}");
    assert!(adopted <= KEEPALIVE + Duration::from_millis(500), "loa adopted the new mapping {adopted:?} after the flush");

    daemon.wait_idle(Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    let (rate, samples) = speaker.stop();
    let segments = tone_segments(rate, &samples, &TONES);
    // The hole may split a tone in two; each tone is still heard, in order.
    let mut heard: Vec<f32> = segments.iter().map(|s| s.freq).collect();
    heard.dedup();
    assert_eq!(heard, TONES, "every tone, in order: {segments:#?}");
    let hole = longest_hole(&segments);
    let heard_secs: f64 = segments.iter().map(|s| s.seconds).sum();
    let missing = tones.len() as f64 - heard_secs;
    eprintln!(
        "flush: {before} -> {after}, adopted after {adopted:?}; audio lost {missing:.3} s, longest hole {hole:.3} s"
    );
    assert!(
        hole.max(missing) <= KEEPALIVE.as_secs_f64() + 0.3,
        "the flush cost {missing:.2} s of audio (longest hole {hole:.2} s); one keepalive is {KEEPALIVE:?}: {segments:#?}"
    );
}


#[test]
fn with_udp_blocked_the_speaker_plays_the_tones_inside_its_tls_connection() {
    let rig = NatRig::new();
    rig.block_udp();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_via(dir.path(), &config(dir.path()), &rig.loa.prefix());
    let speaker = Speaker::join(&rig, &daemon, dir.path(), "xa-dong");
    let joined = Instant::now();
    // Two seconds without authenticated UDP, then TLS; online from its
    // first keepalive inside the connection.
    let address = wait_online(&daemon, "xa-dong", "tls", Duration::from_secs(10), None);
    eprintln!("online over tls {:?} after joining, at {address}", joined.elapsed());
    assert!(address.starts_with(&format!("{NAT_PUBLIC}:")), "the TLS connection comes from the NAT's public side, not {address}");

    let tones: Vec<(f32, f32)> = TONES.iter().map(|&f| (f, 1.0)).collect();
    play(&daemon, dir.path(), "tones.wav", &tones);
    daemon.wait_idle(Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500)); // the jitter buffer plays out on its own clock
    let now = row(&daemon.json(&["speakers", "list"]), "xa-dong").clone();
    assert_eq!((now["transport"].as_str(), now["state"].as_str()), (Some("tls"), Some("online")), "{now}");
    let (rate, samples) = speaker.stop();
    let segments = tone_segments(rate, &samples, &TONES);
    common::assert_tones(&segments, &tones, 0.1, "the speaker with UDP blocked");
    let log = std::fs::read_to_string(dir.path().join("xa-dong.log")).unwrap();
    eprintln!("{}", stats_line(&log));
    assert!(stats_line(&log).contains("SRTP rejected 0 "), "every packet inside TLS verified: {log}");
    assert!(
        daemon.log_text().contains("its audio goes inside its TLS connection"),
        "the daemon says why: {}",
        daemon.log_text()
    );
}

#[test]
fn udp_blocked_mid_stream_moves_the_audio_inside_tls_and_unblocked_wins_unicast_back() {
    let rig = NatRig::new();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_via(dir.path(), &config(dir.path()), &rig.loa.prefix());
    let speaker = Speaker::join(&rig, &daemon, dir.path(), "xa-dong");
    wait_online(&daemon, "xa-dong", "unicast", Duration::from_secs(10), None);

    // Twelve seconds of tones; UDP blocked from the first second.
    let tones: Vec<(f32, f32)> = TONES.iter().chain(&TONES).map(|&f| (f, 1.0)).collect();
    play(&daemon, dir.path(), "tones.wav", &tones);
    daemon.wait_status("the programme to play", Duration::from_secs(10), |s| {
        s["programs"].as_array().is_some_and(|p| !p.is_empty())
    });
    std::thread::sleep(Duration::from_millis(1000));
    rig.block_udp();
    let blocked = Instant::now();
    // The speaker hears the audio stop, sends a keepalive at once, gets no
    // answer within a second and asks for TLS (src/speaker/downstream.rs);
    // loa alone would wait for three missed keepalives and 2 s more.
    wait_online(&daemon, "xa-dong", "tls", Duration::from_secs(10), None);
    let inside = blocked.elapsed();
    // Two seconds of the programme inside TLS (the second 600 Hz tone,
    // 7–8 s in, falls there), then UDP opens again.
    std::thread::sleep(Duration::from_secs(2));
    rig.unblock_udp();
    let unblocked = Instant::now();
    wait_online(&daemon, "xa-dong", "unicast", Duration::from_secs(10), None);
    let back = unblocked.elapsed();
    eprintln!("blocked: tls after {inside:?}; unblocked: unicast after {back:?}");
    // Keepalive periods are randomised up to 1.5 times (RFC 3550 §6.3.1).
    // The first answered one is confirmed at once (a round trip), then the
    // speaker asks for unicast.
    assert!(back <= KEEPALIVE * 3 / 2 + Duration::from_millis(500), "the next keepalive answered by UDP wins unicast back, not {back:?}");

    daemon.wait_idle(Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    let (rate, samples) = speaker.stop();
    let segments = tone_segments(rate, &samples, &TONES);
    // The hole is the speaker's wait for an answer; from the
    // second run's 600 Hz tone on (inside TLS, then unicast again) every
    // tone is there, in order.
    let mut heard: Vec<f32> = segments.iter().map(|s| s.freq).collect();
    heard.dedup();
    assert!(heard.ends_with(&TONES[1..]), "the tones inside TLS and by unicast again: {segments:#?}");
    let hole = longest_hole(&segments);
    eprintln!("longest hole {hole:.2} s; heard {heard:?}");
    // 0.2 s of silence, a second unanswered, and the switch (a loaded
    // 2-core machine may add most of a second).
    let limit = 0.2 + 1.0 + 1.0;
    assert!(hole <= limit, "the switch to TLS left a hole of {hole:.2} s (limit {limit:.1} s): {segments:#?}");
    let log = std::fs::read_to_string(dir.path().join("xa-dong.log")).unwrap();
    assert!(!log.contains("ended the session"), "the session lasted through both switches: {log}");
}

/// What a hand-made speaker without UDP saw inside its TLS connection.
#[derive(Debug, Default)]
struct InsideTls {
    welcome_transport: Option<SpeakerTransport>,
    /// Frames of SRTP carrying the zone's SSRC.
    media: usize,
    /// Of those, the ones after it had sent its garbage.
    media_after_garbage: usize,
    ended: Option<String>,
}

/// A plain RTCP receiver report with no blocks (RFC 3550 §6.4.2).
fn empty_rr(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 201, 0, 1];
    p.extend(ssrc.to_be_bytes());
    p
}

/// A speaker that has no UDP at all, by hand: TLS from the speaker's
/// host, hello `udp: false`, garbage inside the connection, then a real
/// keepalive every 500 ms, reading until `stop`.
fn tls_only_speaker(credential: &str, stop: &AtomicBool) -> InsideTls {
    let credential = Credential::parse(credential).unwrap();
    let config = loa::speakers::tls::client_config(&credential).unwrap();
    let addr: SocketAddr = listen().parse().unwrap();
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), rustls::pki_types::ServerName::IpAddress(addr.ip().into())).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let hello = Message::Hello { version: join::VERSION, multicast: false, udp: false };
    tls.write_all(&join::frame_message(&hello)).unwrap();
    tls.flush().unwrap();

    let mut seen = InsideTls::default();
    let mut deframer = Deframer::default();
    let mut buf = [0u8; 4096];
    let mut zone: Option<(u32, u32, SrtpSender)> = None;
    let mut garbage_sent = false;
    let mut next_keepalive = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !stop.load(Ordering::Relaxed) {
        while let Some(frame) = deframer.next_frame() {
            let frame = frame.expect("loa sends whole frames");
            match join::parse(&frame).expect("loa sends valid frames") {
                Payload::Control(Message::Welcome(welcome)) => {
                    let grant = &welcome.zones[0];
                    seen.welcome_transport = Some(grant.transport);
                    let suite = Suite::from_sdp_name(&grant.suite).unwrap();
                    let key = base64::engine::general_purpose::STANDARD.decode(&grant.uplink.key).unwrap();
                    let uplink = SrtpSender::new(grant.uplink.ssrc, MasterKey::from_bytes(suite, &key).unwrap(), None).unwrap();
                    zone = Some((grant.ssrc, grant.uplink.ssrc, uplink));
                }
                Payload::Control(Message::Bye { reason } | Message::Refused { reason }) => {
                    seen.ended = Some(reason);
                    return seen;
                }
                Payload::Control(_) => {}
                Payload::Media(packet) => {
                    let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
                    if zone.as_ref().is_some_and(|(z, _, _)| *z == ssrc) {
                        seen.media += 1;
                        seen.media_after_garbage += usize::from(garbage_sent);
                    }
                }
            }
        }
        if let Some((_, uplink_ssrc, uplink)) = zone.as_mut() {
            if !garbage_sent {
                // An RTCP-looking packet under no key, RTP-looking noise, a
                // lone byte: each counted by loa, none ends the session.
                let mut forged = empty_rr(0x5eed);
                forged.extend([0u8; 14]);
                let mut noise = vec![0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
                noise.extend([0xa5; 40]);
                for junk in [forged, noise, vec![0x80]] {
                    tls.write_all(&join::frame(&junk).unwrap()).unwrap();
                }
                garbage_sent = true;
            }
            if Instant::now() >= next_keepalive {
                let mut report = empty_rr(*uplink_ssrc);
                uplink.protect_rtcp(&mut report).unwrap();
                tls.write_all(&join::frame(&report).unwrap()).unwrap();
                tls.flush().unwrap();
                next_keepalive += Duration::from_millis(500);
            }
        } else {
            assert!(Instant::now() < deadline, "no welcome within 10 s");
        }
        match tls.read(&mut buf) {
            Ok(0) => {
                seen.ended = Some("loa closed the connection".into());
                return seen;
            }
            Ok(n) => deframer.push(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => {
                seen.ended = Some(e.to_string());
                return seen;
            }
        }
    }
    seen
}

#[test]
fn a_speaker_without_udp_gets_its_zone_inside_tls_at_once_and_its_garbage_changes_nothing() {
    let rig = NatRig::new();
    rig.block_udp();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_via(dir.path(), &config(dir.path()), &rig.loa.prefix());
    let credential = dir.path().join("xa-dong.toml");
    let out = daemon.loa(&["speakers", "add", "xa-dong", "--zones", "thon-1", "--out", credential.to_str().unwrap()]);
    assert!(out.status.success(), "loa speakers add: {}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&credential).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let speaker = {
        let (host, stop) = (rig.speaker.clone(), stop.clone());
        std::thread::spawn(move || host.enter(move || tls_only_speaker(&text, &stop)))
    };
    let joined = Instant::now();
    wait_online(&daemon, "xa-dong", "tls", Duration::from_secs(10), None);
    eprintln!("online over tls {:?} after starting to join", joined.elapsed());

    let tones: Vec<(f32, f32)> = TONES[..2].iter().map(|&f| (f, 1.0)).collect();
    play(&daemon, dir.path(), "tones.wav", &tones);
    daemon.wait_idle(Duration::from_secs(30));
    let now = row(&daemon.json(&["speakers", "list"]), "xa-dong").clone();
    stop.store(true, Ordering::Relaxed);
    let seen = speaker.join().unwrap();
    eprintln!("{seen:?}");
    assert_eq!(seen.welcome_transport, Some(SpeakerTransport::Tls), "the welcome says tls at once, no fallback wait");
    assert_eq!(seen.ended, None, "the session outlived the garbage");
    // 2 s of programme at 50 packets a second, every one inside TLS.
    assert!(seen.media_after_garbage >= 95, "{seen:?}");
    assert_eq!((now["transport"].as_str(), now["state"].as_str()), (Some("tls"), Some("online")), "{now}");
    let log = daemon.log_text();
    assert!(log.contains("SECURITY: a packet inside a speaker's TLS connection did not verify"), "{log}");
}

/// The joined speakers' rows of `loa endpoints --json`, by name.
fn endpoint_rows(list: &Value) -> Vec<Value> {
    list["endpoints"].as_array().map(|rows| rows.iter().filter(|r| r["joined"] == true).cloned().collect()).unwrap_or_default()
}

fn endpoint_state(list: &Value, name: &str) -> String {
    endpoint_rows(list).iter().find(|r| r["name"] == name).map(|r| r["state"].as_str().unwrap_or("").to_string()).unwrap_or_default()
}

#[test]
fn two_speakers_behind_one_nat_are_two_named_rows_in_loa_endpoints_offline_when_stopped_gone_when_revoked() {
    let rig = NatRig::new();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_via(dir.path(), &config(dir.path()), &rig.loa.prefix());
    // Two boxes behind one carrier NAT: one public IP, two mappings.
    let dong = Speaker::join(&rig, &daemon, dir.path(), "xa-dong");
    let tay = Speaker::join(&rig, &daemon, dir.path(), "xa-tay");
    let dong_at = wait_online(&daemon, "xa-dong", "unicast", Duration::from_secs(10), None);
    let tay_at = wait_online(&daemon, "xa-tay", "unicast", Duration::from_secs(10), None);

    let list = daemon.wait_json(&["endpoints"], "both joined speakers online", Duration::from_secs(10), |list| {
        endpoint_state(list, "xa-dong") == "online" && endpoint_state(list, "xa-tay") == "online"
    });
    let rows = endpoint_rows(&list);
    let seen: Vec<(&str, &str, &str, &str)> = rows
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["zone"].as_str().unwrap(), r["transport"].as_str().unwrap(), r["address"].as_str().unwrap()))
        .collect();
    assert_eq!(seen, [("xa-dong", "thon-1", "unicast", dong_at.as_str()), ("xa-tay", "thon-1", "unicast", tay_at.as_str())], "{list:#}");
    assert!(dong_at.starts_with(&format!("{NAT_PUBLIC}:")) && tay_at.starts_with(&format!("{NAT_PUBLIC}:")), "{list:#}");
    assert_ne!(dong_at, tay_at, "one NAT, two mappings");
    assert!(rows.iter().all(|r| r["registered"] == true), "{list:#}");
    let all = list["endpoints"].as_array().unwrap();
    assert!(all.iter().all(|r| r["state"] != "unregistered"), "a joined speaker must never be unregistered: {list:#}");

    // The table says the same, with no warning.
    let out = daemon.loa(&["endpoints"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for (name, at) in [("xa-dong", &dong_at), ("xa-tay", &tay_at)] {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no row for {name}:\n{text}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&words[..5], [name, "thon-1", "unicast", at.as_str(), "online"], "{text}");
    }
    assert!(!text.contains("UNREGISTERED"), "{text}");
    let log = common::strip_ansi(&daemon.log_text());
    assert!(!log.lines().any(|l| l.contains("SECURITY") && l.contains(&NAT_PUBLIC.to_string())), "{log}");

    // Revoked: offline at once (said and stored), then no longer listed
    // (it is not a speaker any more); its neighbour behind the NAT stays
    // online.
    let revoked = Instant::now();
    let out = daemon.loa(&["speakers", "revoke", "xa-dong"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_until("xa-dong offline after its revocation", Duration::from_secs(5), || {
        let log = common::strip_ansi(&daemon.log_text());
        match log.lines().any(|l| l.contains("speaker xa-dong (") && l.contains("→ offline: revoked")) {
            true => Ok(()),
            false => Err(log),
        }
    });
    eprintln!("revoked speaker offline after {:?}", revoked.elapsed());
    daemon.wait_json(&["endpoints"], "xa-dong gone from loa endpoints", Duration::from_secs(5), |list| {
        endpoint_rows(list).iter().all(|r| r["name"] != "xa-dong")
    });
    assert_eq!(endpoint_state(&daemon.json(&["endpoints"]), "xa-tay"), "online");

    // Stopped: offline too (its session ends; else its keepalives' silence).
    let _ = tay.stop();
    let list = daemon.wait_json(&["endpoints"], "xa-tay offline once stopped", Duration::from_secs(10), |list| {
        endpoint_state(list, "xa-tay") == "offline"
    });
    assert_eq!(endpoint_rows(&list).len(), 1, "an enrolled speaker's row stays, offline: {list:#}");
    drop(dong);
}

/// `status` on the daemon's control socket: the answer's time (without a
/// CLI process's start-up, which on a busy 2-core machine alone can take
/// 100 ms).
fn status_call(daemon: &Daemon) -> Duration {
    use std::io::{BufRead, BufReader, Write};
    let start = Instant::now();
    let mut control = std::os::unix::net::UnixStream::connect(&daemon.socket).unwrap();
    writeln!(control, r#"{{"jsonrpc":"2.0","id":1,"method":"status"}}"#).unwrap();
    let mut reply = String::new();
    BufReader::new(control).read_line(&mut reply).unwrap();
    assert!(reply.contains(r#""result""#), "status failed: {reply}");
    start.elapsed()
}

#[test]
fn stalled_connections_from_one_address_cannot_keep_a_speaker_out_and_status_still_answers() {
    use std::io::Read;
    use std::net::{SocketAddr, TcpStream};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    /// More than the listener's 512 connections: without a per-address
    /// limit these alone fill it.
    const STALLED: usize = 600;
    let rig = NatRig::with(NatOptions { attacker: true, ..NatOptions::default() });
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_via(dir.path(), &config(dir.path()), &rig.loa.prefix());

    // The attacker opens connections that never say a word, and opens
    // new ones as the daemon closes them, for the whole test.
    let attacking = Arc::new(AtomicBool::new(true));
    let held = Arc::new(std::sync::Mutex::new(Vec::new()));
    let opened = Arc::new(AtomicUsize::new(0));
    let attacker = rig.attacker.clone().unwrap();
    let to: SocketAddr = listen().parse().unwrap();
    let flood = {
        let (attacking, held, opened) = (attacking.clone(), held.clone(), opened.clone());
        std::thread::spawn(move || {
            attacker.enter(move || {
                let mut open: Vec<TcpStream> = Vec::new();
                while attacking.load(Ordering::Relaxed) {
                    while open.len() < STALLED {
                        match TcpStream::connect_timeout(&to, Duration::from_secs(1)) {
                            Ok(stream) => {
                                stream.set_nonblocking(true).unwrap();
                                open.push(stream);
                                opened.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(_) => break,
                        }
                    }
                    std::thread::sleep(Duration::from_millis(300));
                    // What the daemon closed reads as end of file.
                    open.retain_mut(|s| matches!(s.read(&mut [0u8; 16]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock));
                    held.lock().unwrap().push(open.len());
                }
            })
        })
    };
    wait_until("the attacker's connections to be sorted", Duration::from_secs(20), || {
        let n = opened.load(Ordering::Relaxed);
        if n >= STALLED * 2 { Ok(()) } else { Err(n) }
    });

    // A genuine speaker joins while the flood goes on, and plays.
    let speaker = Speaker::join(&rig, &daemon, dir.path(), "xa-dong");
    wait_online(&daemon, "xa-dong", "unicast", Duration::from_secs(10), None);
    let took: Vec<Duration> = (0..10).map(|_| status_call(&daemon)).collect();
    let out = daemon.loa(&["status"]);
    assert!(out.status.success(), "loa status during the flood: {}", String::from_utf8_lossy(&out.stderr));
    let tones: Vec<(f32, f32)> = TONES[..3].iter().map(|&f| (f, 0.5)).collect();
    play(&daemon, dir.path(), "tones.wav", &tones);
    daemon.wait_idle(Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));

    attacking.store(false, Ordering::Relaxed);
    flood.join().unwrap();
    let (rate, samples) = speaker.stop();
    let mut sorted = took.clone();
    sorted.sort();
    let mut held = held.lock().unwrap().clone();
    held.sort();
    eprintln!(
        "flood: {} stalled connections opened; held open by the daemon per round: median {}, max {}; status on the socket: median {:?}, max {:?}",
        opened.load(Ordering::Relaxed),
        held[held.len() / 2],
        held[held.len() - 1],
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1]
    );
    // The daemon keeps its per-address limit of them (8), not 512.
    assert!(held[held.len() / 2] <= 8, "stalled connections from one address held open, per round: {held:?}");
    assert!(sorted[sorted.len() / 2] <= Duration::from_millis(100), "status during the flood took {sorted:?}");
    common::assert_tones(&tone_segments(rate, &samples, &TONES), &tones, 0.1, "the speaker that joined during the flood");
    // Hundreds of refusals, a few lines: rate-limited per address.
    let log = common::strip_ansi(&daemon.log_text());
    let lines = log.lines().filter(|l| l.contains(&common::nat::ATTACKER_ADDR.to_string())).count();
    assert!(lines <= 4, "{lines} log lines about the attacker:\n{log}");
}

/// A daemon config like `config`, and the zone's group and port.
fn config_with_group(dir: &Path) -> (String, String, u16) {
    let (group, port) = unique_group();
    let text = format!(
        "{}[speakers]\nlisten = \"{}\"\nkeepalive = \"{}ms\"\nmissed_keepalives = 3\n\
         [[zone]]\nname = \"thon-1\"\ngroup = \"{group}:{port}\"\n",
        base_config(dir),
        listen(),
        KEEPALIVE.as_millis()
    );
    (text, group, port)
}

/// A UDP socket in `host` that sends as if from `from` (an address the
/// host does not have): IP_TRANSPARENT, which root in the test's
/// namespace may set. An attacker on loa's LAN forging loa's address and
/// port gets through the NAT's mapping to the speaker.
fn spoofing_socket(host: &common::nat::Host, from: std::net::SocketAddrV4) -> std::net::UdpSocket {
    use std::os::fd::{AsRawFd, FromRawFd};
    host.enter(move || {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        let on: libc::c_int = 1;
        // SAFETY: a valid descriptor, an int option of the right size.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_IP,
                libc::IP_TRANSPARENT,
                &on as *const libc::c_int as *const libc::c_void,
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "IP_TRANSPARENT: {}", std::io::Error::last_os_error());
        socket.bind(&from.into()).unwrap();
        // SAFETY: the descriptor is handed over whole.
        unsafe { std::net::UdpSocket::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(socket)) }
    })
}

#[test]
fn injection_at_a_joined_speakers_own_port_never_reaches_its_audio() {
    use common::daemon::RtpListener;
    use common::nat::SPEAKER_ADDR;
    use loa::rtp::srtp::{CryptoAttribute, MasterKey, SrtpSender};
    use std::net::{SocketAddrV4, UdpSocket};

    let rig = NatRig::with(NatOptions { attacker: true, ..NatOptions::default() });
    let dir = tempfile::tempdir().unwrap();
    let (text, group, port) = config_with_group(dir.path());
    let daemon = Daemon::start_via(dir.path(), &text, &rig.loa.prefix());
    let speaker = Speaker::join(&rig, &daemon, dir.path(), "xa-dong");
    let public: SocketAddrV4 = wait_online(&daemon, "xa-dong", "unicast", Duration::from_secs(10), None).parse().unwrap();
    let loa_udp: SocketAddrV4 = listen().parse().unwrap();
    let private = rig.udp_mappings().into_iter().find(|m| m.remote == loa_udp && m.public == public).expect("the speaker's mapping").private;
    assert_eq!(*private.ip(), SPEAKER_ADDR);

    // The zone's key and SSRC, as a receiver holding the SDP knows them.
    let config = daemon.config.to_str().unwrap().to_string();
    let out = daemon.loa(&["sdp", "--config", &config, "--zone", "thon-1"]);
    let sdp = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = sdp.lines().find(|l| l.starts_with("a=crypto:")).unwrap_or_else(|| panic!("no a=crypto in {sdp}"));
    let crypto = CryptoAttribute::parse(line.trim().trim_start_matches("a=")).unwrap();

    // A first programme of the attack tone: real packets of the zone,
    // captured on the group in loa's host, to be replayed later.
    let attack_tone = TONES[5];
    let listener = {
        let group = group.clone();
        rig.loa.enter(move || RtpListener::start(&group, port))
    };
    play(&daemon, dir.path(), "attack.wav", &[(attack_tone, 1.0)]);
    daemon.wait_idle(Duration::from_secs(20));
    let captured = listener.packets();
    assert!(captured.len() >= 40, "{} packets of the attack tone captured", captured.len());
    let ssrc = captured[0].ssrc;

    // The programme under attack: four tones, a second each.
    let tones: Vec<(f32, f32)> = TONES[..4].iter().map(|&f| (f, 1.0)).collect();
    let seen = captured.len();
    play(&daemon, dir.path(), "tones.wav", &tones);
    listener.wait_packets(seen + 10, Duration::from_secs(10));

    // Two attackers at the speaker's port: a neighbour on the carrier's
    // side straight at the speaker's own address and port, and a host on
    // loa's LAN forging loa's address at the NAT's mapping.
    let neighbour = rig.speaker.enter(|| UdpSocket::bind("0.0.0.0:0")).unwrap();
    let forger_lan = spoofing_socket(rig.attacker.as_ref().unwrap(), loa_udp);
    let aims: [(&UdpSocket, SocketAddrV4); 2] = [(&neighbour, private), (&forger_lan, public)];
    let frames = tone_frames(attack_tone, 0.8, 150);
    let wrong = MasterKey::generate(crypto.suite, &mut rand::rng());
    let mut forger = SrtpSender::new(ssrc, wrong, crypto.keys[0].mki).unwrap();
    let (mut plain, mut forged, mut replayed, mut truncated) = (0u64, 0u64, 0u64, 0u64);
    for (n, frame) in frames.iter().enumerate() {
        let latest = listener.packets().last().cloned().unwrap();
        let ahead = latest.seq.wrapping_add(1 + n as u16 % 3);
        let ts = latest.timestamp.wrapping_add(960);
        // Plain RTP in the zone's name, the next sequence numbers.
        let plain_packet = rtp_packet(ssrc, ahead, ts, false, frame);
        // The same sealed under a key that is not the zone's, same MKI.
        let mut sealed = rtp_packet(ssrc, ahead.wrapping_add(40), ts, false, frame);
        let sealed_ok = forger.protect_rtp(&mut sealed).is_ok();
        // The attack programme's real packets again, and one cut short.
        let old = &captured[n % captured.len()];
        let replay = rtp_packet(old.ssrc, old.seq, old.timestamp, old.marker, &old.payload);
        for (socket, to) in aims {
            socket.send_to(&plain_packet, to).unwrap();
            plain += 1;
            if sealed_ok {
                socket.send_to(&sealed, to).unwrap();
                forged += 1;
            }
            socket.send_to(&replay, to).unwrap();
            replayed += 1;
            socket.send_to(&replay[..replay.len() - 6], to).unwrap();
            truncated += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon.wait_idle(Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));
    drop(listener);
    let (rate, samples) = speaker.stop();
    let stderr = std::fs::read_to_string(dir.path().join("xa-dong.log")).unwrap_or_default();

    // The audio: the attack tone once, as loa played it, then the
    // programme whole and in order; none of the injected tone in it.
    let segments = tone_segments(rate, &samples, &TONES);
    let mut expected = vec![(attack_tone, 1.0)];
    expected.extend(&tones);
    common::assert_tones(&segments, &expected, 0.1, &format!("the speaker under attack\n{stderr}"));
    // The stats line counted what was refused.
    let line = stderr.lines().rev().find(|l| l.contains("SRTP rejected")).unwrap_or_else(|| panic!("{stderr}"));
    eprintln!("{line}\nsent at its port: {plain} plain, {forged} forged, {replayed} replayed, {truncated} truncated");
    let count = |name: &str| -> u64 {
        let at = line.find(&format!("{name} ")).unwrap_or_else(|| panic!("{name} in {line}"));
        line[at + name.len() + 1..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    };
    assert!(count("bad auth") >= forged / 2, "{line} ({forged} forged)");
    assert!(count("replay") >= replayed / 2, "{line} ({replayed} replayed)");
    assert!(count("malformed") + count("bad auth") >= (plain + truncated) / 2, "{line}");
}
