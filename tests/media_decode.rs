//! Decoding real files made by ffmpeg: every supported format, sample rate
//! and channel layout comes out as 48 kHz audio of the right length and
//! pitch, in the configured channel count.

mod common;

use std::path::Path;
use std::process::Command;

use loa::config::Channels;
use loa::media::{MediaError, Source};

/// Makes a 1 kHz tone of `seconds` with ffmpeg.
fn make(path: &Path, rate: u32, layout: &str, seconds: f32, codec_args: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("sine=frequency=1000:sample_rate={rate}:duration={seconds}"))
        .args(["-af", &format!("volume=0.5,aformat=channel_layouts={layout}")])
        .args(codec_args)
        .arg(path)
        .status()
        .expect("ffmpeg (installed by make test)");
    assert!(status.success(), "ffmpeg made {}", path.display());
}

fn decode_all(path: &Path, channels: Channels) -> Result<Vec<f32>, MediaError> {
    let mut source = Source::open(path, channels)?;
    let mut out = Vec::new();
    loop {
        match source.next_chunk() {
            Ok(Some(chunk)) => out.extend_from_slice(chunk),
            Ok(None) => return Ok(out),
            Err(e) => return Err(e),
        }
    }
}

/// Zero crossings per second of the first channel over the middle of the clip.
fn pitch_hz(samples: &[f32], channels: usize) -> f32 {
    let ch0: Vec<f32> = samples.chunks(channels).map(|f| f[0]).collect();
    let mid = &ch0[ch0.len() / 4..ch0.len() * 3 / 4];
    let crossings = mid.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
    crossings as f32 / 2.0 / (mid.len() as f32 / 48_000.0)
}

#[test]
fn every_format_rate_and_layout_decodes_to_48k_in_the_configured_channels() {
    let dir = tempfile::tempdir().unwrap();
    /// (extension, ffmpeg codec arguments, sample rates, channel layouts)
    type Case<'a> = (&'a str, &'a [&'a str], &'a [u32], &'a [&'a str]);
    let cases: &[Case] = &[
        ("wav", &[], &[8_000, 22_050, 44_100, 48_000, 96_000], &["mono", "stereo", "5.1"]),
        ("flac", &[], &[8_000, 44_100, 96_000], &["mono", "stereo", "5.1"]),
        ("mp3", &["-b:a", "128k"], &[8_000, 22_050, 44_100, 48_000], &["mono", "stereo"]),
        ("m4a", &["-c:a", "aac", "-b:a", "128k"], &[22_050, 44_100, 48_000, 96_000], &["mono", "stereo"]),
        ("ogg", &["-c:a", "libvorbis"], &[22_050, 44_100, 48_000], &["mono", "stereo", "5.1"]),
    ];
    for (ext, args, rates, layouts) in cases {
        for rate in *rates {
            for layout in *layouts {
                let path = dir.path().join(format!("tone-{rate}-{layout}.{ext}"));
                make(&path, *rate, layout, 1.0, args);
                for channels in [Channels::Mono, Channels::Stereo] {
                    let what = format!("{ext} {rate} Hz {layout} → {channels:?}");
                    let out = decode_all(&path, channels).unwrap_or_else(|e| panic!("{what}: {e}"));
                    let n = channels.count();
                    assert_eq!(out.len() % n, 0, "{what}: whole frames");
                    let seconds = out.len() as f32 / n as f32 / 48_000.0;
                    // Lossy codecs may keep encoder priming/padding the
                    // reader does not trim (symphonia does not apply MP4
                    // edit lists): up to about 2048 samples.
                    let tolerance = if *ext == "wav" || *ext == "flac" { 0.001 } else { 0.1 };
                    assert!((seconds - 1.0).abs() < tolerance, "{what}: {seconds} s");
                    let pitch = pitch_hz(&out, n);
                    assert!((pitch - 1000.0).abs() < 5.0, "{what}: {pitch} Hz");
                }
            }
        }
    }
}

#[test]
fn codecs_symphonia_cannot_decode_are_named() {
    let dir = tempfile::tempdir().unwrap();
    // Ogg Opus and 5.1 AAC: common in the wild, not decodable by symphonia.
    let opus = dir.path().join("speech.opus");
    make(&opus, 48_000, "mono", 0.5, &["-c:a", "libopus"]);
    let err = Source::open(&opus, Channels::Mono).unwrap_err();
    assert_eq!(err.to_string(), "unsupported codec Opus");
    let aac = dir.path().join("surround.m4a");
    make(&aac, 48_000, "5.1", 0.5, &["-c:a", "aac"]);
    let err = Source::open(&aac, Channels::Mono).unwrap_err();
    assert!(err.to_string().starts_with("unsupported codec AAC"), "{err}");
}

#[test]
fn a_48k_mono_wav_passes_through_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exact.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    let samples: Vec<i16> = (0..10_000).map(|i| ((i * 7919) % 65_536 - 32_768) as i16).collect();
    for &s in &samples {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
    let out = decode_all(&path, Channels::Mono).unwrap();
    let expected: Vec<f32> = samples.iter().map(|&s| s as f32 / 32_768.0).collect();
    assert_eq!(out, expected);
}

#[test]
fn a_wav_with_an_mp3_extension_still_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("really-a-wav.mp3");
    let wav = dir.path().join("t.wav");
    make(&wav, 44_100, "stereo", 0.5, &[]);
    std::fs::rename(&wav, &path).unwrap();
    let out = decode_all(&path, Channels::Mono).unwrap();
    assert!((out.len() as f32 / 48_000.0 - 0.5).abs() < 0.01);
}

#[test]
fn damage_in_the_middle_is_skipped_and_decoding_continues() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.mp3");
    make(&path, 44_100, "mono", 4.0, &["-b:a", "128k"]);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    for (i, b) in bytes[mid..mid + 3000].iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[1];
    }
    std::fs::write(&path, bytes).unwrap();
    let out = decode_all(&path, Channels::Mono).expect("damage in the middle is not fatal");
    let seconds = out.len() as f32 / 48_000.0;
    assert!(seconds > 3.6, "audio after the damage was decoded too: {seconds} s");
}

#[test]
fn truncated_files_give_their_audio_then_say_so() {
    let dir = tempfile::tempdir().unwrap();
    for (ext, args) in [("wav", &[][..]), ("flac", &[][..])] {
        let path = dir.path().join(format!("cut.{ext}"));
        make(&path, 44_100, "stereo", 2.0, args);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let mut source = Source::open(&path, Channels::Mono).unwrap();
        let mut frames = 0;
        let err = loop {
            match source.next_chunk() {
                Ok(Some(chunk)) => frames += chunk.len(),
                Ok(None) => panic!("{ext}: a file cut in half must be reported as truncated"),
                Err(e) => break e,
            }
        };
        assert!(matches!(err, MediaError::Truncated { .. }), "{ext}: {err}");
        let seconds = frames as f32 / 48_000.0;
        assert!((0.8..1.1).contains(&seconds), "{ext}: the first half played ({seconds} s)");
        assert!(matches!(source.next_chunk(), Ok(None)), "{ext}: ends after the report");
    }
}

#[test]
fn unplayable_files_fail_at_open_with_a_plain_reason() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.ogg");
    let empty = dir.path().join("empty.mp3");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.path().join("text.flac");
    std::fs::write(&text, "thông báo\n".repeat(100)).unwrap();
    let cases = [
        (missing, "file not found"),
        (empty, "file is empty"),
        (text, "not a recognised audio format"),
    ];
    for (path, message) in cases {
        let err = Source::open(&path, Channels::Mono).unwrap_err();
        assert_eq!(err.to_string(), message, "{}", path.display());
    }
}

#[test]
fn an_unreadable_file_says_permission_denied() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("secret.wav");
    make(&path, 8_000, "mono", 0.1, &[]);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    if !is_root() {
        let err = Source::open(&path, Channels::Mono).unwrap_err();
        assert!(err.to_string().starts_with("permission denied: the user loa runs as cannot read this file"), "{err}");
        return;
    }
    // root reads everything, so run the real binary as `nobody` (what the
    // daemon's own user would see). Nothing is sent: the only file fails.
    let config = dir.path().join("loa.toml");
    std::fs::write(&config, "[network]\ninterface = \"127.0.0.1\"\n[[zone]]\nname = \"z\"\ngroup = \"239.255.9.9:5004\"\nsecurity = \"none\"\n").unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", common::LOA, "stream", "--zone", "z", "--config"])
        .arg(&config)
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("skipped {}: permission denied: the user loa runs as cannot read this file (check its owner and mode)", path.display())), "{stderr}");
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
