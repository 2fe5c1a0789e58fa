//! SRTP and SRTCP (RFC 3711) for every zone: AES_CM_128_HMAC_SHA1_80 by
//! default, AEAD_AES_128_GCM (RFC 7714) as an option, keys in SDP as
//! `a=crypto` (RFC 4568) and rotated by MKI.
//!
//! The transforms are libsrtp2's (Cisco; the library GStreamer's `srtpdec`
//! uses), reached through a hand-written binding in `srtp/ffi.rs`: loa
//! writes no cipher. What loa adds: keys that are zeroed and never
//! printed, the SDP and caps encodings, one context per zone and direction
//! with a checked header, refusal to protect an index twice, typed reject
//! reasons, MKI key rotation and the late joiner's rollover counter.
//!
//! Must not touch: sockets, clocks, the pacer's buffers beyond the packet
//! it is handed.

mod context;
mod ffi;
mod key;
mod receiver;
mod sdes;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_kat;
#[cfg(test)]
mod tests_no_mki;

pub use context::{is_rtcp, ProtectError, SetupError, SrtpSender, UnprotectError};
pub use key::{KeyError, KeyParam, Lifetime, MasterKey, Mki, Suite};
pub use receiver::{SrtpReceiver, DEFAULT_REPLAY_WINDOW};
pub use sdes::{CryptoAttribute, CryptoAttributeError};
