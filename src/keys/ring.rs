//! One zone's key ring and the set of them.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::rtp::srtp::{MasterKey, Mki, Suite};

/// Bytes of MKI on every packet: a counter that a daily rotation needs for
/// eleven million years, at 4 bytes a packet (2 kbit/s at 50 packets/s).
pub const MKI_LEN: u8 = 4;

/// One master key and the MKI packets protected by it carry.
#[derive(Debug, Clone)]
pub struct ZoneKey {
    pub mki: Mki,
    pub key: MasterKey,
}

/// What a receiver needs of a zone's keys: both keys, which one is in use,
/// and when the other takes over. Secret (holds the keys); `Debug` does
/// not show them.
#[derive(Debug, Clone)]
pub struct ZoneKeys {
    pub suite: Suite,
    /// Packets carry the MKI of their key (`MKI_LEN` bytes). False for a
    /// zone with `mki = false`: packets name no key, so a receiver can
    /// only use the current one, and the next key is not handed out.
    pub packets_carry_mki: bool,
    /// In use now.
    pub current: ZoneKey,
    /// Takes over at `switch_at`.
    pub next: ZoneKey,
    pub switch_at: SystemTime,
}

impl ZoneKeys {
    /// Current first, then next: the order `a=crypto` lines are printed in.
    pub fn keys(&self) -> [&ZoneKey; 2] {
        [&self.current, &self.next]
    }

    /// Bytes of MKI on every packet: `MKI_LEN`, or 0 without MKI.
    pub fn mki_len(&self) -> u8 {
        if self.packets_carry_mki {
            MKI_LEN
        } else {
            0
        }
    }
}

/// A ring as the store keeps it: raw values, checked by `KeyRing::restore`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedRing {
    pub suite: String,
    pub current_mki: u32,
    pub current_key: Vec<u8>,
    pub next_mki: u32,
    pub next_key: Vec<u8>,
    /// Milliseconds since the Unix epoch.
    pub switch_at_ms: i64,
}

/// Why a saved ring was not taken as it was: for the daemon's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreNote {
    /// Kept as saved.
    Kept,
    /// The switch came while the daemon was down: the next key took over.
    SwitchedWhileDown,
    /// Both saved keys had expired, or the suite changed, or the row was
    /// unreadable: fresh keys (SDPs saved before no longer play).
    Fresh(String),
}

/// One zone's current and next key.
#[derive(Debug, Clone)]
pub struct KeyRing {
    suite: Suite,
    /// The zone's `mki`: not saved, since it is the config's to say.
    packets_carry_mki: bool,
    rotate: Duration,
    current: ZoneKey,
    next: ZoneKey,
    switch_at: SystemTime,
    /// A revocation's next key, whose switch may come as soon as every
    /// joined speaker holds it (`switch_early`). Not saved: after a
    /// restart the hand-out time alone decides.
    revoking: bool,
}

fn mki(value: u32) -> Mki {
    Mki::new(value, MKI_LEN).expect("a 4-byte MKI holds any u32")
}

fn fresh_key<R: rand::CryptoRng + ?Sized>(suite: Suite, value: u32, rng: &mut R) -> ZoneKey {
    ZoneKey {
        mki: mki(value),
        key: MasterKey::generate(suite, rng),
    }
}

pub(super) fn to_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

fn from_ms(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

impl KeyRing {
    /// Fresh keys (MKIs 1 and 2); the next takes over `rotate` from `now`.
    pub fn new<R: rand::CryptoRng + ?Sized>(
        suite: Suite,
        rotate: Duration,
        now: SystemTime,
        rng: &mut R,
    ) -> KeyRing {
        KeyRing {
            suite,
            packets_carry_mki: true,
            rotate,
            current: fresh_key(suite, 1, rng),
            next: fresh_key(suite, 2, rng),
            switch_at: now + rotate,
            revoking: false,
        }
    }

    /// The ring saved before a restart, so SDPs handed out stay valid until
    /// their keys expire. A switch missed while down is made now; a ring
    /// whose keys both expired, of another suite, or unreadable is replaced.
    /// A shorter `rotate` than before brings the switch forward.
    pub fn restore<R: rand::CryptoRng + ?Sized>(
        saved: &SavedRing,
        suite: Suite,
        rotate: Duration,
        now: SystemTime,
        rng: &mut R,
    ) -> (KeyRing, RestoreNote) {
        let fresh = |reason: String, rng: &mut R| {
            (KeyRing::new(suite, rotate, now, rng), RestoreNote::Fresh(reason))
        };
        if saved.suite != suite.sdp_name() {
            return fresh(
                format!("the suite changed from {} to {}", saved.suite, suite.sdp_name()),
                rng,
            );
        }
        let key = |value: u32, bytes: &[u8]| -> Option<ZoneKey> {
            Some(ZoneKey {
                mki: Mki::new(value, MKI_LEN).ok()?,
                key: MasterKey::from_bytes(suite, bytes).ok()?,
            })
        };
        let (Some(current), Some(next)) = (
            key(saved.current_mki, &saved.current_key),
            key(saved.next_mki, &saved.next_key),
        ) else {
            return fresh("the saved keys are unreadable".into(), rng);
        };
        if current.mki == next.mki {
            return fresh("the saved keys share one MKI".into(), rng);
        }
        let switch_at = from_ms(saved.switch_at_ms).min(now + rotate);
        let mut ring = KeyRing {
            suite,
            packets_carry_mki: true,
            rotate,
            current,
            next,
            switch_at,
            revoking: false,
        };
        if now < ring.switch_at {
            return (ring, RestoreNote::Kept);
        }
        if now < ring.switch_at + rotate {
            ring.switch(now, rng);
            return (ring, RestoreNote::SwitchedWhileDown);
        }
        fresh("both saved keys expired while the daemon was down".into(), rng)
    }

    /// For a zone with `mki = false`: packets name no key. The ring keeps
    /// numbering its keys (the store and the logs tell them apart by it).
    pub fn with_mki(mut self, packets_carry_mki: bool) -> KeyRing {
        self.packets_carry_mki = packets_carry_mki;
        self
    }

    pub fn saved(&self) -> SavedRing {
        SavedRing {
            suite: self.suite.sdp_name().into(),
            current_mki: self.current.mki.value(),
            current_key: self.current.key.expose_bytes().to_vec(),
            next_mki: self.next.mki.value(),
            next_key: self.next.key.expose_bytes().to_vec(),
            switch_at_ms: to_ms(self.switch_at),
        }
    }

    pub fn keys(&self) -> ZoneKeys {
        ZoneKeys {
            suite: self.suite,
            packets_carry_mki: self.packets_carry_mki,
            current: self.current.clone(),
            next: self.next.clone(),
            switch_at: self.switch_at,
        }
    }

    pub fn current_mki(&self) -> Mki {
        self.current.mki
    }

    pub fn switch_at(&self) -> SystemTime {
        self.switch_at
    }

    /// Makes the switch when it is due. True when the keys changed.
    pub fn handle_timeout<R: rand::CryptoRng + ?Sized>(&mut self, now: SystemTime, rng: &mut R) -> bool {
        if now < self.switch_at {
            return false;
        }
        self.switch(now, rng);
        true
    }

    /// The next key takes over; a fresh next key is made, used one lifetime
    /// from now. The switch time is counted from `now`, not from the missed
    /// schedule, so a late switch still gives the new next key a whole
    /// lifetime of hand-out.
    fn switch<R: rand::CryptoRng + ?Sized>(&mut self, now: SystemTime, rng: &mut R) {
        let value = self.next.mki.value().wrapping_add(1).max(1);
        let next = fresh_key(self.suite, value, rng);
        self.current = std::mem::replace(&mut self.next, next);
        self.switch_at = now + self.rotate;
        self.revoking = false;
    }

    /// Revocation: whoever held the keys must not decode what follows. The
    /// next key (known to them) is replaced by a fresh one and takes over
    /// after `handout`, the time the remaining speakers get to learn it.
    pub fn rotate_now<R: rand::CryptoRng + ?Sized>(
        &mut self,
        now: SystemTime,
        handout: Duration,
        rng: &mut R,
    ) {
        let value = self.next.mki.value().wrapping_add(1).max(1);
        self.next = fresh_key(self.suite, value, rng);
        self.switch_at = self.switch_at.min(now + handout);
        self.revoking = true;
    }

    /// A revocation's next key (`next_mki`) is held by every joined speaker
    /// of the zone: the switch need not wait out the hand-out, so the
    /// revoked one (which may still hear a group) stops decoding sooner.
    /// True when the switch was brought forward to `now`; a daily next
    /// key, or a key no longer next, is left to its time.
    pub fn switch_early(&mut self, next_mki: u32, now: SystemTime) -> bool {
        if !self.revoking || self.next.mki.value() != next_mki || now >= self.switch_at {
            return false;
        }
        self.switch_at = now;
        true
    }
}

/// Every SRTP zone's ring, by zone name, with the changes not yet carried
/// out (to the pacer, the store, the speakers).
#[derive(Debug, Default)]
pub struct KeyRings {
    rings: BTreeMap<String, KeyRing>,
    changed: VecDeque<String>,
}

impl KeyRings {
    pub fn insert(&mut self, zone: &str, ring: KeyRing) {
        self.rings.insert(zone.to_string(), ring);
        self.note_change(zone);
    }

    /// A zone removed (reload) or made plain: its keys are forgotten.
    pub fn remove(&mut self, zone: &str) -> Option<KeyRing> {
        self.changed.retain(|z| z != zone);
        self.rings.remove(zone)
    }

    pub fn get(&self, zone: &str) -> Option<&KeyRing> {
        self.rings.get(zone)
    }

    pub fn zones(&self) -> impl Iterator<Item = &str> {
        self.rings.keys().map(String::as_str)
    }

    /// The earliest switch due.
    pub fn poll_timeout(&self) -> Option<SystemTime> {
        self.rings.values().map(KeyRing::switch_at).min()
    }

    pub fn handle_timeout<R: rand::CryptoRng + ?Sized>(&mut self, now: SystemTime, rng: &mut R) {
        let mut switched = Vec::new();
        for (zone, ring) in &mut self.rings {
            if ring.handle_timeout(now, rng) {
                switched.push(zone.clone());
            }
        }
        for zone in switched {
            self.note_change(&zone);
        }
    }

    /// Revocation on `zone`. False when the zone has no ring (plain RTP).
    pub fn rotate_now<R: rand::CryptoRng + ?Sized>(
        &mut self,
        zone: &str,
        now: SystemTime,
        handout: Duration,
        rng: &mut R,
    ) -> bool {
        let Some(ring) = self.rings.get_mut(zone) else {
            return false;
        };
        ring.rotate_now(now, handout, rng);
        self.note_change(zone);
        true
    }

    /// See [`KeyRing::switch_early`]; the switch itself is made by the
    /// next `handle_timeout`.
    pub fn switch_early(&mut self, zone: &str, next_mki: u32, now: SystemTime) -> bool {
        self.rings.get_mut(zone).is_some_and(|ring| ring.switch_early(next_mki, now))
    }

    /// The next zone whose keys changed since it was last polled.
    pub fn poll_change(&mut self) -> Option<String> {
        self.changed.pop_front()
    }

    fn note_change(&mut self, zone: &str) {
        if !self.changed.iter().any(|z| z == zone) {
            self.changed.push_back(zone.to_string());
        }
    }
}
