//! The pacer's decisions without I/O: who plays where, which frame goes out
//! at which tick with which RTP numbers, and what the engine is told.
//!
//! Owns each zone's RTP `Session`, the zones' owners, timed assignments not
//! due yet, each program's next frame and progress, the send watch and the
//! statistics. Time comes in as arguments (the tick's lateness, `now`, the
//! wall clock), frames through [`FrameSource`], datagrams leave through
//! [`Transmit`], events through [`PacerCore::flush_events`]: tests drive it
//! with made-up frames and instants, no threads, sockets or sleeps.
//!
//! One tick, in the order the thread calls it:
//! 1. [`begin_tick`](PacerCore::begin_tick) with the wake-up's lateness: a
//!    stall skips ticks on the same grid instead of bursting them;
//! 2. [`send`](PacerCore::send): the packets stamped at the end of the
//!    previous tick go out first, then a frame for any program that had none
//!    then (a late frame still makes its tick), then RTCP;
//! 3. commands ([`assign`](PacerCore::assign), …), applied after the sends;
//! 4. [`end_tick`](PacerCore::end_tick): this tick's events, the timed
//!    assignments due by the next tick, the next frames taken and stamped.
//!
//! The rule: after warm-up, none of these allocates or frees, and nothing
//! here blocks (ring and buffers are reserved up front; commands that add or
//! remove programs and zones may allocate, never per packet).
//!
//! Must not touch: sockets, clocks, channels, the log.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::mpsc::TrySendError;
use std::time::{Duration, Instant, SystemTime};

use crate::config::FrameDuration;
use crate::keys::ZoneKeys;
use crate::program::Frame;
use crate::proto::ids::{ProgramId, ZoneId};

use super::stats::PacerStats;
use super::watch::{Change, SendWatch};
use super::{PacerEvent, ZoneSpec};

mod ports;
mod spread;
mod zone_state;
use zone_state::{Standing, ZoneState, PACKET_ROOM};
use ports::{send_rtcp_to, transmit};
pub use ports::{FrameSource, Taken, Transmit};

/// What `begin_tick` decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// Send this tick's packets now.
    Send,
    /// The wake-up was a stall: ticks were skipped and the packets stamped
    /// again for a later tick; wait for its deadline (already past).
    Skipped,
}

/// How often `Progress` is reported.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Lateness beyond this is a stall (suspend, debugger): instead of sending a
/// burst of everything missed, the missed ticks are skipped on the same grid,
/// which receivers see as a timestamp jump with a marker bit.
pub const STALL: Duration = Duration::from_secs(1);

/// Instants computed from the wall clock can land a few microseconds off the
/// grid; this tolerance puts a timed assignment on the tick it was meant for.
const ASSIGN_TOLERANCE: Duration = Duration::from_micros(500);

/// Events kept while the engine's queue is full. Reserved up front; when it
/// is full too, the superseded kinds (`Progress`, `NotSent`) are dropped and
/// counted, and only the others grow it (the engine has then been stuck for
/// minutes: the bounded queue holds `EVENT_QUEUE` already).
pub const EVENT_RING: usize = 1024;

/// Room reserved for programs and timed assignments, so the usual numbers
/// never grow a table on the pacer thread.
const PROGRAMS_ROOM: usize = 128;

/// Room for zones added by reloads.
const ZONES_ROOM: usize = 64;

struct ProgramState<S> {
    /// None once the program ended (the source waits in `released`).
    source: Option<S>,
    /// The frame for the stamped tick, or held while paused (taken to tell
    /// where a zone left off): the program resumes with it.
    next: Option<Frame>,
    /// `next` is stamped on this tick's packets.
    stamped: bool,
    /// Plays, but had no frame when the tick was stamped: one more try
    /// right after this tick's sends.
    starving: bool,
    /// The queue closed; found out by a take, acted on at `end_tick`.
    ended: bool,
    /// Item and position of the frame sent this tick, if one was.
    sent: Option<(usize, Duration)>,
    /// Item and position of the last frame sent.
    last_sent: Option<(usize, Duration)>,
    last_item: Option<usize>,
    last_progress_tick: u64,
}

/// What a tick produces besides packets, kept apart from zones and
/// programs so both can be borrowed while it is written.
struct Outputs {
    watch: SendWatch,
    stats: PacerStats,
    events: VecDeque<PacerEvent>,
    /// When this tick's sends happened (`FirstPacket::at`).
    now: Instant,
}

impl Outputs {
    fn emit(&mut self, event: PacerEvent) {
        if self.events.len() >= EVENT_RING
            && matches!(event, PacerEvent::Progress { .. } | PacerEvent::NotSent { .. })
        {
            self.stats.dropped_events += 1;
            return;
        }
        self.events.push_back(event);
    }
}

pub struct PacerCore<S> {
    frame: FrameDuration,
    /// Due time of tick 0, the zones' RTP epoch.
    start: Instant,
    /// The tick whose packets are stamped (sent at the next `send`).
    tick: u64,
    progress_ticks: u64,
    zones: Vec<ZoneState>,
    programs: HashMap<ProgramId, ProgramState<S>>,
    /// Timed assignments not due yet, in the order they came.
    pending: Vec<(ZoneId, Option<ProgramId>, Instant)>,
    out: Outputs,
    /// RTCP compound being sent.
    rtcp: Vec<u8>,
    /// A program was added once (`exit_when_idle` waits for the first).
    seen_program: bool,
    /// Sources of ended programs, for the shell to drop where it likes.
    released: Vec<S>,
}

impl<S: FrameSource> PacerCore<S> {
    /// A pacer whose tick 0 is due at `start`, the RTP epoch of every zone.
    pub fn new(frame: FrameDuration, zones: Vec<ZoneSpec>, start: Instant) -> PacerCore<S> {
        let frame_ns = frame.duration().as_nanos() as u64;
        PacerCore {
            frame,
            start,
            tick: 0,
            progress_ticks: (PROGRESS_EVERY.as_nanos() as u64 / frame_ns).max(1),
            zones: {
                // Room for zones a reload adds, so adding one does not move
                // (free) the table on the pacer thread.
                let mut table = Vec::with_capacity(zones.len() + ZONES_ROOM);
                table.extend(zones.into_iter().map(|spec| ZoneState::new(spec, start)));
                table
            },
            programs: HashMap::with_capacity(PROGRAMS_ROOM),
            pending: Vec::with_capacity(PROGRAMS_ROOM),
            out: Outputs {
                watch: SendWatch::default(),
                stats: PacerStats::default(),
                events: VecDeque::with_capacity(EVENT_RING),
                now: start,
            },
            rtcp: Vec::with_capacity(PACKET_ROOM),
            seen_program: false,
            released: Vec::with_capacity(PROGRAMS_ROOM),
        }
    }

    /// The tick whose packets go out at the next `send`, due at
    /// `start + tick·frame`.
    pub fn tick(&self) -> u64 {
        self.tick
    }

    pub fn due(&self, tick: u64) -> Instant {
        self.start + Duration::from_nanos(tick * self.frame.duration().as_nanos() as u64)
    }

    pub fn stats(&self) -> &PacerStats {
        &self.out.stats
    }

    pub fn into_stats(self) -> PacerStats {
        self.out.stats
    }

    /// Something plays or is about to: worth spinning for the deadline.
    pub fn on_air(&self) -> bool {
        !self.pending.is_empty() || self.zones.iter().any(|z| z.program.is_some())
    }

    /// A program was added once, and now none is registered or playing.
    pub fn finished(&self) -> bool {
        self.seen_program && self.programs.is_empty() && self.zones.iter().all(|z| z.program.is_none())
    }

    // ---- commands ----------------------------------------------------

    /// Registers a program's frames. It plays nowhere until assigned.
    pub fn add_program(&mut self, id: ProgramId, source: S) {
        self.seen_program = true;
        self.programs.insert(
            id,
            ProgramState {
                source: Some(source),
                next: None,
                stamped: false,
                starving: false,
                ended: false,
                sent: None,
                last_sent: None,
                last_item: None,
                last_progress_tick: 0,
            },
        );
    }

    /// Gives `zone` to `program` (or makes it idle) from the next tick on;
    /// supersedes a timed assignment of the zone.
    pub fn assign(&mut self, zone: ZoneId, program: Option<ProgramId>) {
        self.pending.retain(|(z, _, _)| *z != zone);
        self.set_owner(zone, program);
    }

    /// Like `assign`, from the first tick due at or after `at` (within
    /// half a millisecond).
    pub fn assign_at(&mut self, zone: ZoneId, program: Option<ProgramId>, at: Instant) {
        self.pending.push((zone, program, at));
    }

    /// Forgets a program: its zones go idle at once (no `ZoneLeft`: it plays
    /// nowhere any more). Returns its frame source for the caller to drop
    /// (dropping a queue frees its buffer, which the real-time thread
    /// leaves to another).
    pub fn remove_program(&mut self, id: ProgramId) -> Option<S> {
        self.pending.retain(|p| p.1 != Some(id));
        for zone in self.zones.iter_mut() {
            if zone.program == Some(id) {
                zone.program = None;
            }
            if zone.played == Some(id) {
                zone.played = None;
            }
        }
        self.programs.remove(&id).and_then(|p| p.source)
    }

    /// A zone added by a config reload; it takes the next id, with the same
    /// RTP epoch as the others.
    pub fn add_zone(&mut self, spec: ZoneSpec) -> ZoneId {
        self.zones.push(ZoneState::new(spec, self.start));
        ZoneId::from_index(self.zones.len() - 1)
    }

    /// Joined speakers' unicast addresses for `zone`, from the next send
    /// on (after the slices of the packet being spread, if any). The list
    /// is built off this thread; the old one is freed here, once per change
    /// (a NAT rebinding), never per packet.
    pub fn set_speaker_targets(&mut self, zone: ZoneId, targets: Vec<SocketAddr>) {
        if let Some(state) = self.zones.get_mut(zone.index()).filter(|z| z.active()) {
            if let Some(targets) = state.spread.replace(targets) {
                state.speaker_targets = targets;
            }
        }
    }

    /// A zone removed by a config reload: it stops playing at once, says
    /// RTCP BYE at the next `send` and stays idle for good (other zones'
    /// ids do not move).
    pub fn retire_zone(&mut self, zone: ZoneId) {
        self.pending.retain(|(z, _, _)| *z != zone);
        if let Some(state) = self.zones.get_mut(zone.index()).filter(|z| z.active()) {
            state.program = None;
            state.announce_first = false;
            state.standing = Standing::Retiring;
        }
    }

    /// A zone's keys changed: its current key seals from the next packet
    /// on. `KeysRefused` when the zone is plain RTP, gone, or libsrtp
    /// refused (the zone then keeps the keys it had).
    pub fn set_zone_keys(&mut self, zone: ZoneId, keys: &ZoneKeys) {
        let seal = self.zones.get_mut(zone.index()).and_then(|z| z.seal.as_mut());
        if seal.is_none_or(|seal| seal.set_keys(keys).is_err()) {
            self.out.emit(PacerEvent::KeysRefused { zone });
        }
    }

    fn set_owner(&mut self, zone: ZoneId, program: Option<ProgramId>) {
        if let Some(state) = self.zones.get_mut(zone.index()).filter(|z| z.active()) {
            if state.program != program {
                state.program = program;
                state.announce_first = program.is_some();
            }
        }
    }

    // ---- the tick ----------------------------------------------------

    /// The thread woke `late` after the stamped tick's deadline. Beyond
    /// `STALL` the missed ticks are skipped on the same grid: the stamped
    /// packets are taken back (their sequence numbers too) and the same
    /// frames stamped for the tick now due, a timestamp jump with the
    /// marker bit that receivers handle.
    pub fn begin_tick(&mut self, late: Duration) -> Begin {
        if late <= STALL {
            if self.on_air() {
                // Idle ticks send nothing; their wake-up is not pacing.
                self.out.stats.record_lateness(late);
            }
            return Begin::Send;
        }
        let skipped = (late.as_nanos() / self.frame.duration().as_nanos()) as u64;
        let media = self.media_samples(self.tick);
        for zone in self.zones.iter_mut() {
            if let Some((_, len)) = zone.stamped.take() {
                zone.withdraw(media, len);
            }
        }
        self.out.stats.record_stall(late, skipped);
        self.out.emit(PacerEvent::Stalled { late, skipped_ticks: skipped });
        self.tick += skipped;
        self.prepare();
        Begin::Skipped
    }

    /// Sends this tick's packets, stamped at the end of the previous tick;
    /// then tries once more for a program that had no frame then; then the
    /// RTCP reports due by `now` and the BYE of a retiring zone.
    pub fn send<T: Transmit>(&mut self, now: Instant, wall: SystemTime, tx: &mut T) {
        self.out.now = now;
        // Slices a stall kept from going: the last packet before this one.
        self.send_spread(None, tx);
        let (due, media) = (self.due(self.tick), self.media_samples(self.tick));
        let frame = self.frame.duration();
        for (index, zone) in self.zones.iter_mut().enumerate() {
            if let Some((program, len)) = zone.stamped.take() {
                let stamp = Stamp { program, payload_len: len, media, due, frame };
                send_zone(zone, ZoneId::from_index(index), stamp, tx, &mut self.out);
            }
        }
        for program in self.programs.values_mut() {
            if std::mem::take(&mut program.stamped) {
                if let Some(frame) = program.next.take() {
                    program.sent = Some((frame.item, frame.position));
                    program.last_sent = program.sent;
                }
            }
        }
        self.rescue_starving(tx);
        self.send_rtcp(now, wall, tx);
    }

    /// A frame that arrived after the tick was stamped still makes the
    /// tick, sent after everything prepared. Taking from a queue that was
    /// empty wakes no worker: none waits for room.
    fn rescue_starving<T: Transmit>(&mut self, tx: &mut T) {
        let (due, media) = (self.due(self.tick), self.media_samples(self.tick));
        let frame_samples = self.frame.samples_48k() as u32;
        for (&id, program) in self.programs.iter_mut() {
            if !std::mem::take(&mut program.starving) {
                continue;
            }
            let taken = program.source.as_mut().map_or(Taken::Ended, FrameSource::take_frame);
            let frame = match taken {
                Taken::Frame(frame) => frame,
                Taken::Empty => {
                    self.out.stats.underruns += 1;
                    continue;
                }
                Taken::Ended => {
                    program.ended = true;
                    continue;
                }
            };
            let payload = frame.payload.as_slice();
            for (index, zone) in self.zones.iter_mut().enumerate() {
                if zone.program == Some(id)
                    && zone.active()
                    && zone.stamp(due, media, frame_samples, payload, &mut self.out.stats)
                {
                    let stamp = Stamp { program: id, payload_len: payload.len(), media, due, frame: self.frame.duration() };
                    send_zone(zone, ZoneId::from_index(index), stamp, tx, &mut self.out);
                }
            }
            program.sent = Some((frame.item, frame.position));
            program.last_sent = program.sent;
        }
    }

    /// When the next slice of a packet spread over the tick is due.
    pub fn spread_due(&self) -> Option<Instant> {
        self.zones.iter().filter_map(|zone| zone.spread.due()).min()
    }

    /// Sends the slices due by `now` (None: all that are pending).
    pub fn send_spread<T: Transmit>(&mut self, now: Option<Instant>, tx: &mut T) {
        for zone in self.zones.iter_mut() {
            while let Some((packet, slice)) = zone.spread.take(&zone.speaker_targets, now) {
                let sent = tx.send_to_speakers(packet, slice);
                self.out.stats.packets += sent as u64;
                zone.not_sent += (slice.len() - sent) as u64;
            }
            if let Some(targets) = zone.spread.take_waiting() {
                zone.speaker_targets = targets;
            }
        }
    }

    fn send_rtcp<T: Transmit>(&mut self, now: Instant, wall: SystemTime, tx: &mut T) {
        for (index, zone) in self.zones.iter_mut().enumerate() {
            let due = match zone.standing {
                Standing::Active => {
                    zone.session.poll_timeout().is_some_and(|t| t <= now)
                        && zone.session.poll_rtcp(now, wall, &mut self.rtcp)
                }
                Standing::Retiring => {
                    zone.session.bye(now, wall, Some("zone removed"), &mut self.rtcp);
                    zone.standing = Standing::Retired;
                    true
                }
                Standing::Retired => false,
            };
            if due && zone.seal_rtcp(&mut self.rtcp, &mut self.out.stats) {
                send_rtcp_to(&zone.rtcp_targets, &self.rtcp, ZoneId::from_index(index), tx, &mut self.out);
            }
        }
    }

    /// RTCP BYE on every zone still active (the pacer stops).
    pub fn bye_all<T: Transmit>(&mut self, now: Instant, wall: SystemTime, tx: &mut T) {
        self.send_spread(None, tx);
        for (index, zone) in self.zones.iter_mut().enumerate() {
            if zone.standing != Standing::Retired {
                zone.session.bye(now, wall, None, &mut self.rtcp);
                zone.standing = Standing::Retired;
                if zone.seal_rtcp(&mut self.rtcp, &mut self.out.stats) {
                    send_rtcp_to(&zone.rtcp_targets, &self.rtcp, ZoneId::from_index(index), tx, &mut self.out);
                }
            }
        }
    }

    /// Ends the tick that was sent: its events (first packets, progress,
    /// the send watch's changes), then the next tick is stamped — timed
    /// assignments due by then applied, frames taken, zones that left a
    /// program and programs that ended reported.
    pub fn end_tick(&mut self) {
        let tick = self.tick;
        for (&id, program) in self.programs.iter_mut() {
            let Some((item, position)) = program.sent.take() else {
                continue;
            };
            let item_changed = program.last_item != Some(item);
            if item_changed || tick - program.last_progress_tick >= self.progress_ticks {
                program.last_item = Some(item);
                program.last_progress_tick = tick;
                self.out.emit(PacerEvent::Progress { program: id, item, position });
            }
        }
        match self.out.watch.end_tick() {
            Some(Change::Failing { errno, target }) => self.out.emit(PacerEvent::SendFailing { errno, target }),
            Some(Change::Sending) => {
                self.report_not_sent();
                self.out.emit(PacerEvent::Sending);
            }
            Some(Change::Idle) => self.out.emit(PacerEvent::SendIdle),
            None if self.out.watch.failing && tick % self.progress_ticks == 0 => self.report_not_sent(),
            None => {}
        }
        self.out.stats.ticks += 1;
        self.tick += 1;
        self.prepare();
    }

    /// One `NotSent` per zone with packets not sent (cumulative counts).
    fn report_not_sent(&mut self) {
        for (index, zone) in self.zones.iter().enumerate() {
            if zone.not_sent > 0 {
                let zone_id = ZoneId::from_index(index);
                self.out.emit(PacerEvent::NotSent { zone: zone_id, count: zone.not_sent });
            }
        }
    }

    /// Stamps the packets of `self.tick`.
    fn prepare(&mut self) {
        let (due, media) = (self.due(self.tick), self.media_samples(self.tick));
        let frame_samples = self.frame.samples_48k() as u32;
        let frame_duration = self.frame.duration();
        self.apply_pending(due);
        let PacerCore { zones, programs, out, pending, released, .. } = self;

        for (&id, program) in programs.iter_mut() {
            program.stamped = false;
            program.starving = false;
            let plays = zones.iter().any(|z| z.program == Some(id));
            // A zone that left needs the next frame's place; a paused
            // program then holds that frame and resumes with it.
            let left = zones.iter().any(|z| z.played == Some(id) && z.program != Some(id));
            if program.next.is_some() || !(plays || left) {
                continue;
            }
            match program.source.as_mut().map_or(Taken::Ended, FrameSource::take_frame) {
                Taken::Frame(frame) => program.next = Some(frame),
                Taken::Empty => program.starving = plays,
                Taken::Ended => program.ended = true,
            }
        }

        for (index, zone) in zones.iter_mut().enumerate() {
            let Some(id) = zone.played.filter(|&id| zone.program != Some(id)) else {
                continue;
            };
            // An ended program has no place to rejoin: `ProgramEnded` says it.
            if let Some(program) = programs.get(&id).filter(|p| !p.ended) {
                let (item, position) = match (&program.next, program.last_sent) {
                    (Some(frame), _) => (frame.item, frame.position),
                    (None, Some((item, position))) => (item, position + frame_duration),
                    (None, None) => (0, Duration::ZERO),
                };
                let zone_id = ZoneId::from_index(index);
                out.emit(PacerEvent::ZoneLeft { zone: zone_id, program: id, item, position });
            }
        }

        programs.retain(|&id, program| {
            if !program.ended {
                return true;
            }
            for zone in zones.iter_mut().filter(|z| z.program == Some(id)) {
                zone.program = None;
            }
            pending.retain(|p| p.1 != Some(id));
            out.emit(PacerEvent::ProgramEnded { program: id });
            // Not dropped here: freeing its queue is the shell's choice.
            released.extend(program.source.take());
            false
        });

        for zone in zones.iter_mut() {
            zone.played = zone.program;
            let Some(id) = zone.program else {
                continue;
            };
            let Some(program) = programs.get_mut(&id) else {
                continue;
            };
            if let Some(frame) = &program.next {
                let payload = frame.payload.as_slice();
                if zone.stamp(due, media, frame_samples, payload, &mut out.stats) {
                    zone.stamped = Some((id, payload.len()));
                }
                program.stamped = true;
            }
        }
    }

    /// Applies timed assignments due by `due` (within the tolerance), in
    /// the order they came.
    fn apply_pending(&mut self, due: Instant) {
        let cutoff = due + ASSIGN_TOLERANCE;
        let mut index = 0;
        while index < self.pending.len() {
            if self.pending[index].2 <= cutoff {
                let (zone, program, _) = self.pending.remove(index);
                self.set_owner(zone, program);
            } else {
                index += 1;
            }
        }
    }

    fn media_samples(&self, tick: u64) -> u64 {
        tick * self.frame.samples_48k() as u64
    }

    /// The frame source of a program that ended, once each.
    pub fn take_released(&mut self) -> Option<S> {
        self.released.pop()
    }

    /// Hands events out in order until `try_send` says the queue is full
    /// (the rest wait in the ring for the next tick) or gone (dropped).
    pub fn flush_events(&mut self, mut try_send: impl FnMut(PacerEvent) -> Result<(), TrySendError<PacerEvent>>) {
        while let Some(event) = self.out.events.pop_front() {
            match try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(event)) => {
                    self.out.events.push_front(event);
                    return;
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.out.events.clear();
                    return;
                }
            }
        }
    }
}

/// The packet a zone sends this tick: whose, how long, and the tick's
/// media time, deadline and length.
struct Stamp {
    program: ProgramId,
    payload_len: usize,
    media: u64,
    due: Instant,
    frame: Duration,
}

/// Sends a zone's stamped packet to its group and the first slice of its
/// joined speakers (the rest are spread over the tick); if it reached
/// none, the sequence number is given back (the media clock runs on).
fn send_zone<T: Transmit>(zone: &mut ZoneState, zone_id: ZoneId, stamp: Stamp, tx: &mut T, out: &mut Outputs) {
    let mut delivered = zone.rtp_targets.is_empty() && zone.speaker_targets.is_empty();
    for &target in &zone.rtp_targets {
        if transmit(tx, &zone.packet, target, zone_id, out) {
            out.stats.packets += 1;
            delivered = true;
        } else {
            zone.not_sent += 1;
        }
    }
    // A joined speaker's send failing says nothing about the interface
    // (the sessions drop a speaker that went away): counted, not watched.
    let first = &zone.speaker_targets[..zone.speaker_targets.len().min(spread::SLICE)];
    let sent = tx.send_to_speakers(&zone.packet, first);
    out.stats.packets += sent as u64;
    zone.not_sent += (first.len() - sent) as u64;
    delivered |= sent > 0;
    // Slices still to go spend the sequence number whatever this one did.
    delivered |= zone.spread.begin(&zone.packet, zone.speaker_targets.len(), stamp.due, stamp.frame);
    if !delivered {
        zone.withdraw(stamp.media, stamp.payload_len);
    }
    if zone.announce_first {
        zone.announce_first = false;
        out.emit(PacerEvent::FirstPacket { program: stamp.program, zone: zone_id, at: out.now });
    }
}

#[cfg(test)]
mod tests;
