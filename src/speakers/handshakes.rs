//! Connections to the join port that have not been admitted yet, per
//! source address (sans-IO: time is an argument).
//!
//! Anyone can open TCP connections to the join port and then send nothing
//! (or half a handshake) until `STEP_TIMEOUT`; 512 of them from one host
//! used to fill the listener's cap and keep every genuine speaker out.
//! Carrier-grade NAT puts many genuine speakers behind one public IP, so
//! admitted sessions are never limited per address: only connections
//! still unauthenticated (handshaking, or not yet admitted) are, at most
//! [`MAX_PER_ADDRESS`] at once per source IP; the rest are refused at
//! accept. A NAT whose speakers all reconnect at once (the carrier
//! restarted) gets them in a few rounds, each handshake taking
//! milliseconds. Refusals and failed handshakes are said through the
//! refusals limiter ([`RefusalLog`]): the first per address and reason at
//! once, then one a minute with how many it stands for.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use super::refusals::RefusalLog;

/// Unauthenticated connections allowed at once from one source IP.
pub const MAX_PER_ADDRESS: u32 = 8;

/// What to do with a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Let it handshake; call [`Handshakes::end`] when it is admitted or
    /// gone.
    Handshake,
    /// Close it now. `log` is Some(n) when this refusal is to be said,
    /// `n` being the refusals of this address left unsaid since the last
    /// line.
    Refuse { log: Option<u64> },
}

pub struct Handshakes {
    max_per_address: u32,
    /// Source IP → connections from it not admitted yet. Only addresses
    /// with at least one are kept, so the table is bounded by the
    /// listener's connection cap.
    open: HashMap<IpAddr, u32>,
    said: RefusalLog,
}

impl Handshakes {
    pub fn new(max_per_address: u32) -> Handshakes {
        Handshakes { max_per_address, open: HashMap::new(), said: RefusalLog::default() }
    }

    /// A connection from `peer` was accepted at `now`.
    pub fn begin(&mut self, now: Instant, peer: IpAddr) -> Verdict {
        let open = self.open.entry(peer).or_insert(0);
        if *open >= self.max_per_address {
            return Verdict::Refuse { log: self.said.refused(now, peer, TOO_MANY) };
        }
        *open += 1;
        Verdict::Handshake
    }

    /// A connection that got [`Verdict::Handshake`] was admitted, refused
    /// or closed: it no longer counts against its address.
    pub fn end(&mut self, peer: IpAddr) {
        if let Some(open) = self.open.get_mut(&peer) {
            *open -= 1;
            if *open == 0 {
                self.open.remove(&peer);
            }
        }
    }

    /// A handshake from `peer` failed for `reason` (a fixed phrase, not
    /// the peer's own words, so a flood makes one key): Some(n) when it
    /// is to be said, with n left unsaid since the last line.
    pub fn failed(&mut self, now: Instant, peer: IpAddr, reason: &'static str) -> Option<u64> {
        self.said.refused(now, peer, reason)
    }

    /// Connections from `peer` not admitted yet.
    pub fn open(&self, peer: IpAddr) -> u32 {
        self.open.get(&peer).copied().unwrap_or(0)
    }
}

const TOO_MANY: &str = "too many connections still handshaking from this address";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::speakers::refusals::INTERVAL;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    const NAT: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1));
    const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 66));

    #[test]
    fn past_the_limit_a_connection_from_the_same_address_is_refused_and_another_address_is_not() {
        let t0 = Instant::now();
        let mut h = Handshakes::new(MAX_PER_ADDRESS);
        for _ in 0..MAX_PER_ADDRESS {
            assert_eq!(h.begin(t0, NAT), Verdict::Handshake);
        }
        assert_eq!(h.begin(t0, NAT), Verdict::Refuse { log: Some(0) });
        assert_eq!(h.begin(t0, OTHER), Verdict::Handshake);
        assert_eq!(h.open(NAT), MAX_PER_ADDRESS);
    }

    #[test]
    fn an_admitted_or_closed_connection_frees_its_place_so_many_speakers_behind_one_nat_all_get_in() {
        let t0 = Instant::now();
        let mut h = Handshakes::new(MAX_PER_ADDRESS);
        // 1000 speakers behind one NAT, each admitted after its handshake:
        // never more than a few unauthenticated at once, none refused.
        for i in 0..1000u64 {
            let now = t0 + Duration::from_millis(i * 3);
            assert_eq!(h.begin(now, NAT), Verdict::Handshake, "speaker {i}");
            if i % 2 == 1 {
                h.end(NAT);
                h.end(NAT);
            }
        }
        assert_eq!(h.open(NAT), 0);
        assert!(h.open.is_empty(), "addresses with nothing open are forgotten");
    }

    #[test]
    fn refusals_of_a_flood_are_said_once_then_once_an_interval_with_the_count() {
        let t0 = Instant::now();
        let mut h = Handshakes::new(2);
        h.begin(t0, OTHER);
        h.begin(t0, OTHER);
        assert_eq!(h.begin(t0, OTHER), Verdict::Refuse { log: Some(0) });
        for i in 1..=499 {
            assert_eq!(h.begin(t0 + Duration::from_millis(i), OTHER), Verdict::Refuse { log: None });
        }
        assert_eq!(h.begin(t0 + INTERVAL, OTHER), Verdict::Refuse { log: Some(499) });
        // Ending one lets the next in at once.
        h.end(OTHER);
        assert_eq!(h.begin(t0 + INTERVAL, OTHER), Verdict::Handshake);
    }

    #[test]
    fn failed_handshakes_are_said_once_per_address_and_reason_then_once_an_interval() {
        let t0 = Instant::now();
        let mut h = Handshakes::new(MAX_PER_ADDRESS);
        assert_eq!(h.failed(t0, OTHER, "the TLS handshake failed"), Some(0));
        for i in 1..=99 {
            assert_eq!(h.failed(t0 + Duration::from_millis(i), OTHER, "the TLS handshake failed"), None);
        }
        assert_eq!(h.failed(t0, OTHER, "the TLS handshake did not finish in time"), Some(0));
        assert_eq!(h.failed(t0, NAT, "the TLS handshake failed"), Some(0));
        assert_eq!(h.failed(t0 + INTERVAL, OTHER, "the TLS handshake failed"), Some(99));
    }

    #[test]
    fn ending_more_than_began_never_underflows() {
        let mut h = Handshakes::new(1);
        h.end(NAT);
        assert_eq!(h.begin(Instant::now(), NAT), Verdict::Handshake);
        h.end(NAT);
        h.end(NAT);
        assert_eq!(h.open(NAT), 0);
    }
}
