//! Configuration: owns the TOML schema (`raw`), its validation into typed,
//! valid-by-construction values (`validate`), and span-carrying errors
//! (`error`). Nothing outside this module re-checks a config value.
//!
//! Must not touch: sockets, files other than the config file itself.

mod error;
mod raw;
mod validate;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{ConfigError, ConfigErrors};

/// A whole, valid configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// File it was read from (for messages); `None` when parsed from a string.
    pub source: Option<PathBuf>,
    pub network: Network,
    pub audio: Audio,
    pub daemon: Daemon,
    pub zones: Vec<Zone>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// IPv4 address of the interface multicast leaves from (IP_MULTICAST_IF).
    pub interface: Ipv4Addr,
    pub ttl: u8,
    /// DiffServ code point, 0–63 (default 46, EF).
    pub dscp: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channels {
    Mono,
    Stereo,
}

impl Channels {
    pub fn count(self) -> usize {
        match self {
            Channels::Mono => 1,
            Channels::Stereo => 2,
        }
    }
}

/// Opus frame duration; RFC 7587 allows 2.5–120 ms, we offer the ones
/// loudspeakers commonly accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameDuration {
    Ms10,
    Ms20,
    Ms40,
    Ms60,
}

impl FrameDuration {
    pub fn millis(self) -> u32 {
        match self {
            FrameDuration::Ms10 => 10,
            FrameDuration::Ms20 => 20,
            FrameDuration::Ms40 => 40,
            FrameDuration::Ms60 => 60,
        }
    }
    /// Samples per channel at the 48 kHz RTP clock.
    pub fn samples_48k(self) -> usize {
        self.millis() as usize * 48
    }
    pub fn duration(self) -> Duration {
        Duration::from_millis(self.millis() as u64)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    pub channels: Channels,
    pub frame: FrameDuration,
    /// 6000–510000.
    pub bitrate_bps: u32,
    /// 0–10.
    pub complexity: u8,
    pub fec: bool,
    /// 0–100.
    pub expected_loss_pct: u8,
    /// Dynamic payload type, 96–127.
    pub payload_type: u8,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Daemon {
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    /// IANA zone name, checked against the time zone database.
    pub timezone: String,
    pub media_roots: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    pub name: String,
    /// Multicast group and RTP port (RTCP is port + 1). Always a multicast address.
    pub group: SocketAddrV4,
    pub endpoints: Vec<Endpoint>,
    /// Extra unicast RTP targets (RTCP to port + 1 of each).
    pub unicast: Vec<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub name: String,
    pub address: IpAddr,
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        validate::load(path)
    }

    /// Parses and validates TOML text; `file_name` is used in messages.
    pub fn parse(text: &str, file_name: &str) -> Result<Config, ConfigErrors> {
        validate::parse(text, file_name)
    }

    pub fn zone(&self, name: &str) -> Option<&Zone> {
        self.zones.iter().find(|z| z.name == name)
    }
}
