//! The TOML schema as people write it (serde), with spans kept on every
//! value validation may complain about. Unknown keys are refused here, so a
//! typo is an error with a position rather than a silently ignored setting.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub network: Option<Spanned<RawNetwork>>,
    pub audio: Option<RawAudio>,
    pub daemon: Option<RawDaemon>,
    #[serde(default)]
    pub zone: Vec<Spanned<RawZone>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    pub interface: Option<Spanned<String>>,
    pub ttl: Option<Spanned<i64>>,
    pub dscp: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudio {
    pub channels: Option<Spanned<i64>>,
    pub frame_ms: Option<Spanned<i64>>,
    pub bitrate: Option<Spanned<i64>>,
    pub complexity: Option<Spanned<i64>>,
    pub fec: Option<bool>,
    pub expected_loss_pct: Option<Spanned<i64>>,
    pub payload_type: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDaemon {
    pub socket: Option<String>,
    pub state_dir: Option<String>,
    pub timezone: Option<Spanned<String>>,
    pub media_roots: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawZone {
    pub name: Spanned<String>,
    pub group: Spanned<String>,
    #[serde(default)]
    pub endpoints: Vec<Spanned<RawEndpoint>>,
    #[serde(default)]
    pub unicast: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEndpoint {
    pub name: Spanned<String>,
    pub address: Spanned<String>,
}
