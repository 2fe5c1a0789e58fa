//! Endpoint health: which loudspeakers of a zone are listening.
//!
//! Owns the per-endpoint state machine ([`HealthMonitor`], sans-IO: it is
//! fed RTCP receiver reports, probe results and `now`, and hands back events,
//! probe requests and its next deadline) and the thin probe executors
//! ([`run_probe`], tokio). It must not touch sockets of the RTP session, the
//! store or the control server: the daemon carries events there.

mod monitor;
mod own_rtcp;
mod probe;

pub use monitor::{
    EndpointSpec, EndpointStatus, HealthConfig, HealthEvent, HealthMonitor, Probe, ProbeRequest,
    Report, State,
};
pub use own_rtcp::ReportOrigin;
pub use probe::run_probe;

#[cfg(test)]
mod tests;
