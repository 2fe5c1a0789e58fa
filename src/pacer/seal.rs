//! SRTP on the pacer's zones: each zone's packets are protected once, in
//! place, right after they are stamped (at the end of the tick before the
//! one that sends them), so the protect cost never delays a send; the
//! fan-out to the group and unicast targets sends the same sealed bytes.
//!
//! One `SrtpSender` per zone (one SSRC, one crypto context, RFC 3711 §3.2).
//! Keys come from the zone's key ring (`crate::keys`) through
//! `Command::ZoneKeys`: a key the context lacks is added, the ring's
//! current key used from the next packet on (a packet boundary; receivers
//! follow the MKI), keys the ring dropped are removed. Adding and removing
//! a key allocate (libsrtp builds a new context, the key list is cloned):
//! once per rotation, after the tick's sends, like adding a zone.
//!
//! Must not touch: sockets, the ring's schedule (the daemon decides when).

use crate::keys::ZoneKeys;
use crate::rtp::srtp::{Mki, ProtectError, SetupError, SrtpSender};

/// Room for keys held at once: current, next, and one being replaced.
const KEYS_ROOM: usize = 4;

/// One zone's SRTP sender and the MKIs it holds.
pub struct ZoneSeal {
    sender: SrtpSender,
    held: Vec<Mki>,
}

impl std::fmt::Debug for ZoneSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoneSeal").field("sender", &self.sender).field("held", &self.held).finish()
    }
}

impl ZoneSeal {
    /// A sender for `ssrc` holding both keys of the ring, the current in use.
    pub fn new(ssrc: u32, keys: &ZoneKeys) -> Result<ZoneSeal, SetupError> {
        let sender = SrtpSender::new(ssrc, keys.current.key.clone(), Some(keys.current.mki))?;
        let mut held = Vec::with_capacity(KEYS_ROOM);
        held.push(keys.current.mki);
        let mut seal = ZoneSeal { sender, held };
        seal.set_keys(keys)?;
        Ok(seal)
    }

    /// Brings the context in line with the ring: adds what it lacks, uses
    /// the current key from the next packet on, forgets the rest.
    pub fn set_keys(&mut self, keys: &ZoneKeys) -> Result<(), SetupError> {
        if keys.suite != self.sender.suite() {
            return Err(SetupError::SuiteMismatch {
                expected: self.sender.suite(),
                got: keys.suite,
            });
        }
        for key in keys.keys() {
            if !self.held.contains(&key.mki) {
                self.sender.add_key(key.key.clone(), key.mki)?;
                self.held.push(key.mki);
            }
        }
        self.sender.use_key(keys.current.mki)?;
        let wanted = [keys.current.mki, keys.next.mki];
        while let Some(at) = self.held.iter().position(|m| !wanted.contains(m)) {
            self.sender.remove_key(self.held[at])?;
            self.held.swap_remove(at);
        }
        Ok(())
    }

    /// Protects a stamped RTP packet in place. On error the packet is
    /// unchanged and must not be sent.
    pub fn seal_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), ProtectError> {
        self.sender.protect_rtp(packet)
    }

    /// Protects an RTCP compound in place (SRTCP).
    pub fn seal_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), ProtectError> {
        self.sender.protect_rtcp(packet)
    }

    pub fn active_mki(&self) -> Option<Mki> {
        self.sender.active_mki()
    }

    /// Bytes a sealed RTP packet gains (tag and MKI).
    pub fn rtp_trailer_len(&self) -> usize {
        self.sender.rtp_trailer_len()
    }
}
