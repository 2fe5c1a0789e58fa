//! What a raw PCM stream (`loa live`) carries: a closed set of sample
//! encodings and the format checks, shared by the client and the daemon.

use std::fmt;
use std::str::FromStr;

/// How one sample is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PcmEncoding {
    /// Signed 16-bit little-endian (arecord's `-f S16_LE`, ffmpeg's `s16le`).
    S16le,
    /// Signed 32-bit little-endian.
    S32le,
    /// 32-bit float little-endian, nominal range −1..1.
    F32le,
}

impl PcmEncoding {
    pub const NAMES: &'static str = "s16le, s32le or f32le";

    pub fn bytes(self) -> usize {
        match self {
            PcmEncoding::S16le => 2,
            PcmEncoding::S32le | PcmEncoding::F32le => 4,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PcmEncoding::S16le => "s16le",
            PcmEncoding::S32le => "s32le",
            PcmEncoding::F32le => "f32le",
        }
    }
}

impl fmt::Display for PcmEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PcmEncoding {
    type Err = PcmFormatError;
    fn from_str(s: &str) -> Result<Self, PcmFormatError> {
        match s.to_ascii_lowercase().as_str() {
            "s16le" | "s16_le" => Ok(PcmEncoding::S16le),
            "s32le" | "s32_le" => Ok(PcmEncoding::S32le),
            "f32le" | "float_le" | "flt" => Ok(PcmEncoding::F32le),
            _ => Err(PcmFormatError::Encoding(s.to_string())),
        }
    }
}

/// What a raw PCM stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PcmFormat {
    #[serde(rename = "format")]
    pub encoding: PcmEncoding,
    pub rate: u32,
    pub channels: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PcmFormatError {
    #[error("unknown PCM format \"{0}\"; expected s16le, s32le or f32le")]
    Encoding(String),
    #[error("sample rate {0} Hz is not supported for live input (8000 to 192000)")]
    Rate(u32),
    #[error("{0} channels is not supported for live input (1 to 8)")]
    Channels(u16),
}

impl PcmFormat {
    pub fn check(&self) -> Result<(), PcmFormatError> {
        if !(8_000..=192_000).contains(&self.rate) {
            return Err(PcmFormatError::Rate(self.rate));
        }
        if !(1..=8).contains(&self.channels) {
            return Err(PcmFormatError::Channels(self.channels));
        }
        Ok(())
    }

    /// Bytes of one sample frame (one sample per channel).
    pub fn frame_bytes(&self) -> usize {
        self.encoding.bytes() * self.channels as usize
    }

    /// Bytes of `ms` milliseconds, a whole number of sample frames.
    pub fn bytes_for_ms(&self, ms: u64) -> usize {
        (self.rate as u64 * ms / 1000) as usize * self.frame_bytes()
    }

    /// Milliseconds that `bytes` last.
    pub fn ms_of(&self, bytes: usize) -> u64 {
        (bytes / self.frame_bytes()) as u64 * 1000 / self.rate as u64
    }
}

impl fmt::Display for PcmFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let layout = match self.channels {
            1 => "mono".to_string(),
            2 => "stereo".to_string(),
            n => format!("{n} ch"),
        };
        write!(f, "{} {} Hz {layout}", self.encoding, self.rate)
    }
}
