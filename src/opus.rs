//! Opus encoder wrapper: owns frame size, bitrate, complexity and FEC
//! settings. Intended surface:
//!
//! ```ignore
//! pub struct OpusEncoder { .. }
//! impl OpusEncoder {
//!     pub fn new(audio: &config::Audio) -> Result<OpusEncoder, OpusError>;
//!     /// Samples per channel in one frame (e.g. 960 for 20 ms).
//!     pub fn frame_samples(&self) -> usize;
//!     /// Encodes exactly one frame of interleaved 48 kHz PCM into `out`,
//!     /// returns the payload length.
//!     pub fn encode(&mut self, pcm: &[f32], out: &mut [u8]) -> Result<usize, OpusError>;
//! }
//! ```
