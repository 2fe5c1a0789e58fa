//! SAP (RFC 2974): announces each zone's SDP on a well-known multicast
//! address so players (VLC, PipeWire's RTP-SAP module) list the zones
//! without an SDP file.
//!
//! Owns: the packet bytes (`packet`, `parse`) and when to send them
//! (`Announcer`, time as input). Must not touch: sockets, config, clocks.
//!
//! Decisions:
//! - Header: V=1, IPv4 origin (the sending interface), no authentication,
//!   no encryption or compression, payload type "application/sdp" written
//!   out (§3 allows leaving it out; receivers accept both).
//! - Message id hash: 16 bits of FNV-1a over the SDP, never 0 (§3: 0 means
//!   "no hash"). It changes when the SDP text changes, so receivers see a
//!   changed session as a new announcement; the old one is deleted first.
//! - Deletion (T=1) carries the full SDP, the same hash and origin as the
//!   announcement it ends (§3 allows the full SDP or the o= line).
//! - Interval: §3.1 asks for max(300 s, 8·ads·size / 4000 bit/s). The 300 s
//!   floor is for the global MBone; on a commune LAN a zone should show in a
//!   player within seconds, so the floor is the configured interval
//!   (default 30 s), but the 4 kbit/s bandwidth rule is kept: the interval
//!   grows when many or large announcements would exceed it. Each send is
//!   offset by a random ±1/3 of the interval (§3.1).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// RFC 2974 §3: the well-known address for the global/admin-scope.
pub use crate::config::{DEFAULT_SAP_ADDRESS as DEFAULT_ADDRESS, DEFAULT_SAP_INTERVAL as DEFAULT_INTERVAL};
/// §3.1: total SAP bandwidth for a scope, bits per second.
pub const BANDWIDTH_LIMIT_BPS: u64 = 4000;
pub const SDP_TYPE: &str = "application/sdp";

/// What a SAP packet says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Announce,
    Delete,
}

/// 16-bit message id hash of an SDP (FNV-1a folded), never 0.
pub fn msg_id_hash(sdp: &str) -> u16 {
    let mut h: u32 = 0x811c_9dc5;
    for b in sdp.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    match (h ^ (h >> 16)) as u16 {
        0 => 1,
        x => x,
    }
}

/// A SAP packet: 8-byte header, "application/sdp\0", the SDP.
pub fn packet(kind: Kind, origin: Ipv4Addr, hash: u16, sdp: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + SDP_TYPE.len() + 1 + sdp.len());
    // V=1 in the top three bits; A=0 (IPv4), R=0, E=0, C=0; T as asked.
    p.push(0x20 | if kind == Kind::Delete { 0x04 } else { 0 });
    p.push(0); // authentication length
    p.extend_from_slice(&hash.to_be_bytes());
    p.extend_from_slice(&origin.octets());
    p.extend_from_slice(SDP_TYPE.as_bytes());
    p.push(0);
    p.extend_from_slice(sdp.as_bytes());
    p
}

/// A parsed SAP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SapPacket<'a> {
    pub kind: Kind,
    pub hash: u16,
    pub origin: IpAddr,
    /// `None` when the sender left the type out (the payload is then SDP).
    pub payload_type: Option<&'a str>,
    pub payload: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SapError {
    #[error("SAP packet too short: {0} bytes, the header needs at least {1}")]
    Short(usize, usize),
    #[error("SAP version {0} is not supported (only version 1)")]
    Version(u8),
    #[error("SAP packet is encrypted or compressed, which is not supported")]
    Encoded,
    #[error("SAP payload type is not ended by a zero byte")]
    UnterminatedType,
    #[error("SAP payload type or payload is not UTF-8 text")]
    NotText,
}

/// Reads a SAP packet; refuses what it cannot read, never panics.
pub fn parse(bytes: &[u8]) -> Result<SapPacket<'_>, SapError> {
    let Some(&first) = bytes.first() else {
        return Err(SapError::Short(0, 8));
    };
    let version = first >> 5;
    if version != 1 {
        return Err(SapError::Version(version));
    }
    if first & 0x03 != 0 {
        return Err(SapError::Encoded);
    }
    let ipv6 = first & 0x10 != 0;
    let origin_len = if ipv6 { 16 } else { 4 };
    if bytes.len() < 4 + origin_len {
        return Err(SapError::Short(bytes.len(), 4 + origin_len));
    }
    let auth_len = usize::from(bytes[1]) * 4;
    let hash = u16::from_be_bytes([bytes[2], bytes[3]]);
    let origin = if ipv6 {
        let mut o = [0u8; 16];
        o.copy_from_slice(&bytes[4..20]);
        IpAddr::V6(Ipv6Addr::from(o))
    } else {
        IpAddr::V4(Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]))
    };
    let start = 4 + origin_len + auth_len;
    let rest = bytes
        .get(start..)
        .ok_or(SapError::Short(bytes.len(), start))?;
    // §3: a payload starting "v=0" has no type field.
    let (payload_type, payload) = if rest.starts_with(b"v=0") {
        (None, rest)
    } else {
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(SapError::UnterminatedType)?;
        let t = std::str::from_utf8(&rest[..end]).map_err(|_| SapError::NotText)?;
        (Some(t), &rest[end + 1..])
    };
    Ok(SapPacket {
        kind: if first & 0x04 != 0 {
            Kind::Delete
        } else {
            Kind::Announce
        },
        hash,
        origin,
        payload_type,
        payload: std::str::from_utf8(payload).map_err(|_| SapError::NotText)?,
    })
}

/// One packet to send, for the zone it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub zone: String,
    pub kind: Kind,
    pub bytes: Vec<u8>,
}

struct Session {
    sdp: String,
    hash: u16,
    next: Instant,
}

/// Decides when each zone's announcement and deletion go out.
pub struct Announcer {
    origin: Ipv4Addr,
    interval: Duration,
    sessions: BTreeMap<String, Session>,
    rng: SmallRng,
}

impl Announcer {
    pub fn new(origin: Ipv4Addr, interval: Duration, seed: u64) -> Announcer {
        Announcer {
            origin,
            interval,
            sessions: BTreeMap::new(),
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// A new base interval applies from each zone's next announcement.
    pub fn set_interval(&mut self, interval: Duration) {
        self.interval = interval;
    }

    /// The base interval now: the configured one, or longer when the
    /// announcements would use more than 4 kbit/s (§3.1).
    pub fn interval(&self) -> Duration {
        let bits: u64 = self
            .sessions
            .values()
            .map(|s| 8 * (8 + SDP_TYPE.len() as u64 + 1 + s.sdp.len() as u64))
            .sum();
        self.interval
            .max(Duration::from_millis(bits * 1000 / BANDWIDTH_LIMIT_BPS))
    }

    /// The interval with a random offset of ±1/3 (§3.1).
    fn jittered(&mut self) -> Duration {
        let base = self.interval().as_secs_f64();
        Duration::from_secs_f64(base * self.rng.random_range(2.0 / 3.0..=4.0 / 3.0))
    }

    fn send(&self, zone: &str, kind: Kind, s: &Session) -> Outgoing {
        Outgoing {
            zone: zone.to_string(),
            kind,
            bytes: packet(kind, self.origin, s.hash, &s.sdp),
        }
    }

    /// Sets the zones to announce (name, SDP). Returns deletions for zones
    /// gone or whose SDP changed; new and changed zones are due at once.
    pub fn set_sessions(&mut self, zones: Vec<(String, String)>, now: Instant) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let wanted: BTreeMap<String, String> = zones.into_iter().collect();
        let gone: Vec<String> = self
            .sessions
            .iter()
            .filter(|(name, s)| wanted.get(*name) != Some(&s.sdp))
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            if let Some(s) = self.sessions.remove(&name) {
                out.push(self.send(&name, Kind::Delete, &s));
            }
        }
        for (name, sdp) in wanted {
            self.sessions.entry(name).or_insert_with(|| Session {
                hash: msg_id_hash(&sdp),
                sdp,
                next: now,
            });
        }
        out
    }

    /// Announcements due at `now`; each is rescheduled an interval later.
    pub fn poll(&mut self, now: Instant) -> Vec<Outgoing> {
        let due: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.next <= now)
            .map(|(name, _)| name.clone())
            .collect();
        let mut out = Vec::new();
        for name in due {
            let wait = self.jittered();
            if let Some(s) = self.sessions.get_mut(&name) {
                s.next = now + wait;
            }
            out.push(self.send(&name, Kind::Announce, &self.sessions[&name]));
        }
        out
    }

    pub fn next_wakeup(&self) -> Option<Instant> {
        self.sessions.values().map(|s| s.next).min()
    }

    /// Deletions for every zone (the daemon stops or SAP is turned off).
    pub fn stop(&mut self) -> Vec<Outgoing> {
        std::mem::take(&mut self.sessions)
            .iter()
            .map(|(name, s)| self.send(name, Kind::Delete, s))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ORIGIN: Ipv4Addr = Ipv4Addr::LOCALHOST;

    fn sdp(n: u8) -> String {
        format!("v=0\r\no=- {n} 1 IN IP4 127.0.0.1\r\ns=loa zone z{n}\r\nc=IN IP4 239.255.77.{n}/1\r\nm=audio 5004 RTP/AVP 96\r\n")
    }

    fn zones(ns: &[u8]) -> Vec<(String, String)> {
        ns.iter().map(|&n| (format!("z{n}"), sdp(n))).collect()
    }

    #[test]
    fn header_bytes_follow_rfc_2974() {
        let p = packet(
            Kind::Announce,
            Ipv4Addr::new(10, 1, 2, 3),
            0xabcd,
            "v=0\r\n",
        );
        assert_eq!(&p[..8], &[0x20, 0, 0xab, 0xcd, 10, 1, 2, 3]);
        assert_eq!(&p[8..24], b"application/sdp\0");
        assert_eq!(&p[24..], b"v=0\r\n");
        let d = packet(Kind::Delete, ORIGIN, 1, "v=0\r\n");
        assert_eq!(d[0], 0x24);
    }

    #[test]
    fn packets_read_back() {
        for kind in [Kind::Announce, Kind::Delete] {
            let text = sdp(1);
            let bytes = packet(kind, ORIGIN, msg_id_hash(&text), &text);
            let p = parse(&bytes).unwrap();
            assert_eq!(p.kind, kind);
            assert_eq!(p.hash, msg_id_hash(&text));
            assert_eq!(p.origin, IpAddr::V4(ORIGIN));
            assert_eq!(p.payload_type, Some(SDP_TYPE));
            assert_eq!(p.payload, text);
        }
    }

    #[test]
    fn a_payload_without_type_ipv6_origin_and_auth_data_are_read() {
        let mut b = vec![0x30, 1, 0, 7];
        b.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        b.extend_from_slice(&[9, 9, 9, 9]);
        b.extend_from_slice(b"v=0\r\n");
        let p = parse(&b).unwrap();
        assert_eq!(p.origin, IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!((p.payload_type, p.payload), (None, "v=0\r\n"));
    }

    #[test]
    fn malformed_packets_are_refused_with_a_reason() {
        assert_eq!(parse(&[]), Err(SapError::Short(0, 8)));
        assert_eq!(parse(&[0x20, 0, 0]), Err(SapError::Short(3, 8)));
        assert_eq!(
            parse(&[0x40, 0, 0, 0, 1, 2, 3, 4]),
            Err(SapError::Version(2))
        );
        assert_eq!(parse(&[0x22, 0, 0, 0, 1, 2, 3, 4]), Err(SapError::Encoded));
        assert_eq!(
            parse(&[0x20, 2, 0, 0, 1, 2, 3, 4, 0]),
            Err(SapError::Short(9, 16))
        );
        assert_eq!(
            parse(b"\x20\0\0\0\x01\x02\x03\x04application/sdp"),
            Err(SapError::UnterminatedType)
        );
        assert_eq!(
            parse(b"\x20\0\0\0\x01\x02\x03\x04a\0\xff"),
            Err(SapError::NotText)
        );
    }

    #[test]
    fn hash_is_stable_nonzero_and_follows_the_sdp() {
        assert_eq!(msg_id_hash(&sdp(1)), msg_id_hash(&sdp(1)));
        assert_ne!(msg_id_hash(&sdp(1)), msg_id_hash(&sdp(2)));
        assert!((0..200).all(|n| msg_id_hash(&sdp(n)) != 0));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn random_bytes_after_a_valid_header_never_panic(
            first in any::<u8>(), rest in proptest::collection::vec(any::<u8>(), 0..300)
        ) {
            let mut b = vec![first];
            b.extend(rest);
            let _ = parse(&b);
        }
    }

    #[test]
    fn zones_are_announced_at_once_then_every_interval_with_jitter() {
        let t0 = Instant::now();
        let interval = Duration::from_secs(30);
        let mut a = Announcer::new(ORIGIN, interval, 7);
        assert!(a.set_sessions(zones(&[1, 2]), t0).is_empty());
        let first = a.poll(t0);
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(|o| o.kind == Kind::Announce));
        assert!(
            a.poll(t0 + Duration::from_secs(19)).is_empty(),
            "not before 2/3 interval"
        );
        // Over many rounds each gap lies within [20 s, 40 s] and they vary.
        let mut now = t0;
        let mut gaps = Vec::new();
        for _ in 0..50 {
            let next = a.next_wakeup().unwrap();
            let sent = a.poll(next);
            assert!(!sent.is_empty());
            if sent.iter().any(|o| o.zone == "z1") {
                gaps.push(next - now);
                now = next;
            }
        }
        let (lo, hi) = (interval * 2 / 3, interval * 4 / 3);
        assert!(gaps[1..].iter().all(|g| *g >= lo && *g <= hi), "{gaps:?}");
        assert!(gaps.iter().any(|g| *g != gaps[1]), "jittered: {gaps:?}");
    }

    #[test]
    fn a_retired_or_changed_zone_is_deleted_and_a_new_one_announced() {
        let t0 = Instant::now();
        let mut a = Announcer::new(ORIGIN, Duration::from_secs(30), 1);
        a.set_sessions(zones(&[1, 2]), t0);
        a.poll(t0);
        let t1 = t0 + Duration::from_secs(5);
        let mut next = zones(&[3]);
        next.push(("z2".into(), sdp(9)));
        let deleted = a.set_sessions(next, t1);
        let names: Vec<_> = deleted.iter().map(|o| (o.zone.as_str(), o.kind)).collect();
        assert_eq!(names, [("z1", Kind::Delete), ("z2", Kind::Delete)]);
        // The deletion carries the hash of what it ends.
        assert_eq!(parse(&deleted[0].bytes).unwrap().hash, msg_id_hash(&sdp(1)));
        let announced: Vec<_> = a.poll(t1).into_iter().map(|o| o.zone).collect();
        assert_eq!(announced, ["z2", "z3"]);
        assert_eq!(
            parse(&a.stop()[0].bytes).unwrap().payload,
            sdp(9),
            "stop deletes the current SDP"
        );
        assert!(a.next_wakeup().is_none() && a.stop().is_empty());
    }

    #[test]
    fn an_unchanged_zone_keeps_its_schedule_across_a_reload() {
        let t0 = Instant::now();
        let mut a = Announcer::new(ORIGIN, Duration::from_secs(30), 1);
        a.set_sessions(zones(&[1]), t0);
        a.poll(t0);
        let next = a.next_wakeup();
        assert!(a
            .set_sessions(zones(&[1]), t0 + Duration::from_secs(1))
            .is_empty());
        assert_eq!(a.next_wakeup(), next);
    }

    #[test]
    fn the_interval_grows_to_keep_sap_under_4_kbit_per_s() {
        let mut a = Announcer::new(ORIGIN, Duration::from_secs(1), 1);
        a.set_sessions(zones(&[1]), Instant::now());
        assert_eq!(
            a.interval(),
            Duration::from_secs(1),
            "one small SDP: as configured"
        );
        // One 1000-byte SDP: 8 × (24 + 1000) bits at 4000 bit/s = 2.048 s.
        a.set_sessions(vec![("big".into(), "x".repeat(1000))], Instant::now());
        assert_eq!(a.interval(), Duration::from_millis(2048));
        let many: Vec<u8> = (1..=40).collect();
        a.set_sessions(zones(&many), Instant::now());
        assert!(a.interval() > Duration::from_secs(5), "{:?}", a.interval());
        // A handful of real zones (≈ 400-byte SDPs) stays far below 30 s.
        let mut b = Announcer::new(ORIGIN, DEFAULT_INTERVAL, 1);
        b.set_sessions(
            (0..5).map(|n| (format!("z{n}"), "x".repeat(400))).collect(),
            Instant::now(),
        );
        assert_eq!(b.interval(), DEFAULT_INTERVAL);
    }
}
