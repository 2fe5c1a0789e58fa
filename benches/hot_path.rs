//! Criterion benches of the hot path, with real data:
//! - `pcm_to_rtp`: one 20 ms frame of 48 kHz PCM → Opus → RTP packet.
//! - `transcode_mp3`: 10 s of 44.1 kHz stereo MP3 → 48 kHz mono Opus 32 kbit/s
//!   c10 → RTP. Throughput is in 48 kHz output samples, so criterion's
//!   "elem/s" divided by 48 000 is the real-time factor.
//!
//! The side-by-side ratio against ffmpeg is `scripts/bench-vs-ffmpeg.sh`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use loa::config::{Audio, Channels, FrameDuration};
use loa::media::Source;
use loa::media::opus::{Framer, OpusEncoder, MAX_PAYLOAD_BYTES};
use loa::rtp::session::{Session, SessionConfig};

fn audio() -> Audio {
    Audio {
        channels: Channels::Mono,
        frame: FrameDuration::Ms20,
        bitrate_bps: 32_000,
        complexity: 10,
        fec: false,
        expected_loss_pct: 0,
        payload_type: 96,
        loudness: Default::default(),
    }
}

fn session(start: Instant) -> Session {
    Session::new(
        SessionConfig {
            ssrc: 0x1234_5678,
            initial_seq: 1,
            initial_timestamp: 2,
            payload_type: 96,
            cname: "bench@127.0.0.1".into(),
            session_bandwidth_bps: 48_000,
            rng_seed: 7,
        },
        start,
    )
}

/// Speech-like test signal: a few harmonics with a slow tremolo plus noise,
/// so the encoder does real work (a pure sine is unrealistically cheap).
fn signal(n: usize) -> Vec<f32> {
    let mut seed: u32 = 1;
    (0..n)
        .map(|i| {
            let t = i as f32 / 48_000.0;
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = (seed >> 9) as f32 / (1 << 23) as f32 - 0.5;
            let f0 = 180.0 + 40.0 * (t * 0.7).sin();
            let voiced: f32 = (1..6).map(|h| (2.0 * std::f32::consts::PI * f0 * h as f32 * t).sin() / h as f32).sum();
            0.3 * voiced * (0.6 + 0.4 * (t * 3.0).sin()) + 0.05 * noise
        })
        .collect()
}

fn fixture_mp3() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join("bench-10s-44k1-stereo.mp3");
    if !path.exists() {
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
            .arg("anoisesrc=color=pink:amplitude=0.2:duration=10:sample_rate=44100,aformat=channel_layouts=stereo")
            .args(["-f", "lavfi", "-i", "sine=frequency=330:duration=10:sample_rate=44100"])
            .args(["-filter_complex", "[0][1]amix=inputs=2", "-ac", "2", "-b:a", "128k"])
            .arg(&path)
            .status()
            .expect("ffmpeg makes the bench fixture (installed by make bench)");
        assert!(status.success());
    }
    path
}

fn pcm_to_rtp(c: &mut Criterion) {
    let pcm = signal(48_000 * 10);
    let mut encoder = OpusEncoder::new(&audio()).unwrap();
    let start = Instant::now();
    let mut session = session(start);
    let mut payload = vec![0u8; MAX_PAYLOAD_BYTES];
    let mut packet = Vec::with_capacity(1500);
    let mut frames = pcm.chunks_exact(960).cycle();
    let mut n: u64 = 0;
    let mut group = c.benchmark_group("pcm_to_rtp");
    group.throughput(Throughput::Elements(960));
    group.bench_function("opus32k_c10_mono_20ms", |b| {
        b.iter(|| {
            let frame = frames.next().unwrap();
            let len = encoder.encode(frame, &mut payload).unwrap();
            session.handle_frame(start, n * 960, 960, &payload[..len], &mut packet);
            n += 1;
            packet.len()
        })
    });
    group.finish();
}

fn transcode_mp3(c: &mut Criterion) {
    let path = fixture_mp3();
    let mut group = c.benchmark_group("transcode_mp3");
    group.sample_size(10);
    group.throughput(Throughput::Elements(48_000 * 10));
    group.bench_function("44k1_stereo_to_opus32k_mono", |b| {
        b.iter(|| {
            let audio = audio();
            let mut encoder = OpusEncoder::new(&audio).unwrap();
            let start = Instant::now();
            let mut session = session(start);
            let mut source = Source::open(&path, Channels::Mono).unwrap();
            let mut payload = vec![0u8; MAX_PAYLOAD_BYTES];
            let mut packet = Vec::with_capacity(1500);
            let mut framer = Framer::new(960);
            let mut n: u64 = 0;
            let mut frame = |pcm: &[f32]| {
                let len = encoder.encode(pcm, &mut payload).unwrap();
                session.handle_frame(start, n * 960, 960, &payload[..len], &mut packet);
                n += 1;
                Ok::<(), ()>(())
            };
            while let Some(chunk) = source.next_chunk().unwrap() {
                framer.push(chunk, &mut frame).unwrap();
            }
            framer.finish(frame).unwrap();
            n
        })
    });
    group.finish();
}

criterion_group!(benches, pcm_to_rtp, transcode_mp3);
criterion_main!(benches);
