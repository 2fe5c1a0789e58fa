//! Starting a file part-way (`Source::open_at`, for a zone that resumes a
//! programme where it was cut): the output from the start point is the
//! output of a decode from the start at that point — to the bit for
//! lossless files and, after the lossy preroll, for MP3 and Vorbis too —
//! whatever the format, rate and channel layout.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{ffmpeg_convert, write_tones_wav};
use loa::config::Channels;
use loa::media::Source;

/// Four tones of unequal length, so a start point off by any number of
/// samples changes the output.
const TONES: [(f32, f32); 4] = [(440.0, 0.73), (1100.0, 0.91), (1300.0, 0.6), (700.0, 0.57)];

fn decode_rest(mut source: Source) -> Vec<f32> {
    let mut out = Vec::new();
    while let Some(chunk) = source.next_chunk().expect("decodes") {
        out.extend_from_slice(chunk);
    }
    out
}

/// A file of `TONES` at `rate` Hz and `channels` channels, converted by
/// ffmpeg to `ext` with `args` (WAV as written).
fn make(dir: &Path, ext: &str, rate: u32, channels: u16, args: &[&str]) -> PathBuf {
    let wav = dir.join(format!("tones-{rate}-{channels}.wav"));
    if !wav.exists() {
        write_tones_wav(&wav, rate, channels, &TONES);
    }
    if ext == "wav" {
        return wav;
    }
    let out = dir.join(format!("tones-{rate}-{channels}.{ext}"));
    ffmpeg_convert(&wav, &out, args);
    out
}

/// Largest difference between the output from `position` and the full
/// decode there; asserts the lengths agree.
fn max_error(path: &Path, channels: Channels, full: &[f32], position: Duration) -> f32 {
    let n = channels.count();
    let frame = (position.as_micros() * 48 / 1000) as usize;
    let source = Source::open_at(path, channels, position)
        .expect("opens")
        .unwrap_or_else(|| panic!("{}: no audio left at {position:?}", path.display()));
    assert_eq!(source.position(), position, "{}", path.display());
    let rest = decode_rest(source);
    let expected = &full[frame * n..];
    assert_eq!(rest.len(), expected.len(), "{} from {position:?}: length", path.display());
    rest.iter().zip(expected).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
}

/// Start points: the first frame, mid-tone, on and near tone edges, 20 ms
/// before the end.
fn positions(full_frames: usize) -> Vec<Duration> {
    let last = Duration::from_millis((full_frames as u64 * 1000 / 48_000) / 20 * 20 - 20);
    [20, 40, 720, 1000, 1640, 2260]
        .into_iter()
        .map(Duration::from_millis)
        .chain([last])
        .collect()
}

fn check(ext: &str, args: &[&str], rate: u32, channels: u16, tolerance: f32) {
    let dir = tempfile::tempdir().unwrap();
    let path = make(dir.path(), ext, rate, channels, args);
    for target in [Channels::Mono, Channels::Stereo] {
        let full = decode_rest(Source::open(&path, target).unwrap());
        let mut worst = 0.0f32;
        for position in positions(full.len() / target.count()) {
            let error = max_error(&path, target, &full, position);
            assert!(
                error <= tolerance,
                "{ext} {rate} Hz {channels} ch → {target:?} from {position:?}: error {error} above {tolerance}"
            );
            worst = worst.max(error);
        }
        println!("{ext} {rate} Hz {channels} ch → {target:?}: largest error {worst:e}");
    }
}

#[test]
fn wav_starts_sample_exact_at_any_rate() {
    for (rate, channels) in [(48_000, 1), (44_100, 2), (22_050, 1), (8_000, 2), (96_000, 1)] {
        check("wav", &[], rate, channels, 0.0);
    }
}

#[test]
fn flac_starts_sample_exact() {
    for (rate, channels) in [(48_000, 2), (44_100, 1), (22_050, 2)] {
        check("flac", &[], rate, channels, 0.0);
    }
}

#[test]
fn mp3_starts_where_a_full_decode_is() {
    for (rate, channels) in [(48_000, 1), (44_100, 2), (22_050, 1)] {
        check("mp3", &["-b:a", "128k"], rate, channels, 0.0);
    }
}

#[test]
fn ogg_vorbis_starts_where_a_full_decode_is() {
    for (rate, channels) in [(48_000, 2), (44_100, 1)] {
        check("ogg", &["-c:a", "libvorbis"], rate, channels, 0.0);
    }
}

/// AAC's perceptual noise substitution fills some bands with noise from a
/// random generator that runs through the whole file (symphonia, like
/// ffmpeg): after a seek the noise there is other noise of the same level.
/// Measured: at most 1.8e-4 (−75 dBFS) from the full decode.
#[test]
fn aac_starts_where_a_full_decode_is_but_for_substituted_noise() {
    for (rate, channels) in [(48_000, 1), (44_100, 2)] {
        check("m4a", &["-c:a", "aac", "-b:a", "128k"], rate, channels, 1e-3);
    }
}

#[test]
fn a_start_at_or_past_the_end_has_no_audio() {
    let dir = tempfile::tempdir().unwrap();
    for (ext, args, rate) in [("wav", &[][..], 44_100), ("flac", &[][..], 48_000), ("mp3", &["-b:a", "128k"][..], 44_100)] {
        let path = make(dir.path(), ext, rate, 1, args);
        let full = decode_rest(Source::open(&path, Channels::Mono).unwrap());
        let end = Duration::from_micros(full.len() as u64 * 1000 / 48);
        for position in [end + Duration::from_millis(20), Duration::from_secs(3600)] {
            let source = Source::open_at(&path, Channels::Mono, position).unwrap();
            assert!(source.is_none(), "{ext}: audio at {position:?} of a {end:?} file");
        }
    }
}
