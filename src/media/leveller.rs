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
//! 3. Leveller gain: moves toward `target − programme level` at a bounded
//!    rate, holds when there is no programme — silence, the room's noise, a
//!    knock (see [`Leveller`]). Programme is tonal (energy in spectral
//!    peaks, [`tonality`]) and either louder than the room's noise floor
//!    (speech, with its pauses) or steadily tonal for a second (a tone, a
//!    siren, a music bed).
//! 4. Limiter: 1 ms lookahead so the gain ramps down before a peak instead
//!    of jumping on it, exponential release, on the sample peak of the
//!    frame (linked over channels), then a safety clamp at the ceiling.
//!    The output is therefore [`LATENCY_FRAMES`] (1 ms) behind the input.

mod tonality;

use crate::media::OUTPUT_RATE;
use tonality::{Share, Tonality};

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

/// Momentary blocks in the level window: the last 30 blocks that were
/// programme, every 100 ms, so ≈ 3 s of speech (pauses do not age it).
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
/// (SNR < 10 dB) is held at the current gain rather than levelled, unless
/// it is tonal for a whole second ([`TONAL_HOPS`]).
pub const NOISE_GATE_LU: f64 = 10.0;

/// The noise floor is the lowest 100 ms hop, rising by at most this much
/// per second so it follows a room that gets noisier; gaps between words
/// pull it back down at once. It starts at the first hop heard: the room
/// as the live input opens. A speaker already talking then is levelled
/// from the first gap between words (within a second, as a rule). A steady
/// sound from the first instant with no gap at all sets the floor to its
/// own level, so the floor alone cannot tell a steady tone from a fan:
/// that is what [`TONAL_HOPS`] is for.
pub const NOISE_FLOOR_RISE_DB_PER_S: f64 = 0.5;

/// Programme is tonal: a block counts only when its tonal share
/// ([`tonality`]) is at least [`tonality::TONAL_SHARE`]. Voices, tones,
/// sirens and music have their energy in spectral peaks; room noise (fan,
/// traffic, rain, hum), a knock or a gust on the microphone have none, so
/// traffic swelling by 20 dB, which the noise gate alone takes for speech,
/// is held (in real speech ≥ 95 % of the blocks over the room are tonal;
/// the others are onsets).
///
/// A tonal block is programme, whatever the noise floor, when the last
/// `TONAL_HOPS` hops (1 s) are tonal too: a steady tone, a siren or a
/// music bed has no pauses for the noise gate. The second of persistence
/// keeps a chance peaky moment of noise out of the level window (one block
/// there would set the level alone and lift the room). Settling: a steady
/// source from the first instant is levelled from 1 s on and is at the
/// target after 1 s + its distance to the target at [`GAIN_UP_DB_PER_S`]
/// or [`GAIN_DOWN_DB_PER_S`]: ≤ 5 s for the whole gain range (+24 dB).
pub const TONAL_HOPS: usize = 10;

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
/// Programme: a momentary block (400 ms, every 100 ms) over the absolute
/// gate [`GATE_LUFS`], tonal, and either [`NOISE_GATE_LU`] over the noise
/// floor (speech, with its pauses) or tonal for a second (a steady tone,
/// siren or music; see [`TONAL_HOPS`]). A block that is not programme
/// (silence, room noise, a pause, a knock) leaves everything as it is: the
/// gain holds, so it never creeps up on noise.
///
/// Programme level: the BS.1770-4 gated loudness (relative gate
/// [`RELATIVE_GATE_LU`]) of the last [`WINDOW_BLOCKS`] programme blocks —
/// integrated loudness over a sliding window of ≈ 3 s of programme. Each
/// programme block sets the wanted gain,
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
///
/// Steady sources (issue 13): before the tonal test, a tone, siren or music
/// bed with no pause from the first instant set the noise floor to its own
/// level and never passed the noise gate, so it went out at its input
/// level: a 2 kHz tone at −9 and −29 dBFS RMS (−6.6 and −26.6 LUFS) left
/// at −9.0 and −29.1 dBFS RMS through `loa live --stdin`, 9.4 LU over and
/// 10.6 LU under the −16 LUFS target; music-like input at −11.7 LUFS left
/// at −12.8 LUFS (limited only). Now, 5 s after the first sample, the
/// tones measure −16.0 LUFS, music-like input at −11.7 and −35.7 LUFS
/// −16.05 LUFS, wail, yelp and hi-lo sirens at −11 to −33 LUFS −15.8 to
/// −16.0 LUFS; the spoken notice in a room is levelled as before (−17.0
/// to −17.4 LUFS), and room noises alone still get no gain — traffic
/// noise swelling by 19 dB, which the noise gate alone took for speech
/// (+24 dB), now included (`cargo test --lib leveller -- --nocapture`
/// prints these).
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
    /// Mean squares of the last programme blocks (ring); `None` until filled.
    blocks: [Option<f64>; WINDOW_BLOCKS],
    next_block: usize,
    /// Noise floor, mean square, and its rise factor per hop.
    noise_floor: f64,
    noise_floor_known: bool,
    noise_floor_rise: f64,
    /// Spectral peaks of the input, and the tonal share of the last hops
    /// (ring, as `hops`); `tonal_hops_heard` counts up to [`TONAL_HOPS`].
    tonality: Tonality,
    hop_shares: [Share; TONAL_HOPS],
    tonal_hops_heard: usize,
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
            tonality: Tonality::new(),
            hop_shares: [Share::default(); TONAL_HOPS],
            tonal_hops_heard: 0,
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
            let mut summed = 0.0;
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
                summed += weighted;
                peak = peak.max(x.abs());
            }
            self.tonality.push(summed);
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
    /// momentary block of the last 400 ms and, if it is programme,
    /// re-evaluate the programme level and the wanted gain.
    fn end_hop(&mut self) {
        // The hop's two tonality frames are complete (they are aligned to
        // the hop: both count samples from the first).
        self.hop_shares.rotate_right(1);
        self.hop_shares[0] = self.tonality.take();
        self.tonal_hops_heard = (self.tonal_hops_heard + 1).min(TONAL_HOPS);
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
        if block < mean_square(GATE_LUFS) {
            return; // silence or a quiet room: hold
        }
        let share = |hops: usize| {
            self.hop_shares[..hops]
                .iter()
                .fold(Share::default(), |a, &b| a.add(b))
        };
        if !share(HOPS_PER_BLOCK).is_tonal() {
            return; // noise, however it swells: hold
        }
        let over_the_room = block >= self.noise_floor * 10f64.powf(NOISE_GATE_LU / 10.0);
        let steady = self.tonal_hops_heard == TONAL_HOPS && share(TONAL_HOPS).is_tonal();
        if !over_the_room && !steady {
            return; // speech too close to the room: hold
        }
        self.blocks[self.next_block] = Some(block);
        self.next_block = (self.next_block + 1) % WINDOW_BLOCKS;
        let level = self.programme_level_lufs();
        self.wanted_gain = db_to_linear((self.target_lufs - level).clamp(GAIN_MIN_DB, GAIN_MAX_DB));
    }

    /// Gated loudness of the programme blocks in the window (at least one:
    /// the caller has just added it).
    fn programme_level_lufs(&self) -> f64 {
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
mod tests;
