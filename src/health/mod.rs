//! Endpoint health: which loudspeakers of a zone are listening.
//!
//! Owns the per-endpoint state machine ([`HealthMonitor`], sans-IO: it is
//! fed RTCP receiver reports, probe results and `now`, and hands back events,
//! probe requests and its next deadline) and the thin probe executors
//! ([`run_probe`], tokio). It must not touch sockets of the RTP session, the
//! store or the control server: the daemon carries events there. On SRTP
//! zones, what arrives unauthenticated at the RTCP port is counted and
//! said, rate-limited, by [`UnauthenticatedLog`] and never reaches the
//! monitor.

mod monitor;
mod own_rtcp;
mod probe;
mod unauthenticated;

pub use monitor::{
    EndpointSpec, EndpointStatus, HealthConfig, HealthEvent, HealthMonitor, JoinedReporter, Link, Probe,
    ProbeRequest, Report, State,
};
pub use own_rtcp::ReportOrigin;
pub use probe::run_probe;
pub use unauthenticated::{SecurityLine, Unauthenticated, UnauthenticatedLog};

#[cfg(test)]
mod tests;
