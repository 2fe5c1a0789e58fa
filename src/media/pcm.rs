//! Raw PCM input (an operator's microphone through `loa live`): owns turning
//! a byte stream of interleaved samples in a declared format into 48 kHz
//! interleaved `f32` in the configured channel count.
//!
//! Sans-IO: bytes in, samples out, in whatever pieces the bytes arrive —
//! a sample split across two reads is kept until its other half comes.
//! Resampling uses a 10 ms chunk (not the file path's 1024 frames): every
//! buffered input frame is latency on a live broadcast.


use super::mix::{interleave, mix_planar};
use super::resample::{ResampleError, Resampler48k};
use super::OUTPUT_RATE;
use crate::config::Channels;

pub use crate::proto::pcm::{PcmEncoding, PcmFormat, PcmFormatError};

/// One sample of `encoding` from its bytes, as f32 in −1..1.
fn decode_sample(encoding: PcmEncoding, b: &[u8]) -> f32 {
    match encoding {
        PcmEncoding::S16le => i16::from_le_bytes([b[0], b[1]]) as f32 / 32_768.0,
        PcmEncoding::S32le => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 / 2_147_483_648.0,
        PcmEncoding::F32le => {
            let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            // NaN or infinity from a broken source must not reach the
            // encoder or the leveller's state.
            if v.is_finite() {
                v.clamp(-1.0, 1.0)
            } else {
                0.0
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PcmError {
    #[error(transparent)]
    Format(#[from] PcmFormatError),
    #[error("{0}")]
    Resample(String),
}

impl From<ResampleError> for PcmError {
    fn from(e: ResampleError) -> PcmError {
        PcmError::Resample(e.to_string())
    }
}

/// Raw PCM bytes → 48 kHz interleaved `f32` in the target layout.
pub struct PcmConverter {
    format: PcmFormat,
    target: Channels,
    /// Bytes of an incomplete sample frame from the previous push.
    partial: Vec<u8>,
    planes: Vec<Vec<f32>>,
    mixed: Vec<Vec<f32>>,
    resampler: Option<Resampler48k>,
    out: Vec<f32>,
}

impl PcmConverter {
    pub fn new(format: PcmFormat, target: Channels) -> Result<PcmConverter, PcmError> {
        format.check()?;
        let resampler = (format.rate != OUTPUT_RATE)
            .then(|| {
                Resampler48k::with_chunk(format.rate, target.count(), (format.rate / 100) as usize)
            })
            .transpose()?;
        Ok(PcmConverter {
            format,
            target,
            partial: Vec::with_capacity(format.frame_bytes()),
            planes: vec![Vec::new(); format.channels as usize],
            mixed: Vec::new(),
            resampler,
            out: Vec::new(),
        })
    }

    pub fn format(&self) -> PcmFormat {
        self.format
    }

    /// Converts `bytes`; returns the samples ready so far (possibly none:
    /// the resampler waits for a whole 10 ms chunk).
    pub fn push(&mut self, mut bytes: &[u8]) -> Result<&[f32], PcmError> {
        self.out.clear();
        self.planes.iter_mut().for_each(Vec::clear);
        let frame_bytes = self.format.frame_bytes();
        if !self.partial.is_empty() {
            let take = (frame_bytes - self.partial.len()).min(bytes.len());
            self.partial.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.partial.len() == frame_bytes {
                let frame = std::mem::take(&mut self.partial);
                self.split(&frame);
                self.partial = frame;
                self.partial.clear();
            }
        }
        let whole = bytes.len() / frame_bytes * frame_bytes;
        self.split(&bytes[..whole]);
        self.partial.extend_from_slice(&bytes[whole..]);
        self.convert(false)?;
        Ok(&self.out)
    }

    /// The input ended: flushes the resampler (an incomplete last sample
    /// frame is dropped).
    pub fn finish(&mut self) -> Result<&[f32], PcmError> {
        self.out.clear();
        self.planes.iter_mut().for_each(Vec::clear);
        self.partial.clear();
        self.convert(true)?;
        Ok(&self.out)
    }

    /// Appends whole sample frames in `bytes` to the planes.
    fn split(&mut self, bytes: &[u8]) {
        let width = self.format.encoding.bytes();
        for frame in bytes.chunks_exact(self.format.frame_bytes()) {
            for (plane, sample) in self.planes.iter_mut().zip(frame.chunks_exact(width)) {
                plane.push(decode_sample(self.format.encoding, sample));
            }
        }
    }

    fn convert(&mut self, last: bool) -> Result<(), PcmError> {
        let same_layout = self.planes.len() == self.target.count();
        if !same_layout {
            mix_planar(&self.planes, self.target, &mut self.mixed);
        }
        let planes = if same_layout {
            &self.planes
        } else {
            &self.mixed
        };
        match self.resampler.as_mut() {
            None => interleave(planes, 0..planes[0].len(), &mut self.out),
            Some(resampler) => {
                if !planes[0].is_empty() {
                    resampler.push(planes, &mut self.out)?;
                }
                if last {
                    resampler.finish(&mut self.out)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s16(samples: &[i16]) -> Vec<u8> {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    fn format(encoding: PcmEncoding, rate: u32, channels: u16) -> PcmFormat {
        PcmFormat {
            encoding,
            rate,
            channels,
        }
    }

    #[test]
    fn s16_mono_at_48k_passes_through_in_any_pieces() {
        let samples: Vec<i16> = (0..960).map(|i| (i * 30 - 14_000) as i16).collect();
        let bytes = s16(&samples);
        let mut c =
            PcmConverter::new(format(PcmEncoding::S16le, 48_000, 1), Channels::Mono).unwrap();
        let mut out = Vec::new();
        // Odd piece sizes split samples across pushes.
        for piece in bytes.chunks(7) {
            out.extend_from_slice(c.push(piece).unwrap());
        }
        out.extend_from_slice(c.finish().unwrap());
        assert_eq!(out.len(), 960);
        for (o, s) in out.iter().zip(&samples) {
            assert_eq!(*o, *s as f32 / 32_768.0);
        }
    }

    #[test]
    fn stereo_input_is_mixed_to_mono_and_mono_spread_to_stereo() {
        let bytes = s16(&[16_384, 0, 16_384, 0]);
        let mut c =
            PcmConverter::new(format(PcmEncoding::S16le, 48_000, 2), Channels::Mono).unwrap();
        assert_eq!(c.push(&bytes).unwrap(), &[0.25, 0.25]);
        let mut c =
            PcmConverter::new(format(PcmEncoding::S16le, 48_000, 1), Channels::Stereo).unwrap();
        assert_eq!(c.push(&s16(&[16_384])).unwrap(), &[0.5, 0.5]);
    }

    #[test]
    fn float_and_s32_decode_and_bad_floats_become_silence() {
        let mut bytes = Vec::new();
        for v in [0.5f32, f32::NAN, f32::INFINITY, 3.0] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let mut c =
            PcmConverter::new(format(PcmEncoding::F32le, 48_000, 1), Channels::Mono).unwrap();
        assert_eq!(c.push(&bytes).unwrap(), &[0.5, 0.0, 0.0, 1.0]);
        let mut c =
            PcmConverter::new(format(PcmEncoding::S32le, 48_000, 1), Channels::Mono).unwrap();
        assert_eq!(c.push(&i32::MIN.to_le_bytes()).unwrap(), &[-1.0]);
    }

    #[test]
    fn other_rates_resample_to_the_right_length_with_little_delay() {
        for rate in [8_000u32, 16_000, 22_050, 44_100] {
            let frames = rate as usize; // one second
            let samples: Vec<i16> = (0..frames)
                .map(|i| {
                    ((2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin() * 16_000.0)
                        as i16
                })
                .collect();
            let mut c =
                PcmConverter::new(format(PcmEncoding::S16le, rate, 1), Channels::Mono).unwrap();
            let mut out = Vec::new();
            // Pushed in 5 ms pieces, as a capture device delivers.
            let mut first_output_after = None;
            for (n, piece) in s16(&samples).chunks(rate as usize / 200 * 2).enumerate() {
                out.extend_from_slice(c.push(piece).unwrap());
                if first_output_after.is_none() && !out.is_empty() {
                    first_output_after = Some((n + 1) * 5);
                }
            }
            out.extend_from_slice(c.finish().unwrap());
            assert!(
                (47_990..=48_010).contains(&out.len()),
                "{rate} Hz: {} samples",
                out.len()
            );
            let first = first_output_after.unwrap();
            assert!(
                first <= 40,
                "{rate} Hz: first output after {first} ms of input"
            );
            let rms = (out[4_800..43_200].iter().map(|v| v * v).sum::<f32>() / 38_400.0).sqrt();
            assert!(
                (rms - 16_000.0 / 32_768.0 / 2f32.sqrt()).abs() < 0.02,
                "{rate} Hz: rms {rms}"
            );
        }
    }

    #[test]
    fn formats_parse_check_and_print() {
        assert_eq!("S16_LE".parse::<PcmEncoding>().unwrap(), PcmEncoding::S16le);
        let err = "mp3".parse::<PcmEncoding>().unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown PCM format \"mp3\"; expected s16le, s32le or f32le"
        );
        assert!(format(PcmEncoding::S16le, 4_000, 1).check().is_err());
        assert!(format(PcmEncoding::S16le, 48_000, 0).check().is_err());
        let f = format(PcmEncoding::S16le, 16_000, 1);
        assert_eq!(f.to_string(), "s16le 16000 Hz mono");
        assert_eq!(f.bytes_for_ms(20), 640);
        assert_eq!(f.ms_of(640), 20);
        let json = serde_json::to_value(f).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"format": "s16le", "rate": 16000, "channels": 1})
        );
    }
}
