//! The pacer core with made-up frames, made-up time and a fake transmit:
//! no threads, channels, sockets or sleeps.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;

use super::*;
use crate::media::opus::Payload;
use crate::rtp::rtcp::{parse_compound, RtcpPacket};
use crate::rtp::session::SessionConfig;

const FRAME: FrameDuration = FrameDuration::Ms20;
const FRAME_SAMPLES: u32 = 960;
const INITIAL_SEQ: u16 = 65_530; // wraps within the tests
const INITIAL_TS: u32 = 1_000;

fn program(n: u64) -> ProgramId {
    ProgramId::new(n).unwrap()
}

fn zone(n: usize) -> ZoneId {
    ZoneId::from_index(n)
}

fn rtp_target(n: usize) -> SocketAddr {
    SocketAddr::from(([239, 255, 0, n as u8], 5004))
}

fn spec(n: usize) -> ZoneSpec {
    ZoneSpec {
        name: format!("z{n}"),
        session: SessionConfig {
            ssrc: 0x1000 + n as u32,
            initial_seq: INITIAL_SEQ,
            initial_timestamp: INITIAL_TS,
            payload_type: 96,
            cname: "loa@192.0.2.10".into(),
            session_bandwidth_bps: 40_000,
            rng_seed: n as u64,
        },
        rtp_targets: vec![rtp_target(n)],
        rtcp_targets: vec![SocketAddr::from(([239, 255, 0, n as u8], 5005))],
        seal: None,
    }
}

/// Frames a test hands to a program, and whether its queue closed.
#[derive(Default)]
struct Feed {
    frames: VecDeque<Frame>,
    closed: bool,
    takes: u32,
}

#[derive(Clone, Default)]
struct Source(Rc<RefCell<Feed>>);

impl FrameSource for Source {
    fn take_frame(&mut self) -> Taken {
        let mut feed = self.0.borrow_mut();
        feed.takes += 1;
        match feed.frames.pop_front() {
            Some(frame) => Taken::Frame(frame),
            None if feed.closed => Taken::Ended,
            None => Taken::Empty,
        }
    }
}

impl Source {
    /// Frames `from..to` of `item`, 20 ms apart; the payload names them.
    fn push(&self, item: usize, frames: std::ops::Range<u32>) {
        for n in frames {
            self.0.borrow_mut().frames.push_back(frame(item, n));
        }
    }

    fn close(&self) {
        self.0.borrow_mut().closed = true;
    }

    fn queued(&self) -> usize {
        self.0.borrow().frames.len()
    }
}

fn frame(item: usize, n: u32) -> Frame {
    let mut bytes = [0u8; 40];
    bytes[0] = item as u8;
    bytes[1..5].copy_from_slice(&n.to_be_bytes());
    Frame {
        payload: Payload::from_slice(&bytes).unwrap(),
        item,
        position: FRAME.duration() * n,
    }
}

/// What went out or came out, in order.
#[derive(Debug, Clone, PartialEq)]
enum Out {
    Datagram(SocketAddr, Vec<u8>),
    Event(PacerEvent),
}

/// One RTP packet as a receiver reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rtp {
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    marker: bool,
    item: usize,
    frame: u32,
}

#[derive(Default, Debug)]
struct Tick {
    /// The tick the packets were due at.
    index: u64,
    out: Vec<Out>,
}

impl Tick {
    fn rtp(&self) -> Vec<(SocketAddr, Rtp)> {
        self.out
            .iter()
            .filter_map(|o| match o {
                Out::Datagram(target, bytes) if target.port() == 5004 => {
                    let r = rtp_rs::RtpReader::new(bytes).unwrap();
                    let payload = r.payload();
                    Some((
                        *target,
                        Rtp {
                            ssrc: r.ssrc(),
                            seq: u16::from(r.sequence_number()),
                            timestamp: r.timestamp(),
                            marker: r.mark(),
                            item: usize::from(payload[0]),
                            frame: u32::from_be_bytes(payload[1..5].try_into().unwrap()),
                        },
                    ))
                }
                _ => None,
            })
            .collect()
    }

    fn rtcp(&self) -> Vec<(SocketAddr, Vec<RtcpPacket>)> {
        self.out
            .iter()
            .filter_map(|o| match o {
                Out::Datagram(target, bytes) if target.port() == 5005 => {
                    Some((*target, parse_compound(bytes).unwrap()))
                }
                _ => None,
            })
            .collect()
    }

    fn events(&self) -> Vec<PacerEvent> {
        self.out
            .iter()
            .filter_map(|o| match o {
                Out::Event(e) => Some(*e),
                _ => None,
            })
            .collect()
    }
}

/// The core driven as the thread drives it, on made-up time: tick n is
/// due (and "now") at `start + n·20 ms`.
struct Rig {
    core: PacerCore<Source>,
    start: Instant,
    /// When set, every send fails with this errno.
    failing: Option<i32>,
}

impl Rig {
    fn new(zones: usize) -> Rig {
        Rig::with_specs((0..zones).map(spec).collect())
    }

    fn with_specs(specs: Vec<ZoneSpec>) -> Rig {
        let start = Instant::now();
        Rig {
            core: PacerCore::new(FRAME, specs, start),
            start,
            failing: None,
        }
    }

    /// A program with a fresh source.
    fn add(&mut self, id: u64) -> Source {
        let source = Source::default();
        self.core.add_program(program(id), source.clone());
        source
    }

    fn wall(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH
            + Duration::from_secs(1_800_000_000)
            + (self.core.due(self.core.tick()) - self.start)
    }

    /// One tick; `commands` run where the thread applies them: after the
    /// sends, before the tick ends.
    fn tick_with(&mut self, commands: impl FnOnce(&mut PacerCore<Source>)) -> Tick {
        let log = RefCell::new(Vec::new());
        let index = self.core.tick();
        let now = self.core.due(index);
        assert_eq!(self.core.begin_tick(Duration::from_micros(30)), Begin::Send);
        let failing = self.failing;
        let wall = self.wall();
        let mut tx = |bytes: &[u8], target: SocketAddr| -> io::Result<()> {
            if let Some(errno) = failing {
                return Err(io::Error::from_raw_os_error(errno));
            }
            log.borrow_mut().push(Out::Datagram(target, bytes.to_vec()));
            Ok(())
        };
        self.core.send(now, wall, &mut tx);
        // The slices of a fan-out, before the commands, as the thread does.
        self.core.send_spread(None, &mut tx);
        commands(&mut self.core);
        self.core.end_tick();
        self.core.flush_events(|event| {
            log.borrow_mut().push(Out::Event(event));
            Ok(())
        });
        Tick {
            index,
            out: log.into_inner(),
        }
    }

    fn tick(&mut self) -> Tick {
        self.tick_with(|_| {})
    }

    fn ticks(&mut self, n: usize) -> Vec<Tick> {
        (0..n).map(|_| self.tick()).collect()
    }
}

fn rtp_of(ticks: &[Tick]) -> Vec<(SocketAddr, Rtp)> {
    ticks.iter().flat_map(Tick::rtp).collect()
}

fn events_of(ticks: &[Tick]) -> Vec<PacerEvent> {
    ticks.iter().flat_map(Tick::events).collect()
}

fn timestamp_at(tick: u64) -> u32 {
    INITIAL_TS.wrapping_add(tick as u32 * FRAME_SAMPLES)
}

mod fanout;
mod faults;
mod playing;
mod srtp;
