//! Unit tests of the leveller: made-up audio in 20 ms blocks, as the live
//! program worker feeds it; loudness measured with ebur128 as for files.

mod signals;

use super::*;
use ebur128::{EbuR128, Mode};
use proptest::prelude::*;
use signals::{at_rms, hi_lo, music, pad, rooms, sweep};

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
            let x =
                (amplitude * (2.0 * std::f64::consts::PI * freq * n as f64 / RATE).sin()) as f32;
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

/// Settling time of a steady source from the first instant (see
/// [`TONAL_HOPS`]): 1 s to be recognised, then at most 24 dB at 6 dB/s.
const SETTLED_S: f64 = 5.0;

/// Runs `input` (mono) through a fresh leveller from its first sample, as
/// `loa live` does; returns the output and prints its loudness after
/// [`SETTLED_S`].
fn level_from_the_first_instant(what: &str, input: &[f32]) -> (Vec<f32>, f64) {
    let mut leveller = Leveller::new(1, TARGET, CEILING_DB);
    let out = run(&mut leveller, input);
    let settled = &out[(SETTLED_S * RATE) as usize..];
    let measured = loudness(settled, 1);
    println!(
        "{what}: input {:.2} LUFS, after {SETTLED_S} s output {measured:.2} LUFS, gain {:.2} dB, peak {:.2} dBFS",
        loudness(input, 1),
        leveller.gain_db(),
        20.0 * f64::from(peak(&out)).log10()
    );
    (out, measured)
}

#[test]
fn steady_tone_from_the_first_instant_reaches_the_target() {
    // Issue 13: a 2 kHz tone at −9 and −29 dBFS RMS with no pause went out
    // at its own level (taken for the room); and a quiet 1 kHz tone.
    for (rms, freq) in [(-9.0, 2000.0), (-29.0, 2000.0), (-36.0, 1000.0)] {
        let what = format!("steady {freq} Hz tone at {rms} dBFS RMS");
        let (out, measured) = level_from_the_first_instant(&what, &tone(rms, freq, 8.0, 1));
        assert!((measured - TARGET).abs() <= 3.0, "{what}: {measured} LUFS");
        assert!(out.iter().all(|x| x.abs() <= ceiling()));
    }
}

#[test]
fn music_from_the_first_instant_reaches_the_target() {
    for rms in [-10.0, -34.0] {
        let what = format!("music-like at {rms} dBFS RMS");
        let (out, measured) = level_from_the_first_instant(&what, &music(rms, 12.0, 21));
        assert!((measured - TARGET).abs() <= 3.0, "{what}: {measured} LUFS");
        assert!(out.iter().all(|x| x.abs() <= ceiling()));
    }
}

#[test]
fn sirens_from_the_first_instant_reach_the_target() {
    for (name, siren) in [
        ("wail", sweep(600.0, 1200.0, 5.0, true, 8.0)),
        ("yelp", sweep(600.0, 1300.0, 0.25, true, 8.0)),
        ("hi-lo", hi_lo(8.0)),
    ] {
        for rms in [-12.0, -32.0] {
            let what = format!("{name} siren at {rms} dBFS RMS");
            let (_, measured) = level_from_the_first_instant(&what, &at_rms(siren.clone(), rms));
            assert!((measured - TARGET).abs() <= 3.0, "{what}: {measured} LUFS");
        }
    }
}

/// The shipped spoken notice (assets/thong-bao.flac, 7.2 s of Vietnamese
/// speech), decoded to 48 kHz mono.
fn spoken_notice() -> Vec<f32> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/thong-bao.flac");
    let mut source =
        crate::media::decode::Source::open(&path, crate::config::Channels::Mono).unwrap();
    let mut pcm = Vec::new();
    while let Some(chunk) = source.next_chunk().unwrap() {
        pcm.extend_from_slice(chunk);
    }
    pcm
}

#[test]
fn real_speech_in_a_room_reaches_the_target() {
    // The notice twice, 20 dB apart in level, over room noise, after the
    // operator opened the microphone; measured on its second reading.
    let notice = spoken_notice();
    for (gain_db, room_dbfs) in [(-22.0, -65.0), (0.0, -65.0), (-12.0, -50.0)] {
        let said: Vec<f32> = notice
            .iter()
            .map(|x| x * 10f32.powf(gain_db / 20.0))
            .collect();
        let mut input = noise(room_dbfs, 0.5, 51);
        input.extend(said.iter().chain(&said));
        let room = noise(room_dbfs, input.len() as f64 / RATE, 52);
        let input: Vec<f32> = input.iter().zip(&room).map(|(x, n)| x + n).collect();
        let mut leveller = Leveller::new(1, TARGET, CEILING_DB);
        let out = run(&mut leveller, &input);
        let second = &out[out.len() - said.len()..];
        let measured = loudness(second, 1);
        println!(
            "spoken notice at {:.1} LUFS over {room_dbfs} dBFS room: second reading {measured:.2} LUFS, gain {:.2} dB",
            loudness(&said, 1),
            leveller.gain_db()
        );
        assert!((measured - TARGET).abs() <= 3.0, "{measured} LUFS");
    }
}

#[test]
fn room_noise_alone_is_not_raised() {
    // Every kind of room the tonality measure was tuned on, alone from the
    // first instant for 20 s, loud enough to pass the absolute gate.
    for (name, room) in rooms(20.0) {
        let mut leveller = Leveller::new(1, TARGET, CEILING_DB);
        let mut max_gain = f64::MIN;
        for block in room.chunks(BLOCK_FRAMES) {
            let mut block = block.to_vec();
            leveller.process(&mut block);
            max_gain = max_gain.max(leveller.gain_db());
        }
        println!(
            "{name} ({:.1} LUFS) for 20 s: highest gain {max_gain} dB",
            loudness(&room, 1)
        );
        assert!(
            max_gain <= INITIAL_GAIN_DB,
            "{name}: gain rose to {max_gain} dB"
        );
    }
}

#[test]
fn gain_holds_when_a_steady_tone_stops_in_a_noisy_room() {
    // A tone over −45 dBFS room noise from the first instant, then the
    // room alone: the noise right after the tone must not enter the level.
    let mut leveller = Leveller::new(1, TARGET, CEILING_DB);
    let played: Vec<f32> = tone(-36.0, 1000.0, 8.0, 1)
        .iter()
        .zip(noise(-45.0, 8.0, 31))
        .map(|(t, n)| t + n)
        .collect();
    run(&mut leveller, &played);
    let after_tone = leveller.gain_db();
    let mut max_gain = after_tone;
    for block in noise(-45.0, 15.0, 32).chunks(BLOCK_FRAMES) {
        let mut block = block.to_vec();
        leveller.process(&mut block);
        max_gain = max_gain.max(leveller.gain_db());
    }
    println!("tone in a noisy room: gain {after_tone:.2} dB, highest in 15 s of room after it {max_gain:.2} dB");
    assert!(after_tone > 12.0, "{after_tone} dB");
    assert!(max_gain <= after_tone + 0.5, "{after_tone} → {max_gain}");
}

#[test]
fn tonal_share_tells_programme_from_room_noise() {
    // The figures tonality.rs documents: 1 s shares over 20 s of each.
    let shares = |x: &[f32]| {
        let mut t = Tonality::new();
        let mut k = KWeighting::new();
        let mut hops = Vec::new();
        for hop in x.chunks_exact(HOP_FRAMES as usize) {
            for &v in hop {
                t.push(k.run(f64::from(v)));
            }
            hops.push(t.take());
        }
        let seconds: Vec<f64> = hops
            .windows(TONAL_HOPS)
            .map(|w| {
                w.iter()
                    .fold(Share::default(), |a, &b| a.add(b))
                    .ratio()
            })
            .collect();
        let min = seconds.iter().copied().fold(f64::MAX, f64::min);
        let max = seconds.iter().copied().fold(f64::MIN, f64::max);
        (min, max)
    };
    for (name, room) in rooms(20.0) {
        let (min, max) = shares(&room);
        println!("{name:>28}: tonal share of 1 s {min:.3}..{max:.3}");
        assert!(max < 0.1, "{name}: {max}");
    }
    let programme = [
        ("2 kHz tone", tone(-20.0, 2000.0, 20.0, 1)),
        ("wail siren (square)", sweep(600.0, 1200.0, 5.0, true, 20.0)),
        ("yelp siren (sine)", sweep(600.0, 1300.0, 0.25, false, 20.0)),
        (
            "yelp siren (square)",
            sweep(600.0, 1300.0, 0.25, true, 20.0),
        ),
        ("hi-lo siren", hi_lo(20.0)),
        ("music-like", music(-20.0, 20.0, 22)),
        ("pad chords with vibrato", pad(20.0)),
    ];
    for (name, x) in programme {
        let (min, max) = shares(&x);
        println!("{name:>28}: tonal share of 1 s {min:.3}..{max:.3}");
        assert!(min > 0.4, "{name}: {min}");
    }
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
