//! The core driven with made-up time and made-up worker and pacer events:
//! no sockets, no threads, no sleeping. A [`Harness`] holds the core, a
//! clock it moves by hand, and every effect the core asked for.

mod branches;
mod programs;
mod requests;
mod schedules;
mod stall;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::json;

use super::*;
use crate::config::Config;
use crate::daemon::tasks::store::RowStart;
use crate::daemon::server::Caller;
use crate::proto::{Outcome, Priority, Request, Response};

pub const CALLER: Caller = Caller { uid: 1000, gid: 1000, pid: Some(42) };

pub fn config(more: &str) -> Config {
    let text = format!(
        "[network]\ninterface = \"127.0.0.1\"\n[daemon]\ntimezone = \"UTC\"\nstate_dir = \"/state\"\nmedia_roots = [\"/media\"]\n\
         [[zone]]\nname = \"thon-1\"\ngroup = \"239.255.77.1:5004\"\n\
         [[zone]]\nname = \"thon-2\"\ngroup = \"239.255.77.2:5004\"\n{more}"
    );
    Config::parse(&text, "loa.toml").unwrap_or_else(|e| panic!("{e}"))
}

pub fn p(n: u64) -> ProgramId {
    ProgramId::new(n).unwrap()
}

pub fn z(n: usize) -> ZoneId {
    ZoneId::from_index(n)
}

/// 2026-12-04 05:59:50 UTC: ten seconds before six.
pub fn start_wall() -> Timestamp {
    "2026-12-04T05:59:50Z".parse().unwrap()
}

pub struct Harness {
    pub core: Core,
    pub now: Now,
    pub start: Instant,
    /// Every effect so far, in order.
    pub effects: Vec<Effect>,
    next_request: u64,
}

impl Harness {
    pub fn new(more: &str) -> Harness {
        Harness::restored(more, Restored { schedules: Vec::new(), playlists: Vec::new(), last_fires: HashMap::new() })
    }

    pub fn restored(more: &str, restored: Restored) -> Harness {
        let start = Instant::now();
        let now = Now { mono: start, wall: start_wall() };
        let core = Core::new(config(more), PathBuf::from("/etc/loa/loa.toml"), restored, true, now);
        let mut h = Harness { core, now, start, effects: Vec::new(), next_request: 1 };
        h.collect();
        h
    }

    fn collect(&mut self) {
        while let Some(e) = self.core.poll_effect() {
            self.effects.push(e);
        }
    }

    pub fn handle(&mut self, input: Input) {
        self.core.handle(input, self.now);
        self.collect();
    }

    /// Moves the clock `d` ahead, handling every timeout on its instant.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now.mono + d;
        let mut turns = 0;
        while let Some(at) = self.core.poll_timeout().filter(|&at| at <= end) {
            turns += 1;
            assert!(turns < 100_000, "the core keeps asking for the same instant: {at:?}");
            let step = at.saturating_duration_since(self.now.mono);
            self.now = self.now.after(step);
            self.core.handle_timeout(self.now);
            self.collect();
        }
        let rest = end.saturating_duration_since(self.now.mono);
        self.now = self.now.after(rest);
    }

    pub fn request(&mut self, method: &str, params: serde_json::Value) -> RequestId {
        let request = Request::parse(method, params).unwrap_or_else(|e| panic!("{method}: {e}"));
        let id = RequestId(self.next_request);
        self.next_request += 1;
        self.handle(Input::Request { id, caller: CALLER, request });
        id
    }

    pub fn play(&mut self, params: serde_json::Value) -> RequestId {
        self.request("broadcast.start", params)
    }

    /// The answer to `request`, if one was given (taken from the effects).
    pub fn reply(&mut self, request: RequestId) -> Option<Result<Response, RpcError>> {
        let at = self.effects.iter().position(|e| matches!(e, Effect::Reply { request: r, .. } if *r == request))?;
        match self.effects.remove(at) {
            Effect::Reply { result, .. } => Some(result),
            _ => unreachable!(),
        }
    }

    pub fn started(&mut self, request: RequestId) -> crate::proto::broadcast::Started {
        match self.reply(request) {
            Some(Ok(Response::Start(started))) => started,
            other => panic!("no start answer: {other:?}\n{:#?}", self.effects),
        }
    }

    pub fn refused(&mut self, request: RequestId) -> String {
        match self.reply(request) {
            Some(Err(e)) => e.message,
            other => panic!("not refused: {other:?}"),
        }
    }

    /// The resolution jobs asked for and not answered yet.
    pub fn jobs(&self) -> Vec<(JobId, Job)> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Resolve { job, what } => Some((*job, what.clone())),
                _ => None,
            })
            .collect()
    }

    /// Answers the last resolution job with these items (and the chime).
    pub fn resolve(&mut self, items: &[&str], chime: Option<&str>) {
        let (job, _) = self.jobs().pop().expect("a resolution job");
        self.effects.retain(|e| !matches!(e, Effect::Resolve { job: j, .. } if *j == job));
        let result = Ok(Resolved::Items {
            items: items.iter().map(PathBuf::from).collect(),
            chime: chime.map(PathBuf::from),
            rejected: Vec::new(),
        });
        self.handle(Input::Resolved { job, result });
    }

    pub fn worker(&mut self, program: ProgramId, event: WorkerEvent) {
        self.handle(Input::Worker { program, event });
    }

    /// The worker opened `path` as item `item`.
    pub fn opened(&mut self, program: ProgramId, item: usize, path: &str) {
        let event = WorkerEvent::ItemStarted {
            item,
            path: path.into(),
            duration: Some(Duration::from_secs(3)),
            sha256: Some(format!("sha-{item}")),
            gain_db: Some(-2.0),
        };
        self.worker(program, event);
    }

    /// The worker opened its first item and its prefill is queued.
    pub fn ready(&mut self, program: ProgramId, first: &str) {
        self.opened(program, 0, first);
        self.worker(program, WorkerEvent::Ready);
    }

    pub fn pacer(&mut self, event: PacerInput) {
        self.handle(Input::Pacer(event));
    }

    pub fn progress(&mut self, program: ProgramId, item: usize, ms: u64) {
        self.pacer(PacerInput::Progress { program, item, position: Duration::from_millis(ms) });
    }

    /// A program resolved, spawned and ready: `loa play FILE` on `zones`.
    pub fn on_air(&mut self, params: serde_json::Value, file: &str) -> (RequestId, ProgramId) {
        let request = self.play(params);
        self.resolve(&[file], None);
        let program = self.spawned().pop().expect("a spawned worker").0;
        self.ready(program, file);
        (request, program)
    }

    pub fn spawned(&self) -> Vec<(ProgramId, WorkerSpec)> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Spawn { program, worker } => Some((*program, worker.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn pacer_cmds(&self) -> Vec<PacerCmd> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Pacer(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    /// Zone assignments, immediate or timed, in order: (zone, program, at).
    pub fn assigns(&self) -> Vec<(ZoneId, Option<ProgramId>, Option<Instant>)> {
        self.pacer_cmds()
            .into_iter()
            .filter_map(|c| match c {
                PacerCmd::Assign { zone, program } => Some((zone, program, None)),
                PacerCmd::AssignAt { zone, program, at } => Some((zone, program, Some(at))),
                _ => None,
            })
            .collect()
    }

    pub fn writes(&self) -> Vec<StoreWrite> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Store(w) => Some(w.clone()),
                _ => None,
            })
            .collect()
    }

    /// Rows begun: (key, row).
    pub fn begun(&self) -> Vec<(RowKey, RowStart)> {
        self.writes()
            .into_iter()
            .filter_map(|w| match w {
                StoreWrite::Begin { key, row } => Some((key, row)),
                _ => None,
            })
            .collect()
    }

    /// Rows closed: (key, end, outcome, error).
    pub fn finished(&self) -> Vec<(RowKey, Timestamp, Outcome, Option<String>)> {
        self.writes()
            .into_iter()
            .filter_map(|w| match w {
                StoreWrite::Finish { key, end, outcome, error } => Some((key, end, outcome, error)),
                _ => None,
            })
            .collect()
    }

    /// Rows written whole: (row, outcome, error).
    pub fn recorded(&self) -> Vec<(RowStart, Outcome, Option<String>)> {
        self.writes()
            .into_iter()
            .filter_map(|w| match w {
                StoreWrite::Record { row, outcome, error } => Some((row, outcome, error)),
                _ => None,
            })
            .collect()
    }

    pub fn live_notes(&self) -> Vec<(ConnId, LiveNote)> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Live { conn, note } => Some((*conn, note.clone())),
                _ => None,
            })
            .collect()
    }
}

/// `broadcast.start` params for `files` on `zones` at `priority`.
pub fn play_params(file: &str, zones: &[&str], priority: &str) -> serde_json::Value {
    json!({"files": [file], "zones": zones, "priority": priority})
}

#[test]
fn ids_and_rows_are_counted_from_one() {
    let mut h = Harness::new("");
    let (_, id) = h.on_air(play_params("a.wav", &["thon-1"], "announcement"), "/media/a.wav");
    assert_eq!(id, p(1));
    h.progress(id, 0, 0);
    assert_eq!(h.begun()[0].0, RowKey::FIRST);
}
