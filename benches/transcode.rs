//! Transcode throughput, run by `scripts/bench-vs-ffmpeg.sh` (harness = false,
//! so it takes arguments and prints one machine-readable line).
//!
//!   transcode full FILE CHANNELS BITRATE    decode → mix → resample → Opus → RTP
//!   transcode encode WAV48K CHANNELS BITRATE libopus alone on PCM held in memory
//!   transcode decode FILE CHANNELS BITRATE    decode → mix → resample only (no encode)
//!   transcode version                         the libopus linked into loa
//!
//! Prints `mode=… audio_s=… cpu_s=… rtf=… maxrss_kb=…` where cpu_s is the CPU
//! time of the measured loop alone (in-process, single thread: start-up,
//! encoder setup and, for `encode`, loading the WAV are left out) and rtf is
//! audio seconds per such CPU second. A whole-process figure, start-up
//! included, is what the caller measures around this process
//! (`scripts/bench-vs-ffmpeg.sh` does both, the same way for every side).

use std::path::Path;
use std::time::{Duration, Instant};

use loa::config::{Audio, Channels, FrameDuration};
use loa::media::Source;
use loa::media::opus::{Framer, OpusEncoder, MAX_PAYLOAD_BYTES};
use loa::rtp::session::{Session, SessionConfig};

fn cpu_time() -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn max_rss_kb() -> i64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss
}

fn audio(channels: Channels, bitrate_bps: u32) -> Audio {
    Audio {
        channels,
        frame: FrameDuration::Ms20,
        bitrate_bps,
        complexity: 10,
        fec: false,
        expected_loss_pct: 0,
        payload_type: 96,
        loudness: Default::default(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if args.first().map(String::as_str) == Some("version") {
        // The version string of the libopus this binary (and loa) links:
        // comparisons with other encoders must name it.
        println!("{}", opus::version());
        return;
    }
    if args.len() < 4 {
        eprintln!("usage: transcode full|encode|decode FILE CHANNELS BITRATE, or transcode version");
        std::process::exit(2);
    }
    let channels = if args[2] == "2" { Channels::Stereo } else { Channels::Mono };
    let bitrate: u32 = args[3].parse().expect("bitrate");
    let audio = audio(channels, bitrate);
    let mut encoder = OpusEncoder::new(&audio).expect("encoder");
    let frame_len = encoder.frame_samples() * channels.count();
    let mut payload = vec![0u8; MAX_PAYLOAD_BYTES];
    let mut packet = Vec::with_capacity(1500);
    let start = Instant::now();
    let mut session = Session::new(
        SessionConfig {
            ssrc: 1,
            initial_seq: 0,
            initial_timestamp: 0,
            payload_type: 96,
            cname: "bench".into(),
            session_bandwidth_bps: bitrate + 16_000,
            rng_seed: 1,
        },
        start,
    );
    let mut frames: u64 = 0;
    let mut bytes: u64 = 0;
    let mut encode_frame = |pcm: &[f32], frames: &mut u64| {
        let n = encoder.encode(pcm, &mut payload).expect("encode");
        session.handle_frame(start, *frames * 960, 960, &payload[..n], &mut packet);
        bytes += packet.len() as u64;
        *frames += 1;
    };

    let (mode, cpu) = match args[0].as_str() {
        "full" => {
            let cpu0 = cpu_time();
            let mut source = Source::open(Path::new(&args[1]), channels).expect("open");
            let mut framer = Framer::new(frame_len);
            let mut frame = |pcm: &[f32]| {
                encode_frame(pcm, &mut frames);
                Ok::<(), ()>(())
            };
            while let Some(chunk) = source.next_chunk().expect("decode") {
                framer.push(chunk, &mut frame).unwrap();
            }
            framer.finish(frame).unwrap();
            ("full", cpu_time() - cpu0)
        }
        "decode" => {
            let cpu0 = cpu_time();
            let mut source = Source::open(Path::new(&args[1]), channels).expect("open");
            let mut samples = 0usize;
            while let Some(chunk) = source.next_chunk().expect("decode") {
                samples += chunk.len();
            }
            frames = (samples / frame_len) as u64;
            ("decode", cpu_time() - cpu0)
        }
        "encode" => {
            // Load the PCM first: this mode measures libopus alone.
            let mut reader = hound::WavReader::open(&args[1]).expect("wav");
            assert_eq!(reader.spec().sample_rate, 48_000, "encode mode takes 48 kHz PCM");
            assert_eq!(reader.spec().channels as usize, channels.count());
            let pcm: Vec<f32> = reader
                .samples::<i16>()
                .map(|s| s.unwrap() as f32 / 32768.0)
                .collect();
            let cpu0 = cpu_time();
            for chunk in pcm.chunks_exact(frame_len) {
                encode_frame(chunk, &mut frames);
            }
            ("encode", cpu_time() - cpu0)
        }
        other => panic!("unknown mode {other}"),
    };
    let audio_s = frames as f64 * 0.02;
    println!(
        "mode={mode} audio_s={audio_s:.1} cpu_s={:.3} rtf={:.1} bytes={bytes} maxrss_kb={}",
        cpu.as_secs_f64(),
        audio_s / cpu.as_secs_f64(),
        max_rss_kb()
    );
}
