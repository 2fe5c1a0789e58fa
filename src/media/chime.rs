//! The built-in pre-announcement chime: three decaying bell-like notes
//! (A5, F5, C5), synthesised here so every install has the same sound
//! without shipping or finding a file. The daemon writes it once to
//! `state_dir/chime.wav` and plays it as an ordinary item, so it has a
//! history row and a content hash like everything else that goes on air.
//!
//! Must not touch: scheduling, which programs get a chime (the engine).

use std::f32::consts::TAU;
use std::path::{Path, PathBuf};

/// Sample rate of the built-in chime (the pipeline's own, so no resampling).
pub const RATE: u32 = 48_000;

/// (start s, frequency Hz, decay per s, length s) of each note.
const NOTES: [(f32, f32, f32, f32); 3] = [(0.0, 880.0, 3.0, 0.7), (0.6, 698.46, 3.0, 0.7), (1.2, 523.25, 2.5, 1.4)];

/// Length of the chime.
pub const SECONDS: f32 = 2.6;

/// Level of each note (−8 dBFS; where two notes overlap the sum peaks
/// near −7 dBFS): audible before speech, not louder than it.
const PEAK: f32 = 0.4;

/// The chime as 48 kHz mono samples.
pub fn samples() -> Vec<f32> {
    let n = (SECONDS * RATE as f32) as usize;
    let fade = (0.005 * RATE as f32) as usize; // 5 ms: no click at note onsets/ends
    (0..n)
        .map(|i| {
            let t = i as f32 / RATE as f32;
            let v: f32 = NOTES
                .iter()
                .filter(|&&(start, _, _, len)| t >= start && t < start + len)
                .map(|&(start, f, decay, len)| {
                    let local = t - start;
                    let k = ((local * RATE as f32) as usize).min(((start + len - t) * RATE as f32) as usize);
                    let ramp = (k as f32 / fade as f32).min(1.0);
                    (TAU * f * local).sin() * (-decay * local).exp() * ramp
                })
                .sum();
            (v * PEAK).clamp(-1.0, 1.0)
        })
        .collect()
}

/// Writes the chime to `dir/chime.wav` (16-bit PCM) unless an identical
/// file is already there; returns its path.
pub fn write_builtin(dir: &Path) -> Result<PathBuf, hound::Error> {
    let path = dir.join("chime.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let pcm: Vec<i16> = samples().iter().map(|s| (s * i16::MAX as f32).round() as i16).collect();
    if let Ok(reader) = hound::WavReader::open(&path) {
        if reader.spec() == spec && reader.into_samples::<i16>().map_while(Result::ok).eq(pcm.iter().copied()) {
            return Ok(path);
        }
    }
    let tmp = dir.join("chime.wav.tmp");
    let mut writer = hound::WavWriter::create(&tmp, spec)?;
    for s in &pcm {
        writer.write_sample(*s)?;
    }
    writer.finalize()?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dominant frequency of a stretch by counting zero crossings.
    fn frequency(s: &[f32]) -> f32 {
        let crossings = s.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
        crossings as f32 / 2.0 / (s.len() as f32 / RATE as f32)
    }

    #[test]
    fn three_notes_falling_at_a_moderate_level() {
        let s = samples();
        assert_eq!(s.len(), (SECONDS * RATE as f32) as usize);
        let at = |t: f32| (t * RATE as f32) as usize;
        let hz = |a: f32, b: f32| frequency(&s[at(a)..at(b)]);
        assert!((hz(0.1, 0.5) - 880.0).abs() < 5.0, "{}", hz(0.1, 0.5));
        assert!((hz(0.75, 1.15) - 698.46).abs() < 5.0, "{}", hz(0.75, 1.15));
        assert!((hz(1.4, 2.0) - 523.25).abs() < 5.0, "{}", hz(1.4, 2.0));
        let peak = s.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(peak > 0.3 && peak <= 0.5, "peak {peak}");
        // Starts and ends quietly (no click).
        assert!(s[0].abs() < 1e-3 && s[s.len() - 1].abs() < 0.01);
    }

    #[test]
    fn written_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_builtin(dir.path()).unwrap();
        let reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.spec().sample_rate, RATE);
        assert_eq!(reader.duration() as usize, samples().len());
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(write_builtin(dir.path()).unwrap(), path);
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), modified, "not rewritten");
    }
}
