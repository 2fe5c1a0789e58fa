//! Channel mixing: any source layout → the configured mono or stereo.
//!
//! Works on planar audio (one `Vec` per channel, as the decoder produces
//! it), so every case is a straight loop over contiguous samples.
//!
//! Sources with more than two channels are assumed to be in the WAV/SMPTE
//! order symphonia reports for common files (FL, FR, FC, LFE, then surround
//! pairs left/right). They are folded to stereo with the ITU-R BS.775
//! coefficients (centre and surrounds at −3 dB, LFE dropped) and scaled so a
//! full-scale signal on every channel cannot clip.

use crate::config::Channels;

const MINUS_3DB: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// Replaces `out` (one plane per target channel) with `input` (one plane
/// per source channel, all of equal length) mixed to `target`.
pub(crate) fn mix_planar(input: &[Vec<f32>], target: Channels, out: &mut Vec<Vec<f32>>) {
    out.resize(target.count(), Vec::new());
    out.iter_mut().for_each(Vec::clear);
    match (input.len(), target) {
        (1, Channels::Mono) | (2, Channels::Stereo) | (1, Channels::Stereo) => {
            for (c, plane) in out.iter_mut().enumerate() {
                plane.extend_from_slice(&input[c.min(input.len() - 1)]);
            }
        }
        (2, Channels::Mono) => out[0].extend(input[0].iter().zip(&input[1]).map(|(l, r)| 0.5 * (l + r))),
        (n, target) if n > 2 => {
            let mut frame = vec![0.0; n];
            for i in 0..input[0].len() {
                for (v, plane) in frame.iter_mut().zip(input) {
                    *v = plane[i];
                }
                let (l, r) = fold_to_stereo(&frame);
                match target {
                    Channels::Mono => out[0].push(0.5 * (l + r)),
                    Channels::Stereo => {
                        out[0].push(l);
                        out[1].push(r);
                    }
                }
            }
        }
        // Zero channels cannot come out of a decoder; nothing to mix.
        _ => {}
    }
}

/// Appends `planes[..][range]` to `out` interleaved.
pub(crate) fn interleave(planes: &[Vec<f32>], range: std::ops::Range<usize>, out: &mut Vec<f32>) {
    match planes {
        [mono] => out.extend_from_slice(&mono[range]),
        [l, r] => {
            let start = out.len();
            out.resize(start + 2 * range.len(), 0.0);
            for (o, (l, r)) in out[start..]
                .chunks_exact_mut(2)
                .zip(l[range.clone()].iter().zip(&r[range]))
            {
                o[0] = *l;
                o[1] = *r;
            }
        }
        _ => {
            for i in range {
                out.extend(planes.iter().map(|p| p[i]));
            }
        }
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

    /// Interleaved in, interleaved out, through the planar mix.
    fn mix(input: &[f32], in_channels: usize, target: Channels) -> Vec<f32> {
        let planes: Vec<Vec<f32>> = (0..in_channels)
            .map(|c| input.iter().skip(c).step_by(in_channels).copied().collect())
            .collect();
        let mut mixed = Vec::new();
        mix_planar(&planes, target, &mut mixed);
        let mut out = Vec::new();
        interleave(&mixed, 0..mixed[0].len(), &mut out);
        out
    }

    #[test]
    fn mono_to_stereo_duplicates_and_stereo_to_mono_averages() {
        assert_eq!(mix(&[0.1, 0.2], 1, Channels::Stereo), [0.1, 0.1, 0.2, 0.2]);
        assert_eq!(mix(&[0.2, 0.4, -1.0, 1.0], 2, Channels::Mono), [0.3_f32, 0.0]);
    }

    #[test]
    fn same_layout_passes_through_bit_exact() {
        let input = [0.123, -0.456, 0.789];
        assert_eq!(mix(&input, 1, Channels::Mono), input);
        let input = [0.1, -0.2, 0.3, -0.4, 0.5, -0.6];
        assert_eq!(mix(&input, 2, Channels::Stereo), input);
    }

    #[test]
    fn five_one_folds_down_without_clipping_and_drops_lfe() {
        // Full scale everywhere: the fold-down must stay within ±1.
        let out = mix(&[1.0; 6], 6, Channels::Stereo);
        assert!(out.iter().all(|v| v.abs() <= 1.0 + 1e-6), "{out:?}");
        assert!((out[0] - 1.0).abs() < 1e-6);
        // LFE only: silence.
        assert_eq!(mix(&[0.0, 0.0, 0.0, 1.0, 0.0, 0.0], 6, Channels::Mono), [0.0]);
        // Centre only reaches both sides equally.
        let out = mix(&[0.0, 0.0, 1.0, 0.0, 0.0, 0.0], 6, Channels::Stereo);
        assert!((out[0] - out[1]).abs() < 1e-6 && out[0] > 0.2);
    }
}
