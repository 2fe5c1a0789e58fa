//! Refused joins, rate-limited for the audit and the log: anyone who can
//! open a TCP connection can make a throwaway certificate and be refused,
//! hundreds of times a second, and each refusal must not become a row and a
//! log line. The first refusal of a (peer address, reason) is kept at once;
//! then at most one per [`INTERVAL`], saying how many were refused since.
//! Sans-IO: time is an argument.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::throttle::{Full, Throttle};

/// At most one stored refusal per peer address and reason per this long.
pub const INTERVAL: Duration = Duration::from_secs(60);

/// Peers remembered; beyond, the ones quiet for an interval are forgotten
/// (so spoofed or many sources cannot grow the table without bound).
const MAX_PEERS: usize = 4096;

pub struct RefusalLog {
    /// By (peer, reason). A full table of peers refused within the
    /// interval still keeps a new peer's first refusal (not remembered):
    /// every source is heard of at least once.
    throttle: Throttle<(IpAddr, String)>,
}

impl Default for RefusalLog {
    fn default() -> RefusalLog {
        RefusalLog { throttle: Throttle::new(INTERVAL, MAX_PEERS, Full::Say) }
    }
}

impl RefusalLog {
    /// A refusal of `peer` for `reason` at `now`: Some(n) when it is to be
    /// kept, `n` being the refusals of the same peer and reason left out
    /// since the last one kept; None when it is left out (counted).
    pub fn refused(&mut self, now: Instant, peer: IpAddr, reason: &str) -> Option<u64> {
        self.throttle.hit(now, (peer, reason.to_string())).map(|n| n - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 66));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 67));

    #[test]
    fn the_first_refusal_is_kept_then_one_an_interval_with_the_count_left_out() {
        let t0 = Instant::now();
        let mut log = RefusalLog::default();
        assert_eq!(log.refused(t0, A, "not enrolled"), Some(0));
        for i in 1..=399 {
            assert_eq!(log.refused(t0 + Duration::from_millis(i), A, "not enrolled"), None);
        }
        assert_eq!(log.refused(t0 + INTERVAL, A, "not enrolled"), Some(399));
        assert_eq!(log.refused(t0 + INTERVAL + Duration::from_secs(1), A, "not enrolled"), None);
    }

    #[test]
    fn another_peer_or_another_reason_is_kept_on_its_own() {
        let t0 = Instant::now();
        let mut log = RefusalLog::default();
        assert_eq!(log.refused(t0, A, "not enrolled"), Some(0));
        assert_eq!(log.refused(t0, A, "revoked"), Some(0));
        assert_eq!(log.refused(t0, B, "not enrolled"), Some(0));
        assert_eq!(log.refused(t0, A, "revoked"), None);
    }

    #[test]
    fn many_sources_cannot_grow_the_table_beyond_its_bound() {
        let t0 = Instant::now();
        let mut log = RefusalLog::default();
        for i in 0..(MAX_PEERS as u32 + 500) {
            let peer = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert_eq!(log.refused(t0, peer, "not enrolled"), Some(0), "each new source is kept once");
        }
        assert!(log.throttle.len() <= MAX_PEERS);
        // An interval later the quiet ones are forgotten and room is made.
        let later = t0 + INTERVAL;
        assert_eq!(log.refused(later, IpAddr::V4(std::net::Ipv4Addr::new(10, 9, 9, 9)), "not enrolled"), Some(0));
        assert!(log.throttle.len() < MAX_PEERS);
    }
}
