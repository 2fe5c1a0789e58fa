//! `broadcast.start`, `broadcast.stop` and `live.start`: programs put on
//! air and taken off by operators, and the live client's notifications.

use serde::{Deserialize, Serialize};

use super::text::HumanDuration;
use super::{OnBusy, Outcome, PcmEncoding, Priority, ProgramId, ZoneSelection};

/// `broadcast.start` params: files, a playlist, or text to say (exactly
/// one of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartParams {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playlist: Option<String>,
    /// Text to speak (espeak-ng) instead of files or a playlist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub say: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
    pub zones: ZoneSelection,
    /// Default: announcement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Shown in status and history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, rename = "loop")]
    pub looped: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_busy: Option<OnBusy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<HumanDuration>,
}

/// What a `broadcast.start` plays.
#[derive(Debug, Clone, PartialEq)]
pub enum StartWhat {
    Files(Vec<String>),
    Playlist(String),
    Say { text: String, voice: Option<String> },
}

impl StartParams {
    /// The one thing to play, or why the request is not one.
    pub fn what(&self) -> Result<StartWhat, &'static str> {
        if self.voice.is_some() && self.say.is_none() {
            return Err("voice is only for say");
        }
        match (self.files.is_empty(), &self.playlist, &self.say) {
            (false, None, None) => Ok(StartWhat::Files(self.files.clone())),
            (true, Some(p), None) => Ok(StartWhat::Playlist(p.clone())),
            (true, None, Some(text)) => Ok(StartWhat::Say { text: text.clone(), voice: self.voice.clone() }),
            _ => Err("give files, a playlist or text to say, only one"),
        }
    }
}

/// `broadcast.start` / `live.start` result, sent once the program is on
/// air on the zones it could get.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Started {
    pub id: ProgramId,
    /// Zones it plays on now.
    pub zones: Vec<String>,
    /// Zones it waits for (held by equal or higher programs).
    pub waiting: Vec<String>,
}

/// `broadcast.stop` params: exactly one of `id`, `zone`, `all`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<ProgramId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
}

/// What a `broadcast.stop` stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopWhat {
    Program(ProgramId),
    Zone(String),
    All,
}

impl StopParams {
    pub fn what(&self) -> Result<StopWhat, &'static str> {
        match (self.id, &self.zone, self.all) {
            (Some(id), None, false) => Ok(StopWhat::Program(id)),
            (None, Some(zone), false) => Ok(StopWhat::Zone(zone.clone())),
            (None, None, true) => Ok(StopWhat::All),
            _ => Err("give one of id, zone or all"),
        }
    }
}

/// `broadcast.stop` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stopped {
    pub stopped: Vec<ProgramId>,
}

/// `live.start` params; the PCM follows on the same connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveStartParams {
    pub zones: ZoneSelection,
    /// live (default) or emergency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<HumanDuration>,
    /// What feeds the client: "stdin" or "device NAME" (for history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// PCM sample format, rate and channel count of the stream.
    pub format: PcmEncoding,
    pub rate: u32,
    pub channels: u16,
}

/// `live.playing`: the live program now plays on `zone` (it waited for it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LivePlaying {
    pub zone: String,
}

/// `live.ended`: the live program ended; the connection closes after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveEnded {
    pub outcome: Outcome,
    pub error: Option<String>,
}

/// Notification method names on a live connection.
pub const LIVE_PLAYING: &str = "live.playing";
/// The input itself is on air (after any chime); params `{}`.
pub const LIVE_ON_AIR: &str = "live.on_air";
pub const LIVE_ENDED: &str = "live.ended";
