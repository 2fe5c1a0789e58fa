//! The pacer core with made-up frames, made-up time and a fake transmit:
//! no threads, channels, sockets or sleeps.

use std::cell::RefCell;
use std::collections::VecDeque;
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
                Out::Datagram(target, bytes) if target.port() == 5005 => Some((*target, parse_compound(bytes).unwrap())),
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
        let start = Instant::now();
        Rig {
            core: PacerCore::new(FRAME, (0..zones).map(spec).collect(), start),
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
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000) + (self.core.due(self.core.tick()) - self.start)
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

#[test]
fn a_frame_is_stamped_per_zone_and_sent_to_every_zone_the_program_owns() {
    let mut rig = Rig::new(3);
    let feed = rig.add(1);
    feed.push(0, 0..10);
    rig.tick_with(|core| {
        core.assign(zone(0), Some(program(1)));
        core.assign(zone(2), Some(program(1)));
    });
    let tick = rig.tick();
    let rtp = tick.rtp();
    assert_eq!(rtp.len(), 2, "one packet per zone it owns, none for zone 1: {rtp:?}");
    assert_eq!(rtp[0].0, rtp_target(0));
    assert_eq!(rtp[1].0, rtp_target(2));
    for (n, (_, packet)) in rtp.iter().enumerate() {
        assert_eq!((packet.item, packet.frame), (0, 0), "the same frame (one encode) on both");
        assert_eq!(packet.ssrc, 0x1000 + 2 * n as u32, "each zone's own session");
        assert_eq!(packet.timestamp, timestamp_at(tick.index), "media time is the tick");
        assert!(packet.marker, "first packet of the zone");
        assert_eq!(packet.seq, INITIAL_SEQ);
    }
    assert_eq!(feed.queued(), 8, "one frame taken for both zones (and the next in hand)");
    let next = rig.tick().rtp();
    assert!(next.iter().all(|(_, p)| p.frame == 1 && !p.marker && p.seq == INITIAL_SEQ.wrapping_add(1)));
}

#[test]
fn a_paused_program_keeps_its_position() {
    let mut rig = Rig::new(1);
    let feed = rig.add(1);
    feed.push(0, 0..100);
    rig.tick_with(|core| core.assign(zone(0), Some(program(1))));
    let played = rtp_of(&rig.ticks(3));
    assert_eq!(played.iter().map(|(_, p)| p.frame).collect::<Vec<_>>(), [0, 1, 2]);
    rig.tick_with(|core| core.assign(zone(0), None));
    let paused = rig.ticks(20);
    assert!(rtp_of(&paused).is_empty(), "nothing while it owns no zone");
    assert_eq!(rig.core.stats().underruns, 0, "a pause is not an underrun");
    let taken_while_paused = 100 - feed.queued() - 4;
    assert!(taken_while_paused <= 1, "at most the frame that told where the zone left off");
    rig.tick_with(|core| core.assign(zone(0), Some(program(1))));
    let resumed = rtp_of(&rig.ticks(2));
    // Frame 3 went out on the tick the pause came in; 4 was held since.
    assert_eq!(resumed.iter().map(|(_, p)| p.frame).collect::<Vec<_>>(), [4, 5], "resumes at the frame where it stopped");
}

#[test]
fn an_underrun_is_counted_and_sends_nothing() {
    let mut rig = Rig::new(1);
    let feed = rig.add(1);
    feed.push(0, 0..2);
    rig.tick_with(|core| core.assign(zone(0), Some(program(1))));
    let before = rtp_of(&rig.ticks(2));
    let empty = rig.tick();
    assert!(empty.rtp().is_empty());
    assert_eq!(rig.core.stats().underruns, 1);
    feed.push(0, 2..3);
    let after = rig.tick();
    let (_, packet) = after.rtp()[0];
    assert_eq!(packet.frame, 2);
    assert_eq!(packet.seq, before[1].1.seq.wrapping_add(1), "sequence stays contiguous");
    assert_eq!(packet.timestamp, timestamp_at(after.index), "the timestamp jumps over the missed tick");
    assert!(packet.marker, "a gap: marker bit");
    assert_eq!(rig.core.stats().underruns, 1);
}

#[test]
fn a_frame_late_for_stamping_still_makes_its_tick() {
    let mut rig = Rig::new(1);
    let feed = rig.add(1);
    rig.tick_with(|core| core.assign(zone(0), Some(program(1))));
    // Stamping found nothing; the frame arrives before the deadline.
    feed.push(0, 0..1);
    let tick = rig.tick();
    assert_eq!(tick.rtp().len(), 1);
    assert_eq!(tick.rtp()[0].1.timestamp, timestamp_at(tick.index));
    assert_eq!(rig.core.stats().underruns, 0);
}

/// First tick at which `zone` sent.
fn first_send(rig: &mut Rig, ticks: usize, target: SocketAddr) -> Option<u64> {
    (0..ticks).map(|_| rig.tick()).find(|t| t.rtp().iter().any(|(to, _)| *to == target)).map(|t| t.index)
}

#[test]
fn a_timed_assignment_takes_the_tick_at_or_after_its_instant() {
    for (offset_us, expected) in [(-3_000i64, 10), (0, 10), (400, 10), (-400, 10), (600, 11), (-19_000, 10)] {
        let mut rig = Rig::new(1);
        let feed = rig.add(1);
        feed.push(0, 0..100);
        let due = rig.core.due(10);
        let at = if offset_us < 0 {
            due - Duration::from_micros(offset_us.unsigned_abs())
        } else {
            due + Duration::from_micros(offset_us as u64)
        };
        rig.tick_with(|core| core.assign_at(zone(0), Some(program(1)), at));
        assert!(rig.core.on_air(), "a pending start keeps the clock tight");
        assert_eq!(first_send(&mut rig, 20, rtp_target(0)), Some(expected), "instant {offset_us} µs from tick 10");
    }
}

#[test]
fn an_assignment_supersedes_a_timed_one_of_the_same_zone() {
    let mut rig = Rig::new(1);
    let feed = rig.add(1);
    feed.push(0, 0..100);
    let at = rig.core.due(5);
    rig.tick_with(|core| {
        core.assign_at(zone(0), Some(program(1)), at);
        core.assign(zone(0), None);
    });
    assert_eq!(first_send(&mut rig, 10, rtp_target(0)), None);
}

#[test]
fn removing_a_program_idles_its_zones() {
    let mut rig = Rig::new(2);
    let feed = rig.add(1);
    feed.push(0, 0..100);
    rig.tick_with(|core| {
        core.assign(zone(0), Some(program(1)));
        core.assign(zone(1), Some(program(1)));
    });
    rig.ticks(3);
    let removed = rig.tick_with(|core| assert!(core.remove_program(program(1)).is_some()));
    assert_eq!(removed.rtp().len(), 2, "that tick's packets were out before the command");
    let after = rig.ticks(5);
    assert!(rtp_of(&after).is_empty());
    assert!(!rig.core.on_air());
    assert!(rig.core.finished());
    let events = events_of(&after);
    assert!(
        !events.iter().any(|e| matches!(e, PacerEvent::ZoneLeft { .. })),
        "a removed program plays nowhere: no resume point: {events:?}"
    );
}

#[test]
fn a_retired_zone_says_bye_and_stays_idle() {
    let mut rig = Rig::new(2);
    let feed = rig.add(1);
    feed.push(0, 0..100);
    rig.tick_with(|core| {
        core.assign(zone(0), Some(program(1)));
        core.assign(zone(1), Some(program(1)));
    });
    rig.ticks(2);
    rig.tick_with(|core| core.retire_zone(zone(0)));
    let bye = rig.tick();
    assert_eq!(bye.rtp().iter().map(|(to, _)| *to).collect::<Vec<_>>(), [rtp_target(1)]);
    let rtcp = bye.rtcp();
    assert_eq!(rtcp.len(), 1, "{rtcp:?}");
    assert_eq!(rtcp[0].0.ip(), rtp_target(0).ip());
    assert!(rtcp[0].1.iter().any(|p| matches!(p, RtcpPacket::Bye { ssrcs, reason } if ssrcs == &[0x1000] && reason.as_deref() == Some("zone removed"))));
    rig.tick_with(|core| {
        core.assign(zone(0), Some(program(1)));
        core.assign_at(zone(0), Some(program(1)), core.due(core.tick() + 2));
    });
    let later = rig.ticks(300);
    assert!(later.iter().flat_map(|t| t.out.iter()).all(|o| match o {
        Out::Datagram(to, _) => to.ip() != rtp_target(0).ip(),
        Out::Event(_) => true,
    }), "no RTP and no report after BYE");
}

#[test]
fn progress_is_reported_on_item_change_and_about_once_a_second() {
    let mut rig = Rig::new(1);
    let feed = rig.add(1);
    feed.push(0, 0..120);
    feed.push(1, 0..100);
    rig.tick_with(|core| core.assign(zone(0), Some(program(1))));
    let ticks = rig.ticks(200);
    let progress: Vec<(u64, usize, Duration)> = ticks
        .iter()
        .flat_map(|t| {
            t.events().into_iter().filter_map(move |e| match e {
                PacerEvent::Progress { item, position, .. } => Some((t.index, item, position)),
                _ => None,
            })
        })
        .collect();
    let ms = Duration::from_millis;
    assert_eq!(
        progress,
        [(1, 0, ms(0)), (51, 0, ms(1000)), (101, 0, ms(2000)), (121, 1, ms(0)), (171, 1, ms(1000))],
        "first frame, each second, the new item, a second after it"
    );
}

#[test]
fn first_packet_is_reported_once_per_assignment() {
    let mut rig = Rig::new(1);
    let feed = rig.add(1);
    feed.push(0, 0..100);
    rig.tick_with(|core| core.assign(zone(0), Some(program(1))));
    let first = rig.ticks(10);
    let firsts = |ticks: &[Tick]| {
        ticks
            .iter()
            .flat_map(|t| t.events().into_iter().filter(|e| matches!(e, PacerEvent::FirstPacket { .. })).map(move |e| (t.index, e)))
            .collect::<Vec<_>>()
    };
    let found = firsts(&first);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0], (1, PacerEvent::FirstPacket { program: program(1), zone: zone(0), at: rig.core.due(1) }));
    rig.tick_with(|core| core.assign(zone(0), None));
    rig.tick_with(|core| core.assign(zone(0), Some(program(1))));
    assert_eq!(firsts(&rig.ticks(10)).len(), 1, "a new assignment, a new first packet");
}

#[test]
fn a_program_ends_after_its_queue_closes() {
    let mut rig = Rig::new(2);
    let feed = rig.add(1);
    feed.push(0, 0..3);
    feed.close();
    rig.tick_with(|core| {
        core.assign(zone(0), Some(program(1)));
        core.assign(zone(1), Some(program(1)));
    });
    let ticks = rig.ticks(6);
    assert_eq!(rtp_of(&ticks).len(), 6, "three frames on two zones");
    let ended: Vec<u64> = ticks
        .iter()
        .filter(|t| t.events().contains(&PacerEvent::ProgramEnded { program: program(1) }))
        .map(|t| t.index)
        .collect();
    assert_eq!(ended, [3], "said once, at the end of the tick after the last frame");
    assert!(!rig.core.on_air(), "its zones are idle");
    assert!(rig.core.finished());
    assert_eq!(rig.core.stats().underruns, 0, "the end is not an underrun");
    assert!(rig.core.take_released().is_some(), "its queue is handed back, not dropped by the core");
    assert!(rig.core.take_released().is_none());
    let left = events_of(&ticks);
    assert!(!left.iter().any(|e| matches!(e, PacerEvent::ZoneLeft { .. })));
}

#[test]
fn sends_happen_before_any_event_of_the_same_tick() {
    let mut rig = Rig::new(2);
    let a = rig.add(1);
    let b = rig.add(2);
    a.push(0, 0..10);
    b.push(0, 0..10);
    let mut ticks = vec![rig.tick_with(|core| {
        core.assign(zone(0), Some(program(1)));
        core.assign(zone(1), Some(program(2)));
    })];
    // Commands in the middle of a tick: their events come after its sends.
    ticks.push(rig.tick_with(|core| core.assign(zone(1), Some(program(1)))));
    ticks.push(rig.tick());
    for tick in &ticks[1..] {
        let first_event = tick.out.iter().position(|o| matches!(o, Out::Event(_)));
        let last_send = tick.out.iter().rposition(|o| matches!(o, Out::Datagram(..)));
        assert!(first_event.is_some(), "tick {} has events", tick.index);
        assert!(last_send < first_event, "tick {}: {:?}", tick.index, tick.out);
    }
}

#[test]
fn a_send_failure_reports_each_change_once() {
    let mut rig = Rig::new(2);
    let feed = rig.add(1);
    feed.push(0, 0..1000);
    rig.tick_with(|core| {
        core.assign(zone(0), Some(program(1)));
        core.assign(zone(1), Some(program(1)));
    });
    let fine = rtp_of(&rig.ticks(5));
    let last_seq = fine.last().unwrap().1.seq;

    rig.failing = Some(libc::ENETUNREACH);
    let failing = rig.ticks(120);
    rig.failing = None;
    let back = rig.ticks(3);

    let changes = |events: &[PacerEvent]| {
        events
            .iter()
            .filter(|e| matches!(e, PacerEvent::SendFailing { .. } | PacerEvent::Sending | PacerEvent::SendIdle))
            .copied()
            .collect::<Vec<_>>()
    };
    let during = events_of(&failing);
    assert_eq!(
        changes(&during),
        [PacerEvent::SendFailing { errno: Some(libc::ENETUNREACH), target: rtp_target(0) }],
        "said once"
    );
    let not_sent: Vec<_> = during.iter().filter(|e| matches!(e, PacerEvent::NotSent { .. })).collect();
    assert_eq!(not_sent.len(), 4, "each zone, about once a second: {not_sent:?}");
    let after: Vec<_> = events_of(&back)
        .into_iter()
        .filter(|e| !matches!(e, PacerEvent::Progress { .. }))
        .collect();
    assert_eq!(
        after,
        [
            PacerEvent::NotSent { zone: zone(0), count: 120 },
            PacerEvent::NotSent { zone: zone(1), count: 120 },
            PacerEvent::Sending,
        ],
        "final counts, then Sending, once"
    );
    let resumed = back[0].rtp();
    assert!(resumed.iter().all(|(_, p)| p.seq == last_seq.wrapping_add(1) && p.marker), "packets not sent gave their sequence numbers back: {resumed:?}");
    assert!(rig.core.stats().send_errors >= 240, "RTP (and any RTCP report due) counted");

    // Failing again, then nothing left to send: idle after a second.
    rig.failing = Some(libc::ENETUNREACH);
    rig.ticks(2);
    rig.tick_with(|core| {
        core.assign(zone(0), None);
        core.assign(zone(1), None);
    });
    let quiet = events_of(&rig.ticks(60));
    assert_eq!(changes(&quiet), [PacerEvent::SendIdle]);
}

#[test]
fn a_full_send_buffer_is_reported_now_and_then_not_as_a_failure() {
    let mut rig = Rig::new(1);
    let feed = rig.add(1);
    feed.push(0, 0..3000);
    rig.tick_with(|core| core.assign(zone(0), Some(program(1))));
    rig.failing = Some(libc::ENOBUFS);
    let events = events_of(&rig.ticks(2001));
    let errors: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            PacerEvent::SendError { errors, zone: z, .. } if *z == zone(0) => Some(*errors),
            _ => None,
        })
        .collect();
    assert_eq!(errors, [1, 1000, 2000]);
    assert!(!events.iter().any(|e| matches!(e, PacerEvent::SendFailing { .. })));
}

#[test]
fn a_stall_skips_ticks_on_the_same_grid() {
    let mut rig = Rig::new(1);
    let feed = rig.add(1);
    feed.push(0, 0..100);
    rig.tick_with(|core| core.assign(zone(0), Some(program(1))));
    let before = rtp_of(&rig.ticks(5));
    let stalled_at = rig.core.tick();
    let late = Duration::from_millis(1_510);
    assert_eq!(rig.core.begin_tick(late), Begin::Skipped);
    assert_eq!(rig.core.tick(), stalled_at + 75, "1.51 s late: 75 whole frames skipped");
    let after = rig.tick();
    let (_, packet) = after.rtp()[0];
    assert_eq!(after.index, stalled_at + 75);
    assert_eq!(packet.frame, 5, "no frame lost, only time");
    assert_eq!(packet.timestamp, timestamp_at(stalled_at + 75), "timestamp on the same grid");
    assert!(packet.marker, "a jump: marker bit");
    assert_eq!(packet.seq, before.last().unwrap().1.seq.wrapping_add(1), "sequence contiguous");
    let stats = rig.core.stats();
    assert_eq!((stats.stalls, stats.skipped_ticks, stats.longest_stall), (1, 75, late));
    assert!(after.events().contains(&PacerEvent::Stalled { late, skipped_ticks: 75 }));
    assert_eq!(rig.core.begin_tick(STALL), Begin::Send, "a second late is late, not a stall");
}

#[test]
fn a_zone_that_leaves_is_told_the_first_frame_it_did_not_get() {
    const N: u32 = 7;
    let mut rig = Rig::new(2);
    let feed = rig.add(1);
    feed.push(0, 0..100);
    rig.tick_with(|core| {
        core.assign(zone(0), Some(program(1)));
        core.assign(zone(1), Some(program(1)));
    });
    let played = rtp_of(&rig.ticks(N as usize));
    assert_eq!(played.last().unwrap().1.frame, N - 1);
    let left = rig.tick_with(|core| core.assign(zone(0), None));
    let events: Vec<_> = left.events().into_iter().filter(|e| matches!(e, PacerEvent::ZoneLeft { .. })).collect();
    assert_eq!(
        events,
        [PacerEvent::ZoneLeft { zone: zone(0), program: program(1), item: 0, position: FRAME.duration() * (N + 1) }],
        "the tick the command came in still sent frame {N} to both"
    );
    let next = rig.tick().rtp();
    assert_eq!(next.iter().map(|(to, p)| (*to, p.frame)).collect::<Vec<_>>(), [(rtp_target(1), N + 1)], "zone 1 got it, zone 0 did not");
    assert!(events_of(&rig.ticks(5)).iter().all(|e| !matches!(e, PacerEvent::ZoneLeft { .. })), "said once");
}

#[test]
fn a_zone_leaving_a_starved_program_is_told_the_place_after_its_last_frame() {
    let mut rig = Rig::new(2);
    let a = rig.add(1);
    let b = rig.add(2);
    a.push(3, 0..4);
    b.push(0, 0..100);
    rig.tick_with(|core| {
        core.assign(zone(0), Some(program(1)));
        core.assign(zone(1), Some(program(1)));
    });
    rig.ticks(5);
    let left = rig.tick_with(|core| core.assign(zone(0), Some(program(2))));
    assert!(left.events().contains(&PacerEvent::ZoneLeft {
        zone: zone(0),
        program: program(1),
        item: 3,
        position: FRAME.duration() * 4,
    }), "{:?}", left.events());
}

#[test]
fn a_paused_program_is_told_where_its_last_zone_left() {
    let mut rig = Rig::new(1);
    let feed = rig.add(1);
    feed.push(2, 0..50);
    rig.tick_with(|core| core.assign(zone(0), Some(program(1))));
    rig.ticks(4);
    let left = rig.tick_with(|core| core.assign(zone(0), None));
    assert!(left.events().contains(&PacerEvent::ZoneLeft {
        zone: zone(0),
        program: program(1),
        item: 2,
        position: FRAME.duration() * 5,
    }));
}

#[test]
fn events_wait_in_the_ring_while_the_queue_is_full() {
    let mut rig = Rig::new(1);
    let feed = rig.add(1);
    feed.push(0, 0..1000);
    rig.core.assign(zone(0), Some(program(1)));
    let start = rig.core.tick();
    for _ in 0..300 {
        rig.core.begin_tick(Duration::ZERO);
        let now = rig.core.due(rig.core.tick());
        rig.core.send(now, SystemTime::UNIX_EPOCH, &mut |_: &[u8], _| Ok(()));
        rig.core.end_tick();
        rig.core.flush_events(|e| Err(TrySendError::Full(e)));
    }
    let mut got = Vec::new();
    rig.core.flush_events(|e| {
        got.push(e);
        Ok(())
    });
    let positions: Vec<Duration> = got
        .iter()
        .filter_map(|e| match e {
            PacerEvent::Progress { position, .. } => Some(*position),
            _ => None,
        })
        .collect();
    assert_eq!(positions.len(), 6, "nothing lost: {got:?}");
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "in order");
    assert!(matches!(got[0], PacerEvent::FirstPacket { .. }), "from tick {start}");
}

#[test]
fn a_full_ring_drops_only_superseded_events() {
    let mut out = Outputs {
        watch: SendWatch::default(),
        stats: PacerStats::default(),
        events: VecDeque::with_capacity(EVENT_RING),
        now: Instant::now(),
    };
    for _ in 0..EVENT_RING {
        out.emit(PacerEvent::SendIdle);
    }
    out.emit(PacerEvent::Progress { program: program(1), item: 0, position: Duration::ZERO });
    out.emit(PacerEvent::NotSent { zone: zone(0), count: 1 });
    out.emit(PacerEvent::ProgramEnded { program: program(1) });
    assert_eq!(out.stats.dropped_events, 2);
    assert_eq!(out.events.back(), Some(&PacerEvent::ProgramEnded { program: program(1) }), "a change is never dropped");
}
