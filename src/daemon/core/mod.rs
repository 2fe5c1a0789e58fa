//! The daemon's decisions, without I/O: which program owns which zone
//! (through the arbiter), when a schedule fires and is prepared, when a
//! program starts, pauses, resumes, branches and ends, which history rows
//! to write, what to answer, what a reload adds and retires, and what the
//! network watch says. Time comes in with every input (`Now`: the
//! monotonic clock and the wall clock); randomness (the shuffle seed) is
//! taken from the wall clock given; ids are counted here.
//!
//! The shape is quinn-proto's and str0m's: [`Core::handle`] takes an
//! [`Input`], [`Core::handle_timeout`] is called at [`Core::poll_timeout`],
//! and [`Core::poll_effect`] hands out what to do, in order.
//!
//! Must not touch: sockets, threads and tasks, channels, files (no
//! `exists()`, no playlist reads, no chime writes), the clock, the store.
//! All of that is the shell's (`daemon::shell`), which performs the
//! [`Effect`]s and feeds results back as inputs.

mod branches;
mod io;
mod net;
mod programs;
mod reload;
mod requests;
mod schedules;
mod speakers;
mod stall;
mod state;
mod status;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use super::tasks::store::RowKey;
use crate::broadcast::arbiter::Arbiter;
use crate::config::Config;
use crate::net::netwatch::NetWatch;
use crate::proto::{ProgramId, RpcError, ZoneId};
use crate::schedule::Scheduler;
use crate::store::{PlaylistRecord, ScheduleRecord};

pub use io::*;
use state::{JobFor, Pending, Program, ScheduleDef, ZoneSlot};

/// A scheduled program is decoded this long before its fire time, so its
/// first packet leaves at the cron instant rather than a prefill later.
pub const PREPARE_LEAD: Duration = Duration::from_secs(2);

/// Encode lookahead per program (DESIGN: ~1 s).
const LOOKAHEAD: Duration = Duration::from_secs(1);

/// Frames queued before a program may take its zones: 100 ms of audio is
/// enough to ride out scheduling noise, and small enough that an emergency
/// is on air a few milliseconds after the command.
const PREFILL: Duration = Duration::from_millis(100);

/// How long before a timed start the arbiter is asked (the pacer command
/// must be queued before the tick it is for).
const ADMIT_AHEAD: Duration = Duration::from_millis(50);

/// How often the interface address is checked, and the longest the core
/// goes without looking at the wall clock (a jump is noticed within it).
const TICK: Duration = Duration::from_secs(1);

/// Runtime schedules and playlists as read from the store at start.
pub struct Restored {
    pub schedules: Vec<ScheduleRecord>,
    pub playlists: Vec<PlaylistRecord>,
    pub last_fires: HashMap<String, Timestamp>,
}

pub struct Core {
    config: Config,
    config_path: PathBuf,
    started: Instant,
    started_at: Timestamp,
    /// The time of the input being handled.
    now: Now,
    zones: Vec<ZoneSlot>,
    arbiter: Arbiter,
    scheduler: Scheduler,
    schedules: BTreeMap<String, ScheduleDef>,
    /// Stored runtime schedules that break the rules (with why): not
    /// installed, but `schedule.remove` can delete them.
    broken: BTreeMap<String, String>,
    runtime_playlists: BTreeMap<String, PlaylistRecord>,
    programs: BTreeMap<ProgramId, Program>,
    /// Fires prepared ahead of their instant: (schedule, instant) → program.
    prepared: HashMap<(String, Timestamp), ProgramId>,
    /// Fires within the lead that were not prepared (the schedule was
    /// still on, or it could not start): their instant is the next look.
    unprepared: HashSet<(String, Timestamp)>,
    /// Fires within the lead not prepared yet because the previous
    /// broadcast of their schedule is still on: tried again.
    deferred: HashSet<(String, Timestamp)>,
    /// When the schedules next need a look; None: work it out again.
    schedule_wake: Option<Instant>,
    jobs: HashMap<JobId, JobFor>,
    /// Requests whose answer waits for the store or a snapshot.
    pending: HashMap<RequestId, Pending>,
    next_program: ProgramId,
    next_row: RowKey,
    next_job: u64,
    /// Whether the sending interface works (see `crate::net::netwatch`).
    net: NetWatch,
    /// When the interface went down, on the wall clock, for `loa status`.
    net_down_at: Option<Timestamp>,
    next_net_check: Instant,
    /// Pacer stalls since start (`loa status`).
    stalls: stall::StallTotals,
    effects: VecDeque<Effect>,
}

impl Core {
    /// `socket_ok`: the pacer got a sender socket at start (false: the
    /// interface address was not on this machine yet).
    pub fn new(config: Config, config_path: PathBuf, restored: Restored, socket_ok: bool, now: Now) -> Core {
        let tz = jiff::tz::TimeZone::get(&config.daemon.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
        let zones: Vec<ZoneSlot> = config.zones.iter().map(|z| ZoneSlot { name: z.name.clone(), retired: false, stalls: Default::default() }).collect();
        let mut core = Core {
            arbiter: Arbiter::new(zones.len()),
            zones,
            scheduler: Scheduler::new(tz),
            schedules: BTreeMap::new(),
            broken: BTreeMap::new(),
            runtime_playlists: restored.playlists.into_iter().map(|p| (p.name.clone(), p)).collect(),
            programs: BTreeMap::new(),
            prepared: HashMap::new(),
            unprepared: HashSet::new(),
            deferred: HashSet::new(),
            schedule_wake: None,
            jobs: HashMap::new(),
            pending: HashMap::new(),
            next_program: ProgramId::FIRST,
            next_row: RowKey::FIRST,
            next_job: 1,
            net: NetWatch::new(config.network.interface, socket_ok, now.mono),
            net_down_at: None,
            next_net_check: now.mono + TICK,
            stalls: Default::default(),
            effects: VecDeque::new(),
            config_path,
            started: now.mono,
            started_at: now.wall,
            now,
            config,
        };
        core.net_actions();
        for schedule in core.config.schedules.clone() {
            let last = restored.last_fires.get(&schedule.name).copied();
            core.install_schedule(ScheduleDef { spec: schedule, runtime: false }, last);
        }
        for record in restored.schedules {
            let last = restored.last_fires.get(&record.name).copied();
            core.restore_schedule(record, last);
        }
        core.refresh_schedule_wake();
        core
    }

    /// Handles one input at `now`.
    pub fn handle(&mut self, input: Input, now: Now) {
        self.now = now;
        match input {
            Input::Request { id, caller, request } => self.request(id, caller, request),
            Input::LiveStart { id, caller, params, conn } => self.live_start(id, caller, params, conn),
            Input::ConfigLoaded { request, caller, result } => self.config_loaded(request, caller, result),
            Input::Resolved { job, result } => self.resolved(job, result),
            Input::Worker { program, event } => self.worker_event(program, event),
            Input::SpawnFailed { program, error } => self.spawn_failed(program, error),
            Input::Pacer(event) => self.pacer_event(event),
            Input::SendFailing { errno, target, address } => self.send_failing(errno, target, address),
            Input::AddressProbed(result) => self.address_probed(result),
            Input::SocketBuilt(result) => self.socket_built(result),
            Input::Hashed { program, item, sha256 } => self.hashed(program, item, sha256),
            Input::Stored { request, result } => self.stored(request, result),
            Input::Snapshot { request, snapshot } => self.snapshot(request, snapshot),
            Input::Shutdown => self.shutdown(),
        }
        self.refresh_schedule_wake();
    }

    /// The next effect to carry out, in the order decided.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// When [`Core::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let programs = self.programs.values().filter_map(|p| p.timer());
        programs.chain(self.schedule_wake).chain([self.next_net_check]).min()
    }

    /// Does what is due by `now`: timed admissions, max_duration cuts, the
    /// address check, schedule fires and preparations.
    pub fn handle_timeout(&mut self, now: Now) {
        self.now = now;
        self.programs_due();
        if self.next_net_check <= now.mono {
            self.next_net_check = now.mono + TICK;
            self.emit(Effect::ProbeAddress);
        }
        if self.schedule_wake.is_none_or(|wake| wake <= now.mono) {
            self.on_schedule_timer();
            self.schedule_wake = None;
        }
        self.refresh_schedule_wake();
    }

    fn emit(&mut self, effect: Effect) {
        self.effects.push_back(effect);
    }

    fn reply(&mut self, request: RequestId, result: Result<crate::proto::Response, RpcError>) {
        self.emit(Effect::Reply { request, result });
    }

    fn next_program_id(&mut self) -> ProgramId {
        let id = self.next_program;
        self.next_program = id.next();
        id
    }

    fn next_row_key(&mut self) -> RowKey {
        let key = self.next_row;
        self.next_row = key.next();
        key
    }

    /// Starts a resolution job whose answer is for `what`.
    fn job(&mut self, what: JobFor, job: Job) {
        let id = JobId(self.next_job);
        self.next_job += 1;
        self.jobs.insert(id, what);
        self.emit(Effect::Resolve { job: id, what: job });
    }

    fn resolved(&mut self, job: JobId, result: Result<Resolved, String>) {
        let Some(what) = self.jobs.remove(&job) else {
            return;
        };
        match what {
            JobFor::Program(id) => self.program_resolved(id, result),
            JobFor::PlaylistLoad { request, caller, name } => self.playlist_loaded(request, caller, name, result),
            JobFor::PlaylistListing { request } => self.playlists_listed(request, result),
            JobFor::ScheduleFile { request, caller, schedule } => self.schedule_file_resolved(request, caller, *schedule, result),
        }
    }

    // ------------------------------------------------------------- zones

    /// Zone ids for a selection; "all" means every zone now configured.
    fn select_zones(&self, selection: &crate::proto::ZoneSelection) -> Result<Vec<ZoneId>, RpcError> {
        match selection {
            crate::proto::ZoneSelection::All => Ok(self.live_zones()),
            crate::proto::ZoneSelection::Named(names) => {
                if names.is_empty() {
                    return Err(RpcError::invalid_params("no zones given; name zones or use \"all\""));
                }
                names.iter().map(|name| self.zone_named(name)).collect()
            }
        }
    }

    fn config_zones(&self, selection: &crate::config::ZoneSelection) -> Result<Vec<ZoneId>, RpcError> {
        self.select_zones(&match selection {
            crate::config::ZoneSelection::All => crate::proto::ZoneSelection::All,
            crate::config::ZoneSelection::Named(n) => crate::proto::ZoneSelection::Named(n.clone()),
        })
    }

    fn zone_named(&self, name: &str) -> Result<ZoneId, RpcError> {
        self.zone_id(name).ok_or_else(|| {
            RpcError::refused(format!("unknown zone \"{name}\"; zones: {}", self.live_zone_names().join(", ")))
        })
    }

    fn zone_id(&self, name: &str) -> Option<ZoneId> {
        self.zones.iter().position(|z| z.name == name && !z.retired).map(ZoneId::from_index)
    }

    fn live_zones(&self) -> Vec<ZoneId> {
        (0..self.zones.len()).filter(|&z| !self.zones[z].retired).map(ZoneId::from_index).collect()
    }

    fn live_zone_names(&self) -> Vec<String> {
        self.zones.iter().filter(|z| !z.retired).map(|z| z.name.clone()).collect()
    }

    fn zone_name(&self, zone: ZoneId) -> &str {
        self.zones.get(zone.index()).map_or("?", |z| z.name.as_str())
    }

    fn names(&self, zones: &[ZoneId]) -> Vec<String> {
        zones.iter().map(|&z| self.zone_name(z).to_string()).collect()
    }

    fn zone_list(&self, zones: &[ZoneId]) -> String {
        self.names(zones).join(", ")
    }

    fn time_zone(&self) -> &jiff::tz::TimeZone {
        self.scheduler.time_zone()
    }
}
