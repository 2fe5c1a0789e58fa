//! Where each joined speaker's audio goes (sans-IO, made-up time in the
//! tests): its transport, the public address:port its NAT gives it, and
//! when it was last heard.
//!
//! Symmetric RTP (RFC 4961) with rtcp-mux (RFC 5761): loa sends a
//! speaker's SRTP to the address its keepalives (SRTCP receiver reports,
//! RFC 6263) come from. The shell calls [`Bindings::heard`] only for a
//! packet that authenticated under that speaker's uplink key, so a forged
//! or replayed packet can never move a speaker's audio elsewhere. N missed
//! keepalives drop the binding (offline); a joined speaker from which no
//! authenticated UDP arrives within the fallback time (or that said in its
//! hello that it has no UDP) gets its audio inside the TLS connection
//! instead; an authenticated UDP packet later wins it back to unicast. Over
//! TLS its keepalives arrive inside the connection and only say it is
//! alive: they never give it an address.
//!
//! The speaker has the last word on the way down: loa answers each of its
//! UDP keepalives, and a speaker that gets no answer (a network that lets
//! its UDP out but not loa's back in) says so over TLS
//! ([`Bindings::downstream`]). Its audio then goes inside TLS although its
//! keepalives authenticate by UDP; they go on being answered, and their
//! address is kept aside (never sent to) until the speaker says the
//! answers come again.
//!
//! A speaker that takes multicast gets its zones from their groups and is
//! never a unicast target, but its keepalives go to the same port: they
//! make it online (transport multicast) and N missed ones make it offline,
//! exactly as for a unicast speaker; its address is only shown.
//!
//! Must not touch: sockets, keys, the clock (time comes in as `now`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::proto::speakers::SpeakerTransport;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// The speaker's keepalive period.
    pub keepalive: Duration,
    /// Keepalives missed in a row before the binding is dropped.
    pub missed: u32,
    /// How long after joining UDP may take to get through before the
    /// audio goes inside TLS.
    pub fallback_after: Duration,
}

/// What changed, for the shell to act on (pacer targets, TLS framing,
/// the log and the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Unicast to `address` from now on (first keepalive, or its NAT gave
    /// it a new mapping: `previous` is the old one).
    Adopted { speaker: String, address: SocketAddr, previous: Option<SocketAddr> },
    /// Its audio goes inside TLS from now on, for `why`.
    FellBackToTls { speaker: String, why: WhyTls },
    /// Keepalives missed: no more unicast; it shows offline.
    Dropped { speaker: String, address: Option<SocketAddr> },
}

/// Why a speaker's audio went inside its TLS connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhyTls {
    /// No authenticated UDP from it within the fallback time (after
    /// joining, or after its binding was dropped).
    NothingByUdp,
    /// Its hello said it has no UDP (`loa speaker --tls-only`).
    HelloWithoutUdp,
    /// It said loa's UDP does not reach it: its keepalives went
    /// unanswered although they authenticate here.
    SpeakerHearsNoUdp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Binding {
    zones: Vec<String>,
    /// It said it takes multicast: its zones come from their groups.
    multicast: bool,
    joined_at: Instant,
    transport: Option<SpeakerTransport>,
    address: Option<SocketAddr>,
    last_heard: Option<Instant>,
    /// It said loa's UDP does not reach it: where its latest authenticated
    /// UDP keepalive came from, kept aside (none yet: `Some(None)`) until
    /// it says loa's UDP reaches it again.
    unheard: Option<Option<SocketAddr>>,
}

/// What `loa speakers list` and `loa endpoints` show of a joined speaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub transport: Option<SpeakerTransport>,
    pub address: Option<SocketAddr>,
    pub last_heard: Option<Instant>,
}

#[derive(Debug)]
pub struct Bindings {
    timing: Timing,
    speakers: BTreeMap<String, Binding>,
}

impl Bindings {
    pub fn new(timing: Timing) -> Bindings {
        Bindings { timing, speakers: BTreeMap::new() }
    }

    /// A speaker's TLS session was admitted. A speaker that can receive
    /// multicast is served by its group and never becomes a unicast target.
    pub fn joined(&mut self, speaker: &str, zones: Vec<String>, multicast: bool, now: Instant) {
        let binding = Binding { zones, multicast, joined_at: now, transport: None, address: None, last_heard: None, unheard: None };
        self.speakers.insert(speaker.to_string(), binding);
    }

    /// The speaker said in its hello that it cannot use UDP at all: its
    /// audio goes inside TLS at once, with no fallback wait. A multicast
    /// speaker keeps its groups (nothing of it would travel inside TLS).
    pub fn without_udp(&mut self, speaker: &str) -> Option<Change> {
        let binding = self.speakers.get_mut(speaker)?;
        if binding.transport.is_some() || binding.multicast {
            return None;
        }
        binding.transport = Some(SpeakerTransport::Tls);
        Some(Change::FellBackToTls { speaker: speaker.to_string(), why: WhyTls::HelloWithoutUdp })
    }

    /// The speaker said over TLS whether loa's UDP reaches it. `false`:
    /// its audio goes inside TLS now, whatever its keepalives do, and
    /// their address is kept aside; `true`: unicast again to the address
    /// of its latest authenticated UDP keepalive (or, none yet, to the
    /// next one's). Nothing for a multicast speaker (nothing of it would
    /// travel inside TLS) or one that said the same already.
    pub fn downstream(&mut self, speaker: &str, udp: bool) -> Option<Change> {
        let binding = self.speakers.get_mut(speaker)?;
        if binding.multicast {
            return None;
        }
        match (udp, binding.unheard) {
            (false, None) => {
                binding.unheard = Some(binding.address.take());
                let was = binding.transport.replace(SpeakerTransport::Tls);
                (was != Some(SpeakerTransport::Tls))
                    .then(|| Change::FellBackToTls { speaker: speaker.to_string(), why: WhyTls::SpeakerHearsNoUdp })
            }
            (true, Some(aside)) => {
                binding.unheard = None;
                let address = aside?;
                binding.address = Some(address);
                binding.transport = Some(SpeakerTransport::Unicast);
                Some(Change::Adopted { speaker: speaker.to_string(), address, previous: None })
            }
            // It said so already.
            (false, Some(_)) | (true, None) => None,
        }
    }

    /// Its TLS session ended (bye, revocation, a broken connection).
    pub fn left(&mut self, speaker: &str) -> Option<Change> {
        let binding = self.speakers.remove(speaker)?;
        let unicast = binding.transport == Some(SpeakerTransport::Unicast);
        unicast.then(|| Change::Dropped { speaker: speaker.to_string(), address: binding.address })
    }

    /// An authenticated packet of `speaker` arrived from `from`. Only
    /// such a packet moves its audio: this is the one place an address is
    /// adopted.
    /// While the speaker says loa's UDP does not reach it, the address is
    /// only kept aside and its audio stays inside TLS.
    pub fn heard(&mut self, speaker: &str, from: SocketAddr, now: Instant) -> Option<Change> {
        let binding = self.speakers.get_mut(speaker)?;
        binding.last_heard = Some(now);
        if let Some(aside) = binding.unheard.as_mut() {
            *aside = Some(from);
            return None;
        }
        let transport = if binding.multicast { SpeakerTransport::Multicast } else { SpeakerTransport::Unicast };
        let previous = binding.address.replace(from);
        let was = binding.transport.replace(transport);
        (previous != Some(from) || was != Some(transport))
            .then(|| Change::Adopted { speaker: speaker.to_string(), address: from, previous })
    }

    /// An authenticated keepalive of `speaker` arrived inside its TLS
    /// connection: it is alive, but TCP says nothing of where UDP would
    /// reach it, so no address is adopted and the transport stays.
    pub fn heard_over_tls(&mut self, speaker: &str, now: Instant) {
        if let Some(binding) = self.speakers.get_mut(speaker) {
            binding.last_heard = Some(now);
        }
    }

    /// Whether `speakers list` shows `speaker` online at `now`: multicast
    /// and unicast while their binding holds (a unicast one is dropped
    /// after the missed keepalives); over TLS while its keepalives inside
    /// the connection keep coming, by the same count of missed ones.
    pub fn online(&self, speaker: &str, now: Instant) -> bool {
        let Some(b) = self.speakers.get(speaker) else { return false };
        match b.transport {
            Some(SpeakerTransport::Multicast | SpeakerTransport::Unicast) => true,
            Some(SpeakerTransport::Tls) => b.last_heard.is_some_and(|last| now < last + self.drop_after()),
            None => false,
        }
    }

    /// The next time something may change without a packet.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.speakers
            .values()
            .filter_map(|b| match (b.transport, b.last_heard) {
                (Some(SpeakerTransport::Unicast | SpeakerTransport::Multicast), Some(last)) => Some(last + self.drop_after()),
                (None, _) if !b.multicast => Some(b.joined_at + self.timing.fallback_after),
                _ => None,
            })
            .min()
    }

    /// Drops bindings whose keepalives stopped and falls back to TLS for
    /// speakers whose UDP never got through.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Change> {
        let drop_after = self.drop_after();
        let mut changes = Vec::new();
        for (name, b) in &mut self.speakers {
            match (b.transport, b.last_heard) {
                (Some(SpeakerTransport::Unicast | SpeakerTransport::Multicast), Some(last)) if now >= last + drop_after => {
                    b.transport = None;
                    b.joined_at = now;
                    changes.push(Change::Dropped { speaker: name.clone(), address: b.address.take() });
                }
                // Nothing to carry in TLS for a multicast speaker.
                (None, _) if !b.multicast && now >= b.joined_at + self.timing.fallback_after => {
                    b.transport = Some(SpeakerTransport::Tls);
                    changes.push(Change::FellBackToTls { speaker: name.clone(), why: WhyTls::NothingByUdp });
                }
                _ => {}
            }
        }
        changes
    }

    /// Unicast targets of `zone`, in name order: what the pacer's target
    /// list for the zone is replaced with after a change.
    pub fn unicast_targets(&self, zone: &str) -> Vec<SocketAddr> {
        self.speakers
            .values()
            .filter(|b| b.transport == Some(SpeakerTransport::Unicast) && b.zones.iter().any(|z| z == zone))
            .filter_map(|b| b.address)
            .collect()
    }

    /// The speakers of `zone` whose audio goes inside TLS, in name order.
    pub fn tls_speakers<'a>(&'a self, zone: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.speakers
            .iter()
            .filter(move |(_, b)| b.transport == Some(SpeakerTransport::Tls) && b.zones.iter().any(|z| z == zone))
            .map(|(name, _)| name.as_str())
    }

    /// The zones of `speaker` (whose targets a change touches).
    pub fn zones(&self, speaker: &str) -> &[String] {
        self.speakers.get(speaker).map_or(&[], |b| &b.zones)
    }

    /// A reload changed which of its zones are served: `zones` from now
    /// on; the zones it had before (whose targets change too).
    pub fn set_zones(&mut self, speaker: &str, zones: Vec<String>) -> Vec<String> {
        self.speakers.get_mut(speaker).map_or_else(Vec::new, |b| std::mem::replace(&mut b.zones, zones))
    }

    /// Whether `speaker` takes its zones by multicast.
    pub fn multicast(&self, speaker: &str) -> bool {
        self.speakers.get(speaker).is_some_and(|b| b.multicast)
    }

    pub fn seen(&self, speaker: &str) -> Option<Seen> {
        self.speakers.get(speaker).map(|b| Seen { transport: b.transport, address: b.address, last_heard: b.last_heard })
    }

    /// N keepalive periods, plus half a period for a late packet (a 4G
    /// link's jitter) so exactly N missed ones are what drops it.
    fn drop_after(&self) -> Duration {
        self.timing.keepalive * self.timing.missed + self.timing.keepalive / 2
    }
}

#[cfg(test)]
#[path = "bindings_tests.rs"]
mod tests;
