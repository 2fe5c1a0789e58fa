//! Made-up programme and room sounds for the leveller's tests: music,
//! sirens and the room noises the tonality measure was tuned on. All are
//! deterministic (xorshift noise with fixed seeds), 48 kHz mono.

use super::{noise, RATE};
use crate::media::OUTPUT_RATE;

pub use crate::media::signals::at_rms;
use crate::media::signals::uniform;

fn samples(seconds: f64) -> usize {
    (seconds * RATE) as usize
}

/// The shared music-like bed (crate::media::signals), at 48 kHz.
pub fn music(rms_dbfs: f64, seconds: f64, seed: u64) -> Vec<f32> {
    crate::media::signals::music(RATE, rms_dbfs, seconds, seed)
}

/// Sustained chords (four notes of eight harmonics, 0.4 % vibrato at
/// 5.5 Hz) over a little low noise, at −20 dBFS RMS.
pub fn pad(seconds: f64) -> Vec<f32> {
    use std::f64::consts::PI;
    let chords = [
        [220.0, 277.18, 329.63, 440.0],
        [196.0, 246.94, 293.66, 392.0],
    ];
    let mut random = uniform(9);
    let (mut low, mut phases) = (0.0, [0.0f64; 4]);
    let x = (0..samples(seconds))
        .map(|n| {
            let t = n as f64 / RATE;
            let chord = chords[(t / 2.0) as usize % 2];
            let vibrato = 1.0 + 0.004 * (2.0 * PI * 5.5 * t).sin();
            low = 0.9 * low + 0.1 * random();
            let mut y = 0.05 * low;
            for (phase, f) in phases.iter_mut().zip(chord) {
                *phase += 2.0 * PI * f * vibrato / RATE;
                y += (1..=8)
                    .map(|h| 0.2 / h as f64 * (*phase * h as f64).sin())
                    .sum::<f64>();
            }
            y as f32
        })
        .collect();
    at_rms(x, -20.0)
}

/// A siren sweeping `low`..`high` Hz and back every `period` s, a sine or
/// a square-ish wave (odd harmonics to the 9th), at −20 dBFS RMS.
pub fn sweep(low: f64, high: f64, period: f64, square: bool, seconds: f64) -> Vec<f32> {
    use std::f64::consts::PI;
    let mut phase = 0.0;
    let x = (0..samples(seconds))
        .map(|n| {
            let t = n as f64 / RATE;
            let triangle = 1.0 - 4.0 * ((t / period) % 1.0 - 0.5).abs();
            phase += 2.0 * PI * (low + (high - low) * (0.5 + 0.5 * triangle)) / RATE;
            let y = if square {
                (1..=9)
                    .step_by(2)
                    .map(|h| (phase * h as f64).sin() / h as f64)
                    .sum()
            } else {
                phase.sin()
            };
            y as f32
        })
        .collect();
    at_rms(x, -20.0)
}

/// A two-tone siren, 450 and 600 Hz alternating every 0.5 s, at −20 dBFS RMS.
pub fn hi_lo(seconds: f64) -> Vec<f32> {
    let mut phase = 0.0;
    let x = (0..samples(seconds))
        .map(|n| {
            let f = if (n / (OUTPUT_RATE as usize / 2)) % 2 == 0 {
                450.0
            } else {
                600.0
            };
            phase += 2.0 * std::f64::consts::PI * f / RATE;
            phase.sin() as f32
        })
        .collect();
    at_rms(x, -20.0)
}

/// Room noises, each over the absolute gate: white, pink, brown (traffic
/// rumble), brown swelling and fading (passing traffic), a fan (pink noise
/// and a weak 120 Hz blade tone), rain-like clicks, and mains hum and buzz
/// over a little noise.
pub fn rooms(seconds: f64) -> Vec<(&'static str, Vec<f32>)> {
    use std::f64::consts::PI;
    let n = samples(seconds);
    let pink = |seed| {
        // Paul Kellet's pink filter.
        let mut random = uniform(seed);
        let mut b = [0.0f64; 7];
        (0..n)
            .map(|_| {
                let w = random();
                b[0] = 0.99886 * b[0] + w * 0.0555179;
                b[1] = 0.99332 * b[1] + w * 0.0750759;
                b[2] = 0.96900 * b[2] + w * 0.1538520;
                b[3] = 0.86650 * b[3] + w * 0.3104856;
                b[4] = 0.55000 * b[4] + w * 0.5329522;
                b[5] = -0.7616 * b[5] - w * 0.0168980;
                let y = b.iter().sum::<f64>() + w * 0.5362;
                b[6] = w * 0.115926;
                y as f32
            })
            .collect::<Vec<f32>>()
    };
    let brown = |seed| {
        let mut random = uniform(seed);
        let mut y = 0.0;
        (0..n)
            .map(|_| {
                y = 0.998 * y + random();
                y as f32
            })
            .collect::<Vec<f32>>()
    };
    let traffic: Vec<f32> = brown(43)
        .iter()
        .enumerate()
        .map(|(i, &v)| v * (1.0 + 0.8 * (2.0 * PI * 0.15 * i as f64 / RATE).sin()) as f32)
        .collect();
    let fan: Vec<f32> = at_rms(pink(44), -40.0)
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let t = i as f64 / RATE;
            v + (0.003 * (2.0 * PI * 120.0 * t).sin() + 0.0015 * (2.0 * PI * 240.0 * t).sin())
                as f32
        })
        .collect();
    let mut random = uniform(45);
    let mut drop = 0.0;
    let rain: Vec<f32> = (0..n)
        .map(|_| {
            if random() > 0.999 {
                drop = 1.0;
            }
            drop *= 0.995;
            (0.3 * random() + drop * random()) as f32
        })
        .collect();
    let mains = |harmonics: usize, seed| -> Vec<f32> {
        noise(-60.0, seconds, seed)
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let t = i as f64 / RATE;
                v + (1..=harmonics)
                    .map(|h| 0.01 / h as f64 * (2.0 * PI * 50.0 * h as f64 * t).sin())
                    .sum::<f64>() as f32
            })
            .collect()
    };
    vec![
        ("white noise", noise(-45.0, seconds, 41)),
        ("pink noise", at_rms(pink(42), -40.0)),
        ("brown noise", at_rms(brown(46), -40.0)),
        ("passing traffic", at_rms(traffic, -40.0)),
        ("fan", fan),
        ("rain", at_rms(rain, -40.0)),
        ("50 Hz hum, 3 harmonics", mains(3, 47)),
        ("50 Hz buzz, 30 harmonics", mains(30, 48)),
    ]
}
