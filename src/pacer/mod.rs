//! The pacer: the one dedicated thread that sends every zone's RTP at
//! absolute deadlines (`start + n·frame` on CLOCK_MONOTONIC), and each zone's
//! RTP session (sequence, timestamp, RTCP timing).
//!
//! Per tick it sends, for each program that owns zones, one frame (encoded
//! once, fanned out to all its zones), stamped per zone. The split:
//! - `core` decides without I/O: owners, timed assignments, frames, RTP
//!   stamping, events, the send watch and statistics, all with time as an
//!   argument (unit tests in `core/tests.rs`);
//! - `thread` is the thin real-time loop: clock wait, **send first** (the
//!   packets stamped from frames taken at the end of the previous tick),
//!   then commands, timed assignments, next frames and events;
//! - `clock` (absolute sleeps, SCHED_FIFO), `stats` (counts, lateness
//!   histogram), `watch` (whether sending works), `zone` (what a zone sends).
//!
//! The rule on the pacer thread: nothing blocks, and in steady state nothing
//! allocates or frees. Program queues are read with `try_recv`; commands are
//! polled with `try_recv` after the sends, from a bounded channel (an
//! unbounded one frees its used-up blocks on the reader's side); events go out with `try_send` on
//! a bounded channel (one array allocated up front), and what it cannot take
//! waits in a ring reserved up front (`core::EVENT_RING`); the socket is
//! non-blocking; RTCP reports are patched templates, not builder output.
//! Only commands that add or remove programs and zones allocate or free, and
//! never before the tick's packets are out.
//!
//! Must not touch: decoding, encoding, files, the store, the log on the
//! tick path (the engine logs from events).

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use crate::config::FrameDuration;
use crate::keys::ZoneKeys;
use crate::program::Frame;
use crate::proto::ids::{ProgramId, ZoneId};

mod batch;
mod clock;
pub mod core;
mod seal;
mod stats;
mod thread;
mod watch;
mod zone;

pub use self::core::{Begin, FrameSource, PacerCore, Taken, Transmit};
pub use stats::PacerStats;
pub use thread::{spawn, Flow, PacerHandle, SocketTransmit, Ticker};
pub use seal::ZoneSeal;
pub use zone::{ZoneSpec, ZoneSpecError};

pub enum Command {
    /// Registers a program's frame queue. It plays nowhere until assigned.
    AddProgram { id: ProgramId, frames: Receiver<Frame> },
    /// Gives `zone` to `program`, or makes it idle, from the next frame
    /// boundary on.
    Assign { zone: ZoneId, program: Option<ProgramId> },
    /// Like `Assign`, from the first tick due at or after `at` (a timed
    /// start: the scheduled fire instant), within half a millisecond.
    AssignAt { zone: ZoneId, program: Option<ProgramId>, at: Instant },
    /// Forgets a program (stopped): its queue is dropped, which ends its
    /// encoder. Zones still assigned to it go idle.
    RemoveProgram { id: ProgramId },
    /// A zone added by a config reload; it takes the next id.
    AddZone(ZoneSpec),
    /// A zone removed by a config reload: RTCP BYE, then it stays idle
    /// forever (ids of other zones do not move).
    RetireZone { zone: ZoneId },
    /// Replaces `zone`'s joined-speaker unicast targets (issue 15).
    SetSpeakerTargets { zone: ZoneId, targets: Vec<SocketAddr> },
    /// A zone's SRTP keys changed (rotation, revocation): the ring's
    /// current key protects from the next packet on. Boxed: keys are rare
    /// and large, commands many and small.
    ZoneKeys { zone: ZoneId, keys: Box<ZoneKeys> },
    /// The speakers port's socket: unicast to joined speakers leaves from
    /// it (non-blocking, like the sender socket).
    SetSpeakersSocket(UdpSocket),
    /// Sends RTCP BYE on every zone and ends the thread.
    Shutdown,
    /// A new sender socket (the interface address came back, or was missing
    /// at start); the old one, if any, is closed.
    SetSocket(UdpSocket),
}

/// What the pacer tells the engine. Plain values (no heap), so sending one
/// never allocates and the reader frees nothing into the pacer's arena.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PacerEvent {
    /// The first packet of a program left on a zone (once per assignment).
    FirstPacket { program: ProgramId, zone: ZoneId, at: Instant },
    /// Where a program is; sent when the item changes and about once a second.
    Progress { program: ProgramId, item: usize, position: Duration },
    /// `zone` stopped playing `program` (reassigned, made idle or retired)
    /// while the program still exists — playing elsewhere or paused.
    /// `item`/`position` are those of the first frame the zone did not get:
    /// the frame the program sends next; with none ready (an underrun), the
    /// place just after the last frame sent. Not sent for `RemoveProgram`
    /// or an ended program.
    ZoneLeft { zone: ZoneId, program: ProgramId, item: usize, position: Duration },
    /// The program's queue closed after its last frame; its zones are idle.
    ProgramEnded { program: ProgramId },
    /// Sends began failing (not a full buffer): the first error of the tick.
    /// `errno` is None when there is no socket at all.
    SendFailing { errno: Option<i32>, target: SocketAddr },
    /// While failing, about once a second, and just before `Sending`: RTP
    /// packets of `zone` not sent so far, cumulative (zones with none are
    /// not reported).
    NotSent { zone: ZoneId, count: u64 },
    /// A tick sent everything again (the final counts came just before as
    /// `NotSent`).
    Sending,
    /// Was failing, and now there is nothing to send (the programs ended):
    /// no send says anything about the interface any more.
    SendIdle,
    /// A datagram was dropped for a passing reason (send buffer full): on
    /// the first such error and every 1000th; `errors` counts all send
    /// errors so far.
    SendError { zone: ZoneId, target: SocketAddr, errno: Option<i32>, errors: u64 },
    /// The thread woke `late` (more than a second: suspend, debugger) and
    /// skipped `skipped_ticks` frames on the same grid instead of bursting.
    Stalled { late: Duration, skipped_ticks: u64 },
    /// New keys for `zone` could not be installed (plain zone, or libsrtp
    /// refused): it keeps sealing with the keys it had.
    KeysRefused { zone: ZoneId },
}

/// Room for pacer events. A bounded channel is one array allocated up
/// front: sending never allocates on the realtime thread. A program sends
/// about one event a second, so this is minutes of slack; beyond it events
/// wait in the core's ring.
const EVENT_QUEUE: usize = 4096;

/// Room for commands. Bounded for the same reason: the array is allocated
/// up front, so taking a command frees nothing on the pacer thread. The
/// engine sends a few per program; a reload at most one per zone.
const COMMAND_QUEUE: usize = 1024;

pub struct PacerOptions {
    pub frame: FrameDuration,
    pub zones: Vec<ZoneSpec>,
    /// End the thread (after BYE) once no program is registered or playing.
    pub exit_when_idle: bool,
}
