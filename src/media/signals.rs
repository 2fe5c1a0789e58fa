//! Made-up programme sounds shared by the leveller's unit tests and the
//! integration tests (tests/live.rs feeds the same music bed through
//! `loa live`): deterministic (xorshift noise with fixed seeds), mono.
//! Hidden from the docs: test material, not part of loa's interface.

/// `x` scaled to `rms_dbfs` RMS.
pub fn at_rms(x: Vec<f32>, rms_dbfs: f64) -> Vec<f32> {
    let rms = (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
    let k = 10f64.powf(rms_dbfs / 20.0) / rms;
    x.into_iter().map(|v| (f64::from(v) * k) as f32).collect()
}

/// Deterministic uniform values in −1..1 (xorshift).
pub fn uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// A music-like bed at `rate` Hz and `rms_dbfs`: a four-chord progression (two seconds
/// each, three notes of six harmonics) and a bass line, swelling on every
/// beat (120 bpm), a kick drum on the beat and a hi-hat between.
pub fn music(rate: f64, rms_dbfs: f64, seconds: f64, seed: u64) -> Vec<f32> {
    use std::f64::consts::PI;
    let chords = [
        [261.63, 329.63, 392.0],
        [349.23, 440.0, 523.25],
        [392.0, 493.88, 587.33],
        [261.63, 329.63, 392.0],
    ];
    let bass = [65.41, 87.31, 98.0, 65.41];
    let mut random = uniform(seed);
    let (mut hat, mut previous) = (0.0, 0.0);
    let x = (0..(seconds * rate) as usize)
        .map(|n| {
            let t = n as f64 / rate;
            let bar = (t / 2.0) as usize % 4;
            let beat = t % 0.5;
            let swell = (beat / 0.01).min(1.0) * (-beat / 0.4).exp();
            let notes: f64 = chords[bar]
                .iter()
                .flat_map(|f| {
                    (1..=6).map(move |h| 0.3 / h as f64 * (2.0 * PI * f * h as f64 * t).sin())
                })
                .sum();
            let low: f64 = (1..=4)
                .map(|h| 0.4 / h as f64 * (2.0 * PI * bass[bar] * h as f64 * t).sin())
                .sum();
            let kick_hz = 50.0 + 80.0 * (-beat / 0.03).exp();
            let kick = 1.2 * (2.0 * PI * kick_hz * beat).sin() * (-beat / 0.12).exp();
            let w = random();
            hat = 0.6 * (hat + w - previous);
            previous = w;
            let off_beat = (t + 0.25) % 0.5;
            (notes * (0.3 + 0.7 * swell)
                + low * (0.5 + 0.5 * swell)
                + kick
                + 0.5 * hat * (-off_beat / 0.03).exp()) as f32
        })
        .collect();
    at_rms(x, rms_dbfs)
}
