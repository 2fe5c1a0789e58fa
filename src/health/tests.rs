//! Health monitor behaviour with made-up instants, and probe executors
//! against loopback listeners started by the tests themselves.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::*;
use crate::rtp::rtcp::ReportBlock;

const OUR_SSRC: u32 = 0x1234_5678;

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn secs(t0: Instant, s: f64) -> Instant {
    t0 + Duration::from_secs_f64(s)
}

fn spec(zone: &str, name: &str, last: u8) -> EndpointSpec {
    EndpointSpec {
        zone: zone.into(),
        name: name.into(),
        address: ip(last),
        probe: Probe::Rtcp,
        probe_interval: Duration::from_secs(10),
        probe_timeout: Duration::from_secs(2),
    }
}

fn tcp_spec(zone: &str, name: &str, last: u8) -> EndpointSpec {
    EndpointSpec {
        probe: Probe::Tcp { port: 80 },
        ..spec(zone, name, last)
    }
}

fn block(fraction_lost: u8, jitter_units: u32) -> ReportBlock {
    ReportBlock {
        ssrc: OUR_SSRC,
        fraction_lost,
        cumulative_lost: 0,
        extended_sequence_number: 1000,
        interarrival_jitter: jitter_units,
        last_sender_report: 0,
        delay_since_last_sender_report: 0,
    }
}

fn report(zone: &str, last: u8, blocks: Vec<ReportBlock>) -> Report {
    Report {
        zone: zone.into(),
        from: SocketAddr::new(ip(last), 5005),
        reporter_ssrc: 0xabcd,
        cname: Some(format!("speaker@{}", ip(last))),
        blocks,
        arrival_ntp_mid32: 0,
    }
}

/// A monitor for zone "thon-1" with speakers "a" (.1) and "b" (.2), our SSRC set.
fn monitor(t0: Instant) -> HealthMonitor {
    let mut m = HealthMonitor::new(
        HealthConfig::default(),
        vec![spec("thon-1", "a", 1), spec("thon-1", "b", 2)],
        t0,
    );
    m.set_zone_ssrc("thon-1", OUR_SSRC);
    m
}

fn events(m: &mut HealthMonitor) -> Vec<HealthEvent> {
    std::iter::from_fn(|| m.poll_event()).collect()
}

fn transitions(m: &mut HealthMonitor) -> Vec<(String, State, State)> {
    events(m)
        .into_iter()
        .map(|e| (e.endpoint, e.from, e.to))
        .collect()
}

fn status(m: &HealthMonitor, zone: &str, name: &str) -> EndpointStatus {
    m.snapshot()
        .into_iter()
        .find(|s| s.zone == zone && s.name == name)
        .expect("endpoint in snapshot")
}

fn ten_percent() -> u8 {
    26 // 26/256 = 10.2 %
}

fn jitter_ms(ms: u32) -> u32 {
    ms * 48 // 48 kHz timestamp units
}

#[test]
fn endpoints_start_unknown() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    assert_eq!(status(&m, "thon-1", "a").state, State::Unknown);
    assert_eq!(m.zone_counts("thon-1"), (0, 0, 0, 2));
    assert!(m.poll_event().is_none());
}

#[test]
fn online_after_first_report_whatever_the_source_port() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    let mut r = report("thon-1", 1, vec![block(0, jitter_ms(1))]);
    r.from.set_port(40_123);
    m.handle_report(secs(t0, 1.0), r);

    let events = events(&mut m);
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (e.zone.as_str(), e.endpoint.as_str(), e.address),
        ("thon-1", "a", ip(1))
    );
    assert_eq!(
        (e.from, e.to, e.at),
        (State::Unknown, State::Online, secs(t0, 1.0))
    );
    assert_eq!(e.detail, "loss 0.0 %, jitter 1.0 ms");

    let s = status(&m, "thon-1", "a");
    assert_eq!(s.state, State::Online);
    assert_eq!(s.since, secs(t0, 1.0));
    assert_eq!(s.last_report, Some(secs(t0, 1.0)));
    assert_eq!(s.cname.as_deref(), Some("speaker@127.0.0.1"));
    assert!(s.registered);
    assert_eq!(m.zone_counts("thon-1"), (1, 0, 0, 1));
}

#[test]
fn degraded_at_ten_percent_loss() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    m.handle_report(t0, report("thon-1", 1, vec![block(ten_percent(), 0)]));
    let events = events(&mut m);
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].from, events[0].to),
        (State::Unknown, State::Degraded)
    );
    assert_eq!(events[0].detail, "loss 10.2 %, jitter 0.0 ms");
    let s = status(&m, "thon-1", "a");
    assert!((s.loss_pct.unwrap() - 10.15625).abs() < 1e-9);
}

#[test]
fn degraded_at_forty_ms_jitter() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    m.handle_report(t0, report("thon-1", 1, vec![block(0, jitter_ms(40))]));
    assert_eq!(
        transitions(&mut m),
        vec![("a".into(), State::Unknown, State::Degraded)]
    );
    assert_eq!(status(&m, "thon-1", "a").jitter_ms, Some(40.0));
}

#[test]
fn loss_just_under_the_threshold_is_online() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    m.handle_report(t0, report("thon-1", 1, vec![block(12, jitter_ms(29))])); // 4.7 %
    assert_eq!(status(&m, "thon-1", "a").state, State::Online);
}

#[test]
fn a_speaker_hovering_at_the_threshold_does_not_flap() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    // fraction_lost is loss × 256: 6 % (bad), then 4 % and 3.1 % (in the
    // band below 5 % but not under 60 % of it), then 2.7 % (clear).
    let pct = |p: f64| (p * 256.0 / 100.0).round() as u8;
    m.handle_report(t0, report("thon-1", 1, vec![block(0, 0)]));
    for (i, loss) in [6.0, 4.0, 3.1, 5.5, 4.5, 2.7].into_iter().enumerate() {
        m.handle_report(secs(t0, 5.0 * (i + 1) as f64), report("thon-1", 1, vec![block(pct(loss), 0)]));
    }
    assert_eq!(
        transitions(&mut m),
        vec![
            ("a".into(), State::Unknown, State::Online),
            ("a".into(), State::Online, State::Degraded),
            ("a".into(), State::Degraded, State::Online),
        ]
    );
}

#[test]
fn single_good_report_returns_degraded_to_online() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    m.handle_report(t0, report("thon-1", 1, vec![block(0, 0)]));
    m.handle_report(
        secs(t0, 5.0),
        report("thon-1", 1, vec![block(ten_percent(), 0)]),
    );
    m.handle_report(
        secs(t0, 10.0),
        report("thon-1", 1, vec![block(0, jitter_ms(2))]),
    );
    assert_eq!(
        transitions(&mut m),
        vec![
            ("a".into(), State::Unknown, State::Online),
            ("a".into(), State::Online, State::Degraded),
            ("a".into(), State::Degraded, State::Online),
        ]
    );
}

#[test]
fn blocks_about_another_sender_do_not_judge_quality_but_prove_life() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    let other = ReportBlock {
        ssrc: 0x0bad,
        ..block(200, u32::MAX)
    };
    m.handle_report(t0, report("thon-1", 1, vec![other]));
    let s = status(&m, "thon-1", "a");
    assert_eq!(s.state, State::Online);
    assert_eq!((s.loss_pct, s.jitter_ms), (None, None));

    // An empty RR keeps a degraded speaker degraded: it says nothing about quality.
    m.handle_report(
        secs(t0, 5.0),
        report("thon-1", 1, vec![block(ten_percent(), 0)]),
    );
    m.handle_report(secs(t0, 10.0), report("thon-1", 1, vec![]));
    assert_eq!(status(&m, "thon-1", "a").state, State::Degraded);
}

#[test]
fn offline_after_three_silent_intervals_while_sending() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    m.set_zone_sending("thon-1", true, t0);
    m.handle_report(secs(t0, 1.0), report("thon-1", 1, vec![block(0, 0)]));
    m.handle_report(secs(t0, 1.0), report("thon-1", 2, vec![block(0, 0)]));
    m.handle_report(secs(t0, 14.0), report("thon-1", 2, vec![block(0, 0)]));
    events(&mut m);

    assert_eq!(m.poll_timeout(), Some(secs(t0, 16.0)));
    m.handle_timeout(secs(t0, 15.9));
    assert!(m.poll_event().is_none());
    m.handle_timeout(secs(t0, 16.0));
    let events = events(&mut m);
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].endpoint.as_str(), events[0].from, events[0].to),
        ("a", State::Online, State::Offline)
    );
    assert_eq!(events[0].detail, "no report for 15 s");
    assert_eq!(m.zone_counts("thon-1"), (1, 0, 1, 0));

    // The next report brings it back.
    m.handle_report(secs(t0, 20.0), report("thon-1", 1, vec![block(0, 0)]));
    assert_eq!(
        transitions(&mut m),
        vec![("a".into(), State::Offline, State::Online)]
    );
}

#[test]
fn silence_while_the_zone_is_idle_does_not_make_offline() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    m.handle_report(t0, report("thon-1", 1, vec![block(0, 0)]));
    events(&mut m);
    assert_eq!(m.poll_timeout(), None);
    m.handle_timeout(secs(t0, 3600.0));
    assert!(m.poll_event().is_none());
    assert_eq!(status(&m, "thon-1", "a").state, State::Online);

    // Silence counts from the start of sending, not from the last report.
    m.set_zone_sending("thon-1", true, secs(t0, 3600.0));
    m.handle_timeout(secs(t0, 3614.0));
    assert!(m.poll_event().is_none());
    m.handle_timeout(secs(t0, 3615.0));
    assert_eq!(
        transitions(&mut m),
        vec![
            ("a".into(), State::Online, State::Offline),
            ("b".into(), State::Unknown, State::Offline)
        ]
    );

    // Stopping does not revive anyone.
    m.set_zone_sending("thon-1", false, secs(t0, 3620.0));
    m.handle_timeout(secs(t0, 4000.0));
    assert_eq!(status(&m, "thon-1", "a").state, State::Offline);
    assert_eq!(m.poll_timeout(), None);
}

#[test]
fn report_from_an_address_not_in_the_inventory_is_unregistered() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    m.handle_report(t0, report("thon-1", 9, vec![block(0, 0)]));
    let events = events(&mut m);
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (e.endpoint.as_str(), e.address, e.from, e.to),
        ("127.0.0.9", ip(9), State::Unknown, State::Unregistered)
    );
    assert!(e.detail.contains("security warning"), "{}", e.detail);
    assert!(
        e.detail
            .contains("reports from 127.0.0.9, not in the inventory of zone thon-1"),
        "{}",
        e.detail
    );

    // Good reports never make it online, and there is no second event.
    m.handle_report(secs(t0, 5.0), report("thon-1", 9, vec![block(0, 0)]));
    assert!(m.poll_event().is_none());
    let snapshot = m.snapshot();
    let last = snapshot.last().unwrap();
    assert_eq!(
        (last.name.as_str(), last.state, last.registered),
        ("127.0.0.9", State::Unregistered, false)
    );
    assert_eq!(last.last_report, Some(secs(t0, 5.0)));
    assert_eq!(m.zone_counts("thon-1"), (0, 0, 0, 2));
}

#[test]
fn report_from_another_zones_endpoint_is_unregistered_in_this_zone() {
    let t0 = Instant::now();
    let mut m = HealthMonitor::new(
        HealthConfig::default(),
        vec![spec("thon-1", "a", 1), spec("thon-2", "c", 3)],
        t0,
    );
    m.handle_report(t0, report("thon-1", 3, vec![]));
    assert_eq!(
        transitions(&mut m),
        vec![("127.0.0.3".into(), State::Unknown, State::Unregistered)]
    );
    assert_eq!(status(&m, "thon-2", "c").state, State::Unknown);
    assert_eq!(status(&m, "thon-1", "127.0.0.3").state, State::Unregistered);
}

#[test]
fn unregistered_entries_are_capped_against_floods() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    for i in 0..1000u32 {
        let mut r = report("thon-1", 1, vec![]);
        r.from = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), 5005);
        m.handle_report(t0, r);
    }
    assert_eq!(m.snapshot().len(), 2 + super::monitor::MAX_UNREGISTERED);
    assert_eq!(events(&mut m).len(), super::monitor::MAX_UNREGISTERED);
    assert_eq!(
        m.dropped_strangers(),
        1000 - super::monitor::MAX_UNREGISTERED as u64
    );
}

#[test]
fn rtt_from_lsr_and_dlsr_follows_rfc3550_example() {
    // RFC 3550 §6.4.1, figure 2: A = 46864.500 s, LSR = 46853.125 s,
    // DLSR = 5.250 s, so the round trip is 0x0006:2000 = 6.125 s.
    let t0 = Instant::now();
    let mut m = monitor(t0);
    let mut r = report(
        "thon-1",
        1,
        vec![ReportBlock {
            last_sender_report: 0xb705_2000,
            delay_since_last_sender_report: 0x0005_4000,
            ..block(0, 0)
        }],
    );
    r.arrival_ntp_mid32 = 0xb710_8000;
    m.handle_report(t0, r);
    assert_eq!(status(&m, "thon-1", "a").rtt_ms, Some(6125.0));
}

#[test]
fn rtt_is_skipped_without_sender_report_or_when_negative() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    let mut r = report("thon-1", 1, vec![block(0, 0)]);
    r.arrival_ntp_mid32 = 0xb710_8000;
    m.handle_report(t0, r.clone());
    assert_eq!(status(&m, "thon-1", "a").rtt_ms, None);

    // LSR in the future, and a delay longer than the time since the SR.
    r.blocks[0].last_sender_report = 0xb711_0000;
    m.handle_report(t0, r.clone());
    r.blocks[0].last_sender_report = 0xb710_0000;
    r.blocks[0].delay_since_last_sender_report = 0x0001_0000;
    m.handle_report(t0, r);
    assert_eq!(status(&m, "thon-1", "a").rtt_ms, None);
}

#[test]
fn rtt_survives_ntp_wrap() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    let mut r = report(
        "thon-1",
        1,
        vec![ReportBlock {
            last_sender_report: 0xffff_8000, // half a second before the wrap
            delay_since_last_sender_report: 0x0000_4000,
            ..block(0, 0)
        }],
    );
    r.arrival_ntp_mid32 = 0x0000_4000; // a quarter second after it
    m.handle_report(t0, r);
    assert_eq!(status(&m, "thon-1", "a").rtt_ms, Some(500.0));
}

#[test]
fn hostile_blocks_never_panic_or_produce_nan() {
    let t0 = Instant::now();
    let config = HealthConfig {
        report_interval: Duration::MAX,
        offline_intervals: u32::MAX,
        clock_rate: 0,
        ..HealthConfig::default()
    };
    let mut m = HealthMonitor::new(config, vec![spec("thon-1", "a", 1)], t0);
    m.set_zone_ssrc("thon-1", OUR_SSRC);
    m.set_zone_sending("thon-1", true, t0);
    let hostile = ReportBlock {
        ssrc: OUR_SSRC,
        fraction_lost: 255,
        cumulative_lost: u32::MAX,
        extended_sequence_number: u32::MAX,
        interarrival_jitter: u32::MAX,
        last_sender_report: u32::MAX,
        delay_since_last_sender_report: u32::MAX,
    };
    for from in [1, 66] {
        let mut r = report("thon-1", from, vec![hostile; 64]);
        r.arrival_ntp_mid32 = 1;
        r.cname = None;
        m.handle_report(t0, r);
    }
    m.handle_timeout(secs(t0, 1e6));
    let _ = m.poll_timeout();
    for s in m.snapshot() {
        for v in [s.loss_pct, s.jitter_ms, s.rtt_ms, s.probe_ms]
            .into_iter()
            .flatten()
        {
            assert!(v.is_finite(), "{s:?}");
        }
    }
    assert_eq!(status(&m, "thon-1", "a").state, State::Degraded);
}

#[test]
fn probe_is_due_at_start_then_every_interval() {
    let t0 = Instant::now();
    let mut m = HealthMonitor::new(
        HealthConfig::default(),
        vec![spec("thon-1", "rtcp-only", 1), tcp_spec("thon-1", "p", 2)],
        t0,
    );
    assert_eq!(m.poll_timeout(), Some(t0));
    let request = m.poll_probe(t0).expect("probe due at start");
    assert_eq!(
        request,
        ProbeRequest {
            zone: "thon-1".into(),
            endpoint: "p".into(),
            address: ip(2),
            probe: Probe::Tcp { port: 80 },
            timeout: Duration::from_secs(2),
        }
    );
    assert!(
        m.poll_probe(t0).is_none(),
        "rtcp endpoints are never probed"
    );

    m.handle_probe_result(secs(t0, 0.01), "thon-1", "p", Ok(Duration::from_millis(10)));
    assert_eq!(m.poll_timeout(), Some(secs(t0, 10.0)));
    assert!(m.poll_probe(secs(t0, 9.9)).is_none());
    assert!(m.poll_probe(secs(t0, 10.0)).is_some());
}

#[test]
fn probe_is_not_reissued_while_in_flight() {
    let t0 = Instant::now();
    let mut m = HealthMonitor::new(
        HealthConfig::default(),
        vec![tcp_spec("thon-1", "p", 2)],
        t0,
    );
    assert!(m.poll_probe(t0).is_some());
    // In flight: the deadline is the executor's timeout plus grace, not the next interval.
    assert_eq!(m.poll_timeout(), Some(secs(t0, 3.0)));
    assert!(m.poll_probe(secs(t0, 2.5)).is_none());
    assert!(m.poll_probe(secs(t0, 30.0)).is_none(), "still in flight");
}

#[test]
fn probe_success_is_online_and_failure_is_offline() {
    let t0 = Instant::now();
    let mut m = HealthMonitor::new(
        HealthConfig::default(),
        vec![tcp_spec("thon-1", "p", 2)],
        t0,
    );
    m.poll_probe(t0).unwrap();
    m.handle_probe_result(secs(t0, 0.1), "thon-1", "p", Ok(Duration::from_millis(3)));
    m.poll_probe(secs(t0, 10.0)).unwrap();
    m.handle_probe_result(
        secs(t0, 10.1),
        "thon-1",
        "p",
        Err("connection refused".into()),
    );
    m.poll_probe(secs(t0, 20.0)).unwrap();
    m.handle_probe_result(
        secs(t0, 22.0),
        "thon-1",
        "p",
        Err("timed out after 2 s".into()),
    );

    let events = events(&mut m);
    let got: Vec<_> = events
        .iter()
        .map(|e| (e.from, e.to, e.detail.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (State::Unknown, State::Online, "probe tcp:80 ok in 3 ms"),
            (
                State::Online,
                State::Offline,
                "probe tcp:80 failed: connection refused"
            ),
        ]
    );
    assert_eq!(status(&m, "thon-1", "p").probe_ms, Some(3.0));
}

#[test]
fn probe_without_answer_is_offline_at_its_deadline() {
    let t0 = Instant::now();
    let mut m = HealthMonitor::new(
        HealthConfig::default(),
        vec![tcp_spec("thon-1", "p", 2)],
        t0,
    );
    m.poll_probe(t0).unwrap();
    m.handle_timeout(secs(t0, 3.0));
    let events = events(&mut m);
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].from, events[0].to),
        (State::Unknown, State::Offline)
    );
    assert_eq!(
        events[0].detail,
        "probe tcp:80 failed: no answer within 2 s"
    );

    // A late answer is stale and ignored; the next probe is due on schedule.
    m.handle_probe_result(secs(t0, 4.0), "thon-1", "p", Ok(Duration::from_secs(4)));
    assert_eq!(status(&m, "thon-1", "p").state, State::Offline);
    assert_eq!(m.poll_timeout(), Some(secs(t0, 10.0)));
    assert!(m.poll_probe(secs(t0, 10.0)).is_some());
}

#[test]
fn probed_endpoint_is_not_offline_from_rtcp_silence_but_uses_rtcp_quality() {
    let t0 = Instant::now();
    let mut m = HealthMonitor::new(
        HealthConfig::default(),
        vec![tcp_spec("thon-1", "p", 2)],
        t0,
    );
    m.set_zone_ssrc("thon-1", OUR_SSRC);
    m.set_zone_sending("thon-1", true, t0);
    m.poll_probe(t0).unwrap();
    m.handle_probe_result(t0, "thon-1", "p", Ok(Duration::from_millis(1)));
    m.handle_report(
        secs(t0, 1.0),
        report("thon-1", 2, vec![block(ten_percent(), 0)]),
    );
    assert_eq!(status(&m, "thon-1", "p").state, State::Degraded);

    // A successful probe says nothing about quality: still degraded.
    m.poll_probe(secs(t0, 10.0)).unwrap();
    m.handle_probe_result(secs(t0, 10.0), "thon-1", "p", Ok(Duration::from_millis(1)));
    m.handle_timeout(secs(t0, 100.0));
    assert_eq!(status(&m, "thon-1", "p").state, State::Degraded);
}

#[test]
fn set_inventory_keeps_state_of_endpoints_that_remain() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    m.handle_report(t0, report("thon-1", 1, vec![block(ten_percent(), 0)]));
    m.handle_report(t0, report("thon-1", 2, vec![block(0, 0)]));
    m.handle_report(t0, report("thon-1", 7, vec![]));
    events(&mut m);

    // "a" stays, "b" moves to a new address, .7 becomes a listed speaker.
    m.set_inventory(
        vec![
            spec("thon-1", "new", 7),
            spec("thon-1", "a", 1),
            spec("thon-1", "b", 4),
        ],
        secs(t0, 60.0),
    );
    assert!(m.poll_event().is_none(), "a reload is not a transition");
    let snapshot: Vec<_> = m
        .snapshot()
        .into_iter()
        .map(|s| (s.name, s.state, s.since))
        .collect();
    assert_eq!(
        snapshot,
        vec![
            ("new".into(), State::Unknown, secs(t0, 60.0)),
            ("a".into(), State::Degraded, t0),
            ("b".into(), State::Unknown, secs(t0, 60.0)),
        ]
    );
}

#[test]
fn set_inventory_keeps_a_probe_in_flight() {
    let t0 = Instant::now();
    let mut m = HealthMonitor::new(
        HealthConfig::default(),
        vec![tcp_spec("thon-1", "p", 2)],
        t0,
    );
    m.poll_probe(t0).unwrap();
    m.set_inventory(vec![tcp_spec("thon-1", "p", 2)], secs(t0, 0.5));
    assert!(m.poll_probe(secs(t0, 0.5)).is_none());
    m.handle_probe_result(secs(t0, 1.0), "thon-1", "p", Ok(Duration::from_millis(5)));
    assert_eq!(status(&m, "thon-1", "p").state, State::Online);
}

#[test]
fn events_are_emitted_exactly_once_per_transition() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    m.set_zone_sending("thon-1", true, t0);
    for i in 0..5 {
        m.handle_report(
            secs(t0, f64::from(i)),
            report("thon-1", 1, vec![block(0, 0)]),
        );
    }
    for i in 5..10 {
        m.handle_report(
            secs(t0, f64::from(i)),
            report("thon-1", 1, vec![block(ten_percent(), 0)]),
        );
    }
    for _ in 0..3 {
        m.handle_timeout(secs(t0, 100.0));
    }
    assert_eq!(
        transitions(&mut m),
        vec![
            ("a".into(), State::Unknown, State::Online),
            ("a".into(), State::Online, State::Degraded),
            ("a".into(), State::Degraded, State::Offline),
            ("b".into(), State::Unknown, State::Offline),
        ]
    );
    assert!(m.poll_event().is_none());
}

#[test]
fn snapshot_lists_inventory_order_then_unregistered() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    m.handle_report(t0, report("thon-1", 9, vec![]));
    m.handle_report(t0, report("thon-1", 2, vec![]));
    m.handle_report(t0, report("thon-1", 8, vec![]));
    let names: Vec<_> = m.snapshot().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["a", "b", "127.0.0.9", "127.0.0.8"]);
}

#[test]
fn state_names_are_lowercase() {
    let names: Vec<_> = [
        State::Unknown,
        State::Online,
        State::Degraded,
        State::Offline,
        State::Unregistered,
    ]
    .iter()
    .map(|s| (s.as_str(), serde_json::to_string(s).unwrap()))
    .collect();
    for (name, json) in names {
        assert_eq!(json, format!("\"{name}\""));
    }
    assert_eq!(State::Unregistered.to_string(), "unregistered");
}

mod probes {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use crate::health::{run_probe, Probe, ProbeRequest};

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn request(probe: Probe, timeout: Duration) -> ProbeRequest {
        ProbeRequest {
            zone: "thon-1".into(),
            endpoint: "a".into(),
            address: LOOPBACK,
            probe,
            timeout,
        }
    }

    /// One-shot HTTP server on loopback answering `answer` after reading the
    /// request head; returns the URL and what the server received.
    async fn http_server(answer: &'static [u8]) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut received = Vec::new();
            let mut buf = [0u8; 512];
            while !received.ends_with(b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                received.extend_from_slice(&buf[..n]);
            }
            stream.write_all(answer).await.unwrap();
            String::from_utf8(received).unwrap()
        });
        (format!("http://127.0.0.1:{port}/status"), server)
    }

    #[tokio::test]
    async fn tcp_probe_to_a_listening_port_succeeds() {
        let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let rtt = run_probe(&request(Probe::Tcp { port }, Duration::from_secs(2)))
            .await
            .unwrap();
        assert!(rtt < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn tcp_probe_to_a_closed_port_is_refused() {
        let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let err = run_probe(&request(Probe::Tcp { port }, Duration::from_secs(2)))
            .await
            .unwrap_err();
        assert_eq!(err, "connection refused");
    }

    #[tokio::test]
    async fn http_probe_with_200_succeeds_and_sends_a_plain_get() {
        let (url, server) = http_server(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
        run_probe(&request(
            Probe::Http { url: url.clone() },
            Duration::from_secs(2),
        ))
        .await
        .unwrap();
        let received = server.await.unwrap();
        let host = url
            .trim_start_matches("http://")
            .trim_end_matches("/status");
        assert!(
            received.starts_with("GET /status HTTP/1.0\r\n"),
            "{received}"
        );
        assert!(
            received.contains(&format!("\r\nHost: {host}\r\n")),
            "{received}"
        );
    }

    #[tokio::test]
    async fn http_probe_with_500_fails() {
        let (url, _server) = http_server(b"HTTP/1.1 500 Internal Server Error\r\n\r\n").await;
        let err = run_probe(&request(
            Probe::Http { url: url.clone() },
            Duration::from_secs(2),
        ))
        .await
        .unwrap_err();
        assert_eq!(err, format!("{url} answered 500"));
    }

    #[tokio::test]
    async fn http_probe_with_a_garbage_answer_fails() {
        let (url, _server) = http_server(b"SSH-2.0-OpenSSH_9.2\r\n").await;
        let err = run_probe(&request(
            Probe::Http { url: url.clone() },
            Duration::from_secs(2),
        ))
        .await
        .unwrap_err();
        assert_eq!(err, format!("{url} did not answer with http"));
    }

    #[tokio::test]
    async fn http_probe_to_a_silent_server_times_out() {
        let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/");
        // Accepted by the kernel backlog, never answered.
        let err = run_probe(&request(Probe::Http { url }, Duration::from_millis(200)))
            .await
            .unwrap_err();
        assert_eq!(err, "timed out after 200 ms");
        drop(listener);
    }

    #[tokio::test]
    async fn https_probes_are_refused() {
        let err = run_probe(&request(
            Probe::Http {
                url: "https://127.0.0.1/".into(),
            },
            Duration::from_secs(2),
        ))
        .await
        .unwrap_err();
        assert_eq!(err, "https probes are not supported");
    }
}
