//! Raw TOML → typed `Config`, collecting every error with its position so
//! the operator fixes the whole file in one go. (A TOML syntax or schema
//! error stops parsing, so it comes alone.)

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::error::{ConfigError, ConfigErrors, Locator};
use super::raw::{RawAudio, RawConfig, RawDaemon, RawNetwork, TABLES};
use super::{Audio, Channels, Config, Daemon, FrameDuration, Network};

pub(super) fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: file.clone(),
            line: 1,
            col: 1,
            message: format!("cannot read config file: {}", io_reason(&e)),
        }])
    })?;
    let mut config = parse(&text, &file)?;
    config.source = Some(path.to_path_buf());
    // A daemon's working directory is `/` under systemd, so relative paths
    // in the file mean "next to the config file", never "wherever loa was
    // started from".
    if let Some(dir) = path.parent() {
        let anchor = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        anchor(&mut config.daemon.socket);
        anchor(&mut config.daemon.state_dir);
        config.daemon.media_roots.iter_mut().for_each(anchor);
    }
    Ok(config)
}

use crate::proto::text::io_reason;

pub(super) fn parse(text: &str, file: &str) -> Result<Config, ConfigErrors> {
    let loc = Locator { file, text };
    let raw: RawConfig = toml::from_str(text)
        .map_err(|e| ConfigErrors(vec![loc.at(e.span(), toml_message(&e, text))]))?;
    let mut v = Validator {
        loc,
        errors: Vec::new(),
    };
    let network = v.network(raw.network.as_ref());
    let audio = v.audio(raw.audio.as_ref());
    let daemon = v.daemon(raw.daemon.as_ref());
    let health = v.health(raw.health.as_ref());
    let sap = v.sap(raw.sap.as_ref());
    let chime = v.chimes(raw.chime.as_ref());
    let tts = v.tts(raw.tts.as_ref());
    let speakers = v.speakers(raw.speakers.as_ref());
    let security = v.security(raw.security.as_ref());
    let zones = v.zones(&raw.zone);
    let playlists = v.playlists(&raw.playlist);
    let schedules = v.schedules(&raw.schedule, &zones, &playlists);
    match network {
        Some(network) if v.errors.is_empty() => Ok(Config {
            source: None,
            network,
            audio,
            daemon,
            health,
            sap,
            chime,
            tts,
            speakers,
            security,
            zones,
            playlists,
            schedules,
        }),
        _ => {
            // Stable sort: errors at one spot keep the order they were found.
            v.errors.sort_by_key(|e| (e.line, e.col));
            Err(ConfigErrors(v.errors))
        }
    }
}

/// toml/serde's message reworded for operators: which table a key is
/// unknown in and which keys are valid there, TOML type names rather than
/// Rust ones, and quotes instead of backticks.
fn toml_message(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim();
    // serde quotes names in backticks: every odd piece is a name.
    let quoted: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let spanned = e.span().and_then(|s| text.get(s));
    if let (true, Some((key, expected))) =
        (message.starts_with("unknown field"), quoted.split_first())
    {
        let place = TABLES
            .iter()
            .find(|(_, keys)| *keys == expected)
            .map_or("here", |(place, _)| place);
        return format!(
            "unknown key \"{key}\" {place}; expected one of {}",
            expected.join(", ")
        );
    }
    if let (true, Some(key)) = (message.starts_with("missing field"), quoted.first()) {
        // The span is the table missing the key: a header, or an inline `{`.
        let table = spanned.and_then(table_header).unwrap_or("this table");
        return format!("missing key \"{key}\" in {table}");
    }
    if let ("duplicate key", Some(key)) = (message, spanned) {
        return format!("duplicate key \"{}\"", key.trim_matches('"'));
    }
    if let (true, Some(number)) = (message.contains(" as i128"), quoted.first()) {
        return format!("integer {number} is too large");
    }
    if message.contains("untagged enum RawChime") {
        return "a chime is true (loa's own chime), false, or a file, e.g. \"gong.flac\"".into();
    }
    if message.contains("untagged enum RawZones") {
        return "zones must be \"all\" or a list of zone names, e.g. [\"thon-1\"]".into();
    }
    let mut message = message.replace('`', "\"");
    for (rust, toml) in [
        ("expected i64", "expected an integer"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected a table"),
        ("invalid type: sequence", "invalid type: array"),
        ("invalid type: map", "invalid type: table"),
        ("invalid type: floating point", "invalid type: float"),
    ] {
        message = message.replace(rust, toml);
    }
    if let Some(at) = message.find("expected struct Raw") {
        message.replace_range(at.., "expected a table");
    }
    message
}

/// `[network]` or `[[zone]]` when `text` starts with a table header.
fn table_header(text: &str) -> Option<&str> {
    let brackets = text.len() - text.trim_start_matches('[').len();
    let close = text.find(']')?;
    (brackets > 0)
        .then(|| text.get(..close + brackets))
        .flatten()
}

pub(super) struct Validator<'a> {
    pub(super) loc: Locator<'a>,
    pub(super) errors: Vec<ConfigError>,
}

impl Validator<'_> {
    pub(super) fn error<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) {
        let e = self.loc.at(Some(at.span()), message);
        self.errors.push(e);
    }

    /// `value` when it lies in `lo..=hi`, else an error naming the range.
    fn in_range(
        &mut self,
        value: Option<&Spanned<i64>>,
        name: &str,
        lo: i64,
        hi: i64,
        default: i64,
    ) -> i64 {
        match value {
            None => default,
            Some(v) if (lo..=hi).contains(v.get_ref()) => *v.get_ref(),
            Some(v) => {
                self.error(
                    v,
                    format!("{name} {} is out of range {lo}–{hi}", v.get_ref()),
                );
                default
            }
        }
    }

    fn in_range_f(
        &mut self,
        value: Option<&Spanned<f64>>,
        name: &str,
        lo: f64,
        hi: f64,
        default: f64,
    ) -> f64 {
        match value {
            None => default,
            Some(v) if (lo..=hi).contains(v.get_ref()) => *v.get_ref(),
            Some(v) => {
                self.error(
                    v,
                    format!("{name} {} is out of range {lo} to {hi}", v.get_ref()),
                );
                default
            }
        }
    }

    fn network(&mut self, raw: Option<&Spanned<RawNetwork>>) -> Option<Network> {
        // DESIGN: no default route guess, so there is no default interface.
        const MISSING: &str = "missing [network] interface: multicast needs an explicit sending \
                               interface, e.g. interface = \"127.0.0.1\"";
        let Some(raw) = raw else {
            self.errors.push(self.loc.at(None, MISSING));
            return None;
        };
        let net = raw.get_ref();
        let ttl = self.in_range(net.ttl.as_ref(), "ttl", 1, 255, 1) as u8;
        let dscp = self.in_range(net.dscp.as_ref(), "dscp", 0, 63, 46) as u8;
        let Some(iface) = &net.interface else {
            self.error(raw, MISSING);
            return None;
        };
        let interface = match iface.get_ref().parse::<Ipv4Addr>() {
            Ok(ip) if ip.is_unspecified() => {
                self.error(
                    iface,
                    "interface 0.0.0.0 would let the kernel pick a route; give the address of the \
                     sending interface, e.g. \"192.168.1.10\"",
                );
                return None;
            }
            Ok(ip) if ip.is_multicast() || ip.is_broadcast() => {
                self.error(
                    iface,
                    format!("interface {ip} is not a host address; give the address of the sending interface"),
                );
                return None;
            }
            Ok(ip) => ip,
            Err(_) => {
                self.error(
                    iface,
                    format!(
                        "interface \"{}\" is not an IPv4 address; give the address of the sending \
                         interface, e.g. \"192.168.1.10\"",
                        iface.get_ref()
                    ),
                );
                return None;
            }
        };
        Some(Network {
            interface,
            ttl,
            dscp,
        })
    }

    fn audio(&mut self, raw: Option<&RawAudio>) -> Audio {
        let defaults = RawAudio::default();
        let raw = raw.unwrap_or(&defaults);
        let channels = match raw.channels.as_ref().map(|c| (c, *c.get_ref())) {
            None | Some((_, 1)) => Channels::Mono,
            Some((_, 2)) => Channels::Stereo,
            Some((at, n)) => {
                self.error(
                    at,
                    format!("channels {n} is not supported; expected 1 (mono) or 2 (stereo)"),
                );
                Channels::Mono
            }
        };
        let frame = match raw.frame_ms.as_ref().map(|f| (f, *f.get_ref())) {
            None | Some((_, 20)) => FrameDuration::Ms20,
            Some((_, 10)) => FrameDuration::Ms10,
            Some((_, 40)) => FrameDuration::Ms40,
            Some((_, 60)) => FrameDuration::Ms60,
            Some((at, n)) => {
                self.error(
                    at,
                    format!("frame_ms {n} is not supported; expected 10, 20, 40 or 60"),
                );
                FrameDuration::Ms20
            }
        };
        Audio {
            channels,
            frame,
            bitrate_bps: self.in_range(raw.bitrate.as_ref(), "bitrate", 6_000, 510_000, 32_000)
                as u32,
            complexity: self.in_range(raw.complexity.as_ref(), "complexity", 0, 10, 10) as u8,
            fec: raw.fec.unwrap_or(false),
            expected_loss_pct: self.in_range(
                raw.expected_loss_pct.as_ref(),
                "expected_loss_pct",
                0,
                100,
                0,
            ) as u8,
            // RFC 3551 leaves 96–127 for dynamic payload types such as Opus.
            loudness: crate::config::LoudnessSettings {
                normalize: raw.normalize.unwrap_or(true),
                target_lufs: self.in_range_f(
                    raw.loudness_target.as_ref(),
                    "loudness_target",
                    -40.0,
                    -5.0,
                    -16.0,
                ),
                true_peak_max_dbtp: self.in_range_f(
                    raw.true_peak_max.as_ref(),
                    "true_peak_max",
                    -9.0,
                    0.0,
                    -1.0,
                ),
            },
            payload_type: self.in_range(raw.payload_type.as_ref(), "payload_type", 96, 127, 96)
                as u8,
        }
    }

    fn daemon(&mut self, raw: Option<&RawDaemon>) -> Daemon {
        let mut daemon = Daemon {
            socket: PathBuf::from("/run/loa/loa.sock"),
            socket_group: None,
            state_dir: PathBuf::from("/var/lib/loa"),
            timezone: "Asia/Ho_Chi_Minh".into(),
            media_roots: Vec::new(),
        };
        let Some(raw) = raw else {
            return daemon;
        };
        if let Some(socket) = &raw.socket {
            daemon.socket = socket.into();
        }
        if let Some(group) = &raw.socket_group {
            if group.get_ref().is_empty() {
                self.error(
                    group,
                    "socket_group is empty; name a system group, e.g. \"audio\"",
                );
            } else {
                daemon.socket_group = Some(group.get_ref().clone());
            }
        }
        if let Some(dir) = &raw.state_dir {
            daemon.state_dir = dir.into();
        }
        if let Some(roots) = &raw.media_roots {
            daemon.media_roots = roots.iter().map(PathBuf::from).collect();
        }
        if let Some(tz) = &raw.timezone {
            // Checked now so a schedule can never fail later on a bad zone name.
            if jiff::tz::TimeZone::get(tz.get_ref()).is_ok() {
                daemon.timezone = tz.get_ref().clone();
            } else {
                self.error(
                    tz,
                    format!(
                        "unknown timezone \"{}\"; use an IANA name such as \"Asia/Ho_Chi_Minh\"",
                        tz.get_ref()
                    ),
                );
            }
        }
        daemon
    }
}

mod speakers;
mod security;
mod zones;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_security;
