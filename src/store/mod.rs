//! SQLite persistence (DESIGN "Persistence"): broadcast history for the
//! auditor, runtime schedules and playlists, last fire per schedule, and
//! endpoint health transitions.
//!
//! Owns `state_dir/loa.db` and nothing else. It records what the scheduler,
//! arbiter and health monitor decided; it never decides anything itself, and
//! times come in as arguments. The config file stays the source of truth for
//! zones and endpoints: nothing here describes them.

mod error;
mod history;
mod keys;
mod measures;
mod runtime;
mod schema;
mod speakers;
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

pub use error::{Problem, StoreError};
pub use history::{HistoryQuery, NewItem};
pub use runtime::{PlaylistRecord, ScheduleRecord};
pub use speakers::{SpeakerEvent, SpeakerEventKind, SpeakerRecord};

const DB_FILE: &str = "loa.db";

/// Creates `path` mode 0600 if missing, and makes an existing file 0600
/// (databases from before zone keys were kept may be 0644).
fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
            }
            Ok(())
        }
        // Read-only state dirs and the like: SQLite's own open says why.
        Err(_) => Ok(()),
    }
}
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const INTERRUPTED_ERROR: &str = "the daemon stopped before the item ended";

pub use crate::proto::history::{HistoryRow, Outcome};

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
        // The file holds zone keys: made owner-only before SQLite writes a
        // byte (SQLite gives its -wal and -shm files the same mode).
        restrict_to_owner(&path).map_err(|source| StoreError::Permissions {
            path: path.clone(),
            source,
        })?;
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
