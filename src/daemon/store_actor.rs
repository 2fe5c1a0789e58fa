//! The store on its own thread. SQLite calls block (fsync, a busy disk, a
//! full disk), and neither the engine task nor the pacer may wait on them;
//! writes are queued in order here and run one after another, so a row is
//! always begun before it is finished.
//!
//! A failed write is logged and counted, never fatal: the broadcast goes on
//! and `loa status` says what the history is missing.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use jiff::Timestamp;

use crate::broadcast::Priority;
use crate::store::{NewItem, Outcome, Store, StoreError};

type Job = Box<dyn FnOnce(&mut Ctx) + Send>;

/// What the store thread owns: the store, and the database ids of the
/// history rows the engine has open, under the engine's own keys (so the
/// engine never waits for an insert to learn an id).
struct Ctx {
    store: Store,
    rows: HashMap<RowKey, i64>,
}

/// The engine's name for a history row.
pub type RowKey = u64;

/// A history row as the engine knows it when the item starts.
#[derive(Debug, Clone)]
pub struct RowStart {
    pub program: u64,
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

/// Write failures seen so far, for `loa status`.
#[derive(Debug, Default)]
pub struct StoreHealth {
    pub errors: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

#[derive(Clone)]
pub struct StoreHandle {
    jobs: mpsc::Sender<Job>,
    pub health: Arc<StoreHealth>,
    pub path: PathBuf,
}

pub struct StoreThread {
    join: JoinHandle<()>,
}

impl StoreThread {
    /// Waits for every queued write to finish (the handles must be dropped).
    pub fn join(self) {
        let _ = self.join.join();
    }
}

pub fn spawn(store: Store) -> std::io::Result<(StoreHandle, StoreThread)> {
    let (jobs, rx) = mpsc::channel::<Job>();
    let path = store.path().to_path_buf();
    let join = std::thread::Builder::new()
        .name("loa-store".into())
        .spawn(move || {
            let mut ctx = Ctx {
                store,
                rows: HashMap::new(),
            };
            for job in rx {
                job(&mut ctx);
            }
        })?;
    Ok((
        StoreHandle {
            jobs,
            health: Arc::new(StoreHealth::default()),
            path,
        },
        StoreThread { join },
    ))
}

impl StoreHandle {
    /// Runs `f` on the store thread and returns its result.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, CallError> {
        let (tx, rx) = oneshot::channel();
        let health = self.health.clone();
        let job: Job = Box::new(move |ctx| {
            let result = f(&mut ctx.store);
            if let Err(e) = &result {
                health.note(e);
            }
            let _ = tx.send(result.map_err(CallError::Store));
        });
        if self.jobs.send(job).is_err() {
            return Err(CallError::Closed);
        }
        rx.await.unwrap_or(Err(CallError::Closed))
    }

    /// Opens a history row under `key`.
    pub fn begin_row(&self, key: RowKey, row: RowStart) {
        self.job("begin an item", move |ctx| {
            let id = ctx.store.begin_item(&row.as_new_item())?;
            ctx.rows.insert(key, id);
            Ok(())
        });
    }

    /// Records the content hash once it is known (hashing runs beside playback).
    pub fn set_row_hash(&self, key: RowKey, sha256: String) {
        self.job("record a content hash", move |ctx| match ctx.rows.get(&key) {
            Some(&id) => ctx.store.set_item_sha256(id, &sha256),
            None => Ok(()),
        });
    }

    /// Closes the row opened under `key`.
    pub fn finish_row(&self, key: RowKey, end: Timestamp, outcome: Outcome, error: Option<String>) {
        self.job("finish an item", move |ctx| match ctx.rows.remove(&key) {
            Some(id) => ctx.store.finish_item(id, end, outcome, error.as_deref()),
            None => Ok(()),
        });
    }

    /// A row that starts and ends at once: a failed item, a missed fire.
    pub fn record_row(&self, row: RowStart, outcome: Outcome, error: Option<String>) {
        self.job("record an item", move |ctx| {
            ctx.store
                .record_item(&row.as_new_item(), outcome, error.as_deref())
                .map(|_| ())
        });
    }

    fn job(&self, what: &'static str, f: impl FnOnce(&mut Ctx) -> Result<(), StoreError> + Send + 'static) {
        let health = self.health.clone();
        let job: Job = Box::new(move |ctx| {
            if let Err(e) = f(ctx) {
                tracing::error!("history not saved ({what}): {e}");
                health.note(&e);
            }
        });
        let _ = self.jobs.send(job);
    }

    /// Queues a write whose result only matters if it fails (logged).
    pub fn write(&self, what: &'static str, f: impl FnOnce(&mut Store) -> Result<(), StoreError> + Send + 'static) {
        let health = self.health.clone();
        let job: Job = Box::new(move |ctx| {
            if let Err(e) = f(&mut ctx.store) {
                tracing::error!("history not saved ({what}): {e}");
                health.note(&e);
            }
        });
        let _ = self.jobs.send(job);
    }
}

impl StoreHealth {
    fn note(&self, e: &StoreError) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
    }

    pub fn snapshot(&self) -> (u64, Option<String>) {
        (
            self.errors.load(Ordering::Relaxed),
            self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        )
    }
}
