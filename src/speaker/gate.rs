//! SRTP for `loa speaker --sdp` on an `RTP/SAVP` zone: every datagram is
//! verified (auth tag, replay window) and decrypted here before anything
//! else sees it, so a packet that fails never reaches the jitter buffer —
//! no SSRC switch, no reset, no gap — and is only counted.
//!
//! The first packet that authenticates under the SDP's keys fixes the
//! stream's SSRC; packets of other SSRCs are refused from then on (an
//! attacker cannot start a "new stream"), until nothing has verified for
//! `RELOCK_AFTER` (the sender restarted with a new SSRC). Keys are chosen
//! by MKI, so a rotation needs nothing from us.
//!
//! Must not touch: sockets, the clock (arrival times come in).

use std::time::{Duration, Instant};

use crate::rtp::srtp::{CryptoAttribute, KeyParam, MasterKey, Mki, SrtpReceiver, UnprotectError, DEFAULT_REPLAY_WINDOW};

/// Keys held at once: the current, the next, and one replaced by a
/// revocation's fresh next key.
const KEEP_KEYS: usize = 3;

/// Silence from the locked SSRC after which another may take over.
pub const RELOCK_AFTER: Duration = Duration::from_secs(3);

/// Datagrams refused, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rejected {
    pub bad_auth: u64,
    pub replay: u64,
    pub unknown_ssrc: u64,
    /// Too short or not RTP/RTCP at all.
    pub malformed: u64,
}

impl Rejected {
    pub fn total(&self) -> u64 {
        self.bad_auth + self.replay + self.unknown_ssrc + self.malformed
    }

    fn count(&mut self, e: &UnprotectError) {
        match e {
            UnprotectError::Replay { .. } => self.replay += 1,
            UnprotectError::UnknownSsrc { .. } => self.unknown_ssrc += 1,
            UnprotectError::Malformed(_) => self.malformed += 1,
            _ => self.bad_auth += 1,
        }
    }
}

pub struct Gate {
    crypto: CryptoAttribute,
    /// The verified stream: its SSRC, context and last verified arrival.
    locked: Option<(u32, SrtpReceiver, Instant)>,
    /// The MKI of the last RTP packet that verified.
    current_mki: Option<Mki>,
    pub rejected: Rejected,
}

impl Gate {
    pub fn new(crypto: CryptoAttribute) -> Gate {
        Gate { crypto, locked: None, rejected: Rejected::default(), current_mki: None }
    }

    fn receiver(&self, ssrc: u32) -> Option<SrtpReceiver> {
        let (first, rest) = self.crypto.keys.split_first()?;
        let mut rx = SrtpReceiver::new(ssrc, first.key.clone(), first.mki, DEFAULT_REPLAY_WINDOW).ok()?;
        for key in rest {
            rx.add_key(key.key.clone(), key.mki?).ok()?;
        }
        Some(rx)
    }

    /// A key handed over later (a joined speaker's `keys` message), known
    /// by its MKI from then on. The oldest keys beyond `KEEP_KEYS` are
    /// forgotten: a rotation's old key is no use after the switch.
    pub fn add_key(&mut self, key: MasterKey, mki: Mki) {
        if self.crypto.keys.iter().any(|k| k.mki == Some(mki)) {
            return;
        }
        if let Some((_, rx, _)) = &mut self.locked {
            let _ = rx.add_key(key.clone(), mki);
        }
        self.crypto.keys.push(KeyParam { key, lifetime: None, mki: Some(mki) });
        while self.crypto.keys.len() > KEEP_KEYS {
            let old = self.crypto.keys.remove(0);
            if let (Some((_, rx, _)), Some(mki)) = (&mut self.locked, old.mki) {
                let _ = rx.remove_key(mki);
            }
        }
    }

    /// Verifies and decrypts an RTP (`rtcp` false) or SRTCP datagram in
    /// place; the length of the plain packet, or None (counted) when it
    /// must be dropped.
    pub fn open(&mut self, packet: &mut [u8], rtcp: bool, arrival: Instant) -> Option<usize> {
        let mki = if rtcp { None } else { self.mki_of(packet) };
        let opened = self.verify(packet, rtcp, arrival);
        if opened.is_some() && mki.is_some() {
            self.current_mki = mki;
        }
        opened
    }

    /// The MKI of the last RTP packet that verified: the key the zone uses
    /// now (None before the first, or for keys without an MKI).
    pub fn current_mki(&self) -> Option<Mki> {
        self.current_mki
    }

    /// The MKI a protected RTP packet carries (just before its tag), read
    /// before it is verified; it counts only once the packet verifies.
    fn mki_of(&self, packet: &[u8]) -> Option<Mki> {
        let len = self.crypto.keys.first()?.mki?.byte_len();
        let end = packet.len().checked_sub(self.crypto.suite.tag_len())?;
        let bytes = packet.get(end.checked_sub(usize::from(len))?..end)?;
        let value = bytes.iter().fold(0u32, |v, b| (v << 8) | u32::from(*b));
        Mki::new(value, len).ok()
    }

    /// A sender of this speaker's reports as SRTCP under the zone's keys
    /// (`ssrc` is the speaker's own), so loa can tell them from anyone's:
    /// every key of the SDP, the first in use until `current_mki` says
    /// the zone moved on.
    pub fn report_sender(&self, ssrc: u32) -> Option<crate::rtp::srtp::SrtpSender> {
        let (first, rest) = self.crypto.keys.split_first()?;
        let mut tx = crate::rtp::srtp::SrtpSender::new(ssrc, first.key.clone(), first.mki).ok()?;
        for key in rest {
            tx.add_key(key.key.clone(), key.mki?).ok()?;
        }
        Some(tx)
    }

    fn verify(&mut self, packet: &mut [u8], rtcp: bool, arrival: Instant) -> Option<usize> {
        let at = if rtcp { 4 } else { 8 };
        let Some(ssrc) = packet.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])) else {
            self.rejected.malformed += 1;
            return None;
        };
        let relock = self.locked.as_ref().is_some_and(|(_, _, last)| arrival.saturating_duration_since(*last) > RELOCK_AFTER);
        match &mut self.locked {
            Some((locked, rx, last)) if *locked == ssrc => {
                let result = if rtcp { rx.unprotect_rtcp(packet) } else { rx.unprotect_rtp(packet) };
                match result {
                    Ok(len) => {
                        *last = arrival;
                        Some(len)
                    }
                    Err(e) => {
                        self.rejected.count(&e);
                        None
                    }
                }
            }
            Some(_) if !relock => {
                self.rejected.unknown_ssrc += 1;
                None
            }
            // Not locked yet (or the locked stream went quiet): a fresh
            // context for this SSRC, kept only if the packet verifies.
            _ => {
                let Some(mut rx) = self.receiver(ssrc) else {
                    self.rejected.bad_auth += 1;
                    return None;
                };
                let result = if rtcp { rx.unprotect_rtcp(packet) } else { rx.unprotect_rtp(packet) };
                match result {
                    Ok(len) => {
                        self.locked = Some((ssrc, rx, arrival));
                        Some(len)
                    }
                    Err(e) => {
                        self.rejected.count(&e);
                        None
                    }
                }
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::rtp::srtp::{SrtpSender, Suite};

    /// A 20 ms Opus-shaped RTP packet of `ssrc` (the other speaker tests'
    /// too).
    pub(in crate::speaker) fn rtp(ssrc: u32, seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 96];
        p.extend(seq.to_be_bytes());
        p.extend(960u32.wrapping_mul(u32::from(seq)).to_be_bytes());
        p.extend(ssrc.to_be_bytes());
        p.extend([0xfc, 1, 2, 3, 4, 5]);
        p
    }

    fn setup() -> (SrtpSender, Gate, MasterKey) {
        let suite = Suite::AesCm128HmacSha1_80;
        let (k1, k2) = (MasterKey::generate(suite, &mut rand::rng()), MasterKey::generate(suite, &mut rand::rng()));
        let (m1, m2) = (Mki::new(1, 4).unwrap(), Mki::new(2, 4).unwrap());
        let mut tx = SrtpSender::new(7, k1.clone(), Some(m1)).unwrap();
        tx.add_key(k2.clone(), m2).unwrap();
        let crypto = CryptoAttribute {
            tag: 1,
            suite,
            keys: vec![
                KeyParam { key: k1, lifetime: None, mki: Some(m1) },
                KeyParam { key: k2, lifetime: None, mki: Some(m2) },
            ],
        };
        (tx, Gate::new(crypto), MasterKey::generate(suite, &mut rand::rng()))
    }

    #[test]
    fn only_verified_packets_pass_and_each_rejection_is_counted_by_reason() {
        let (mut tx, mut gate, wrong) = setup();
        let t = Instant::now();
        let mut sealed = Vec::new();
        for seq in 100..105 {
            let mut p = rtp(7, seq);
            tx.protect_rtp(&mut p).unwrap();
            sealed.push(p);
        }
        // Plain RTP from an attacker with another SSRC, before the lock.
        assert_eq!(gate.open(&mut rtp(9, 1), false, t), None);
        let mut first = sealed[0].clone();
        assert_eq!(gate.open(&mut first, false, t), Some(18));
        assert_eq!(&first[..18], &rtp(7, 100)[..]);
        // Plain RTP with the locked SSRC, a replay, a wrong key, a truncation.
        assert_eq!(gate.open(&mut rtp(7, 101), false, t), None);
        assert_eq!(gate.open(&mut sealed[0].clone(), false, t), None);
        let mut forged = SrtpSender::new(7, wrong, Some(Mki::new(1, 4).unwrap())).unwrap();
        let mut p = rtp(7, 102);
        forged.protect_rtp(&mut p).unwrap();
        assert_eq!(gate.open(&mut p, false, t), None);
        assert_eq!(gate.open(&mut sealed[1].clone()[..20].to_vec(), false, t), None);
        assert_eq!(gate.open(&mut rtp(9, 2), false, t), None);
        // The stream goes on untouched.
        for p in &sealed[1..] {
            assert!(gate.open(&mut p.clone(), false, t).is_some());
        }
        // The plain packets and the truncated one are too short to carry
        // a tag and MKI: malformed; the forged one fails its tag.
        assert_eq!(gate.rejected, Rejected { bad_auth: 1, replay: 1, unknown_ssrc: 1, malformed: 3 });
    }

    #[test]
    fn the_next_key_is_followed_by_its_mki() {
        let (mut tx, mut gate, _) = setup();
        let t = Instant::now();
        for seq in 0..4u16 {
            if seq == 2 {
                tx.use_key(Mki::new(2, 4).unwrap()).unwrap();
            }
            let mut p = rtp(7, seq);
            tx.protect_rtp(&mut p).unwrap();
            assert!(gate.open(&mut p, false, t).is_some(), "packet {seq}");
        }
    }

    #[test]
    fn another_ssrc_may_take_over_only_after_the_stream_went_quiet() {
        let (mut tx, mut gate, _) = setup();
        let t = Instant::now();
        let mut p = rtp(7, 1);
        tx.protect_rtp(&mut p).unwrap();
        assert!(gate.open(&mut p, false, t).is_some());
        let crypto = gate.crypto.clone();
        let mut restarted = SrtpSender::new(8, crypto.keys[0].key.clone(), crypto.keys[0].mki).unwrap();
        let mut q = rtp(8, 500);
        restarted.protect_rtp(&mut q).unwrap();
        assert_eq!(gate.open(&mut q.clone(), false, t + Duration::from_secs(1)), None);
        assert!(gate.open(&mut q, false, t + RELOCK_AFTER + Duration::from_secs(1)).is_some());
    }

    #[test]
    fn a_key_handed_over_later_opens_the_packets_under_its_mki() {
        let (mut tx, mut gate, fresh) = setup();
        let t = Instant::now();
        let mut p = rtp(7, 1);
        tx.protect_rtp(&mut p).unwrap();
        assert!(gate.open(&mut p, false, t).is_some());
        let m3 = Mki::new(3, 4).unwrap();
        tx.add_key(fresh.clone(), m3).unwrap();
        tx.use_key(m3).unwrap();
        let mut q = rtp(7, 2);
        tx.protect_rtp(&mut q).unwrap();
        assert_eq!(gate.open(&mut q.clone(), false, t), None, "not yet known");
        gate.add_key(fresh, m3);
        assert!(gate.open(&mut q, false, t).is_some());
        // A fourth key pushes out the oldest (MKI 1).
        let m4 = Mki::new(4, 4).unwrap();
        gate.add_key(MasterKey::generate(Suite::AesCm128HmacSha1_80, &mut rand::rng()), m4);
        assert_eq!(gate.crypto.keys.iter().filter_map(|k| k.mki).map(Mki::value).collect::<Vec<_>>(), [2, 3, 4]);
    }
}
