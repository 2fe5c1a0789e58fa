//! When the monitor asks for TCP/HTTP probes and what their answers do.

use super::*;

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
