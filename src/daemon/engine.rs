//! The engine: the one task that owns the daemon's state — programs, the
//! arbiter, the scheduler, the zone list — and turns decisions into pacer
//! commands and history rows. Everything reaches it as an `Input` on one
//! channel, so state changes happen in one order and need no locks.
//!
//! It never blocks: decoding runs on program workers, sending on the pacer
//! thread, SQLite on the store thread, hashing and probing on blocking
//! tasks whose results come back as inputs.
//!
//! Must not touch: sockets (except through the pacer), the database
//! (except through the store thread).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use super::tasks::health::{HealthHandle, HealthInput};
use super::tasks::sap::SapHandle;
use super::tasks::store::{RowKey, RowStart, StoreHandle};
use crate::broadcast::arbiter::{Arbiter, Change, OnBusy, OnPreempt, Request as ArbiterRequest};
use crate::broadcast::playlist;
use crate::broadcast::roots::MediaRoots;
use crate::proto::Priority;
use crate::config::{Chime, Config, PlaylistSource, Schedule, ScheduleTarget, ZoneSelection};
use crate::proto::rpc::RpcError;
use crate::daemon::server::Caller;
use crate::net::netwatch::{NetAction, NetWatch};
use crate::pacer::{self, PacerEvent};
use crate::program::{self, Frame, ProgramControl, ProgramEvent, ProgramSpec};
use crate::schedule::{DueKind, ScheduleEntry, Scheduler};
use crate::store::{Outcome, PlaylistRecord, ScheduleRecord};
use crate::proto::text::{clock_text, humanize};

pub type ProgramId = u64;

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

pub type Reply = oneshot::Sender<Result<Value, RpcError>>;

/// Everything the engine reacts to.
pub enum Input {
    Call {
        caller: Caller,
        method: String,
        params: Value,
        reply: Reply,
    },
    Program(ProgramId, ProgramEvent),
    Pacer(PacerEvent),
    /// A content hash is ready.
    Hashed {
        program: ProgramId,
        item: usize,
        sha256: String,
    },
    /// A prepared scheduled program's fire time has come.
    StartAt(ProgramId),
    /// A program's `max_duration` is over.
    MaxDuration(ProgramId),
    /// A `loa live` client asked to go on air; its connection carries the
    /// PCM from here on.
    Live {
        caller: Caller,
        params: Value,
        input: std::os::unix::net::UnixStream,
        leftover: Vec<u8>,
        reply: Reply,
    },
    /// espeak-ng finished (or failed) for a `say` program.
    Spoken {
        program: ProgramId,
        result: Result<PathBuf, crate::media::tts::TtsError>,
    },
}

/// Calls `start` with a reply channel of its own and passes what that
/// channel gets (the answer once on air) on to `reply`, as well as a
/// refusal `start` returns at once. The extra channel is there because a
/// refused start has already dropped the reply it was given.
pub fn answer_when_on_air(reply: Option<Reply>, start: impl FnOnce(Reply) -> Result<ProgramId, RpcError>) {
    let (tx, rx) = oneshot::channel();
    if let Err(e) = start(tx) {
        if let Some(reply) = reply {
            let _ = reply.send(Err(e));
        }
        return;
    }
    tokio::spawn(async move {
        let result = rx.await.unwrap_or_else(|_| Err(RpcError::internal("the program ended before it started")));
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    });
}

/// Where a program came from, for history and status.
#[derive(Debug, Clone)]
pub enum Origin {
    Schedule(String),
    Caller(Caller),
}

impl Origin {
    fn text(&self) -> String {
        match self {
            Origin::Schedule(name) => format!("schedule:{name}"),
            Origin::Caller(c) => format!("uid:{}", c.uid),
        }
    }
    fn caller(&self) -> Option<Caller> {
        match self {
            Origin::Caller(c) => Some(*c),
            Origin::Schedule(_) => None,
        }
    }
}

/// What to start: everything is resolved (paths, zones) before this.
pub struct StartSpec {
    pub name: String,
    pub items: Vec<PathBuf>,
    pub zones: Vec<usize>,
    pub priority: Priority,
    pub origin: Origin,
    pub looped: bool,
    pub on_busy: OnBusy,
    pub on_preempt: OnPreempt,
    pub max_duration: Option<Duration>,
    /// Take the zones at this instant (scheduled fire) rather than when ready.
    pub start_at: Option<Instant>,
    /// What history shows instead of an item's path (spoken text).
    pub labels: HashMap<PathBuf, String>,
    /// The PCM stream of a `loa live` program (its item is
    /// [`crate::live::LIVE_ITEM`]).
    pub live: Option<crate::live::LiveInput>,
}

/// A `say` program waiting for espeak-ng: started when its WAV is ready.
struct PendingSay {
    spec: StartSpec,
    label: String,
    reply: Option<Reply>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Encoding its prefill.
    Preparing,
    /// Prefilled, waiting for its fire time.
    Prepared,
    /// Known to the arbiter (playing, paused or waiting for zones).
    Admitted,
}

struct ItemInfo {
    path: PathBuf,
    duration: Option<Duration>,
    /// Why decoding stopped early, if it did.
    error: Option<String>,
    sha256: Option<String>,
    /// Loudness gain applied to the item, dB.
    gain_db: Option<f64>,
}

struct CurrentItem {
    index: usize,
    row: RowKey,
    position: Duration,
}

struct Program {
    id: ProgramId,
    name: String,
    priority: Priority,
    origin: Origin,
    zones: Vec<usize>,
    items: Vec<PathBuf>,
    labels: HashMap<PathBuf, String>,
    looped: bool,
    on_busy: OnBusy,
    on_preempt: OnPreempt,
    max_duration: Option<Duration>,
    start_at: Option<Instant>,
    phase: Phase,
    frames: Option<std_mpsc::Receiver<Frame>>,
    control: Option<ProgramControl>,
    reply: Option<Reply>,
    info: HashMap<usize, ItemInfo>,
    /// Items opened so far (0 at Ready means nothing could be played).
    opened: usize,
    skipped: Vec<String>,
    current: Option<CurrentItem>,
    first_packet: Option<Timestamp>,
    created: Timestamp,
    /// A `loa live` client's connection, told `live.ended` at the end.
    live_client: Option<std::os::unix::net::UnixStream>,
}

/// One playlist as `playlist.list` shows it; items resolved as they would
/// play, `error` when its m3u/folder cannot be read.
pub struct PlaylistListing {
    pub name: String,
    /// "config" or "runtime".
    pub origin: &'static str,
    pub source: String,
    pub items: Vec<PathBuf>,
    pub shuffle: bool,
    pub looped: bool,
    pub error: Option<String>,
}

/// A schedule from the config file or added at runtime.
#[derive(Debug, Clone)]
pub struct ScheduleDef {
    pub spec: Schedule,
    pub runtime: bool,
}

pub struct Engine {
    /// Loudness measurements by content hash, shared with program workers.
    loudness: crate::media::loudness::Cache,
    pub config: Config,
    pub config_path: PathBuf,
    pub started: Instant,
    pub started_at: Timestamp,
    zones: Vec<ZoneSlot>,
    arbiter: Arbiter,
    scheduler: Scheduler,
    schedules: BTreeMap<String, ScheduleDef>,
    runtime_playlists: BTreeMap<String, PlaylistRecord>,
    programs: BTreeMap<ProgramId, Program>,
    /// `say` programs whose speech is being synthesised.
    pending_say: HashMap<ProgramId, PendingSay>,
    /// Fires prepared ahead of their instant: (schedule, instant) → program.
    prepared: HashMap<(String, Timestamp), ProgramId>,
    /// `next_wakeup`'s last answer. Working it out evaluates cron
    /// expressions, and the engine asks after every input it handles
    /// (hundreds a second with many programs); it only changes when the
    /// schedules, the prepared fires or the clock do, so it is kept until
    /// one of them changes (`schedules_changed`) or it is reached.
    wake_cache: std::cell::Cell<Option<Instant>>,
    next_program: ProgramId,
    next_row: RowKey,
    pacer: std_mpsc::Sender<pacer::Command>,
    pub store: StoreHandle,
    roots: MediaRoots,
    inputs: mpsc::UnboundedSender<Input>,
    pub health: HealthHandle,
    /// Sends the zones' SAP announcements (`sap_task`).
    sap: SapHandle,
    /// Each zone's RTP SSRC (the health monitor matches reports by it).
    zone_ssrcs: HashMap<String, u32>,
    /// Config schedules disabled or enabled at runtime (until reload).
    pub runtime_toggles: HashMap<String, bool>,
    /// Whether the sending interface works (see `crate::net::netwatch`).
    net: NetWatch,
    /// The [network] the sender socket was built for ([network] changes
    /// wait for a restart, so a rebuilt socket uses this, not a reload's).
    network: crate::config::Network,
    /// When the interface went down, on the wall clock, for `loa status`.
    net_down_at: Option<Timestamp>,
}

pub struct ZoneSlot {
    pub name: String,
    pub retired: bool,
}

/// The channels the engine talks through.
pub struct Wiring {
    pub pacer: std_mpsc::Sender<pacer::Command>,
    pub store: StoreHandle,
    pub inputs: mpsc::UnboundedSender<Input>,
    pub health: HealthHandle,
    pub sap: SapHandle,
    /// Each zone's RTP SSRC.
    pub zone_ssrcs: HashMap<String, u32>,
    /// The pacer got a socket at start (false: the interface address was
    /// not on this machine yet).
    pub socket_ok: bool,
}

/// Runtime schedules and playlists as read from the store at start.
pub struct Restored {
    pub schedules: Vec<ScheduleRecord>,
    pub playlists: Vec<PlaylistRecord>,
    pub last_fires: HashMap<String, Timestamp>,
    pub loudness: crate::media::loudness::Cache,
}

impl Engine {
    pub fn new(config: Config, config_path: PathBuf, wiring: Wiring, restored: Restored) -> Engine {
        let Wiring {
            pacer,
            store,
            inputs,
            health,
            sap,
            zone_ssrcs,
            socket_ok,
        } = wiring;
        let tz = jiff::tz::TimeZone::get(&config.daemon.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
        let zones = config
            .zones
            .iter()
            .map(|z| ZoneSlot {
                name: z.name.clone(),
                retired: false,
            })
            .collect::<Vec<_>>();
        let network = config.network.clone();
        let mut engine = Engine {
            loudness: restored.loudness,
            roots: MediaRoots::new(&config.daemon.media_roots),
            arbiter: Arbiter::new(zones.len()),
            zones,
            scheduler: Scheduler::new(tz),
            wake_cache: std::cell::Cell::new(None),
            schedules: BTreeMap::new(),
            runtime_playlists: restored
                .playlists
                .into_iter()
                .map(|p| (p.name.clone(), p))
                .collect(),
            programs: BTreeMap::new(),
            pending_say: HashMap::new(),
            prepared: HashMap::new(),
            next_program: 1,
            next_row: 1,
            pacer,
            store,
            inputs,
            health,
            sap,
            zone_ssrcs,
            config,
            config_path,
            started: Instant::now(),
            started_at: Timestamp::now(),
            runtime_toggles: HashMap::new(),
            net: NetWatch::new(network.interface, socket_ok, Instant::now()),
            network,
            net_down_at: (!socket_ok).then(Timestamp::now),
        };
        engine.net_actions();
        let now = Timestamp::now();
        for schedule in engine.config.schedules.clone() {
            let last = restored.last_fires.get(&schedule.name).copied();
            engine.install_schedule(ScheduleDef { spec: schedule, runtime: false }, last, now);
        }
        for record in restored.schedules {
            match engine.schedule_from_record(&record) {
                Ok(spec) => {
                    let last = restored.last_fires.get(&spec.name).copied();
                    engine.install_schedule(ScheduleDef { spec, runtime: true }, last, now);
                }
                Err(e) => tracing::error!(schedule = record.name, "saved schedule cannot be used: {e}"),
            }
        }
        engine
    }

    pub fn time_zone(&self) -> &jiff::tz::TimeZone {
        self.scheduler.time_zone()
    }

    fn install_schedule(&mut self, def: ScheduleDef, last_fire: Option<Timestamp>, now: Timestamp) {
        self.cancel_prepared(&def.spec.name);
        let entry = ScheduleEntry {
            name: def.spec.name.clone(),
            cron: def.spec.cron.clone(),
            enabled: def.spec.enabled,
            misfire_grace: def.spec.misfire_grace,
        };
        self.scheduler.upsert(entry, last_fire, now);
        self.schedules_changed();
        self.schedules.insert(def.spec.name.clone(), def);
    }

    // ---------------------------------------------------------------- time

    /// When the engine next needs to look at the clock: a fire to prepare
    /// (`PREPARE_LEAD` ahead), a prepared fire to confirm, capped at one
    /// second so a wall-clock jump is noticed quickly.
    pub fn next_wakeup(&self) -> Instant {
        let now = Instant::now();
        if let Some(wake) = self.wake_cache.get() {
            if wake > now {
                return wake;
            }
        }
        let wall = Timestamp::now();
        let mut wake = now + Duration::from_secs(1);
        for (name, at) in self.scheduler.upcoming(wall, 4) {
            let until = Duration::try_from(at.duration_since(wall)).unwrap_or(Duration::ZERO);
            let until = if self.prepared.contains_key(&(name, at)) {
                until
            } else {
                until.saturating_sub(PREPARE_LEAD)
            };
            wake = wake.min(now + until);
        }
        self.wake_cache.set(Some(wake));
        wake
    }

    /// Forgets the cached wake-up: schedules or prepared fires changed.
    fn schedules_changed(&self) {
        self.wake_cache.set(None);
    }

    /// Prepares fires due within `PREPARE_LEAD`, then handles what the
    /// scheduler says is due now (fires, misfires).
    pub fn on_timer(&mut self) {
        self.schedules_changed();
        let now = Timestamp::now();
        let lead = jiff::SignedDuration::try_from(PREPARE_LEAD).unwrap_or_default();
        for (name, at) in self.scheduler.upcoming(now, 8) {
            if at <= now || at > now + lead || self.prepared.contains_key(&(name.clone(), at)) {
                continue;
            }
            let Some(def) = self.schedules.get(&name).cloned() else {
                continue;
            };
            if self.schedule_busy(&name).is_some() {
                continue; // reported as missed when the fire comes
            }
            let until = Duration::try_from(at.duration_since(Timestamp::now())).unwrap_or_default();
            match self.fire_schedule(&def.spec, Some(Instant::now() + until)) {
                Ok(id) => {
                    self.prepared.insert((name, at), id);
                }
                Err(e) => tracing::error!(schedule = name, "cannot start: {}", e.message),
            }
        }
        while let Some(due) = self.scheduler.poll(now) {
            self.handle_due(due, now);
        }
    }

    /// The program of this schedule still on (or preparing), if any.
    fn schedule_busy(&self, name: &str) -> Option<ProgramId> {
        let of = |origin: &Origin| matches!(origin, Origin::Schedule(n) if n == name);
        self.programs
            .values()
            .find(|p| of(&p.origin))
            .map(|p| p.id)
            .or_else(|| self.pending_say.iter().find(|(_, p)| of(&p.spec.origin)).map(|(&id, _)| id))
    }

    fn missed_row(&self, def: &ScheduleDef, at: Timestamp, message: String) {
        tracing::warn!(schedule = def.spec.name, "{message}");
        let row = RowStart {
            program: 0,
            program_name: def.spec.name.clone(),
            source: target_text(&def.spec.target, &self.config.tts.voice),
            sha256: None,
            zones: self.selection_names(&def.spec.zones),
            priority: def.spec.priority,
            origin: Origin::Schedule(def.spec.name.clone()).text(),
            caller_uid: None,
            caller_pid: None,
            start: at,
        };
        self.store.record_row(row, Outcome::Missed, Some(message));
    }

    fn handle_due(&mut self, due: crate::schedule::Due, now: Timestamp) {
        let Some(def) = self.schedules.get(&due.name).cloned() else {
            return;
        };
        let fire_local = due.scheduled.to_zoned_datetime(self.time_zone().clone());
        match due.kind {
            DueKind::Missed { count } => {
                let message = format!(
                    "missed {count} fire(s), the last at {}: the daemon was not running or the \
                     clock jumped, and {} is past misfire_grace ({})",
                    fire_local.strftime("%Y-%m-%d %H:%M:%S %Z"),
                    humanize(Duration::try_from(now.duration_since(due.scheduled)).unwrap_or_default()),
                    humanize(def.spec.misfire_grace),
                );
                self.missed_row(&def, due.scheduled, message);
            }
            DueKind::Fire { late } => {
                if self.prepared.remove(&(due.name.clone(), due.scheduled)).is_some() {
                    // Prepared ahead; it takes its zones on the tick of the instant.
                } else if let Some(busy) = self.schedule_busy(&due.name) {
                    let message = format!(
                        "fire at {} skipped: the previous broadcast of this schedule (#{busy}) is still on",
                        fire_local.strftime("%H:%M:%S")
                    );
                    self.missed_row(&def, due.scheduled, message);
                } else {
                    if late > Duration::from_secs(1) {
                        tracing::warn!(
                            schedule = due.name,
                            "firing {} late (the daemon was not running at {})",
                            humanize(late),
                            fire_local.strftime("%H:%M:%S")
                        );
                    }
                    if let Err(e) = self.fire_schedule(&def.spec, None) {
                        tracing::error!(schedule = due.name, "cannot start: {}", e.message);
                    }
                }
            }
        }
        let name = due.name.clone();
        let at = due.scheduled;
        self.store.write("remember a fire", move |s| s.set_last_fire(&name, at));
    }

    fn fire_schedule(&mut self, spec: &Schedule, start_at: Option<Instant>) -> Result<ProgramId, RpcError> {
        let zones = self.select_zones(&spec.zones)?;
        let start = |items, looped| StartSpec {
            name: spec.name.clone(),
            items,
            zones: zones.clone(),
            priority: spec.priority,
            origin: Origin::Schedule(spec.name.clone()),
            looped,
            on_busy: spec.on_busy,
            on_preempt: spec.on_preempt,
            max_duration: spec.max_duration,
            start_at,
            labels: HashMap::new(),
            live: None,
        };
        if let ScheduleTarget::Say { text, voice } = &spec.target {
            tracing::info!(schedule = spec.name, "fires: speech on {}", self.zone_list(&zones));
            let spec = start(Vec::new(), false);
            return self.say(spec, text, voice.as_deref(), None);
        }
        let (items, looped) = self.target_items(&spec.target, spec.priority, &Origin::Schedule(spec.name.clone()), &zones, false)?;
        tracing::info!(schedule = spec.name, "fires: {} item(s) on {}", items.len(), self.zone_list(&zones));
        self.start(start(items, looped), None)
    }

    // ----------------------------------------------------------- resolving

    /// Zone indices for a selection; "all" means every zone now configured.
    pub fn select_zones(&self, selection: &ZoneSelection) -> Result<Vec<usize>, RpcError> {
        match selection {
            ZoneSelection::All => Ok((0..self.zones.len()).filter(|&z| !self.zones[z].retired).collect()),
            ZoneSelection::Named(names) => {
                if names.is_empty() {
                    return Err(RpcError::invalid_params("no zones given; name zones or use \"all\""));
                }
                names
                    .iter()
                    .map(|name| {
                        self.zone_index(name).ok_or_else(|| {
                            RpcError::refused(format!(
                                "unknown zone \"{name}\"; zones: {}",
                                self.live_zone_names().join(", ")
                            ))
                        })
                    })
                    .collect()
            }
        }
    }

    fn zone_index(&self, name: &str) -> Option<usize> {
        self.zones.iter().position(|z| z.name == name && !z.retired)
    }

    pub fn live_zone_names(&self) -> Vec<String> {
        self.zones.iter().filter(|z| !z.retired).map(|z| z.name.clone()).collect()
    }

    fn selection_names(&self, selection: &ZoneSelection) -> Vec<String> {
        match selection {
            ZoneSelection::All => self.live_zone_names(),
            ZoneSelection::Named(names) => names.clone(),
        }
    }

    fn zone_list(&self, zones: &[usize]) -> String {
        zones.iter().map(|&z| self.zones[z].name.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// The chime file to play before a program of `priority`, if any. loa's
    /// own chime is written to state_dir when first needed (and again if
    /// removed); if that fails the item fails at play time like a missing
    /// file, with the reason in history, and the program goes on.
    fn chime_for(&self, priority: Priority) -> Option<PathBuf> {
        match self.config.chime.for_priority(priority) {
            Chime::Off => None,
            Chime::File(path) => Some(self.config_media_path(path)),
            Chime::BuiltIn => {
                let dir = &self.config.daemon.state_dir;
                let path = dir.join("chime.wav");
                if !path.exists() {
                    if let Err(e) = crate::media::chime::write_builtin(dir) {
                        tracing::error!("cannot write loa's chime to {}: {e}", path.display());
                    }
                }
                Some(path)
            }
        }
    }

    /// A media path from the config file: trusted, so absolute paths are
    /// taken as they are; relative ones are looked up in the media roots.
    fn config_media_path(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            return path.to_path_buf();
        }
        self.config
            .daemon
            .media_roots
            .iter()
            .map(|root| root.join(path))
            .find(|p| p.exists())
            .or_else(|| self.config.daemon.media_roots.first().map(|r| r.join(path)))
            .unwrap_or_else(|| path.to_path_buf())
    }

    /// A media path from the control socket: must resolve inside the media
    /// roots (no `..`, no symlink escape).
    pub fn socket_path(&self, path: &str) -> Result<PathBuf, RpcError> {
        self.roots.resolve(Path::new(path)).map_err(|e| RpcError::refused(e.to_string()))
    }

    /// The items of a schedule target or named playlist, and whether it loops.
    /// `strict`: paths came from the socket.
    pub fn target_items(
        &self,
        target: &ScheduleTarget,
        priority: Priority,
        origin: &Origin,
        zones: &[usize],
        strict: bool,
    ) -> Result<(Vec<PathBuf>, bool), RpcError> {
        match target {
            ScheduleTarget::File(path) => {
                let path = if strict {
                    self.socket_path(&path.to_string_lossy())?
                } else {
                    self.config_media_path(path)
                };
                Ok((vec![path], false))
            }
            ScheduleTarget::Playlist(name) => self.playlist_items(name, priority, origin, zones),
            ScheduleTarget::Say { .. } => Err(RpcError::invalid_params("speech is started with `say`, not as items")),
        }
    }

    fn playlist_items(
        &self,
        name: &str,
        priority: Priority,
        origin: &Origin,
        zones: &[usize],
    ) -> Result<(Vec<PathBuf>, bool), RpcError> {
        if let Some(p) = self.config.playlist(name) {
            let mut items = match &p.source {
                PlaylistSource::Items(items) => items.iter().map(|i| self.config_media_path(i)).collect(),
                PlaylistSource::File(file) => {
                    let file = self.config_media_path(file);
                    let entries = playlist::load(&file).map_err(|e| RpcError::refused(e.to_string()))?;
                    entries.into_iter().map(|e| e.path).collect::<Vec<_>>()
                }
                PlaylistSource::Dir(dir) => {
                    let dir = self.config_media_path(dir);
                    let entries = playlist::scan_dir(&dir).map_err(|e| RpcError::refused(e.to_string()))?;
                    entries.into_iter().map(|e| e.path).collect()
                }
            };
            if p.shuffle {
                let seed = Timestamp::now().as_nanosecond() as u64;
                playlist::shuffle(&mut items, seed);
            }
            return Ok((items, p.looped));
        }
        if let Some(p) = self.runtime_playlists.get(name) {
            // Loaded through the socket: every item must still be inside
            // the media roots (a symlink may have changed since).
            let mut items = Vec::new();
            for item in &p.items {
                match self.roots.resolve(item) {
                    Ok(path) => items.push(path),
                    Err(e) => self.store.record_row(
                        self.row_start(0, name, &item.to_string_lossy(), zones, priority, origin),
                        Outcome::Failed,
                        Some(e.to_string()),
                    ),
                }
            }
            return Ok((items, false));
        }
        Err(RpcError::refused(format!(
            "unknown playlist \"{name}\"; playlists: {}",
            self.playlist_names().join(", ")
        )))
    }

    pub fn playlist_names(&self) -> Vec<String> {
        self.config
            .playlists
            .iter()
            .map(|p| p.name.clone())
            .chain(self.runtime_playlists.keys().cloned())
            .collect()
    }

    fn row_start(
        &self,
        program: ProgramId,
        name: &str,
        source: &str,
        zones: &[usize],
        priority: Priority,
        origin: &Origin,
    ) -> RowStart {
        let caller = origin.caller();
        RowStart {
            program,
            program_name: name.to_string(),
            source: source.to_string(),
            sha256: None,
            zones: zones.iter().map(|&z| self.zones[z].name.clone()).collect(),
            priority,
            origin: origin.text(),
            caller_uid: caller.map(|c| c.uid),
            caller_pid: caller.and_then(|c| c.pid),
            start: Timestamp::now(),
        }
    }

    // ------------------------------------------------------------ programs

    /// Spawns the program's encoder. It takes its zones once prefilled (or
    /// at `start_at`); `reply` is answered then.
    pub fn start(&mut self, spec: StartSpec, reply: Option<Reply>) -> Result<ProgramId, RpcError> {
        if spec.items.is_empty() {
            return Err(RpcError::refused("nothing to play: no playable items"));
        }
        let id = self.next_program;
        self.next_program += 1;
        self.start_as(id, spec, reply)
    }

    /// Speaks `text` on the spec's zones: espeak-ng writes the WAV off the
    /// engine task (or the cache has it), then the program starts with it
    /// as its item (`Input::Spoken`). `reply` is answered once on air, or
    /// with the reason speech could not be made. Text and voice are checked
    /// here, so a bad one is refused before anything runs.
    pub fn say(&mut self, spec: StartSpec, text: &str, voice: Option<&str>, reply: Option<Reply>) -> Result<ProgramId, RpcError> {
        let voice = voice.unwrap_or(&self.config.tts.voice).to_string();
        crate::media::tts::check_text(text).map_err(|e| RpcError::invalid_params(e.to_string()))?;
        if !crate::media::tts::voice_ok(&voice) {
            return Err(RpcError::invalid_params(crate::proto::say::SayError::BadVoice(voice).to_string()));
        }
        let id = self.next_program;
        self.next_program += 1;
        let label = crate::media::tts::label(&voice, text);
        tracing::info!(program = id, name = spec.name, "synthesising {label}");
        let tts = self.config.tts.clone();
        let dir = self.config.daemon.state_dir.join("tts");
        let text = text.to_string();
        let inputs = self.inputs.clone();
        tokio::task::spawn_blocking(move || {
            let result = crate::media::tts::synthesize(&tts, &voice, &text, &dir);
            let _ = inputs.send(Input::Spoken { program: id, result });
        });
        self.pending_say.insert(id, PendingSay { spec, label, reply });
        Ok(id)
    }

    /// espeak-ng is done for `say` program `id`: start it, or record why not.
    pub fn handle_spoken(&mut self, id: ProgramId, result: Result<PathBuf, crate::media::tts::TtsError>) {
        let Some(PendingSay { mut spec, label, reply }) = self.pending_say.remove(&id) else {
            return; // cancelled (schedule removed or disabled) meanwhile
        };
        let path = match result {
            Ok(path) => path,
            Err(e) => {
                let message = format!("cannot synthesise speech: {e}");
                tracing::error!(program = id, name = spec.name, "{message}");
                let row = self.row_start(id, &spec.name, &label, &spec.zones, spec.priority, &spec.origin);
                self.store.record_row(row, Outcome::Failed, Some(message.clone()));
                if let Some(reply) = reply {
                    let _ = reply.send(Err(RpcError::refused(message)));
                }
                return;
            }
        };
        spec.labels.insert(path.clone(), label);
        spec.items = vec![path];
        // The fire time may have passed while espeak-ng ran: start now.
        spec.start_at = spec.start_at.filter(|&at| at > Instant::now());
        answer_when_on_air(reply, |tx| self.start_as(id, spec, Some(tx)));
    }

    fn start_as(&mut self, id: ProgramId, mut spec: StartSpec, reply: Option<Reply>) -> Result<ProgramId, RpcError> {
        // The pre-announcement chime is the program's first item: it is
        // preempted, resumed and recorded like any other (with --loop it
        // precedes every pass).
        if let Some(chime) = self.chime_for(spec.priority) {
            spec.items.insert(0, chime);
        }
        let frame = self.config.audio.frame.duration();
        let mut queue_frames = (LOOKAHEAD.as_millis() / frame.as_millis()).max(2) as usize;
        let mut prefill_frames = (PREFILL.as_millis() / frame.as_millis()).max(1) as usize;
        let live = spec.live.take();
        let live_client = match &live {
            Some(input) => {
                // Every queued frame of live input is delay on the street:
                // one frame in the queue, one in the pacer's hand.
                queue_frames = 1;
                prefill_frames = 1;
                Some(input.stream.try_clone().map_err(|e| RpcError::internal(format!("live connection: {e}")))?)
            }
            None => None,
        };
        let handle = program::spawn(ProgramSpec {
            items: spec.items.clone(),
            audio: self.config.audio.clone(),
            queue_frames,
            prefill_frames,
            looped: spec.looped,
            loudness: Some(self.loudness.clone()),
            first_play_limit: if spec.priority >= Priority::Live {
                crate::media::loudness::URGENT_FIRST_PLAY_LIMIT
            } else {
                crate::media::loudness::FIRST_PLAY_LIMIT
            },
            live,
            start: None,
        })
        .map_err(|e| RpcError::internal(e.to_string()))?;
        let (frames, events, control) = handle.into_parts();
        let inputs = self.inputs.clone();
        // The worker's events arrive on a std channel; a blocking task
        // forwards them until the worker ends.
        tokio::task::spawn_blocking(move || {
            for event in events {
                if inputs.send(Input::Program(id, event)).is_err() {
                    break;
                }
            }
        });
        self.programs.insert(
            id,
            Program {
                id,
                name: spec.name,
                priority: spec.priority,
                origin: spec.origin,
                zones: spec.zones,
                items: spec.items,
                labels: spec.labels,
                looped: spec.looped,
                on_busy: spec.on_busy,
                on_preempt: spec.on_preempt,
                max_duration: spec.max_duration,
                start_at: spec.start_at,
                phase: Phase::Preparing,
                frames: Some(frames),
                control: Some(control),
                reply,
                info: HashMap::new(),
                opened: 0,
                skipped: Vec::new(),
                current: None,
                first_packet: None,
                created: Timestamp::now(),
                live_client,
            },
        );
        Ok(id)
    }

    pub fn handle_program_event(&mut self, id: ProgramId, event: ProgramEvent) {
        // A whole-file measurement may arrive after its program ended.
        // A failed write waits and is reported like any other store write.
        if let ProgramEvent::Measured { sha256, measured, .. } = event {
            let at = Timestamp::now();
            self.store.write("remember an item's loudness", move |s| {
                s.put_loudness(&sha256, &measured, at)
            });
            return;
        }
        let Some(program) = self.programs.get_mut(&id) else {
            return;
        };
        match event {
            ProgramEvent::ItemStarted {
                item,
                path,
                duration,
                content,
                sha256,
                gain_db,
            } => {
                program.opened += 1;
                let hash_path = path.clone();
                program.info.insert(
                    item,
                    ItemInfo {
                        path,
                        duration,
                        error: None,
                        sha256: None,
                        gain_db,
                    },
                );
                if crate::live::is_live_item(&hash_path) {
                    return; // hashed by the worker as it reads (ItemEncoded)
                }
                let inputs = self.inputs.clone();
                if let Some(sha256) = sha256 {
                    // The worker hashed it already (loudness lookup).
                    let _ = inputs.send(Input::Hashed { program: id, item, sha256 });
                    return;
                }
                // Hashing the file the decoder opened (not the path) keeps
                // the hash when the file is deleted or replaced mid-play.
                tokio::task::spawn_blocking(move || {
                    let hashed = match content {
                        Some(file) => crate::media::hash::sha256_open(&file),
                        None => crate::media::hash::sha256_file(&hash_path),
                    };
                    match hashed {
                        Ok(sha256) => {
                            let _ = inputs.send(Input::Hashed { program: id, item, sha256 });
                        }
                        Err(e) => tracing::warn!(file = %hash_path.display(), "cannot hash: {e}"),
                    }
                });
            }
            ProgramEvent::ItemSkipped { item, path, error } => {
                let reason = error.to_string();
                tracing::warn!(program = id, file = %path.display(), "skipped: {reason}");
                program.skipped.push(format!("{}: {reason}", path.display()));
                let _ = item;
                let (name, zones, priority, origin) =
                    (program.name.clone(), program.zones.clone(), program.priority, program.origin.clone());
                let source = program.labels.get(&path).cloned().unwrap_or_else(|| path.to_string_lossy().into_owned());
                let row = self.row_start(id, &name, &source, &zones, priority, &origin);
                self.store.record_row(row, Outcome::Failed, Some(reason));
            }
            ProgramEvent::ItemEncoded { item, error, encoded, sha256, .. } => {
                if let Some(sha256) = sha256 {
                    // A live item's hash is known only at its end.
                    let _ = self.inputs.send(Input::Hashed { program: id, item, sha256 });
                }
                if let (Some(error), Some(info)) = (error, program.info.get_mut(&item)) {
                    let message = format!("stopped at {}: {error}", clock_text(encoded));
                    tracing::warn!(program = id, file = %info.path.display(), "{message}");
                    info.error = Some(message);
                }
            }
            ProgramEvent::Ready => {
                if program.opened == 0 {
                    // Every item failed to open: nothing will ever play.
                    let reasons = program.skipped.join("; ");
                    if let Some(reply) = program.reply.take() {
                        let _ = reply.send(Err(RpcError::refused(format!("nothing could be played: {reasons}"))));
                    }
                    self.forget(id);
                    return;
                }
                program.phase = Phase::Prepared;
                if let Some(frames) = program.frames.take() {
                    let _ = self.pacer.send(pacer::Command::AddProgram { id, frames });
                }
                // A timed start asks the arbiter shortly before its instant;
                // the pacer switches the zones on the tick of the instant.
                match program.start_at {
                    Some(at) if at > Instant::now() + ADMIT_AHEAD => {
                        let inputs = self.inputs.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep_until((at - ADMIT_AHEAD).into()).await;
                            let _ = inputs.send(Input::StartAt(id));
                        });
                    }
                    _ => self.admit(id),
                }
            }
            ProgramEvent::Measured { .. } => {}
            ProgramEvent::Finished { .. } => {}
        }
    }

    pub fn handle_hash(&mut self, id: ProgramId, item: usize, sha256: String) {
        let Some(program) = self.programs.get_mut(&id) else {
            return;
        };
        if let Some(info) = program.info.get_mut(&item) {
            info.sha256 = Some(sha256.clone());
        }
        if let Some(current) = program.current.as_ref().filter(|c| c.index == item) {
            self.store.set_row_hash(current.row, sha256);
        }
    }

    /// The program asks the arbiter for its zones.
    pub fn admit(&mut self, id: ProgramId) {
        let Some(program) = self.programs.get_mut(&id) else {
            return;
        };
        if program.phase != Phase::Prepared {
            return;
        }
        program.phase = Phase::Admitted;
        let request = ArbiterRequest {
            program: id,
            priority: program.priority,
            zones: program.zones.clone(),
            on_busy: program.on_busy,
            on_preempt: program.on_preempt,
        };
        let at = program.start_at.filter(|&at| at > Instant::now());
        match self.arbiter.request(request) {
            Ok(changes) => {
                self.apply_at(changes, at);
                let playing = self.arbiter.zones_of(id);
                let program = &self.programs[&id];
                let waiting: Vec<usize> = program.zones.iter().copied().filter(|z| !playing.contains(z)).collect();
                tracing::info!(
                    program = id,
                    name = program.name,
                    priority = %program.priority,
                    "on air on [{}]{}",
                    self.zone_list(&playing),
                    if waiting.is_empty() { String::new() } else { format!(", waiting for [{}]", self.zone_list(&waiting)) }
                );
                let result = json!({
                    "id": id,
                    "zones": self.names(&playing),
                    "waiting": self.names(&waiting),
                });
                if let Some(program) = self.programs.get_mut(&id) {
                    if let Some(max) = program.max_duration {
                        let inputs = self.inputs.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(max).await;
                            let _ = inputs.send(Input::MaxDuration(id));
                        });
                    }
                    if let Some(reply) = program.reply.take() {
                        let _ = reply.send(Ok(result));
                    }
                }
            }
            Err(refused) => {
                let busy: Vec<String> = refused
                    .busy
                    .iter()
                    .map(|(zone, holder, priority)| {
                        let name = self.programs.get(holder).map(|p| p.name.as_str()).unwrap_or("?");
                        format!("{} is playing #{holder} {name} ({priority})", self.zones[*zone].name)
                    })
                    .collect();
                let message = format!("refused: {}", busy.join("; "));
                tracing::info!(program = id, "{message}");
                let program = &self.programs[&id];
                let row = self.row_start(
                    id,
                    &program.name,
                    &items_text(&program.items, &program.labels),
                    &program.zones,
                    program.priority,
                    &program.origin,
                );
                self.store.record_row(row, Outcome::Failed, Some(message.clone()));
                if let Some(reply) = self.programs.get_mut(&id).and_then(|p| p.reply.take()) {
                    let _ = reply.send(Err(RpcError::refused(message)));
                }
                self.forget(id);
            }
        }
    }

    fn names(&self, zones: &[usize]) -> Vec<String> {
        zones.iter().map(|&z| self.zones[z].name.clone()).collect()
    }

    /// Turns arbiter decisions into pacer commands and history.
    fn apply(&mut self, changes: Vec<Change>) {
        self.apply_at(changes, None);
    }

    /// Like `apply`; zone changes take effect on the tick of `at` if given.
    fn apply_at(&mut self, changes: Vec<Change>, at: Option<Instant>) {
        for change in changes {
            match change {
                Change::Assign { zone, program } => {
                    // Silence from speakers only means "offline" while the
                    // zone is sending.
                    self.health.send(HealthInput::ZoneSending {
                        zone: self.zones[zone].name.clone(),
                        sending: program.is_some() && !self.net.is_down(),
                    });
                    let command = match at {
                        Some(at) => pacer::Command::AssignAt { zone, program, at },
                        None => pacer::Command::Assign { zone, program },
                    };
                    let _ = self.pacer.send(command);
                }
                Change::Paused { program } => {
                    tracing::info!(program, "paused: a higher-priority program took its zones");
                }
                Change::Resumed { program } => {
                    tracing::info!(program, "resumes where it paused");
                }
                Change::Dropped { program, by } => {
                    let by_text = self
                        .programs
                        .get(&by)
                        .map(|p| format!("#{by} {} ({})", p.name, p.priority))
                        .unwrap_or_else(|| format!("#{by}"));
                    self.end_program(program, Outcome::Preempted, Some(format!("preempted by {by_text}")), false);
                }
            }
        }
    }

    pub fn handle_pacer_event(&mut self, event: PacerEvent) {
        match event {
            PacerEvent::FirstPacket { program, zone, at } => {
                let late = at.elapsed();
                if let Some(p) = self.programs.get_mut(&program) {
                    if p.first_packet.is_none() {
                        p.first_packet = Some(Timestamp::now() - jiff::SignedDuration::try_from(late).unwrap_or_default());
                    }
                    if let Some(client) = &p.live_client {
                        // A live client waiting for this zone hears that it has it.
                        crate::live::notify(client, "live.playing", json!({ "zone": self.zones[zone].name }));
                    }
                    tracing::debug!(program, zone = self.zones[zone].name, "first packet");
                }
            }
            PacerEvent::Progress { program, item, position } => self.progress(program, item, position),
            PacerEvent::ProgramEnded { program } => {
                if self.programs.contains_key(&program) {
                    self.end_program(program, Outcome::Completed, None, true);
                }
            }
            PacerEvent::SendFailing { errno, target } => {
                // Checked right away: a vanished source address shows up as
                // ENETUNREACH, and the first log line should say why.
                let address = probe_address(self.network.interface);
                self.net.handle_send_failing(Instant::now(), errno, target, address);
                self.net_actions();
            }
            PacerEvent::NotSent { counts } => self.net.handle_not_sent(&counts),
            PacerEvent::SendIdle => {
                self.net.handle_send_idle(Instant::now());
                self.net_actions();
            }
            PacerEvent::Sending { counts } => {
                self.net.handle_sending(Instant::now(), &counts);
                self.net_actions();
            }
        }
    }

    /// Once a second: is the interface address still (or yet) here?
    pub fn on_net_tick(&mut self) {
        let now = Instant::now();
        self.net.handle_probe(now, probe_address(self.network.interface));
        self.net.handle_tick(now);
        self.net_actions();
    }

    fn net_actions(&mut self) {
        while let Some(action) = self.net.poll_action() {
            match action {
                NetAction::Warn(text) => tracing::warn!("{text}"),
                NetAction::Info(text) => tracing::info!("{text}"),
                NetAction::BuildSocket => match crate::net::sender_socket(&self.network) {
                    Ok(socket) => {
                        let _ = self.pacer.send(pacer::Command::SetSocket(socket));
                        self.net.handle_socket_built(Instant::now());
                    }
                    Err(e) => {
                        tracing::debug!("cannot build the sender socket yet: {e}");
                        self.net.handle_socket_failed(Instant::now());
                    }
                },
                NetAction::Rejoin => self.health.send(HealthInput::Rejoin),
            }
        }
        match (self.net.is_down(), self.net_down_at) {
            (true, None) => {
                self.net_down_at = Some(Timestamp::now());
                self.tell_health_who_sends();
            }
            (false, Some(_)) => {
                self.net_down_at = None;
                self.tell_health_who_sends();
            }
            _ => {}
        }
    }

    /// Speakers are judged offline only while their zone sends; while our
    /// own interface cannot send, their silence is our fault, not theirs.
    /// When sending resumes they get a fresh grace period.
    fn tell_health_who_sends(&self) {
        let down = self.net.is_down();
        for (index, zone) in self.zones.iter().enumerate().filter(|(_, z)| !z.retired) {
            self.health.send(HealthInput::ZoneSending {
                zone: zone.name.clone(),
                sending: !down && self.arbiter.owner(index).is_some(),
            });
        }
    }

    fn progress(&mut self, id: ProgramId, item: usize, position: Duration) {
        let Some(program) = self.programs.get_mut(&id) else {
            return;
        };
        match &mut program.current {
            Some(current) if current.index == item => {
                current.position = position;
                return;
            }
            _ => {}
        }
        // A new item is on air: the previous one played to its end.
        if let Some(previous) = program.current.take() {
            let error = program.info.get(&previous.index).and_then(|i| i.error.clone());
            let outcome = if error.is_some() { Outcome::Failed } else { Outcome::Completed };
            self.store.finish_row(previous.row, Timestamp::now(), outcome, error);
        }
        let row = self.next_row;
        self.next_row += 1;
        let program = &self.programs[&id];
        let info = program.info.get(&item);
        let path = info.map(|i| &i.path).unwrap_or(&program.items[item % program.items.len()]);
        let source = program.labels.get(path).cloned().unwrap_or_else(|| path.to_string_lossy().into_owned());
        let mut start = self.row_start(id, &program.name, &source, &program.zones, program.priority, &program.origin);
        start.sha256 = info.and_then(|i| i.sha256.clone());
        // Zones it actually plays on (a preempted zone is not listed).
        let playing = self.arbiter.zones_of(id);
        if !playing.is_empty() {
            start.zones = self.names(&playing);
        }
        tracing::info!(program = id, row, "on air: {source}");
        self.store.begin_row(row, start);
        let program = self.programs.get_mut(&id).expect("checked above");
        program.current = Some(CurrentItem {
            index: item,
            row,
            position,
        });
        // Items before this one are done; keep the map small on long loops.
        program.info.retain(|&i, _| i >= item);
    }

    /// Ends a program: closes its row, frees its zones, stops its worker.
    /// `natural`: its queue ran dry after the last frame.
    fn end_program(&mut self, id: ProgramId, outcome: Outcome, error: Option<String>, natural: bool) {
        let Some(mut program) = self.programs.remove(&id) else {
            return;
        };
        if let Some(current) = program.current.take() {
            let item_error = program.info.get(&current.index).and_then(|i| i.error.clone());
            let (outcome, error) = match (natural, item_error) {
                (true, Some(e)) => (Outcome::Failed, Some(e)),
                _ => (outcome, error.clone()),
            };
            self.store.finish_row(current.row, Timestamp::now(), outcome, error);
        } else if !natural && program.phase == Phase::Admitted {
            // Never got on air (waiting for its zones): still worth a row.
            let row = self.row_start(id, &program.name, &items_text(&program.items, &program.labels), &program.zones, program.priority, &program.origin);
            self.store.record_row(row, outcome, error.clone());
        }
        if let Some(client) = program.live_client.take() {
            crate::live::notify(&client, "live.ended", json!({ "outcome": outcome.as_str(), "error": error }));
        }
        if let Some(reply) = program.reply.take() {
            let _ = reply.send(Err(RpcError::refused(
                error.unwrap_or_else(|| "stopped before it went on air".into()),
            )));
        }
        tracing::info!(program = id, name = program.name, outcome = outcome.as_str(), "program ended");
        self.stop_worker(id, &mut program);
        let changes = self.arbiter.release(id);
        self.apply(changes);
    }

    /// Drops a program that never reached the arbiter.
    fn forget(&mut self, id: ProgramId) {
        self.pending_say.remove(&id);
        if let Some(mut program) = self.programs.remove(&id) {
            self.stop_worker(id, &mut program);
        }
    }

    /// The pacer forgets the program's queue and its encoder thread is
    /// cancelled and joined off the engine task.
    fn stop_worker(&self, id: ProgramId, program: &mut Program) {
        let _ = self.pacer.send(pacer::Command::RemoveProgram { id });
        if let Some(control) = program.control.take() {
            control.cancel();
            tokio::task::spawn_blocking(move || control.join());
        }
    }

    pub fn handle_max_duration(&mut self, id: ProgramId) {
        if let Some(program) = self.programs.get(&id) {
            let max = program.max_duration.map(humanize).unwrap_or_default();
            self.end_program(id, Outcome::Stopped, Some(format!("cut at max_duration {max}")), false);
        }
    }

    /// Stops programs; returns the ids stopped.
    pub fn stop(&mut self, ids: Vec<ProgramId>, reason: String) -> Vec<ProgramId> {
        for &id in &ids {
            // Speech still being synthesised: it never starts.
            if let Some(PendingSay { reply: Some(reply), .. }) = self.pending_say.remove(&id) {
                let _ = reply.send(Err(RpcError::refused(reason.clone())));
            }
            self.end_program(id, Outcome::Stopped, Some(reason.clone()), false);
        }
        ids
    }

    /// Programs, including `say` programs whose speech is being synthesised.
    pub fn program_ids(&self) -> Vec<ProgramId> {
        self.programs.keys().chain(self.pending_say.keys()).copied().collect()
    }

    pub fn programs_on_zone(&self, zone: &str) -> Result<Vec<ProgramId>, RpcError> {
        let index = self.zone_index(zone).ok_or_else(|| {
            RpcError::refused(format!("unknown zone \"{zone}\"; zones: {}", self.live_zone_names().join(", ")))
        })?;
        let pending = self.pending_say.iter().filter(|(_, p)| p.spec.zones.contains(&index)).map(|(&id, _)| id);
        Ok(self.programs.values().filter(|p| p.zones.contains(&index)).map(|p| p.id).chain(pending).collect())
    }

    pub fn has_program(&self, id: ProgramId) -> bool {
        self.programs.contains_key(&id) || self.pending_say.contains_key(&id)
    }

    /// SIGTERM: every program stops, rows are closed as `stopped`.
    pub fn shutdown(&mut self) {
        let ids = self.program_ids();
        self.stop(ids, "the daemon was shut down".into());
        let _ = self.pacer.send(pacer::Command::Shutdown);
        self.health.send(HealthInput::Stop);
    }

    // -------------------------------------------------------------- status

    pub fn status(&self) -> Value {
        let tz = self.time_zone().clone();
        let zones: Vec<Value> = self
            .zones
            .iter()
            .enumerate()
            .filter(|(_, z)| !z.retired)
            .map(|(index, z)| {
                let owner = self.arbiter.owner(index);
                json!({
                    "name": z.name,
                    "packets_not_sent": self.net.not_sent(index),
                    "group": self.config.zone(&z.name).map(|c| c.group.to_string()),
                    "program": owner,
                    "priority": owner.and_then(|id| self.programs.get(&id)).map(|p| p.priority.as_str()),
                })
            })
            .collect();
        let programs: Vec<Value> = self.programs.values().map(|p| self.program_json(p)).collect();
        let next: Vec<Value> = self
            .scheduler
            .upcoming(Timestamp::now(), 3)
            .into_iter()
            .map(|(name, at)| {
                let zones = self.schedules.get(&name).map(|d| self.selection_names(&d.spec.zones)).unwrap_or_default();
                json!({
                    "schedule": name,
                    "at": at.to_zoned_datetime(tz.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
                    "zones": zones,
                })
            })
            .collect();
        let mut history = serde_json::to_value(self.store.health.snapshot()).unwrap_or_default();
        history["path"] = json!(self.store.path.display().to_string());
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "config": self.config_path.display().to_string(),
            "timezone": self.config.daemon.timezone,
            "started_at": self.started_at.to_zoned_datetime(tz.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
            "uptime_secs": self.started.elapsed().as_secs(),
            "zones": zones,
            "programs": programs,
            "next": next,
            "network": self.network_json(&tz),
            "history": history,
            "sap": self.sap.status_json(&tz),
        })
    }

    fn network_json(&self, tz: &jiff::tz::TimeZone) -> Value {
        let status = self.net.status(Instant::now());
        json!({
            "interface": status.interface.to_string(),
            "state": if status.error.is_some() { "error" } else { "ok" },
            "error": status.error,
            "since": self.net_down_at.map(|t| t.to_zoned_datetime(tz.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()),
            "down_secs": status.down_for.map(|d| (d.as_secs_f64() * 10.0).round() / 10.0),
            "packets_not_sent": status.not_sent,
            "packets_not_sent_total": status.not_sent_total,
        })
    }

    fn program_json(&self, p: &Program) -> Value {
        let playing = self.arbiter.zones_of(p.id);
        let state = match p.phase {
            Phase::Preparing | Phase::Prepared => "starting",
            Phase::Admitted if !playing.is_empty() => "playing",
            Phase::Admitted if p.current.is_some() => "paused",
            Phase::Admitted => "waiting",
        };
        let item = p.current.as_ref().map(|c| {
            let info = p.info.get(&c.index);
            json!({
                "index": c.index % p.items.len().max(1),
                "count": p.items.len(),
                "file": info.map(|i| i.path.display().to_string()),
                "position_secs": c.position.as_secs_f64(),
                "duration_secs": info.and_then(|i| i.duration).map(|d| d.as_secs_f64()),
                "sha256": info.and_then(|i| i.sha256.clone()),
                "gain_db": info.and_then(|i| i.gain_db).map(|g| (g * 10.0).round() / 10.0),
            })
        });
        json!({
            "id": p.id,
            "name": p.name,
            "priority": p.priority.as_str(),
            "origin": p.origin.text(),
            "state": state,
            "zones": self.names(&p.zones),
            "playing_on": self.names(&playing),
            "looped": p.looped,
            "item": item,
            "created": p.created.to_string(),
            "on_air_since": p.first_packet.map(|t| t.to_string()),
        })
    }

    // ----------------------------------------------------------- schedules

    pub fn schedule_from_record(&self, r: &ScheduleRecord) -> Result<Schedule, String> {
        let cron = crate::schedule::CronExpr::parse(&r.cron).map_err(|e| e.to_string())?;
        let target = match (&r.playlist, &r.file, &r.say) {
            (Some(p), _, _) => ScheduleTarget::Playlist(p.clone()),
            (None, Some(f), _) => ScheduleTarget::File(f.into()),
            (None, None, Some(text)) => ScheduleTarget::Say {
                text: text.clone(),
                voice: r.voice.clone(),
            },
            (None, None, None) => return Err("no playlist, file or text to say".into()),
        };
        let zones = if r.zones.len() == 1 && r.zones[0] == "all" {
            ZoneSelection::All
        } else {
            ZoneSelection::Named(r.zones.clone())
        };
        Ok(Schedule {
            name: r.name.clone(),
            cron,
            target,
            zones,
            priority: r.priority,
            max_duration: r.max_duration_secs.map(Duration::from_secs),
            misfire_grace: Duration::from_secs(r.misfire_grace_secs),
            enabled: r.enabled,
            on_preempt: OnPreempt::parse(&r.on_preempt).unwrap_or_default(),
            on_busy: OnBusy::parse(&r.on_busy).unwrap_or_default(),
        })
    }

    pub fn schedule_def(&self, name: &str) -> Option<&ScheduleDef> {
        self.schedules.get(name)
    }

    pub fn add_runtime_schedule(&mut self, spec: Schedule) {
        self.install_schedule(ScheduleDef { spec, runtime: true }, None, Timestamp::now());
    }

    /// Drops fires of `name` prepared but not yet on air.
    fn cancel_prepared(&mut self, name: &str) {
        let ids: Vec<ProgramId> = self
            .prepared
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|(_, &id)| id)
            .collect();
        self.prepared.retain(|(n, _), _| n != name);
        self.schedules_changed();
        for id in ids {
            if self.pending_say.contains_key(&id) || self.programs.get(&id).is_some_and(|p| p.phase != Phase::Admitted) {
                self.forget(id);
            }
        }
    }

    pub fn remove_schedule(&mut self, name: &str) -> bool {
        self.cancel_prepared(name);
        self.scheduler.remove(name);
        self.schedules_changed();
        self.schedules.remove(name).is_some()
    }

    pub fn set_schedule_enabled(&mut self, name: &str, enabled: bool) -> bool {
        if !enabled {
            self.cancel_prepared(name);
        }
        if let Some(def) = self.schedules.get_mut(name) {
            def.spec.enabled = enabled;
        }
        self.schedules_changed();
        self.scheduler.set_enabled(name, enabled, Timestamp::now())
    }

    pub fn schedules_json(&self) -> Vec<Value> {
        let tz = self.time_zone().clone();
        self.schedules
            .values()
            .map(|d| {
                let s = &d.spec;
                json!({
                    "name": s.name,
                    "cron": s.cron.as_str(),
                    "target": target_text(&s.target, &self.config.tts.voice),
                    "zones": match &s.zones { ZoneSelection::All => json!("all"), ZoneSelection::Named(n) => json!(n) },
                    "priority": s.priority.as_str(),
                    "enabled": s.enabled,
                    "source": if d.runtime { "runtime" } else { "config" },
                    "max_duration_secs": s.max_duration.map(|d| d.as_secs()),
                    "misfire_grace_secs": s.misfire_grace.as_secs(),
                    "on_preempt": s.on_preempt.as_str(),
                    "on_busy": s.on_busy.as_str(),
                    "next": self.scheduler.next_fire(&s.name).map(|t| t.to_zoned_datetime(tz.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()),
                })
            })
            .collect()
    }

    // ----------------------------------------------------------- playlists

    pub fn set_runtime_playlist(&mut self, record: PlaylistRecord) {
        self.runtime_playlists.insert(record.name.clone(), record);
    }

    /// Every playlist with its item paths (config items resolved as they
    /// would play) for `playlist.list`.
    pub fn playlists_for_listing(&self) -> Vec<PlaylistListing> {
        let mut out = Vec::new();
        for p in &self.config.playlists {
            let (source, items, error) = match &p.source {
                PlaylistSource::Items(items) => ("items".to_string(), items.iter().map(|i| self.config_media_path(i)).collect(), None),
                PlaylistSource::File(f) => {
                    let f = self.config_media_path(f);
                    match playlist::load(&f) {
                        Ok(e) => (f.display().to_string(), e.into_iter().map(|e| e.path).collect(), None),
                        Err(e) => (f.display().to_string(), Vec::new(), Some(e.to_string())),
                    }
                }
                PlaylistSource::Dir(d) => {
                    let d = self.config_media_path(d);
                    match playlist::scan_dir(&d) {
                        Ok(e) => (d.display().to_string(), e.into_iter().map(|e| e.path).collect(), None),
                        Err(e) => (d.display().to_string(), Vec::new(), Some(e.to_string())),
                    }
                }
            };
            out.push(PlaylistListing {
                name: p.name.clone(),
                origin: "config",
                source,
                items,
                shuffle: p.shuffle,
                looped: p.looped,
                error,
            });
        }
        for p in self.runtime_playlists.values() {
            out.push(PlaylistListing {
                name: p.name.clone(),
                origin: "runtime",
                source: p.source.clone(),
                items: p.items.clone(),
                shuffle: false,
                looped: false,
                error: None,
            });
        }
        out
    }

    // -------------------------------------------------------------- reload

    /// Applies a new, valid config without cutting programs that keep their
    /// zones. Returns a summary of what changed.
    pub fn reload(&mut self, new: Config, zone_spec: impl Fn(&Config, &str) -> Option<pacer::ZoneSpec>) -> Value {
        let mut added = Vec::new();
        let mut removed = Vec::new();
        let mut notes = Vec::new();
        // Zones gone or moved to another group: retire (BYE); a moved zone
        // comes back as a new zone with a fresh RTP session.
        for index in 0..self.zones.len() {
            if self.zones[index].retired {
                continue;
            }
            let name = self.zones[index].name.clone();
            let old = self.config.zone(&name);
            let keep = match (old, new.zone(&name)) {
                (Some(old), Some(new_zone)) => old.group == new_zone.group && old.unicast == new_zone.unicast,
                _ => false,
            };
            if !keep {
                self.zones[index].retired = true;
                let changes = self.arbiter.retire_zone(index);
                self.apply(changes);
                let _ = self.pacer.send(pacer::Command::RetireZone { zone: index });
                self.zone_ssrcs.remove(&name);
                removed.push(name);
            }
        }
        for zone in &new.zones {
            if self.zone_index(&zone.name).is_none() {
                if let Some(spec) = zone_spec(&new, &zone.name) {
                    self.zone_ssrcs.insert(zone.name.clone(), spec.session.ssrc);
                    let _ = self.pacer.send(pacer::Command::AddZone(spec));
                    let index = self.arbiter.add_zone();
                    debug_assert_eq!(index, self.zones.len());
                    self.zones.push(ZoneSlot {
                        name: zone.name.clone(),
                        retired: false,
                    });
                    added.push(zone.name.clone());
                }
            }
        }
        if new.network != self.config.network {
            notes.push("[network] changes take effect when the daemon restarts".to_string());
        }
        if new.audio != self.config.audio {
            notes.push("[audio] changes apply to programs started from now on".to_string());
        }
        if new.daemon.socket != self.config.daemon.socket || new.daemon.state_dir != self.config.daemon.state_dir {
            notes.push("socket and state_dir changes take effect when the daemon restarts".to_string());
        }
        // Config schedules are replaced; runtime ones stay.
        let now = Timestamp::now();
        let old_config: Vec<String> = self.schedules.values().filter(|d| !d.runtime).map(|d| d.spec.name.clone()).collect();
        for name in old_config {
            if !new.schedules.iter().any(|s| s.name == name) {
                self.remove_schedule(&name);
            }
        }
        for schedule in new.schedules.clone() {
            let unchanged = self.schedules.get(&schedule.name).is_some_and(|d| !d.runtime && d.spec == schedule);
            if !unchanged {
                self.install_schedule(ScheduleDef { spec: schedule, runtime: false }, None, now);
            }
        }
        self.runtime_toggles.clear();
        self.health.send(HealthInput::Reconfigure(Box::new(new.clone()), self.zone_ssrcs.clone()));
        self.sap.reconfigure(&new);
        self.roots = MediaRoots::new(&new.daemon.media_roots);
        self.config = new;
        json!({
            "zones_added": added,
            "zones_removed": removed,
            "schedules": self.schedules.len(),
            "notes": notes,
        })
    }
}

/// `default_voice`: `[tts] voice`, for `say` without its own voice.
pub fn target_text(target: &ScheduleTarget, default_voice: &str) -> String {
    match target {
        ScheduleTarget::Playlist(p) => format!("playlist:{p}"),
        ScheduleTarget::File(f) => f.display().to_string(),
        ScheduleTarget::Say { text, voice } => crate::media::tts::label(voice.as_deref().unwrap_or(default_voice), text),
    }
}

fn items_text(items: &[PathBuf], labels: &HashMap<PathBuf, String>) -> String {
    match items {
        [one] => labels.get(one).cloned().unwrap_or_else(|| one.display().to_string()),
        // A chime and the speech: the speech says what it was.
        [_, two] if labels.contains_key(two) => format!("chime + {}", labels[two]),
        _ => format!("{} items", items.len()),
    }
}

/// Whether `interface` is an address of this machine: binding a UDP socket
/// to it succeeds exactly then (no packet is sent).
fn probe_address(interface: std::net::Ipv4Addr) -> std::io::Result<()> {
    std::net::UdpSocket::bind((interface, 0)).map(drop)
}

