//! Reports from addresses not in a zone's inventory, and their bound.

use super::*;

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
    assert_eq!(m.snapshot().len(), 2 + monitor::MAX_UNREGISTERED);
    assert_eq!(events(&mut m).len(), monitor::MAX_UNREGISTERED);
    assert_eq!(
        m.dropped_strangers(),
        1000 - monitor::MAX_UNREGISTERED as u64
    );
}
