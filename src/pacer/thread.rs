//! The pacer's real-time thread: a thin loop around `PacerCore`. Per tick:
//! wait for the absolute deadline, send (the packets stamped at the end of
//! the previous tick), send the slices of a fan-out to many joined speakers
//! each at its time, then apply the commands that came meanwhile, end the
//! tick (timed assignments, next frames, events) and hand the events on —
//! everything after the wait is non-blocking (`try_recv`, `try_send`, a
//! non-blocking socket).
//!
//! Must not touch: decisions (they are the core's), the log on the tick path.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::core::{Begin, PacerCore, Transmit};
use super::{clock, Command, PacerEvent, PacerOptions, PacerStats, COMMAND_QUEUE, EVENT_QUEUE};
use crate::program::Frame;

/// The sender socket, absent until the interface address exists (see
/// `Command::SetSocket`); sending without one is an interface fault.
pub struct SocketTransmit {
    pub socket: Option<UdpSocket>,
    /// The speakers port's socket (`[speakers] listen`), for joined speakers.
    pub speakers: Option<UdpSocket>,
}

impl Transmit for SocketTransmit {
    fn send_to(&mut self, packet: &[u8], target: SocketAddr) -> io::Result<()> {
        match &self.socket {
            Some(socket) => socket.send_to(packet, target).map(|_| ()),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    fn send_to_speaker(&mut self, packet: &[u8], target: SocketAddr) -> io::Result<()> {
        match &self.speakers {
            Some(socket) => socket.send_to(packet, target).map(|_| ()),
            None => self.send_to(packet, target),
        }
    }

    fn send_to_speakers(&mut self, packet: &[u8], targets: &[SocketAddr]) -> usize {
        match &self.speakers {
            Some(socket) => super::batch::send_to_all(std::os::fd::AsRawFd::as_raw_fd(socket), packet, targets),
            None => targets.iter().filter(|&&target| self.send_to(packet, target).is_ok()).count(),
        }
    }
}

/// Frame queues waiting for the reaper; beyond that (programs ending by
/// the hundred in one tick) the pacer drops them itself.
const RELEASED_QUEUE: usize = 256;

/// Whether the thread goes on after a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Everything the thread does after its clock wait, with the time passed
/// in: the loop in `run` calls it with the real clock, a test may call it
/// with made-up instants (it still uses the real channels and socket).
pub struct Ticker {
    core: PacerCore<Receiver<Frame>>,
    tx: SocketTransmit,
    commands: Receiver<Command>,
    events: SyncSender<PacerEvent>,
    /// Frame queues the pacer is done with, dropped on another thread:
    /// freeing a queue's buffer takes the lock of the malloc arena it came
    /// from, which a preempted worker may hold (priority inversion).
    released: SyncSender<Receiver<Frame>>,
    exit_when_idle: bool,
}

impl Ticker {
    pub fn new(
        core: PacerCore<Receiver<Frame>>,
        socket: Option<UdpSocket>,
        commands: Receiver<Command>,
        events: SyncSender<PacerEvent>,
        released: SyncSender<Receiver<Frame>>,
        exit_when_idle: bool,
    ) -> Ticker {
        Ticker {
            core,
            tx: SocketTransmit { socket, speakers: None },
            commands,
            events,
            released,
            exit_when_idle,
        }
    }

    pub fn core(&self) -> &PacerCore<Receiver<Frame>> {
        &self.core
    }

    /// One tick, woken `late` after its deadline, every part at `now`: the
    /// sends, the slices of the fan-outs, the rest of the tick.
    pub fn tick(&mut self, late: Duration, now: Instant, wall: SystemTime) -> Flow {
        if self.send(late, now, wall) == Begin::Skipped {
            return Flow::Continue;
        }
        self.core.send_spread(None, &mut self.tx);
        self.end_tick()
    }

    /// The first part of a tick, at its deadline: the packets go out (to
    /// joined speakers, the first slice). Skipped: a stall, the tick is
    /// over (its events are handed on).
    pub fn send(&mut self, late: Duration, now: Instant, wall: SystemTime) -> Begin {
        let begin = self.core.begin_tick(late);
        match begin {
            Begin::Skipped => self.flush_events(),
            Begin::Send => self.core.send(now, wall, &mut self.tx),
        }
        begin
    }

    /// The last part of a tick, once the slices went: commands, then the
    /// end of the tick (the next packets stamped) and its events.
    pub fn end_tick(&mut self) -> Flow {
        if self.apply_commands() == Flow::Stop {
            return Flow::Stop;
        }
        self.core.end_tick();
        self.flush_events();
        if self.exit_when_idle && self.core.finished() {
            return Flow::Stop;
        }
        Flow::Continue
    }

    fn flush_events(&mut self) {
        let events = &self.events;
        self.core.flush_events(|event| events.try_send(event));
        while let Some(frames) = self.core.take_released() {
            self.release(frames);
        }
    }

    /// The slices of a fan-out due by `now` (see the core's `spread`).
    pub fn send_spread(&mut self, now: Instant) {
        self.core.send_spread(Some(now), &mut self.tx);
    }

    /// Hands a queue to the reaper; dropped here only if it cannot take it.
    fn release(&self, frames: Receiver<Frame>) {
        let _ = self.released.try_send(frames);
    }

    /// Applies the commands that came since the last tick.
    fn apply_commands(&mut self) -> Flow {
        loop {
            match self.commands.try_recv() {
                Ok(Command::AddProgram { id, frames }) => self.core.add_program(id, frames),
                Ok(Command::Assign { zone, program }) => self.core.assign(zone, program),
                Ok(Command::AssignAt { zone, program, at }) => self.core.assign_at(zone, program, at),
                Ok(Command::RemoveProgram { id }) => {
                    // Dropping the queue ends the program's worker.
                    if let Some(frames) = self.core.remove_program(id) {
                        self.release(frames);
                    }
                }
                Ok(Command::AddZone(spec)) => {
                    self.core.add_zone(spec);
                }
                Ok(Command::RetireZone { zone }) => self.core.retire_zone(zone),
                Ok(Command::SetSpeakerTargets { zone, targets }) => self.core.set_speaker_targets(zone, targets),
                Ok(Command::ZoneKeys { zone, keys }) => self.core.set_zone_keys(zone, &keys),
                Ok(Command::Shutdown) => return Flow::Stop,
                Ok(Command::SetSocket(socket)) => self.tx.socket = Some(socket),
                Ok(Command::SetSpeakersSocket(socket)) => self.tx.speakers = Some(socket),
                // The controller went away: a one-shot stream plays out, a
                // daemon's pacer stops (nobody could ever stop it otherwise).
                Err(TryRecvError::Disconnected) if self.exit_when_idle => return Flow::Continue,
                Err(TryRecvError::Disconnected) => return Flow::Stop,
                Err(TryRecvError::Empty) => return Flow::Continue,
            }
        }
    }

    /// RTCP BYE on every zone, the last events, and the statistics.
    pub fn finish(mut self, now: Instant, wall: SystemTime) -> PacerStats {
        self.core.bye_all(now, wall, &mut self.tx);
        self.flush_events();
        self.core.into_stats()
    }
}

pub struct PacerHandle {
    /// Bounded, so that taking a command never frees on the pacer thread
    /// (an unbounded channel's reader frees each used-up block); a sender
    /// waits only while the pacer is `COMMAND_QUEUE` commands behind.
    pub commands: SyncSender<Command>,
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
    let (commands, command_rx) = mpsc::sync_channel(COMMAND_QUEUE);
    let (event_tx, events) = mpsc::sync_channel(EVENT_QUEUE);
    let heartbeat = Arc::new(AtomicU64::new(0));
    let beat = heartbeat.clone();
    let (released, reap) = mpsc::sync_channel::<Receiver<Frame>>(RELEASED_QUEUE);
    // Ends when the pacer thread drops its end.
    std::thread::Builder::new()
        .name("loa-pacer-reap".into())
        .spawn(move || reap.into_iter().for_each(drop))?;
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
            let (start_ns, start) = (now_ns + align, now + Duration::from_nanos(align));
            let core = PacerCore::new(options.frame, options.zones, start);
            let ticker = Ticker::new(core, socket, command_rx, event_tx, released, options.exit_when_idle);
            run(ticker, start_ns, frame_ns, &beat)
        })?;
    Ok(PacerHandle {
        commands,
        events,
        heartbeat,
        join,
    })
}

/// The tick loop; `start_ns` is the core's tick 0 on the raw monotonic clock.
fn run(mut ticker: Ticker, start_ns: u64, frame_ns: u64, heartbeat: &AtomicU64) -> PacerStats {
    let start = ticker.core.due(0);
    loop {
        let deadline_ns = start_ns + ticker.core.tick() * frame_ns;
        // Spinning buys microseconds for packets; with nothing on air
        // there are none, and an idle daemon should cost ~nothing.
        if ticker.core.on_air() {
            clock::wait_until_ns(deadline_ns);
        } else {
            clock::sleep_until_ns(deadline_ns);
        }
        let late = Duration::from_nanos(clock::now_ns().saturating_sub(deadline_ns));
        let flow = match ticker.send(late, Instant::now(), SystemTime::now()) {
            Begin::Skipped => Flow::Continue,
            Begin::Send => {
                // A packet's fan-out to many joined speakers, slice by
                // slice, each at its own offset in the tick, before the
                // tick's other work (which would otherwise delay a slice
                // by a varying amount); the next tick's send takes what is
                // left, should a slice fall beyond it.
                let next_ns = deadline_ns + frame_ns;
                while let Some(due) = ticker.core.spread_due() {
                    let due_ns = start_ns + due.saturating_duration_since(start).as_nanos() as u64;
                    if due_ns >= next_ns {
                        break;
                    }
                    clock::wait_until_ns_spinning(due_ns, clock::SLICE_SPIN);
                    ticker.send_spread(Instant::now());
                }
                ticker.end_tick()
            }
        };
        heartbeat.store(ticker.core.stats().ticks, Ordering::Relaxed);
        if flow == Flow::Stop {
            break;
        }
    }
    let stats = ticker.finish(Instant::now(), SystemTime::now());
    tracing::debug!(stats = ?stats, "pacer stopped");
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sending_without_a_socket_is_an_interface_error() {
        let target: SocketAddr = "239.255.77.1:5004".parse().unwrap();
        let err = SocketTransmit { socket: None, speakers: None }.send_to(b"x", target).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotConnected);
        assert!(!crate::net::netwatch::is_transient(&err), "counted as the interface's fault, not retried");
    }
}
