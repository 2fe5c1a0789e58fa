//! Receiver reports about an SRTP zone count only as SRTCP under the zone's
//! keys (RFC 3711 §3.4): the reports of `loa speaker --sdp` and of any
//! receiver holding the zone's SDP. Plain RTCP about such a zone proves
//! nothing, since anyone on the network can send it.
//!
//! One SRTCP context per (zone, reporter SSRC), kept while it verifies so
//! the replay window holds; at most [`MAX_CONTEXTS`], the oldest forgotten
//! first. A datagram from an SSRC not seen gets a fresh context that is kept
//! only if the datagram verifies, so forged reports cannot fill the table.
//! A datagram that fails under a context already verified leaves that
//! context as it was: were a forgery under a speaker's SSRC to drop it, the
//! next datagram would meet a fresh replay window and an old report,
//! captured and sent again, would count once more.

use std::collections::HashMap;

use crate::daemon::KeysHandle;
use crate::keys::ZoneKeys;
use crate::rtp::srtp::{SrtpReceiver, DEFAULT_REPLAY_WINDOW};

/// Reporters remembered per listener (a commune's speakers, with room).
const MAX_CONTEXTS: usize = 1024;

/// A zone's keys now (the keys task's view; made-up keys in the tests).
type KeysOf = Box<dyn Fn(&str) -> Option<ZoneKeys> + Send>;

pub struct ReportKeys {
    keys: KeysOf,
    /// (zone, reporter SSRC) → (the MKIs the context was made with, context,
    /// last use).
    contexts: HashMap<(String, u32), ([u32; 2], SrtpReceiver, u64)>,
    uses: u64,
    scratch: Vec<u8>,
}

impl ReportKeys {
    pub fn new(keys: KeysHandle) -> ReportKeys {
        ReportKeys::with_keys(Box::new(move |zone| keys.keys(zone)))
    }

    fn with_keys(keys: KeysOf) -> ReportKeys {
        ReportKeys { keys, contexts: HashMap::new(), uses: 0, scratch: Vec::with_capacity(2048) }
    }

    /// Tries `datagram` as SRTCP of each of `zones`; on success the plain
    /// RTCP is at the start of `datagram` and the zone and its length are
    /// returned. A datagram that verifies for none is left as it was.
    pub fn open(&mut self, zones: &[String], datagram: &mut [u8]) -> Option<(String, usize)> {
        let ssrc = u32::from_be_bytes(datagram.get(4..8)?.try_into().ok()?);
        for zone in zones {
            let Some(keys) = (self.keys)(zone) else { continue };
            let mkis = [keys.current.mki.value(), keys.next.mki.value()];
            let entry = (zone.clone(), ssrc);
            // A context made under other keys (the ring moved) is remade.
            let kept = self.contexts.remove(&entry).filter(|(made, _, _)| *made == mkis);
            let verified_before = kept.as_ref().map(|(_, _, used)| *used);
            let mut rx = match kept {
                Some((_, rx, _)) => rx,
                None => {
                    let mki = |k: &crate::keys::ZoneKey| keys.packets_carry_mki.then_some(k.mki);
                    let Ok(mut rx) = SrtpReceiver::new(ssrc, keys.current.key.clone(), mki(&keys.current), DEFAULT_REPLAY_WINDOW) else {
                        continue;
                    };
                    if keys.packets_carry_mki && rx.add_key(keys.next.key.clone(), keys.next.mki).is_err() {
                        continue;
                    }
                    rx
                }
            };
            // Verified on a copy: a failed try must not touch the datagram.
            self.scratch.clear();
            self.scratch.extend_from_slice(datagram);
            if let Ok(len) = rx.unprotect_rtcp(&mut self.scratch) {
                datagram[..len].copy_from_slice(&self.scratch[..len]);
                self.uses += 1;
                self.contexts.insert(entry, (mkis, rx, self.uses));
                self.forget_oldest();
                return Some((zone.clone(), len));
            }
            if let Some(used) = verified_before {
                self.contexts.insert(entry, (mkis, rx, used));
            }
        }
        None
    }

    fn forget_oldest(&mut self) {
        if self.contexts.len() > MAX_CONTEXTS {
            if let Some(oldest) = self.contexts.iter().min_by_key(|(_, (_, _, used))| *used).map(|(k, _)| k.clone()) {
                self.contexts.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
#[path = "report_keys_tests.rs"]
mod tests;
