//! `config.reload`.

use serde::{Deserialize, Serialize};

/// `config.reload` params (none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadParams {}

/// `config.reload` result. A refused reload is an error whose `data`
/// holds `{"errors": ["FILE:LINE:COL: message", …]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reloaded {
    pub zones_added: Vec<String>,
    pub zones_removed: Vec<String>,
    /// Schedules in effect now.
    pub schedules: usize,
    /// What waits for a restart, what applies only to new programs.
    pub notes: Vec<String>,
}
