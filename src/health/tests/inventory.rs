//! Config reloads, events, snapshots and state names.

use super::*;

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
