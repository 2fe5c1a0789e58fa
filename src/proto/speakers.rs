//! `speakers.add`, `speakers.list` and `speakers.revoke`: enrolling the
//! speakers that join loa themselves (issue 15), seeing them, and cutting
//! one off.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

crate::words! {
    /// How a joined speaker receives its zones.
    pub enum SpeakerTransport("speaker transport") {
        Multicast = "multicast",
        /// SRTP to the address its keepalives come from (through its NAT).
        Unicast = "unicast",
        /// SRTP framed inside the TLS connection (UDP does not get through).
        Tls = "tls",
    }
}

crate::words! {
    /// Where an enrolled speaker stands.
    pub enum SpeakerState("speaker state") {
        /// Joined, keepalives arriving.
        Online = "online",
        /// Enrolled, no session (never joined, left, or keepalives missed).
        Offline = "offline",
        /// Its credential no longer joins.
        Revoked = "revoked",
    }
}

/// `speakers.add` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeakersAddParams {
    pub name: String,
    pub zones: Vec<String>,
}

/// `speakers.add` result: the credential file, a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeakerAdded {
    pub name: String,
    pub zones: Vec<String>,
    /// `sha256:<hex>` of the speaker's key, as the store knows it.
    pub pin: String,
    /// The credential file (TOML): daemon address, daemon pin, the
    /// speaker's certificate and private key.
    pub credential: String,
}

/// `speakers.list` params (none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeakersListParams {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeakerInfo {
    pub name: String,
    pub zones: Vec<String>,
    pub state: SpeakerState,
    /// While joined.
    pub transport: Option<SpeakerTransport>,
    /// The public address:port its authenticated packets come from (its
    /// NAT's mapping), while joined.
    pub address: Option<String>,
    pub last_keepalive: Option<Timestamp>,
    pub pin: String,
    pub enrolled_at: Timestamp,
    pub enrolled_by: Option<u32>,
    pub revoked_at: Option<Timestamp>,
    pub revoked_by: Option<u32>,
}

/// `speakers.list` result: live enrolments first, then revoked ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeakerList {
    pub speakers: Vec<SpeakerInfo>,
}

/// `speakers.revoke` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeakersRevokeParams {
    pub name: String,
}

/// `speakers.revoke` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeakerRevoked {
    pub name: String,
    /// Whether a live session was closed.
    pub session_closed: bool,
    /// Zones whose keys were rotated so it cannot decode what follows.
    pub zones_rekeyed: Vec<String>,
}
