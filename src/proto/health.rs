//! `endpoints.list` / `endpoints.subscribe`: the loudspeakers' health as
//! the wire carries it, and the `endpoints.changed` notification.

use serde::{Deserialize, Serialize};

pub use super::speakers::SpeakerTransport;

crate::words! {
    /// An endpoint's state (DESIGN "Endpoint health").
    pub enum EndpointState("endpoint state") {
        /// Never heard.
        Unknown = "unknown",
        Online = "online",
        /// Reports show loss or jitter over the thresholds.
        Degraded = "degraded",
        /// Silent for too long while its zone sends, or its probe fails.
        Offline = "offline",
        /// Reports from an address not in the inventory: a security signal.
        Unregistered = "unregistered",
    }
}

/// `endpoints.list` and `endpoints.subscribe` params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointsParams {
    /// Only this zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// `endpoints.list` / `endpoints.subscribe` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointList {
    pub endpoints: Vec<Endpoint>,
}

/// One loudspeaker (or an unregistered reporter) of one zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub zone: String,
    /// The inventory name, a joined speaker's enrolled name, or an
    /// unregistered reporter's address.
    pub name: String,
    /// An IP for a speaker listed in the config (it may report from any
    /// port); a joined speaker's public address:port (its NAT's mapping),
    /// `-` while an enrolled speaker has not been heard since loa started.
    pub address: String,
    /// How loa reaches it: the zone's group or unicast targets for a
    /// listed speaker, its session's transport for a joined one; none for
    /// an unregistered reporter. Missing from older daemons.
    #[serde(default)]
    pub transport: Option<SpeakerTransport>,
    /// A speaker that joined loa itself (issue 15) rather than one listed
    /// in the config.
    #[serde(default)]
    pub joined: bool,
    pub state: EndpointState,
    /// Seconds in this state (one decimal).
    pub since_secs: Option<f64>,
    pub loss_pct: Option<f64>,
    pub jitter_ms: Option<f64>,
    pub rtt_ms: Option<f64>,
    /// Seconds since the last receiver report.
    pub last_report_secs: Option<f64>,
    pub registered: bool,
    pub cname: Option<String>,
}

/// Speakers of one zone by state, for `loa status`. A zone with no
/// speaker listed or heard is `{}` in today's daemon's answer: every
/// count missing is 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointCounts {
    pub online: u32,
    pub degraded: u32,
    pub offline: u32,
    pub unknown: u32,
    pub unregistered: u32,
}

impl EndpointCounts {
    pub fn add(&mut self, state: EndpointState) {
        match state {
            EndpointState::Online => self.online += 1,
            EndpointState::Degraded => self.degraded += 1,
            EndpointState::Offline => self.offline += 1,
            EndpointState::Unknown => self.unknown += 1,
            EndpointState::Unregistered => self.unregistered += 1,
        }
    }
}

/// The `endpoints.changed` notification: one endpoint changed state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointChange {
    pub zone: String,
    pub endpoint: String,
    pub address: String,
    pub from: EndpointState,
    pub to: EndpointState,
    pub detail: String,
    /// RFC 3339 instant.
    pub at: String,
}

/// The method name of [`EndpointChange`] notifications.
pub const ENDPOINTS_CHANGED: &str = "endpoints.changed";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_without_speakers_counts_zero_of_each() {
        let counts: EndpointCounts = serde_json::from_str("{}").unwrap();
        assert_eq!(counts, EndpointCounts::default());
    }
}
