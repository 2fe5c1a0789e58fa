//! Leveller and peak limiter for live input (microphone or PCM on stdin):
//! owns bringing a quiet or a loud speaker to the `[audio]` loudness target
//! and keeping every sample under the peak ceiling, block by block, as the
//! audio goes to the encoder.
//!
//! Files get one constant gain per item (`loudness.rs`); live input cannot
//! be measured ahead, so this module follows the speaker's level instead.
//! It is sans-IO and allocation-free: the caller feeds 48 kHz interleaved
//! f32 blocks of any length; time is the sample count.
//! Must not touch: sockets, clocks, threads, config parsing.
//!
//! Signal chain, per frame (one sample per channel):
//!
//! 1. Sanitise: NaN and ±∞ become 0, anything beyond ±[`INPUT_LIMIT`] is
//!    clamped, so one bad sample from a driver or a pipe cannot poison the
//!    filters or the gain.
//! 2. Measure (input side, before any gain, so the gain is feed-forward and
//!    cannot oscillate): K-weighting (ITU-R BS.1770-4 filters at 48 kHz),
//!    channel energies summed with weight 1 — the same measure as the
//!    `ebur128` meter that sets file gains, so live and files meet the same
//!    LUFS target.
//! 3. Leveller gain: moves toward `target − speech level` at a bounded rate,
//!    holds when there is no speech (see [`Leveller`]).
//! 4. Limiter: 1 ms lookahead so the gain ramps down before a peak instead
//!    of jumping on it, exponential release, on the sample peak of the
//!    frame (linked over channels), then a safety clamp at the ceiling.
//!    The output is therefore [`LATENCY_FRAMES`] (1 ms) behind the input.

use crate::media::OUTPUT_RATE;

const RATE: f64 = OUTPUT_RATE as f64;

/// Input samples are clamped to ±4.0 (+12 dBFS): decoders and resamplers can
/// overshoot 1.0 a little, but a finite garbage value like 1e38 must not
/// overflow the gain arithmetic.
pub const INPUT_LIMIT: f32 = 4.0;

/// Measurement hop: 100 ms, as in EBU R128 (momentary blocks of 400 ms,
/// 75 % overlap).
const HOP_FRAMES: u32 = OUTPUT_RATE / 10;

/// Hops per momentary block (400 ms).
const HOPS_PER_BLOCK: usize = 4;

/// Momentary blocks in the speech-level window: the last 30 blocks that
/// were speech, every 100 ms, so ≈ 3 s of speech (pauses do not age it).
/// A single 400 ms block follows syllables and word gaps; levelling on it
/// would pump. Three seconds hold a couple of phrases, while a new, louder
/// speaker still dominates the energy mean within a few hundred ms (the
/// mean is taken on energy, not on dB). A speaker who gets 10 dB or more
/// quieter is under the relative gate until the louder blocks leave the
/// window, so the gain starts rising after ≈ 3 s of the quieter speech.
const WINDOW_BLOCKS: usize = 30;

/// Absolute gate, LUFS: momentary blocks under it are silence or a quiet
/// room and are not speech. For speech K-weighting changes little, so
/// this is about −50 dBFS RMS.
pub const GATE_LUFS: f64 = -50.0;

/// Noise gate, LU over the room's noise floor: in a room noisier than
/// [`GATE_LUFS`] (fan, traffic), a momentary block must be this much louder
/// than the floor to count as speech. Without it, a pause longer than the
/// level window would let the noise alone set the level and the gain would
/// climb until the noise is at the target (noise pumping). Speech under it
/// (SNR < 10 dB) is held at the current gain rather than levelled.
pub const NOISE_GATE_LU: f64 = 10.0;

/// The noise floor is the lowest 100 ms hop, rising by at most this much
/// per second so it follows a room that gets noisier; gaps between words
/// pull it back down at once. It starts at the first hop heard: the room
/// as the live input opens. A speaker already talking then is levelled
/// from the first gap between words (within a second, as a rule); a
/// steady sound from the first instant with no gap at all (a test tone)
/// is taken for the room and passes at its own level, limited — the safe
/// side.
pub const NOISE_FLOOR_RISE_DB_PER_S: f64 = 0.5;

/// The floor never goes under this (LUFS), so after digital silence it
/// still rises to a noisy room's level in finite time.
const NOISE_FLOOR_MIN_LUFS: f64 = -70.0;

/// Relative gate, LU under the absolute-gated mean of the window (as in
/// BS.1770-4 for integrated loudness): keeps onsets, breaths and word
/// tails that pass the other gates out of the speech level.
pub const RELATIVE_GATE_LU: f64 = -10.0;

/// Fastest the leveller gain rises, dB per second. Slow enough that a short
/// quiet phrase is not boosted into the next loud one; a speaker 20 dB
/// under the target is at it after ≈ 3.4 s of speech (0.4 s to fill the
/// first momentary block, then 20 dB / 6 dB/s).
pub const GAIN_UP_DB_PER_S: f64 = 6.0;

/// Fastest the leveller gain falls, dB per second: a speaker who leans into
/// the microphone is brought down within about a second; the limiter
/// covers the peaks meanwhile.
pub const GAIN_DOWN_DB_PER_S: f64 = 20.0;

/// Leveller gain bounds, dB. +24 dB lifts a speaker at −40 LUFS to the
/// default −16 target; more would mostly lift room noise. −12 dB brings a
/// hot −4 LUFS input down to −16.
pub const GAIN_MIN_DB: f64 = -12.0;
pub const GAIN_MAX_DB: f64 = 24.0;

/// The leveller starts at unity: nothing is known about the speaker yet,
/// and an unknown loud input is then only limited, never boosted.
pub const INITIAL_GAIN_DB: f64 = 0.0;

/// Limiter lookahead, frames (1 ms at 48 kHz), which is also the whole
/// latency of the module: the first `LATENCY_FRAMES` output frames of a new
/// `Leveller` are silence. Without lookahead, a limiter's gain must jump on
/// the peak sample itself (a click on every limited syllable); with it the
/// gain ramps down over 1 ms before the peak, which the ear takes for a
/// level change. 1 ms is nothing against the 150 ms end-to-end budget.
pub const LATENCY_FRAMES: usize = 48;

/// Ring length of the limiter: the lookahead plus the current frame.
const LIMITER_RING: usize = LATENCY_FRAMES + 1;

/// Limiter release time constant, seconds: long enough that the gain does
/// not follow each cycle of a 100 Hz voice (which would distort it), short
/// enough that one loud syllable does not duck the next word.
pub const LIMITER_RELEASE_S: f64 = 0.08;

/// The flush period for filter states, frames (10 ms): in silence the
/// K-weighting filters decay toward subnormal numbers, which are slow on
/// x86; states this small are set to zero.
const FLUSH_FRAMES: u32 = OUTPUT_RATE / 100;
const FLUSH_BELOW: f64 = 1e-25;

/// BS.1770 loudness of a summed mean square: −0.691 + 10·log10(z).
fn lufs(mean_square: f64) -> f64 {
    -0.691 + 10.0 * mean_square.log10()
}

/// The mean square with a given loudness (inverse of [`lufs`]).
fn mean_square(lufs: f64) -> f64 {
    10f64.powf((lufs + 0.691) / 10.0)
}

fn db_to_linear(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

/// One biquad, transposed direct form II, f64 so the 38 Hz high-pass (poles
/// near z = 1) stays accurate.
#[derive(Debug, Clone, Copy)]
struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
    s1: f64,
    s2: f64,
}

impl Biquad {
    const fn new(b: [f64; 3], a: [f64; 2]) -> Biquad {
        Biquad {
            b,
            a,
            s1: 0.0,
            s2: 0.0,
        }
    }

    #[inline]
    fn run(&mut self, x: f64) -> f64 {
        let y = self.b[0] * x + self.s1;
        self.s1 = self.b[1] * x - self.a[0] * y + self.s2;
        self.s2 = self.b[2] * x - self.a[1] * y;
        y
    }

    fn flush_tiny(&mut self) {
        if self.s1.abs() < FLUSH_BELOW {
            self.s1 = 0.0;
        }
        if self.s2.abs() < FLUSH_BELOW {
            self.s2 = 0.0;
        }
    }
}

/// K-weighting of BS.1770-4 at 48 kHz (the coefficients the recommendation
/// tabulates): a +4 dB high shelf (head effect), then the RLB high-pass.
#[derive(Debug, Clone, Copy)]
struct KWeighting {
    shelf: Biquad,
    high_pass: Biquad,
}

impl KWeighting {
    const fn new() -> KWeighting {
        KWeighting {
            shelf: Biquad::new(
                [
                    1.535_124_859_586_97,
                    -2.691_696_189_406_38,
                    1.198_392_810_852_85,
                ],
                [-1.690_659_293_182_41, 0.732_480_774_215_85],
            ),
            high_pass: Biquad::new(
                [1.0, -2.0, 1.0],
                [-1.990_047_454_833_98, 0.990_072_250_366_21],
            ),
        }
    }

    #[inline]
    fn run(&mut self, x: f64) -> f64 {
        self.high_pass.run(self.shelf.run(x))
    }

    fn flush_tiny(&mut self) {
        self.shelf.flush_tiny();
        self.high_pass.flush_tiny();
    }
}

/// Live-input leveller and limiter for one stream (mono, or stereo with one
/// gain for both channels so the image does not shift).
///
/// Speech: a momentary block (400 ms, every 100 ms) over the absolute gate
/// [`GATE_LUFS`] and [`NOISE_GATE_LU`] over the noise floor. A block that
/// is not speech (silence, room noise, a pause) leaves everything as it is:
/// the gain holds, so it never creeps up on noise.
///
/// Speech level: the BS.1770-4 gated loudness (relative gate
/// [`RELATIVE_GATE_LU`]) of the last [`WINDOW_BLOCKS`] speech blocks —
/// integrated loudness over a sliding window of ≈ 3 s of speech. Each
/// speech block sets the wanted gain,
/// `clamp(target − level, GAIN_MIN_DB, GAIN_MAX_DB)`.
/// The applied gain moves toward the wanted one sample by sample at most
/// [`GAIN_UP_DB_PER_S`] up and [`GAIN_DOWN_DB_PER_S`] down (a constant
/// factor per sample: one multiply, no `powf` on the audio path).
///
/// Limiter: see [`Limiter`]. It works on sample peaks: the ceiling is
/// `[audio] true_peak_max`, and true (inter-sample) peaks can be a fraction
/// of a dB higher — an approximation, accepted to keep the latency at 1 ms
/// (true-peak detection needs 4× oversampling). The leveller keeps speech
/// near the target, so the limiter only shaves the loudest syllables by a
/// few dB. A final clamp at the ceiling catches rounding only.
///
/// Measured on synthetic speech (espeak-ng, Vietnamese, ≈ 19 dB crest
/// factor) at −40, −30, −20 and −10 LUFS with −60 dBFS room noise: the
/// output of the second 20 s measures −17.2 to −17.4 LUFS for all four,
/// ≈ 1.2 dB under the target, because at −16 LUFS the peaks of such speech
/// would reach +3 dBFS and the limiter takes them down to the ceiling.
/// This is the same trade-off files make (their gain is capped by the true
/// peak); pushing harder into the limiter would cost clarity.
#[derive(Debug, Clone)]
pub struct Leveller {
    channels: usize,
    target_lufs: f64,
    ceiling_f32: f32,
    kweighting: [KWeighting; 2],
    /// Sum of K-weighted squares (all channels) of the current hop.
    hop_energy: f64,
    hop_frames: u32,
    /// Energy sums of the last hops (ring), for the momentary block.
    hops: [f64; HOPS_PER_BLOCK],
    hops_seen: usize,
    /// Mean squares of the last speech blocks (ring); `None` until filled.
    blocks: [Option<f64>; WINDOW_BLOCKS],
    next_block: usize,
    /// Noise floor, mean square, and its rise factor per hop.
    noise_floor: f64,
    noise_floor_known: bool,
    noise_floor_rise: f64,
    /// Leveller gain, linear, and where it is heading.
    gain: f64,
    wanted_gain: f64,
    up_step: f64,
    down_step: f64,
    limiter: Limiter,
}

impl Leveller {
    /// `target_lufs`/`ceiling_dbfs` from the [audio] loudness settings
    /// (`loudness::Settings::target_lufs`, `true_peak_max_dbtp`); channels 1
    /// or 2 (linked gain).
    ///
    /// # Panics
    /// If `channels` is not 1 or 2 (the config only allows mono or stereo).
    pub fn new(channels: usize, target_lufs: f64, ceiling_dbfs: f64) -> Leveller {
        assert!(
            channels == 1 || channels == 2,
            "leveller supports 1 or 2 channels, not {channels}"
        );
        let ceiling = db_to_linear(ceiling_dbfs).min(1.0);
        let gain = db_to_linear(INITIAL_GAIN_DB);
        Leveller {
            channels,
            target_lufs,
            ceiling_f32: ceiling as f32,
            kweighting: [KWeighting::new(); 2],
            hop_energy: 0.0,
            hop_frames: 0,
            hops: [0.0; HOPS_PER_BLOCK],
            hops_seen: 0,
            blocks: [None; WINDOW_BLOCKS],
            next_block: 0,
            noise_floor: mean_square(NOISE_FLOOR_MIN_LUFS),
            noise_floor_known: false,
            noise_floor_rise: 10f64.powf(NOISE_FLOOR_RISE_DB_PER_S / 10.0 / 10.0),
            gain,
            wanted_gain: gain,
            up_step: db_to_linear(GAIN_UP_DB_PER_S / RATE),
            down_step: db_to_linear(-GAIN_DOWN_DB_PER_S / RATE),
            limiter: Limiter::new(ceiling),
        }
    }

    /// Processes one block in place (any length, a multiple of `channels`),
    /// 48 kHz interleaved. The output is [`LATENCY_FRAMES`] behind the
    /// input (the limiter's lookahead). A trailing partial frame (a caller
    /// bug) is silenced rather than sent unlimited.
    pub fn process(&mut self, pcm: &mut [f32]) {
        let channels = self.channels;
        debug_assert!(
            pcm.len() % channels == 0,
            "block of {} samples is not whole {channels}-channel frames",
            pcm.len()
        );
        let mut frames = pcm.chunks_exact_mut(channels);
        for frame in &mut frames {
            // Sanitise and measure.
            let mut energy = 0.0;
            let mut peak = 0.0f64;
            for (sample, k) in frame.iter_mut().zip(self.kweighting.iter_mut()) {
                let x = if sample.is_finite() {
                    sample.clamp(-INPUT_LIMIT, INPUT_LIMIT)
                } else {
                    0.0
                };
                *sample = x;
                let x = f64::from(x);
                let weighted = k.run(x);
                energy += weighted * weighted;
                peak = peak.max(x.abs());
            }
            self.hop_energy += energy;
            self.hop_frames += 1;
            if self.hop_frames % FLUSH_FRAMES == 0 {
                for k in &mut self.kweighting {
                    k.flush_tiny();
                }
            }
            if self.hop_frames == HOP_FRAMES {
                self.end_hop();
            }

            // Leveller gain, rate-limited toward the wanted gain.
            if self.gain < self.wanted_gain {
                self.gain = (self.gain * self.up_step).min(self.wanted_gain);
            } else if self.gain > self.wanted_gain {
                self.gain = (self.gain * self.down_step).max(self.wanted_gain);
            }

            let mut levelled = [0.0f64; 2];
            for (l, &x) in levelled.iter_mut().zip(frame.iter()) {
                *l = f64::from(x) * self.gain;
            }
            let (delayed, limit) = self.limiter.run(levelled, peak * self.gain);
            if self.hop_frames == 0 {
                self.limiter.resum();
            }
            for (sample, d) in frame.iter_mut().zip(delayed) {
                let y = (d * limit) as f32;
                *sample = y.clamp(-self.ceiling_f32, self.ceiling_f32);
            }
        }
        frames.into_remainder().fill(0.0);
    }

    /// Current leveller gain in dB (for logs/status). The limiter's momentary
    /// reduction is not included.
    pub fn gain_db(&self) -> f64 {
        20.0 * self.gain.log10()
    }

    /// Every 100 ms: close the hop, follow the noise floor, form the
    /// momentary block of the last 400 ms and, if it is speech, re-evaluate
    /// the speech level and the wanted gain.
    fn end_hop(&mut self) {
        let hop = self.hop_energy / f64::from(HOP_FRAMES);
        let risen = if self.noise_floor_known {
            self.noise_floor * self.noise_floor_rise
        } else {
            self.noise_floor_known = true;
            f64::INFINITY
        };
        self.noise_floor = risen.min(hop).max(mean_square(NOISE_FLOOR_MIN_LUFS));
        self.hops[self.hops_seen % HOPS_PER_BLOCK] = self.hop_energy;
        self.hops_seen += 1;
        self.hop_energy = 0.0;
        self.hop_frames = 0;
        if self.hops_seen < HOPS_PER_BLOCK {
            return; // the first 400 ms: no whole block yet
        }
        // Keep the counter bounded (it only matters modulo HOPS_PER_BLOCK
        // once past the start).
        if self.hops_seen >= 2 * HOPS_PER_BLOCK {
            self.hops_seen -= HOPS_PER_BLOCK;
        }
        let block_frames = f64::from(HOP_FRAMES) * HOPS_PER_BLOCK as f64;
        let block = self.hops.iter().sum::<f64>() / block_frames;
        let speech_gate =
            mean_square(GATE_LUFS).max(self.noise_floor * 10f64.powf(NOISE_GATE_LU / 10.0));
        if block < speech_gate {
            return; // not speech: hold
        }
        self.blocks[self.next_block] = Some(block);
        self.next_block = (self.next_block + 1) % WINDOW_BLOCKS;
        let level = self.speech_level_lufs();
        self.wanted_gain = db_to_linear((self.target_lufs - level).clamp(GAIN_MIN_DB, GAIN_MAX_DB));
    }

    /// Gated loudness of the speech blocks in the window (at least one: the
    /// caller has just added it).
    fn speech_level_lufs(&self) -> f64 {
        let gated_mean = |threshold: f64| {
            let (sum, n) = self
                .blocks
                .iter()
                .flatten()
                .filter(|&&z| z >= threshold)
                .fold((0.0, 0u32), |(sum, n), &z| (sum + z, n + 1));
            sum / f64::from(n.max(1))
        };
        let ungated = gated_mean(0.0);
        lufs(gated_mean(ungated * 10f64.powf(RELATIVE_GATE_LU / 10.0)))
    }
}

/// Look-ahead peak limiter: the frame that leaves is the one that came in
/// [`LATENCY_FRAMES`] ago, and its gain is already at most what every
/// frame in between needs.
///
/// Per frame `n`: `needed[n] = min(1, ceiling / peak[n])`; `held[n]` is
/// the minimum of `needed` over the last `LATENCY_FRAMES + 1` frames
/// (so it covers the frame leaving now and every frame that will leave
/// during the next 1 ms); `released[n]` follows `held` down at once and
/// back up with time constant [`LIMITER_RELEASE_S`], so `released ≤
/// held`; the gain applied is the mean of `released` over the last
/// `LATENCY_FRAMES + 1` frames. Every term of that mean covers the leaving
/// frame, so the gain never exceeds what it needs — no overshoot, by
/// construction — while the mean turns the step down into a 1 ms ramp.
/// Cost per frame: a 49-value minimum (compares) and a few multiplies.
#[derive(Debug, Clone)]
struct Limiter {
    ceiling: f64,
    release: f64,
    /// Frames after the leveller gain, waiting to leave.
    delay: [[f64; 2]; LIMITER_RING],
    needed: [f64; LIMITER_RING],
    released_ring: [f64; LIMITER_RING],
    released_sum: f64,
    released: f64,
    /// Slot of the frame now arriving; the slot after it holds the frame
    /// that leaves (the oldest).
    slot: usize,
}

impl Limiter {
    fn new(ceiling: f64) -> Limiter {
        Limiter {
            ceiling,
            release: (-1.0 / (LIMITER_RELEASE_S * RATE)).exp(),
            delay: [[0.0; 2]; LIMITER_RING],
            needed: [1.0; LIMITER_RING],
            released_ring: [1.0; LIMITER_RING],
            released_sum: LIMITER_RING as f64,
            released: 1.0,
            slot: 0,
        }
    }

    /// Takes one frame (after the leveller gain) and its peak; returns the
    /// frame leaving the delay line and the gain to apply to it.
    #[inline]
    fn run(&mut self, frame: [f64; 2], peak: f64) -> ([f64; 2], f64) {
        let slot = self.slot;
        self.delay[slot] = frame;
        self.needed[slot] = if peak > self.ceiling {
            self.ceiling / peak
        } else {
            1.0
        };
        let held = self.needed.iter().copied().fold(1.0, f64::min);
        self.released = if held < self.released {
            held
        } else {
            held - (held - self.released) * self.release
        };
        self.released_sum += self.released - self.released_ring[slot];
        self.released_ring[slot] = self.released;
        self.slot = (slot + 1) % LIMITER_RING;
        let gain = (self.released_sum / LIMITER_RING as f64).min(1.0);
        (self.delay[self.slot], gain)
    }

    /// Recomputes the running sum, so rounding cannot build up over hours.
    fn resum(&mut self) {
        self.released_sum = self.released_ring.iter().sum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebur128::{EbuR128, Mode};
    use proptest::prelude::*;

    const TARGET: f64 = -16.0;
    const CEILING_DB: f64 = -1.0;
    /// Opus frames of 20 ms, as the live program will feed them.
    const BLOCK_FRAMES: usize = 960;

    fn ceiling() -> f32 {
        10f64.powf(CEILING_DB / 20.0) as f32
    }

    /// A sine of `freq` Hz at `rms_dbfs` RMS, the same on every channel.
    fn tone(rms_dbfs: f64, freq: f64, seconds: f64, channels: usize) -> Vec<f32> {
        let amplitude = 10f64.powf(rms_dbfs / 20.0) * std::f64::consts::SQRT_2;
        let frames = (seconds * RATE) as usize;
        (0..frames)
            .flat_map(|n| {
                let x = (amplitude * (2.0 * std::f64::consts::PI * freq * n as f64 / RATE).sin())
                    as f32;
                std::iter::repeat_n(x, channels)
            })
            .collect()
    }

    /// Deterministic white noise at `rms_dbfs` RMS (xorshift, uniform).
    fn noise(rms_dbfs: f64, seconds: f64, seed: u64) -> Vec<f32> {
        // Uniform in [-a, a] has RMS a/√3.
        let a = 10f64.powf(rms_dbfs / 20.0) * 3f64.sqrt();
        let mut state = seed | 1;
        (0..(seconds * RATE) as usize)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let u = (state >> 11) as f64 / (1u64 << 53) as f64;
                (a * (2.0 * u - 1.0)) as f32
            })
            .collect()
    }

    /// A leveller that has heard 0.5 s of a quiet room (−65 dBFS noise)
    /// before the speaker starts, as when the operator opens the microphone.
    fn opened(channels: usize) -> Leveller {
        let mut leveller = Leveller::new(channels, TARGET, CEILING_DB);
        let room: Vec<f32> = noise(-65.0, 0.5, 99)
            .into_iter()
            .flat_map(|x| std::iter::repeat_n(x, channels))
            .collect();
        run(&mut leveller, &room);
        assert_eq!(leveller.gain_db(), INITIAL_GAIN_DB);
        leveller
    }

    /// Runs `input` through `leveller` in 20 ms blocks; returns the output.
    fn run(leveller: &mut Leveller, input: &[f32]) -> Vec<f32> {
        let mut out = input.to_vec();
        for block in out.chunks_mut(BLOCK_FRAMES * leveller.channels) {
            leveller.process(block);
        }
        out
    }

    /// Integrated loudness (ebur128, the meter used for files) of `pcm`.
    fn loudness(pcm: &[f32], channels: usize) -> f64 {
        let mut meter = EbuR128::new(channels as u32, OUTPUT_RATE, Mode::I).unwrap();
        meter.add_frames_f32(pcm).unwrap();
        meter.loudness_global().unwrap()
    }

    fn last_second(pcm: &[f32], channels: usize) -> &[f32] {
        &pcm[pcm.len() - OUTPUT_RATE as usize * channels..]
    }

    fn peak(pcm: &[f32]) -> f32 {
        pcm.iter().fold(0.0f32, |m, x| m.max(x.abs()))
    }

    /// Runs a 5 s 1 kHz tone at `rms_dbfs`; returns (final gain, output
    /// loudness of the last second).
    fn level_tone(rms_dbfs: f64) -> (f64, f64) {
        let mut leveller = opened(1);
        let input = tone(rms_dbfs, 1000.0, 5.0, 1);
        let out = run(&mut leveller, &input);
        let measured = loudness(last_second(&out, 1), 1);
        println!(
            "tone {rms_dbfs} dBFS RMS (input {:.2} LUFS): gain {:.2} dB, output last second {measured:.2} LUFS, peak {:.2} dBFS",
            loudness(&input, 1),
            leveller.gain_db(),
            20.0 * f64::from(peak(last_second(&out, 1))).log10()
        );
        (leveller.gain_db(), measured)
    }

    #[test]
    fn quiet_speaker_is_brought_up_to_the_target() {
        let (gain, measured) = level_tone(-36.0);
        assert!((measured - TARGET).abs() <= 2.0, "{measured} LUFS");
        assert!(gain > 15.0, "{gain} dB");
    }

    #[test]
    fn loud_speaker_is_brought_down_to_the_target() {
        let (gain, measured) = level_tone(-6.0);
        assert!((measured - TARGET).abs() <= 2.0, "{measured} LUFS");
        assert!(gain < -5.0, "{gain} dB");
    }

    #[test]
    fn inputs_30_db_apart_end_within_2_db_of_each_other() {
        let (_, quiet) = level_tone(-36.0);
        let (_, loud) = level_tone(-6.0);
        assert!((quiet - loud).abs() <= 2.0, "{quiet} vs {loud} LUFS");
    }

    #[test]
    fn stereo_gain_is_linked_and_reaches_the_target() {
        let mut leveller = opened(2);
        let out = run(&mut leveller, &tone(-36.0, 1000.0, 5.0, 2));
        let measured = loudness(last_second(&out, 2), 2);
        println!(
            "stereo -36 dBFS: gain {:.2} dB, output {measured:.2} LUFS",
            leveller.gain_db()
        );
        assert!((measured - TARGET).abs() <= 2.0, "{measured} LUFS");
        assert!(out.chunks_exact(2).all(|f| f[0] == f[1]));
    }

    #[test]
    fn speech_from_the_first_instant_is_levelled_from_its_first_gap() {
        // Syllables of 250 ms at −36 dBFS with 100 ms gaps, from sample 0.
        let mut leveller = Leveller::new(1, TARGET, CEILING_DB);
        let syllable = tone(-36.0, 1000.0, 0.25, 1);
        let gap = vec![0.0f32; OUTPUT_RATE as usize / 10];
        let speech: Vec<f32> = (0..20)
            .flat_map(|_| syllable.iter().chain(&gap).copied())
            .collect();
        let out = run(&mut leveller, &speech);
        let measured = loudness(last_second(&out, 1), 1);
        println!(
            "speech-like bursts from the start: input {:.2} LUFS, gain {:.2} dB, output last second {measured:.2} LUFS",
            loudness(&speech, 1),
            leveller.gain_db()
        );
        assert!((measured - TARGET).abs() <= 2.0, "{measured} LUFS");
    }

    #[test]
    fn steady_tone_from_the_first_instant_is_taken_for_the_room() {
        let mut leveller = Leveller::new(1, TARGET, CEILING_DB);
        run(&mut leveller, &tone(-36.0, 1000.0, 5.0, 1));
        assert_eq!(leveller.gain_db(), INITIAL_GAIN_DB);
    }

    #[test]
    fn full_scale_square_after_silence_never_exceeds_the_ceiling() {
        let mut leveller = Leveller::new(1, TARGET, CEILING_DB);
        let mut input = vec![0.0f32; OUTPUT_RATE as usize];
        // 1 kHz square at ±1.0 for 3 s.
        input.extend((0..3 * OUTPUT_RATE as usize).map(|n| if n % 48 < 24 { 1.0 } else { -1.0 }));
        let out = run(&mut leveller, &input);
        let first_loud = OUTPUT_RATE as usize + LATENCY_FRAMES;
        println!(
            "square: first loud sample {} (ceiling {}), peak {}, gain {:.2} dB",
            out[first_loud],
            ceiling(),
            peak(&out),
            leveller.gain_db()
        );
        assert!(out.iter().all(|x| x.abs() <= ceiling()));
        // Limited, not muted: the first sample is at the ceiling.
        assert!((out[first_loud] - ceiling()).abs() < 1e-6);
    }

    #[test]
    fn loud_burst_after_a_quiet_speaker_never_exceeds_the_ceiling() {
        let mut leveller = opened(1);
        run(&mut leveller, &tone(-36.0, 1000.0, 5.0, 1));
        let boosted = leveller.gain_db();
        // Gain is near +20 dB; a shout or a knock at −3 dBFS arrives.
        let out = run(&mut leveller, &noise(-3.0, 1.0, 7));
        println!(
            "burst after {boosted:.2} dB of gain: peak {} (ceiling {})",
            peak(&out),
            ceiling()
        );
        assert!(boosted > 15.0);
        assert!(out.iter().all(|x| x.abs() <= ceiling()));
        assert!(peak(&out[LATENCY_FRAMES..2 * LATENCY_FRAMES]) > 0.5 * ceiling());
    }

    #[test]
    fn silence_and_low_noise_do_not_raise_the_gain() {
        let mut leveller = Leveller::new(1, TARGET, CEILING_DB);
        let mut input = vec![0.0f32; 10 * OUTPUT_RATE as usize];
        input.extend(noise(-65.0, 10.0, 3));
        let mut max_gain = f64::MIN;
        for block in input.chunks(BLOCK_FRAMES) {
            let mut block = block.to_vec();
            leveller.process(&mut block);
            max_gain = max_gain.max(leveller.gain_db());
            assert!(block.iter().all(|x| x.is_finite()));
        }
        println!(
            "silence + -65 dBFS noise ({:.1} LUFS): highest gain {max_gain} dB",
            loudness(&noise(-65.0, 10.0, 3), 1)
        );
        assert!(max_gain <= INITIAL_GAIN_DB);
    }

    #[test]
    fn gain_holds_through_a_pause_in_noise() {
        let mut leveller = opened(1);
        run(&mut leveller, &tone(-36.0, 1000.0, 5.0, 1));
        let before = leveller.gain_db();
        let mut max_gain = before;
        for block in noise(-65.0, 10.0, 5).chunks(BLOCK_FRAMES) {
            let mut block = block.to_vec();
            leveller.process(&mut block);
            max_gain = max_gain.max(leveller.gain_db());
        }
        println!("pause after speech: gain {before:.2} dB, highest in pause {max_gain:.2} dB");
        // The last blocks of speech are partly pause and lower the speech
        // level a little (a few tenths of a dB); after them the gain holds.
        assert!(max_gain <= before + 0.5, "{before} → {max_gain}");
    }

    #[test]
    fn gain_holds_through_a_long_pause_in_a_noisy_room() {
        // Room noise at −45 dBFS, over the absolute gate.
        let mut leveller = Leveller::new(1, TARGET, CEILING_DB);
        run(&mut leveller, &noise(-45.0, 3.0, 11));
        let after_noise = leveller.gain_db();
        let speech: Vec<f32> = tone(-25.0, 1000.0, 5.0, 1)
            .iter()
            .zip(noise(-45.0, 5.0, 12))
            .map(|(t, n)| t + n)
            .collect();
        run(&mut leveller, &speech);
        let after_speech = leveller.gain_db();
        let mut max_gain = after_speech;
        for block in noise(-45.0, 15.0, 13).chunks(BLOCK_FRAMES) {
            let mut block = block.to_vec();
            leveller.process(&mut block);
            max_gain = max_gain.max(leveller.gain_db());
        }
        println!(
            "noisy room: gain after 3 s of noise {after_noise:.2} dB, after speech {after_speech:.2} dB, highest in a 15 s pause {max_gain:.2} dB"
        );
        assert_eq!(after_noise, INITIAL_GAIN_DB);
        assert!(after_speech > 5.0);
        // As in a quiet room, only the last blocks of speech count (a few
        // tenths of a dB); 15 s of noise over the absolute gate do not.
        assert!(
            max_gain <= after_speech + 0.5,
            "{after_speech} → {max_gain}"
        );
    }

    #[test]
    fn gain_moves_no_faster_than_the_documented_rates() {
        let mut leveller = opened(1);
        let mut input = tone(-36.0, 1000.0, 6.0, 1);
        input.extend(tone(-16.0, 1000.0, 4.0, 1));
        let step_down_end = input.len();
        input.extend(tone(-36.0, 1000.0, 6.0, 1));
        let hop = OUTPUT_RATE as usize / 10;
        let (mut fastest_up, mut fastest_down) = (0.0f64, 0.0f64);
        let mut gains = Vec::new();
        for (i, block) in input.chunks(hop).enumerate() {
            let before = leveller.gain_db();
            let mut block = block.to_vec();
            leveller.process(&mut block);
            let change = leveller.gain_db() - before;
            fastest_up = fastest_up.max(change);
            fastest_down = fastest_down.min(change);
            gains.push(((i + 1) * hop, leveller.gain_db()));
        }
        let at = |sample: usize| gains.iter().find(|(n, _)| *n == sample).unwrap().1;
        println!(
            "20 dB steps: gain {:.2} → {:.2} → {:.2} dB; fastest per 100 ms: up {fastest_up:.3} dB, down {fastest_down:.3} dB",
            at(6 * OUTPUT_RATE as usize),
            at(step_down_end),
            leveller.gain_db()
        );
        assert!(fastest_up <= GAIN_UP_DB_PER_S / 10.0 + 1e-6);
        assert!(fastest_down >= -GAIN_DOWN_DB_PER_S / 10.0 - 1e-6);
        // And it does follow: both steps are fully taken.
        assert!((at(6 * OUTPUT_RATE as usize) - 20.0).abs() < 1.0);
        assert!(at(step_down_end).abs() < 1.0);
        assert!((leveller.gain_db() - 20.0).abs() < 1.0);
    }

    #[test]
    fn nan_and_infinity_become_silence() {
        let mut leveller = Leveller::new(2, TARGET, CEILING_DB);
        let mut input = vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.5];
        input.resize(2 * (2 + LATENCY_FRAMES), 0.0);
        let out = run(&mut leveller, &input);
        let delay = 2 * LATENCY_FRAMES;
        assert!(out.iter().all(|x| x.is_finite()));
        assert_eq!(&out[delay..delay + 3], &[0.0, 0.0, 0.0]);
        assert_eq!(out[delay + 3], 0.5);
        assert!(leveller.gain_db().is_finite());
    }

    #[test]
    fn output_is_the_input_delayed_by_the_lookahead_when_nothing_limits() {
        let mut leveller = Leveller::new(1, TARGET, CEILING_DB);
        let mut input = vec![0.0f32; 200];
        input[10] = 0.5;
        input[11] = -0.25;
        let out = run(&mut leveller, &input);
        let mut expected = vec![0.0f32; 200];
        expected[10 + LATENCY_FRAMES] = 0.5;
        expected[11 + LATENCY_FRAMES] = -0.25;
        assert_eq!(out, expected);
    }

    #[test]
    fn limiter_ramps_down_over_the_lookahead_instead_of_jumping() {
        // A steady 0.5 (−6 dBFS; DC, which the K-weighting does not count
        // as speech, so the leveller stays at 0 dB), then a step to 2.0
        // (+6 dBFS) that needs −7 dB.
        let mut leveller = Leveller::new(1, TARGET, CEILING_DB);
        let mut input = vec![0.5f32; 1000];
        input.extend(vec![2.0f32; 1000]);
        let out = run(&mut leveller, &input);
        let gains: Vec<f64> = out[LATENCY_FRAMES..]
            .iter()
            .zip(&input)
            .map(|(y, x)| f64::from(*y) / f64::from(*x))
            .collect();
        let needed = f64::from(ceiling()) / 2.0;
        let largest_step = gains
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f64::max);
        println!(
            "limiter step: gain {:.4} → {:.4} (needed {needed:.4}), largest change per sample {largest_step:.4}",
            gains[999 - LATENCY_FRAMES],
            gains[1000]
        );
        assert!(out.iter().all(|x| x.abs() <= ceiling()));
        // Untouched until 1 ms before the step, at the needed gain on it,
        // and in between a ramp of 49 equal steps, not one jump.
        assert!((gains[999 - LATENCY_FRAMES] - 1.0).abs() < 1e-6);
        assert!((gains[1000] - needed).abs() < 1e-6);
        assert!(largest_step <= (1.0 - needed) / LIMITER_RING as f64 + 1e-6);
    }

    #[test]
    fn subnormal_input_stays_finite_and_small() {
        let mut leveller = Leveller::new(1, TARGET, CEILING_DB);
        let out = run(
            &mut leveller,
            &vec![f32::MIN_POSITIVE / 4.0; 5 * OUTPUT_RATE as usize],
        );
        assert!(out.iter().all(|x| x.is_finite() && x.abs() < 1e-30));
        assert_eq!(leveller.gain_db(), INITIAL_GAIN_DB);
    }

    proptest! {
        #[test]
        fn any_input_gives_finite_output_within_the_ceiling(
            stereo in any::<bool>(),
            target in -40.0f64..-5.0,
            ceiling_db in -9.0f64..0.0,
            blocks in proptest::collection::vec(
                proptest::collection::vec(any::<f32>(), 0..2000), 1..20),
        ) {
            let channels = if stereo { 2 } else { 1 };
            let ceiling = 10f64.powf(ceiling_db / 20.0) as f32;
            let mut leveller = Leveller::new(channels, target, ceiling_db);
            for mut block in blocks {
                block.truncate(block.len() / channels * channels);
                leveller.process(&mut block);
                for x in &block {
                    prop_assert!(x.is_finite() && x.abs() <= ceiling, "{x} over {ceiling}");
                }
                prop_assert!(leveller.gain_db().is_finite());
                prop_assert!((GAIN_MIN_DB - 1e-9..=GAIN_MAX_DB + 1e-9).contains(&leveller.gain_db()));
            }
        }
    }
}
