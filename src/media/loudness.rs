//! Loudness normalisation (EBU R128): owns measuring an item's integrated
//! loudness and true peak, the gain rule, and the in-memory cache of
//! measurements keyed by the file's SHA-256 (persisted by the daemon's store).
//!
//! The gain is one constant per item, applied to the float PCM before
//! encoding: no pumping, the item's own dynamics stay as recorded.
//! Must not touch: SQLite (the daemon persists through its store thread),
//! sockets, clocks.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ebur128::{EbuR128, Mode};

use crate::config::Channels;
use crate::media::{MediaError, Source, OUTPUT_RATE};

/// Below this integrated loudness an item counts as silence: no gain.
pub const SILENCE_LUFS: f64 = -70.0;

/// What R128 measured of one item, as it goes on air (48 kHz, the
/// configured channel count).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    /// Integrated loudness, LUFS (−∞ for digital silence).
    pub integrated_lufs: f64,
    /// Highest true peak over all channels, dBTP (−∞ for silence).
    pub true_peak_dbtp: f64,
}

pub use crate::config::LoudnessSettings as Settings;

/// Gain in dB that brings `m` to the target without its true peak going
/// over the limit: `min(target − loudness, max_peak − true_peak)`.
/// Silence (or anything under the −70 LUFS gate) gets 0 dB.
pub fn gain_db(m: &Measured, settings: &Settings) -> f64 {
    if !m.integrated_lufs.is_finite() || m.integrated_lufs < SILENCE_LUFS {
        return 0.0;
    }
    let to_target = settings.target_lufs - m.integrated_lufs;
    if m.true_peak_dbtp.is_finite() {
        to_target.min(settings.true_peak_max_dbtp - m.true_peak_dbtp)
    } else {
        to_target
    }
}

/// Linear factor for a gain in dB.
pub fn factor(gain_db: f64) -> f32 {
    10f64.powf(gain_db / 20.0) as f32
}

#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error("loudness meter failed: {0}")]
    Meter(String),
}

/// Audio measured before the first play of a file the cache does not know:
/// bounds how long a cache miss can hold back an item's first frame
/// (~0.2 s at ~100× real time). The whole file is then measured beside
/// playback and cached for later plays.
pub const FIRST_PLAY_LIMIT: Duration = Duration::from_secs(20);

/// The same for live and emergency programs, which must be on air within
/// 100 ms of the command: 3 s of audio (~30 ms to measure) sets the first
/// play's gain; a spoken alert's first sentences are typical of the rest.
pub const URGENT_FIRST_PLAY_LIMIT: Duration = Duration::from_secs(3);

/// Decodes the file once (through the same decode → mix → resample path
/// as playback) and measures it: all of it, or its first `limit` of audio.
/// Returns the measurement and whether it covers the whole file.
pub fn measure(
    path: &Path,
    channels: Channels,
    limit: Option<Duration>,
) -> Result<(Measured, bool), MeasureError> {
    let meter_err = |e: ebur128::Error| MeasureError::Meter(e.to_string());
    let count = channels.count();
    let mut meter =
        EbuR128::new(count as u32, OUTPUT_RATE, Mode::I | Mode::TRUE_PEAK).map_err(meter_err)?;
    let limit_samples = limit.map(|d| (d.as_secs_f64() * f64::from(OUTPUT_RATE)) as usize * count);
    let mut samples = 0usize;
    let mut complete = true;
    let mut source = Source::open(path, channels)?;
    loop {
        match source.next_chunk() {
            Ok(Some(chunk)) => {
                let take = match limit_samples {
                    Some(max) if samples + chunk.len() >= max => {
                        complete = false;
                        (max - samples) / count * count
                    }
                    _ => chunk.len(),
                };
                meter.add_frames_f32(&chunk[..take]).map_err(meter_err)?;
                samples += take;
                if !complete {
                    break;
                }
            }
            Ok(None) => break,
            // A file damaged late (truncated) plays what decodes, and the
            // player says so; that audio is what gets measured, silently.
            Err(_) => break,
        }
    }
    let integrated_lufs = meter.loudness_global().map_err(meter_err)?;
    let mut peak = 0.0f64;
    for ch in 0..count as u32 {
        peak = peak.max(meter.true_peak(ch).map_err(meter_err)?);
    }
    let measured = Measured {
        integrated_lufs,
        true_peak_dbtp: 20.0 * peak.log10(),
    };
    Ok((measured, complete))
}

/// Measurements by content hash, shared by the program workers. Cloning
/// shares the same cache.
#[derive(Debug, Clone, Default)]
pub struct Cache {
    inner: Arc<Mutex<HashMap<String, Measured>>>,
    measured: Arc<AtomicU64>,
}

impl Cache {
    pub fn from_rows(rows: impl IntoIterator<Item = (String, Measured)>) -> Cache {
        let cache = Cache::default();
        cache
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(rows);
        cache
    }

    pub fn get(&self, sha256: &str) -> Option<Measured> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(sha256)
            .copied()
    }

    /// Remembers a fresh measurement and counts it.
    pub fn insert(&self, sha256: String, m: Measured) {
        self.measured.fetch_add(1, Ordering::Relaxed);
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sha256, m);
    }

    /// Files measured (cache misses) since this cache was made.
    pub fn measured(&self) -> u64 {
        self.measured.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(lufs: f64, tp: f64) -> Measured {
        Measured {
            integrated_lufs: lufs,
            true_peak_dbtp: tp,
        }
    }

    #[test]
    fn quiet_item_is_raised_to_the_target() {
        assert_eq!(gain_db(&m(-28.0, -20.0), &Settings::default()), 12.0);
    }

    #[test]
    fn loud_item_is_lowered_to_the_target() {
        assert_eq!(gain_db(&m(-9.0, -0.5), &Settings::default()), -7.0);
    }

    #[test]
    fn true_peak_limits_the_gain() {
        // Target wants +10 dB but the peak may only rise 4 dB to −1 dBTP.
        assert_eq!(gain_db(&m(-26.0, -5.0), &Settings::default()), 4.0);
    }

    #[test]
    fn silence_and_gated_items_get_no_gain() {
        let s = Settings::default();
        assert_eq!(gain_db(&m(f64::NEG_INFINITY, f64::NEG_INFINITY), &s), 0.0);
        assert_eq!(gain_db(&m(-75.0, -60.0), &s), 0.0);
    }

    #[test]
    fn other_targets_are_honoured() {
        let s = Settings {
            normalize: true,
            target_lufs: -23.0,
            true_peak_max_dbtp: -2.0,
        };
        assert_eq!(gain_db(&m(-20.0, -3.0), &s), -3.0);
        assert_eq!(gain_db(&m(-30.0, -6.0), &s), 4.0);
    }

    #[test]
    fn factor_is_linear_amplitude() {
        assert!((factor(-6.0206) - 0.5).abs() < 1e-4);
        assert_eq!(factor(0.0), 1.0);
    }

    fn sine_wav(path: &Path, secs: f32, amplitude: f32) {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 48_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for i in 0..(secs * 48_000.0) as usize {
            let v = (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 48_000.0).sin() * amplitude;
            w.write_sample((v * i16::MAX as f32) as i16).unwrap();
        }
        w.finalize().unwrap();
    }

    #[test]
    fn a_real_file_is_measured_whole_or_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tone.wav");
        // A 1 kHz sine at 0.5 (−6 dBFS peak): about −9 LUFS mono.
        sine_wav(&path, 6.0, 0.5);
        let (whole, complete) = measure(&path, Channels::Mono, None).unwrap();
        assert!(complete);
        assert!((whole.integrated_lufs + 9.0).abs() < 0.3, "{whole:?}");
        assert!((whole.true_peak_dbtp + 6.0).abs() < 0.3, "{whole:?}");
        let (part, complete) =
            measure(&path, Channels::Mono, Some(Duration::from_secs(2))).unwrap();
        assert!(!complete);
        assert!(
            (part.integrated_lufs - whole.integrated_lufs).abs() < 0.2,
            "{part:?}"
        );
        let (_, complete) = measure(&path, Channels::Mono, Some(Duration::from_secs(60))).unwrap();
        assert!(complete, "a limit beyond the end measures the whole file");
    }

    #[test]
    fn cache_counts_only_measurements() {
        let cache = Cache::from_rows([("aa".to_string(), m(-20.0, -3.0))]);
        assert_eq!(cache.get("aa"), Some(m(-20.0, -3.0)));
        assert_eq!(cache.get("bb"), None);
        cache.clone().insert("bb".into(), m(-30.0, -9.0));
        assert_eq!(cache.get("bb"), Some(m(-30.0, -9.0)));
        assert_eq!(cache.measured(), 1);
    }
}
