//! `zone.keys`: an SRTP zone's SSRC, suite and keys, for `loa sdp` (and
//! any tool of the operator's that must give a receiver the zone's key).
//! The answer is a secret.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneKeysParams {
    pub zone: String,
}

/// One master key.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneKeyEntry {
    /// The MKI value packets protected by this key carry.
    pub mki: u32,
    /// Key ‖ salt in base64: the RFC 4568 `inline:` key-salt.
    pub inline: String,
}

impl std::fmt::Debug for ZoneKeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoneKeyEntry").field("mki", &self.mki).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneKeysInfo {
    pub zone: String,
    pub ssrc: u32,
    /// `AES_CM_128_HMAC_SHA1_80` or `AEAD_AES_128_GCM`.
    pub suite: String,
    /// Bytes of MKI on every packet.
    pub mki_len: u8,
    /// The key in use first, then the next one.
    pub keys: Vec<ZoneKeyEntry>,
    /// When the next key takes over (RFC 3339).
    pub switch_at: String,
}
