//! The control requests, typed: what each asks, checked in plain words,
//! and the answer now or once the store, a snapshot or a resolution job
//! has spoken.

use super::io::{Effect, ItemSource, Job, RequestId, Resolved, Snapshot, SpeakersCall, StoreCall, Stored};
use super::programs::NewProgram;
use super::state::{JobFor, Origin, Pending};
use super::Core;
use crate::daemon::server::Caller;
use crate::proto::broadcast::{LiveStartParams, StartParams, StartWhat, StopParams, StopWhat, Stopped};
use crate::proto::health::{EndpointList, EndpointsParams};
use crate::proto::history::{History, HistoryParams};
use crate::proto::playlist::{PlaylistList, PlaylistLoadParams, PlaylistLoaded};
use crate::proto::{OnBusy, OnPreempt, Priority, Request, Response, RpcError};
use crate::store::PlaylistRecord;

impl Core {
    pub(super) fn request(&mut self, id: RequestId, caller: Caller, request: Request) {
        match request {
            Request::Status(_) => self.ask_snapshot(id, Pending::Status),
            Request::EndpointsList(p) => self.endpoints(id, p.0),
            Request::EndpointsSubscribe(p) => self.endpoints(id, p.0),
            Request::Start(p) => self.start(id, caller, p),
            Request::Stop(p) => self.stop_request(id, caller, p),
            Request::ScheduleList(_) => self.schedule_list(id),
            Request::ScheduleAdd(p) => self.schedule_add(id, caller, p),
            Request::ScheduleRemove(p) => self.schedule_remove(id, caller, p.0.name),
            Request::ScheduleEnable(p) => self.schedule_toggle(id, caller, p.0.name, true),
            Request::ScheduleDisable(p) => self.schedule_toggle(id, caller, p.0.name, false),
            Request::PlaylistList(_) => self.playlist_list(id),
            Request::PlaylistLoad(p) => self.playlist_load(id, caller, p),
            Request::Reload(_) => self.emit(Effect::LoadConfig { request: Some(id), caller: Some(caller) }),
            Request::History(p) => self.history(id, p),
            Request::SpeakersAdd(p) => self.speakers_add(id, caller, p),
            Request::SpeakersList(_) => self.emit(Effect::Speakers { request: id, call: SpeakersCall::List }),
            Request::SpeakersRevoke(p) => self.speakers_revoke(id, caller, p),
            // The shell answers it from the key rings; never sent here.
            Request::ZoneKeys(_) => self.reply(id, Err(RpcError::internal("zone.keys reached the engine"))),
            // A stream method: only the first request of a connection, and
            // the server hands those over as `Input::LiveStart`.
            Request::LiveStart(_) => {
                self.reply(id, Err(RpcError::invalid_request("live.start must be the first request on its connection")))
            }
        }
    }

    fn ask_snapshot(&mut self, id: RequestId, pending: Pending) {
        self.pending.insert(id, pending);
        self.emit(Effect::Snapshot { request: id });
    }

    pub(super) fn snapshot(&mut self, id: RequestId, snapshot: Snapshot) {
        match self.pending.remove(&id) {
            Some(Pending::Status) => {
                let status = self.status(snapshot);
                self.reply(id, Ok(Response::Status(status)));
            }
            Some(Pending::Endpoints { zone }) => {
                let endpoints = snapshot.endpoints.into_iter().filter(|e| zone.as_ref().is_none_or(|z| &e.zone == z)).collect();
                self.reply(id, Ok(Response::EndpointsList(EndpointList { endpoints })));
            }
            Some(other) => {
                self.pending.insert(id, other);
            }
            None => {}
        }
    }

    /// Every speaker's health (optionally one zone's). For
    /// `endpoints.subscribe` the server then pushes `endpoints.changed`.
    fn endpoints(&mut self, id: RequestId, p: EndpointsParams) {
        if let Some(zone) = &p.zone {
            if let Err(e) = self.zone_named(zone) {
                return self.reply(id, Err(e));
            }
        }
        self.ask_snapshot(id, Pending::Endpoints { zone: p.zone });
    }

    /// `broadcast.start`: answered once on air (or waiting for its zones).
    fn start(&mut self, id: RequestId, caller: Caller, p: StartParams) {
        let result = (|| {
            let what = p.what().map_err(RpcError::invalid_params)?;
            let zones = self.select_zones(&p.zones)?;
            let mut new = NewProgram {
                name: p.name.clone().unwrap_or_else(|| "play".into()),
                // Ad-hoc broadcasts are announcements unless said otherwise:
                // they take the zones from the schedule, not from live or
                // emergency.
                priority: p.priority.unwrap_or(Priority::Announcement),
                origin: Origin::Caller(caller),
                zones,
                looped: p.looped,
                on_busy: p.on_busy.unwrap_or(OnBusy::Wait),
                on_preempt: OnPreempt::Pause,
                max_duration: p.max_duration.map(|d| d.0),
                start_at: None,
                reply: Some(id),
                live: None,
                label: None,
            };
            let source = match what {
                StartWhat::Say { text, voice } => {
                    crate::proto::say::check_text(&text).map_err(RpcError::invalid_params)?;
                    let voice = voice.unwrap_or_else(|| self.config.tts.voice.clone());
                    crate::proto::say::check_voice(&voice).map_err(RpcError::invalid_params)?;
                    new.name = p.name.clone().unwrap_or_else(|| "say".into());
                    new.label = Some(crate::media::tts::label(&voice, &text));
                    tracing::info!(uid = caller.uid, pid = caller.pid, priority = %new.priority, "broadcast.start {}: say {} chars", new.name, text.chars().count());
                    self.speech(voice, text)
                }
                StartWhat::Files(files) => {
                    tracing::info!(uid = caller.uid, pid = caller.pid, priority = %new.priority, "broadcast.start {}: {} item(s)", new.name, files.len());
                    ItemSource::Socket(files)
                }
                StartWhat::Playlist(name) => {
                    let (source, looped) = self.playlist_source(&name)?;
                    new.looped |= looped;
                    new.name = p.name.clone().unwrap_or(name);
                    tracing::info!(uid = caller.uid, pid = caller.pid, priority = %new.priority, "broadcast.start {}: playlist", new.name);
                    source
                }
            };
            Ok((new, source))
        })();
        match result {
            Ok((new, source)) => {
                self.create(new, source);
            }
            Err(e) => self.reply(id, Err(e)),
        }
    }

    /// `live.start`: a program whose item is the PCM on the connection.
    pub(super) fn live_start(&mut self, id: RequestId, caller: Caller, p: LiveStartParams, conn: super::ConnId) {
        let result = (|| {
            let format = crate::media::PcmFormat { encoding: p.format, rate: p.rate, channels: p.channels };
            format.check().map_err(RpcError::invalid_params)?;
            let zones = self.select_zones(&p.zones)?;
            let priority = p.priority.unwrap_or(Priority::Live);
            if priority < Priority::Live {
                return Err(RpcError::invalid_params(format!(
                    "live input goes on air as live or emergency, not {priority}; use loa play for recorded {priority} broadcasts"
                )));
            }
            // The source text goes into history: printable, short.
            let source: String =
                p.source.clone().unwrap_or_else(|| "stdin".into()).chars().filter(|c| !c.is_control()).take(80).collect();
            let label = format!("live:{source} {format}");
            let name = p.name.clone().unwrap_or_else(|| "live".into());
            tracing::info!(uid = caller.uid, pid = caller.pid, priority = %priority, "live.start {name}: {label}");
            Ok(NewProgram {
                name,
                priority,
                origin: Origin::Caller(caller),
                zones,
                looped: false,
                // Behind an emergency the client says WAITING.
                on_busy: OnBusy::Wait,
                on_preempt: OnPreempt::Pause,
                max_duration: p.max_duration.map(|d| d.0),
                start_at: None,
                reply: Some(id),
                live: Some(conn),
                label: Some(label),
            })
        })();
        match result {
            Ok(new) => {
                self.create(new, ItemSource::Live);
            }
            Err(e) => {
                self.reply(id, Err(e));
                self.emit(Effect::LiveDone { conn });
            }
        }
    }

    fn stop_request(&mut self, id: RequestId, caller: Caller, p: StopParams) {
        let ids = match p.what().map_err(RpcError::invalid_params) {
            Err(e) => return self.reply(id, Err(e)),
            Ok(StopWhat::Program(program)) if !self.programs.contains_key(&program) => {
                let e = RpcError::refused(format!("no program #{program} is playing or waiting; see `loa status`"));
                return self.reply(id, Err(e));
            }
            Ok(StopWhat::Program(program)) => vec![program],
            Ok(StopWhat::Zone(zone)) => match self.zone_named(&zone) {
                // What plays or waits there: a programme's branch for that
                // zone, not the programme on its other zones.
                Ok(zone) => self.programs.values().filter(|p| p.zones.contains(&zone)).map(|p| p.id).collect(),
                Err(e) => return self.reply(id, Err(e)),
            },
            Ok(StopWhat::All) => self.programs.keys().copied().collect(),
        };
        let stopped = self.stop(ids, &format!("stopped by uid {}", caller.uid));
        tracing::info!(uid = caller.uid, pid = caller.pid, "broadcast.stop: {stopped:?}");
        self.reply(id, Ok(Response::Stop(Stopped { stopped })));
    }

    /// Speech for espeak-ng, synthesised by the resolution job.
    pub(super) fn speech(&self, voice: String, text: String) -> ItemSource {
        ItemSource::Speech { tts: self.config.tts.clone(), voice, text, dir: self.config.daemon.state_dir.join("tts") }
    }

    /// A named playlist's items (to be resolved) and whether it loops.
    pub(super) fn playlist_source(&self, name: &str) -> Result<(ItemSource, bool), RpcError> {
        if let Some(p) = self.config.playlist(name) {
            return Ok((ItemSource::Playlist(p.clone()), p.looped));
        }
        if let Some(p) = self.runtime_playlists.get(name) {
            return Ok((ItemSource::Runtime(p.items.clone()), false));
        }
        Err(RpcError::refused(format!("unknown playlist \"{name}\"; playlists: {}", self.playlist_names().join(", "))))
    }

    pub(super) fn playlist_names(&self) -> Vec<String> {
        self.config.playlists.iter().map(|p| p.name.clone()).chain(self.runtime_playlists.keys().cloned()).collect()
    }

    fn playlist_list(&mut self, id: RequestId) {
        let job = Job::PlaylistListing {
            config: self.config.playlists.clone(),
            runtime: self.runtime_playlists.values().cloned().collect(),
            media_roots: self.config.daemon.media_roots.clone(),
        };
        self.job(JobFor::PlaylistListing { request: id }, job);
    }

    pub(super) fn playlists_listed(&mut self, id: RequestId, result: Result<Resolved, String>) {
        let result = match result {
            Ok(Resolved::Listing(playlists)) => Ok(Response::PlaylistList(PlaylistList { playlists })),
            Ok(_) => Err(RpcError::internal("the playlist listing answered something else")),
            Err(e) => Err(RpcError::internal(e)),
        };
        self.reply(id, result);
    }

    fn playlist_load(&mut self, id: RequestId, caller: Caller, p: PlaylistLoadParams) {
        if !crate::config::name_ok(&p.name) {
            let e = RpcError::invalid_params(format!(
                "playlist name \"{}\" may only use letters A–Z, a–z, digits 0–9, '-' and '_'",
                p.name
            ));
            return self.reply(id, Err(e));
        }
        if self.config.playlist(&p.name).is_some() {
            let e = RpcError::refused(format!(
                "playlist \"{}\" is defined in {}; choose another name",
                p.name,
                self.config_path.display()
            ));
            return self.reply(id, Err(e));
        }
        let job = Job::PlaylistLoad { file: p.file, media_roots: self.config.daemon.media_roots.clone() };
        self.job(JobFor::PlaylistLoad { request: id, caller, name: p.name }, job);
    }

    pub(super) fn playlist_loaded(&mut self, id: RequestId, caller: Caller, name: String, result: Result<Resolved, String>) {
        let (file, items, missing) = match result {
            Ok(Resolved::Playlist { file, items, missing }) => (file, items, missing),
            Ok(_) => return self.reply(id, Err(RpcError::internal("the playlist check answered something else"))),
            Err(e) => return self.reply(id, Err(RpcError::refused(e))),
        };
        tracing::info!(uid = caller.uid, pid = caller.pid, "playlist.load {name} from {} ({} items)", file.display(), items.len());
        let record = PlaylistRecord {
            name: name.clone(),
            source: file.display().to_string(),
            items: items.clone(),
            loaded_by: Some(caller.uid),
            loaded_at: self.now.wall,
        };
        self.runtime_playlists.insert(name.clone(), record.clone());
        self.pending.insert(id, Pending::PlaylistLoaded { name, items: items.len(), missing });
        self.emit(Effect::StoreCall { request: id, call: StoreCall::SavePlaylist(record) });
    }

    fn history(&mut self, id: RequestId, p: HistoryParams) {
        let since = match p.since.as_deref().map(|s| (s, parse_since(s, self.time_zone(), self.now.wall))) {
            None => None,
            Some((_, Some(t))) => Some(t),
            Some((s, None)) => {
                let e = RpcError::invalid_params(format!(
                    "since \"{s}\" is not a date; write e.g. 2026-11-27, \"2026-11-27 06:00\" or 2h"
                ));
                return self.reply(id, Err(e));
            }
        };
        self.pending.insert(id, Pending::History);
        let call = StoreCall::History { since, limit: p.limit.or(Some(1000)) };
        self.emit(Effect::StoreCall { request: id, call });
    }

    pub(super) fn stored(&mut self, id: RequestId, result: Result<Stored, String>) {
        let Some(pending) = self.pending.remove(&id) else { return };
        match (pending, result) {
            (Pending::History, Ok(Stored::History(rows))) => {
                let timezone = self.time_zone().iana_name().unwrap_or("UTC").to_string();
                self.reply(id, Ok(Response::History(History { timezone, rows })));
            }
            (Pending::History, Ok(_)) => self.reply(id, Err(RpcError::internal("the history answered something else"))),
            (Pending::History, Err(e)) => self.reply(id, Err(RpcError::internal(format!("cannot read the history: {e}")))),
            (Pending::PlaylistLoaded { name, items, missing }, result) => {
                let result = result
                    .map(|_| Response::PlaylistLoad(PlaylistLoaded { name, items, missing }))
                    .map_err(|e| RpcError::internal(format!("loaded now, but not saved: {e}")));
                self.reply(id, result);
            }
            (pending, result) => self.schedule_stored(id, pending, result.map(|_| ())),
        }
    }
}

/// `2026-11-27` (local midnight), `2026-11-27 06:00`, an RFC 3339 instant,
/// or an age such as `2h` / `3d` before `now`.
fn parse_since(text: &str, tz: &jiff::tz::TimeZone, now: jiff::Timestamp) -> Option<jiff::Timestamp> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Some(t);
    }
    if let Ok(dt) = text.replace(' ', "T").parse::<jiff::civil::DateTime>() {
        return dt.to_zoned_datetime(tz.clone()).ok().map(|z| z.timestamp());
    }
    if let Ok(d) = text.parse::<jiff::civil::Date>() {
        return d.to_zoned_datetime(tz.clone()).ok().map(|z| z.timestamp());
    }
    let text = text.trim();
    if let Some(days) = text.strip_suffix('d').and_then(|n| n.parse::<i64>().ok()) {
        return Some(now - jiff::SignedDuration::from_hours(24 * days));
    }
    let age = crate::config::parse_duration(text)?;
    Some(now - jiff::SignedDuration::try_from(age).ok()?)
}
