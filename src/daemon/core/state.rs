//! The core's state types: programs as the core follows them, zones,
//! schedules, and what a job or a pending answer is for.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use super::io::{ConnId, RequestId, StartPoint};
use super::stall::ZoneStalls;
use crate::config::Schedule;
use crate::daemon::server::Caller;
use crate::daemon::tasks::store::RowKey;
use crate::proto::{OnBusy, OnPreempt, Priority, ProgramId, ZoneId};

pub struct ZoneSlot {
    pub name: String,
    /// Removed by a reload: its id stays taken (ids never move).
    pub retired: bool,
    pub stalls: ZoneStalls,
}

/// A schedule from the config file or added at runtime.
#[derive(Debug, Clone)]
pub struct ScheduleDef {
    pub spec: Schedule,
    pub runtime: bool,
}

/// Where a program came from, for history and status.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    Schedule(String),
    Caller(Caller),
}

impl Origin {
    pub fn text(&self) -> String {
        match self {
            Origin::Schedule(name) => format!("schedule:{name}"),
            Origin::Caller(c) => format!("uid:{}", c.uid),
        }
    }

    pub fn caller(&self) -> Option<Caller> {
        match self {
            Origin::Caller(c) => Some(*c),
            Origin::Schedule(_) => None,
        }
    }

    pub fn is_schedule(&self, name: &str) -> bool {
        matches!(self, Origin::Schedule(n) if n == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Its items are being resolved (paths, playlist, speech, chime).
    Resolving,
    /// The worker encodes its prefill.
    Preparing,
    /// Prefilled, waiting for its fire instant.
    Prepared,
    /// Known to the arbiter (playing, paused or waiting for zones).
    Admitted,
}

pub struct ItemInfo {
    pub path: PathBuf,
    pub duration: Option<Duration>,
    /// Why decoding stopped early, if it did.
    pub error: Option<String>,
    pub sha256: Option<String>,
    /// Loudness gain applied to the item, dB.
    pub gain_db: Option<f64>,
}

pub struct CurrentItem {
    pub index: usize,
    pub row: RowKey,
    pub position: Duration,
    /// Silence pacer stalls put into it.
    pub skipped: Duration,
}

/// Where a zone stopped hearing a programme: the first frame it missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    pub item: usize,
    pub position: Duration,
}

pub struct Program {
    pub id: ProgramId,
    pub name: String,
    pub priority: Priority,
    pub origin: Origin,
    /// The zones it plays or waits for.
    pub zones: Vec<ZoneId>,
    pub items: Vec<PathBuf>,
    /// What history shows instead of an item's path (spoken text, live).
    pub labels: HashMap<PathBuf, String>,
    pub looped: bool,
    pub on_busy: OnBusy,
    pub on_preempt: OnPreempt,
    pub max_duration: Option<Duration>,
    /// When max_duration cuts it (set once it asks for its zones).
    pub deadline: Option<Instant>,
    /// Take the zones at this instant (a scheduled fire).
    pub start_at: Option<Instant>,
    pub phase: Phase,
    /// A worker runs for it.
    pub spawned: bool,
    /// The pacer has its frame queue (after `Ready`).
    pub in_pacer: bool,
    /// The request answered once it is on air.
    pub reply: Option<RequestId>,
    pub info: BTreeMap<usize, ItemInfo>,
    /// Items opened so far (0 at Ready means nothing could be played).
    pub opened: usize,
    pub skipped: Vec<String>,
    pub current: Option<CurrentItem>,
    pub first_packet: Option<Timestamp>,
    pub created: Timestamp,
    /// A `loa live` program's connection.
    pub live: Option<ConnId>,
    /// History's label for the speech item once synthesised.
    pub speech: Option<String>,
    /// A branch: where it begins, and the programme it was cut from
    /// (the first of the family).
    pub start: Option<StartPoint>,
    pub branch_of: Option<ProgramId>,
    /// Branches not yet on air, by where they begin: zones cut at the same
    /// frame join one of them instead of decoding twice.
    pub open_branches: Vec<(ProgramId, Cut)>,
    /// Zones cut while the programme played nowhere else: they resume with
    /// it (it pauses at the frame they missed), unless it resumes without
    /// them or at another frame.
    pub parked: Vec<(ZoneId, Cut)>,
}

impl Program {
    /// When this program needs the core's attention by itself.
    pub fn timer(&self) -> Option<Instant> {
        match self.phase {
            Phase::Prepared => self.start_at.map(|at| at.checked_sub(super::ADMIT_AHEAD).unwrap_or(at)),
            Phase::Admitted => self.deadline,
            _ => None,
        }
    }

    /// Cut zones resume where they were cut (a branch per zone while
    /// apart). Live input cannot be decoded twice, so a live program's cut
    /// zone rejoins it; `rejoin` asks for that; `drop` ends the program.
    pub fn branches_when_cut(&self) -> bool {
        self.on_preempt == OnPreempt::Pause && self.live.is_none()
    }

    pub fn family(&self) -> ProgramId {
        self.branch_of.unwrap_or(self.id)
    }
}

/// What a resolution job's answer is for.
pub enum JobFor {
    Program(ProgramId),
    PlaylistLoad { request: RequestId, caller: Caller, name: String },
    PlaylistListing { request: RequestId },
    ScheduleFile { request: RequestId, caller: Caller, schedule: Box<Schedule> },
}

/// An answer waiting for the store or a snapshot.
pub enum Pending {
    ScheduleAdded { name: String },
    ScheduleRemoved { name: String },
    ScheduleToggled { name: String, enabled: bool },
    PlaylistLoaded { name: String, items: usize, missing: Vec<String> },
    History,
    Status,
    Endpoints { zone: Option<String> },
}
