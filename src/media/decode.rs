//! Decoding with symphonia.
//!
//! Intended public surface (used by `program.rs`):
//!
//! ```ignore
//! pub struct Source { .. }
//! impl Source {
//!     /// Opens, probes and decodes the first packet, so files that are
//!     /// missing, empty, not audio or corrupt from the start fail here.
//!     pub fn open(path: &Path, channels: Channels) -> Result<Source, MediaError>;
//!     /// Total duration if the container knows it.
//!     pub fn duration(&self) -> Option<Duration>;
//!     /// Next chunk of 48 kHz interleaved samples in the target channel
//!     /// count; `Ok(None)` at end of stream. Recoverable decode errors are
//!     /// skipped with a warning; an error after audio was produced is
//!     /// returned once (the caller logs it and ends the item).
//!     pub fn next_chunk(&mut self) -> Result<Option<&[f32]>, MediaError>;
//!     /// Seconds of output produced so far.
//!     pub fn position(&self) -> Duration;
//! }
//! ```
