//! Joined speakers (issue 15): known by name, never unregistered, offline
//! by keepalive silence or when their session ends.

use super::*;
use crate::proto::speakers::SpeakerTransport;

const NAT: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1));

fn joined(name: &str, port: u16, blocks: Vec<ReportBlock>) -> Report {
    Report {
        from: SocketAddr::new(NAT, port),
        cname: None,
        joined: Some(JoinedReporter { name: name.into(), transport: SpeakerTransport::Unicast }),
        ..report("thon-1", 1, blocks)
    }
}

fn silence_config() -> HealthConfig {
    HealthConfig { joined_silence: Duration::from_millis(3500), ..HealthConfig::default() }
}

#[test]
fn two_speakers_behind_one_nat_are_two_rows_by_name_with_their_public_ports() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    assert_eq!(m.handle_report(t0, joined("xa-dong", 40_001, vec![block(0, 0)])), ReportOrigin::Endpoint);
    m.handle_report(t0, joined("xa-tay", 40_002, vec![block(0, 0)]));

    let rows: Vec<_> = m.snapshot().into_iter().filter(|s| s.link.is_some()).collect();
    let seen: Vec<_> = rows.iter().map(|s| (s.name.as_str(), s.state, s.registered, s.link.unwrap().public.port())).collect();
    assert_eq!(seen, [("xa-dong", State::Online, true, 40_001), ("xa-tay", State::Online, true, 40_002)]);
    assert!(rows.iter().all(|s| s.link.unwrap().transport == SpeakerTransport::Unicast));
    let events = events(&mut m);
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.to == State::Online && e.link.is_some()), "{events:?}");
}

#[test]
fn a_joined_speaker_is_never_unregistered_even_from_a_listed_or_unknown_address() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    // From the address the inventory lists for "a": still its own row.
    let mut r = joined("xa-dong", 5005, vec![block(0, 0)]);
    r.from = SocketAddr::new(ip(1), 5005);
    m.handle_report(t0, r);
    m.handle_report(t0, joined("xa-tay", 40_002, vec![]));
    assert!(m.snapshot().iter().all(|s| s.state != State::Unregistered));
    assert_eq!(status(&m, "thon-1", "a").state, State::Unknown);
    assert_eq!(status(&m, "thon-1", "xa-dong").state, State::Online);
    assert_eq!(m.zone_counts("thon-1"), (2, 0, 0, 2));
}

#[test]
fn a_new_nat_mapping_moves_the_row_not_adds_one() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    m.handle_report(t0, joined("xa-dong", 40_001, vec![block(0, 0)]));
    m.handle_report(secs(t0, 1.0), joined("xa-dong", 51_234, vec![block(0, 0)]));
    let rows: Vec<_> = m.snapshot().into_iter().filter(|s| s.name == "xa-dong").collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].link.unwrap().public, SocketAddr::new(NAT, 51_234));
}

#[test]
fn loss_in_its_reports_degrades_it_like_a_multicast_speaker() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    m.handle_report(t0, joined("xa-dong", 40_001, vec![block(ten_percent(), 0)]));
    assert_eq!(status(&m, "thon-1", "xa-dong").state, State::Degraded);
    m.handle_report(secs(t0, 1.0), joined("xa-dong", 40_001, vec![block(0, jitter_ms(2))]));
    assert_eq!(
        transitions(&mut m),
        [("xa-dong".into(), State::Unknown, State::Degraded), ("xa-dong".into(), State::Degraded, State::Online)]
    );
}

#[test]
fn keepalive_silence_makes_it_offline_even_while_its_zone_is_idle() {
    let t0 = Instant::now();
    let mut m = HealthMonitor::new(silence_config(), vec![], t0);
    m.set_zone_ssrc("thon-1", OUR_SSRC);
    m.handle_report(t0, joined("xa-dong", 40_001, vec![]));
    m.handle_report(secs(t0, 1.0), joined("xa-dong", 40_001, vec![]));
    events(&mut m);
    assert_eq!(m.poll_timeout(), Some(secs(t0, 4.5)));
    m.handle_timeout(secs(t0, 4.4));
    assert!(m.poll_event().is_none());
    m.handle_timeout(secs(t0, 4.5));
    let events = events(&mut m);
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].from, events[0].to), (State::Online, State::Offline));
    assert_eq!(events[0].detail, "no report for 3.5 s");
    // Offline waits for nothing more; its next keepalive brings it back.
    assert_eq!(m.poll_timeout(), None);
    m.handle_report(secs(t0, 9.0), joined("xa-dong", 40_001, vec![]));
    assert_eq!(transitions(&mut m), [("xa-dong".into(), State::Offline, State::Online)]);
}

#[test]
fn its_session_ending_makes_every_row_of_it_offline_at_once() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    m.handle_report(t0, joined("xa-dong", 40_001, vec![]));
    m.handle_report(t0, Report { zone: "thon-2".into(), ..joined("xa-dong", 40_001, vec![]) });
    m.handle_report(t0, joined("xa-tay", 40_002, vec![]));
    events(&mut m);
    m.handle_left(secs(t0, 2.0), "xa-dong", "revoked by the operator");
    let events = events(&mut m);
    let seen: Vec<_> = events.iter().map(|e| (e.zone.as_str(), e.endpoint.as_str(), e.to, e.detail.as_str())).collect();
    assert_eq!(
        seen,
        [
            ("thon-1", "xa-dong", State::Offline, "revoked by the operator"),
            ("thon-2", "xa-dong", State::Offline, "revoked by the operator")
        ]
    );
    assert_eq!(status(&m, "thon-1", "xa-tay").state, State::Online);
    // Said once: leaving again changes nothing.
    m.handle_left(secs(t0, 3.0), "xa-dong", "the connection closed");
    assert!(m.poll_event().is_none());
}

#[test]
fn a_reload_keeps_joined_speakers() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    m.handle_report(t0, joined("xa-dong", 40_001, vec![]));
    m.set_inventory(vec![spec("thon-1", "a", 1)], secs(t0, 1.0));
    assert_eq!(status(&m, "thon-1", "xa-dong").state, State::Online);
}

fn enrolled(list: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    list.iter().map(|(name, zones)| (name.to_string(), zones.iter().map(|z| z.to_string()).collect())).collect()
}

#[test]
fn an_enrolled_speaker_has_its_rows_before_it_is_heard_and_keeps_them_when_it_reports() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    m.set_enrolled(t0, &enrolled(&[("xa-dong", &["thon-1", "thon-2"]), ("xa-tay", &["thon-1"])]));
    let rows: Vec<_> = m.snapshot().into_iter().filter(|s| s.joined).collect();
    let seen: Vec<_> = rows.iter().map(|s| (s.zone.as_str(), s.name.as_str(), s.state, s.link.is_none(), s.address.is_unspecified())).collect();
    assert_eq!(
        seen,
        [("thon-1", "xa-dong", State::Unknown, true, true), ("thon-2", "xa-dong", State::Unknown, true, true), ("thon-1", "xa-tay", State::Unknown, true, true)]
    );
    assert_eq!(m.zone_counts("thon-1"), (0, 0, 0, 4), "two listed, two enrolled, none heard");

    m.handle_report(secs(t0, 1.0), joined("xa-dong", 40_001, vec![block(0, 0)]));
    let row = status(&m, "thon-1", "xa-dong");
    assert_eq!((row.state, row.link.map(|l| l.public.port()), row.joined), (State::Online, Some(40_001), true));
    assert_eq!(m.snapshot().iter().filter(|s| s.name == "xa-dong").count(), 2, "the same rows, not new ones");
    // Told again (another enrolment): nothing heard is forgotten.
    m.set_enrolled(secs(t0, 2.0), &enrolled(&[("xa-dong", &["thon-1", "thon-2"]), ("xa-tay", &["thon-1"]), ("xa-bac", &["thon-2"])]));
    assert_eq!(status(&m, "thon-1", "xa-dong").state, State::Online);
    assert_eq!(status(&m, "thon-2", "xa-bac").state, State::Unknown);
}

#[test]
fn an_enrolled_speaker_never_heard_goes_offline_after_the_silence_window() {
    let t0 = Instant::now();
    let mut m = HealthMonitor::new(silence_config(), vec![], t0);
    m.set_enrolled(t0, &enrolled(&[("xa-dong", &["thon-1"])]));
    assert_eq!(m.poll_timeout(), Some(secs(t0, 3.5)));
    m.handle_timeout(secs(t0, 3.4));
    assert_eq!(status(&m, "thon-1", "xa-dong").state, State::Unknown);
    m.handle_timeout(secs(t0, 3.5));
    let events = events(&mut m);
    let seen: Vec<_> = events.iter().map(|e| (e.endpoint.as_str(), e.from, e.to, e.detail.as_str())).collect();
    assert_eq!(seen, [("xa-dong", State::Unknown, State::Offline, "no report for 3.5 s")]);
    assert_eq!(m.poll_timeout(), None, "offline: nothing more to wait for");
}

#[test]
fn a_revoked_speaker_and_a_zone_taken_from_one_lose_their_rows() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    m.set_enrolled(t0, &enrolled(&[("xa-dong", &["thon-1", "thon-2"]), ("xa-tay", &["thon-1"])]));
    m.handle_report(t0, joined("xa-tay", 40_002, vec![]));
    m.set_enrolled(secs(t0, 1.0), &enrolled(&[("xa-dong", &["thon-2"])]));
    let rows: Vec<_> = m.snapshot().into_iter().filter(|s| s.joined).map(|s| (s.zone, s.name)).collect();
    assert_eq!(rows, [("thon-2".to_string(), "xa-dong".to_string())], "xa-tay revoked, thon-1 taken from xa-dong");
}
