//! How much of the live input's energy sits in narrow spectral peaks: what
//! tells a steady programme source (a test tone, a siren, a music bed) from
//! the room's noise (fan, traffic, rain), which the level alone cannot — both
//! can be steady, with no pause to compare against.
//!
//! Sans-IO, allocation-free after `new`: the leveller pushes its K-weighted
//! samples (channels summed); every 50 ms frame is windowed (Hann) and
//! transformed; a bin between 200 Hz and 8 kHz is *tonal* when its power is
//! [`PEAK_RATIO`] times the lower quartile of the 16 bins on *each* side.
//! The tonal share of a stretch of audio is the energy of its tonal bins
//! over the energy of all its bins in that band.
//!
//! Why this measure (measured in the leveller's tests on made-up signals,
//! 1 s shares over 60 s of each): noise of any colour — white, pink, brown,
//! traffic-like brown noise swelling and fading, fan-like pink noise with a
//! weak blade tone, rain-like clicks, 50 Hz hum and a 50 Hz buzz of 30
//! harmonics — stays under 0.09; sine tones, wail, yelp and hi-lo sirens
//! (sine and square), chords with harmonics and vibrato, chords with a bass,
//! kick and hi-hat beat, and real speech stay over 0.46.
//! - Peaks against the *lower quartile* of their neighbours, not the mean or
//!   median: chords put many partials within ±320 Hz, which lift a mean or a
//!   median to the partials' own level; the valleys between them stay low.
//! - The larger of the two sides' quartiles: on a steep noise slope (brown
//!   noise, traffic rumble) the quieter side alone would make every
//!   low-frequency bin a "peak".
//! - 50 ms frames (20 Hz bins): long enough to resolve partials 60 Hz apart,
//!   short enough that a yelp siren sweeping ~6 kHz/s stays within a few bins.
//! - From 200 Hz: mains hum (50/60 Hz and its first harmonics) is the
//!   commonest tonal room noise and must not count as programme.
//!
//! Known limits: a drum loop without tonal instruments, applause, a whisper
//! or a pink-noise test signal is not tonal, so the leveller holds its gain
//! on them; a tonal sound *in the room* above 200 Hz (a whining machine, a
//! radio playing nearby) is tonal, and is levelled if it lasts.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use crate::media::OUTPUT_RATE;

/// Analysis frame, samples at 48 kHz (50 ms): two per 100 ms hop of the
/// leveller, so a hop's share is exact.
pub const FRAME: usize = OUTPUT_RATE as usize / 20;

/// Band analysed, Hz.
const LOW_HZ: f64 = 200.0;
const HIGH_HZ: f64 = 8_000.0;

/// Bins on each side that make a bin's reference level (16 × 20 Hz).
const SIDE_BINS: usize = 16;

/// A side's reference is the 5th smallest of its 16 bins (0-based index 4,
/// its lower quartile).
const QUARTILE_INDEX: usize = SIDE_BINS / 4;

/// A tonal bin is at least this many times (13 dB) over its reference. For
/// noise a bin's power is exponentially distributed and the 5th smallest
/// of 16 is ≈ 0.36 of their mean, so P(bin > 20 × 0.36 × mean) ≈
/// e^−7.2 ≈ 0.07 %, carrying ≈ 0.6 % of the energy; a sine's main lobe is
/// 40 dB and more over its valleys.
const PEAK_RATIO: f64 = 20.0;

/// Tonal share at or over which input counts as a tonal source.
pub const TONAL_SHARE: f64 = 0.3;

/// Tonal and total energy in the band, summed over some frames.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Share {
    pub tonal: f64,
    pub total: f64,
}

impl Share {
    pub fn add(self, other: Share) -> Share {
        Share {
            tonal: self.tonal + other.tonal,
            total: self.total + other.total,
        }
    }

    /// Whether the tonal share is at least [`TONAL_SHARE`]; digital silence
    /// is not tonal.
    pub fn is_tonal(self) -> bool {
        self.total > 0.0 && self.tonal >= TONAL_SHARE * self.total
    }

    /// The tonal share, 0 for silence.
    #[cfg(test)]
    pub fn ratio(self) -> f64 {
        if self.total > 0.0 {
            self.tonal / self.total
        } else {
            0.0
        }
    }
}

/// Frame buffer, FFT and the share of the current hop.
#[derive(Clone)]
pub struct Tonality {
    fft: Arc<dyn RealToComplex<f64>>,
    window: Vec<f64>,
    frame: Vec<f64>,
    filled: usize,
    spectrum: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
    power: Vec<f64>,
    side: [f64; SIDE_BINS],
    low_bin: usize,
    high_bin: usize,
    /// Share of the frames completed since the last `take`.
    pending: Share,
}

impl std::fmt::Debug for Tonality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tonality")
            .field("filled", &self.filled)
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl Tonality {
    pub fn new() -> Tonality {
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(FRAME);
        let window = (0..FRAME)
            .map(|n| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / FRAME as f64).cos())
            .collect();
        let bin_hz = f64::from(OUTPUT_RATE) / FRAME as f64;
        let bins = FRAME / 2 + 1;
        Tonality {
            frame: fft.make_input_vec(),
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            fft,
            window,
            filled: 0,
            power: vec![0.0; bins],
            side: [0.0; SIDE_BINS],
            // Every band bin has 16 bins on each side, none of them DC.
            low_bin: ((LOW_HZ / bin_hz).round() as usize).max(SIDE_BINS + 1),
            high_bin: ((HIGH_HZ / bin_hz).round() as usize).min(bins - 1 - SIDE_BINS),
            pending: Share::default(),
        }
    }

    /// One (K-weighted, channel-summed) sample.
    #[inline]
    pub fn push(&mut self, x: f64) {
        self.frame[self.filled] = x * self.window[self.filled];
        self.filled += 1;
        if self.filled == FRAME {
            self.filled = 0;
            self.analyse();
        }
    }

    /// The share of the frames completed since the last call.
    pub fn take(&mut self) -> Share {
        std::mem::take(&mut self.pending)
    }

    fn analyse(&mut self) {
        let done =
            self.fft
                .process_with_scratch(&mut self.frame, &mut self.spectrum, &mut self.scratch);
        // Lengths are fixed at construction, so this cannot fail; a frame
        // that did would only be left out of the share.
        if done.is_err() {
            return;
        }
        for (p, c) in self.power.iter_mut().zip(&self.spectrum) {
            *p = c.norm_sqr();
        }
        let mut share = Share::default();
        for bin in self.low_bin..=self.high_bin {
            let p = self.power[bin];
            share.total += p;
            let below = quartile(&mut self.side, &self.power[bin - SIDE_BINS..bin]);
            let above = quartile(&mut self.side, &self.power[bin + 1..=bin + SIDE_BINS]);
            if p > PEAK_RATIO * below.max(above) {
                share.tonal += p;
            }
        }
        self.pending = self.pending.add(share);
    }
}

/// The lower quartile of `bins` (16 values), using `scratch`.
fn quartile(scratch: &mut [f64; SIDE_BINS], bins: &[f64]) -> f64 {
    scratch.copy_from_slice(bins);
    *scratch
        .select_nth_unstable_by(QUARTILE_INDEX, f64::total_cmp)
        .1
}
