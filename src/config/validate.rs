//! Raw TOML → typed `Config`, collecting every error with its position so
//! the operator fixes the whole file in one go. (A TOML syntax or schema
//! error stops parsing, so it comes alone.)

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::error::{ConfigError, ConfigErrors, Locator};
use super::raw::{
    RawAudio, RawChime, RawChimes, RawConfig, RawDaemon, RawEndpoint, RawHealth, RawNetwork, RawSap, RawTts, RawZone, TABLES,
};
use super::{
    Chime, Chimes,
    Audio, Channels, Config, Daemon, Endpoint, EndpointProbe, FrameDuration, Health, Network, Sap, Zone,
};

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
                self.error(group, "socket_group is empty; name a system group, e.g. \"audio\"");
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

    fn zones(&mut self, raw: &[Spanned<RawZone>]) -> Vec<Zone> {
        if raw.is_empty() {
            self.errors.push(self.loc.at(
                None,
                "no zones configured; add at least one [[zone]] with a name and a multicast group",
            ));
        }
        // Zone name → line it was first defined on.
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut groups: Vec<(SocketAddrV4, &str)> = Vec::new();
        let mut zones = Vec::new();
        for zone in raw {
            let z = zone.get_ref();
            let name = z.name.get_ref();
            self.zone_name(&z.name);
            let line = self.loc.at(Some(z.name.span()), "").line;
            if let Some(first) = names.get(name.as_str()) {
                self.error(
                    &z.name,
                    format!("duplicate zone name \"{name}\" (first defined at line {first})"),
                );
            } else {
                names.insert(name, line);
            }
            let group = self.group(&z.group, name, &mut groups);
            let endpoints = self.endpoints(z);
            let unicast = z.unicast.iter().filter_map(|u| self.unicast(u)).collect();
            if let Some(group) = group {
                zones.push(Zone {
                    name: name.clone(),
                    group,
                    endpoints,
                    unicast,
                });
            }
        }
        zones
    }

    /// Zone names appear on the command line, in logs and in SDP session
    /// names, so they stay plain ASCII without spaces.
    fn zone_name(&mut self, at: &Spanned<String>) {
        let name = at.get_ref();
        if name.is_empty() {
            self.error(
                at,
                "zone name is empty; use letters A–Z, a–z, digits 0–9, '-' and '_'",
            );
        } else if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            self.error(
                at,
                format!(
                    "zone name \"{name}\" may only use letters A–Z, a–z, digits 0–9, '-' and '_'"
                ),
            );
        }
    }

    /// The zone's multicast group; records it in `seen` so later zones that
    /// reuse it, or whose RTP/RTCP ports collide with it, are refused.
    fn group<'z>(
        &mut self,
        at: &Spanned<String>,
        zone: &'z str,
        seen: &mut Vec<(SocketAddrV4, &'z str)>,
    ) -> Option<SocketAddrV4> {
        let text = at.get_ref();
        let Ok(group) = text.parse::<SocketAddrV4>() else {
            self.error(
                at,
                format!(
                    "group \"{text}\" is not a multicast address:port, e.g. \"239.255.77.1:5004\""
                ),
            );
            return None;
        };
        if !group.ip().is_multicast() {
            self.error(
                at,
                format!(
                    "group {group} is not a multicast address (expected 224.0.0.0–239.255.255.255)"
                ),
            );
            return None;
        }
        let mut valid = true;
        // Routers never forward 224.0.0.0/24 and switches flood it to every
        // port (RFC 5771), so audio there reaches no one it should.
        if group.ip().octets()[..3] == [224, 0, 0] {
            self.error(
                at,
                format!(
                    "group {group} is in 224.0.0.0/24, reserved for local network control (RFC 5771); \
                     use an administratively scoped group such as 239.255.77.1"
                ),
            );
            valid = false;
        }
        // RTCP takes port + 1 (RFC 3550 §11), so ports p and p ± 1 on one
        // address overlap even when they differ.
        if let Some((other, owner)) = seen
            .iter()
            .find(|(g, _)| g.ip() == group.ip() && g.port().abs_diff(group.port()) <= 1)
        {
            let message = if *other == group {
                format!("duplicate group {group} (already used by zone \"{owner}\")")
            } else {
                format!("group {group} overlaps zone \"{owner}\" at {other} (RTCP uses port + 1)")
            };
            self.error(at, message);
            valid = false;
        }
        seen.push((group, zone));
        if group.port() % 2 != 0 || group.port() == 0 {
            self.error(
                at,
                format!(
                    "group port {} must be even, non-zero and below 65535 (RTCP uses port + 1)",
                    group.port()
                ),
            );
            valid = false;
        }
        valid.then_some(group)
    }

    fn endpoints(&mut self, zone: &RawZone) -> Vec<Endpoint> {
        let mut names = HashSet::new();
        let mut endpoints = Vec::new();
        for ep in &zone.endpoints {
            let e = ep.get_ref();
            let name = e.name.get_ref();
            if name.is_empty() {
                self.error(
                    &e.name,
                    "endpoint name is empty; give the speaker a name, e.g. \"loa-cho\"",
                );
            } else if !names.insert(name) {
                self.error(
                    &e.name,
                    format!(
                        "duplicate endpoint name \"{name}\" in zone \"{}\"",
                        zone.name.get_ref()
                    ),
                );
            }
            // IPv4 only: the sockets that send and hear RTCP are IPv4.
            let probe = self.probe(e);
            let probe_interval = e
                .probe_interval
                .as_ref()
                .and_then(|d| self.positive_duration(d, "probe_interval"))
                .unwrap_or(Duration::from_secs(10));
            let probe_timeout = e
                .probe_timeout
                .as_ref()
                .and_then(|d| self.positive_duration(d, "probe_timeout"))
                .unwrap_or(Duration::from_secs(2));
            match e.address.get_ref().parse::<Ipv4Addr>() {
                Ok(address) => endpoints.push(Endpoint {
                    name: name.clone(),
                    address: IpAddr::V4(address),
                    probe,
                    probe_interval,
                    probe_timeout,
                }),
                Err(_) => self.error(
                    &e.address,
                    format!(
                        "endpoint address \"{}\" is not an IPv4 address, e.g. \"10.8.0.21\"",
                        e.address.get_ref()
                    ),
                ),
            }
        }
        endpoints
    }

    fn positive_duration(&mut self, at: &Spanned<String>, key: &str) -> Option<Duration> {
        match super::parse_duration(at.get_ref()) {
            Some(d) if !d.is_zero() => Some(d),
            _ => {
                self.error(
                    at,
                    format!(
                        "{key} \"{}\" is not a duration; write e.g. \"500ms\", \"5s\" or \"1m\"",
                        at.get_ref()
                    ),
                );
                None
            }
        }
    }

    /// `probe = "rtcp"` (default), `"tcp:PORT"` or `"http://host[:port]/path"`.
    fn probe(&mut self, e: &RawEndpoint) -> EndpointProbe {
        let Some(at) = &e.probe else {
            return EndpointProbe::Rtcp;
        };
        let text = at.get_ref().trim();
        if text == "rtcp" {
            return EndpointProbe::Rtcp;
        }
        if let Some(port) = text.strip_prefix("tcp:") {
            if let Ok(port) = port.parse::<u16>() {
                if port != 0 {
                    return EndpointProbe::Tcp(port);
                }
            }
        } else if text.starts_with("http://") && text.len() > "http://".len() {
            return EndpointProbe::Http(text.to_string());
        }
        self.error(
            at,
            format!(
                "probe \"{text}\" is not valid; expected \"rtcp\", \"tcp:PORT\" or \"http://host/path\""
            ),
        );
        EndpointProbe::Rtcp
    }

    fn health(&mut self, raw: Option<&RawHealth>) -> Health {
        let mut health = Health::default();
        let Some(raw) = raw else {
            return health;
        };
        if let Some(d) = &raw.report_interval {
            health.report_interval = self
                .positive_duration(d, "report_interval")
                .unwrap_or(health.report_interval);
        }
        for (value, key, target, hi) in [
            (&raw.degraded_loss_pct, "degraded_loss_pct", &mut health.degraded_loss_pct, 100.0),
            (&raw.degraded_jitter_ms, "degraded_jitter_ms", &mut health.degraded_jitter_ms, 10_000.0),
        ] {
            if let Some(v) = value {
                let x = *v.get_ref();
                if x > 0.0 && x <= hi {
                    *target = x;
                } else {
                    self.error(v, format!("{key} {x} is out of range (0, {hi}]"));
                }
            }
        }
        health.offline_intervals =
            self.in_range(raw.offline_intervals.as_ref(), "offline_intervals", 1, 100, 3) as u32;
        health
    }

    fn sap(&mut self, raw: Option<&RawSap>) -> Sap {
        let mut sap = Sap::default();
        let Some(raw) = raw else {
            return sap;
        };
        sap.enabled = raw.enabled.unwrap_or(false);
        if let Some(at) = &raw.interval {
            if let Some(d) = self.positive_duration(at, "interval") {
                if d < Duration::from_secs(1) {
                    self.error(at, format!("interval \"{}\" is too short; SAP announcements need at least \"1s\" (default \"30s\")", at.get_ref()));
                } else {
                    sap.interval = d;
                }
            }
        }
        if let Some(at) = &raw.address {
            match at.get_ref().parse::<SocketAddrV4>() {
                Ok(a) if a.ip().is_multicast() && a.port() != 0 => sap.address = a,
                _ => self.error(
                    at,
                    format!(
                        "sap address \"{}\" is not a multicast IPv4 ip:port; the standard one is \"{}\"",
                        at.get_ref(),
                        super::DEFAULT_SAP_ADDRESS
                    ),
                ),
            }
        }
        sap
    }

    fn chimes(&mut self, raw: Option<&RawChimes>) -> Chimes {
        let mut chimes = Chimes::default();
        let Some(raw) = raw else {
            return chimes;
        };
        for (at, slot) in [
            (&raw.background, &mut chimes.background),
            (&raw.scheduled, &mut chimes.scheduled),
            (&raw.announcement, &mut chimes.announcement),
            (&raw.live, &mut chimes.live),
            (&raw.emergency, &mut chimes.emergency),
        ] {
            let Some(at) = at else { continue };
            *slot = match at.get_ref() {
                RawChime::On(true) => Chime::BuiltIn,
                RawChime::On(false) => Chime::Off,
                RawChime::File(f) if f.trim().is_empty() => {
                    self.error(at, "chime file is empty; use true (loa's chime), false, or a file".to_string());
                    Chime::Off
                }
                RawChime::File(f) => Chime::File(PathBuf::from(f)),
            };
        }
        chimes
    }

    /// A routed speaker's RTP address; its RTCP is port + 1.
    fn tts(&mut self, raw: Option<&Spanned<RawTts>>) -> super::Tts {
        let mut tts = super::Tts::default();
        let Some(raw) = raw else {
            return tts;
        };
        let raw = raw.get_ref();
        if let Some(voice) = &raw.voice {
            if crate::proto::say::voice_ok(voice.get_ref()) {
                tts.voice = voice.get_ref().clone();
            } else {
                self.error(voice, crate::proto::say::SayError::BadVoice(voice.get_ref().clone()).to_string());
            }
        }
        if let Some(espeak) = &raw.espeak {
            if espeak.get_ref().trim().is_empty() {
                self.error(espeak, "espeak is empty; name the program, e.g. \"espeak-ng\" or \"/usr/bin/espeak-ng\"");
            } else {
                tts.espeak = espeak.get_ref().into();
            }
        }
        let range = super::RATE_RANGE;
        tts.rate = raw
            .rate
            .as_ref()
            .map(|r| self.in_range(Some(r), "rate", *range.start() as i64, *range.end() as i64, 175) as u32);
        tts
    }

    fn unicast(&mut self, at: &Spanned<String>) -> Option<SocketAddr> {
        let text = at.get_ref();
        let Ok(target) = text.parse::<SocketAddrV4>() else {
            self.error(
                at,
                format!(
                    "unicast target \"{text}\" is not an IPv4 ip:port, e.g. \"10.8.0.21:5004\""
                ),
            );
            return None;
        };
        let ip = target.ip();
        if ip.is_multicast() || ip.is_unspecified() || ip.is_broadcast() {
            self.error(
                at,
                format!(
                    "unicast target {target} is not a host address; multicast belongs in group"
                ),
            );
            return None;
        }
        if target.port() == 0 || target.port() == u16::MAX {
            self.error(
                at,
                format!(
                    "unicast port {} must be between 1 and 65534 (RTCP uses port + 1)",
                    target.port()
                ),
            );
            return None;
        }
        Some(SocketAddr::V4(target))
    }
}

#[cfg(test)]
mod tests;
