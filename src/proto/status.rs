//! `status`: what plays on each zone, what waits, what is next, and
//! whether the network, the history and SAP work.

use serde::{Deserialize, Serialize};

use super::{EndpointCounts, Priority, ProgramId};

/// `status` params (none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusParams {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    /// The config file the daemon runs.
    pub config: String,
    pub timezone: String,
    /// Local time with offset.
    pub started_at: String,
    pub uptime_secs: u64,
    pub zones: Vec<ZoneStatus>,
    pub programs: Vec<ProgramStatus>,
    /// The next schedule fires, soonest first.
    pub next: Vec<NextFire>,
    pub network: NetworkStatus,
    pub history: HistoryHealth,
    pub sap: SapStatus,
    /// Pacer stalls since start (absent from daemons before issue 14).
    #[serde(default)]
    pub pacer: PacerStatus,
}

/// The pacer's stalls since start: wake-ups over a second late (the
/// machine suspended, the daemon stopped). The missed ticks are skipped on
/// every zone: silence, after which programs resume where they stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PacerStatus {
    pub stalls: u64,
    /// Frame ticks skipped by those stalls (50 a second at 20 ms frames).
    pub skipped_ticks: u64,
    /// The longest stall, milliseconds.
    pub longest_stall_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneStatus {
    pub name: String,
    /// RTP packets not sent because the interface failed, since start.
    pub packets_not_sent: u64,
    /// The multicast group, `ADDR:PORT`.
    pub group: Option<String>,
    /// The program on air there.
    pub program: Option<ProgramId>,
    pub priority: Option<Priority>,
    pub endpoints: EndpointCounts,
    /// Pacer stalls that hit this zone while it was on air, since start.
    #[serde(default)]
    pub stalls: u64,
    /// Silence those stalls put on this zone's speakers, milliseconds.
    #[serde(default)]
    pub skipped_ms: u64,
    /// Whether the zone's audio is authenticated (absent from older
    /// daemons, which only had plain RTP).
    #[serde(default = "plain")]
    pub security: ZoneSecurity,
}

fn plain() -> ZoneSecurity {
    ZoneSecurity::None
}

crate::words! {
    /// How a zone's audio is protected.
    pub enum ZoneSecurity("zone security") {
        /// SRTP (RFC 3711): only key holders can play audio on the zone.
        Srtp = "srtp",
        /// Plain RTP: anyone on the network can play audio on the zone.
        None = "none",
    }
}

crate::words! {
    /// Where a program is in its life.
    pub enum ProgramState("program state") {
        /// Preparing its first frames (or waiting for its fire instant).
        Starting = "starting",
        /// On air on at least one zone.
        Playing = "playing",
        /// Was on air, lost every zone to higher programs; resumes where it
        /// paused.
        Paused = "paused",
        /// Never got a zone yet.
        Waiting = "waiting",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramStatus {
    pub id: ProgramId,
    pub name: String,
    pub priority: Priority,
    /// `schedule:NAME` or `uid:N`.
    pub origin: String,
    pub state: ProgramState,
    /// The zones it asked for.
    pub zones: Vec<String>,
    /// The zones it plays on now.
    pub playing_on: Vec<String>,
    pub looped: bool,
    pub item: Option<ItemStatus>,
    /// RFC 3339 instants.
    pub created: String,
    pub on_air_since: Option<String>,
}

/// The item on air.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemStatus {
    /// 0-based index in the program's item list.
    pub index: usize,
    pub count: usize,
    pub file: Option<String>,
    pub position_secs: f64,
    pub duration_secs: Option<f64>,
    pub sha256: Option<String>,
    /// Loudness gain applied, dB (one decimal).
    pub gain_db: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NextFire {
    pub schedule: String,
    /// Local time with offset.
    pub at: String,
    pub zones: Vec<String>,
}

crate::words! {
    /// Whether the sending interface works.
    pub enum NetState("network state") {
        Ok = "ok",
        Error = "error",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkStatus {
    pub interface: String,
    pub state: NetState,
    /// Why sending fails, in plain words.
    pub error: Option<String>,
    /// Local time with offset: when it went down.
    pub since: Option<String>,
    pub down_secs: Option<f64>,
    pub packets_not_sent: u64,
    pub packets_not_sent_total: u64,
}

/// Whether history writes reach the disk (ARCHITECTURE "A full or
/// read-only state_dir never stops the broadcast").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryHealth {
    /// Failed writes and requests so far (once per episode of a write).
    pub write_errors: u64,
    pub last_error: Option<String>,
    /// Set while history writes fail.
    pub failing: Option<Failing>,
    /// Writes kept in memory, waiting for the disk.
    pub waiting_writes: usize,
    /// Writes given up (backlog overflow, or refused by the database).
    pub lost_writes: u64,
    /// History rows missing entirely because their first write was lost.
    pub lost_rows: u64,
    pub lost_since: Option<jiff::Timestamp>,
    /// The last time waiting writes were all saved after a failure.
    pub caught_up_at: Option<jiff::Timestamp>,
    /// The database file.
    #[serde(default)]
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failing {
    pub since: jiff::Timestamp,
    /// "the disk is full", "the history database is read-only …".
    pub problem: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SapStatus {
    pub enabled: bool,
    pub address: String,
    /// Local time with offset.
    pub last_sent: Option<String>,
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_without_stall_figures_still_reads_with_zeros() {
        // What a daemon from before the stall figures answers.
        let zone = serde_json::json!({
            "name": "thon-1", "packets_not_sent": 0, "group": null, "program": null, "priority": null,
            "endpoints": {"online": 0, "degraded": 0, "offline": 0, "unknown": 0, "unregistered": 0}
        });
        let zone: ZoneStatus = serde_json::from_value(zone).unwrap();
        assert_eq!((zone.stalls, zone.skipped_ms), (0, 0));
        let status = serde_json::json!({
            "version": "0.1.0", "config": "/etc/loa/loa.toml", "timezone": "UTC",
            "started_at": "2026-12-04T00:00:00+00:00", "uptime_secs": 5,
            "zones": [], "programs": [], "next": [],
            "network": {"interface": "127.0.0.1", "state": "ok", "packets_not_sent": 0, "packets_not_sent_total": 0},
            "history": {"write_errors": 0, "waiting_writes": 0, "lost_writes": 0, "lost_rows": 0},
            "sap": {"enabled": false, "address": ""}
        });
        let status: Status = serde_json::from_value(status).unwrap();
        assert_eq!(status.pacer, PacerStatus::default());
    }
}
