//! Per-zone RTP sender session (sans-IO). Intended surface:
//!
//! ```ignore
//! pub struct SessionConfig {
//!     pub ssrc: u32, pub initial_seq: u16, pub initial_timestamp: u32,
//!     pub payload_type: u8, pub cname: String,
//!     /// Session bandwidth used for the RFC 3550 §6.2 RTCP interval.
//!     pub session_bandwidth_bps: u32,
//!     /// Seed for the RTCP interval randomisation (RFC 3550 §6.3.1).
//!     pub rng_seed: u64,
//! }
//! pub struct Session { .. }
//! impl Session {
//!     pub fn new(cfg: SessionConfig, epoch: Instant) -> Session;
//!     /// Writes the RTP packet for one frame into `out` (cleared first).
//!     /// `media_samples` = 48 kHz samples since the epoch at which the frame
//!     /// is due (the pacer's tick), so the timestamp follows the wall clock;
//!     /// the first packet and the first after a gap carry the marker bit.
//!     pub fn handle_frame(&mut self, now: Instant, media_samples: u64, payload: &[u8], out: &mut Vec<u8>);
//!     /// When an RTCP compound (SR + SDES CNAME) is due, writes it and returns true.
//!     pub fn poll_rtcp(&mut self, now: Instant, wall: SystemTime, out: &mut Vec<u8>) -> bool;
//!     pub fn poll_timeout(&self) -> Option<Instant>;
//!     /// SR + SDES + BYE compound.
//!     pub fn bye(&mut self, now: Instant, wall: SystemTime, reason: Option<&str>, out: &mut Vec<u8>);
//!     pub fn ssrc(&self) -> u32; pub fn packets_sent(&self) -> u32; pub fn octets_sent(&self) -> u32;
//! }
//! ```
