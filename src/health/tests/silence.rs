//! Silence: an RTCP-probed speaker goes offline only while its zone sends.

use super::*;

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
