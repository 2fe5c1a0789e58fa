use super::*;

const KEEPALIVE: Duration = Duration::from_secs(15);

fn bindings() -> Bindings {
    Bindings::new(Timing { keepalive: KEEPALIVE, missed: 3, fallback_after: Duration::from_secs(3) })
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn zones() -> Vec<String> {
    vec!["thon-1".into()]
}

#[test]
fn first_authenticated_keepalive_makes_the_speaker_a_unicast_target() {
    let t0 = Instant::now();
    let mut b = bindings();
    b.joined("xa-dong", zones(), false, t0);
    assert_eq!(b.unicast_targets("thon-1"), []);
    let change = b.heard("xa-dong", addr("203.0.113.9:40112"), t0 + Duration::from_millis(50));
    assert_eq!(change, Some(Change::Adopted { speaker: "xa-dong".into(), address: addr("203.0.113.9:40112"), previous: None }));
    assert_eq!(b.unicast_targets("thon-1"), [addr("203.0.113.9:40112")]);
    assert_eq!(b.unicast_targets("thon-2"), []);
    assert_eq!(b.heard("xa-dong", addr("203.0.113.9:40112"), t0 + KEEPALIVE), None, "same address: nothing changes");
}

#[test]
fn a_new_nat_mapping_is_adopted_from_the_next_authenticated_keepalive() {
    let t0 = Instant::now();
    let mut b = bindings();
    b.joined("xa-dong", zones(), false, t0);
    b.heard("xa-dong", addr("203.0.113.9:40112"), t0);
    let change = b.heard("xa-dong", addr("203.0.113.9:51000"), t0 + KEEPALIVE);
    assert_eq!(
        change,
        Some(Change::Adopted { speaker: "xa-dong".into(), address: addr("203.0.113.9:51000"), previous: Some(addr("203.0.113.9:40112")) })
    );
    assert_eq!(b.unicast_targets("thon-1"), [addr("203.0.113.9:51000")]);
}

#[test]
fn packets_of_a_speaker_not_joined_move_nothing() {
    let mut b = bindings();
    assert_eq!(b.heard("stranger", addr("198.51.100.1:1"), Instant::now()), None);
    assert_eq!(b.unicast_targets("thon-1"), []);
}

#[test]
fn exactly_n_missed_keepalives_drop_the_binding() {
    let t0 = Instant::now();
    let mut b = bindings();
    b.joined("xa-dong", zones(), false, t0);
    b.heard("xa-dong", addr("203.0.113.9:40112"), t0);
    let due = b.poll_timeout().unwrap();
    assert_eq!(due, t0 + KEEPALIVE * 3 + KEEPALIVE / 2);
    assert_eq!(b.handle_timeout(t0 + KEEPALIVE * 3), [], "three periods late is not yet three missed");
    assert_eq!(b.handle_timeout(due), [Change::Dropped { speaker: "xa-dong".into(), address: Some(addr("203.0.113.9:40112")) }]);
    assert_eq!(b.unicast_targets("thon-1"), []);
    assert_eq!(b.seen("xa-dong").unwrap().transport, None, "shows offline");
    // Heard again (the link came back): unicast again, at the new address.
    assert!(matches!(b.heard("xa-dong", addr("203.0.113.9:1"), due + KEEPALIVE), Some(Change::Adopted { previous: None, .. })));
}

#[test]
fn a_keepalive_each_period_keeps_the_binding_forever() {
    let t0 = Instant::now();
    let mut b = bindings();
    b.joined("xa-dong", zones(), false, t0);
    for n in 0..100u32 {
        let now = t0 + KEEPALIVE * n;
        b.heard("xa-dong", addr("203.0.113.9:40112"), now);
        assert_eq!(b.handle_timeout(now + KEEPALIVE), []);
    }
}

#[test]
fn no_udp_after_joining_falls_back_to_tls_and_udp_later_wins_back() {
    let t0 = Instant::now();
    let mut b = bindings();
    b.joined("xa-dong", zones(), false, t0);
    assert_eq!(b.poll_timeout(), Some(t0 + Duration::from_secs(3)));
    assert_eq!(b.handle_timeout(t0 + Duration::from_secs(2)), []);
    assert_eq!(b.handle_timeout(t0 + Duration::from_secs(3)), [Change::FellBackToTls { speaker: "xa-dong".into(), why: WhyTls::NothingByUdp }]);
    assert_eq!(b.seen("xa-dong").unwrap().transport, Some(SpeakerTransport::Tls));
    assert_eq!(b.poll_timeout(), None, "nothing times out over TLS");
    let change = b.heard("xa-dong", addr("203.0.113.9:40112"), t0 + Duration::from_secs(10));
    assert!(matches!(change, Some(Change::Adopted { .. })), "{change:?}");
    assert_eq!(b.seen("xa-dong").unwrap().transport, Some(SpeakerTransport::Unicast));
}

#[test]
fn a_multicast_speaker_is_never_a_unicast_target_and_never_falls_back_to_tls() {
    let t0 = Instant::now();
    let mut b = bindings();
    b.joined("xa-dong", zones(), true, t0);
    assert_eq!(b.poll_timeout(), None, "no keepalive yet, and no fallback to wait for");
    assert_eq!(b.handle_timeout(t0 + Duration::from_secs(60)), []);
    let change = b.heard("xa-dong", addr("192.0.2.7:5004"), t0);
    assert_eq!(change, Some(Change::Adopted { speaker: "xa-dong".into(), address: addr("192.0.2.7:5004"), previous: None }));
    assert_eq!(b.heard("xa-dong", addr("192.0.2.7:5004"), t0 + KEEPALIVE), None);
    assert_eq!(b.unicast_targets("thon-1"), []);
    let seen = b.seen("xa-dong").unwrap();
    assert_eq!((seen.transport, seen.last_heard), (Some(SpeakerTransport::Multicast), Some(t0 + KEEPALIVE)));
    assert!(b.multicast("xa-dong"));
}

#[test]
fn a_multicast_speaker_goes_offline_after_n_missed_keepalives_and_online_with_the_next() {
    let t0 = Instant::now();
    let mut b = bindings();
    b.joined("xa-dong", zones(), true, t0);
    b.heard("xa-dong", addr("192.0.2.7:5004"), t0);
    let due = b.poll_timeout().unwrap();
    assert_eq!(due, t0 + KEEPALIVE * 3 + KEEPALIVE / 2);
    assert_eq!(b.handle_timeout(due), [Change::Dropped { speaker: "xa-dong".into(), address: Some(addr("192.0.2.7:5004")) }]);
    assert_eq!(b.seen("xa-dong").unwrap().transport, None);
    assert_eq!(b.handle_timeout(due + Duration::from_secs(60)), [], "offline, and still no fallback");
    assert!(b.heard("xa-dong", addr("192.0.2.7:5004"), due + KEEPALIVE).is_some());
    assert_eq!(b.seen("xa-dong").unwrap().transport, Some(SpeakerTransport::Multicast));
    assert_eq!(b.unicast_targets("thon-1"), []);
}

#[test]
fn a_reload_changes_which_zones_a_unicast_speaker_is_a_target_of() {
    let t0 = Instant::now();
    let mut b = bindings();
    b.joined("xa-dong", vec!["thon-1".into(), "thon-2".into()], false, t0);
    b.heard("xa-dong", addr("203.0.113.9:40112"), t0);
    assert_eq!(b.unicast_targets("thon-2"), [addr("203.0.113.9:40112")]);
    let before = b.set_zones("xa-dong", vec!["thon-1".into(), "thon-3".into()]);
    assert_eq!(before, ["thon-1", "thon-2"]);
    assert_eq!(b.unicast_targets("thon-2"), []);
    assert_eq!(b.unicast_targets("thon-3"), [addr("203.0.113.9:40112")]);
    assert_eq!(b.set_zones("stranger", vec!["thon-1".into()]), Vec::<String>::new());
}

#[test]
fn leaving_drops_a_unicast_binding_at_once() {
    let t0 = Instant::now();
    let mut b = bindings();
    b.joined("xa-dong", zones(), false, t0);
    b.heard("xa-dong", addr("203.0.113.9:40112"), t0);
    assert_eq!(b.left("xa-dong"), Some(Change::Dropped { speaker: "xa-dong".into(), address: Some(addr("203.0.113.9:40112")) }));
    assert_eq!(b.unicast_targets("thon-1"), []);
    assert_eq!(b.left("xa-dong"), None);
}

#[test]
fn a_speaker_that_says_it_has_no_udp_goes_inside_tls_at_once() {
    let t0 = Instant::now();
    let mut b = bindings();
    b.joined("xa-dong", zones(), false, t0);
    assert_eq!(b.without_udp("xa-dong"), Some(Change::FellBackToTls { speaker: "xa-dong".into(), why: WhyTls::HelloWithoutUdp }));
    assert_eq!(b.seen("xa-dong").unwrap().transport, Some(SpeakerTransport::Tls));
    assert_eq!(b.poll_timeout(), None, "no fallback wait left");
    assert_eq!(b.without_udp("xa-dong"), None, "already inside TLS");
    assert_eq!(b.without_udp("stranger"), None);
    // A multicast speaker keeps its group.
    b.joined("xa-tay", zones(), true, t0);
    assert_eq!(b.without_udp("xa-tay"), None);
}

#[test]
fn keepalives_inside_tls_keep_it_online_but_never_give_it_an_address() {
    let t0 = Instant::now();
    let mut b = bindings();
    b.joined("xa-dong", zones(), false, t0);
    assert!(!b.online("xa-dong", t0), "joined, nothing heard: not yet");
    b.handle_timeout(t0 + Duration::from_secs(3));
    assert!(!b.online("xa-dong", t0 + Duration::from_secs(3)), "fallen back, nothing heard yet");
    let heard = t0 + Duration::from_secs(4);
    b.heard_over_tls("xa-dong", heard);
    let seen = b.seen("xa-dong").unwrap();
    assert_eq!((seen.transport, seen.address, seen.last_heard), (Some(SpeakerTransport::Tls), None, Some(heard)));
    assert_eq!(b.unicast_targets("thon-1"), []);
    // Online for the same count of missed keepalives as a unicast one.
    assert!(b.online("xa-dong", heard + KEEPALIVE * 3));
    assert!(!b.online("xa-dong", heard + KEEPALIVE * 3 + KEEPALIVE / 2));
    assert_eq!(b.handle_timeout(heard + KEEPALIVE * 10), [], "over TLS nothing is dropped: the connection is the binding");
    b.heard_over_tls("stranger", heard);
    assert!(!b.online("stranger", heard));
}

#[test]
fn only_the_speakers_inside_tls_are_listed_for_their_zones() {
    let t0 = Instant::now();
    let mut b = bindings();
    b.joined("c-tls", vec!["thon-1".into(), "thon-2".into()], false, t0);
    b.joined("b-unicast", zones(), false, t0);
    b.joined("a-tls", zones(), false, t0);
    b.heard("b-unicast", addr("203.0.113.9:40112"), t0);
    b.without_udp("c-tls");
    b.without_udp("a-tls");
    assert_eq!(b.tls_speakers("thon-1").collect::<Vec<_>>(), ["a-tls", "c-tls"]);
    assert_eq!(b.tls_speakers("thon-2").collect::<Vec<_>>(), ["c-tls"]);
    assert_eq!(b.tls_speakers("thon-3").count(), 0);
    assert_eq!(b.unicast_targets("thon-1"), [addr("203.0.113.9:40112")]);
}

#[test]
fn udp_that_stops_mid_stream_drops_the_binding_then_falls_back_to_tls() {
    let t0 = Instant::now();
    let mut b = bindings();
    b.joined("xa-dong", zones(), false, t0);
    b.heard("xa-dong", addr("203.0.113.9:40112"), t0);
    let dropped = t0 + KEEPALIVE * 3 + KEEPALIVE / 2;
    assert!(matches!(b.handle_timeout(dropped)[..], [Change::Dropped { .. }]));
    assert_eq!(b.poll_timeout(), Some(dropped + Duration::from_secs(3)));
    assert_eq!(b.handle_timeout(dropped + Duration::from_secs(3)), [Change::FellBackToTls { speaker: "xa-dong".into(), why: WhyTls::NothingByUdp }]);
    assert_eq!(b.tls_speakers("thon-1").collect::<Vec<_>>(), ["xa-dong"]);
}

#[test]
fn a_speaker_that_hears_no_udp_goes_inside_tls_although_its_keepalives_authenticate() {
    let t0 = Instant::now();
    let mut b = bindings();
    b.joined("xa-dong", zones(), false, t0);
    b.heard("xa-dong", addr("203.0.113.9:40112"), t0);
    assert_eq!(b.unicast_targets("thon-1"), [addr("203.0.113.9:40112")]);
    let down = t0 + Duration::from_secs(1);
    assert_eq!(b.downstream("xa-dong", false), Some(Change::FellBackToTls { speaker: "xa-dong".into(), why: WhyTls::SpeakerHearsNoUdp }));
    assert_eq!(b.unicast_targets("thon-1"), [], "no more unicast into the void");
    assert_eq!(b.tls_speakers("thon-1").collect::<Vec<_>>(), ["xa-dong"]);
    assert_eq!(b.downstream("xa-dong", false), None, "said already");
    // Its keepalives go on authenticating by UDP: alive, but they win
    // nothing back, from any address.
    for (n, from) in ["203.0.113.9:40112", "203.0.113.9:51000"].into_iter().enumerate() {
        assert_eq!(b.heard("xa-dong", addr(from), down + KEEPALIVE * (n as u32 + 1)), None);
    }
    let seen = b.seen("xa-dong").unwrap();
    assert_eq!((seen.transport, seen.address), (Some(SpeakerTransport::Tls), None), "listed tls, at the connection's address");
    assert!(b.online("xa-dong", down + KEEPALIVE * 3));
    assert_eq!(b.handle_timeout(down + KEEPALIVE * 3), [], "nothing times out inside TLS");
    // The answers come again: unicast to the latest keepalive's address.
    assert_eq!(
        b.downstream("xa-dong", true),
        Some(Change::Adopted { speaker: "xa-dong".into(), address: addr("203.0.113.9:51000"), previous: None })
    );
    assert_eq!(b.unicast_targets("thon-1"), [addr("203.0.113.9:51000")]);
    assert_eq!(b.tls_speakers("thon-1").count(), 0);
    assert_eq!(b.downstream("xa-dong", true), None, "said already");
}

#[test]
fn hearing_no_udp_before_any_keepalive_authenticated_needs_no_fallback_wait_and_the_next_keepalive_after_udp_comes_back_wins_unicast() {
    let t0 = Instant::now();
    let mut b = bindings();
    b.joined("xa-dong", zones(), false, t0);
    assert!(matches!(b.downstream("xa-dong", false), Some(Change::FellBackToTls { why: WhyTls::SpeakerHearsNoUdp, .. })));
    assert_eq!(b.poll_timeout(), None, "no fallback wait left");
    // UDP reaches it again before any keepalive of its came by UDP:
    // nothing to send to yet; the next authenticated one wins unicast.
    assert_eq!(b.downstream("xa-dong", true), None);
    assert_eq!(b.seen("xa-dong").unwrap().transport, Some(SpeakerTransport::Tls));
    let change = b.heard("xa-dong", addr("203.0.113.9:40112"), t0 + KEEPALIVE);
    assert_eq!(change, Some(Change::Adopted { speaker: "xa-dong".into(), address: addr("203.0.113.9:40112"), previous: None }));
}

#[test]
fn a_multicast_speaker_or_a_stranger_saying_it_hears_no_udp_changes_nothing() {
    let t0 = Instant::now();
    let mut b = bindings();
    b.joined("xa-tay", zones(), true, t0);
    b.heard("xa-tay", addr("192.0.2.7:5004"), t0);
    assert_eq!(b.downstream("xa-tay", false), None);
    assert_eq!(b.seen("xa-tay").unwrap().transport, Some(SpeakerTransport::Multicast));
    assert_eq!(b.downstream("stranger", false), None);
}
