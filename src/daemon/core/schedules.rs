//! Schedules: fires prepared `PREPARE_LEAD` ahead and put on air at their
//! instant, misfires, the "still on" rule, and the `schedule.*` requests.
//! Every schedule, from the config, a request or the database, passes
//! `config::schedule::check`.

use std::time::Duration;

use jiff::Timestamp;

use super::io::{Effect, ItemSource, Job, RequestId, Resolved, StoreCall, StoreWrite};
use super::programs::NewProgram;
use super::state::{JobFor, Origin, Pending, ScheduleDef};
use super::{Core, PREPARE_LEAD, TICK};
use crate::config::schedule::{check, duration_words, Known, ScheduleFields};
use crate::config::{Schedule, ScheduleTarget, ZoneSelection};
use crate::daemon::server::Caller;
use crate::daemon::tasks::store::RowStart;
use crate::proto::schedule::{ScheduleAddParams, ScheduleChanged, ScheduleInfo, ScheduleList, ScheduleRemoved, ScheduleSource};
use crate::proto::text::{humanize, local_time};
use crate::proto::{Outcome, ProgramId, Response, RpcError};
use crate::schedule::{Due, DueKind, ScheduleEntry};
use crate::store::ScheduleRecord;

impl Core {
    pub(super) fn install_schedule(&mut self, def: ScheduleDef, last_fire: Option<Timestamp>) {
        self.cancel_prepared(&def.spec.name);
        let entry = ScheduleEntry {
            name: def.spec.name.clone(),
            cron: def.spec.cron.clone(),
            enabled: def.spec.enabled,
            misfire_grace: def.spec.misfire_grace,
        };
        self.scheduler.upsert(entry, last_fire, self.now.wall);
        self.schedules.insert(def.spec.name.clone(), def);
        self.schedule_wake = None;
    }

    /// A runtime schedule read back from the database, through the same
    /// rules as when it was added: one that breaks them is not installed,
    /// and the log says why with its name.
    pub(super) fn restore_schedule(&mut self, record: ScheduleRecord, last_fire: Option<Timestamp>) {
        let (max, grace) = (record.max_duration_secs.map(|s| format!("{s}s")), format!("{}s", record.misfire_grace_secs));
        let all = record.zones.len() == 1 && record.zones[0] == "all";
        let fields = ScheduleFields {
            name: &record.name,
            cron: &record.cron,
            playlist: record.playlist.as_deref(),
            file: record.file.as_deref(),
            say: record.say.as_deref(),
            voice: record.voice.as_deref(),
            zones: (!all).then_some(&record.zones[..]),
            priority: Some(record.priority.as_str()),
            max_duration: max.as_deref(),
            misfire_grace: Some(&grace),
            on_preempt: Some(&record.on_preempt),
            on_busy: Some(&record.on_busy),
            enabled: record.enabled,
        };
        let zones = self.live_zone_names();
        let playlists = self.playlist_names();
        match check(&fields, Known { zones: &zones, playlists: &playlists }) {
            Ok(spec) => self.install_schedule(ScheduleDef { spec, runtime: true }, last_fire),
            Err(errors) => {
                let why = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                tracing::error!(
                    schedule = record.name,
                    "saved schedule \"{}\" cannot be used, so it is not installed: {why}; remove it with `loa schedule remove {}`",
                    record.name,
                    record.name
                );
                self.broken.insert(record.name.clone(), why);
            }
        }
    }

    /// Works out when the schedules next need a look: a fire to prepare
    /// (`PREPARE_LEAD` ahead), a fire to confirm, at least once a `TICK`
    /// so a wall-clock jump is noticed. Kept until something changes or it
    /// is reached (evaluating cron expressions after every input would cost
    /// more than all the rest with many programs).
    pub(super) fn refresh_schedule_wake(&mut self) {
        if self.schedule_wake.is_some_and(|wake| wake > self.now.mono) {
            return;
        }
        let (mono, wall) = (self.now.mono, self.now.wall);
        let mut wake = mono + TICK;
        for (name, at) in self.scheduler.upcoming(wall, 4) {
            let until = Duration::try_from(at.duration_since(wall)).unwrap_or(Duration::ZERO);
            let key = (name, at);
            let deferred = self.deferred.contains(&key);
            let until = if deferred && self.schedule_busy(&key.0).is_none() {
                // Its previous broadcast has ended: prepare it now.
                Duration::ZERO
            } else if deferred || self.prepared.contains_key(&key) || self.unprepared.contains(&key) {
                until
            } else {
                until.saturating_sub(PREPARE_LEAD)
            };
            wake = wake.min(mono + until);
        }
        self.schedule_wake = Some(wake);
    }

    /// Prepares fires due within `PREPARE_LEAD`, then handles what the
    /// scheduler says is due now (fires, misfires).
    pub(super) fn on_schedule_timer(&mut self) {
        let (mono, now) = (self.now.mono, self.now.wall);
        let lead = jiff::SignedDuration::try_from(PREPARE_LEAD).unwrap_or_default();
        self.unprepared.retain(|(_, at)| *at > now);
        self.deferred.retain(|(_, at)| *at > now);
        for (name, at) in self.scheduler.upcoming(now, 8) {
            let key = (name.clone(), at);
            if at <= now || at > now + lead || self.prepared.contains_key(&key) || self.unprepared.contains(&key) {
                continue;
            }
            let Some(def) = self.schedules.get(&name).cloned() else {
                continue;
            };
            if self.schedule_busy(&name).is_some() {
                // The previous broadcast is still on: looked at again at
                // least once a TICK and when a program of this schedule
                // ends, so a fire whose previous broadcast ends within the
                // lead is still prepared and on time; still on at the
                // instant, the fire is a missed row.
                self.deferred.insert(key);
                continue;
            }
            self.deferred.remove(&key);
            let until = Duration::try_from(at.duration_since(now)).unwrap_or_default();
            match self.fire_schedule(&def.spec, Some(mono + until)) {
                Ok(id) => {
                    self.prepared.insert(key, id);
                }
                Err(e) => {
                    tracing::error!(schedule = name, "cannot start: {}", e.message);
                    self.unprepared.insert(key);
                }
            }
        }
        while let Some(due) = self.scheduler.poll(now) {
            self.handle_due(due);
        }
    }

    /// The program of this schedule still on (or preparing), if any.
    pub(super) fn schedule_busy(&self, name: &str) -> Option<ProgramId> {
        self.programs.values().find(|p| p.origin.is_schedule(name)).map(|p| p.id)
    }

    fn missed_row(&mut self, def: &ScheduleDef, at: Timestamp, message: String) {
        tracing::warn!(schedule = def.spec.name, "{message}");
        let row = RowStart {
            program: None,
            program_name: def.spec.name.clone(),
            source: self.target_text(&def.spec.target),
            sha256: None,
            zones: self.selection_names(&def.spec.zones),
            priority: def.spec.priority,
            origin: Origin::Schedule(def.spec.name.clone()).text(),
            caller_uid: None,
            caller_pid: None,
            start: at,
        };
        self.store_record(row, Outcome::Missed, Some(message));
    }

    fn handle_due(&mut self, due: Due) {
        let Some(def) = self.schedules.get(&due.name).cloned() else {
            return;
        };
        let now = self.now.wall;
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
        let (schedule, at) = (due.name, due.scheduled);
        self.emit(Effect::Store(StoreWrite::LastFire { schedule, at }));
    }

    fn fire_schedule(&mut self, spec: &Schedule, start_at: Option<std::time::Instant>) -> Result<ProgramId, RpcError> {
        let zones = self.config_zones(&spec.zones)?;
        let origin = Origin::Schedule(spec.name.clone());
        let mut new = NewProgram {
            name: spec.name.clone(),
            priority: spec.priority,
            origin,
            zones,
            looped: false,
            on_busy: spec.on_busy,
            on_preempt: spec.on_preempt,
            max_duration: spec.max_duration,
            start_at,
            reply: None,
            live: None,
            label: None,
        };
        let source = match &spec.target {
            ScheduleTarget::Say { text, voice } => {
                let voice = voice.clone().unwrap_or_else(|| self.config.tts.voice.clone());
                new.label = Some(crate::media::tts::label(&voice, text));
                self.speech(voice, text.clone())
            }
            ScheduleTarget::File(path) => ItemSource::Config(path.clone()),
            ScheduleTarget::Playlist(name) => {
                let (source, looped) = self.playlist_source(name)?;
                new.looped = looped;
                source
            }
        };
        tracing::info!(schedule = spec.name, "fires on {}", self.zone_list(&new.zones));
        Ok(self.create(new, source))
    }

    /// Drops fires of `name` prepared but not yet on air.
    fn cancel_prepared(&mut self, name: &str) {
        let ids: Vec<ProgramId> = self.prepared.iter().filter(|((n, _), _)| n == name).map(|(_, &id)| id).collect();
        self.prepared.retain(|(n, _), _| n != name);
        self.unprepared.retain(|(n, _)| n != name);
        self.deferred.retain(|(n, _)| n != name);
        self.schedule_wake = None;
        for id in ids {
            if self.programs.get(&id).is_some_and(|p| p.phase != super::state::Phase::Admitted) {
                self.forget(id);
            }
        }
    }

    fn remove_schedule(&mut self, name: &str) -> bool {
        self.cancel_prepared(name);
        self.scheduler.remove(name);
        self.schedule_wake = None;
        self.schedules.remove(name).is_some()
    }

    pub(super) fn reload_schedules(&mut self, new: &[Schedule]) {
        // Config schedules are replaced; runtime ones stay.
        let old: Vec<String> = self.schedules.values().filter(|d| !d.runtime).map(|d| d.spec.name.clone()).collect();
        for name in old {
            if !new.iter().any(|s| s.name == name) {
                self.remove_schedule(&name);
            }
        }
        for schedule in new {
            let unchanged = self.schedules.get(&schedule.name).is_some_and(|d| !d.runtime && d.spec == *schedule);
            if !unchanged {
                self.install_schedule(ScheduleDef { spec: schedule.clone(), runtime: false }, None);
            }
        }
    }

    // ------------------------------------------------------------ requests

    pub(super) fn schedule_add(&mut self, request: RequestId, caller: Caller, p: ScheduleAddParams) {
        if let Some(existing) = self.schedules.get(&p.name) {
            let message = if existing.runtime {
                format!("schedule \"{}\" exists; remove it first", p.name)
            } else {
                format!("schedule \"{}\" is defined in {}; change it there and reload", p.name, self.config_path.display())
            };
            return self.reply(request, Err(RpcError::refused(message)));
        }
        let names = match &p.zones {
            crate::proto::ZoneSelection::All => None,
            crate::proto::ZoneSelection::Named(names) => Some(&names[..]),
        };
        let (max, grace) = (p.max_duration.map(|d| duration_words(d.0)), p.misfire_grace.map(|d| duration_words(d.0)));
        let fields = ScheduleFields {
            name: &p.name,
            cron: &p.cron,
            playlist: p.playlist.as_deref(),
            file: p.file.as_deref(),
            say: p.say.as_deref(),
            voice: p.voice.as_deref(),
            zones: names,
            priority: p.priority.map(|v| v.as_str()),
            max_duration: max.as_deref(),
            misfire_grace: grace.as_deref(),
            on_preempt: p.on_preempt.map(|v| v.as_str()),
            on_busy: p.on_busy.map(|v| v.as_str()),
            enabled: p.enabled,
        };
        let zones = self.live_zone_names();
        let playlists = self.playlist_names();
        let schedule = match check(&fields, Known { zones: &zones, playlists: &playlists }) {
            Ok(schedule) => schedule,
            Err(errors) => {
                let text = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                return self.reply(request, Err(RpcError::invalid_params(format!("schedule.add: {text}"))));
            }
        };
        match &schedule.target {
            // A file from a client must be inside the media roots: checked
            // off the engine task, installed when the answer comes.
            ScheduleTarget::File(path) => {
                let job = Job::SocketPath { path: path.to_string_lossy().into_owned(), media_roots: self.config.daemon.media_roots.clone() };
                self.job(JobFor::ScheduleFile { request, caller, schedule: Box::new(schedule) }, job);
            }
            _ => self.add_runtime_schedule(request, caller, schedule),
        }
    }

    pub(super) fn schedule_file_resolved(&mut self, request: RequestId, caller: Caller, mut schedule: Schedule, result: Result<Resolved, String>) {
        match result {
            Ok(Resolved::Path(path)) => {
                if self.schedules.contains_key(&schedule.name) {
                    let message = format!("schedule \"{}\" exists; remove it first", schedule.name);
                    return self.reply(request, Err(RpcError::refused(message)));
                }
                schedule.target = ScheduleTarget::File(path);
                self.add_runtime_schedule(request, caller, schedule);
            }
            Ok(_) => self.reply(request, Err(RpcError::internal("the file check answered something else"))),
            Err(message) => self.reply(request, Err(RpcError::refused(message))),
        }
    }

    fn add_runtime_schedule(&mut self, request: RequestId, caller: Caller, spec: Schedule) {
        let record = record_of(&spec, caller);
        let name = spec.name.clone();
        tracing::info!(uid = caller.uid, pid = caller.pid, "schedule.add {name} \"{}\"", spec.cron.as_str());
        self.install_schedule(ScheduleDef { spec, runtime: true }, None);
        self.pending.insert(request, Pending::ScheduleAdded { name });
        self.emit(Effect::StoreCall { request, call: StoreCall::SaveSchedule(record) });
    }

    /// `schedule.remove`: runtime schedules only (and stored ones that
    /// could not be installed).
    pub(super) fn schedule_remove(&mut self, request: RequestId, caller: Caller, name: String) {
        if self.broken.remove(&name).is_none() {
            if let Err(e) = self.runtime_only(&name, "remove") {
                return self.reply(request, Err(e));
            }
            self.remove_schedule(&name);
        }
        tracing::info!(uid = caller.uid, pid = caller.pid, "schedule.remove {name}");
        self.pending.insert(request, Pending::ScheduleRemoved { name: name.clone() });
        self.emit(Effect::StoreCall { request, call: StoreCall::DeleteSchedule(name) });
    }

    pub(super) fn schedule_toggle(&mut self, request: RequestId, caller: Caller, name: String, enabled: bool) {
        let Some(def) = self.schedules.get_mut(&name) else {
            let e = RpcError::refused(format!("no schedule \"{name}\"; see `loa schedule list`"));
            return self.reply(request, Err(e));
        };
        def.spec.enabled = enabled;
        let runtime = def.runtime;
        if !enabled {
            self.cancel_prepared(&name);
        }
        self.scheduler.set_enabled(&name, enabled, self.now.wall);
        self.schedule_wake = None;
        tracing::info!(uid = caller.uid, pid = caller.pid, enabled, "schedule toggled: {name}");
        if !runtime {
            // Config schedules: the file stays the source of truth.
            let note = format!(
                "until the next reload or restart; set enabled = {enabled} in {} to keep it",
                self.config_path.display()
            );
            let schedule = self.schedule_info(&name).expect("installed");
            return self.reply(request, Ok(toggled(enabled, ScheduleChanged { schedule, note: Some(note) })));
        }
        self.pending.insert(request, Pending::ScheduleToggled { name: name.clone(), enabled });
        self.emit(Effect::StoreCall { request, call: StoreCall::SetScheduleEnabled { name, enabled } });
    }

    /// Answers a schedule request once the store saved it (or could not).
    pub(super) fn schedule_stored(&mut self, request: RequestId, pending: Pending, result: Result<(), String>) {
        let response = match (pending, result) {
            (Pending::ScheduleAdded { name }, Ok(())) => self
                .schedule_info(&name)
                .map(|schedule| Response::ScheduleAdd(ScheduleChanged { schedule, note: None }))
                .ok_or_else(|| RpcError::refused(format!("schedule \"{name}\" was removed meanwhile"))),
            (Pending::ScheduleAdded { name }, Err(e)) => Err(RpcError::internal(format!(
                "schedule \"{name}\" is active but was not saved, so it will be gone after a restart: {e}"
            ))),
            (Pending::ScheduleRemoved { name }, Ok(())) => Ok(Response::ScheduleRemove(ScheduleRemoved { removed: name })),
            (Pending::ScheduleRemoved { .. }, Err(e)) => {
                Err(RpcError::internal(format!("removed now, but the removal was not saved: {e}")))
            }
            (Pending::ScheduleToggled { name, enabled }, Ok(())) => self
                .schedule_info(&name)
                .map(|schedule| toggled(enabled, ScheduleChanged { schedule, note: None }))
                .ok_or_else(|| RpcError::refused(format!("schedule \"{name}\" was removed meanwhile"))),
            (Pending::ScheduleToggled { .. }, Err(e)) => Err(RpcError::internal(format!("changed now, but not saved: {e}"))),
            _ => return,
        };
        self.reply(request, response);
    }

    fn runtime_only(&self, name: &str, action: &str) -> Result<(), RpcError> {
        match self.schedules.get(name) {
            None => Err(RpcError::refused(format!("no schedule \"{name}\"; see `loa schedule list`"))),
            Some(d) if !d.runtime => Err(RpcError::refused(format!(
                "schedule \"{name}\" is defined in {}; {action} it there and reload",
                self.config_path.display()
            ))),
            Some(_) => Ok(()),
        }
    }

    pub(super) fn schedule_list(&mut self, request: RequestId) {
        let schedules = self.schedules.keys().filter_map(|name| self.schedule_info(name)).collect();
        self.reply(request, Ok(Response::ScheduleList(ScheduleList { schedules })));
    }

    fn schedule_info(&self, name: &str) -> Option<ScheduleInfo> {
        let d = self.schedules.get(name)?;
        let s = &d.spec;
        Some(ScheduleInfo {
            name: s.name.clone(),
            cron: s.cron.as_str().to_string(),
            target: self.target_text(&s.target),
            zones: match &s.zones {
                ZoneSelection::All => crate::proto::ZoneSelection::All,
                ZoneSelection::Named(n) => crate::proto::ZoneSelection::Named(n.clone()),
            },
            priority: s.priority,
            enabled: s.enabled,
            source: if d.runtime { ScheduleSource::Runtime } else { ScheduleSource::Config },
            max_duration_secs: s.max_duration.map(|d| d.as_secs()),
            misfire_grace_secs: s.misfire_grace.as_secs(),
            on_preempt: s.on_preempt,
            on_busy: s.on_busy,
            next: self.scheduler.next_fire(&s.name).map(|t| local_time(t, self.time_zone())),
        })
    }

    /// `[tts] voice` stands for a `say` target without its own voice.
    pub(super) fn target_text(&self, target: &ScheduleTarget) -> String {
        match target {
            ScheduleTarget::Playlist(p) => format!("playlist:{p}"),
            ScheduleTarget::File(f) => f.display().to_string(),
            ScheduleTarget::Say { text, voice } => {
                crate::media::tts::label(voice.as_deref().unwrap_or(&self.config.tts.voice), text)
            }
        }
    }

    pub(super) fn selection_names(&self, selection: &ZoneSelection) -> Vec<String> {
        match selection {
            ZoneSelection::All => self.live_zone_names(),
            ZoneSelection::Named(names) => names.clone(),
        }
    }
}

fn toggled(enabled: bool, changed: ScheduleChanged) -> Response {
    if enabled {
        Response::ScheduleEnable(changed)
    } else {
        Response::ScheduleDisable(changed)
    }
}

/// The database's copy of a runtime schedule.
fn record_of(spec: &Schedule, caller: Caller) -> ScheduleRecord {
    let target = |f: fn(&ScheduleTarget) -> Option<String>| f(&spec.target);
    ScheduleRecord {
        name: spec.name.clone(),
        cron: spec.cron.as_str().to_string(),
        playlist: target(|t| match t {
            ScheduleTarget::Playlist(p) => Some(p.clone()),
            _ => None,
        }),
        file: target(|t| match t {
            ScheduleTarget::File(f) => Some(f.display().to_string()),
            _ => None,
        }),
        say: target(|t| match t {
            ScheduleTarget::Say { text, .. } => Some(text.clone()),
            _ => None,
        }),
        voice: target(|t| match t {
            ScheduleTarget::Say { voice, .. } => voice.clone(),
            _ => None,
        }),
        zones: match &spec.zones {
            ZoneSelection::All => vec!["all".into()],
            ZoneSelection::Named(n) => n.clone(),
        },
        priority: spec.priority,
        max_duration_secs: spec.max_duration.map(|d| d.as_secs()),
        misfire_grace_secs: spec.misfire_grace.as_secs(),
        enabled: spec.enabled,
        on_preempt: spec.on_preempt.as_str().into(),
        on_busy: spec.on_busy.as_str().into(),
        created_by: Some(caller.uid),
    }
}
