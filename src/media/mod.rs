//! Media input: owns turning an audio file into 48 kHz interleaved `f32` PCM
//! in the configured channel count — decode (symphonia, packet by packet),
//! channel mix, resample (rubato, only when the rate differs).
//!
//! Memory is independent of file length: nothing here holds more than a few
//! packets' worth of audio. Must not touch: encoding, sockets, clocks.

pub mod capture;
pub mod chime;
mod decode;
pub mod hash;
pub mod leveller;
pub mod loudness;
mod mix;
pub mod opus;
mod pcm;
mod resample;
#[doc(hidden)]
pub mod signals;
pub mod tts;

pub use decode::{MediaError, Source};
pub use pcm::{PcmConverter, PcmEncoding, PcmError, PcmFormat};

/// Output sample rate of this module; the RTP/Opus clock.
pub const OUTPUT_RATE: u32 = 48_000;
