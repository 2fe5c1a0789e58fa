//! Unauthenticated datagrams at an SRTP zone's port: counted, said at
//! most once a minute per address, with the count since the last line.

use super::*;
use crate::health::unauthenticated::{Unauthenticated, UnauthenticatedLog, LOG_EVERY, MAX_SOURCES};

#[test]
fn a_burst_from_one_address_is_one_line_then_one_line_a_minute_with_the_count() {
    let t0 = Instant::now();
    let mut log = UnauthenticatedLog::default();
    let first = log.handle(t0, "z", ip(66), Unauthenticated::PlainRtcp).expect("the first is said at once");
    assert_eq!((first.count, first.zone_total), (1, 1));
    assert!(first.to_string().starts_with("SECURITY: 1 unauthenticated datagram(s) from 127.0.0.66 at SRTP zone z's RTCP port (the latest: plain RTCP)"), "{first}");
    for n in 1..20 {
        assert_eq!(log.handle(secs(t0, n as f64), "z", ip(66), Unauthenticated::PlainRtcp), None);
    }
    let later = log.handle(t0 + LOG_EVERY, "z", ip(66), Unauthenticated::Garbage).expect("a minute on");
    assert_eq!((later.count, later.zone_total, later.kind), (20, 21, Unauthenticated::Garbage));
    assert_eq!(log.per_zone()["z"], 21);
}

#[test]
fn each_address_is_said_once_and_a_spoofed_flood_is_counted_but_bounded() {
    let t0 = Instant::now();
    let mut log = UnauthenticatedLog::default();
    let mut said = 0;
    for n in 0..(MAX_SOURCES as u32 + 100) {
        let from = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n));
        said += usize::from(log.handle(t0, "z", from, Unauthenticated::UnverifiedSrtcp).is_some());
    }
    assert_eq!(said, MAX_SOURCES);
    assert_eq!(log.per_zone()["z"], MAX_SOURCES as u64 + 100);
    // A minute later the old addresses make room again.
    assert!(log.handle(t0 + LOG_EVERY, "z", ip(9), Unauthenticated::Garbage).is_some());
}

#[test]
fn datagrams_are_told_apart_by_whether_they_read_as_rtcp() {
    let rr = [0x80, 201, 0, 1, 1, 2, 3, 4];
    assert_eq!(Unauthenticated::of(&rr, true), Unauthenticated::PlainRtcp);
    assert_eq!(Unauthenticated::of(&[&rr[..], &[0xaa; 18]].concat(), false), Unauthenticated::UnverifiedSrtcp);
    assert_eq!(Unauthenticated::of(b"GET / HTTP/1.1", false), Unauthenticated::Garbage);
    assert_eq!(Unauthenticated::of(&[0x80, 96, 0, 1], false), Unauthenticated::Garbage);
}
