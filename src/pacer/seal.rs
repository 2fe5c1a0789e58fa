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
//! A zone with `mki = false` (`ZoneKeys::packets_carry_mki` false) holds
//! only the current key, with no MKI on the wire: at the switch the key
//! is replaced, from the next packet on. The index goes on across it.
//!
//! Must not touch: sockets, the ring's schedule (the daemon decides when).

use crate::keys::ZoneKeys;
use crate::rtp::srtp::{Mki, ProtectError, SetupError, SrtpSender};

/// Room for keys held at once: current, next, and one being replaced.
const KEYS_ROOM: usize = 4;

/// One zone's SRTP sender and the MKIs it holds (without MKI on the
/// wire: the ring's number of the one key in use).
pub struct ZoneSeal {
    sender: SrtpSender,
    held: Vec<Mki>,
    packets_carry_mki: bool,
}

impl std::fmt::Debug for ZoneSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoneSeal").field("sender", &self.sender).field("held", &self.held).finish()
    }
}

impl ZoneSeal {
    /// A sender for `ssrc` holding both keys of the ring, the current in use.
    /// Without MKI: the current key only.
    pub fn new(ssrc: u32, keys: &ZoneKeys) -> Result<ZoneSeal, SetupError> {
        let mki = keys.packets_carry_mki.then_some(keys.current.mki);
        let sender = SrtpSender::new(ssrc, keys.current.key.clone(), mki)?;
        let mut held = Vec::with_capacity(KEYS_ROOM);
        held.push(keys.current.mki);
        let mut seal = ZoneSeal { sender, held, packets_carry_mki: keys.packets_carry_mki };
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
        if keys.packets_carry_mki != self.packets_carry_mki {
            return Err(SetupError::MkiChoiceChanged);
        }
        if !self.packets_carry_mki {
            // The next key cannot be held: packets could not say which
            // one they use. It replaces the current one at the switch.
            if self.held[0] != keys.current.mki {
                self.sender.replace_key(keys.current.key.clone())?;
                self.held[0] = keys.current.mki;
            }
            return Ok(());
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

    /// The MKI packets carry now; None without MKI.
    pub fn active_mki(&self) -> Option<Mki> {
        self.sender.active_mki()
    }

    /// Bytes a sealed RTP packet gains (tag and MKI).
    pub fn rtp_trailer_len(&self) -> usize {
        self.sender.rtp_trailer_len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::keys::KeyRing;
    use crate::rtp::srtp::{SrtpReceiver, Suite, UnprotectError};

    const SSRC: u32 = 0x51a1;

    fn rtp(seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 96];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 0]);
        p.extend_from_slice(&SSRC.to_be_bytes());
        p.extend_from_slice(&[0xfc, 9, 9, 9]);
        p
    }

    #[test]
    fn without_mki_the_current_key_alone_seals_and_is_replaced_at_the_switch() {
        let mut rng = StdRng::seed_from_u64(6);
        let day = Duration::from_secs(86_400);
        let mut ring = KeyRing::new(Suite::AesCm128HmacSha1_80, day, UNIX_EPOCH + day, &mut rng).with_mki(false);
        let before = ring.keys();
        let mut seal = ZoneSeal::new(SSRC, &before).unwrap();
        assert_eq!(seal.active_mki(), None);
        assert_eq!(seal.rtp_trailer_len(), 10, "the tag only");
        // What an ffmpeg given `loa sdp`'s output holds: the current key.
        let mut sdp_receiver = SrtpReceiver::new(SSRC, before.current.key.clone(), None, 128).unwrap();
        let mut p = rtp(1);
        seal.seal_rtp(&mut p).unwrap();
        assert!(sdp_receiver.unprotect_rtp(&mut p).is_ok());

        assert!(ring.handle_timeout(UNIX_EPOCH + day * 2, &mut rng));
        let after = ring.keys();
        seal.set_keys(&after).unwrap();
        // Setting the same keys again changes nothing.
        seal.set_keys(&after).unwrap();
        let mut p = rtp(2);
        seal.seal_rtp(&mut p).unwrap();
        assert_eq!(sdp_receiver.unprotect_rtp(&mut p.clone()), Err(UnprotectError::BadAuth));
        let mut fresh_sdp = SrtpReceiver::new(SSRC, after.current.key.clone(), None, 128).unwrap();
        assert!(fresh_sdp.unprotect_rtp(&mut p).is_ok(), "a new SDP plays on");
        assert_eq!(after.current.key.expose_bytes(), before.next.key.expose_bytes());
    }

    #[test]
    fn a_zone_cannot_change_its_mki_choice_while_it_runs() {
        let mut rng = StdRng::seed_from_u64(7);
        let ring = KeyRing::new(Suite::AesCm128HmacSha1_80, Duration::from_secs(60), UNIX_EPOCH, &mut rng);
        let mut seal = ZoneSeal::new(SSRC, &ring.keys()).unwrap();
        assert_eq!(seal.set_keys(&ring.with_mki(false).keys()), Err(SetupError::MkiChoiceChanged));
    }
}
