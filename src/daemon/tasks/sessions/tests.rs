//! The sessions' state without sockets: keepalives made and checked with
//! real SRTCP, time made up.

use std::sync::atomic::Ordering;
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

/// A joined speaker `a` of zone `z`: its uplink sender, the connection's
/// ends of its link and the session id.
fn join(sessions: &SessionsHandle) -> (SrtpSender, fallback::LinkEnds, u64) {
    join_as(sessions, "a", SSRC, true)
}

const PEER: &str = "203.0.113.1:41000";

fn join_as(sessions: &SessionsHandle, name: &str, ssrc: u32, udp: bool) -> (SrtpSender, fallback::LinkEnds, u64) {
    let key = MasterKey::generate(Suite::AesCm128HmacSha1_80, &mut rand::rng());
    let uplink = Uplink::new(name, ssrc, &key).unwrap();
    let (link, ends) = fallback::link(PEER.parse().unwrap());
    let id = sessions.joined(vec!["z".into()], false, uplink, link, udp);
    (SrtpSender::new(ssrc, key, None).unwrap(), ends, id)
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
    let (mut tx, mut ends, id) = join(&sessions);
    let t = Instant::now();
    let from: SocketAddr = "203.0.113.9:5000".parse().unwrap();
    udp::check(&sessions, &mut keepalive(&mut tx), from, t).unwrap();
    assert!(sessions.is_live("a", id));

    assert!(sessions.revoke("a"));
    assert_eq!(ends.kicked.try_recv().unwrap(), "this speaker was revoked by the operator");
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
    let (_, mut old_ends, old) = join(&sessions);
    let (_, _, new) = join(&sessions);
    assert_eq!(old_ends.kicked.try_recv().unwrap(), "the speaker joined again from another connection");
    assert!(!sessions.left("a", old));
    assert!(sessions.is_live("a", new));
}

/// Where the fallback's loopback socket would be.
const FALLBACK: &str = "127.0.0.1:39999";

fn with_fallback() -> (SessionsHandle, Sent) {
    let (sessions, sent) = sessions();
    sessions.lock().fallback = Some(FALLBACK.parse().unwrap());
    (sessions, sent)
}

/// A sealed RTP packet of SSRC 5 (its contents do not matter here).
fn packet(seq: u8) -> Arc<[u8]> {
    Arc::from(&[0x80, 96, 0, seq, 0, 0, 0, 0, 0, 0, 0, 5, 0xfc][..])
}

fn row(sessions: &SessionsHandle, name: &str) -> SpeakerInfo {
    let mut rows = [info(name)];
    sessions.overlay(&mut rows);
    rows[0].clone()
}

#[test]
fn a_speaker_whose_udp_never_authenticates_gets_its_zone_inside_tls() {
    let (sessions, sent) = with_fallback();
    let (mut tx, mut ends, _) = join(&sessions);
    let t = Instant::now();
    sessions.tick(t + FALLBACK_AFTER - Duration::from_millis(100));
    assert!(sent.lock().unwrap().is_empty(), "still waiting for its UDP");
    assert!(ends.transport.try_recv().is_err());

    sessions.tick(t + FALLBACK_AFTER + Duration::from_millis(10));
    assert_eq!(last(&sent), Some(("z".into(), vec![FALLBACK.parse().unwrap()])), "the pacer sends the zone to the fallback socket too");
    assert_eq!(ends.transport.try_recv().unwrap(), SpeakerTransport::Tls);
    assert!(ends.transport.try_recv().is_err(), "told once");

    // The zone's packets are queued for its connection; other zones' not.
    sessions.forward("z", &packet(1));
    sessions.forward("other", &packet(2));
    assert_eq!(&ends.media.try_recv().unwrap()[..], &packet(1)[..]);
    assert!(ends.media.try_recv().is_err());

    // Listed as tls at its connection's address; online once its first
    // keepalive inside TLS verifies.
    let r = row(&sessions, "a");
    assert_eq!((r.transport, r.address.as_deref(), r.state), (Some(SpeakerTransport::Tls), Some(PEER), SpeakerState::Offline));
    let now = t + FALLBACK_AFTER + Duration::from_millis(20);
    assert!(fallback::check_keepalive(&sessions, SSRC, &mut keepalive(&mut tx), now).is_ok());
    let r = row(&sessions, "a");
    assert_eq!((r.state, r.address.as_deref()), (SpeakerState::Online, Some(PEER)));
    assert!(r.last_keepalive.is_some());
    assert_eq!(sent.lock().unwrap().len(), 1, "a keepalive inside TLS moves no target");
}

#[test]
fn garbage_and_replays_inside_tls_are_refused_counted_and_the_session_goes_on() {
    let (sessions, _) = with_fallback();
    let (mut tx, _ends, _) = join(&sessions);
    let t = Instant::now() + FALLBACK_AFTER + Duration::from_millis(10);
    sessions.tick(t);
    let reason = |packet: &mut [u8], at| fallback::check_keepalive(&sessions, SSRC, packet, at).map_err(|r| r.reason);
    let good = keepalive(&mut tx);
    assert!(reason(&mut good.clone(), t).is_ok());
    // The first bad one is logged at once, the rest within the period are
    // only counted, and said on the next line.
    let first = fallback::check_keepalive(&sessions, SSRC, &mut good.clone(), t);
    assert_eq!(first, Err(fallback::Refused { reason: "replay", log: Some((1, 1)) }));
    assert_eq!(reason(&mut [0x80, 96, 1, 2, 0, 0, 0, 0, 0, 0, 0, 77], t), Err("not an SRTCP packet"));
    assert_eq!(reason(&mut [0x80, 0xc9], t), Err("not an SRTCP packet"));
    assert!(reason(&mut plain_rr(), t).is_err(), "plain, no tag");
    let mut flipped = keepalive(&mut tx);
    let end = flipped.len() - 1;
    flipped[end] ^= 1;
    assert_eq!(reason(&mut flipped, t), Err("bad_auth"));
    // Another session's keepalive inside this connection is not its own.
    let (mut other, _other_ends, _) = join_as(&sessions, "b", SSRC + 1, true);
    let mut theirs = Vec::new();
    write_receiver_report(&mut theirs, SSRC + 1, &[], "loa-speaker@y");
    other.protect_rtcp(&mut theirs).unwrap();
    assert_eq!(reason(&mut theirs, t), Err("not this session's uplink SSRC"));
    let later = fallback::check_keepalive(&sessions, SSRC, &mut [0xff], t + Duration::from_secs(10));
    assert_eq!(later.map_err(|r| r.log), Err(Some((6, 7))));
    // The stream of good ones goes on.
    assert!(reason(&mut keepalive(&mut tx), t).is_ok());
    assert_eq!(row(&sessions, "a").state, SpeakerState::Online);
}

#[test]
fn a_slow_connection_loses_packets_counted_and_nothing_waits_for_it() {
    let (sessions, _) = with_fallback();
    let (_, mut slow, _) = join_as(&sessions, "a", SSRC, false);
    let (_, mut quick, _) = join_as(&sessions, "b", SSRC + 1, false);
    let extra = 5;
    for seq in 0..fallback::MEDIA_QUEUE + extra {
        sessions.forward("z", &packet(seq as u8));
        // `b` reads as fast as packets come.
        assert_eq!(quick.media.try_recv().unwrap()[3], seq as u8);
    }
    assert_eq!(slow.dropped.load(Ordering::Relaxed), extra as u64);
    assert_eq!(quick.dropped.load(Ordering::Relaxed), 0);
    // The slow one gets the oldest packets, in order, then nothing more.
    for seq in 0..fallback::MEDIA_QUEUE {
        assert_eq!(slow.media.try_recv().unwrap()[3], seq as u8);
    }
    assert!(slow.media.try_recv().is_err());
}

#[test]
fn a_hello_without_udp_puts_the_audio_inside_tls_at_once() {
    let (sessions, sent) = with_fallback();
    let (_, mut ends, _) = join_as(&sessions, "a", SSRC, false);
    assert_eq!(last(&sent), Some(("z".into(), vec![FALLBACK.parse().unwrap()])));
    assert_eq!(ends.transport.try_recv().unwrap(), SpeakerTransport::Tls);
    assert_eq!(row(&sessions, "a").transport, Some(SpeakerTransport::Tls));
}

#[test]
fn udp_that_authenticates_later_wins_unicast_back_and_the_fallback_stops() {
    let (sessions, sent) = with_fallback();
    let (mut tx, mut ends, id) = join(&sessions);
    let t = Instant::now() + FALLBACK_AFTER + Duration::from_millis(10);
    sessions.tick(t);
    assert_eq!(ends.transport.try_recv().unwrap(), SpeakerTransport::Tls);
    let from: SocketAddr = "203.0.113.1:40000".parse().unwrap();
    udp::check(&sessions, &mut keepalive(&mut tx), from, t + Duration::from_secs(5)).unwrap();
    assert_eq!(last(&sent), Some(("z".into(), vec![from])), "unicast, no fallback copy");
    assert_eq!(ends.transport.try_recv().unwrap(), SpeakerTransport::Unicast);
    sessions.forward("z", &packet(1));
    assert!(ends.media.try_recv().is_err(), "nothing inside TLS any more");
    let r = row(&sessions, "a");
    assert_eq!((r.transport, r.address.as_deref()), (Some(SpeakerTransport::Unicast), Some("203.0.113.1:40000")));

    // Leaving takes its targets with it.
    assert!(sessions.left("a", id));
    assert_eq!(last(&sent), Some(("z".into(), vec![])));
}

#[test]
fn a_fallback_speaker_leaving_takes_the_fallback_target_away() {
    let (sessions, sent) = with_fallback();
    let (_, _ends, id) = join_as(&sessions, "a", SSRC, false);
    assert_eq!(last(&sent), Some(("z".into(), vec![FALLBACK.parse().unwrap()])));
    // Joining again (a new connection) first takes the old target away.
    let (_, _new_ends, new) = join_as(&sessions, "a", SSRC, true);
    assert!(!sessions.left("a", id));
    assert_eq!(last(&sent), Some(("z".into(), vec![])));
    let (_, _ends, _) = join_as(&sessions, "a", SSRC, false);
    assert!(!sessions.left("a", new));
    sessions.revoke("a");
    assert_eq!(last(&sent), Some(("z".into(), vec![])));
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
    let (mut tx, _ends, id) = join(&sessions);
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
    let uplink = Uplink::new("a", SSRC, &key).unwrap();
    let (link, _ends) = fallback::link(PEER.parse().unwrap());
    sessions.joined(vec!["z".into()], true, uplink, link, true);
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

/// What a speaker holding the session's uplink key makes of an answer.
fn verify_answer(key: &MasterKey, answer: &[u8]) -> Result<usize, crate::rtp::srtp::UnprotectError> {
    let mut rx = SrtpReceiver::new(crate::speakers::join::answer_ssrc(SSRC), key.clone(), None, DEFAULT_REPLAY_WINDOW).unwrap();
    rx.unprotect_rtcp(&mut answer.to_vec())
}

#[test]
fn each_authenticated_udp_keepalive_is_answered_under_the_uplink_key_and_nothing_else_is() {
    let (sessions, _) = sessions();
    let key = MasterKey::generate(Suite::AesCm128HmacSha1_80, &mut rand::rng());
    let (link, _ends) = fallback::link(PEER.parse().unwrap());
    sessions.joined(vec!["z".into()], false, Uplink::new("a", SSRC, &key).unwrap(), link, true);
    let mut tx = SrtpSender::new(SSRC, key.clone(), None).unwrap();
    let from: SocketAddr = "198.51.100.7:40000".parse().unwrap();
    let t = Instant::now();

    let good = keepalive(&mut tx);
    let first = udp::check(&sessions, &mut good.clone(), from, t).unwrap();
    let answer = first.answer.expect("an authenticated keepalive is answered");
    assert!(answer.len() <= good.len(), "never more bytes out than in: {} > {}", answer.len(), good.len());
    assert!(verify_answer(&key, &answer).is_ok());
    // Under another key it is nothing; with the uplink's own SSRC it is
    // not an answer (a keepalive reflected back would be one).
    let other = MasterKey::generate(Suite::AesCm128HmacSha1_80, &mut rand::rng());
    assert!(verify_answer(&other, &answer).is_err());
    let mut as_uplink = SrtpReceiver::new(SSRC, key.clone(), None, DEFAULT_REPLAY_WINDOW).unwrap();
    assert!(as_uplink.unprotect_rtcp(&mut answer.clone()).is_err());
    // A replayed keepalive, or a plain one, gets no answer at all.
    assert!(udp::check(&sessions, &mut good.clone(), from, t).is_err());
    assert!(udp::check(&sessions, &mut plain_rr(), from, t).is_err());
    // Each answer is sealed afresh: the next is no replay of the first.
    let second = udp::check(&sessions, &mut keepalive(&mut tx), from, t).unwrap().answer.unwrap();
    assert_ne!(second, answer);
}

#[test]
fn a_multicast_speaker_is_not_answered() {
    let (sessions, _) = sessions();
    let key = MasterKey::generate(Suite::AesCm128HmacSha1_80, &mut rand::rng());
    let (link, _ends) = fallback::link(PEER.parse().unwrap());
    sessions.joined(vec!["z".into()], true, Uplink::new("a", SSRC, &key).unwrap(), link, true);
    let mut tx = SrtpSender::new(SSRC, key, None).unwrap();
    let checked = udp::check(&sessions, &mut keepalive(&mut tx), "192.0.2.40:41000".parse().unwrap(), Instant::now()).unwrap();
    assert_eq!(checked.answer, None, "it has nothing to decide");
}

#[test]
fn a_speaker_that_hears_no_udp_moves_inside_tls_though_its_keepalives_authenticate_and_back_when_it_says_so() {
    let (sessions, sent) = with_fallback();
    let (mut tx, mut ends, id) = join(&sessions);
    let t = Instant::now();
    let from: SocketAddr = "203.0.113.9:5000".parse().unwrap();
    udp::check(&sessions, &mut keepalive(&mut tx), from, t).unwrap();
    assert_eq!(last(&sent), Some(("z".into(), vec![from])));

    // A session that was replaced moves nothing.
    sessions.downstream("a", id + 1, false);
    assert_eq!(last(&sent), Some(("z".into(), vec![from])));
    sessions.downstream("a", id, false);
    assert_eq!(last(&sent), Some(("z".into(), vec![FALLBACK.parse().unwrap()])), "no more unicast, the fallback instead");
    assert_eq!(ends.transport.try_recv().unwrap(), SpeakerTransport::Tls);
    let r = row(&sessions, "a");
    assert_eq!((r.transport, r.address.as_deref(), r.state), (Some(SpeakerTransport::Tls), Some(PEER), SpeakerState::Online));

    // Its UDP keepalives are still answered (how it learns UDP is back)
    // and keep it online, but win nothing back.
    sent.lock().unwrap().clear();
    let later: SocketAddr = "203.0.113.9:5001".parse().unwrap();
    let checked = udp::check(&sessions, &mut keepalive(&mut tx), later, t + Duration::from_secs(1)).unwrap();
    assert!(checked.answer.is_some());
    assert!(sent.lock().unwrap().is_empty(), "{:?}", sent.lock().unwrap());
    assert!(ends.transport.try_recv().is_err());

    sessions.downstream("a", id, true);
    assert_eq!(last(&sent), Some(("z".into(), vec![later])), "unicast again, to its latest keepalive's address");
    assert_eq!(ends.transport.try_recv().unwrap(), SpeakerTransport::Unicast);
}
