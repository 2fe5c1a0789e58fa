//! What can go wrong with the database, and the operator's words for it.

use super::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the state directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot make {path} readable by its owner only (it holds zone keys): {source}")]
    Permissions {
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
            StoreError::CreateDir { source, .. }
            | StoreError::Permissions { source, .. }
            | StoreError::Unwritable { source, .. } => Problem::from_io(source),
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
