//! The sessions' state without sockets: keepalives made and checked with
//! real SRTCP, time made up.

use std::sync::{Arc, Mutex};

use super::*;
use crate::proto::speakers::SpeakerInfo;
use crate::rtp::rtcp::write_receiver_report;
use crate::rtp::srtp::{MasterKey, SrtpSender, Suite, DEFAULT_REPLAY_WINDOW};

type Sent = Arc<Mutex<Vec<(String, Vec<SocketAddr>)>>>;

const SSRC: u32 = 77;

fn sessions() -> (SessionsHandle, Sent) {
    let sent: Sent = Arc::default();
    let sink = sent.clone();
    let handle = SessionsHandle::new(Duration::from_secs(1), 2, Box::new(move |zone, targets| sink.lock().unwrap().push((zone, targets))));
    (handle, sent)
}

/// A joined speaker `a` of zone `z`: its uplink sender, the kick receiver
/// and the session id.
fn join(sessions: &SessionsHandle) -> (SrtpSender, mpsc::UnboundedReceiver<String>, u64) {
    let key = MasterKey::generate(Suite::AesCm128HmacSha1_80, &mut rand::rng());
    let rx = SrtpReceiver::new(SSRC, key.clone(), None, DEFAULT_REPLAY_WINDOW).unwrap();
    let (kick, kicked) = mpsc::unbounded_channel();
    let id = sessions.joined("a", vec!["z".into()], false, SSRC, rx, kick);
    (SrtpSender::new(SSRC, key, None).unwrap(), kicked, id)
}

fn plain_rr() -> Vec<u8> {
    let mut p = Vec::new();
    write_receiver_report(&mut p, SSRC, &[], "loa-speaker@x");
    p
}

fn keepalive(tx: &mut SrtpSender) -> Vec<u8> {
    let mut p = plain_rr();
    tx.protect_rtcp(&mut p).unwrap();
    p
}

fn last(sent: &Sent) -> Option<(String, Vec<SocketAddr>)> {
    sent.lock().unwrap().last().cloned()
}

fn info(name: &str) -> SpeakerInfo {
    SpeakerInfo {
        name: name.into(),
        zones: vec!["z".into()],
        state: SpeakerState::Offline,
        transport: None,
        address: None,
        last_keepalive: None,
        pin: "sha256:00".into(),
        enrolled_at: Timestamp::UNIX_EPOCH,
        enrolled_by: None,
        revoked_at: None,
        revoked_by: None,
    }
}

#[test]
fn only_an_authenticated_keepalive_binds_a_speaker_or_moves_it() {
    let (sessions, sent) = sessions();
    let (mut tx, _kicked, _) = join(&sessions);
    let t = Instant::now();
    let (first, second): (SocketAddr, SocketAddr) = ("198.51.100.7:40000".parse().unwrap(), "198.51.100.7:40001".parse().unwrap());

    // A plain RR with its SSRC, and one of an unknown SSRC: nothing moves.
    assert!(udp::check(&sessions, &mut plain_rr(), first, t).is_err());
    let mut stranger = Vec::new();
    write_receiver_report(&mut stranger, SSRC + 1, &[], "x");
    assert_eq!(udp::check(&sessions, &mut stranger, first, t), Err("no joined speaker has its SSRC"));
    assert_eq!(udp::check(&sessions, &mut [0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 77], first, t), Err("not an SRTCP packet"));
    assert!(sent.lock().unwrap().is_empty());

    let good = keepalive(&mut tx);
    assert_eq!(udp::check(&sessions, &mut good.clone(), first, t).map(|_| ()), Ok(()));
    assert_eq!(last(&sent), Some(("z".into(), vec![first])));
    // The same packet replayed from elsewhere (an attacker who saw it)
    // does not move the audio.
    assert!(udp::check(&sessions, &mut good.clone(), second, t).is_err());
    assert_eq!(sent.lock().unwrap().len(), 1);
    // A fresh keepalive from a new NAT mapping does.
    assert_eq!(udp::check(&sessions, &mut keepalive(&mut tx), second, t).map(|_| ()), Ok(()));
    assert_eq!(last(&sent), Some(("z".into(), vec![second])));

    let mut rows = [info("a"), info("b")];
    sessions.overlay(&mut rows);
    assert_eq!((rows[0].state, rows[0].transport), (SpeakerState::Online, Some(SpeakerTransport::Unicast)));
    assert_eq!(rows[0].address.as_deref(), Some("198.51.100.7:40001"));
    assert!(rows[0].last_keepalive.is_some());
    assert_eq!(rows[1].state, SpeakerState::Offline, "not joined");
}

#[test]
fn missed_keepalives_drop_the_binding_and_the_speaker_shows_offline() {
    let (sessions, sent) = sessions();
    let (mut tx, _kicked, _) = join(&sessions);
    let t = Instant::now();
    let from: SocketAddr = "203.0.113.9:5000".parse().unwrap();
    udp::check(&sessions, &mut keepalive(&mut tx), from, t).unwrap();
    // Two missed (1 s each) and half a period of grace.
    sessions.tick(t + Duration::from_millis(2400));
    assert_eq!(last(&sent), Some(("z".into(), vec![from])));
    sessions.tick(t + Duration::from_millis(2500));
    assert_eq!(last(&sent), Some(("z".into(), vec![])));
    let mut rows = [info("a")];
    sessions.overlay(&mut rows);
    assert_eq!((rows[0].state, rows[0].address.as_deref()), (SpeakerState::Offline, None));
    // Its next keepalive brings it back.
    udp::check(&sessions, &mut keepalive(&mut tx), from, t + Duration::from_secs(3)).unwrap();
    assert_eq!(last(&sent), Some(("z".into(), vec![from])));
}

#[test]
fn revocation_ends_the_session_with_words_stops_its_unicast_and_its_keepalives_no_longer_count() {
    let (sessions, sent) = sessions();
    let (mut tx, mut kicked, id) = join(&sessions);
    let t = Instant::now();
    let from: SocketAddr = "203.0.113.9:5000".parse().unwrap();
    udp::check(&sessions, &mut keepalive(&mut tx), from, t).unwrap();
    assert!(sessions.is_live("a", id));

    assert!(sessions.revoke("a"));
    assert_eq!(kicked.try_recv().unwrap(), "this speaker was revoked by the operator");
    assert_eq!(last(&sent), Some(("z".into(), vec![])));
    assert!(!sessions.is_live("a", id), "no key is handed to it from now on");
    assert_eq!(udp::check(&sessions, &mut keepalive(&mut tx), from, t), Err("no joined speaker has its SSRC"));
    // Its connection task ending later changes nothing more.
    assert!(!sessions.left("a", id));
    assert!(!sessions.revoke("a"));
}

#[test]
fn a_speaker_joining_again_replaces_its_old_session() {
    let (sessions, _) = sessions();
    let (_, mut old_kicked, old) = join(&sessions);
    let (_, _, new) = join(&sessions);
    assert_eq!(old_kicked.try_recv().unwrap(), "the speaker joined again from another connection");
    assert!(!sessions.left("a", old));
    assert!(sessions.is_live("a", new));
}

fn facts(ssrc: u32) -> ZoneFacts {
    ZoneFacts { ssrc, pt: 96, channels: 1, group: "239.255.0.1:5004".parse().unwrap() }
}

#[test]
fn a_reload_wakes_the_sessions_and_their_unicast_follows_the_zones_served() {
    let (sessions, sent) = sessions();
    let mut watch = sessions.watch_catalog();
    sessions.zone_added("z", facts(1));
    assert!(watch.has_changed().unwrap());
    watch.borrow_and_update();
    let (mut tx, _kicked, id) = join(&sessions);
    let from: SocketAddr = "203.0.113.9:5000".parse().unwrap();
    udp::check(&sessions, &mut keepalive(&mut tx), from, Instant::now()).unwrap();

    // z sent anew (retired, added with a new SSRC) and y added.
    sessions.zone_retired("z");
    sessions.zone_added("z", facts(2));
    sessions.zone_added("y", facts(3));
    assert!(watch.has_changed().unwrap());
    assert_eq!(sessions.zone_facts("z").map(|f| f.ssrc), Some(2));
    sent.lock().unwrap().clear();
    sessions.set_zones("a", id, vec!["z".into(), "y".into()]);
    let mut now = sent.lock().unwrap().clone();
    now.sort();
    assert_eq!(now, [("y".to_string(), vec![from]), ("z".to_string(), vec![from])], "z's new slot gets its targets again");

    // z removed: its targets emptied, y keeps them.
    sessions.zone_retired("z");
    sent.lock().unwrap().clear();
    sessions.set_zones("a", id, vec!["y".into()]);
    let mut now = sent.lock().unwrap().clone();
    now.sort();
    assert_eq!(now, [("y".to_string(), vec![from]), ("z".to_string(), vec![])]);
    // A session that was replaced moves nothing.
    sent.lock().unwrap().clear();
    sessions.set_zones("a", id + 100, vec!["z".into()]);
    assert!(sent.lock().unwrap().is_empty());
}

#[test]
fn a_multicast_speaker_is_online_by_its_keepalives_and_never_a_unicast_target() {
    let (sessions, sent) = sessions();
    let key = MasterKey::generate(Suite::AesCm128HmacSha1_80, &mut rand::rng());
    let rx = SrtpReceiver::new(SSRC, key.clone(), None, DEFAULT_REPLAY_WINDOW).unwrap();
    let (kick, _kicked) = mpsc::unbounded_channel();
    sessions.joined("a", vec!["z".into()], true, SSRC, rx, kick);
    let mut tx = SrtpSender::new(SSRC, key, None).unwrap();
    let mut rows = [info("a")];
    sessions.overlay(&mut rows);
    assert_eq!(rows[0].state, SpeakerState::Offline, "not online before its first keepalive");
    let from: SocketAddr = "192.0.2.40:41000".parse().unwrap();
    udp::check(&sessions, &mut keepalive(&mut tx), from, Instant::now()).unwrap();
    sessions.overlay(&mut rows);
    assert_eq!((rows[0].state, rows[0].transport), (SpeakerState::Online, Some(SpeakerTransport::Multicast)));
    assert!(sent.lock().unwrap().iter().all(|(_, targets)| targets.is_empty()), "{:?}", sent.lock().unwrap());
}
