//! A joined speaker's zones (sans-IO, made-up time in the tests): which
//! zone a datagram belongs to (by SSRC, as the welcome or a reload's
//! `zone` message granted it), its verification under that zone's own
//! keys (one `Gate` per zone), and which zone plays.
//!
//! **What plays when several zones are on air.** The speaker plays one
//! zone at a time and never mixes: it keeps the zone it is playing until
//! that zone goes idle — no packet of it verified for `IDLE_AFTER` — and
//! then takes the first zone whose packet verifies. Packets of a zone not
//! played are verified and counted, and go no further: the jitter buffer
//! only ever sees the played zone's stream, so they cause no SSRC switch,
//! no reset and no gap. A speaker cannot see priorities (RTP carries
//! none): an emergency meant for it must be sent on all its zones, which
//! is what `--zones all` does.
//!
//! Must not touch: sockets, the clock (arrival times come in), the jitter
//! buffer.

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use super::gate::{Gate, Rejected};
use crate::rtp::srtp::{CryptoAttribute, MasterKey, Mki};

/// Silence of the played zone after which another zone may take over:
/// 25 packets, far beyond what the 60 ms jitter buffer bridges, so the
/// zone is silent to listeners already; short enough that a program that
/// starts on another zone right after loses at most half a second.
pub const IDLE_AFTER: Duration = Duration::from_millis(500);

/// One zone as loa granted it, with its keys ready for a gate.
#[derive(Debug, Clone)]
pub struct Granted {
    pub name: String,
    pub ssrc: u32,
    pub payload_type: u8,
    pub crypto: CryptoAttribute,
    /// Its multicast group (RTP port; RTCP on port + 1), when it comes by
    /// multicast; None: unicast to the session's socket.
    pub group: Option<SocketAddrV4>,
}

/// The rule above, alone: which zone plays.
#[derive(Debug, Default)]
pub struct Selector {
    playing: Option<String>,
    /// The last verified packet of the played zone.
    last: Option<Instant>,
}

impl Selector {
    /// A packet of `zone` verified at `now`: whether it is played.
    pub fn heard(&mut self, zone: &str, now: Instant) -> bool {
        match &self.playing {
            Some(playing) if playing == zone => {}
            Some(_) if self.last.is_some_and(|last| now.saturating_duration_since(last) < IDLE_AFTER) => return false,
            _ => self.playing = Some(zone.to_string()),
        }
        self.last = Some(now);
        true
    }

    /// `zone` is no longer granted: if it was playing, any zone may take
    /// over with its next packet.
    pub fn forget(&mut self, zone: &str) {
        if self.playing.as_deref() == Some(zone) {
            self.playing = None;
            self.last = None;
        }
    }

    pub fn playing(&self) -> Option<&str> {
        self.playing.as_deref()
    }
}

struct Zone {
    granted: Granted,
    gate: Gate,
}

/// What became of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// A verified RTP packet of the played zone: the plain packet's length
    /// and the zone's payload type.
    Play { len: usize, payload_type: u8 },
    /// A verified SRTCP packet of one of the zones (Sender Reports, BYE).
    Rtcp { len: usize },
    /// A verified RTP packet of a zone not played now.
    NotPlayed,
    /// Failed verification or no zone's SSRC: counted, dropped.
    Rejected,
}

/// Every zone of the session, each behind its own gate.
#[derive(Default)]
pub struct JoinedZones {
    zones: Vec<Zone>,
    selector: Selector,
    /// Datagrams whose SSRC is no granted zone's.
    unknown_ssrc: u64,
    /// Rejections counted by gates since replaced or removed.
    earlier: Rejected,
    /// Verified packets of zones not played.
    pub not_played: u64,
}

impl JoinedZones {
    pub fn new(granted: Vec<Granted>) -> JoinedZones {
        let mut zones = JoinedZones::default();
        granted.into_iter().for_each(|g| zones.grant(g));
        zones
    }

    /// A zone granted (welcome) or changed by a reload: it replaces the
    /// grant of that name. Playing it goes on: its new SSRC reaches the
    /// jitter buffer as a sender restart does.
    pub fn grant(&mut self, granted: Granted) {
        self.remove(&granted.name);
        let gate = Gate::new(granted.crypto.clone());
        self.zones.push(Zone { granted, gate });
    }

    /// A zone no longer granted.
    pub fn gone(&mut self, name: &str) {
        self.remove(name);
        self.selector.forget(name);
    }

    fn remove(&mut self, name: &str) {
        if let Some(at) = self.zones.iter().position(|z| z.granted.name == name) {
            let old = self.zones.remove(at);
            let r = old.gate.rejected;
            self.earlier.bad_auth += r.bad_auth;
            self.earlier.replay += r.replay;
            self.earlier.unknown_ssrc += r.unknown_ssrc;
            self.earlier.malformed += r.malformed;
        }
    }

    /// A key handed over later for `zone` (a rotation's, a revocation's).
    pub fn add_keys(&mut self, zone: &str, keys: Vec<(Mki, MasterKey)>) {
        if let Some(z) = self.zones.iter_mut().find(|z| z.granted.name == zone) {
            keys.into_iter().for_each(|(mki, key)| z.gate.add_key(key, mki));
        }
    }

    pub fn granted(&self) -> impl Iterator<Item = &Granted> {
        self.zones.iter().map(|z| &z.granted)
    }

    pub fn playing(&self) -> Option<&str> {
        self.selector.playing()
    }

    /// Verifies and decrypts a datagram in place under the keys of the
    /// zone its SSRC names, and says whether it is played.
    pub fn open(&mut self, packet: &mut [u8], rtcp: bool, arrival: Instant) -> Opened {
        let at = if rtcp { 4 } else { 8 };
        let Some(ssrc) = packet.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])) else {
            self.earlier.malformed += 1;
            return Opened::Rejected;
        };
        let Some(zone) = self.zones.iter_mut().find(|z| z.granted.ssrc == ssrc) else {
            self.unknown_ssrc += 1;
            return Opened::Rejected;
        };
        let Some(len) = zone.gate.open(packet, rtcp, arrival) else {
            return Opened::Rejected;
        };
        if rtcp {
            return Opened::Rtcp { len };
        }
        let payload_type = zone.granted.payload_type;
        if self.selector.heard(&zone.granted.name, arrival) {
            Opened::Play { len, payload_type }
        } else {
            self.not_played += 1;
            Opened::NotPlayed
        }
    }

    /// Every rejection so far, by reason.
    pub fn rejected(&self) -> Rejected {
        let mut total = self.earlier;
        total.unknown_ssrc += self.unknown_ssrc;
        for r in self.zones.iter().map(|z| z.gate.rejected) {
            total.bad_auth += r.bad_auth;
            total.replay += r.replay;
            total.unknown_ssrc += r.unknown_ssrc;
            total.malformed += r.malformed;
        }
        total
    }
}

#[cfg(test)]
#[path = "zones_tests.rs"]
mod tests;
