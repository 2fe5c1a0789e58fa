//! Quality from report blocks about our stream: online, degraded and the
//! hysteresis between, and report blocks no sane speaker would send.

use super::*;

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
