//! What SRTP costs the pacer per packet: a timing loop over a real ~100-byte
//! Opus frame, building the RTP packet alone (the reference, in the same
//! run), then building and protecting it with each suite, then
//! unprotecting it (the speaker's side). Also counts the Rust heap
//! allocations per protect (libsrtp's own C allocations are not seen here:
//! run under `valgrind` with two packet counts for those).
//!
//!   cargo run --release --example srtp_cost [PACKETS]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use loa::config::{Audio, Channels, FrameDuration};
use loa::media::opus::{OpusEncoder, MAX_PAYLOAD_BYTES};
use loa::rtp::session::{Session, SessionConfig};
use loa::rtp::srtp::{MasterKey, SrtpReceiver, SrtpSender, Suite, DEFAULT_REPLAY_WINDOW};

struct Counting;
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const SSRC: u32 = 0x1234_5678;

fn opus_frame() -> Vec<u8> {
    let audio = Audio {
        channels: Channels::Mono,
        frame: FrameDuration::Ms20,
        bitrate_bps: 40_000,
        complexity: 5,
        fec: false,
        expected_loss_pct: 0,
        payload_type: 96,
        loudness: Default::default(),
    };
    let mut encoder = OpusEncoder::new(&audio).unwrap();
    let mut out = [0u8; MAX_PAYLOAD_BYTES];
    let mut len = 0;
    for n in 0..10 {
        let pcm: Vec<f32> = (0..960)
            .map(|i| 0.3 * ((n * 960 + i) as f32 * 0.057).sin())
            .collect();
        len = encoder.encode(&pcm, &mut out).unwrap();
    }
    out[..len].to_vec()
}

fn session() -> Session {
    Session::new(
        SessionConfig {
            ssrc: SSRC,
            initial_seq: 1,
            initial_timestamp: 0,
            payload_type: 96,
            cname: "cost@127.0.0.1".into(),
            session_bandwidth_bps: 50_000,
            rng_seed: 1,
        },
        Instant::now(),
    )
}

fn per_packet(elapsed: Duration, packets: u64) -> f64 {
    elapsed.as_nanos() as f64 / packets as f64
}

fn main() {
    let packets: u64 = std::env::args()
        .nth(1)
        .map_or(200_000, |n| n.parse().expect("a packet count"));
    let payload = opus_frame();
    let now = Instant::now();
    println!(
        "{packets} packets, Opus payload {} bytes, RTP packet {} bytes",
        payload.len(),
        payload.len() + 12
    );

    let mut s = session();
    let mut packet = Vec::with_capacity(1500);
    let start = Instant::now();
    for n in 0..packets {
        s.handle_frame(now, n * 960, 960, &payload, &mut packet);
    }
    let reference = per_packet(start.elapsed(), packets);
    println!("plain RTP build (reference):        {reference:8.0} ns/packet");

    for suite in Suite::ALL {
        let key = MasterKey::generate(suite, &mut rand::rng());
        let mut s = session();
        let mut tx = SrtpSender::new(SSRC, key.clone(), None).unwrap();
        let mut wire: Vec<Vec<u8>> = Vec::new();
        let keep = packets.min(20_000);

        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let start = Instant::now();
        for n in 0..packets {
            s.handle_frame(now, n * 960, 960, &payload, &mut packet);
            tx.protect_rtp(&mut packet).unwrap();
        }
        let protect = per_packet(start.elapsed(), packets);
        let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;

        // The speaker's side, on packets protected beforehand.
        let mut s = session();
        let mut tx = SrtpSender::new(SSRC, key.clone(), None).unwrap();
        let mut rx = SrtpReceiver::new(SSRC, key, None, DEFAULT_REPLAY_WINDOW).unwrap();
        for n in 0..keep {
            s.handle_frame(now, n * 960, 960, &payload, &mut packet);
            tx.protect_rtp(&mut packet).unwrap();
            wire.push(packet.clone());
        }
        let start = Instant::now();
        for p in &mut wire {
            rx.unprotect_rtp(p).unwrap();
        }
        let unprotect = per_packet(start.elapsed(), keep);

        println!(
            "{:<26} build+protect {protect:8.0} ns/packet (protect ≈ {:6.0} ns, {:.2}× the reference), \
             unprotect {unprotect:6.0} ns/packet, Rust allocations per protect: {}",
            suite.sdp_name(),
            protect - reference,
            protect / reference,
            allocations as f64 / packets as f64
        );
    }
}
