//! Our own RTCP heard back, and our SSRC from someone else (RFC 3550 §8.2):
//! never a participant. Made-up reports; the interface address is from the
//! documentation range so it cannot be mistaken for a speaker's.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use super::{monitor, report, transitions, OUR_SSRC};
use crate::health::monitor::MAX_UNREGISTERED;
use crate::health::{HealthMonitor, ReportOrigin};

const INTERFACE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
const OTHER_ZONE_SSRC: u32 = 0x0bad_cafe;

/// The monitor of `super::monitor` with a second zone and our interface.
fn ours(t0: Instant) -> HealthMonitor {
    let mut m = monitor(t0);
    m.set_zone_ssrc("thon-2", OTHER_ZONE_SSRC);
    m.set_own_address(INTERFACE);
    m
}

/// What the daemon itself sends on an idle zone: an RR without blocks and
/// SDES CNAME `loa@<interface>`, here as heard back from `from`.
fn own_report(zone: &str, ssrc: u32, from: IpAddr) -> crate::health::Report {
    crate::health::Report {
        reporter_ssrc: ssrc,
        from: SocketAddr::new(from, 40_000),
        cname: Some(format!("loa@{INTERFACE}")),
        ..report(zone, 1, Vec::new())
    }
}

#[test]
fn our_own_report_looped_back_is_not_an_endpoint() {
    let t0 = Instant::now();
    let mut m = ours(t0);
    // The RR of an idle zone and the SR of another, both from our interface.
    let rr = m.handle_report(t0, own_report("thon-1", OUR_SSRC, INTERFACE));
    let sr = m.handle_report(t0, own_report("thon-1", OTHER_ZONE_SSRC, INTERFACE));
    assert_eq!(
        (rr, sr),
        (ReportOrigin::OwnLoopback, ReportOrigin::OwnLoopback)
    );
    assert_eq!(m.own_loopbacks(), 2);
    assert!(
        m.snapshot().iter().all(|e| e.address != INTERFACE),
        "{:#?}",
        m.snapshot()
    );
    assert_eq!(transitions(&mut m), []);
    assert_eq!(m.zone_counts("thon-1"), (0, 0, 0, 2));
}

#[test]
fn our_ssrc_from_another_address_is_reported_once_and_never_an_endpoint() {
    let t0 = Instant::now();
    let mut m = ours(t0);
    let forger = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    let first = m.handle_report(t0, own_report("thon-1", OUR_SSRC, forger));
    let again = m.handle_report(t0, own_report("thon-1", OTHER_ZONE_SSRC, forger));
    assert_eq!(first, ReportOrigin::OurSsrcFromElsewhere { first: true });
    assert_eq!(again, ReportOrigin::OurSsrcFromElsewhere { first: false });
    assert!(m.snapshot().iter().all(|e| e.address != forger));
    assert_eq!(transitions(&mut m), []);
    assert_eq!(m.own_loopbacks(), 0);
}

#[test]
fn a_receiver_on_our_own_address_with_its_own_ssrc_is_still_judged() {
    // A monitoring receiver on the daemon's box (ffmpeg, `loa speaker`)
    // reports from the interface address with its own SSRC: it is a
    // participant like any other — here one that is not in the inventory.
    let t0 = Instant::now();
    let mut m = ours(t0);
    let origin = m.handle_report(
        t0,
        crate::health::Report {
            from: SocketAddr::new(INTERFACE, 5005),
            ..report("thon-1", 1, Vec::new())
        },
    );
    assert_eq!(origin, ReportOrigin::Endpoint);
    let entry = m
        .snapshot()
        .into_iter()
        .find(|e| e.address == INTERFACE)
        .unwrap();
    assert_eq!(entry.state, crate::health::State::Unregistered);
}

#[test]
fn without_a_known_interface_every_report_with_our_ssrc_is_our_own() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    let far = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5));
    assert_eq!(
        m.handle_report(t0, own_report("thon-1", OUR_SSRC, far)),
        ReportOrigin::OwnLoopback
    );
    assert!(m.snapshot().iter().all(|e| e.address != far));
}

#[test]
fn addresses_using_our_ssrc_are_remembered_up_to_the_bound() {
    let t0 = Instant::now();
    let mut m = ours(t0);
    let firsts = (0..MAX_UNREGISTERED + 50)
        .map(|i| {
            let from = IpAddr::V4(Ipv4Addr::new(100, 64, (i / 250) as u8, (i % 250) as u8 + 1));
            m.handle_report(t0, own_report("thon-1", OUR_SSRC, from))
        })
        .filter(|o| *o == ReportOrigin::OurSsrcFromElsewhere { first: true })
        .count();
    assert_eq!(firsts, MAX_UNREGISTERED);
    assert_eq!(m.snapshot().len(), 2, "only the inventory");
}
