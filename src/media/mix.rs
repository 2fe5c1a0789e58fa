//! Channel mixing: any source layout → the configured mono or stereo.
//!
//! Sources with more than two channels are assumed to be in the WAV/SMPTE
//! order symphonia reports for common files (FL, FR, FC, LFE, then surround
//! pairs left/right). They are folded to stereo with the ITU-R BS.775
//! coefficients (centre and surrounds at −3 dB, LFE dropped) and scaled so a
//! full-scale signal on every channel cannot clip.

use crate::config::Channels;

const MINUS_3DB: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// Appends `input` (interleaved, `in_channels` wide) mixed to `target`.
pub(crate) fn mix_into(input: &[f32], in_channels: usize, target: Channels, out: &mut Vec<f32>) {
    match (in_channels, target) {
        (1, Channels::Mono) | (2, Channels::Stereo) => out.extend_from_slice(input),
        (1, Channels::Stereo) => out.extend(input.iter().flat_map(|&v| [v, v])),
        (2, Channels::Mono) => out.extend(input.chunks_exact(2).map(|f| 0.5 * (f[0] + f[1]))),
        (n, target) if n > 2 => {
            for frame in input.chunks_exact(n) {
                let (l, r) = fold_to_stereo(frame);
                match target {
                    Channels::Mono => out.push(0.5 * (l + r)),
                    Channels::Stereo => out.extend_from_slice(&[l, r]),
                }
            }
        }
        // Zero channels cannot come out of a decoder; nothing to mix.
        _ => {}
    }
}

/// BS.775 fold-down of one multichannel frame to (L, R).
fn fold_to_stereo(frame: &[f32]) -> (f32, f32) {
    let centre = frame.get(2).copied().unwrap_or(0.0) * MINUS_3DB;
    let (mut l, mut r) = (frame[0] + centre, frame[1] + centre);
    let mut surround_pairs = 0.0;
    // Index 3 is the LFE: left out, as street speakers cannot reproduce it.
    for pair in frame.get(4..).unwrap_or(&[]).chunks(2) {
        l += pair[0] * MINUS_3DB;
        r += pair.get(1).copied().unwrap_or(pair[0]) * MINUS_3DB;
        surround_pairs += 1.0;
    }
    let gain = 1.0 / (1.0 + MINUS_3DB * (1.0 + surround_pairs));
    (l * gain, r * gain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mono_to_stereo_duplicates_and_stereo_to_mono_averages() {
        let mut out = Vec::new();
        mix_into(&[0.1, 0.2], 1, Channels::Stereo, &mut out);
        assert_eq!(out, [0.1, 0.1, 0.2, 0.2]);
        out.clear();
        mix_into(&[0.2, 0.4, -1.0, 1.0], 2, Channels::Mono, &mut out);
        assert_eq!(out, [0.3_f32, 0.0]);
    }

    #[test]
    fn same_layout_passes_through_bit_exact() {
        let mut out = Vec::new();
        let input = [0.123, -0.456, 0.789];
        mix_into(&input, 1, Channels::Mono, &mut out);
        assert_eq!(out, input);
    }

    #[test]
    fn five_one_folds_down_without_clipping_and_drops_lfe() {
        let mut out = Vec::new();
        // Full scale everywhere: the fold-down must stay within ±1.
        mix_into(&[1.0; 6], 6, Channels::Stereo, &mut out);
        assert!(out.iter().all(|v| v.abs() <= 1.0 + 1e-6), "{out:?}");
        assert!((out[0] - 1.0).abs() < 1e-6);
        out.clear();
        // LFE only: silence.
        mix_into(&[0.0, 0.0, 0.0, 1.0, 0.0, 0.0], 6, Channels::Mono, &mut out);
        assert_eq!(out, [0.0]);
        out.clear();
        // Centre only reaches both sides equally.
        mix_into(&[0.0, 0.0, 1.0, 0.0, 0.0, 0.0], 6, Channels::Stereo, &mut out);
        assert!((out[0] - out[1]).abs() < 1e-6 && out[0] > 0.2);
    }
}
