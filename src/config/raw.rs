//! The TOML schema as people write it (serde), with spans kept on every
//! value validation may complain about. Unknown keys are refused here, so a
//! typo is an error with a position rather than a silently ignored setting.

use serde::Deserialize;
use toml::Spanned;

/// The keys each table accepts, named as operators see the table, so an
/// unknown-key message can say where the key was and what would be valid.
/// serde's own message lists the expected keys but not the table; the list
/// identifies it. `tables_match_the_schema` keeps these in step with the
/// structs below.
pub(super) const TABLES: &[(&str, &[&str])] = &[
    (
        "at the top level",
        &["network", "audio", "daemon", "health", "sap", "chime", "tts", "speakers", "security", "zone", "playlist", "schedule"],
    ),
    ("in [network]", &["interface", "ttl", "dscp"]),
    (
        "in [audio]",
        &[
            "channels",
            "frame_ms",
            "bitrate",
            "complexity",
            "fec",
            "expected_loss_pct",
            "payload_type",
            "normalize",
            "loudness_target",
            "true_peak_max",
        ],
    ),
    (
        "in [daemon]",
        &["socket", "socket_group", "state_dir", "timezone", "media_roots"],
    ),
    ("in [[zone]]", &["name", "group", "endpoints", "unicast", "security", "mki"]),
    (
        "in a zone endpoint",
        &["name", "address", "probe", "probe_interval", "probe_timeout"],
    ),
    (
        "in [health]",
        &[
            "report_interval",
            "degraded_loss_pct",
            "degraded_jitter_ms",
            "offline_intervals",
        ],
    ),
    ("in [sap]", &["enabled", "interval", "address"]),
    (
        "in [chime]",
        &["background", "scheduled", "announcement", "live", "emergency"],
    ),
    ("in [tts]", &["voice", "espeak", "rate"]),
    ("in [speakers]", &["listen", "keepalive", "missed_keepalives"]),
    ("in [security]", &["suite", "rotate"]),
    (
        "in [[playlist]]",
        &["name", "items", "m3u", "dir", "shuffle", "loop"],
    ),
    (
        "in [[schedule]]",
        &[
            "name",
            "cron",
            "playlist",
            "file",
            "say",
            "voice",
            "zones",
            "priority",
            "max_duration",
            "misfire_grace",
            "enabled",
            "on_preempt",
            "on_busy",
        ],
    ),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub network: Option<Spanned<RawNetwork>>,
    pub audio: Option<RawAudio>,
    pub daemon: Option<RawDaemon>,
    pub health: Option<RawHealth>,
    pub sap: Option<RawSap>,
    pub chime: Option<RawChimes>,
    pub tts: Option<Spanned<RawTts>>,
    pub speakers: Option<RawSpeakers>,
    pub security: Option<RawSecurity>,
    #[serde(default)]
    pub zone: Vec<Spanned<RawZone>>,
    #[serde(default)]
    pub playlist: Vec<Spanned<RawPlaylist>>,
    #[serde(default)]
    pub schedule: Vec<Spanned<RawSchedule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    pub interface: Option<Spanned<String>>,
    pub ttl: Option<Spanned<i64>>,
    pub dscp: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudio {
    pub channels: Option<Spanned<i64>>,
    pub frame_ms: Option<Spanned<i64>>,
    pub bitrate: Option<Spanned<i64>>,
    pub complexity: Option<Spanned<i64>>,
    pub fec: Option<bool>,
    pub expected_loss_pct: Option<Spanned<i64>>,
    pub payload_type: Option<Spanned<i64>>,
    pub normalize: Option<bool>,
    pub loudness_target: Option<Spanned<f64>>,
    pub true_peak_max: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDaemon {
    pub socket: Option<String>,
    pub socket_group: Option<Spanned<String>>,
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
    pub security: Option<Spanned<String>>,
    pub mki: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEndpoint {
    pub name: Spanned<String>,
    pub address: Spanned<String>,
    pub probe: Option<Spanned<String>>,
    pub probe_interval: Option<Spanned<String>>,
    pub probe_timeout: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHealth {
    pub report_interval: Option<Spanned<String>>,
    pub degraded_loss_pct: Option<Spanned<f64>>,
    pub degraded_jitter_ms: Option<Spanned<f64>>,
    pub offline_intervals: Option<Spanned<i64>>,
}

/// `[speakers]`: where speakers that join loa themselves connect.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSpeakers {
    pub listen: Option<Spanned<String>>,
    pub keepalive: Option<Spanned<String>>,
    pub missed_keepalives: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSap {
    pub enabled: Option<bool>,
    pub interval: Option<Spanned<String>>,
    pub address: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChimes {
    pub background: Option<Spanned<RawChime>>,
    pub scheduled: Option<Spanned<RawChime>>,
    pub announcement: Option<Spanned<RawChime>>,
    pub live: Option<Spanned<RawChime>>,
    pub emergency: Option<Spanned<RawChime>>,
}

/// `true` (loa's own chime), `false`, or a file.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawChime {
    On(bool),
    File(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTts {
    pub voice: Option<Spanned<String>>,
    pub espeak: Option<Spanned<String>>,
    pub rate: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSecurity {
    pub suite: Option<Spanned<String>>,
    pub rotate: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlaylist {
    pub name: Spanned<String>,
    pub items: Option<Spanned<Vec<String>>>,
    pub m3u: Option<Spanned<String>>,
    pub dir: Option<Spanned<String>>,
    #[serde(default)]
    pub shuffle: bool,
    #[serde(default, rename = "loop")]
    pub looped: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedule {
    pub name: Spanned<String>,
    pub cron: Spanned<String>,
    pub playlist: Option<Spanned<String>>,
    pub file: Option<Spanned<String>>,
    pub say: Option<Spanned<String>>,
    pub voice: Option<Spanned<String>>,
    pub zones: Spanned<RawZones>,
    pub priority: Option<Spanned<String>>,
    pub max_duration: Option<Spanned<String>>,
    pub misfire_grace: Option<Spanned<String>>,
    pub enabled: Option<bool>,
    pub on_preempt: Option<Spanned<String>>,
    pub on_busy: Option<Spanned<String>>,
}

/// `zones = "all"` or `zones = ["thon-1", "thon-2"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawZones {
    Word(String),
    // Plain strings: serde's untagged enums buffer their input, which
    // loses the spans `Spanned` needs; errors point at the whole value.
    Names(Vec<String>),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expected keys serde reports for an unknown key in `T`.
    fn expected_keys<T: serde::de::DeserializeOwned + std::fmt::Debug>() -> Vec<String> {
        let message = toml::from_str::<T>("not_a_key = 1")
            .unwrap_err()
            .message()
            .to_string();
        message
            .split('`')
            .skip(3)
            .step_by(2)
            .map(String::from)
            .collect()
    }

    #[test]
    fn tables_match_the_schema() {
        let schema = [
            expected_keys::<RawConfig>(),
            expected_keys::<RawNetwork>(),
            expected_keys::<RawAudio>(),
            expected_keys::<RawDaemon>(),
            expected_keys::<RawZone>(),
            expected_keys::<RawEndpoint>(),
            expected_keys::<RawHealth>(),
            expected_keys::<RawSap>(),
            expected_keys::<RawChimes>(),
            expected_keys::<RawTts>(),
            expected_keys::<RawSpeakers>(),
            expected_keys::<RawSecurity>(),
            expected_keys::<RawPlaylist>(),
            expected_keys::<RawSchedule>(),
        ];
        assert_eq!(TABLES.len(), schema.len());
        for ((table, keys), schema) in TABLES.iter().zip(schema) {
            assert_eq!(*keys, schema, "{table}");
        }
    }
}
