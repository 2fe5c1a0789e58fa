//! `playlist.list` and `playlist.load`.

use serde::{Deserialize, Serialize};

/// `playlist.list` params (none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaylistListParams {}

crate::words! {
    /// Where a playlist is defined.
    pub enum PlaylistOrigin("playlist origin") {
        Config = "config",
        /// Loaded with `loa playlist load`, kept in the database.
        Runtime = "runtime",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaylistInfo {
    pub name: String,
    pub origin: PlaylistOrigin,
    /// "items", or the M3U/PLS file or folder it comes from.
    pub source: String,
    pub items: usize,
    pub duration_secs: f64,
    /// Items whose duration could not be read.
    pub unknown_durations: usize,
    pub shuffle: bool,
    #[serde(rename = "loop")]
    pub looped: bool,
    /// Why its file or folder cannot be read now.
    pub error: Option<String>,
}

/// `playlist.list` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaylistList {
    pub playlists: Vec<PlaylistInfo>,
}

/// `playlist.load` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaylistLoadParams {
    pub name: String,
    /// An M3U/M3U8/PLS file inside the media roots.
    pub file: String,
}

/// `playlist.load` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaylistLoaded {
    pub name: String,
    pub items: usize,
    /// Items that do not exist now (skipped when played).
    pub missing: Vec<String>,
}
