//! loa — broadcast controller for commune IP loudspeaker systems.
//!
//! The crate is one binary (`src/main.rs`) over this library. Modules that
//! decide (`rtp::session`, later the scheduler, arbiter and health monitor)
//! take time as an argument and do no I/O; the modules that touch the world
//! (`net`, `pacer`, `stream`) are thin shells around them.

pub mod broadcast;
pub mod capture;
pub mod chime;
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod health;
pub mod leveller;
pub mod live;
pub mod loudness;
pub mod media;
pub mod net;
pub mod netwatch;
pub mod opus;
pub mod pacer;
pub mod program;
pub mod rtp;
pub mod sap;
pub mod schedule;
pub mod speaker;
pub mod store;
pub mod stream;
pub mod tts;
