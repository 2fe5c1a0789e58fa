//! Sample-rate conversion to 48 kHz with rubato's FFT resampler, streaming.
//!
//! The FFT (synchronous) resampler is exact for the fixed rational ratios
//! files come in (44.1→48 kHz is 147:160) and several times cheaper than a
//! sinc interpolator of similar quality. Its delay is trimmed from the start
//! and the tail is flushed at the end, so output is time-aligned with the
//! input and exactly `ceil(input · 48000 / rate)` frames long.

use rubato::audioadapter_buffers::direct::{SequentialSliceOfSlices, SequentialSliceOfVecs};
use rubato::{Fft, FixedSync, Indexing, Resampler};

use super::mix::interleave;
use super::OUTPUT_RATE;

/// Input frames per resampler call: large enough to amortise the FFTs,
/// small enough that a chunk is a few tens of milliseconds.
const CHUNK_FRAMES: usize = 1024;

/// Channels this resampler is ever asked for (the target layout).
const MAX_CHANNELS: usize = 2;

pub(crate) struct Resampler48k {
    inner: Fft<f32>,
    channels: usize,
    rate: u32,
    /// Planar input not yet resampled (less than one chunk per channel).
    pending: Vec<Vec<f32>>,
    /// Planar output of one call.
    scratch: Vec<Vec<f32>>,
    /// Output frames still to drop: the resampler's delay.
    skip: usize,
    input_frames: u64,
    output_frames: u64,
}

/// The FFT resampler works on blocks: block `k` of output (`block_out`
/// frames before the delay is trimmed) depends only on input blocks `k` and
/// `k − 1` (`block_in` frames each; the filter is shorter than a block and
/// its tail overlaps into the next). So a fresh resampler fed from input
/// frame `b·block_in` yields, from its second block on, exactly the output a
/// resampler fed from frame 0 gives there, shifted by `b·block_out` — which
/// is how a source starts mid-file sample-exact (`Source::open_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grid {
    pub(crate) block_in: usize,
    pub(crate) block_out: usize,
    /// Output frames trimmed from the start (the filter's delay).
    pub(crate) delay: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot resample from {rate} Hz: {reason}")]
pub struct ResampleError {
    pub rate: u32,
    pub reason: String,
}

impl Resampler48k {
    pub(crate) fn new(rate: u32, channels: usize) -> Result<Self, ResampleError> {
        Self::with_chunk(rate, channels, CHUNK_FRAMES)
    }

    /// A resampler taking `chunk_frames` input frames per call: small for
    /// live input, where every buffered frame is latency.
    pub(crate) fn with_chunk(rate: u32, channels: usize, chunk_frames: usize) -> Result<Self, ResampleError> {
        let err = |e: &dyn std::fmt::Display| ResampleError {
            rate,
            reason: e.to_string(),
        };
        if !(1..=MAX_CHANNELS).contains(&channels) {
            return Err(err(&format!("{channels} channels (1 or 2 expected)")));
        }
        let inner = Fft::<f32>::new(rate as usize, OUTPUT_RATE as usize, chunk_frames, channels, FixedSync::Input)
            .map_err(|e| err(&e))?;
        let skip = inner.output_delay();
        let scratch = vec![vec![0.0; inner.output_frames_max()]; channels];
        Ok(Resampler48k {
            inner,
            channels,
            rate,
            pending: vec![Vec::with_capacity(chunk_frames * 2); channels],
            scratch,
            skip,
            input_frames: 0,
            output_frames: 0,
        })
    }

    /// The block grid the output is exact on (see [`Grid`]).
    pub(crate) fn grid(&self) -> Grid {
        Grid {
            block_in: self.inner.fft_size_in(),
            block_out: self.inner.fft_size_out(),
            delay: self.inner.output_delay(),
        }
    }

    /// Resamples `input` (planar, one plane per channel, equal lengths),
    /// appending what is ready to `out` (interleaved).
    pub(crate) fn push(&mut self, input: &[Vec<f32>], out: &mut Vec<f32>) -> Result<(), ResampleError> {
        debug_assert_eq!(input.len(), self.channels);
        self.input_frames += input[0].len() as u64;
        for (pending, plane) in self.pending.iter_mut().zip(input) {
            pending.extend_from_slice(plane);
        }
        let need = self.inner.input_frames_next();
        let mut offset = 0;
        while self.pending[0].len() - offset >= need {
            self.run(offset, None, out)?;
            offset += need;
        }
        self.pending.iter_mut().for_each(|p| {
            p.drain(..offset);
        });
        Ok(())
    }

    /// Flushes the tail: the last partial chunk and the delay line.
    pub(crate) fn finish(&mut self, out: &mut Vec<f32>) -> Result<(), ResampleError> {
        let expected = (self.input_frames * OUTPUT_RATE as u64).div_ceil(self.rate as u64);
        let partial = self.pending[0].len();
        let need = self.inner.input_frames_next();
        self.pending.iter_mut().for_each(|p| p.resize(need, 0.0));
        self.run(0, Some(partial), out)?;
        while self.output_frames < expected {
            self.pending.iter_mut().for_each(|p| p.iter_mut().for_each(|v| *v = 0.0));
            self.run(0, Some(0), out)?;
        }
        let excess = (self.output_frames - expected) as usize;
        out.truncate(out.len() - excess * self.channels);
        self.output_frames = expected;
        self.pending.iter_mut().for_each(Vec::clear);
        Ok(())
    }

    fn run(&mut self, offset: usize, partial: Option<usize>, out: &mut Vec<f32>) -> Result<(), ResampleError> {
        let err = |e: &dyn std::fmt::Display| ResampleError {
            rate: self.rate,
            reason: e.to_string(),
        };
        let frames_in = self.inner.input_frames_next();
        let mut planes: [&[f32]; MAX_CHANNELS] = [&[]; MAX_CHANNELS];
        for (slot, pending) in planes.iter_mut().zip(&self.pending) {
            *slot = &pending[offset..offset + frames_in];
        }
        let input =
            SequentialSliceOfSlices::new(&planes[..self.channels], self.channels, frames_in).map_err(|e| err(&e))?;
        let frames_out_max = self.scratch[0].len();
        let mut output =
            SequentialSliceOfVecs::new_mut(&mut self.scratch, self.channels, frames_out_max).map_err(|e| err(&e))?;
        let indexing = partial.map(|n| Indexing {
            partial_len: Some(n),
            ..Indexing::default()
        });
        let (_, produced) = self
            .inner
            .process_into_buffer(&input, &mut output, indexing.as_ref())
            .map_err(|e| err(&e))?;
        let drop = self.skip.min(produced);
        self.skip -= drop;
        interleave(&self.scratch, drop..produced, out);
        self.output_frames += (produced - drop) as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, freq: f32, frames: usize) -> Vec<f32> {
        (0..frames)
            .map(|i| (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin() * 0.5)
            .collect()
    }

    fn resample_all(rate: u32, input: &[f32], push_size: usize) -> Vec<f32> {
        let mut r = Resampler48k::new(rate, 1).unwrap();
        let mut out = Vec::new();
        for chunk in input.chunks(push_size) {
            r.push(&[chunk.to_vec()], &mut out).unwrap();
        }
        r.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn output_length_is_exactly_the_converted_input_length() {
        for (rate, frames) in [(44_100, 44_100), (22_050, 12_345), (8_000, 799), (96_000, 100_001)] {
            let out = resample_all(rate, &sine(rate, 440.0, frames), 1000);
            let expected = (frames as u64 * 48_000).div_ceil(rate as u64) as usize;
            assert_eq!(out.len(), expected, "{rate} Hz");
        }
    }

    #[test]
    fn output_is_time_aligned_with_the_input() {
        // A click at 0.5 s must come out at 0.5 s, not delayed by the filter.
        let rate = 44_100;
        let mut input = vec![0.0f32; rate as usize];
        input[rate as usize / 2] = 1.0;
        let out = resample_all(rate, &input, 512);
        let peak = out
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().partial_cmp(&b.1.abs()).unwrap())
            .unwrap()
            .0;
        assert!((peak as i64 - 24_000).abs() <= 2, "click at {peak}");
    }

    #[test]
    fn stereo_channels_stay_apart_and_aligned() {
        // A tone on the left, a click on the right: the right stays silent
        // but for the click, which comes out at the same time as on input.
        let rate = 44_100;
        let left = sine(rate, 1000.0, 44_100);
        let mut right = vec![0.0f32; 44_100];
        right[22_050] = 1.0;
        let mut r = Resampler48k::new(rate, 2).unwrap();
        let mut out = Vec::new();
        for (l, rr) in left.chunks(1000).zip(right.chunks(1000)) {
            r.push(&[l.to_vec(), rr.to_vec()], &mut out).unwrap();
        }
        r.finish(&mut out).unwrap();
        assert_eq!(out.len(), 2 * 48_000);
        let (l, rr): (Vec<f32>, Vec<f32>) = out.chunks(2).map(|f| (f[0], f[1])).unzip();
        let peak = rr.iter().enumerate().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).unwrap().0;
        assert!((peak as i64 - 24_000).abs() <= 2, "click at {peak}");
        assert!(rr[..23_000].iter().all(|v| v.abs() < 1e-3), "right channel picked up the left");
        let rms = (l[4800..43_200].iter().map(|v| v * v).sum::<f32>() / 38_400.0).sqrt();
        assert!((rms - 0.3536).abs() < 0.01, "left rms {rms}");
    }

    #[test]
    fn a_resampler_fed_from_a_block_boundary_matches_the_full_output_from_its_second_block() {
        // The property `Source::open_at` relies on, for every rate files
        // come in: identical to the bit, not merely close.
        for rate in [8_000, 22_050, 44_100, 96_000] {
            let input: Vec<f32> = (0..rate as usize * 2).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
            let full = resample_all(rate, &input, 1000);
            let grid = Resampler48k::new(rate, 1).unwrap().grid();
            for target in [grid.block_out, 30_000, full.len() - 960] {
                let block = (target + grid.delay) / grid.block_out - 1;
                let rest = resample_all(rate, &input[block * grid.block_in..], 1000);
                let skip = target - block * grid.block_out;
                assert_eq!(&rest[skip..], &full[target..], "{rate} Hz from output frame {target}");
            }
        }
    }

    #[test]
    fn a_tone_keeps_its_frequency_and_level() {
        let out = resample_all(22_050, &sine(22_050, 1000.0, 22_050), 777);
        let mid = &out[4800..43_200];
        let crossings = mid.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
        assert!((1598..=1602).contains(&crossings), "{crossings} crossings in 0.8 s");
        let rms = (mid.iter().map(|v| v * v).sum::<f32>() / mid.len() as f32).sqrt();
        assert!((rms - 0.3536).abs() < 0.01, "rms {rms}");
    }
}
