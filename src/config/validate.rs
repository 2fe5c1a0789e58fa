//! Raw TOML → typed `Config`, collecting every error with its position so
//! the operator fixes the whole file in one go.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::error::{ConfigError, ConfigErrors, Locator};
use super::raw::{RawAudio, RawConfig, RawDaemon, RawNetwork, RawZone};
use super::{Audio, Channels, Config, Daemon, Endpoint, FrameDuration, Network, Zone};

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
    Ok(config)
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "file not found".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string().to_lowercase(),
    }
}

pub(super) fn parse(text: &str, file: &str) -> Result<Config, ConfigErrors> {
    let loc = Locator { file, text };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        ConfigErrors(vec![loc.at(e.span(), e.message().trim().replace('`', "\""))])
    })?;
    let mut v = Validator {
        loc,
        errors: Vec::new(),
    };
    let network = v.network(raw.network.as_ref());
    let audio = v.audio(raw.audio.as_ref());
    let daemon = v.daemon(raw.daemon.as_ref());
    let zones = v.zones(&raw.zone);
    if v.errors.is_empty() {
        Ok(Config {
            source: None,
            network: network.expect("no errors means a network"),
            audio,
            daemon,
            zones,
        })
    } else {
        v.errors.sort_by_key(|e| (e.line, e.col));
        Err(ConfigErrors(v.errors))
    }
}

struct Validator<'a> {
    loc: Locator<'a>,
    errors: Vec<ConfigError>,
}

impl Validator<'_> {
    fn error<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) {
        let e = self.loc.at(Some(at.span()), message);
        self.errors.push(e);
    }

    /// `value` when it lies in `lo..=hi`, else an error naming the range.
    fn in_range(&mut self, value: Option<&Spanned<i64>>, name: &str, lo: i64, hi: i64, default: i64) -> i64 {
        match value {
            None => default,
            Some(v) if (lo..=hi).contains(v.get_ref()) => *v.get_ref(),
            Some(v) => {
                self.error(v, format!("{name} {} is out of range {lo}–{hi}", v.get_ref()));
                default
            }
        }
    }

    fn network(&mut self, raw: Option<&Spanned<RawNetwork>>) -> Option<Network> {
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
                self.error(iface, format!("interface {ip} is not a host address; give the address of the sending interface"));
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
        Some(Network { interface, ttl, dscp })
    }

    fn audio(&mut self, raw: Option<&RawAudio>) -> Audio {
        let empty = RawAudio {
            channels: None,
            frame_ms: None,
            bitrate: None,
            complexity: None,
            fec: None,
            expected_loss_pct: None,
            payload_type: None,
        };
        let raw = raw.unwrap_or(&empty);
        let channels = match raw.channels.as_ref().map(|c| (c, *c.get_ref())) {
            None | Some((_, 1)) => Channels::Mono,
            Some((_, 2)) => Channels::Stereo,
            Some((at, n)) => {
                self.error(at, format!("channels {n} is not supported; expected 1 (mono) or 2 (stereo)"));
                Channels::Mono
            }
        };
        let frame = match raw.frame_ms.as_ref().map(|f| (f, *f.get_ref())) {
            None | Some((_, 20)) => FrameDuration::Ms20,
            Some((_, 10)) => FrameDuration::Ms10,
            Some((_, 40)) => FrameDuration::Ms40,
            Some((_, 60)) => FrameDuration::Ms60,
            Some((at, n)) => {
                self.error(at, format!("frame_ms {n} is not supported; expected 10, 20, 40 or 60"));
                FrameDuration::Ms20
            }
        };
        Audio {
            channels,
            frame,
            bitrate_bps: self.in_range(raw.bitrate.as_ref(), "bitrate", 6_000, 510_000, 32_000) as u32,
            complexity: self.in_range(raw.complexity.as_ref(), "complexity", 0, 10, 10) as u8,
            fec: raw.fec.unwrap_or(false),
            expected_loss_pct: self.in_range(raw.expected_loss_pct.as_ref(), "expected_loss_pct", 0, 100, 0) as u8,
            payload_type: self.in_range(raw.payload_type.as_ref(), "payload_type", 96, 127, 96) as u8,
        }
    }

    fn daemon(&mut self, raw: Option<&RawDaemon>) -> Daemon {
        let mut daemon = Daemon {
            socket: PathBuf::from("/run/loa/loa.sock"),
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
        if let Some(dir) = &raw.state_dir {
            daemon.state_dir = dir.into();
        }
        if let Some(roots) = &raw.media_roots {
            daemon.media_roots = roots.iter().map(PathBuf::from).collect();
        }
        if let Some(tz) = &raw.timezone {
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
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut groups: Vec<(SocketAddrV4, String)> = Vec::new();
        let mut zones = Vec::new();
        for zone in raw {
            let z = zone.get_ref();
            let name = z.name.get_ref();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                self.error(
                    &z.name,
                    format!("zone name \"{name}\" may only use letters A–Z, digits, '-' and '_' (and not be empty)"),
                );
            }
            let line = self.loc.at(Some(z.name.span()), "").line;
            if let Some(first) = names.get(name) {
                self.error(&z.name, format!("duplicate zone name \"{name}\" (first defined at line {first})"));
            } else {
                names.insert(name.clone(), line);
            }
            let group = self.group(&z.group, &groups);
            if let Some(group) = group {
                groups.push((group, name.clone()));
            }
            let endpoints = self.endpoints(z);
            let unicast = z
                .unicast
                .iter()
                .filter_map(|u| match u.get_ref().parse::<SocketAddr>() {
                    Ok(addr) if addr.port() != 0 && !addr.ip().is_multicast() && !addr.ip().is_unspecified() => Some(addr),
                    _ => {
                        self.error(
                            u,
                            format!("unicast target \"{}\" is not a host ip:port, e.g. \"10.8.0.21:5004\"", u.get_ref()),
                        );
                        None
                    }
                })
                .collect();
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

    fn group(&mut self, at: &Spanned<String>, seen: &[(SocketAddrV4, String)]) -> Option<SocketAddrV4> {
        let text = at.get_ref();
        let Ok(group) = text.parse::<SocketAddrV4>() else {
            self.error(at, format!("group \"{text}\" is not a multicast address:port, e.g. \"239.255.77.1:5004\""));
            return None;
        };
        if !group.ip().is_multicast() {
            self.error(
                at,
                format!("group {group} is not a multicast address (expected 224.0.0.0–239.255.255.255)"),
            );
            return None;
        }
        if group.port() % 2 != 0 || group.port() == 0 || group.port() == 65534 {
            self.error(
                at,
                format!(
                    "group port {} must be even, non-zero and below 65534 (RTCP uses port + 1)",
                    group.port()
                ),
            );
            return None;
        }
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
            return None;
        }
        Some(group)
    }

    fn endpoints(&mut self, zone: &RawZone) -> Vec<Endpoint> {
        let mut seen: HashMap<&str, ()> = HashMap::new();
        let mut endpoints = Vec::new();
        for ep in &zone.endpoints {
            let e = ep.get_ref();
            let name = e.name.get_ref();
            if seen.insert(name.as_str(), ()).is_some() {
                self.error(
                    &e.name,
                    format!("duplicate endpoint name \"{name}\" in zone \"{}\"", zone.name.get_ref()),
                );
            }
            match e.address.get_ref().parse::<IpAddr>() {
                Ok(address) => endpoints.push(Endpoint {
                    name: name.clone(),
                    address,
                }),
                Err(_) => self.error(
                    &e.address,
                    format!("endpoint address \"{}\" is not an IP address, e.g. \"10.8.0.21\"", e.address.get_ref()),
                ),
            }
        }
        endpoints
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Channels, Config, FrameDuration};

    const MINIMAL: &str = "[network]\ninterface = \"127.0.0.1\"\n[[zone]]\nname = \"thon-1\"\ngroup = \"239.255.77.1:5004\"\n";

    fn errors(text: &str) -> Vec<String> {
        Config::parse(text, "loa.toml")
            .unwrap_err()
            .0
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn minimal_file_gets_the_documented_defaults() {
        let c = Config::parse(MINIMAL, "loa.toml").unwrap();
        assert_eq!(c.network.interface.to_string(), "127.0.0.1");
        assert_eq!((c.network.ttl, c.network.dscp), (1, 46));
        assert_eq!(c.audio.channels, Channels::Mono);
        assert_eq!(c.audio.frame, FrameDuration::Ms20);
        assert_eq!((c.audio.bitrate_bps, c.audio.complexity), (32_000, 10));
        assert_eq!((c.audio.fec, c.audio.expected_loss_pct, c.audio.payload_type), (false, 0, 96));
        assert_eq!(c.daemon.timezone, "Asia/Ho_Chi_Minh");
        assert_eq!(c.daemon.socket.to_str(), Some("/run/loa/loa.sock"));
        assert_eq!(c.zones[0].group.to_string(), "239.255.77.1:5004");
    }

    #[test]
    fn full_file_is_read_into_typed_values() {
        let text = format!(
            "{MINIMAL}endpoints = [{{ name = \"cho\", address = \"10.8.0.2\" }}]\nunicast = [\"10.8.0.3:5004\"]\n\
             [audio]\nchannels = 2\nframe_ms = 60\nbitrate = 96000\ncomplexity = 5\nfec = true\nexpected_loss_pct = 10\npayload_type = 111\n\
             [daemon]\nsocket = \"/tmp/x.sock\"\nstate_dir = \"/tmp/s\"\ntimezone = \"Europe/Berlin\"\nmedia_roots = [\"/srv/a\"]\n"
        );
        let c = Config::parse(&text, "loa.toml").unwrap();
        assert_eq!(c.audio.channels, Channels::Stereo);
        assert_eq!(c.audio.frame, FrameDuration::Ms60);
        assert_eq!((c.audio.bitrate_bps, c.audio.payload_type), (96_000, 111));
        assert_eq!(c.zones[0].endpoints[0].name, "cho");
        assert_eq!(c.zones[0].unicast[0].to_string(), "10.8.0.3:5004");
        assert_eq!(c.daemon.timezone, "Europe/Berlin");
    }

    #[test]
    fn out_of_range_bitrate_points_at_the_value() {
        let e = errors(&format!("{MINIMAL}[audio]\nbitrate = 900000\n"));
        assert_eq!(e, ["loa.toml:7:11: bitrate 900000 is out of range 6000–510000"]);
    }

    #[test]
    fn unknown_key_points_at_the_key_and_lists_valid_ones() {
        let e = errors(&format!("{MINIMAL}[audio]\nbitrat = 32000\n"));
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("loa.toml:7:1: unknown field \"bitrat\""), "{e:?}");
        assert!(e[0].contains("bitrate"), "lists valid keys: {e:?}");
    }

    #[test]
    fn duplicate_zone_name_says_where_the_first_is() {
        let e = errors(&format!("{MINIMAL}[[zone]]\nname = \"thon-1\"\ngroup = \"239.255.77.2:5004\"\n"));
        assert_eq!(e, ["loa.toml:7:8: duplicate zone name \"thon-1\" (first defined at line 4)"]);
    }

    #[test]
    fn duplicate_and_overlapping_groups_are_refused() {
        let e = errors(&format!(
            "{MINIMAL}[[zone]]\nname = \"b\"\ngroup = \"239.255.77.1:5004\"\n[[zone]]\nname = \"c\"\ngroup = \"239.255.77.1:5006\"\n[[zone]]\nname = \"d\"\ngroup = \"239.255.77.2:5004\"\n"
        ));
        assert_eq!(e, ["loa.toml:8:9: duplicate group 239.255.77.1:5004 (already used by zone \"thon-1\")"]);
        let e = errors("[network]\ninterface = \"127.0.0.1\"\n[[zone]]\nname = \"a\"\ngroup = \"239.1.1.1:5004\"\n[[zone]]\nname = \"b\"\ngroup = \"239.1.1.1:5005\"\n");
        assert_eq!(e, ["loa.toml:8:9: group port 5005 must be even, non-zero and below 65534 (RTCP uses port + 1)"]);
    }

    #[test]
    fn non_multicast_group_is_refused_with_the_valid_range() {
        let e = errors("[network]\ninterface = \"127.0.0.1\"\n[[zone]]\nname = \"a\"\ngroup = \"10.0.0.1:5004\"\n");
        assert_eq!(
            e,
            ["loa.toml:5:9: group 10.0.0.1:5004 is not a multicast address (expected 224.0.0.0–239.255.255.255)"]
        );
    }

    #[test]
    fn missing_interface_is_refused() {
        let e = errors("[network]\nttl = 2\n[[zone]]\nname = \"a\"\ngroup = \"239.1.1.1:5004\"\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("loa.toml:1:1: missing [network] interface"), "{e:?}");
        let e = errors("[[zone]]\nname = \"a\"\ngroup = \"239.1.1.1:5004\"\n");
        assert!(e[0].starts_with("loa.toml:1:1: missing [network] interface"), "{e:?}");
        let e = errors("[network]\ninterface = \"0.0.0.0\"\n[[zone]]\nname = \"a\"\ngroup = \"239.1.1.1:5004\"\n");
        assert!(e[0].starts_with("loa.toml:2:13: interface 0.0.0.0 would let the kernel pick a route"), "{e:?}");
    }

    #[test]
    fn every_error_in_the_file_is_reported_in_order() {
        let e = errors(
            "[network]\ninterface = \"eth0\"\nttl = 0\n[audio]\nchannels = 6\nframe_ms = 25\n[daemon]\ntimezone = \"Asia/Hanoi\"\n[[zone]]\nname = \"thôn 1\"\ngroup = \"239.1.1.1:5004\"\nendpoints = [{ name = \"x\", address = \"nowhere\" }]\n",
        );
        assert_eq!(e.len(), 7, "{e:#?}");
        assert!(e[0].starts_with("loa.toml:2:13: interface \"eth0\" is not an IPv4 address"));
        assert!(e[1].starts_with("loa.toml:3:7: ttl 0 is out of range 1–255"));
        assert!(e[2].starts_with("loa.toml:5:12: channels 6 is not supported"));
        assert!(e[3].starts_with("loa.toml:6:12: frame_ms 25 is not supported; expected 10, 20, 40 or 60"));
        assert!(e[4].starts_with("loa.toml:8:12: unknown timezone \"Asia/Hanoi\""));
        assert!(e[5].starts_with("loa.toml:10:8: zone name \"thôn 1\" may only use"));
        assert!(e[6].starts_with("loa.toml:12:38: endpoint address \"nowhere\" is not an IP address"));
    }

    #[test]
    fn toml_syntax_errors_keep_their_position() {
        let e = errors("[network]\ninterface = \"127.0.0.1\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("loa.toml:2:"), "{e:?}");
    }

    #[test]
    fn a_config_without_zones_is_refused() {
        let e = errors("[network]\ninterface = \"127.0.0.1\"\n");
        assert_eq!(e, ["loa.toml:1:1: no zones configured; add at least one [[zone]] with a name and a multicast group"]);
    }

    #[test]
    fn bad_endpoint_and_unicast_addresses_are_refused() {
        let e = errors(&format!(
            "{MINIMAL}endpoints = [{{ name = \"x\", address = \"nowhere\" }}, {{ name = \"x\", address = \"10.0.0.1\" }}]\nunicast = [\"10.0.0.9\"]\n"
        ));
        assert_eq!(e.len(), 3, "{e:#?}");
        assert!(e[0].contains("endpoint address \"nowhere\" is not an IP address"));
        assert!(e[1].contains("duplicate endpoint name \"x\" in zone \"thon-1\""));
        assert!(e[2].contains("unicast target \"10.0.0.9\" is not a host ip:port"));
    }
}
