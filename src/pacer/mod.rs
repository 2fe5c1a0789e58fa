//! The pacer: owns the one dedicated thread that sends every zone's RTP at
//! absolute deadlines (`start + n·frame` on CLOCK_MONOTONIC), and each zone's
//! RTP session (sequence, timestamp, RTCP timing).
//!
//! Per tick it takes at most one frame from each program that owns a zone
//! (encoded once, fanned out to all its zones), stamps it per zone and sends
//! it. It never waits on decode, disk or locks: program queues are read with
//! `try_recv`, commands arrive on a channel polled each tick, events leave on
//! an unbounded channel, and the socket is non-blocking.
//!
//! Must not touch: decoding, encoding, files, the store.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::config::FrameDuration;
use crate::program::Frame;
use crate::rtp::session::Session;

mod zone;

pub use zone::ZoneSpec;

pub type ProgramId = u64;

pub enum Command {
    /// Registers a program's frame queue. It plays nowhere until assigned.
    AddProgram {
        id: ProgramId,
        frames: Receiver<Frame>,
    },
    /// Gives `zone` (index into the zone list) to `program`, or makes it idle,
    /// from the next frame boundary on.
    Assign {
        zone: usize,
        program: Option<ProgramId>,
    },
    /// Like `Assign`, from the first tick due at or after `at` (a timed
    /// start: the scheduled fire instant).
    AssignAt {
        zone: usize,
        program: Option<ProgramId>,
        at: Instant,
    },
    /// Forgets a program (stopped): its queue is dropped, which ends its
    /// encoder. Zones still assigned to it go idle.
    RemoveProgram { id: ProgramId },
    /// A zone added by a config reload; it takes the next index.
    AddZone(ZoneSpec),
    /// A zone removed by a config reload: RTCP BYE, then it stays idle
    /// forever (indices of other zones do not move).
    RetireZone { zone: usize },
    /// Sends RTCP BYE on every zone and ends the thread.
    Shutdown,
    /// A new sender socket (the interface address came back, or was missing
    /// at start); the old one, if any, is closed.
    SetSocket(UdpSocket),
}

#[derive(Debug, Clone, PartialEq)]
pub enum PacerEvent {
    /// The first packet of a program left on a zone.
    FirstPacket {
        program: ProgramId,
        zone: usize,
        at: Instant,
    },
    /// Where a program is; sent when the item changes and about once a second.
    Progress {
        program: ProgramId,
        item: usize,
        position: Duration,
    },
    /// The program's queue closed after its last frame; its zones are idle.
    ProgramEnded { program: ProgramId },
    /// Sends began failing (not a full buffer): the first error of the tick.
    /// `errno` is None when there is no socket at all.
    SendFailing { errno: Option<i32>, target: SocketAddr },
    /// While failing, about once a second: RTP packets not sent so far,
    /// cumulative, per zone index (zones with none left out).
    NotSent { counts: Vec<(usize, u64)> },
    /// A tick sent everything again; final counts as in `NotSent`.
    Sending { counts: Vec<(usize, u64)> },
    /// Was failing, and now there is nothing to send (the programs ended):
    /// no send says anything about the interface any more.
    SendIdle,
}

/// How often `Progress` is reported, in ticks of the frame clock.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Room for pacer events. A bounded channel is one array allocated up
/// front: sending never allocates on the realtime thread, and the reader
/// frees nothing into the pacer's malloc arena (see `opus::Payload`). A
/// program sends about one event a second, so this is minutes of slack.
const EVENT_QUEUE: usize = 4096;

/// Lateness beyond this is a stall (suspend, debugger): instead of sending a
/// burst of everything missed, the missed ticks are skipped on the same grid,
/// which receivers see as a timestamp jump with a marker bit.
const STALL: Duration = Duration::from_secs(1);

pub struct PacerOptions {
    pub frame: FrameDuration,
    pub zones: Vec<ZoneSpec>,
    /// End the thread (after BYE) once no program is registered or playing.
    pub exit_when_idle: bool,
}

pub struct PacerHandle {
    pub commands: Sender<Command>,
    pub events: Receiver<PacerEvent>,
    /// Ticks done so far; a watchdog sees the pacer alive when it moves.
    pub heartbeat: Arc<AtomicU64>,
    join: JoinHandle<PacerStats>,
}

impl PacerHandle {
    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }

    /// Takes the event receiver (to forward it elsewhere); the handle keeps
    /// a closed one.
    pub fn take_events(&mut self) -> Receiver<PacerEvent> {
        let (_, closed) = mpsc::channel();
        std::mem::replace(&mut self.events, closed)
    }

    /// Waits for the pacer thread and returns its statistics.
    pub fn join(self) -> PacerStats {
        self.join.join().unwrap_or_default()
    }
}

/// Starts the pacer thread.
pub fn spawn(socket: Option<UdpSocket>, options: PacerOptions) -> io::Result<PacerHandle> {
    let (commands, command_rx) = mpsc::channel();
    let (event_tx, events) = mpsc::sync_channel(EVENT_QUEUE);
    let heartbeat = Arc::new(AtomicU64::new(0));
    let beat = heartbeat.clone();
    let join = std::thread::Builder::new()
        .name("loa-pacer".into())
        .spawn(move || {
            clock::lower_timer_slack();
            clock::try_realtime_priority();
            // The zones' epoch is the first tick: media time 0 is `start`,
            // and tick n is due at `start + n·frame` with media time n·frame.
            //
            // The grid is put on the wall clock's frame boundaries (a whole
            // second is a tick), so a program timed for 06:00:00 can start
            // on the tick at 06:00:00 rather than up to a frame later.
            let (now_ns, now) = (clock::now_ns(), Instant::now());
            let frame_ns = options.frame.duration().as_nanos() as u64;
            let wall_ns = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            let align = (frame_ns - wall_ns % frame_ns) % frame_ns;
            let start = (now_ns + align, now + Duration::from_nanos(align));
            let mut pacer = Pacer::new(socket, options, command_rx, event_tx, start.1, beat);
            pacer.run(start.0);
            pacer.stats
        })?;
    Ok(PacerHandle {
        commands,
        events,
        heartbeat,
        join,
    })
}

struct ZoneState {
    name: String,
    session: Session,
    rtp_targets: Vec<SocketAddr>,
    rtcp_targets: Vec<SocketAddr>,
    program: Option<ProgramId>,
    /// Program whose first packet on this zone is still to be reported.
    announce_first: bool,
    /// Removed by a reload: said BYE, sends nothing any more.
    retired: bool,
    /// RTP packets stamped but not sent (the interface failed): their
    /// sequence numbers are a gap receivers see as loss.
    not_sent: u64,
}

impl ZoneState {
    fn new(spec: ZoneSpec, start: Instant) -> ZoneState {
        ZoneState {
            name: spec.name,
            session: Session::new(spec.session, start),
            rtp_targets: spec.rtp_targets,
            rtcp_targets: spec.rtcp_targets,
            program: None,
            announce_first: false,
            retired: false,
            not_sent: 0,
        }
    }
}

struct ProgramState {
    frames: Receiver<Frame>,
    /// The frame for the next tick, taken after this tick's sends.
    next: Option<Frame>,
    /// Item and position of the frame sent this tick, if one was.
    sent: Option<(usize, Duration)>,
    last_item: Option<usize>,
    last_progress_tick: u64,
}

struct Pacer {
    /// None until the interface address exists (see `Command::SetSocket`).
    socket: Option<UdpSocket>,
    watch: SendWatch,
    frame: FrameDuration,
    zones: Vec<ZoneState>,
    programs: HashMap<ProgramId, ProgramState>,
    commands: Receiver<Command>,
    events: SyncSender<PacerEvent>,
    /// Events the full queue could not take yet (only if the engine stalls).
    overflow: VecDeque<PacerEvent>,
    exit_when_idle: bool,
    stats: PacerStats,
    packet: Vec<u8>,
    /// Due time of tick 0, the zones' RTP epoch.
    start: Instant,
    /// Set once a program was added, so `exit_when_idle` does not end the
    /// thread before its first command arrives.
    seen_program: bool,
    heartbeat: Arc<AtomicU64>,
    /// Timed assignments not due yet: (zone, program, at).
    pending: Vec<(usize, Option<ProgramId>, Instant)>,
}

impl Pacer {
    fn new(
        socket: Option<UdpSocket>,
        options: PacerOptions,
        commands: Receiver<Command>,
        events: SyncSender<PacerEvent>,
        start: Instant,
        heartbeat: Arc<AtomicU64>,
    ) -> Pacer {
        let zones = options
            .zones
            .into_iter()
            .map(|spec| ZoneState::new(spec, start))
            .collect();
        Pacer {
            socket,
            watch: SendWatch::default(),
            frame: options.frame,
            zones,
            programs: HashMap::new(),
            commands,
            events,
            overflow: VecDeque::new(),
            exit_when_idle: options.exit_when_idle,
            stats: PacerStats::default(),
            packet: Vec::with_capacity(1500),
            start,
            seen_program: false,
            heartbeat,
            pending: Vec::new(),
        }
    }

    /// Hands an event to the engine without blocking: in order, and kept
    /// aside while the queue is full rather than dropped.
    /// (Takes the two fields, not `self`, so it can be called while the
    /// tick loop borrows the zones and programs.)
    fn emit(events: &SyncSender<PacerEvent>, overflow: &mut VecDeque<PacerEvent>, event: PacerEvent) {
        overflow.push_back(event);
        while let Some(event) = overflow.pop_front() {
            match events.try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(event)) => {
                    overflow.push_front(event);
                    return;
                }
                Err(TrySendError::Disconnected(_)) => {
                    overflow.clear();
                    return;
                }
            }
        }
    }

    /// Runs the tick loop; `start_ns` is `self.start` on the raw monotonic clock.
    fn run(&mut self, start_ns: u64) {
        let frame_ns = self.frame.duration().as_nanos() as u64;
        let frame_samples = self.frame.samples_48k() as u64;
        let progress_ticks = (PROGRESS_EVERY.as_nanos() as u64 / frame_ns).max(1);

        let mut tick: u64 = 0;
        loop {
            let deadline_ns = start_ns + tick * frame_ns;
            // Spinning buys microseconds for packets; with nothing on air
            // there are none, and an idle daemon should cost ~nothing.
            let on_air = !self.pending.is_empty() || self.zones.iter().any(|z| z.program.is_some());
            if on_air {
                clock::wait_until_ns(deadline_ns);
            } else {
                clock::sleep_until_ns(deadline_ns);
            }
            let late = Duration::from_nanos(clock::now_ns().saturating_sub(deadline_ns));
            if late > STALL {
                self.stats.stalls += 1;
                tracing::warn!(
                    late_ms = late.as_millis() as u64,
                    "pacer stalled; skipping the missed frames"
                );
                // Stay on the same grid: the skipped ticks become a
                // timestamp jump (with marker) that receivers handle.
                tick += late.as_nanos() as u64 / frame_ns;
                continue;
            }
            if on_air {
                // Idle ticks send nothing; their wake-up is not pacing.
                self.stats.record_lateness(late);
            }
            let due = self.start + Duration::from_nanos(tick * frame_ns);
            let now = Instant::now();

            if !self.handle_commands() {
                break;
            }
            self.apply_pending(due);
            self.send_tick(due, now, tick * frame_samples, tick, progress_ticks);
            self.send_rtcp(now);
            match self.watch.end_tick() {
                Some(Change::Failing { errno, target }) => {
                    let _ = self.events.send(PacerEvent::SendFailing { errno, target });
                }
                Some(Change::Sending) => {
                    let _ = self.events.send(PacerEvent::Sending { counts: self.not_sent_counts() });
                }
                Some(Change::Idle) => {
                    let _ = self.events.send(PacerEvent::SendIdle);
                }
                None if self.watch.failing && tick % progress_ticks == 0 => {
                    let _ = self.events.send(PacerEvent::NotSent { counts: self.not_sent_counts() });
                }
                None => {}
            }
            tick += 1;
            self.stats.ticks += 1;
            self.heartbeat.store(self.stats.ticks, Ordering::Relaxed);
            let idle = self.programs.is_empty() && self.zones.iter().all(|z| z.program.is_none());
            if self.exit_when_idle && self.seen_program && idle {
                break;
            }
        }
        self.send_bye();
        tracing::debug!(stats = ?self.stats, "pacer stopped");
    }

    fn not_sent_counts(&self) -> Vec<(usize, u64)> {
        self.zones
            .iter()
            .enumerate()
            .filter(|(_, z)| z.not_sent > 0)
            .map(|(index, z)| (index, z.not_sent))
            .collect()
    }

    fn assign(&mut self, zone: usize, program: Option<ProgramId>) {
        // A later assignment of the zone supersedes a timed one.
        self.pending.retain(|(z, _, _)| *z != zone);
        self.set_owner(zone, program);
    }

    /// From this tick on, `zone` plays `program` (retired zones stay idle).
    fn set_owner(&mut self, zone: usize, program: Option<ProgramId>) {
        if let Some(state) = self.zones.get_mut(zone).filter(|z| !z.retired) {
            if state.program != program {
                state.program = program;
                state.announce_first = program.is_some();
            }
        }
    }

    /// Applies timed assignments due by this tick. Instants computed from
    /// the wall clock can land a few microseconds off the grid; half a
    /// millisecond of tolerance puts them on the tick they were meant for.
    fn apply_pending(&mut self, due: Instant) {
        if self.pending.is_empty() {
            return;
        }
        let cutoff = due + Duration::from_micros(500);
        let ready: Vec<_> = self.pending.iter().copied().filter(|p| p.2 <= cutoff).collect();
        self.pending.retain(|p| p.2 > cutoff);
        for (zone, program, _) in ready {
            self.set_owner(zone, program);
        }
    }

    /// Applies queued commands. Returns false on shutdown.
    fn handle_commands(&mut self) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(Command::AddProgram { id, frames }) => {
                    self.seen_program = true;
                    self.programs.insert(
                        id,
                        ProgramState {
                            frames,
                            next: None,
                            sent: None,
                            last_item: None,
                            last_progress_tick: 0,
                        },
                    );
                }
                Ok(Command::Assign { zone, program }) => self.assign(zone, program),
                Ok(Command::AssignAt { zone, program, at }) => self.pending.push((zone, program, at)),
                Ok(Command::RemoveProgram { id }) => {
                    self.programs.remove(&id);
                    self.pending.retain(|p| p.1 != Some(id));
                    for zone in self.zones.iter_mut().filter(|z| z.program == Some(id)) {
                        zone.program = None;
                    }
                }
                Ok(Command::AddZone(spec)) => {
                    // Same epoch as the others: media time is counted in
                    // ticks since `start` for every zone.
                    self.zones.push(ZoneState::new(spec, self.start));
                }
                Ok(Command::RetireZone { zone }) => {
                    if let Some(state) = self.zones.get_mut(zone).filter(|z| !z.retired) {
                        state.program = None;
                        state.retired = true;
                        let now = Instant::now();
                        state.session.bye(now, SystemTime::now(), Some("zone removed"), &mut self.packet);
                        for target in &state.rtcp_targets {
                            if send(self.socket.as_ref(), &self.packet, *target, &mut self.watch, &mut self.stats, &state.name) {
                                self.stats.rtcp_packets += 1;
                            }
                        }
                    }
                }
                Ok(Command::Shutdown) => return false,
                Ok(Command::SetSocket(socket)) => self.socket = Some(socket),
                // The controller went away: a one-shot stream plays out, a
                // daemon's pacer stops (nobody could ever stop it otherwise).
                Err(TryRecvError::Disconnected) => return self.exit_when_idle,
                Err(TryRecvError::Empty) => return true,
            }
        }
    }

    /// Sends this tick's packets, then does everything that may wake
    /// another thread: events to the engine and taking each program's next
    /// frame (which wakes its worker if it was waiting for room). A wake-up
    /// is a futex call and, on an idle machine, an IPI to a sleeping CPU —
    /// tens of microseconds that used to sit before every `sendto`.
    fn send_tick(&mut self, due: Instant, now: Instant, media_samples: u64, tick: u64, progress_ticks: u64) {
        let frame_samples = self.frame.samples_48k() as u32;
        let mut ended = Vec::new();
        for (&id, program) in self.programs.iter_mut() {
            program.sent = None;
            if !self.zones.iter().any(|z| z.program == Some(id)) {
                continue; // paused or not yet assigned: keep its position
            }
            // Normally taken at the end of the previous tick; at a program's
            // first tick, or after an underrun, take it now.
            let frame = match program.next.take().map_or_else(|| program.frames.try_recv(), Ok) {
                Ok(frame) => frame,
                Err(TryRecvError::Empty) => {
                    self.stats.underruns += 1;
                    continue;
                }
                Err(TryRecvError::Disconnected) => {
                    ended.push(id);
                    continue;
                }
            };
            for zone in self.zones.iter_mut().filter(|z| z.program == Some(id)) {
                zone.session
                    .handle_frame(due, media_samples, frame_samples, frame.payload.as_slice(), &mut self.packet);
                let mut delivered = zone.rtp_targets.is_empty();
                for target in &zone.rtp_targets {
                    if send(self.socket.as_ref(), &self.packet, *target, &mut self.watch, &mut self.stats, &zone.name) {
                        self.stats.packets += 1;
                        delivered = true;
                    } else {
                        zone.not_sent += 1;
                    }
                }
                // Sent to no one: the media clock runs on (timing intact),
                // the sequence number is not used up.
                if !delivered {
                    zone.session.withdraw_last(media_samples, frame.payload.as_slice().len());
                }
            }
            program.sent = Some((frame.item, frame.position));
        }

        // Everything below may wake other threads; the packets are out.
        for (index, zone) in self.zones.iter_mut().enumerate() {
            if let (true, Some(id)) = (zone.announce_first, zone.program) {
                if self.programs.get(&id).is_some_and(|p| p.sent.is_some()) {
                    zone.announce_first = false;
                    Self::emit(&self.events, &mut self.overflow, PacerEvent::FirstPacket {
                        program: id,
                        zone: index,
                        at: now,
                    });
                }
            }
        }
        for (&id, program) in self.programs.iter_mut() {
            let Some((item, position)) = program.sent else {
                continue;
            };
            let item_changed = program.last_item != Some(item);
            if item_changed || tick - program.last_progress_tick >= progress_ticks {
                program.last_item = Some(item);
                program.last_progress_tick = tick;
                Self::emit(&self.events, &mut self.overflow, PacerEvent::Progress {
                    program: id,
                    item,
                    position,
                });
            }
            // Empty or ended: found out (and counted) at the next tick.
            program.next = program.frames.try_recv().ok();
        }
        for id in ended {
            self.programs.remove(&id);
            for zone in self.zones.iter_mut().filter(|z| z.program == Some(id)) {
                zone.program = None;
            }
            Self::emit(&self.events, &mut self.overflow, PacerEvent::ProgramEnded { program: id });
        }
    }

    fn send_rtcp(&mut self, now: Instant) {
        for zone in self.zones.iter_mut().filter(|z| !z.retired) {
            if zone.session.poll_timeout().is_some_and(|t| t <= now)
                && zone.session.poll_rtcp(now, SystemTime::now(), &mut self.packet)
            {
                for target in &zone.rtcp_targets {
                    if send(self.socket.as_ref(), &self.packet, *target, &mut self.watch, &mut self.stats, &zone.name) {
                        self.stats.rtcp_packets += 1;
                    }
                }
            }
        }
    }

    fn send_bye(&mut self) {
        let now = Instant::now();
        for zone in self.zones.iter_mut().filter(|z| !z.retired) {
            zone.session.bye(now, SystemTime::now(), None, &mut self.packet);
            for target in &zone.rtcp_targets {
                if send(self.socket.as_ref(), &self.packet, *target, &mut self.watch, &mut self.stats, &zone.name) {
                    self.stats.rtcp_packets += 1;
                }
            }
        }
    }
}

/// Sends one datagram. A failure is counted, never retried: the next
/// tick is due one frame later whatever happens, so an error cannot stall
/// or spin the pacer.
fn send(
    socket: Option<&UdpSocket>,
    packet: &[u8],
    target: SocketAddr,
    watch: &mut SendWatch,
    stats: &mut PacerStats,
    zone: &str,
) -> bool {
    let result = match socket {
        Some(socket) => socket.send_to(packet, target).map(|_| ()),
        None => Err(io::ErrorKind::NotConnected.into()),
    };
    match result {
        Ok(()) => {
            watch.sent = true;
            true
        }
        Err(err) if crate::net::netwatch::is_transient(&err) => {
            stats.send_error(zone, target, err);
            false
        }
        Err(err) => {
            // The interface's trouble: the engine is told once per change
            // and does the talking.
            stats.send_errors += 1;
            watch.fault.get_or_insert((err.raw_os_error(), target));
            false
        }
    }
}

/// Whether sending works, judged per tick: a tick with an interface error
/// is failing; one that sent something with no such error is fine. A tick
/// with both (one target unreachable) keeps it failing, so a mixed state
/// does not flap. A tick that tried nothing ends "failing" without saying
/// it works (`Idle`): the engine's address check decides then.
#[derive(Debug, Default)]
struct SendWatch {
    failing: bool,
    /// This tick's first interface error.
    fault: Option<(Option<i32>, SocketAddr)>,
    /// This tick sent at least one datagram.
    sent: bool,
    /// Ticks in a row that tried nothing while failing.
    idle_ticks: u32,
}

/// Ticks with nothing to send before a failing pacer calls itself idle: a
/// single tick without a frame (an underrun) is not the end of a broadcast.
const IDLE_AFTER_TICKS: u32 = 50;

#[derive(Debug, PartialEq)]
enum Change {
    Failing { errno: Option<i32>, target: SocketAddr },
    Sending,
    Idle,
}

impl SendWatch {
    fn end_tick(&mut self) -> Option<Change> {
        let fault = self.fault.take();
        let sent = std::mem::take(&mut self.sent);
        match fault {
            Some((errno, target)) if !self.failing => {
                self.failing = true;
                self.idle_ticks = 0;
                Some(Change::Failing { errno, target })
            }
            Some(_) => {
                self.idle_ticks = 0;
                None
            }
            None if self.failing && sent => {
                self.failing = false;
                Some(Change::Sending)
            }
            None if self.failing => {
                self.idle_ticks += 1;
                if self.idle_ticks < IDLE_AFTER_TICKS {
                    return None;
                }
                self.failing = false;
                Some(Change::Idle)
            }
            None => None,
        }
    }
}

/// What the pacer measured over its life.
#[derive(Debug, Clone, Default)]
pub struct PacerStats {
    pub ticks: u64,
    pub packets: u64,
    pub rtcp_packets: u64,
    /// Ticks where a playing program had no frame ready.
    pub underruns: u64,
    pub send_errors: u64,
    pub stalls: u64,
    pub max_lateness: Duration,
    /// Tick at which the worst lateness happened (0 = the first frame).
    pub max_lateness_tick: u64,
    lateness_hist: LatenessHistogram,
}

impl PacerStats {
    fn record_lateness(&mut self, late: Duration) {
        if late > self.max_lateness {
            self.max_lateness_tick = self.ticks;
        }
        self.max_lateness = self.max_lateness.max(late);
        self.lateness_hist.record(late);
    }

    /// Wake-up lateness at quantile `q` (0.0–1.0), to histogram resolution.
    pub fn lateness_quantile(&self, q: f64) -> Duration {
        self.lateness_hist.quantile(q)
    }

    fn send_error(&mut self, zone: &str, target: SocketAddr, err: io::Error) {
        self.send_errors += 1;
        // Rate-limited: a missing route must not flood the log at 50 Hz.
        if self.send_errors == 1 || self.send_errors % 1000 == 0 {
            tracing::warn!(zone, %target, errors = self.send_errors, "cannot send: {err}");
        }
    }
}

/// Lateness histogram with 10 µs buckets up to 20 ms (plus one overflow
/// bucket): fixed size, so recording never allocates on the pacer thread.
#[derive(Debug, Clone)]
struct LatenessHistogram {
    buckets: Box<[u64]>,
    count: u64,
}

const BUCKET_NS: u64 = 10_000;
const BUCKETS: usize = 2_000;

impl Default for LatenessHistogram {
    fn default() -> Self {
        LatenessHistogram {
            buckets: vec![0; BUCKETS + 1].into_boxed_slice(),
            count: 0,
        }
    }
}

impl LatenessHistogram {
    fn record(&mut self, late: Duration) {
        let index = ((late.as_nanos() as u64) / BUCKET_NS).min(BUCKETS as u64) as usize;
        self.buckets[index] += 1;
        self.count += 1;
    }

    /// Upper bound of the bucket holding quantile `q`.
    fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let rank = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Duration::from_nanos((index as u64 + 1) * BUCKET_NS);
            }
        }
        Duration::from_nanos((BUCKETS as u64 + 1) * BUCKET_NS)
    }
}

/// CLOCK_MONOTONIC sleeping with absolute deadlines. std has no absolute
/// sleep (`thread::sleep` is relative, so each wake-up's error would add up);
/// `clock_nanosleep(TIMER_ABSTIME)` is the one call that gives drift-free
/// deadlines, hence this small unsafe wrapper.
mod clock {
    pub fn now_ns() -> u64 {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid, writable timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }

    /// How long before a deadline the thread stops sleeping and spins on the
    /// clock. Timer wake-ups on small VMs and ARM boards land 50–300 µs
    /// late; spinning the last stretch puts the send within a few µs of the
    /// deadline for ~1.5 % of one core at 20 ms frames.
    pub const SPIN: u64 = 300_000;

    /// Sleeps until `deadline`, waking `SPIN` early and spinning the rest.
    pub fn wait_until_ns(deadline: u64) {
        if deadline > SPIN {
            sleep_until_ns(deadline - SPIN);
        }
        while now_ns() < deadline {
            std::hint::spin_loop();
        }
    }

    pub fn sleep_until_ns(deadline: u64) {
        let ts = libc::timespec {
            tv_sec: (deadline / 1_000_000_000) as libc::time_t,
            tv_nsec: (deadline % 1_000_000_000) as libc::c_long,
        };
        loop {
            // SAFETY: `ts` is a valid timespec; the remainder pointer may be
            // null with TIMER_ABSTIME.
            let rc = unsafe {
                libc::clock_nanosleep(libc::CLOCK_MONOTONIC, libc::TIMER_ABSTIME, &ts, std::ptr::null_mut())
            };
            if rc != libc::EINTR {
                break;
            }
        }
        // An absolute sleep that returns early must not let the tick loop
        // run ahead of the clock (libfaketime 0.9.10 does this to every
        // CLOCK_MONOTONIC TIMER_ABSTIME sleep, even with monotonic time not
        // faked): sleep the rest relatively. Normally `now >= deadline` here.
        let now = now_ns();
        if now < deadline {
            std::thread::sleep(std::time::Duration::from_nanos(deadline - now));
        }
    }

    /// The default 50 µs timer slack lets the kernel wake us that late on
    /// purpose; the pacer wants its deadline, not power savings.
    pub fn lower_timer_slack() {
        // SAFETY: PR_SET_TIMERSLACK takes an unsigned long; affects this thread only.
        let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
        if rc != 0 {
            tracing::debug!("cannot lower timer slack: {}", std::io::Error::last_os_error());
        }
    }

    /// SCHED_FIFO keeps the pacer on time when the machine is busy. It needs
    /// CAP_SYS_NICE (the systemd unit grants it); without it we run at
    /// normal priority and say so.
    pub fn try_realtime_priority() {
        let param = libc::sched_param { sched_priority: 10 };
        // SAFETY: valid pthread handle for the current thread and a valid param.
        let rc = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
        if rc != 0 {
            tracing::debug!(
                "pacer runs without realtime priority: {}",
                std::io::Error::from_raw_os_error(rc)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_use_bucket_upper_bounds() {
        let mut h = LatenessHistogram::default();
        for us in 0..100 {
            h.record(Duration::from_micros(us));
        }
        assert_eq!(h.quantile(0.5), Duration::from_micros(50));
        assert_eq!(h.quantile(0.99), Duration::from_micros(100));
        h.record(Duration::from_secs(5));
        assert_eq!(h.quantile(1.0), Duration::from_nanos((BUCKETS as u64 + 1) * BUCKET_NS));
    }

    #[test]
    fn send_watch_reports_each_change_once_and_a_mixed_tick_stays_failing() {
        let target: SocketAddr = "239.255.77.1:5004".parse().unwrap();
        let mut w = SendWatch {
            sent: true,
            ..SendWatch::default()
        };
        assert_eq!(w.end_tick(), None, "fine stays fine");
        w.fault = Some((Some(libc::ENETUNREACH), target));
        assert_eq!(w.end_tick(), Some(Change::Failing { errno: Some(libc::ENETUNREACH), target }));
        w.fault = Some((Some(libc::ENETUNREACH), target));
        assert_eq!(w.end_tick(), None, "said once");
        w.fault = Some((Some(libc::ENETUNREACH), target));
        w.sent = true;
        assert_eq!(w.end_tick(), None, "one target still fails");
        w.sent = true;
        assert_eq!(w.end_tick(), Some(Change::Sending));
        w.fault = Some((Some(libc::ENETUNREACH), target));
        assert!(w.end_tick().is_some());
        for _ in 1..IDLE_AFTER_TICKS {
            assert_eq!(w.end_tick(), None, "an underrun is not the end of a broadcast");
        }
        assert_eq!(w.end_tick(), Some(Change::Idle), "nothing tried for a second: not failing, not proven working");
        assert_eq!(w.end_tick(), None);
    }

    #[test]
    fn sending_without_a_socket_is_an_interface_fault_counted_not_retried() {
        let target: SocketAddr = "239.255.77.1:5004".parse().unwrap();
        let (mut w, mut stats) = (SendWatch::default(), PacerStats::default());
        assert!(!send(None, b"x", target, &mut w, &mut stats, "thon-1"));
        assert_eq!(w.end_tick(), Some(Change::Failing { errno: None, target }));
        assert_eq!(stats.send_errors, 1);
    }

    #[test]
    fn absolute_sleep_does_not_accumulate_drift() {
        let start = clock::now_ns();
        let frame = 2_000_000; // 2 ms
        for n in 1..=50 {
            clock::sleep_until_ns(start + n * frame);
        }
        let elapsed = clock::now_ns() - start;
        // 50 sleeps of 2 ms: ends at 100 ms, late only by the last wake-up,
        // not by 50 wake-ups (a relative sleep would be ≥ 100 ms + 50 × slack).
        assert!(elapsed >= 100_000_000, "woke early: {elapsed} ns");
        assert!(elapsed < 100_000_000 + 20_000_000, "drifted: {elapsed} ns");
    }
}
