//! SQLite persistence (DESIGN "Persistence"): broadcast history for the
//! auditor, runtime schedules and playlists, last fire per schedule, and
//! endpoint health transitions.
//!
//! Owns `state_dir/loa.db` and nothing else. It records what the scheduler,
//! arbiter and health monitor decided; it never decides anything itself, and
//! times come in as arguments. The config file stays the source of truth for
//! zones and endpoints: nothing here describes them.

mod schema;
#[cfg(test)]
mod tests;


use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{params, Connection};

use crate::proto::{Priority, ProgramId};
use schema::{MIGRATIONS, SCHEMA_VERSION};

const DB_FILE: &str = "loa.db";
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const INTERRUPTED_ERROR: &str = "the daemon stopped before the item ended";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the state directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the history database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the history database {path} is damaged or is not a database; \
         move it aside and loa will start a new one ({source})"
    )]
    NotADatabase {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the history database {path} is from a newer loa (schema {found}, this build knows {known})")]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("the history database {path} cannot use write-ahead logging (journal mode stays {mode:?}); put state_dir on a local filesystem")]
    NoWal { path: PathBuf, mode: String },
    #[error("cannot upgrade the history database {path} to schema {version}: {source}")]
    Migrate {
        path: PathBuf,
        version: i64,
        source: rusqlite::Error,
    },
    #[error("cannot {action} in the history database {path}: {source}")]
    Query {
        action: &'static str,
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the history database {path} holds a value this build cannot read: {detail}")]
    BadValue { path: PathBuf, detail: String },
    #[error("history item {id} does not exist")]
    NoSuchItem { id: i64 },
    #[error("history item {id} is not open (unknown, or already finished)")]
    ItemNotOpen { id: i64 },
    #[error("cannot store {what} {value}: larger than the database can hold")]
    TooLarge { what: &'static str, value: u64 },
    #[error(
        "cannot create or open the history database {path}: {} ({dir} cannot be written); \
         make the state directory writable or free some space, or set daemon.state_dir",
        Problem::from_io(source).words()
    )]
    Unwritable {
        path: PathBuf,
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("the history database {path} is not open (loa closed it to open it again after a disk fault)")]
    NotOpen { path: PathBuf },
}

/// Why a history write failed, in words a station operator understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    DiskFull,
    ReadOnly,
    Io,
    Permission,
    CannotOpen,
    Busy,
    /// A write this build got wrong or the data refuses (not worth retrying).
    Other,
}

impl Problem {
    pub fn words(self) -> &'static str {
        match self {
            Problem::DiskFull => "the disk is full",
            Problem::ReadOnly => "the history database is read-only (is the disk mounted read-only?)",
            Problem::Io => "the disk reports input/output errors",
            Problem::Permission => "loa is not allowed to write the history database (file permissions)",
            Problem::CannotOpen => "the history database cannot be opened",
            Problem::Busy => "the history database is locked by another program",
            Problem::Other => "a history write failed",
        }
    }

    /// Faults of the disk or its mount, which go away when someone frees
    /// space or remounts: the write is kept and tried again.
    pub fn transient(self) -> bool {
        self != Problem::Other
    }

    /// The connection may be stuck read-only or broken: open a new one
    /// before trying again.
    pub fn reopen(self) -> bool {
        matches!(self, Problem::ReadOnly | Problem::Io | Problem::CannotOpen | Problem::Permission)
    }

    pub fn from_sqlite(e: &rusqlite::Error) -> Problem {
        use rusqlite::ErrorCode as C;
        match e.sqlite_error_code() {
            Some(C::DiskFull) => Problem::DiskFull,
            Some(C::ReadOnly) => Problem::ReadOnly,
            Some(C::SystemIoFailure) => Problem::Io,
            Some(C::PermissionDenied) | Some(C::AuthorizationForStatementDenied) => Problem::Permission,
            Some(C::CannotOpen) => Problem::CannotOpen,
            Some(C::DatabaseBusy) | Some(C::DatabaseLocked) => Problem::Busy,
            _ => Problem::Other,
        }
    }

    pub fn from_io(e: &std::io::Error) -> Problem {
        match e.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => Problem::DiskFull,
            Some(libc::EROFS) => Problem::ReadOnly,
            Some(libc::EIO) => Problem::Io,
            Some(libc::EACCES) | Some(libc::EPERM) => Problem::Permission,
            _ => Problem::CannotOpen,
        }
    }
}

impl StoreError {
    pub fn problem(&self) -> Problem {
        match self {
            StoreError::CreateDir { source, .. } | StoreError::Unwritable { source, .. } => Problem::from_io(source),
            StoreError::Open { source, .. } | StoreError::Migrate { source, .. } | StoreError::Query { source, .. } => {
                Problem::from_sqlite(source)
            }
            StoreError::NotOpen { .. } => Problem::CannotOpen,
            StoreError::NotADatabase { .. }
            | StoreError::TooNew { .. }
            | StoreError::NoWal { .. }
            | StoreError::BadValue { .. }
            | StoreError::NoSuchItem { .. }
            | StoreError::ItemNotOpen { .. }
            | StoreError::TooLarge { .. } => Problem::Other,
        }
    }
}

pub use crate::proto::history::{HistoryRow, Outcome};

/// One item about to go on air (or that failed to).
#[derive(Debug, Clone, Copy)]
pub struct NewItem<'a> {
    /// None for rows that never became a program (a missed fire).
    pub program: Option<crate::proto::ProgramId>,
    pub program_name: &'a str,
    /// A file path, or `say:…` for synthesized speech.
    pub source: &'a str,
    pub sha256: Option<&'a str>,
    pub zones: &'a [String],
    pub priority: Priority,
    /// `schedule:NAME` or `cli`.
    pub origin: &'a str,
    pub caller_uid: Option<u32>,
    pub caller_pid: Option<i32>,
    pub start: Timestamp,
}

#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    /// Only rows that started at or after this instant.
    pub since: Option<Timestamp>,
    /// Keep the newest N of the matching rows.
    pub limit: Option<usize>,
}

/// A schedule added at runtime (config schedules are not stored).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScheduleRecord {
    pub name: String,
    pub cron: String,
    pub playlist: Option<String>,
    pub file: Option<String>,
    /// Text to speak instead of a playlist or file.
    #[serde(default)]
    pub say: Option<String>,
    /// The voice for `say`; `None` = the configured `[tts] voice`.
    #[serde(default)]
    pub voice: Option<String>,
    pub zones: Vec<String>,
    #[serde(with = "priority_word")]
    pub priority: Priority,
    pub max_duration_secs: Option<u64>,
    pub misfire_grace_secs: u64,
    pub enabled: bool,
    pub on_preempt: String,
    pub on_busy: String,
    pub created_by: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PlaylistRecord {
    pub name: String,
    /// The m3u/pls path it was loaded from.
    pub source: String,
    pub items: Vec<PathBuf>,
    pub loaded_by: Option<u32>,
    #[serde(serialize_with = "serde_time::timestamp")]
    pub loaded_at: Timestamp,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) `state_dir/loa.db` and brings its schema
    /// up to date. A database written by a newer loa is refused untouched.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(state_dir).map_err(|source| StoreError::CreateDir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join(DB_FILE);
        let cannot_open = |source: rusqlite::Error| match Problem::from_sqlite(&source) {
            Problem::CannotOpen => unwritable(state_dir, &path).unwrap_or_else(|| open_error(&path, source)),
            _ => open_error(&path, source),
        };
        let conn = Connection::open(&path).map_err(cannot_open)?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|source| open_error(&path, source))?;

        // Read the version before changing anything (journal mode included),
        // so a newer loa's database is left exactly as it was. This is also
        // the first read of the file, where a damaged one shows itself, and
        // where a WAL database on a read-only or full disk cannot be opened.
        let found: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(cannot_open)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path,
                found,
                known: SCHEMA_VERSION,
            });
        }

        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(|source| open_error(&path, source))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NoWal { path, mode });
        }
        // NORMAL under WAL can lose the last commits on power loss but never
        // corrupts; close_unfinished covers what is lost.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|source| open_error(&path, source))?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(|source| open_error(&path, source))?;

        let mut store = Store { conn, path };
        store.migrate(found)?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes this connection's writes fail as on a read-only disk, for
    /// tests of what waits and what is lost.
    #[cfg(test)]
    pub(crate) fn refuse_writes(&self) {
        self.conn.pragma_update(None, "query_only", true).unwrap();
    }

    fn migrate(&mut self, from: i64) -> Result<(), StoreError> {
        let path = self.path.clone();
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(from.max(0) as usize) {
            let version = index as i64 + 1;
            let migrate_error = |source| StoreError::Migrate {
                path: path.clone(),
                version,
                source,
            };
            // One transaction per step: a failed step leaves the previous
            // version intact rather than half a schema.
            let tx = self.conn.transaction().map_err(migrate_error)?;
            tx.execute_batch(sql).map_err(migrate_error)?;
            tx.pragma_update(None, "user_version", version)
                .map_err(migrate_error)?;
            tx.commit().map_err(migrate_error)?;
        }
        Ok(())
    }

    fn query_error(&self, action: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Query {
            action,
            path: self.path.clone(),
            source,
        }
    }

    fn bad_value(&self, detail: String) -> StoreError {
        StoreError::BadValue {
            path: self.path.clone(),
            detail,
        }
    }

    /// Rows with no end become `Interrupted` with end = now (or = start, if
    /// the clock stepped back past it). Returns how many.
    pub fn close_unfinished(&mut self, now: Timestamp) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "UPDATE history SET end_ms = MAX(start_ms, ?1), outcome = ?2, error = ?3
                 WHERE end_ms IS NULL",
                params![
                    now.as_millisecond(),
                    Outcome::Interrupted.as_str(),
                    INTERRUPTED_ERROR
                ],
            )
            .map_err(self.query_error("close unfinished items"))
    }

    /// Records an item going on air; finish it with `finish_item`.
    pub fn begin_item(&mut self, item: &NewItem) -> Result<i64, StoreError> {
        self.insert_item(item, None, None)
    }

    pub fn finish_item(
        &mut self,
        id: i64,
        end: Timestamp,
        outcome: Outcome,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let changed = self
            .conn
            .execute(
                "UPDATE history SET end_ms = ?2, outcome = ?3, error = ?4
                 WHERE id = ?1 AND end_ms IS NULL",
                params![id, end.as_millisecond(), outcome.as_str(), error],
            )
            .map_err(self.query_error("record the end of an item"))?;
        if changed == 0 {
            return Err(StoreError::ItemNotOpen { id });
        }
        Ok(())
    }

    /// Records the content hash once known: hashing runs beside playback,
    /// so the item may already have finished.
    pub fn set_item_sha256(&mut self, id: i64, sha256: &str) -> Result<(), StoreError> {
        let changed = self
            .conn
            .execute(
                "UPDATE history SET sha256 = ?2 WHERE id = ?1",
                params![id, sha256],
            )
            .map_err(self.query_error("record a content hash"))?;
        if changed == 0 {
            return Err(StoreError::NoSuchItem { id });
        }
        Ok(())
    }

    /// A row that starts and ends at once (failed to open, missed fire).
    pub fn record_item(
        &mut self,
        item: &NewItem,
        outcome: Outcome,
        error: Option<&str>,
    ) -> Result<i64, StoreError> {
        self.insert_item(item, Some(outcome), error)
    }

    fn insert_item(
        &mut self,
        item: &NewItem,
        outcome: Option<Outcome>,
        error: Option<&str>,
    ) -> Result<i64, StoreError> {
        let start_ms = item.start.as_millisecond();
        let end_ms = outcome.map(|_| start_ms);
        self.conn
            .execute(
                "INSERT INTO history (program, program_name, source, sha256, zones, priority,
                     origin, caller_uid, caller_pid, start_ms, end_ms, outcome, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    // The column holds 0 for "no program" (the schema
                    // predates the type); only here, at the SQL boundary.
                    item.program.map_or(0, |p| p.get() as i64),
                    item.program_name,
                    item.source,
                    item.sha256,
                    zones_json(item.zones),
                    item.priority.as_str(),
                    item.origin,
                    item.caller_uid,
                    item.caller_pid,
                    start_ms,
                    end_ms,
                    outcome.map(Outcome::as_str),
                    error,
                ],
            )
            .map_err(self.query_error("record an item"))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Oldest first. `since` keeps rows with start >= since; `limit` keeps
    /// the newest N of those.
    pub fn history(&self, query: &HistoryQuery) -> Result<Vec<HistoryRow>, StoreError> {
        let since_ms = query.since.map(|t| t.as_millisecond());
        // LIMIT -1 is SQLite for "no limit".
        let limit = query
            .limit
            .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT * FROM (
                     SELECT id, program, program_name, source, sha256, zones, priority, origin,
                            caller_uid, caller_pid, start_ms, end_ms, outcome, error
                     FROM history
                     WHERE ?1 IS NULL OR start_ms >= ?1
                     ORDER BY start_ms DESC, id DESC
                     LIMIT ?2)
                 ORDER BY start_ms, id",
            )
            .map_err(self.query_error("read history"))?;
        let raw: Vec<RawHistory> = stmt
            .query_map(params![since_ms, limit], |row| {
                Ok(RawHistory {
                    id: row.get(0)?,
                    program: row.get(1)?,
                    program_name: row.get(2)?,
                    source: row.get(3)?,
                    sha256: row.get(4)?,
                    zones: row.get(5)?,
                    priority: row.get(6)?,
                    origin: row.get(7)?,
                    caller_uid: row.get(8)?,
                    caller_pid: row.get(9)?,
                    start_ms: row.get(10)?,
                    end_ms: row.get(11)?,
                    outcome: row.get(12)?,
                    error: row.get(13)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(self.query_error("read history"))?;
        raw.into_iter().map(|r| self.history_row(r)).collect()
    }

    fn history_row(&self, r: RawHistory) -> Result<HistoryRow, StoreError> {
        let outcome = match r.outcome {
            Some(word) => Some(
                word.parse::<Outcome>()
                    .map_err(|e| self.bad_value(format!("history item {}: {e}", r.id)))?,
            ),
            None => None,
        };
        Ok(HistoryRow {
            id: r.id,
            // The column holds 0 for rows that never became a program.
            program: ProgramId::new(r.program as u64),
            program_name: r.program_name,
            source: r.source,
            sha256: r.sha256,
            zones: self.parse_zones(&r.zones, "history item", &r.id.to_string())?,
            priority: r
                .priority
                .parse()
                .map_err(|e| self.bad_value(format!("history item {}: {e}", r.id)))?,
            origin: r.origin,
            caller_uid: r.caller_uid,
            caller_pid: r.caller_pid,
            start: self.timestamp(r.start_ms)?,
            end: r.end_ms.map(|ms| self.timestamp(ms)).transpose()?,
            outcome,
            error: r.error,
        })
    }

    /// Inserts the schedule, or replaces the one with the same name.
    pub fn save_schedule(&mut self, s: &ScheduleRecord) -> Result<(), StoreError> {
        let max_duration_secs = s
            .max_duration_secs
            .map(|v| to_sql_int("max_duration_secs", v))
            .transpose()?;
        let misfire_grace_secs = to_sql_int("misfire_grace_secs", s.misfire_grace_secs)?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO schedules (name, cron, playlist, file, zones, priority,
                     max_duration_secs, misfire_grace_secs, enabled, on_preempt, on_busy,
                     created_by, say, voice)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    s.name,
                    s.cron,
                    s.playlist,
                    s.file,
                    zones_json(&s.zones),
                    s.priority.as_str(),
                    max_duration_secs,
                    misfire_grace_secs,
                    s.enabled,
                    s.on_preempt,
                    s.on_busy,
                    s.created_by,
                    s.say,
                    s.voice,
                ],
            )
            .map_err(self.query_error("save a schedule"))?;
        Ok(())
    }

    /// Returns whether a schedule by that name existed.
    pub fn delete_schedule(&mut self, name: &str) -> Result<bool, StoreError> {
        let changed = self
            .conn
            .execute("DELETE FROM schedules WHERE name = ?1", params![name])
            .map_err(self.query_error("delete a schedule"))?;
        Ok(changed > 0)
    }

    /// Returns whether a schedule by that name exists.
    pub fn set_schedule_enabled(&mut self, name: &str, enabled: bool) -> Result<bool, StoreError> {
        let changed = self
            .conn
            .execute(
                "UPDATE schedules SET enabled = ?2 WHERE name = ?1",
                params![name, enabled],
            )
            .map_err(self.query_error("enable or disable a schedule"))?;
        Ok(changed > 0)
    }

    /// Every stored schedule, by name.
    pub fn schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT name, cron, playlist, file, zones, priority, max_duration_secs,
                        misfire_grace_secs, enabled, on_preempt, on_busy, created_by,
                        say, voice
                 FROM schedules ORDER BY name",
            )
            .map_err(self.query_error("read schedules"))?;
        let raw: Vec<RawSchedule> = stmt
            .query_map([], |row| {
                Ok(RawSchedule {
                    name: row.get(0)?,
                    cron: row.get(1)?,
                    playlist: row.get(2)?,
                    file: row.get(3)?,
                    zones: row.get(4)?,
                    priority: row.get(5)?,
                    max_duration_secs: row.get(6)?,
                    misfire_grace_secs: row.get(7)?,
                    enabled: row.get(8)?,
                    on_preempt: row.get(9)?,
                    on_busy: row.get(10)?,
                    created_by: row.get(11)?,
                    say: row.get(12)?,
                    voice: row.get(13)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(self.query_error("read schedules"))?;
        raw.into_iter().map(|r| self.schedule_record(r)).collect()
    }

    fn schedule_record(&self, r: RawSchedule) -> Result<ScheduleRecord, StoreError> {
        let bad = |detail: String| self.bad_value(format!("schedule {:?}: {detail}", r.name));
        let priority = r
            .priority
            .parse::<Priority>()
            .map_err(|e| bad(e.to_string()))?;
        let max_duration_secs = r
            .max_duration_secs
            .map(|v| {
                u64::try_from(v).map_err(|_| bad(format!("max_duration_secs {v} is negative")))
            })
            .transpose()?;
        let misfire_grace_secs = u64::try_from(r.misfire_grace_secs).map_err(|_| {
            bad(format!(
                "misfire_grace_secs {} is negative",
                r.misfire_grace_secs
            ))
        })?;
        Ok(ScheduleRecord {
            zones: self.parse_zones(&r.zones, "schedule", &r.name)?,
            name: r.name,
            cron: r.cron,
            playlist: r.playlist,
            file: r.file,
            say: r.say,
            voice: r.voice,
            priority,
            max_duration_secs,
            misfire_grace_secs,
            enabled: r.enabled,
            on_preempt: r.on_preempt,
            on_busy: r.on_busy,
            created_by: r.created_by,
        })
    }

    /// Inserts the playlist, or replaces the one with the same name
    /// (items included).
    pub fn save_playlist(&mut self, p: &PlaylistRecord) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Query {
            action: "save a playlist",
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute(
            "INSERT INTO playlists (name, source, loaded_by, loaded_at_ms)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET
                 source = excluded.source,
                 loaded_by = excluded.loaded_by,
                 loaded_at_ms = excluded.loaded_at_ms",
            params![p.name, p.source, p.loaded_by, p.loaded_at.as_millisecond()],
        )
        .map_err(err)?;
        tx.execute(
            "DELETE FROM playlist_items WHERE playlist = ?1",
            params![p.name],
        )
        .map_err(err)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO playlist_items (playlist, position, path) VALUES (?1, ?2, ?3)",
                )
                .map_err(err)?;
            for (position, item) in p.items.iter().enumerate() {
                insert
                    .execute(params![p.name, position as i64, path_bytes(item)])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Every stored playlist, by name, items in playing order.
    pub fn playlists(&self) -> Result<Vec<PlaylistRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT name, source, loaded_by, loaded_at_ms FROM playlists ORDER BY name",
            )
            .map_err(self.query_error("read playlists"))?;
        let heads: Vec<(String, String, Option<u32>, i64)> = stmt
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .and_then(|rows| rows.collect())
            .map_err(self.query_error("read playlists"))?;
        let mut items_stmt = self
            .conn
            .prepare_cached("SELECT path FROM playlist_items WHERE playlist = ?1 ORDER BY position")
            .map_err(self.query_error("read playlists"))?;
        let mut out = Vec::with_capacity(heads.len());
        for (name, source, loaded_by, loaded_at_ms) in heads {
            let items: Vec<Vec<u8>> = items_stmt
                .query_map(params![name], |row| row.get(0))
                .and_then(|rows| rows.collect())
                .map_err(self.query_error("read playlists"))?;
            out.push(PlaylistRecord {
                items: items.into_iter().map(path_from_bytes).collect(),
                loaded_at: self.timestamp(loaded_at_ms)?,
                name,
                source,
                loaded_by,
            });
        }
        Ok(out)
    }

    /// Last fire per schedule name (config and runtime schedules alike).
    pub fn set_last_fire(&mut self, schedule: &str, at: Timestamp) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO last_fires (schedule, at_ms) VALUES (?1, ?2)
                 ON CONFLICT (schedule) DO UPDATE SET at_ms = excluded.at_ms",
                params![schedule, at.as_millisecond()],
            )
            .map_err(self.query_error("record a schedule's last fire"))?;
        Ok(())
    }

    pub fn last_fires(&self) -> Result<HashMap<String, Timestamp>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT schedule, at_ms FROM last_fires")
            .map_err(self.query_error("read last fires"))?;
        let raw: Vec<(String, i64)> = stmt
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(self.query_error("read last fires"))?;
        raw.into_iter()
            .map(|(name, ms)| Ok((name, self.timestamp(ms)?)))
            .collect()
    }

    /// Remembers an item's loudness by content hash (a later measurement of
    /// the same bytes replaces it).
    pub fn put_loudness(
        &mut self,
        sha256: &str,
        m: &crate::media::loudness::Measured,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let finite = |v: f64| v.is_finite().then_some(v);
        self.conn
            .execute(
                "INSERT INTO loudness (sha256, integrated_lufs, true_peak_dbtp, measured_at_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (sha256) DO UPDATE SET integrated_lufs = excluded.integrated_lufs,
                   true_peak_dbtp = excluded.true_peak_dbtp, measured_at_ms = excluded.measured_at_ms",
                params![sha256, finite(m.integrated_lufs), finite(m.true_peak_dbtp), at.as_millisecond()],
            )
            .map_err(self.query_error("record an item's loudness"))?;
        Ok(())
    }

    /// Every remembered loudness measurement, by content hash.
    pub fn loudness(&self) -> Result<Vec<(String, crate::media::loudness::Measured)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT sha256, integrated_lufs, true_peak_dbtp FROM loudness")
            .map_err(self.query_error("read loudness measurements"))?;
        let raw: Vec<(String, Option<f64>, Option<f64>)> = stmt
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .and_then(|rows| rows.collect())
            .map_err(self.query_error("read loudness measurements"))?;
        Ok(raw
            .into_iter()
            .map(|(sha256, lufs, tp)| {
                let m = crate::media::loudness::Measured {
                    integrated_lufs: lufs.unwrap_or(f64::NEG_INFINITY),
                    true_peak_dbtp: tp.unwrap_or(f64::NEG_INFINITY),
                };
                (sha256, m)
            })
            .collect())
    }

    /// One endpoint health transition (DESIGN "Endpoint health").
    pub fn record_health_event(
        &mut self,
        at: Timestamp,
        zone: &str,
        endpoint: &str,
        address: &str,
        state: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO health_events (at_ms, zone, endpoint, address, state, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![at.as_millisecond(), zone, endpoint, address, state, detail],
            )
            .map_err(self.query_error("record a health event"))?;
        Ok(())
    }

    /// `PRAGMA integrity_check`: "ok", or SQLite's list of problems, one a line.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        let mut stmt = self
            .conn
            .prepare("PRAGMA integrity_check")
            .map_err(self.query_error("check integrity"))?;
        let lines: Vec<String> = stmt
            .query_map([], |row| row.get(0))
            .and_then(|rows| rows.collect())
            .map_err(self.query_error("check integrity"))?;
        Ok(lines.join("\n"))
    }

    fn timestamp(&self, ms: i64) -> Result<Timestamp, StoreError> {
        Timestamp::from_millisecond(ms)
            .map_err(|e| self.bad_value(format!("time {ms} ms is out of range: {e}")))
    }

    fn parse_zones(&self, json: &str, what: &str, key: &str) -> Result<Vec<String>, StoreError> {
        serde_json::from_str(json)
            .map_err(|e| self.bad_value(format!("{what} {key}: zones {json:?} is not a list: {e}")))
    }
}


struct RawHistory {
    id: i64,
    program: i64,
    program_name: String,
    source: String,
    sha256: Option<String>,
    zones: String,
    priority: String,
    origin: String,
    caller_uid: Option<u32>,
    caller_pid: Option<i32>,
    start_ms: i64,
    end_ms: Option<i64>,
    outcome: Option<String>,
    error: Option<String>,
}

struct RawSchedule {
    name: String,
    cron: String,
    playlist: Option<String>,
    file: Option<String>,
    say: Option<String>,
    voice: Option<String>,
    zones: String,
    priority: String,
    max_duration_secs: Option<i64>,
    misfire_grace_secs: i64,
    enabled: bool,
    on_preempt: String,
    on_busy: String,
    created_by: Option<u32>,
}

fn open_error(path: &Path, source: rusqlite::Error) -> StoreError {
    let path = path.to_path_buf();
    match source.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) | Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
            StoreError::NotADatabase { path, source }
        }
        _ => StoreError::Open { path, source },
    }
}

/// Why SQLite could not open a database in `dir`, when the reason is that
/// nothing can be written there (read-only mount, full disk).
fn unwritable(dir: &Path, path: &Path) -> Option<StoreError> {
    let probe = dir.join(".loa-write-test");
    let result = std::fs::write(&probe, b"loa");
    let _ = std::fs::remove_file(&probe);
    result.err().map(|source| StoreError::Unwritable {
        path: path.to_path_buf(),
        dir: dir.to_path_buf(),
        source,
    })
}

fn zones_json(zones: &[String]) -> String {
    serde_json::to_string(zones).expect("a list of strings always serializes")
}

fn to_sql_int(what: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::TooLarge { what, value })
}

#[cfg(unix)]
fn path_bytes(path: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes().to_vec()
}

#[cfg(unix)]
fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

#[cfg(not(unix))]
fn path_bytes(path: &Path) -> Vec<u8> {
    path.to_string_lossy().into_owned().into_bytes()
}

#[cfg(not(unix))]
fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
}

/// Times serialize as RFC 3339 UTC strings, as the CSV prints them.
pub(crate) mod serde_time {
    use jiff::Timestamp;

    pub(crate) fn timestamp<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(t)
    }

    pub(crate) fn option_timestamp<S: serde::Serializer>(
        t: &Option<Timestamp>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.collect_str(t),
            None => s.serialize_none(),
        }
    }
}

/// `Priority` as its lowercase word, the way the control socket spells it.
mod priority_word {
    use crate::proto::Priority;
    use serde::Deserialize;

    pub(super) fn serialize<S: serde::Serializer>(p: &Priority, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(p.as_str())
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Priority, D::Error> {
        let word = String::deserialize(d)?;
        word.parse().map_err(serde::de::Error::custom)
    }
}
