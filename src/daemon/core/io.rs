//! What goes into the core and what comes out: plain data, no handles.
//! The shell turns sockets, workers, timers and blocking jobs into
//! [`Input`]s and carries out every [`Effect`] in the order given.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use super::super::tasks::store::{RowKey, RowStart};
use crate::config::{Audio, Config, ConfigErrors, Network, Playlist, Tts, Zone};
use crate::daemon::server::Caller;
use crate::media::loudness::Measured;
use crate::proto::broadcast::LiveStartParams;
use crate::proto::health::Endpoint;
use crate::proto::history::HistoryRow;
use crate::proto::playlist::PlaylistInfo;
use crate::proto::status::HistoryHealth;
use crate::proto::{Outcome, ProgramId, Request, Response, RpcError, ZoneId};
use crate::store::{PlaylistRecord, ScheduleRecord};

/// The time of an input: the monotonic clock for deadlines and the pacer,
/// the wall clock for history, schedules and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono: Instant,
    pub wall: Timestamp,
}

#[cfg(test)]
impl Now {
    /// `d` later on both clocks.
    pub fn after(self, d: Duration) -> Now {
        Now { mono: self.mono + d, wall: self.wall + jiff::SignedDuration::try_from(d).unwrap_or_default() }
    }
}

/// A control request waiting for its answer (numbered by the shell).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// A `loa live` connection, held by the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A resolution job the shell runs off the engine task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u64);

pub enum Input {
    /// A control request, its params already typed.
    Request { id: RequestId, caller: Caller, request: Request },
    /// `live.start`; the connection that carries the PCM is `conn`.
    LiveStart { id: RequestId, caller: Caller, params: LiveStartParams, conn: ConnId },
    /// The config file read for a reload (`request` None: SIGHUP).
    ConfigLoaded { request: Option<RequestId>, caller: Option<Caller>, result: Result<Config, ConfigErrors> },
    /// A resolution job's answer; `Err` is the refusal in plain words.
    Resolved { job: JobId, result: Result<Resolved, String> },
    /// A program worker's event.
    Worker { program: ProgramId, event: WorkerEvent },
    /// The worker could not be started.
    SpawnFailed { program: ProgramId, error: String },
    Pacer(PacerInput),
    /// The pacer's sends began failing; `address` is a check of the
    /// interface address made right then.
    SendFailing { errno: Option<i32>, target: SocketAddr, address: io::Result<()> },
    /// The once-a-second check of the interface address (`ProbeAddress`).
    AddressProbed(io::Result<()>),
    /// `BuildSocket` done: the pacer has the new socket, or why not.
    SocketBuilt(Result<(), String>),
    /// An item's content hash.
    Hashed { program: ProgramId, item: usize, sha256: String },
    /// A store call's answer.
    Stored { request: RequestId, result: Result<Stored, String> },
    /// What the health task, the store thread and SAP know, for `status`
    /// and `endpoints.*`.
    Snapshot { request: RequestId, snapshot: Snapshot },
    /// SIGTERM/SIGINT.
    Shutdown,
}

/// A worker's event as the core needs it (the opened file stays with the
/// shell, which hashes it).
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerEvent {
    ItemStarted { item: usize, path: PathBuf, duration: Option<Duration>, sha256: Option<String>, gain_db: Option<f64> },
    Measured { sha256: String, measured: Measured },
    ItemSkipped { item: usize, path: PathBuf, error: String },
    ItemEncoded { item: usize, encoded: Duration, error: Option<String>, sha256: Option<String> },
    Ready,
    Finished,
}

/// The pacer's events the core acts on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PacerInput {
    FirstPacket { program: ProgramId, zone: ZoneId, at: Instant },
    Progress { program: ProgramId, item: usize, position: Duration },
    /// `zone` stopped playing `program`, which still exists; `item` and
    /// `position` are those of the first frame the zone did not get.
    /// (Made by the shell once the pacer reports it.)
    #[allow(dead_code)]
    ZoneLeft { zone: ZoneId, program: ProgramId, item: usize, position: Duration },
    ProgramEnded { program: ProgramId },
    /// Packets of `zone` not sent so far (cumulative).
    NotSent { zone: ZoneId, count: u64 },
    Sending,
    SendIdle,
    /// The pacer woke `late` and skipped `skipped_ticks` frames on every
    /// zone (the machine suspended, the daemon was stopped).
    Stalled { late: Duration, skipped_ticks: u64 },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    Done,
    History(Vec<HistoryRow>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub endpoints: Vec<Endpoint>,
    pub history: HistoryHealth,
    pub sap: SapState,
    /// Unauthenticated datagrams at each SRTP zone's RTCP port, since start.
    pub unauthenticated: std::collections::BTreeMap<String, u64>,
}

/// The SAP announcer's state (times are shown in the daemon's zone).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SapState {
    pub enabled: bool,
    pub address: String,
    pub last_sent: Option<Timestamp>,
    pub error: Option<String>,
}

#[derive(Debug)]
pub enum Effect {
    /// Answer a request.
    Reply { request: RequestId, result: Result<Response, RpcError> },
    Pacer(PacerCmd),
    /// A zone added by a reload: the shell builds its RTP session (a fresh
    /// random SSRC) and hands it to the pacer.
    AddZone { zone: ZoneId, config: Zone, network: Network, audio: Audio },
    /// Start a program worker; the shell keeps its frame queue until
    /// `PacerCmd::AddProgram`.
    Spawn { program: ProgramId, worker: WorkerSpec },
    /// Cancel the worker (joined off the engine task) and drop its queue.
    StopWorker { program: ProgramId },
    /// Run a resolution job on the blocking pool; the answer comes back as
    /// `Input::Resolved`.
    Resolve { job: JobId, what: Job },
    /// Hash an item's content (the file the worker opened, else the path).
    Hash { program: ProgramId, item: usize, path: PathBuf },
    Store(StoreWrite),
    /// A store call whose answer comes back as `Input::Stored`.
    StoreCall { request: RequestId, call: StoreCall },
    /// A `speakers.*` request, checked against the config; the speakers
    /// thread answers the client itself.
    Speakers { request: RequestId, call: SpeakersCall },
    Health(HealthCmd),
    /// The SAP announcer's new zones.
    Sap(Box<Config>),
    /// Ask for an `Input::Snapshot`.
    Snapshot { request: RequestId },
    /// Read the config file again (`Input::ConfigLoaded`).
    LoadConfig { request: Option<RequestId>, caller: Option<Caller> },
    /// Check the interface address (`Input::AddressProbed`).
    ProbeAddress,
    /// Build a sender socket for the pacer (`Input::SocketBuilt`).
    BuildSocket,
    /// A notification on a live connection.
    Live { conn: ConnId, note: LiveNote },
    /// The core is done with a live connection.
    LiveDone { conn: ConnId },
}

#[derive(Debug, Clone, PartialEq)]
pub enum PacerCmd {
    AddProgram { program: ProgramId },
    Assign { zone: ZoneId, program: Option<ProgramId> },
    AssignAt { zone: ZoneId, program: Option<ProgramId>, at: Instant },
    RemoveProgram { program: ProgramId },
    RetireZone { zone: ZoneId },
    Shutdown,
}

/// What a worker plays and how (the shell adds the loudness cache and the
/// live connection's stream).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerSpec {
    pub items: Vec<PathBuf>,
    pub audio: Audio,
    pub queue_frames: usize,
    pub prefill_frames: usize,
    pub looped: bool,
    pub first_play_limit: Duration,
    pub live: Option<ConnId>,
    /// A branch begins where its zones were cut.
    pub start: Option<StartPoint>,
    /// Live or emergency: its events go on the shell's priority lane.
    pub urgent: bool,
}

/// Where a branch begins (see `program::StartPoint`).
#[derive(Debug, Clone, PartialEq)]
pub struct StartPoint {
    pub item: usize,
    pub position: Duration,
    /// The cut item's hash and gain as the programme had them.
    pub resumed: Option<ResumedItem>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResumedItem {
    pub sha256: Option<String>,
    pub gain_db: Option<f64>,
}

/// Turning what a request or schedule names into files, off the engine
/// task: media-root confinement, config-relative paths, playlist files and
/// folders, speech synthesis, loa's chime.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    Items { items: ItemSource, chime: Option<ChimeSource>, media_roots: Vec<PathBuf>, shuffle_seed: u64 },
    /// `playlist.load`: an M3U/PLS file from a client.
    PlaylistLoad { file: String, media_roots: Vec<PathBuf> },
    /// `playlist.list`: every playlist with its items and durations.
    PlaylistListing { config: Vec<Playlist>, runtime: Vec<PlaylistRecord>, media_roots: Vec<PathBuf> },
    /// A path from a client (a schedule's file), inside the media roots.
    SocketPath { path: String, media_roots: Vec<PathBuf> },
}

#[derive(Debug, Clone, PartialEq)]
pub enum ItemSource {
    /// Paths from a client: each must resolve inside the media roots.
    Socket(Vec<String>),
    /// A path from the config file (trusted; relative ones are looked up
    /// in the media roots).
    Config(PathBuf),
    /// A config playlist (items, M3U/PLS file or folder; shuffled with the
    /// job's seed if it says so).
    Playlist(Playlist),
    /// A runtime playlist's items, checked against the media roots again
    /// (a symlink may have changed); the ones outside are listed.
    Runtime(Vec<PathBuf>),
    /// Text for espeak-ng; the item is the WAV.
    Speech { tts: Tts, voice: String, text: String, dir: PathBuf },
    /// The live input's marker item.
    Live,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChimeSource {
    /// An operator's file (config path rules).
    File(PathBuf),
    /// loa's own, written to state_dir when missing.
    BuiltIn { state_dir: PathBuf },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    Items {
        items: Vec<PathBuf>,
        chime: Option<PathBuf>,
        /// Items refused (outside the media roots now), with the reason.
        rejected: Vec<(PathBuf, String)>,
    },
    Playlist { file: PathBuf, items: Vec<PathBuf>, missing: Vec<String> },
    Listing(Vec<PlaylistInfo>),
    Path(PathBuf),
}

/// A history or state write, queued in order on the store thread.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreWrite {
    Begin { key: RowKey, row: RowStart },
    Hash { key: RowKey, sha256: String },
    /// The silence pacer stalls put into the row so far (a total).
    Skipped { key: RowKey, skipped_ms: u64 },
    Finish { key: RowKey, end: Timestamp, outcome: Outcome, error: Option<String> },
    Record { row: RowStart, outcome: Outcome, error: Option<String> },
    LastFire { schedule: String, at: Timestamp },
    Loudness { sha256: String, measured: Measured, at: Timestamp },
}

#[derive(Debug, Clone, PartialEq)]
pub enum StoreCall {
    SaveSchedule(ScheduleRecord),
    DeleteSchedule(String),
    SetScheduleEnabled { name: String, enabled: bool },
    SavePlaylist(PlaylistRecord),
    History { since: Option<Timestamp>, limit: Option<usize> },
}

/// What the speakers thread is asked (issue 15).
#[derive(Debug, Clone, PartialEq)]
pub enum SpeakersCall {
    /// Zones are configured ones; `listen` is `[speakers] listen`.
    Add { by: u32, name: String, zones: Vec<String>, listen: SocketAddr },
    List,
    Revoke { by: u32, name: String },
}

#[derive(Debug, Clone, PartialEq)]
pub enum HealthCmd {
    /// Speakers are judged offline only while their zone sends.
    ZoneSending { zone: String, sending: bool },
    /// A reloaded config (the shell adds the zones' SSRCs).
    Reconfigure(Box<Config>),
    Rejoin,
    Stop,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LiveNote {
    /// The live program now plays on `zone`.
    Playing { zone: String },
    Ended { outcome: Outcome, error: Option<String> },
}
