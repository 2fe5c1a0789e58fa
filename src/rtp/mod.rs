//! RTP/RTCP per RFC 3550 and RFC 7587: packet building, RTCP compound
//! packets, the per-zone sender session (sans-IO) and SDP text.
//!
//! Must not touch: sockets or clocks — callers pass `now` and wall time in.

pub mod rtcp;
pub mod sdp;
pub mod session;
pub mod srtp;

/// RTP clock rate for Opus, always 48 kHz regardless of the audio bandwidth
/// (RFC 7587 §4.1).
pub const CLOCK_RATE: u32 = 48_000;
