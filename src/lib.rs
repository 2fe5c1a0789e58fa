//! loa — broadcast controller for commune IP loudspeaker systems.
//!
//! The crate is one binary (`src/main.rs`) over this library, one folder
//! per domain, in the order the data path reads (ARCHITECTURE.md):
//! the vocabulary (`proto`), `config`, `media` → `program` → `pacer` →
//! `rtp` → `net`, the decisions (`schedule`, `broadcast`, `health`), the
//! `store`, and the daemon and CLI that wire them. Modules that decide take
//! time as an argument and do no I/O; the modules that touch the world are
//! thin shells around them.

pub mod broadcast;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod health;
pub mod keys;
pub mod live;
pub mod media;
pub mod net;
pub mod pacer;
pub mod program;
pub mod proto;
pub mod rtp;
pub mod schedule;
pub mod speaker;
pub mod speakers;
pub mod store;
pub mod throttle;
