//! The daemon's long-lived tasks around the engine: the store thread (and
//! its backlog of writes that wait for the disk), the health listener, and
//! the SAP announcer and the speakers thread (enrolment, revocation). Each
//! owns its I/O and talks to the engine by channel.

pub mod health;
pub mod keys;
pub mod report_keys;
pub mod sap;
pub mod sessions;
pub mod speakers;
pub mod store;
pub mod store_backlog;
