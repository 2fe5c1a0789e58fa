//! A program's life in the core: resolved, spawned, prepared, admitted by
//! the arbiter, on air item by item (history rows at air time), paused and
//! resumed, ended. Everything here decides; the shell does.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::io::{ChimeSource, Effect, HealthCmd, ItemSource, Job, LiveNote, PacerCmd, Resolved, StoreWrite, WorkerEvent, WorkerSpec};
use super::state::{CurrentItem, ItemInfo, JobFor, Origin, Phase, Program};
use super::{Core, ADMIT_AHEAD, LOOKAHEAD, PREFILL};
use crate::broadcast::arbiter::{Change, Request as ArbiterRequest};
use crate::config::Chime;
use crate::daemon::tasks::store::RowStart;
use crate::proto::broadcast::Started;
use crate::proto::text::{clock_text, humanize};
use crate::proto::{OnBusy, OnPreempt, Outcome, Priority, ProgramId, Response, RpcError, ZoneId};

/// What a new program is, before its items are resolved.
pub struct NewProgram {
    pub name: String,
    pub priority: Priority,
    pub origin: Origin,
    pub zones: Vec<ZoneId>,
    pub looped: bool,
    pub on_busy: OnBusy,
    pub on_preempt: OnPreempt,
    pub max_duration: Option<Duration>,
    pub start_at: Option<Instant>,
    pub reply: Option<super::RequestId>,
    pub live: Option<super::ConnId>,
    /// Label of the live item or of the speech to come.
    pub label: Option<String>,
}

impl Core {
    /// Creates a program and starts resolving its items; it spawns when
    /// they are known.
    pub(super) fn create(&mut self, new: NewProgram, source: ItemSource) -> ProgramId {
        let id = self.next_program_id();
        let mut labels = HashMap::new();
        let speech = match (&source, new.label) {
            (ItemSource::Live, Some(label)) => {
                labels.insert(crate::live::live_item(), label);
                None
            }
            (_, label) => label,
        };
        let program = Program {
            id,
            name: new.name,
            priority: new.priority,
            origin: new.origin,
            zones: new.zones,
            items: Vec::new(),
            labels,
            looped: new.looped,
            on_busy: new.on_busy,
            on_preempt: new.on_preempt,
            max_duration: new.max_duration,
            deadline: None,
            start_at: new.start_at,
            phase: Phase::Resolving,
            spawned: false,
            in_pacer: false,
            reply: new.reply,
            info: BTreeMap::new(),
            opened: 0,
            skipped: Vec::new(),
            current: None,
            first_packet: None,
            created: self.now.wall,
            live: new.live,
            speech,
            start: None,
            branch_of: None,
            open_branches: Vec::new(),
            parked: Vec::new(),
        };
        let chime = self.chime_for(program.priority);
        self.programs.insert(id, program);
        let job = Job::Items {
            items: source,
            chime,
            media_roots: self.config.daemon.media_roots.clone(),
            // Shuffles differ from play to play; the seed is an input.
            shuffle_seed: self.now.wall.as_nanosecond() as u64,
        };
        self.job(JobFor::Program(id), job);
        id
    }

    /// The chime before a program of `priority`, if any (resolved with its
    /// items: loa's own is written to state_dir by the shell when missing).
    fn chime_for(&self, priority: Priority) -> Option<ChimeSource> {
        match self.config.chime.for_priority(priority) {
            Chime::Off => None,
            Chime::File(path) => Some(ChimeSource::File(path.clone())),
            Chime::BuiltIn => Some(ChimeSource::BuiltIn { state_dir: self.config.daemon.state_dir.clone() }),
        }
    }

    pub(super) fn program_resolved(&mut self, id: ProgramId, result: Result<Resolved, String>) {
        let Some(program) = self.programs.get(&id) else {
            return; // stopped or cancelled while resolving
        };
        let (items, chime, rejected) = match result {
            Ok(Resolved::Items { items, chime, rejected }) => (items, chime, rejected),
            Ok(_) => (Vec::new(), None, Vec::new()),
            Err(message) => {
                if let Some(label) = program.speech.clone() {
                    let row = self.row_start(id, &label);
                    self.store_record(row, Outcome::Failed, Some(message.clone()));
                }
                return self.refuse(id, message);
            }
        };
        for (path, reason) in rejected {
            let row = self.row_start(id, &path.to_string_lossy());
            self.store_record(row, Outcome::Failed, Some(reason));
        }
        if items.is_empty() {
            return self.refuse(id, "nothing to play: no playable items".into());
        }
        let now = self.now.mono;
        let program = self.programs.get_mut(&id).expect("checked above");
        if let (Some(label), [speech]) = (program.speech.clone(), &items[..]) {
            program.labels.insert(speech.clone(), label);
        }
        // The pre-announcement chime is the program's first item: it is
        // preempted, resumed and recorded like any other (with --loop it
        // precedes every pass).
        program.items = chime.into_iter().chain(items).collect();
        // The fire time may have passed while this resolved: start now.
        program.start_at = program.start_at.filter(|&at| at > now);
        program.phase = Phase::Preparing;
        self.spawn(id);
    }

    pub(super) fn spawn(&mut self, id: ProgramId) {
        let frame = self.config.audio.frame.duration();
        let Some(program) = self.programs.get_mut(&id) else { return };
        let (queue_frames, prefill_frames) = if program.live.is_some() {
            // Every queued frame of live input is delay on the street: one
            // frame in the queue, one in the pacer's hand.
            (1, 1)
        } else {
            (
                (LOOKAHEAD.as_millis() / frame.as_millis()).max(2) as usize,
                (PREFILL.as_millis() / frame.as_millis()).max(1) as usize,
            )
        };
        program.spawned = true;
        let worker = WorkerSpec {
            items: program.items.clone(),
            audio: self.config.audio.clone(),
            queue_frames,
            prefill_frames,
            looped: program.looped,
            first_play_limit: if program.priority >= Priority::Live {
                crate::media::loudness::URGENT_FIRST_PLAY_LIMIT
            } else {
                crate::media::loudness::FIRST_PLAY_LIMIT
            },
            live: program.live,
            start: program.start.clone(),
            urgent: program.priority >= Priority::Live,
        };
        self.emit(Effect::Spawn { program: id, worker });
    }

    pub(super) fn spawn_failed(&mut self, id: ProgramId, error: String) {
        tracing::error!(program = %id, "cannot start the program's worker: {error}");
        self.refuse_with(id, RpcError::internal(error));
    }

    /// Ends a program that never reached the arbiter, answering its
    /// request with `message`.
    fn refuse(&mut self, id: ProgramId, message: String) {
        self.refuse_with(id, RpcError::refused(message));
    }

    fn refuse_with(&mut self, id: ProgramId, error: RpcError) {
        let Some(program) = self.programs.get_mut(&id) else { return };
        if program.reply.is_none() {
            tracing::error!(program = %id, name = program.name, "cannot start: {}", error.message);
        }
        if let Some(request) = program.reply.take() {
            self.reply(request, Err(error));
        }
        self.forget(id);
    }

    pub(super) fn worker_event(&mut self, id: ProgramId, event: WorkerEvent) {
        // A whole-file measurement may arrive after its program ended.
        if let WorkerEvent::Measured { sha256, measured } = event {
            let at = self.now.wall;
            return self.emit(Effect::Store(StoreWrite::Loudness { sha256, measured, at }));
        }
        let Some(program) = self.programs.get_mut(&id) else {
            return;
        };
        match event {
            WorkerEvent::ItemStarted { item, path, duration, sha256, gain_db } => {
                program.opened += 1;
                let live = crate::live::is_live_item(&path);
                program.info.insert(item, ItemInfo { path: path.clone(), duration, error: None, sha256: None, gain_db });
                match sha256 {
                    // The worker hashed it already (loudness lookup).
                    Some(sha256) => self.hashed(id, item, sha256),
                    // A live item is hashed by the worker as it reads.
                    None if live => {}
                    None => self.emit(Effect::Hash { program: id, item, path }),
                }
            }
            WorkerEvent::ItemSkipped { path, error, .. } => {
                tracing::warn!(program = %id, file = %path.display(), "skipped: {error}");
                program.skipped.push(format!("{}: {error}", path.display()));
                let source = program.labels.get(&path).cloned().unwrap_or_else(|| path.to_string_lossy().into_owned());
                let row = self.row_start(id, &source);
                self.store_record(row, Outcome::Failed, Some(error));
            }
            WorkerEvent::ItemEncoded { item, encoded, error, sha256 } => {
                if let (Some(error), Some(info)) = (error, program.info.get_mut(&item)) {
                    let message = format!("stopped at {}: {error}", clock_text(encoded));
                    tracing::warn!(program = %id, file = %info.path.display(), "{message}");
                    info.error = Some(message);
                }
                if let Some(sha256) = sha256 {
                    // A live item's hash is known only at its end.
                    self.hashed(id, item, sha256);
                }
            }
            WorkerEvent::Ready => self.ready(id),
            WorkerEvent::Measured { .. } | WorkerEvent::Finished => {}
        }
    }

    fn ready(&mut self, id: ProgramId) {
        let Some(program) = self.programs.get_mut(&id) else { return };
        if program.opened == 0 {
            // Every item failed to open: nothing will ever play.
            let reasons = program.skipped.join("; ");
            if program.branch_of.is_some() {
                // A branch past the programme's last item: nothing left to hear.
                tracing::info!(program = %id, "nothing of the programme was left for its cut zones");
                return self.end_program(id, Outcome::Completed, None, true);
            }
            return self.refuse(id, format!("nothing could be played: {reasons}"));
        }
        program.in_pacer = true;
        self.emit(Effect::Pacer(PacerCmd::AddProgram { program: id }));
        let (phase, start_at) = (self.programs[&id].phase, self.programs[&id].start_at);
        if phase == Phase::Admitted {
            // A branch: it holds its place in the arbiter already, and
            // takes the zones it was given while it prepared.
            let zones = self.arbiter.zones_of(id);
            for zone in zones {
                self.assign(zone, Some(id), None);
            }
            return;
        }
        self.programs.get_mut(&id).expect("checked above").phase = Phase::Prepared;
        // A timed start asks the arbiter shortly before its instant; the
        // pacer switches the zones on the tick of the instant.
        match start_at {
            Some(at) if at > self.now.mono + ADMIT_AHEAD => {}
            _ => self.admit(id),
        }
    }

    /// Timed admissions and max_duration cuts that are due.
    pub(super) fn programs_due(&mut self) {
        let now = self.now.mono;
        let due: Vec<ProgramId> = self.programs.values().filter(|p| p.timer().is_some_and(|t| t <= now)).map(|p| p.id).collect();
        for id in due {
            let Some(program) = self.programs.get(&id) else { continue };
            match program.phase {
                Phase::Prepared => self.admit(id),
                _ => {
                    let max = program.max_duration.map(humanize).unwrap_or_default();
                    self.end_program(id, Outcome::Stopped, Some(format!("cut at max_duration {max}")), false);
                }
            }
        }
    }

    /// The program asks the arbiter for its zones.
    pub(super) fn admit(&mut self, id: ProgramId) {
        let now = self.now.mono;
        let Some(program) = self.programs.get_mut(&id).filter(|p| p.phase == Phase::Prepared) else {
            return;
        };
        program.phase = Phase::Admitted;
        let at = program.start_at.filter(|&at| at > now);
        program.deadline = program.max_duration.map(|max| at.unwrap_or(now) + max);
        let request = ArbiterRequest {
            program: id,
            priority: program.priority,
            zones: program.zones.clone(),
            on_busy: program.on_busy,
            on_preempt: program.on_preempt,
        };
        match self.arbiter.request(request) {
            Ok(changes) => {
                self.apply_at(changes, at);
                let playing = self.arbiter.zones_of(id);
                let program = &self.programs[&id];
                let waiting: Vec<ZoneId> = program.zones.iter().copied().filter(|z| !playing.contains(z)).collect();
                tracing::info!(
                    program = %id,
                    name = program.name,
                    priority = %program.priority,
                    "on air on [{}]{}",
                    self.zone_list(&playing),
                    if waiting.is_empty() { String::new() } else { format!(", waiting for [{}]", self.zone_list(&waiting)) }
                );
                let started = Started { id, zones: self.names(&playing), waiting: self.names(&waiting) };
                if let Some(request) = self.programs.get_mut(&id).and_then(|p| p.reply.take()) {
                    self.reply(request, Ok(Response::Start(started)));
                }
            }
            Err(refused) => {
                let busy: Vec<String> = refused
                    .busy
                    .iter()
                    .map(|(zone, holder, priority)| {
                        let name = self.programs.get(holder).map_or("?", |p| p.name.as_str());
                        format!("{} is playing #{holder} {name} ({priority})", self.zone_name(*zone))
                    })
                    .collect();
                let message = format!("refused: {}", busy.join("; "));
                tracing::info!(program = %id, "{message}");
                let program = &self.programs[&id];
                let row = self.row_start(id, &items_text(&program.items, &program.labels));
                self.store_record(row, Outcome::Failed, Some(message.clone()));
                self.refuse(id, message);
            }
        }
    }

    /// Turns arbiter decisions into pacer commands and history.
    pub(super) fn apply(&mut self, changes: Vec<Change>) {
        self.apply_at(changes, None);
    }

    /// Like `apply`; zone changes take effect on the tick of `at` if given.
    fn apply_at(&mut self, changes: Vec<Change>, at: Option<Instant>) {
        for change in changes {
            match change {
                Change::Assign { zone, program } => self.assign(zone, program, at),
                Change::Paused { program } => {
                    tracing::info!(program = %program, "paused: a higher-priority program took its zones");
                }
                Change::Resumed { program } => {
                    tracing::info!(program = %program, "resumes where it paused");
                    self.resumed(program);
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

    /// `zone` plays `program` from the next tick (or `at`). A program the
    /// pacer does not have yet (a branch still preparing) leaves the zone
    /// silent until it is ready.
    fn assign(&mut self, zone: ZoneId, program: Option<ProgramId>, at: Option<Instant>) {
        let program = program.filter(|id| self.programs.get(id).is_some_and(|p| p.in_pacer));
        // Silence from speakers only means "offline" while the zone sends.
        let sending = program.is_some() && !self.net.is_down();
        let zone_name = self.zone_name(zone).to_string();
        self.emit(Effect::Health(HealthCmd::ZoneSending { zone: zone_name, sending }));
        let command = match at {
            Some(at) => PacerCmd::AssignAt { zone, program, at },
            None => PacerCmd::Assign { zone, program },
        };
        self.emit(Effect::Pacer(command));
    }

    pub(super) fn hashed(&mut self, id: ProgramId, item: usize, sha256: String) {
        let Some(program) = self.programs.get_mut(&id) else {
            return;
        };
        if let Some(info) = program.info.get_mut(&item) {
            info.sha256 = Some(sha256.clone());
        }
        if let Some(current) = program.current.as_ref().filter(|c| c.index == item) {
            let key = current.row;
            self.emit(Effect::Store(StoreWrite::Hash { key, sha256 }));
        }
    }

    pub(super) fn first_packet(&mut self, id: ProgramId, zone: ZoneId, at: Instant) {
        let now = self.now;
        let zone_name = self.zone_name(zone).to_string();
        let Some(program) = self.programs.get_mut(&id) else { return };
        if program.first_packet.is_none() {
            let late = now.mono.saturating_duration_since(at);
            program.first_packet = Some(now.wall - jiff::SignedDuration::try_from(late).unwrap_or_default());
        }
        // A branch has left its programme's family of waiting branches.
        let family = program.family();
        if let Some(root) = self.programs.get_mut(&family) {
            root.open_branches.retain(|(b, _)| *b != id);
        }
        tracing::debug!(program = %id, zone = zone_name, "first packet");
        if let Some(conn) = self.programs.get(&id).and_then(|p| p.live) {
            // A live client waiting for this zone hears that it has it.
            self.emit(Effect::Live { conn, note: LiveNote::Playing { zone: zone_name } });
        }
    }

    /// The pacer says where `id` is: a new item on air opens its history
    /// row (and closes the previous one, which played to its end).
    pub(super) fn progress(&mut self, id: ProgramId, item: usize, position: Duration) {
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
        if let Some(previous) = program.current.take() {
            let error = program.info.get(&previous.index).and_then(|i| i.error.clone());
            let outcome = if error.is_some() { Outcome::Failed } else { Outcome::Completed };
            let end = self.now.wall;
            self.emit(Effect::Store(StoreWrite::Finish { key: previous.row, end, outcome, error }));
        }
        let row = self.next_row_key();
        let program = &self.programs[&id];
        let info = program.info.get(&item);
        let path = info.map(|i| &i.path).unwrap_or(&program.items[item % program.items.len().max(1)]);
        let source = program.labels.get(path).cloned().unwrap_or_else(|| path.to_string_lossy().into_owned());
        let mut start = self.row_start(id, &source);
        start.sha256 = info.and_then(|i| i.sha256.clone());
        // Zones it actually plays on (a preempted zone is not listed).
        let playing = self.arbiter.zones_of(id);
        if !playing.is_empty() {
            start.zones = self.names(&playing);
        }
        tracing::info!(program = %id, row = %row, "on air: {source}");
        self.emit(Effect::Store(StoreWrite::Begin { key: row, row: start }));
        let program = self.programs.get_mut(&id).expect("checked above");
        program.current = Some(CurrentItem { index: item, row, position, skipped: Duration::ZERO });
        // Items before this one are done; keep the map small on long loops.
        program.info.retain(|&i, _| i >= item);
    }

    /// Ends a program: closes its row, frees its zones, stops its worker.
    /// `natural`: its queue ran dry after the last frame.
    pub(super) fn end_program(&mut self, id: ProgramId, outcome: Outcome, error: Option<String>, natural: bool) {
        let Some(mut program) = self.programs.remove(&id) else {
            return;
        };
        if matches!(program.origin, Origin::Schedule(_)) {
            // A fire deferred behind this broadcast may be prepared now.
            self.schedule_wake = None;
        }
        if let Some(current) = program.current.take() {
            let item_error = program.info.get(&current.index).and_then(|i| i.error.clone());
            let (outcome, error) = match (natural, item_error) {
                (true, Some(e)) => (Outcome::Failed, Some(e)),
                _ => (outcome, error.clone()),
            };
            let end = self.now.wall;
            self.emit(Effect::Store(StoreWrite::Finish { key: current.row, end, outcome, error }));
        } else if !natural && program.phase == Phase::Admitted {
            // Never got on air (waiting for its zones): still worth a row.
            let text = items_text(&program.items, &program.labels);
            let row = self.row_for(&program, &text);
            self.store_record(row, outcome, error.clone());
        }
        if let Some(conn) = program.live.take() {
            self.emit(Effect::Live { conn, note: LiveNote::Ended { outcome, error: error.clone() } });
            self.emit(Effect::LiveDone { conn });
        }
        if let Some(request) = program.reply.take() {
            let message = error.unwrap_or_else(|| "stopped before it went on air".into());
            self.reply(request, Err(RpcError::refused(message)));
        }
        tracing::info!(program = %id, name = program.name, outcome = outcome.as_str(), "program ended");
        self.stop_worker(&program);
        let changes = self.arbiter.release(id);
        self.apply(changes);
    }

    /// Drops a program that never reached the arbiter (refused, cancelled).
    pub(super) fn forget(&mut self, id: ProgramId) {
        if let Some(mut program) = self.programs.remove(&id) {
            if let Some(conn) = program.live.take() {
                self.emit(Effect::LiveDone { conn });
            }
            self.stop_worker(&program);
            let changes = self.arbiter.release(id);
            self.apply(changes);
        }
    }

    /// The pacer forgets the program's queue and its worker is cancelled.
    fn stop_worker(&mut self, program: &Program) {
        if program.in_pacer {
            self.emit(Effect::Pacer(PacerCmd::RemoveProgram { program: program.id }));
        }
        if program.spawned {
            self.emit(Effect::StopWorker { program: program.id });
        }
    }

    /// Stops programs (a programme with its branches); returns the ids.
    pub(super) fn stop(&mut self, ids: Vec<ProgramId>, reason: &str) -> Vec<ProgramId> {
        let mut stopped = Vec::new();
        for id in ids {
            let branches: Vec<ProgramId> =
                self.programs.values().filter(|p| p.branch_of == Some(id)).map(|p| p.id).collect();
            for id in std::iter::once(id).chain(branches) {
                if self.programs.contains_key(&id) && !stopped.contains(&id) {
                    self.end_program(id, Outcome::Stopped, Some(reason.to_string()), false);
                    stopped.push(id);
                }
            }
        }
        stopped
    }

    /// SIGTERM: every program stops, rows are closed as `stopped`.
    pub(super) fn shutdown(&mut self) {
        let ids: Vec<ProgramId> = self.programs.keys().copied().collect();
        self.stop(ids, "the daemon was shut down");
        self.emit(Effect::Pacer(PacerCmd::Shutdown));
        self.emit(Effect::Health(HealthCmd::Stop));
    }

    pub(super) fn row_start(&self, id: ProgramId, source: &str) -> RowStart {
        match self.programs.get(&id) {
            Some(program) => self.row_for(program, source),
            None => unreachable!("rows are written for programs the core knows"),
        }
    }

    fn row_for(&self, program: &Program, source: &str) -> RowStart {
        let caller = program.origin.caller();
        RowStart {
            program: Some(program.id),
            program_name: program.name.clone(),
            source: source.to_string(),
            sha256: None,
            zones: self.names(&program.zones),
            priority: program.priority,
            origin: program.origin.text(),
            caller_uid: caller.map(|c| c.uid),
            caller_pid: caller.and_then(|c| c.pid),
            start: self.now.wall,
        }
    }

    pub(super) fn store_record(&mut self, row: RowStart, outcome: Outcome, error: Option<String>) {
        self.emit(Effect::Store(StoreWrite::Record { row, outcome, error }));
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
