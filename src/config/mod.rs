//! Configuration: owns the TOML schema (`raw`), its validation into typed,
//! valid-by-construction values (`validate`), and span-carrying errors
//! (`error`). Nothing outside this module re-checks a config value.
//!
//! Must not touch: sockets, files other than the config file itself.

mod error;
mod programs;
mod raw;
pub mod schedule;
mod validate;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{ConfigError, ConfigErrors};
pub(crate) use programs::{name_ok, parse_duration};

/// A whole, valid configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// File it was read from (for messages); `None` when parsed from a string.
    pub source: Option<PathBuf>,
    pub network: Network,
    pub audio: Audio,
    pub daemon: Daemon,
    pub health: Health,
    pub sap: Sap,
    pub chime: Chimes,
    /// Text-to-speech (`[tts]`).
    pub tts: Tts,
    /// Speakers that join loa themselves (`[speakers]`).
    pub speakers: Speakers,
    /// SRTP settings for every `security = "srtp"` zone (`[security]`).
    pub security: Security,
    pub zones: Vec<Zone>,
    pub playlists: Vec<Playlist>,
    pub schedules: Vec<Schedule>,
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
    /// Loudness normalisation (EBU R128).
    pub loudness: LoudnessSettings,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Daemon {
    pub socket: PathBuf,
    /// Group that may use the control socket (mode 0660); `None` keeps the
    /// daemon's own group.
    pub socket_group: Option<String>,
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
    pub security: ZoneSecurity,
    /// SRTP packets carry the MKI naming their key (RFC 3711 §3.1), so
    /// receivers follow a key change on their own. False (`mki = false`)
    /// for receivers that cannot read an MKI, such as ffmpeg: packets
    /// carry none, `loa sdp` gives only the key in use, and such a
    /// receiver plays nothing from the next key change until it is given
    /// a new SDP. Always true on a plain zone.
    pub mki: bool,
}

/// Whether a zone's audio is authenticated and encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZoneSecurity {
    /// SRTP and SRTCP (RFC 3711) under the zone's key ring: only holders of
    /// the key can play audio on the zone's speakers or decode it.
    #[default]
    Srtp,
    /// Plain RTP, for legacy speakers that cannot do SRTP. Anyone who can
    /// put a UDP packet on the group can play audio on the zone; `loa check`
    /// and `loa status` say so.
    None,
}

impl ZoneSecurity {
    pub fn as_str(self) -> &'static str {
        match self {
            ZoneSecurity::Srtp => "srtp",
            ZoneSecurity::None => "none",
        }
    }
}

/// The SRTP protection profile of the zones (RFC 3711, RFC 7714). Kept here
/// rather than as `rtp::srtp::Suite` so the config does not depend on the
/// RTP code; `Suite::from` maps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SrtpSuite {
    #[default]
    AesCm128HmacSha1_80,
    AeadAes128Gcm,
}

impl SrtpSuite {
    /// The RFC 4568 / RFC 7714 name, as written in the config and in SDP.
    pub fn name(self) -> &'static str {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpSuite::AeadAes128Gcm => "AEAD_AES_128_GCM",
        }
    }
}

/// `[security]`: how zone keys are made and how long each lives.
#[derive(Debug, Clone, PartialEq)]
pub struct Security {
    pub suite: SrtpSuite,
    /// A zone key's lifetime: the next key takes over this long after the
    /// current one did (default a day).
    pub rotate: Duration,
}

/// Default key lifetime: daily, so a leaked SDP stops working within two
/// days (the SDP carries the current and the next key).
pub const DEFAULT_ROTATE: Duration = Duration::from_secs(24 * 3600);
/// Shortest key lifetime: a rotation costs a key hand-out to every speaker.
pub const MIN_ROTATE: Duration = Duration::from_secs(5);

impl Default for Security {
    fn default() -> Security {
        Security {
            suite: SrtpSuite::default(),
            rotate: DEFAULT_ROTATE,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub name: String,
    pub address: IpAddr,
    pub probe: EndpointProbe,
    pub probe_interval: Duration,
    pub probe_timeout: Duration,
}

/// How a speaker's health is known: from its RTCP receiver reports (the
/// default), or by probing it for speakers that send none.
#[derive(Debug, Clone, PartialEq)]
pub enum EndpointProbe {
    Rtcp,
    /// A TCP connect to this port.
    Tcp(u16),
    /// An HTTP GET answered with 2xx.
    Http(String),
}

/// Endpoint health thresholds (DESIGN "Endpoint health").
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// How often speakers are expected to report (RFC 3550: ≈5 s).
    pub report_interval: Duration,
    pub degraded_loss_pct: f64,
    pub degraded_jitter_ms: f64,
    /// Silent report intervals (while the zone sends) before `offline`.
    pub offline_intervals: u32,
}

impl Default for Health {
    fn default() -> Health {
        Health {
            report_interval: Duration::from_secs(5),
            degraded_loss_pct: 5.0,
            degraded_jitter_ms: 30.0,
            offline_intervals: 3,
        }
    }
}

/// `[speakers]` (issue 15): joins over TLS and unicast SRTP on one port
/// number. Without `listen` no speaker can join, and `loa speakers add`
/// says so.
#[derive(Debug, Clone, PartialEq)]
pub struct Speakers {
    pub listen: Option<SocketAddr>,
    /// How often a joined speaker sends its keepalive (an SRTCP RR).
    pub keepalive: Duration,
    /// Keepalives missed in a row before its binding is dropped.
    pub missed_keepalives: u32,
}

impl Default for Speakers {
    fn default() -> Speakers {
        // 15 s holds a carrier NAT's UDP mapping (RFC 6263 §4.6 suggests
        // at most 15 s for unknown NATs).
        Speakers { listen: None, keepalive: Duration::from_secs(15), missed_keepalives: 3 }
    }
}

/// SAP announcements of each zone's SDP (RFC 2974), off unless asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Sap {
    pub enabled: bool,
    /// Base announcement interval (±1/3 jitter), at least 1 s.
    pub interval: Duration,
    /// Multicast IPv4 address and port announcements go to.
    pub address: SocketAddrV4,
}

impl Default for Sap {
    fn default() -> Sap {
        Sap {
            enabled: false,
            interval: DEFAULT_SAP_INTERVAL,
            address: DEFAULT_SAP_ADDRESS.parse().expect("valid default"),
        }
    }
}

/// What plays before a program (`[chime]`, one setting per priority).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Chime {
    #[default]
    Off,
    /// loa's own chime (`crate::media::chime`), written to state_dir at start.
    BuiltIn,
    /// An operator's file; relative paths are looked up in the media roots.
    File(PathBuf),
}

/// The chime per priority level; all off unless configured.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Chimes {
    pub background: Chime,
    pub scheduled: Chime,
    pub announcement: Chime,
    pub live: Chime,
    pub emergency: Chime,
}

impl Chimes {
    pub fn for_priority(&self, priority: crate::proto::Priority) -> &Chime {
        use crate::proto::Priority;
        match priority {
            Priority::Background => &self.background,
            Priority::Scheduled => &self.scheduled,
            Priority::Announcement => &self.announcement,
            Priority::Live => &self.live,
            Priority::Emergency => &self.emergency,
        }
    }

    pub fn any(&self) -> bool {
        [&self.background, &self.scheduled, &self.announcement, &self.live, &self.emergency]
            .iter()
            .any(|c| **c != Chime::Off)
    }
}

/// A named list of media, played in order (or shuffled), once or in a loop.
#[derive(Debug, Clone, PartialEq)]
pub struct Playlist {
    pub name: String,
    pub source: PlaylistSource,
    pub shuffle: bool,
    pub looped: bool,
}

/// Where a playlist's items come from. Relative paths are looked up in the
/// media roots when the playlist plays.
#[derive(Debug, Clone, PartialEq)]
pub enum PlaylistSource {
    Items(Vec<PathBuf>),
    /// An M3U/M3U8 or PLS file (chosen by extension).
    File(PathBuf),
    /// The audio files of a folder, sorted by name.
    Dir(PathBuf),
}

/// A cron-timed broadcast.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    pub cron: crate::schedule::CronExpr,
    pub target: ScheduleTarget,
    pub zones: ZoneSelection,
    pub priority: crate::proto::Priority,
    pub max_duration: Option<Duration>,
    /// How late a fire may still start after the daemon was down.
    pub misfire_grace: Duration,
    pub enabled: bool,
    pub on_preempt: crate::proto::OnPreempt,
    pub on_busy: crate::proto::OnBusy,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Schedule) -> bool {
        self.name == other.name
            && self.cron.as_str() == other.cron.as_str()
            && self.target == other.target
            && self.zones == other.zones
            && self.priority == other.priority
            && self.max_duration == other.max_duration
            && self.misfire_grace == other.misfire_grace
            && self.enabled == other.enabled
            && self.on_preempt == other.on_preempt
            && self.on_busy == other.on_busy
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ScheduleTarget {
    Playlist(String),
    File(PathBuf),
    /// Text spoken by espeak-ng; `voice` None = `[tts] voice`.
    Say { text: String, voice: Option<String> },
}

/// The zones a program plays on. `All` is resolved when it starts, so a zone
/// added by a reload is included.
#[derive(Debug, Clone, PartialEq)]
pub enum ZoneSelection {
    All,
    Named(Vec<String>),
}

/// Default `misfire_grace`: a broadcast may start up to this late after a
/// restart; beyond it, it is recorded as missed.
pub const DEFAULT_MISFIRE_GRACE: Duration = Duration::from_secs(5 * 60);

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        validate::load(path)
    }

    /// Parses and validates TOML text; `file_name` is used in messages.
    pub fn parse(text: &str, file_name: &str) -> Result<Config, ConfigErrors> {
        validate::parse(text, file_name)
    }

    /// Zones whose audio anyone on the network can replace: one warning
    /// line each, for `loa check` and `loa status`.
    pub fn insecure_zone_warnings(&self) -> Vec<String> {
        self.zones
            .iter()
            .filter(|z| z.security == ZoneSecurity::None)
            .map(|z| insecure_zone_warning(&z.name))
            .collect()
    }

    /// SRTP zones without MKI: one warning line each, for `loa check`.
    pub fn mki_less_zone_warnings(&self) -> Vec<String> {
        self.zones
            .iter()
            .filter(|z| z.security == ZoneSecurity::Srtp && !z.mki)
            .map(|z| mki_less_zone_warning(&z.name, self.security.rotate))
            .collect()
    }

    pub fn zone(&self, name: &str) -> Option<&Zone> {
        self.zones.iter().find(|z| z.name == name)
    }

    pub fn playlist(&self, name: &str) -> Option<&Playlist> {
        self.playlists.iter().find(|p| p.name == name)
    }
}

/// The warning for a `security = "none"` zone.
pub fn insecure_zone_warning(zone: &str) -> String {
    format!(
        "zone {zone} has security = \"none\": its audio is plain RTP, so anyone on the network can play audio on its speakers"
    )
}

/// The warning for an SRTP zone with `mki = false`: what its receivers
/// lose at a key change, which they cannot see coming.
pub fn mki_less_zone_warning(zone: &str, rotate: Duration) -> String {
    format!(
        "zone {zone} has mki = false: its packets do not name their key, so a receiver holds only the key in use and \
         plays nothing from the next key change (every {}, and 2 s after a revocation) until it is given a new SDP \
         (`loa sdp --zone {zone}`); `loa speaker` does the same",
        humantime_rotate(rotate)
    )
}

fn humantime_rotate(d: Duration) -> String {
    let s = d.as_secs();
    if s % 3600 == 0 {
        format!("{} h", s / 3600)
    } else if s % 60 == 0 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

/// SAP's well-known address for the global/admin scope (RFC 2974 §3) and
/// loa's announcement interval (ARCHITECTURE.md "SAP").
pub const DEFAULT_SAP_ADDRESS: &str = "224.2.127.254:9875";
pub const DEFAULT_SAP_INTERVAL: Duration = Duration::from_secs(30);

/// Default voice and words-per-minute bounds espeak-ng accepts.
pub const DEFAULT_VOICE: &str = "vi";
pub const RATE_RANGE: std::ops::RangeInclusive<u32> = 80..=450;

/// How to run espeak-ng (`[tts]` in the config).
#[derive(Debug, Clone, PartialEq)]
pub struct Tts {
    pub voice: String,
    /// The program: a name looked up in PATH, or a path.
    pub espeak: PathBuf,
    /// Words per minute; `None` = espeak-ng's default (175).
    pub rate: Option<u32>,
}

impl Default for Tts {
    fn default() -> Tts {
        Tts {
            voice: DEFAULT_VOICE.into(),
            espeak: "espeak-ng".into(),
            rate: None,
        }
    }
}

/// Normalisation settings (`[audio] normalize`, `loudness_target`,
/// `true_peak_max`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoudnessSettings {
    pub normalize: bool,
    /// LUFS.
    pub target_lufs: f64,
    /// dBTP.
    pub true_peak_max_dbtp: f64,
}

impl Default for LoudnessSettings {
    fn default() -> LoudnessSettings {
        LoudnessSettings {
            normalize: true,
            target_lufs: -16.0,
            true_peak_max_dbtp: -1.0,
        }
    }
}
