//! The pacer's rule, checked: after warm-up, a tick — clock aside, the
//! whole path the real-time thread runs (sends on a real UDP socket, the
//! command and event channels, frames from the programs' queues, RTCP
//! reports, reassignments, a fan-out to joined speakers sent in slices) —
//! neither allocates nor frees.
//!
//! A counting global allocator counts only on this test's thread, and only
//! while a tick runs; the "engine" work between ticks (sending commands,
//! reading events, draining the receivers) is not counted. Time is made up,
//! so a few thousand ticks take well under a second.
//!
//! Zones 4–7 are SRTP zones: sealing each packet and report in place
//! allocates nothing in Rust either. (libsrtp's crypto backend makes C
//! allocations of its own per protect, which this allocator does not see;
//! ARCHITECTURE.md, "SRTP zones".)
//!
//! Sends to 127.0.0.1 only; run it as `scripts/netns.sh cargo test --test
//! pacer_alloc`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::{Duration, Instant, SystemTime};

use loa::config::FrameDuration;
use loa::keys::KeyRing;
use loa::media::opus::Payload;
use loa::pacer::{Begin, Command, Flow, PacerCore, PacerEvent, Ticker, ZoneSeal, ZoneSpec};
use loa::program::Frame;
use loa::proto::ids::{ProgramId, ZoneId};
use loa::rtp::session::SessionConfig;
use loa::rtp::srtp::Suite;

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
}
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static FREES: AtomicU64 = AtomicU64::new(0);

fn armed() -> bool {
    ARMED.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if armed() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if armed() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if armed() {
            FREES.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if armed() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            FREES.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Allocations and frees while `f` runs on this thread.
fn counted<T>(f: impl FnOnce() -> T) -> (T, u64, u64) {
    let (a, b) = (ALLOCS.load(Ordering::Relaxed), FREES.load(Ordering::Relaxed));
    ARMED.with(|c| c.set(true));
    let value = f();
    ARMED.with(|c| c.set(false));
    (value, ALLOCS.load(Ordering::Relaxed) - a, FREES.load(Ordering::Relaxed) - b)
}

const ZONES: usize = 8;
/// Zones from this one on are SRTP.
const FIRST_SRTP: usize = 4;
const PROGRAMS: u64 = 5;
const WARMUP: u64 = 200;
/// Joined speakers (unicast targets) on zone 5.
const SPEAKERS: usize = 100;
/// 4000 ticks of 20 ms: 80 s of made-up time, so every zone sends RTCP
/// reports (about every 5 s) inside the counted part.
const TICKS: u64 = WARMUP + 4000;

fn receiver() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a loopback receiver (run inside scripts/netns.sh)");
    socket.set_nonblocking(true).unwrap();
    socket
}

/// Datagrams waiting on `sockets`; those of SRTP zones that end in the
/// zone key's MKI and a tag are counted in `sealed`.
fn drain(sockets: &[UdpSocket], sealed: &mut u64) -> u64 {
    let mut buf = [0u8; 2048];
    let mut n = 0;
    for (zone, socket) in sockets.iter().enumerate() {
        while let Ok((len, _)) = socket.recv_from(&mut buf) {
            n += 1;
            // 4-byte MKI 1, then the 10-byte tag.
            if zone >= FIRST_SRTP && len > 14 && buf[len - 14..len - 10] == [0, 0, 0, 1] {
                *sealed += 1;
            }
        }
    }
    n
}

fn program(n: u64) -> ProgramId {
    ProgramId::new(n).unwrap()
}

/// A program's queue, filled up front with every frame the test needs
/// (items change every 10 s); the sender is kept, so it never ends.
fn queue(n: u64) -> (SyncSender<Frame>, Receiver<Frame>) {
    let (tx, rx) = mpsc::sync_channel(TICKS as usize + 10);
    let bytes = [n as u8; 80];
    for i in 0..TICKS as u32 + 10 {
        let frame = Frame {
            payload: Payload::from_slice(&bytes).unwrap(),
            item: (i / 500) as usize,
            position: Duration::from_millis(20) * (i % 500),
        };
        tx.send(frame).unwrap();
    }
    (tx, rx)
}

#[test]
fn a_tick_neither_allocates_nor_frees_after_warm_up() {
    let rtp: Vec<UdpSocket> = (0..ZONES).map(|_| receiver()).collect();
    let rtcp: Vec<UdpSocket> = (0..ZONES).map(|_| receiver()).collect();
    let keys = KeyRing::new(Suite::AesCm128HmacSha1_80, Duration::from_secs(86_400), SystemTime::now(), &mut rand::rng()).keys();
    let zones = (0..ZONES)
        .map(|n| ZoneSpec {
            name: format!("z{n}"),
            seal: (n >= FIRST_SRTP).then(|| ZoneSeal::new(0x5000 + n as u32, &keys).unwrap()),
            session: SessionConfig {
                ssrc: 0x5000 + n as u32,
                initial_seq: n as u16,
                initial_timestamp: 7 * n as u32,
                payload_type: 96,
                cname: "loa@127.0.0.1".into(),
                session_bandwidth_bps: 40_000,
                rng_seed: n as u64,
            },
            rtp_targets: vec![rtp[n].local_addr().unwrap()],
            rtcp_targets: vec![rtcp[n].local_addr().unwrap()],
        })
        .collect();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.set_nonblocking(true).unwrap();
    // Joined speakers on zone 5: enough for the fan-out to be sent in
    // slices over the tick (a copy of each packet, held between slices).
    let speakers_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    speakers_socket.set_nonblocking(true).unwrap();
    let speakers: Vec<UdpSocket> = (0..4).map(|_| receiver()).collect();
    let speaker_targets = (0..SPEAKERS).map(|n| speakers[n % speakers.len()].local_addr().unwrap()).collect();

    let start = Instant::now();
    let wall0 = SystemTime::now();
    let core = PacerCore::new(FrameDuration::Ms20, zones, start);
    let (commands, command_rx) = mpsc::sync_channel(1024);
    let (event_tx, events) = mpsc::sync_channel(4096);
    let (released_tx, released) = mpsc::sync_channel(16);
    let mut ticker = Ticker::new(core, Some(sender), command_rx, event_tx, released_tx, false);

    commands.send(Command::SetSpeakersSocket(speakers_socket)).unwrap();
    commands.send(Command::SetSpeakerTargets { zone: ZoneId::from_index(5), targets: speaker_targets }).unwrap();
    let mut feeders = Vec::new();
    for n in 1..=PROGRAMS {
        let (tx, rx) = queue(n);
        feeders.push(tx);
        commands.send(Command::AddProgram { id: program(n), frames: rx }).unwrap();
    }
    // Program 1 on zones 0–2 (one encode, three sends), 2 on 3, 3 on 4–5,
    // 4 on 6, 5 on 7.
    for (zone, n) in [(0, 1), (1, 1), (2, 1), (3, 2), (4, 3), (5, 3), (6, 4), (7, 5)] {
        commands.send(Command::Assign { zone: ZoneId::from_index(zone), program: Some(program(n)) }).unwrap();
    }

    let (mut packets, mut seen_events, mut zone_left, mut sealed) = (0u64, 0u64, 0u64, 0u64);
    let mut speaker_packets = 0u64;
    let (mut allocs, mut frees, mut worst) = (0u64, 0u64, (0u64, 0u64, 0u64));
    for tick in 0..TICKS {
        // The engine's side, not counted: now and then zone 2 moves between
        // programs 1 and 5 (timed or at once), which pauses and resumes
        // nothing but exercises ZoneLeft, FirstPacket and timed assignments.
        if tick % 150 == 75 {
            let to = if (tick / 150) % 2 == 0 { 5 } else { 1 };
            let command = if (tick / 150) % 3 == 0 {
                let at = start + Duration::from_millis(20) * (tick as u32 + 3);
                Command::AssignAt { zone: ZoneId::from_index(2), program: Some(program(to)), at }
            } else {
                Command::Assign { zone: ZoneId::from_index(2), program: Some(program(to)) }
            };
            commands.send(command).unwrap();
        }
        let due = start + Duration::from_millis(20) * tick as u32;
        let wall = wall0 + Duration::from_millis(20) * tick as u32;
        let late = Duration::from_micros(40);
        // As the thread runs it: the sends, the slices at their times, the
        // rest of the tick.
        let (flow, a, f) = counted(|| {
            assert_eq!(ticker.send(late, due, wall), Begin::Send);
            ticker.send_spread(due + Duration::from_millis(10));
            ticker.end_tick()
        });
        assert_eq!(flow, Flow::Continue);
        if tick >= WARMUP {
            allocs += a;
            frees += f;
            if a + f > 0 && worst.0 == 0 {
                worst = (tick, a, f);
            }
        }
        packets += drain(&rtp, &mut sealed);
        speaker_packets += drain(&speakers, &mut 0);
        drain(&rtcp, &mut sealed);
        while let Ok(event) = events.try_recv() {
            seen_events += 1;
            zone_left += u64::from(matches!(event, PacerEvent::ZoneLeft { .. }));
        }
        assert!(released.try_recv().is_err(), "no program ends here");
    }

    let stats = ticker.core().stats();
    eprintln!(
        "{} ticks counted: {allocs} allocations, {frees} frees; {} RTP and {} RTCP packets sent, {packets} RTP received, {seen_events} events",
        TICKS - WARMUP,
        stats.packets,
        stats.rtcp_packets
    );
    assert_eq!((allocs, frees), (0, 0), "first at tick {} ({} allocations, {} frees)", worst.0, worst.1, worst.2);
    // The counted ticks did the real work.
    assert_eq!(stats.underruns, 0);
    assert_eq!(stats.send_errors, 0);
    let per_tick = ZONES as u64 + SPEAKERS as u64;
    assert!(stats.packets >= per_tick * (TICKS - 2), "every zone sent every tick: {}", stats.packets);
    assert!(speaker_packets > (TICKS - 2) * SPEAKERS as u64 * 9 / 10, "the speakers' packets arrived: {speaker_packets}");
    assert!(stats.rtcp_packets >= ZONES as u64 * 10, "reports went out: {}", stats.rtcp_packets);
    assert!(packets > (TICKS - 2) * ZONES as u64 * 9 / 10, "the packets arrived: {packets}");
    assert!(zone_left >= 20, "zone 2 moved and said where it left: {zone_left}");
    assert!(sealed > (TICKS - 2) * 4 * 9 / 10, "the SRTP zones' packets went out sealed: {sealed}");
    assert_eq!(stats.seal_errors, 0);
    drop(feeders);
}
