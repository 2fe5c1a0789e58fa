//! Datagrams at an SRTP zone's RTCP port that are not authenticated:
//! plain RTCP (which anyone can send), SRTCP that does not verify, and
//! bytes that are neither. On an SRTP zone only what verifies may speak
//! for a speaker, so these are never taken for one; they are counted per
//! zone (for `loa status`) and said as SECURITY lines, at most one per
//! source address per `LOG_EVERY`, each with the count since the last.
//!
//! Sans-IO: the listener classifies, this decides what is said; `now`
//! comes in.
//!
//! Must not touch: sockets, the log (the daemon prints the lines), the
//! endpoint states (`HealthMonitor`).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::throttle::{Full, Throttle};

/// At most one SECURITY line per source address this often.
pub const LOG_EVERY: Duration = Duration::from_secs(60);

/// Source addresses remembered: spoofed floods cannot grow memory, and
/// cost at most this many lines per `LOG_EVERY`.
pub const MAX_SOURCES: usize = 256;

/// What an unauthenticated datagram was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unauthenticated {
    /// Parses as RTCP, unprotected: anyone on the network can send it.
    PlainRtcp,
    /// An RTCP header followed by what is not plain RTCP: SRTCP under a
    /// key the daemon does not hold, or a damaged packet.
    UnverifiedSrtcp,
    /// Not RTCP at all.
    Garbage,
}

impl Unauthenticated {
    pub fn as_str(self) -> &'static str {
        match self {
            Unauthenticated::PlainRtcp => "plain RTCP",
            Unauthenticated::UnverifiedSrtcp => "SRTCP that does not verify",
            Unauthenticated::Garbage => "not RTCP",
        }
    }

    /// Classifies a datagram that did not verify as SRTCP; `parses` is
    /// whether it reads as plain RTCP.
    pub fn of(datagram: &[u8], parses: bool) -> Unauthenticated {
        let rtcp_header = datagram.len() >= 8 && datagram[0] >> 6 == 2 && (200..=206).contains(&datagram[1]);
        match (parses, rtcp_header) {
            (true, _) => Unauthenticated::PlainRtcp,
            (false, true) => Unauthenticated::UnverifiedSrtcp,
            (false, false) => Unauthenticated::Garbage,
        }
    }
}

/// One SECURITY line to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityLine {
    pub zone: String,
    pub from: IpAddr,
    /// The latest datagram's kind.
    pub kind: Unauthenticated,
    /// Datagrams from `from` since its last line (this one included).
    pub count: u64,
    /// All unauthenticated datagrams at `zone`'s port since start.
    pub zone_total: u64,
}

impl fmt::Display for SecurityLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SECURITY: {} unauthenticated datagram(s) from {} at SRTP zone {}'s RTCP port (the latest: {}); \
             never taken for a speaker; {} on this zone since start (said at most once a minute per address)",
            self.count,
            self.from,
            self.zone,
            self.kind.as_str(),
            self.zone_total
        )
    }
}

/// The counts and the rate limit.
#[derive(Debug)]
pub struct UnauthenticatedLog {
    per_zone: BTreeMap<String, u64>,
    sources: Throttle<IpAddr>,
}

impl Default for UnauthenticatedLog {
    fn default() -> UnauthenticatedLog {
        // A full table of addresses said within the minute: a new one is
        // counted, not said (the addresses already said cover it).
        UnauthenticatedLog { per_zone: BTreeMap::new(), sources: Throttle::new(LOG_EVERY, MAX_SOURCES, Full::Quiet) }
    }
}

impl UnauthenticatedLog {
    /// Counts one datagram; the line to log, when one is due.
    pub fn handle(&mut self, now: Instant, zone: &str, from: IpAddr, kind: Unauthenticated) -> Option<SecurityLine> {
        let total = self.per_zone.entry(zone.to_string()).or_default();
        *total += 1;
        let zone_total = *total;
        let count = self.sources.hit(now, from)?;
        Some(SecurityLine { zone: zone.to_string(), from, kind, count, zone_total })
    }

    /// Unauthenticated datagrams per zone since start.
    pub fn per_zone(&self) -> &BTreeMap<String, u64> {
        &self.per_zone
    }
}
