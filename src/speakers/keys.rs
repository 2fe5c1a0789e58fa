//! What the speakers side needs of a zone's SRTP key ring (built by the
//! zones work in `src/keys/`), as a small trait so sessions and
//! revocation can be written and tested before the two meet; and the
//! revocation rule over it.
//!
//! Revocation: the revoked speaker holds the zone's current *and* next
//! key, so switching to "next" would not lock it out. Instead the next key
//! is replaced by a fresh one, handed to every remaining speaker of the
//! zone over its TLS session first, and only then made current. The
//! remaining speakers pick keys by MKI, so they play on without a gap;
//! the revoked one has no key for what follows.

use base64::Engine;

use super::join::{KeyGrant, Message};

/// One key of a ring: its MKI (carried in every packet) and the SRTP
/// master key || master salt.
#[derive(Clone, PartialEq, Eq)]
pub struct RingKey {
    pub mki: u32,
    pub material: Vec<u8>,
}

impl std::fmt::Debug for RingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key material never reaches a log line.
        f.debug_struct("RingKey").field("mki", &self.mki).finish_non_exhaustive()
    }
}

/// A zone's keys as speakers are told them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ring {
    pub ssrc: u32,
    /// `AES_CM_128_HMAC_SHA1_80` or `AEAD_AES_128_GCM` (RFC 4568 names).
    pub suite: &'static str,
    pub current: RingKey,
    pub next: Option<RingKey>,
}

impl Ring {
    /// A zone's ring from the key ring (`crate::keys`) and its SSRC.
    pub fn from_zone_keys(ssrc: u32, keys: &crate::keys::ZoneKeys) -> Ring {
        let key = |k: &crate::keys::ZoneKey| RingKey { mki: k.mki.value(), material: k.key.expose_bytes().to_vec() };
        Ring { ssrc, suite: keys.suite.sdp_name(), current: key(&keys.current), next: Some(key(&keys.next)) }
    }

    /// The ring as the join protocol's `keys` (base64 material).
    pub fn grants(&self) -> Vec<KeyGrant> {
        let grant = |k: &RingKey, current| KeyGrant { mki: k.mki, key: base64::engine::general_purpose::STANDARD.encode(&k.material), current };
        std::iter::once(grant(&self.current, true)).chain(self.next.iter().map(|k| grant(k, false))).collect()
    }
}

/// The zone key ring as the speakers side uses it.
pub trait ZoneKeys {
    fn ring(&self, zone: &str) -> Option<Ring>;
    /// Forgets the zone's next key and makes a fresh one (the current
    /// one still protects packets).
    fn renew_next(&mut self, zone: &str) -> Result<Ring, String>;
    /// The next key protects packets from the next packet on; the old
    /// current key is forgotten.
    fn switch_now(&mut self, zone: &str) -> Result<Ring, String>;
}

/// Step one of revoking a speaker of `zones`: a fresh next key for each,
/// and the `keys` message every remaining speaker of that zone must get
/// before [`ZoneKeys::switch_now`] (step two) is called.
pub fn renew_for_revocation(keys: &mut dyn ZoneKeys, zones: &[String]) -> Result<Vec<Message>, String> {
    zones
        .iter()
        .map(|zone| keys.renew_next(zone).map(|ring| Message::Keys { zone: zone.clone(), keys: ring.grants() }))
        .collect()
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
