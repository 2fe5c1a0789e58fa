//! Where the speaker's audio goes: a 48 kHz 16-bit WAV file, or raw s16le
//! PCM on stdout for `aplay -f S16_LE -r 48000 -c N`.
//!
//! Owns: sample conversion and the file. Must not touch: decoding, timing.
//!
//! The WAV header is rewritten every second (`flush`), so a speaker killed
//! without a chance to finalise still leaves a readable file.

use std::fs::File;
use std::io::{self, BufWriter, Stdout, Write};
use std::path::{Path, PathBuf};

/// Where `--out` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    Wav(PathBuf),
    /// Raw s16le interleaved on stdout (`--out -`).
    Stdout,
    /// Decode and count, write nothing.
    Discard,
}

#[derive(thiserror::Error, Debug)]
pub enum OutputError {
    #[error("cannot write WAV {path}: {source}")]
    Wav {
        path: PathBuf,
        #[source]
        source: hound::Error,
    },
    #[error("cannot write audio to stdout: {0}")]
    Stdout(#[source] io::Error),
}

pub enum Output {
    Wav {
        writer: hound::WavWriter<BufWriter<File>>,
        path: PathBuf,
    },
    Stdout(BufWriter<Stdout>),
    Discard,
}

impl Output {
    pub fn open(target: &OutputTarget, channels: u16) -> Result<Output, OutputError> {
        Ok(match target {
            OutputTarget::Wav(path) => {
                let spec = hound::WavSpec {
                    channels,
                    sample_rate: 48_000,
                    bits_per_sample: 16,
                    sample_format: hound::SampleFormat::Int,
                };
                let writer = hound::WavWriter::create(path, spec)
                    .map_err(|source| wav_error(path, source))?;
                Output::Wav {
                    writer,
                    path: path.clone(),
                }
            }
            OutputTarget::Stdout => Output::Stdout(BufWriter::new(io::stdout())),
            OutputTarget::Discard => Output::Discard,
        })
    }

    /// Appends interleaved samples in [-1, 1], clipped to 16 bits.
    pub fn write(&mut self, pcm: &[f32]) -> Result<(), OutputError> {
        match self {
            Output::Wav { writer, path } => {
                for &v in pcm {
                    writer
                        .write_sample(to_i16(v))
                        .map_err(|source| wav_error(path, source))?;
                }
            }
            Output::Stdout(out) => {
                for &v in pcm {
                    out.write_all(&to_i16(v).to_le_bytes())
                        .map_err(OutputError::Stdout)?;
                }
                // One write per frame: whatever reads the pipe (aplay) gets
                // each frame when it is due, not a second later.
                out.flush().map_err(OutputError::Stdout)?;
            }
            Output::Discard => {}
        }
        Ok(())
    }

    /// Pushes buffered audio out; for a WAV also updates the header's sizes.
    pub fn flush(&mut self) -> Result<(), OutputError> {
        match self {
            Output::Wav { writer, path } => {
                writer.flush().map_err(|source| wav_error(path, source))
            }
            Output::Stdout(out) => out.flush().map_err(OutputError::Stdout),
            Output::Discard => Ok(()),
        }
    }

    pub fn finish(self) -> Result<(), OutputError> {
        match self {
            Output::Wav { writer, path } => {
                writer.finalize().map_err(|source| wav_error(&path, source))
            }
            Output::Stdout(mut out) => out.flush().map_err(OutputError::Stdout),
            Output::Discard => Ok(()),
        }
    }
}

fn wav_error(path: &Path, source: hound::Error) -> OutputError {
    OutputError::Wav {
        path: path.to_path_buf(),
        source,
    }
}

fn to_i16(v: f32) -> i16 {
    (v.clamp(-1.0, 1.0) * f32::from(i16::MAX)).round() as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_clipped_to_16_bits() {
        assert_eq!(to_i16(0.0), 0);
        assert_eq!(to_i16(1.5), i16::MAX);
        assert_eq!(to_i16(-2.0), -i16::MAX);
        assert_eq!(to_i16(0.5), 16384);
    }

    #[test]
    fn a_wav_is_48k_16_bit_and_readable_after_flush_and_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.wav");
        let mut out = Output::open(&OutputTarget::Wav(path.clone()), 1).unwrap();
        out.write(&[0.0, 0.5, -0.5]).unwrap();
        out.flush().unwrap();
        assert_eq!(
            hound::WavReader::open(&path).unwrap().len(),
            3,
            "readable mid-way"
        );
        out.write(&[0.25]).unwrap();
        out.finish().unwrap();
        let reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.spec().sample_rate, 48_000);
        assert_eq!(reader.spec().bits_per_sample, 16);
        assert_eq!(reader.len(), 4);
    }

    #[test]
    fn an_unwritable_path_is_a_clear_error() {
        let err = Output::open(&OutputTarget::Wav("/nonexistent-dir/x.wav".into()), 1)
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("cannot write WAV /nonexistent-dir/x.wav"),
            "{err}"
        );
    }
}
