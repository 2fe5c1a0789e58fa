//! The shell around the core: it owns every handle the core must not —
//! the pacer's command channel, program workers and their frame queues,
//! the store thread, the health and SAP tasks, the blocking pool, the live
//! connections, the clients waiting for answers — turns what happens into
//! [`Input`]s (with the time), and carries out the core's [`Effect`]s in
//! order. It decides nothing.
//!
//! Inputs arrive on two lanes: control requests, resolution results and
//! the events of live and emergency programs on the priority lane, every
//! other program's events on the normal one. An emergency's request and
//! its worker's `Ready` are therefore never queued behind a burst of other
//! programs' events.
//!
//! Must not touch: decisions (the core's).

mod handler;
mod links;
mod resolve;

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::time::Instant;

use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};

use super::core::{ConnId, Core, Effect, HealthCmd, Input, LiveNote, Now, RequestId, Snapshot, StoreCall, StoreWrite, Stored, WorkerEvent};
use super::server::Caller;
use super::tasks::health::{HealthHandle, HealthInput};
use super::tasks::sap::SapHandle;
use super::tasks::speakers::SpeakersHandle;
use super::tasks::store::StoreHandle;
use crate::config::{Config, Network};
use crate::live::LiveInput;
use crate::media::loudness;
use crate::pacer::{self, PacerEvent};
use crate::program::{Frame, ProgramControl, ProgramEvent};
use crate::proto::broadcast::{LiveEnded, LivePlaying, LiveStartParams, LIVE_ENDED, LIVE_PLAYING};
use crate::proto::{ProgramId, Request, Response, RpcError};
use crate::store::HistoryQuery;

pub use handler::ShellHandler;

pub type Reply = oneshot::Sender<Result<Response, RpcError>>;

/// What reaches the engine task.
pub enum ShellMsg {
    Input(Input),
    Request { id: RequestId, caller: Caller, request: Request, reply: Reply },
    /// `live.start`: `input` goes to the worker, `notify` carries the
    /// notification lines back.
    Live { id: RequestId, caller: Caller, params: LiveStartParams, input: LiveInput, notify: UnixStream, reply: Reply },
    Worker { program: ProgramId, event: ProgramEvent },
    Pacer(PacerEvent),
    /// A zone's SRTP keys changed (rotation, revocation): on to the pacer.
    ZoneKeys { zone: String, keys: Box<crate::keys::ZoneKeys> },
    /// The joined speakers' unicast addresses of a zone changed.
    SpeakerTargets { zone: String, targets: Vec<std::net::SocketAddr> },
}

/// The two input lanes (see the module doc).
#[derive(Clone)]
pub struct Lanes {
    pub urgent: mpsc::UnboundedSender<ShellMsg>,
    pub normal: mpsc::UnboundedSender<ShellMsg>,
}

impl Lanes {
    pub fn input(&self, input: Input) {
        let _ = self.urgent.send(ShellMsg::Input(input));
    }
}

/// What the shell holds for the core.
pub struct Parts {
    pub pacer: std_mpsc::SyncSender<pacer::Command>,
    pub store: StoreHandle,
    pub health: HealthHandle,
    pub sap: SapHandle,
    pub speakers: SpeakersHandle,
    pub loudness: loudness::Cache,
    /// [network] as the sender socket was built (changes wait for a restart).
    pub network: Network,
    pub config_path: PathBuf,
    pub zone_ssrcs: HashMap<String, u32>,
    pub zone_names: Vec<String>,
    pub keys: crate::daemon::tasks::keys::KeysHandle,
    /// Joined speakers learn of zones a reload adds, changes or removes.
    pub sessions: crate::daemon::tasks::sessions::SessionsHandle,
}

struct LiveConn {
    /// The PCM stream, until a worker takes it.
    input: Option<LiveInput>,
    notify: UnixStream,
}

pub struct Shell {
    core: Core,
    parts: Parts,
    lanes: Lanes,
    replies: HashMap<RequestId, Reply>,
    live: HashMap<ConnId, LiveConn>,
    /// Frame queues of spawned workers, until the pacer takes them.
    frames: HashMap<ProgramId, std_mpsc::Receiver<Frame>>,
    workers: HashMap<ProgramId, ProgramControl>,
    /// Files the workers opened, for their content hash.
    opened: HashMap<(ProgramId, usize), std::fs::File>,
    pacer_backlog: std::collections::VecDeque<pacer::Command>,
}

pub fn now() -> Now {
    Now { mono: Instant::now(), wall: Timestamp::now() }
}

impl Shell {
    pub fn new(core: Core, parts: Parts, lanes: Lanes) -> Shell {
        let mut shell = Shell {
            core,
            parts,
            lanes,
            replies: HashMap::new(),
            live: HashMap::new(),
            frames: HashMap::new(),
            workers: HashMap::new(),
            opened: HashMap::new(),
            pacer_backlog: std::collections::VecDeque::new(),
        };
        shell.run_effects();
        shell
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.core.poll_timeout()
    }

    pub fn timeout(&mut self) {
        self.core.handle_timeout(now());
        self.run_effects();
    }

    pub fn message(&mut self, msg: ShellMsg) {
        match msg {
            ShellMsg::Input(input) => {
                let sighup = matches!(input, Input::ConfigLoaded { request: None, .. });
                self.input(input);
                if sighup {
                    super::notify::ready();
                }
            }
            ShellMsg::Request { caller, request: Request::ZoneKeys(params), reply, .. } => {
                let _ = reply.send(self.zone_keys(caller, &params.zone).map(Response::ZoneKeys));
            }
            ShellMsg::Request { id, caller, request, reply } => {
                self.replies.insert(id, reply);
                self.input(Input::Request { id, caller, request });
            }
            ShellMsg::Live { id, caller, params, input, notify, reply } => {
                let conn = ConnId(id.0);
                self.live.insert(conn, LiveConn { input: Some(input), notify });
                self.replies.insert(id, reply);
                self.input(Input::LiveStart { id, caller, params, conn });
            }
            ShellMsg::Worker { program, event } => {
                let (event, opened) = links::worker_event(event);
                if let (WorkerEvent::ItemStarted { item, sha256: None, .. }, Some(file)) = (&event, opened) {
                    self.opened.insert((program, *item), file);
                }
                self.input(Input::Worker { program, event });
            }
            ShellMsg::Pacer(event) => {
                for input in links::pacer_inputs(event, self.parts.network.interface) {
                    self.core.handle(input, now());
                }
                self.run_effects();
            }
            ShellMsg::ZoneKeys { zone, keys } => {
                // Zone ids are positions; a retired zone keeps its place.
                if let Some(index) = self.parts.zone_names.iter().rposition(|name| *name == zone) {
                    tracing::info!(zone = %zone, mki = keys.current.mki.value(), "zone keys changed");
                    self.send_pacer(pacer::Command::ZoneKeys { zone: crate::proto::ids::ZoneId::from_index(index), keys });
                }
            }
            ShellMsg::SpeakerTargets { zone, targets } => {
                if let Some(index) = self.parts.zone_names.iter().rposition(|name| *name == zone) {
                    self.send_pacer(pacer::Command::SetSpeakerTargets { zone: crate::proto::ids::ZoneId::from_index(index), targets });
                }
            }
        }
    }

    /// `zone.keys`: read from the rings, no decision to make. Logged, since
    /// the answer lets its reader decode the zone.
    fn zone_keys(&self, caller: Caller, zone: &str) -> Result<crate::proto::keys::ZoneKeysInfo, RpcError> {
        let ssrc = self.parts.zone_ssrcs.get(zone).copied();
        let (Some(ssrc), Some(keys)) = (ssrc, self.parts.keys.keys(zone)) else {
            return Err(match ssrc {
                None => RpcError::invalid_params(format!("unknown zone \"{zone}\"")),
                Some(_) => RpcError::refused(format!("zone \"{zone}\" is plain RTP (security = \"none\"): it has no keys")),
            });
        };
        tracing::info!(zone, uid = caller.uid, pid = caller.pid, "zone keys handed out");
        Ok(crate::proto::keys::ZoneKeysInfo {
            zone: zone.to_string(),
            ssrc,
            suite: keys.suite.sdp_name().to_string(),
            mki_len: keys.mki_len(),
            keys: keys
                .keys()
                .iter()
                .map(|k| crate::proto::keys::ZoneKeyEntry { mki: k.mki.value(), inline: k.key.to_inline() })
                .collect(),
            switch_at: Timestamp::try_from(keys.switch_at).map(|t| t.to_string()).unwrap_or_default(),
        })
    }

    pub fn input(&mut self, input: Input) {
        self.core.handle(input, now());
        self.run_effects();
    }

    fn run_effects(&mut self) {
        while let Some(effect) = self.core.poll_effect() {
            if let Some(input) = self.effect(effect) {
                self.core.handle(input, now());
            }
        }
    }

    /// Carries out one effect; an answer known at once comes back as an
    /// input.
    fn effect(&mut self, effect: Effect) -> Option<Input> {
        match effect {
            Effect::Reply { request, result } => {
                if let Some(reply) = self.replies.remove(&request) {
                    let _ = reply.send(result);
                }
            }
            Effect::Pacer(cmd) => {
                let frames = match &cmd {
                    super::core::PacerCmd::AddProgram { program } => self.frames.remove(program),
                    _ => None,
                };
                if let super::core::PacerCmd::RetireZone { zone } = &cmd {
                    if let Some(name) = self.parts.zone_names.get(zone.index()) {
                        self.parts.zone_ssrcs.remove(name);
                        self.parts.keys.remove_zone(name);
                        self.parts.sessions.zone_retired(name);
                    }
                }
                match links::pacer_command(cmd, frames) {
                    Some(command) => self.send_pacer(command),
                    None => tracing::error!("a program was added to the pacer without its frame queue"),
                }
            }
            Effect::AddZone { zone, config, network, audio } => {
                let keys = (config.security == crate::config::ZoneSecurity::Srtp)
                    .then(|| self.parts.keys.keys_for_new_zone(&config.name, config.mki, std::time::SystemTime::now()));
                let spec = match pacer::ZoneSpec::for_zone(&network, &audio, &config, keys.as_ref()) {
                    Ok(spec) => spec,
                    // The zone's id is taken all the same, so later ids
                    // stay in step with the pacer's: it is retired at once.
                    Err(e) => {
                        tracing::error!("{e}; the zone stays silent");
                        let plain = crate::config::Zone { security: crate::config::ZoneSecurity::None, ..config.clone() };
                        let mut spec = pacer::ZoneSpec::for_zone(&network, &audio, &plain, None)
                            .expect("a plain zone needs no keys");
                        spec.rtp_targets.clear();
                        spec.rtcp_targets.clear();
                        spec
                    }
                };
                debug_assert_eq!(zone.index(), self.parts.zone_names.len());
                self.parts.zone_names.push(config.name.clone());
                self.parts.zone_ssrcs.insert(config.name.clone(), spec.session.ssrc);
                let facts = crate::daemon::tasks::sessions::ZoneFacts {
                    ssrc: spec.session.ssrc,
                    pt: spec.session.payload_type,
                    channels: audio.channels.count() as u8,
                    group: config.group,
                };
                let silent = spec.rtp_targets.is_empty();
                self.send_pacer(pacer::Command::AddZone(spec));
                // After the pacer has it: the speakers' targets follow.
                if !silent {
                    self.parts.sessions.zone_added(&config.name, facts);
                }
            }
            Effect::Spawn { program, worker } => return self.spawn(program, worker),
            Effect::StopWorker { program } => {
                self.frames.remove(&program);
                self.opened.retain(|(p, _), _| *p != program);
                if let Some(control) = self.workers.remove(&program) {
                    control.cancel();
                    tokio::task::spawn_blocking(move || control.join());
                }
            }
            Effect::Resolve { job, what } => {
                let lanes = self.lanes.clone();
                tokio::task::spawn_blocking(move || lanes.input(Input::Resolved { job, result: resolve::run(what) }));
            }
            Effect::Hash { program, item, path } => {
                // The file the decoder opened, not the path: the hash stays
                // right when the file is deleted or replaced mid-play.
                let opened = self.opened.remove(&(program, item));
                let lanes = self.lanes.clone();
                tokio::task::spawn_blocking(move || {
                    let hashed = match &opened {
                        Some(file) => crate::media::hash::sha256_open(file),
                        None => crate::media::hash::sha256_file(&path),
                    };
                    match hashed {
                        Ok(sha256) => lanes.input(Input::Hashed { program, item, sha256 }),
                        Err(e) => tracing::warn!(file = %path.display(), "cannot hash: {e}"),
                    }
                });
            }
            Effect::Store(write) => self.store_write(write),
            Effect::StoreCall { request, call } => self.store_call(request, call),
            Effect::Speakers { request, call } => {
                if let Some(reply) = self.replies.remove(&request) {
                    self.parts.speakers.call(call, reply);
                }
            }
            Effect::Health(cmd) => self.parts.health.send(match cmd {
                HealthCmd::ZoneSending { zone, sending } => HealthInput::ZoneSending { zone, sending },
                HealthCmd::Reconfigure(config) => HealthInput::Reconfigure(config, self.parts.zone_ssrcs.clone()),
                HealthCmd::Rejoin => HealthInput::Rejoin,
                HealthCmd::Stop => HealthInput::Stop,
            }),
            Effect::Sap(config) => self.parts.sap.reconfigure(&config),
            Effect::Snapshot { request } => self.snapshot(request),
            Effect::LoadConfig { request, caller } => self.load_config(request, caller),
            Effect::ProbeAddress => return Some(Input::AddressProbed(links::probe_address(self.parts.network.interface))),
            Effect::BuildSocket => {
                let result = match crate::net::sender_socket(&self.parts.network) {
                    Ok(socket) => {
                        self.send_pacer(pacer::Command::SetSocket(socket));
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                };
                return Some(Input::SocketBuilt(result));
            }
            Effect::Live { conn, note } => {
                if let Some(live) = self.live.get(&conn) {
                    let (method, params) = match note {
                        LiveNote::Playing { zone } => (LIVE_PLAYING, serde_json::to_value(LivePlaying { zone })),
                        LiveNote::Ended { outcome, error } => (LIVE_ENDED, serde_json::to_value(LiveEnded { outcome, error })),
                    };
                    crate::live::notify(&live.notify, method, params.unwrap_or_default());
                }
            }
            Effect::LiveDone { conn } => {
                self.live.remove(&conn);
            }
        }
        None
    }

    /// Never waits: a command the pacer's bounded queue cannot take now
    /// waits here, in order, and goes at the next input or timeout.
    fn send_pacer(&mut self, command: pacer::Command) {
        self.pacer_backlog.push_back(command);
        self.flush_pacer();
    }

    pub fn flush_pacer(&mut self) {
        while let Some(command) = self.pacer_backlog.pop_front() {
            match self.parts.pacer.try_send(command) {
                Ok(()) => {}
                Err(std_mpsc::TrySendError::Full(command)) => {
                    self.pacer_backlog.push_front(command);
                    return;
                }
                Err(std_mpsc::TrySendError::Disconnected(_)) => {
                    self.pacer_backlog.clear();
                    return;
                }
            }
        }
    }

    /// Commands wait for room in the pacer's queue.
    pub fn pacer_waiting(&self) -> bool {
        !self.pacer_backlog.is_empty()
    }

    fn spawn(&mut self, program: ProgramId, worker: super::core::WorkerSpec) -> Option<Input> {
        let urgent = worker.urgent;
        let live = worker.live.and_then(|conn| self.live.get_mut(&conn)).and_then(|c| c.input.take());
        let spec = links::program_spec(worker, &self.parts.loudness, live);
        let handle = match crate::program::spawn(spec) {
            Ok(handle) => handle,
            Err(e) => return Some(Input::SpawnFailed { program, error: e.to_string() }),
        };
        let (frames, events, control) = handle.into_parts();
        self.frames.insert(program, frames);
        self.workers.insert(program, control);
        let lane = if urgent { self.lanes.urgent.clone() } else { self.lanes.normal.clone() };
        // The worker's events arrive on a std channel; a blocking task
        // forwards them until the worker ends.
        tokio::task::spawn_blocking(move || {
            for event in events {
                if lane.send(ShellMsg::Worker { program, event }).is_err() {
                    break;
                }
            }
        });
        None
    }

    fn store_write(&self, write: StoreWrite) {
        let store = &self.parts.store;
        match write {
            StoreWrite::Begin { key, row } => store.begin_row(key, row),
            StoreWrite::Hash { key, sha256 } => store.set_row_hash(key, sha256),
            StoreWrite::Skipped { key, skipped_ms } => store.set_row_skipped(key, skipped_ms),
            StoreWrite::Finish { key, end, outcome, error } => store.finish_row(key, end, outcome, error),
            StoreWrite::Record { row, outcome, error } => store.record_row(row, outcome, error),
            StoreWrite::LastFire { schedule, at } => store.write("remember a fire", move |s| s.set_last_fire(&schedule, at)),
            // A failed write waits and is reported like any other.
            StoreWrite::Loudness { sha256, measured, at } => {
                store.write("remember an item's loudness", move |s| s.put_loudness(&sha256, &measured, at))
            }
        }
    }

    fn store_call(&self, request: RequestId, call: StoreCall) {
        let store = self.parts.store.clone();
        let lanes = self.lanes.clone();
        tokio::spawn(async move {
            let result = match call {
                StoreCall::SaveSchedule(record) => store.call(move |s| s.save_schedule(&record)).await.map(|_| Stored::Done),
                StoreCall::DeleteSchedule(name) => store.call(move |s| s.delete_schedule(&name)).await.map(|_| Stored::Done),
                StoreCall::SetScheduleEnabled { name, enabled } => {
                    store.call(move |s| s.set_schedule_enabled(&name, enabled)).await.map(|_| Stored::Done)
                }
                StoreCall::SavePlaylist(record) => store.call(move |s| s.save_playlist(&record)).await.map(|_| Stored::Done),
                StoreCall::History { since, limit } => {
                    store.call(move |s| s.history(&HistoryQuery { since, limit })).await.map(Stored::History)
                }
            };
            lanes.input(Input::Stored { request, result: result.map_err(|e| e.to_string()) });
        });
    }

    fn snapshot(&self, request: RequestId) {
        let health = self.parts.health.clone();
        let state = self.parts.store.health.snapshot();
        let history = crate::proto::status::HistoryHealth {
            write_errors: state.write_errors,
            last_error: state.last_error,
            failing: state.failing.map(|f| crate::proto::status::Failing { since: f.since, problem: f.problem }),
            waiting_writes: state.waiting_writes,
            lost_writes: state.lost_writes,
            lost_rows: state.lost_rows,
            lost_since: state.lost_since,
            caught_up_at: state.caught_up_at,
            path: self.parts.store.path.display().to_string(),
        };
        let sap = self.parts.sap.status();
        let lanes = self.lanes.clone();
        tokio::spawn(async move {
            let (endpoints, unauthenticated) = health.snapshot().await;
            let endpoints = endpoints
                .into_iter()
                .filter_map(|row| match serde_json::from_value(row) {
                    Ok(endpoint) => Some(endpoint),
                    Err(e) => {
                        tracing::error!("an endpoint's health does not read as the protocol's: {e}");
                        None
                    }
                })
                .collect();
            lanes.input(Input::Snapshot { request, snapshot: Snapshot { endpoints, history, sap, unauthenticated } });
        });
    }

    /// Reads the config file off the engine task; `request` None is SIGHUP.
    pub fn load_config(&self, request: Option<RequestId>, caller: Option<Caller>) {
        let path = self.parts.config_path.clone();
        let lanes = self.lanes.clone();
        tokio::task::spawn_blocking(move || {
            let result = Config::load(&path);
            lanes.input(Input::ConfigLoaded { request, caller, result });
        });
    }

    /// SIGTERM: programs stop (rows closed), the pacer says BYE.
    pub fn shutdown(&mut self) {
        self.input(Input::Shutdown);
    }
}
