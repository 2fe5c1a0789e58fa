//! Zone keys: each SRTP zone's key ring (the current master key and the
//! next one, with their MKIs, and when the next takes over), without I/O.
//!
//! Why a ring of two: the next key is made when the current one takes over,
//! a whole key lifetime before it is used, so every receiver that learns
//! the keys (an SDP from `loa sdp`, a joined speaker) already holds the key
//! of the coming switch. Packets name their key by MKI (RFC 3711 §3.1), so
//! the switch needs no signalling: the pacer starts using the next key at a
//! packet boundary and receivers follow the MKI. Revocation replaces the
//! next key (the revoked party knew it) and brings the switch forward.
//!
//! Owns: the rings, the schedule of switches, the MKI numbering, the form
//! saved in the store. Time (the wall clock, since keys outlive restarts)
//! and randomness come in as arguments.
//!
//! Must not touch: sockets, files, the store, the pacer (the daemon carries
//! changes to them).

mod ring;
#[cfg(test)]
mod tests;

pub use ring::{KeyRing, KeyRings, RestoreNote, SavedRing, ZoneKey, ZoneKeys, MKI_LEN};
