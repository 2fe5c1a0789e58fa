//! Speakers that join loa themselves, through the real path (issue 15):
//! `loa speakers add` makes a credential, `loa speaker --join` connects
//! over TLS, keeps its binding with SRTCP keepalives and plays the unicast
//! SRTP it gets back; refusals and revocation reach it in plain words.
//! Loopback only, inside the private namespace
//! (`scripts/netns.sh cargo test --test speakers_join`).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::daemon::{enrol, join_daemon, Daemon, Packet, RtpListener};
use common::*;
use serde_json::Value;

const STOP_GRACE: Duration = Duration::from_secs(5);


fn speaker(listen: &str, credential: &Path, wav: Option<&Path>) -> Command {
    let mut cmd = Command::new(LOA);
    cmd.args(["speaker", "--join", listen, "--credential", credential.to_str().unwrap()]);
    if let Some(wav) = wav {
        cmd.args(["--out", wav.to_str().unwrap()]);
    }
    cmd
}

fn row<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["speakers"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("{name} not listed: {list}"))
}

fn wait_state(daemon: &Daemon, name: &str, state: &str, timeout: Duration) -> Value {
    let list = daemon.wait_json(&["speakers", "list"], &format!("{name} {state}"), timeout, |list| {
        list["speakers"].as_array().is_some_and(|rows| rows.iter().any(|s| s["name"] == name && s["state"] == state))
    });
    row(&list, name).clone()
}

#[test]
fn a_joined_speaker_plays_the_tone_sequence_and_shows_online_then_offline() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (daemon, listen, _, _) = join_daemon(dir.path());
    let tones: Vec<(f32, f32)> = TONES[..4].iter().map(|&f| (f, 1.0)).collect();
    write_tones_wav(&dir.path().join("media/tones.wav"), 48_000, 1, &tones);
    let credential = enrol(&daemon, "xa-dong");
    let wav = dir.path().join("xa-dong.wav");
    let spk = Background::spawn("loa speaker", &mut speaker(&listen, &credential, Some(&wav)));

    let online = wait_state(&daemon, "xa-dong", "online", Duration::from_secs(5));
    assert_eq!(online["transport"], "unicast", "{online}");
    let address: std::net::SocketAddr = online["address"].as_str().unwrap().parse().unwrap();
    assert_eq!(address.ip().to_string(), "127.0.0.1");
    assert_ne!(address.port(), 0);
    assert!(online["last_keepalive"].is_string(), "{online}");
    let table = String::from_utf8_lossy(&daemon.loa(&["speakers", "list"]).stdout).into_owned();
    assert!(table.contains("unicast") && table.contains(&address.to_string()) && table.contains("online"), "{table}");

    // Datagrams at the port that do not authenticate (a plain RR and
    // junk, from another socket) are logged as security events and move
    // nothing.
    let attacker = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let rr = [0x81, 201, 0, 7, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    attacker.send_to(&rr, &listen).unwrap();
    attacker.send_to(b"hello", &listen).unwrap();
    wait_until("the security line", Duration::from_secs(3), || {
        let log = daemon.log_text();
        if log.contains("SECURITY: unauthenticated datagram at the speakers port") { Ok(()) } else { Err(log) }
    });
    let still = row(&daemon.json(&["speakers", "list"]), "xa-dong").clone();
    assert_eq!(still["address"], online["address"], "{still}");

    assert!(daemon.loa(&["play", "--zones", "z", "tones.wav"]).status.success());
    // Its keepalives are receiver reports: health hears it as it hears a
    // multicast speaker, under its enrolled name, with its transport and
    // the address:port loa sends to; never unregistered.
    let endpoints = daemon.wait_json(&["endpoints"], "the joined speaker in loa endpoints", Duration::from_secs(4), |e| {
        e["endpoints"].as_array().is_some_and(|rows| rows.iter().any(|r| r["zone"] == "z" && r["name"] == "xa-dong"))
    });
    let rows = endpoints["endpoints"].as_array().unwrap();
    let row = rows.iter().find(|r| r["name"] == "xa-dong").unwrap();
    assert_eq!((&row["state"], &row["transport"], &row["address"], &row["joined"]), (&"online".into(), &"unicast".into(), &online["address"], &true.into()), "{row:#}");
    assert!(rows.iter().all(|r| r["state"] != "unregistered"), "{endpoints:#}");
    daemon.wait_idle(Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(500));
    let out = spk.stop(STOP_GRACE);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let (rate, samples) = read_wav_mono(&wav);
    assert_tones(&tone_segments(rate, &samples, &TONES), &tones, 0.06, &format!("joined speaker ({stderr})"));

    // Its keepalives stopped with it: offline after two missed.
    let offline = wait_state(&daemon, "xa-dong", "offline", Duration::from_secs(6));
    assert!(offline["address"].is_null(), "{offline}");
    daemon.wait_json(&["endpoints"], "the stopped speaker offline in loa endpoints", Duration::from_secs(6), |e| {
        e["endpoints"].as_array().is_some_and(|rows| rows.iter().any(|r| r["name"] == "xa-dong" && r["state"] == "offline"))
    });
    let log = daemon.log_text();
    assert!(log.contains("speaker joined"), "{log}");
}

#[test]
fn unknown_and_revoked_credentials_are_refused_in_plain_words() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (daemon, listen, _, _) = join_daemon(dir.path());
    let credential = enrol(&daemon, "xa-dong");

    // A certificate loa signed but never enrolled (made from its own
    // identity, as a stolen identity key could): not enrolled.
    let identity = loa::speakers::Identity::load_or_create(&dir.path().join("state")).unwrap();
    let ghost = identity.enrol("ghost").unwrap();
    let mut forged = loa::speakers::Credential::parse(&std::fs::read_to_string(&credential).unwrap()).unwrap();
    forged.speaker = "ghost".into();
    forged.certificate = ghost.cert_pem;
    forged.private_key = ghost.key_pem;
    let forged_path = dir.path().join("ghost.toml");
    std::fs::write(&forged_path, forged.to_toml()).unwrap();
    let out = speaker(&listen, &forged_path, None).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "refused for good: {stderr}");
    assert!(stderr.contains("loa refused this speaker: this credential is not enrolled with this loa"), "{stderr}");

    assert!(daemon.loa(&["speakers", "revoke", "xa-dong"]).status.success());
    let out = speaker(&listen, &credential, None).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "refused for good: {stderr}");
    assert!(stderr.contains("loa refused this speaker: speaker \"xa-dong\" was revoked at"), "{stderr}");
    let log = daemon.log_text();
    assert!(log.contains("speaker join refused"), "{log}");
}

#[test]
fn a_revoked_speaker_is_cut_off_at_once_and_the_others_play_on_under_a_key_it_never_had() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (daemon, listen, group, port) = join_daemon(dir.path());
    let tones: Vec<(f32, f32)> = TONES.iter().map(|&f| (f, 1.0)).collect();
    write_tones_wav(&dir.path().join("media/tones.wav"), 48_000, 1, &tones);
    let (a_cred, b_cred) = (enrol(&daemon, "a"), enrol(&daemon, "b"));
    let (a_wav, b_wav) = (dir.path().join("a.wav"), dir.path().join("b.wav"));
    let a = Background::spawn("loa speaker a", &mut speaker(&listen, &a_cred, Some(&a_wav)));
    let b = Background::spawn("loa speaker b", &mut speaker(&listen, &b_cred, Some(&b_wav)));
    wait_state(&daemon, "a", "online", Duration::from_secs(5));
    wait_state(&daemon, "b", "online", Duration::from_secs(5));

    let listener = RtpListener::start(&group, port);
    assert!(daemon.loa(&["play", "--zones", "z", "tones.wav"]).status.success());
    // Revoked while the third tone (800 Hz) plays: 2.5 s of 20 ms packets
    // (the audio is encrypted, so counted, not listened to).
    listener.wait_packets(125, Duration::from_secs(10));
    let revoked_at = Instant::now();
    let out = daemon.loa(&["speakers", "revoke", "a"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("new keys for z"), "{said}");
    daemon.wait_idle(Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(500));

    let a_out = a.stop(STOP_GRACE);
    let a_err = String::from_utf8_lossy(&a_out.stderr);
    assert_eq!(a_out.status.code(), Some(3), "the revoked speaker ends with the reason: {a_err}");
    assert!(a_err.contains("loa refused this speaker: this speaker was revoked by the operator"), "{a_err}");
    let b_out = b.stop(STOP_GRACE);
    let b_err = String::from_utf8_lossy(&b_out.stderr);
    assert!(b_out.status.success(), "{b_err}");

    // The zone switched to a key handed out after the revocation: the
    // ring held MKIs 1 and 2 when both joined; the last packets carry 3.
    let packets = listener.stop();
    let mki = |p: &Packet| u32::from_be_bytes(p.payload[p.payload.len() - 14..p.payload.len() - 10].try_into().unwrap());
    assert_eq!(packets.first().map(mki), Some(1));
    assert_eq!(packets.last().map(mki), Some(3), "the zone re-keyed after the revocation");
    // b acknowledged the new key, so the switch did not wait out the 2 s
    // hand-out (a revoked speaker still on the group stops that soon).
    let switched = packets.iter().find(|p| mki(p) == 3).unwrap().at.duration_since(revoked_at);
    eprintln!("the zone switched keys {switched:?} after the revoke command");
    assert!(switched < Duration::from_secs(1), "switched {switched:?} after the revocation");
    assert!(daemon.log_text().contains("every joined speaker holds the new key: switching now"));

    // b heard all of it, across the switch; a none of the tones after.
    let (rate, samples) = read_wav_mono(&b_wav);
    assert_tones(&tone_segments(rate, &samples, &TONES), &tones, 0.06, &format!("remaining speaker ({b_err})"));
    let (rate, samples) = read_wav_mono(&a_wav);
    let heard: Vec<f32> = tone_segments(rate, &samples, &TONES).iter().map(|s| s.freq).collect();
    assert!(heard.starts_with(&[400.0, 600.0]), "before its revocation it played: {heard:?}");
    assert!(heard.iter().all(|f| TONES[..3].contains(f)), "the revoked speaker heard {heard:?}");
}

fn endpoint_rows(daemon: &Daemon) -> Vec<Value> {
    daemon.json(&["endpoints"])["endpoints"].as_array().unwrap().iter().filter(|r| r["joined"] == true).cloned().collect()
}

#[test]
fn enrolled_speakers_are_in_loa_endpoints_before_they_join_and_after_a_restart_and_revoked_ones_leave() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (mut daemon, listen, _, _) = join_daemon(dir.path());
    let credential = enrol(&daemon, "xa-dong");
    enrol(&daemon, "xa-tay");

    // Not joined yet: listed by name, no address or transport; offline
    // once the keepalive silence window (2 × 1 s + margin) passes.
    let rows = endpoint_rows(&daemon);
    let names: Vec<_> = rows.iter().map(|r| (r["name"].as_str().unwrap(), r["address"].as_str().unwrap(), r["transport"].is_null())).collect();
    assert_eq!(names, [("xa-dong", "-", true), ("xa-tay", "-", true)], "{rows:#?}");
    assert!(rows.iter().all(|r| r["state"] == "unknown" || r["state"] == "offline"), "{rows:#?}");
    daemon.wait_json(&["endpoints"], "xa-tay offline without joining", Duration::from_secs(6), |e| {
        e["endpoints"].as_array().is_some_and(|rows| rows.iter().any(|r| r["name"] == "xa-tay" && r["state"] == "offline"))
    });
    let table = String::from_utf8_lossy(&daemon.loa(&["endpoints"]).stdout).into_owned();
    let line = table.lines().find(|l| l.starts_with("xa-tay")).unwrap_or_else(|| panic!("{table}"));
    assert!(line.contains(" - ") && line.contains("offline") && line.contains("never"), "{table}");

    // It joins: the same row comes online with its transport and address.
    let spk = Background::spawn("loa speaker", &mut speaker(&listen, &credential, None));
    daemon.wait_json(&["endpoints"], "xa-dong online", Duration::from_secs(6), |e| {
        e["endpoints"].as_array().is_some_and(|rows| rows.iter().any(|r| r["name"] == "xa-dong" && r["state"] == "online" && r["transport"] == "unicast"))
    });
    assert_eq!(endpoint_rows(&daemon).len(), 2, "the enrolled row, not a second one");

    // Revoked: its row goes (the offline transition stays in the log).
    assert!(daemon.loa(&["speakers", "revoke", "xa-tay"]).status.success());
    let rows = endpoint_rows(&daemon);
    assert!(rows.iter().all(|r| r["name"] != "xa-tay"), "{rows:#?}");
    drop(spk.stop(STOP_GRACE));

    // After a restart, before anyone joins: the enrolled speaker is listed.
    assert!(daemon.stop());
    let daemon = Daemon::start_existing(dir.path());
    let rows = endpoint_rows(&daemon);
    let names: Vec<_> = rows.iter().map(|r| (r["name"].as_str().unwrap(), r["state"].as_str().unwrap())).collect();
    assert_eq!(names, [("xa-dong", "unknown")], "{rows:#?}");
}
