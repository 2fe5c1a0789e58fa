//! The store on its own thread. SQLite calls block (fsync, a busy disk, a
//! full disk), and neither the engine task nor the pacer may wait on them;
//! writes are queued in order here and run one after another, so a row is
//! always begun before it is finished.
//!
//! A write that fails because of the disk (full, read-only, I/O errors) is
//! kept, in order, in a bounded backlog and tried again every few seconds
//! and on each new write; when the disk recovers the history catches up
//! with the true times and outcomes. Only when the backlog overflows are the
//! oldest writes dropped, and counted. Nothing here is fatal: the broadcast
//! goes on and `loa status` says what the history is waiting for or missing.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::oneshot;

use jiff::Timestamp;

use super::store_backlog::{Backlog, CAPACITY};
use crate::proto::{Priority, ProgramId};
use crate::store::{NewItem, Outcome, Store, StoreError};

type Call = Box<dyn FnOnce(Result<&mut Store, StoreError>) + Send>;
type Other = Box<dyn FnMut(&mut Store) -> Result<(), StoreError> + Send>;

/// What reaches the store thread.
enum Msg {
    Write(Op),
    /// A request that wants an answer (reads, runtime schedules): runs at
    /// once, beside any waiting writes, and answers with its own error.
    Call(Call),
    /// The daemon stops: everything queued before this is written (or
    /// tried once more), then the thread ends, even if a task still holds
    /// a handle.
    Stop,
}

/// One history write, kept as data so it can wait and be tried again.
enum Op {
    Begin {
        key: RowKey,
        row: RowStart,
    },
    Hash {
        key: RowKey,
        sha256: String,
    },
    Skipped {
        key: RowKey,
        skipped_ms: u64,
    },
    Finish {
        key: RowKey,
        end: Timestamp,
        outcome: Outcome,
        error: Option<String>,
    },
    Record {
        row: RowStart,
        outcome: Outcome,
        error: Option<String>,
    },
    Other {
        what: &'static str,
        write: Other,
    },
}

impl Op {
    fn what(&self) -> &'static str {
        match self {
            Op::Begin { .. } => "begin an item",
            Op::Hash { .. } => "record a content hash",
            Op::Skipped { .. } => "record silence from a pacer stall",
            Op::Finish { .. } => "finish an item",
            Op::Record { .. } => "record an item",
            Op::Other { what, .. } => what,
        }
    }
}

/// What the store thread owns: the store, the database ids of the history
/// rows the engine has open, under the engine's own keys (so the engine
/// never waits for an insert to learn an id), and the writes waiting for
/// the disk.
struct Ctx {
    /// None only between closing a stuck connection and opening a new one.
    store: Option<Store>,
    path: PathBuf,
    state_dir: PathBuf,
    rows: HashMap<RowKey, i64>,
    /// Rows whose begin was lost: their hash and finish are lost too.
    lost_keys: HashSet<RowKey>,
    backlog: Backlog<Op>,
    /// The connection may be stuck (opened read-only, broken): open a new
    /// one before the next try.
    reopen: bool,
    health: Arc<StoreHealth>,
}

/// The engine's name for a history row: the store thread maps it to the
/// database's row id, so the engine never waits for an insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowKey(pub std::num::NonZeroU64);

impl RowKey {
    pub const FIRST: RowKey = RowKey(std::num::NonZeroU64::MIN);

    pub fn next(self) -> RowKey {
        RowKey(self.0.saturating_add(1))
    }
}

impl std::fmt::Display for RowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A history row as the engine knows it when the item starts.
#[derive(Debug, Clone, PartialEq)]
pub struct RowStart {
    /// None for rows that never became a program (a missed fire).
    pub program: Option<ProgramId>,
    pub program_name: String,
    pub source: String,
    pub sha256: Option<String>,
    pub zones: Vec<String>,
    pub priority: Priority,
    pub origin: String,
    pub caller_uid: Option<u32>,
    pub caller_pid: Option<i32>,
    pub start: Timestamp,
}

impl RowStart {
    fn as_new_item(&self) -> NewItem<'_> {
        NewItem {
            program: self.program,
            program_name: &self.program_name,
            source: &self.source,
            sha256: self.sha256.as_deref(),
            zones: &self.zones,
            priority: self.priority,
            origin: &self.origin,
            caller_uid: self.caller_uid,
            caller_pid: self.caller_pid,
            start: self.start,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the history database is closed (the daemon is stopping)")]
    Closed,
}

/// The history's health for `loa status`, kept by the store thread.
#[derive(Debug, Default)]
pub struct StoreHealth {
    state: Mutex<HistoryState>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct HistoryState {
    /// Failed writes and requests so far (every try that failed counts once
    /// per episode of the write, not per retry).
    pub write_errors: u64,
    pub last_error: Option<String>,
    /// Set while history writes fail: since when, and why in plain words.
    pub failing: Option<Failing>,
    /// Writes kept in memory, waiting for the disk.
    pub waiting_writes: usize,
    /// Writes given up (backlog overflow, or refused by the database).
    pub lost_writes: u64,
    /// History rows missing entirely because their first write was lost.
    pub lost_rows: u64,
    #[serde(serialize_with = "crate::store::serde_time::option_timestamp")]
    pub lost_since: Option<Timestamp>,
    /// The last time waiting writes were all saved after a failure.
    #[serde(serialize_with = "crate::store::serde_time::option_timestamp")]
    pub caught_up_at: Option<Timestamp>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Failing {
    #[serde(serialize_with = "crate::store::serde_time::timestamp")]
    pub since: Timestamp,
    /// "the disk is full", "the history database is read-only …".
    pub problem: String,
}

#[derive(Clone)]
pub struct StoreHandle {
    jobs: mpsc::Sender<Msg>,
    pub health: Arc<StoreHealth>,
    pub path: PathBuf,
}

pub struct StoreThread {
    join: JoinHandle<()>,
    stop: mpsc::Sender<Msg>,
}

impl StoreThread {
    /// Waits for every write queued so far to finish.
    pub fn join(self) {
        let _ = self.stop.send(Msg::Stop);
        let _ = self.join.join();
    }
}

pub fn spawn(store: Store, state_dir: PathBuf) -> std::io::Result<(StoreHandle, StoreThread)> {
    let (jobs, rx) = mpsc::channel::<Msg>();
    let path = store.path().to_path_buf();
    let health = Arc::new(StoreHealth::default());
    let mut ctx = Ctx {
        store: Some(store),
        path: path.clone(),
        state_dir,
        rows: HashMap::new(),
        lost_keys: HashSet::new(),
        backlog: Backlog::new(CAPACITY),
        reopen: false,
        health: health.clone(),
    };
    let join = std::thread::Builder::new()
        .name("loa-store".into())
        .spawn(move || ctx.run(rx))?;
    let stop = jobs.clone();
    Ok((
        StoreHandle { jobs, health, path },
        StoreThread { join, stop },
    ))
}

impl Ctx {
    fn run(&mut self, rx: mpsc::Receiver<Msg>) {
        loop {
            let msg = match self.backlog.next_retry() {
                None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            };
            match msg {
                Ok(Msg::Write(op)) => self.write(op),
                Ok(Msg::Call(call)) => {
                    if self.backlog.retry_due(Instant::now(), true) {
                        self.flush();
                    }
                    match self.store.as_mut() {
                        Some(store) => call(Ok(store)),
                        None => call(Err(StoreError::NotOpen {
                            path: self.path.clone(),
                        })),
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => self.flush(),
                Ok(Msg::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        // Stopping: one last try, then say plainly what was not saved.
        if !self.backlog.is_empty() {
            self.flush();
        }
        let left: Vec<Op> = self.backlog.drain().collect();
        if !left.is_empty() {
            for op in left {
                self.lose(op);
            }
            let state = self.health.lock();
            tracing::error!(
                "stopping with history writes unsaved ({}); {} write(s), {} row(s) lost since {}",
                state
                    .failing
                    .as_ref()
                    .map_or("the disk failed", |f| f.problem.as_str()),
                state.lost_writes,
                state.lost_rows,
                state.lost_since.map(|t| t.to_string()).unwrap_or_default()
            );
        }
    }

    /// A new write: straight to the database when nothing waits, else
    /// behind the waiting ones (and a try of them, if due).
    fn write(&mut self, op: Op) {
        if self.backlog.is_empty() {
            let mut op = op;
            match self.apply(&mut op) {
                Ok(()) => {}
                Err(e) if e.problem().transient() => {
                    self.backlog.push(op);
                    self.failed(&e);
                }
                Err(e) => self.refused(op, &e),
            }
        } else {
            if let Some(dropped) = self.backlog.push(op) {
                self.lose(dropped);
            }
            if self.backlog.retry_due(Instant::now(), true) {
                self.flush();
            } else {
                self.health.lock().waiting_writes = self.backlog.len();
            }
        }
    }

    /// Tries the waiting writes in order until one fails again.
    fn flush(&mut self) {
        if self.reopen {
            // Close first: a new connection in this process would share the
            // old one's read-only handles on the files.
            self.store = None;
            match Store::open(&self.state_dir) {
                Ok(store) => {
                    self.store = Some(store);
                    self.reopen = false;
                }
                Err(e) => return self.failed(&e),
            }
        }
        while let Some(op) = self.backlog.front_mut() {
            let result = Ctx::apply_to(
                self.store.as_mut(),
                &self.path,
                &mut self.rows,
                &mut self.lost_keys,
                &self.health,
                op,
            );
            match result {
                Ok(()) => {
                    self.backlog.pop_front();
                }
                Err(e) if e.problem().transient() => return self.failed(&e),
                Err(e) => {
                    let op = self.backlog.pop_front().expect("the front exists");
                    self.refused(op, &e);
                }
            }
        }
        let now = now_s();
        let mut state = self.health.lock();
        state.waiting_writes = 0;
        if state.failing.take().is_some() {
            state.caught_up_at = Some(now);
            tracing::info!("history writes work again; the history caught up at {now}");
        }
    }

    fn apply(&mut self, op: &mut Op) -> Result<(), StoreError> {
        Ctx::apply_to(
            self.store.as_mut(),
            &self.path,
            &mut self.rows,
            &mut self.lost_keys,
            &self.health,
            op,
        )
    }

    fn apply_to(
        store: Option<&mut Store>,
        path: &std::path::Path,
        rows: &mut HashMap<RowKey, i64>,
        lost_keys: &mut HashSet<RowKey>,
        health: &StoreHealth,
        op: &mut Op,
    ) -> Result<(), StoreError> {
        let store = store.ok_or_else(|| StoreError::NotOpen {
            path: path.to_path_buf(),
        })?;
        match op {
            Op::Begin { key, row } => {
                let id = store.begin_item(&row.as_new_item())?;
                rows.insert(*key, id);
            }
            Op::Hash { key, sha256 } => {
                if let Some(&id) = rows.get(key) {
                    store.set_item_sha256(id, sha256)?;
                } else if lost_keys.contains(key) {
                    health.lock().lost_writes += 1;
                }
            }
            Op::Skipped { key, skipped_ms } => {
                if let Some(&id) = rows.get(key) {
                    store.set_item_skipped(id, *skipped_ms)?;
                } else if lost_keys.contains(key) {
                    health.lock().lost_writes += 1;
                }
            }
            Op::Finish {
                key,
                end,
                outcome,
                error,
            } => {
                if let Some(&id) = rows.get(key) {
                    store.finish_item(id, *end, *outcome, error.as_deref())?;
                    rows.remove(key);
                } else if lost_keys.remove(key) {
                    health.lock().lost_writes += 1;
                }
            }
            Op::Record {
                row,
                outcome,
                error,
            } => {
                store.record_item(&row.as_new_item(), *outcome, error.as_deref())?;
            }
            Op::Other { write, .. } => write(store)?,
        }
        Ok(())
    }

    /// A try failed because of the disk: the write waits.
    fn failed(&mut self, e: &StoreError) {
        let problem = e.problem();
        self.reopen |= problem.reopen();
        let now = Instant::now();
        self.backlog.attempted(now);
        let log = self.backlog.should_log(now);
        let mut state = self.health.lock();
        state.waiting_writes = self.backlog.len();
        state.last_error = Some(e.to_string());
        let starting = state.failing.is_none();
        if starting {
            state.write_errors += 1;
            state.failing = Some(Failing {
                since: now_s(),
                problem: problem.words().to_string(),
            });
            tracing::error!(
                "history writes are failing: {}; broadcasts go on, up to {CAPACITY} writes wait in memory and are tried again every few seconds ({e})",
                problem.words()
            );
        } else if log {
            tracing::error!(
                "history writes still failing: {}; {} write(s) waiting, {} lost ({e})",
                problem.words(),
                state.waiting_writes,
                state.lost_writes
            );
        }
        if let Some(f) = state.failing.as_mut() {
            f.problem = problem.words().to_string();
        }
    }

    /// The database refused a write for a reason retrying cannot fix.
    fn refused(&mut self, op: Op, e: &StoreError) {
        tracing::error!("history not saved ({}): {e}", op.what());
        {
            let mut state = self.health.lock();
            state.write_errors += 1;
            state.last_error = Some(e.to_string());
        }
        self.lose(op);
    }

    /// A write given up for good: counted, and a lost begin takes its row's
    /// later writes with it.
    fn lose(&mut self, op: Op) {
        let mut state = self.health.lock();
        state.lost_writes += 1;
        state.lost_since.get_or_insert_with(now_s);
        match op {
            Op::Begin { key, .. } => {
                state.lost_rows += 1;
                self.lost_keys.insert(key);
            }
            Op::Record { .. } => state.lost_rows += 1,
            Op::Finish { key, .. } => {
                // The row stays open; a restart marks it interrupted.
                self.rows.remove(&key);
            }
            Op::Hash { .. } | Op::Skipped { .. } | Op::Other { .. } => {}
        }
    }
}

/// Now, to the second: status times need no nanoseconds.
fn now_s() -> Timestamp {
    let now = Timestamp::now();
    let second = jiff::TimestampRound::new()
        .smallest(jiff::Unit::Second)
        .mode(jiff::RoundMode::Trunc);
    now.round(second).unwrap_or(now)
}

impl StoreHandle {
    /// Runs `f` on the store thread and returns its result.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, CallError> {
        let (tx, rx) = oneshot::channel();
        let health = self.health.clone();
        let call: Call = Box::new(move |store| {
            let result = store.and_then(f);
            if let Err(e) = &result {
                let mut state = health.lock();
                state.write_errors += 1;
                state.last_error = Some(e.to_string());
            }
            let _ = tx.send(result.map_err(CallError::Store));
        });
        if self.jobs.send(Msg::Call(call)).is_err() {
            return Err(CallError::Closed);
        }
        rx.await.unwrap_or(Err(CallError::Closed))
    }

    /// Opens a history row under `key`.
    pub fn begin_row(&self, key: RowKey, row: RowStart) {
        self.send(Op::Begin { key, row });
    }

    /// Records the content hash once it is known (hashing runs beside playback).
    pub fn set_row_hash(&self, key: RowKey, sha256: String) {
        self.send(Op::Hash { key, sha256 });
    }

    /// Records the silence pacer stalls put into the row under `key` so far
    /// (a running total).
    pub fn set_row_skipped(&self, key: RowKey, skipped_ms: u64) {
        self.send(Op::Skipped { key, skipped_ms });
    }

    /// Closes the row opened under `key`.
    pub fn finish_row(&self, key: RowKey, end: Timestamp, outcome: Outcome, error: Option<String>) {
        self.send(Op::Finish {
            key,
            end,
            outcome,
            error,
        });
    }

    /// A row that starts and ends at once: a failed item, a missed fire.
    pub fn record_row(&self, row: RowStart, outcome: Outcome, error: Option<String>) {
        self.send(Op::Record {
            row,
            outcome,
            error,
        });
    }

    /// Queues a write whose result only matters if it fails; it may run
    /// more than once if the disk fails, so it must be repeatable.
    pub fn write(
        &self,
        what: &'static str,
        f: impl FnMut(&mut Store) -> Result<(), StoreError> + Send + 'static,
    ) {
        self.send(Op::Other {
            what,
            write: Box::new(f),
        });
    }

    fn send(&self, op: Op) {
        let _ = self.jobs.send(Msg::Write(op));
    }
}

impl StoreHealth {
    fn lock(&self) -> std::sync::MutexGuard<'_, HistoryState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn snapshot(&self) -> HistoryState {
        self.lock().clone()
    }
}

#[cfg(test)]
mod tests;
