//! The zones (names, groups, ports, unicast speakers and their probes) and
//! the tables that serve them: health, SAP, chimes, speech.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::Validator;
use crate::config::raw::{RawChime, RawChimes, RawEndpoint, RawHealth, RawSap, RawTts, RawZone};
use crate::config::{Chime, Chimes, Endpoint, EndpointProbe, Health, Sap, Zone};

impl Validator<'_> {
    pub(super) fn zones(&mut self, raw: &[Spanned<RawZone>]) -> Vec<Zone> {
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
            let security = self.zone_security(z.security.as_ref());
            if let Some(group) = group {
                zones.push(Zone {
                    name: name.clone(),
                    group,
                    endpoints,
                    unicast,
                    security,
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

    pub(super) fn positive_duration(&mut self, at: &Spanned<String>, key: &str) -> Option<Duration> {
        match crate::config::parse_duration(at.get_ref()) {
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

    pub(super) fn health(&mut self, raw: Option<&RawHealth>) -> Health {
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
            (
                &raw.degraded_loss_pct,
                "degraded_loss_pct",
                &mut health.degraded_loss_pct,
                100.0,
            ),
            (
                &raw.degraded_jitter_ms,
                "degraded_jitter_ms",
                &mut health.degraded_jitter_ms,
                10_000.0,
            ),
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
        health.offline_intervals = self.in_range(
            raw.offline_intervals.as_ref(),
            "offline_intervals",
            1,
            100,
            3,
        ) as u32;
        health
    }

    pub(super) fn sap(&mut self, raw: Option<&RawSap>) -> Sap {
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
                        crate::config::DEFAULT_SAP_ADDRESS
                    ),
                ),
            }
        }
        sap
    }

    pub(super) fn chimes(&mut self, raw: Option<&RawChimes>) -> Chimes {
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
                    self.error(
                        at,
                        "chime file is empty; use true (loa's chime), false, or a file".to_string(),
                    );
                    Chime::Off
                }
                RawChime::File(f) => Chime::File(PathBuf::from(f)),
            };
        }
        chimes
    }

    /// A routed speaker's RTP address; its RTCP is port + 1.
    pub(super) fn tts(&mut self, raw: Option<&Spanned<RawTts>>) -> crate::config::Tts {
        let mut tts = crate::config::Tts::default();
        let Some(raw) = raw else {
            return tts;
        };
        let raw = raw.get_ref();
        if let Some(voice) = &raw.voice {
            if crate::proto::say::voice_ok(voice.get_ref()) {
                tts.voice = voice.get_ref().clone();
            } else {
                self.error(
                    voice,
                    crate::proto::say::SayError::BadVoice(voice.get_ref().clone()).to_string(),
                );
            }
        }
        if let Some(espeak) = &raw.espeak {
            if espeak.get_ref().trim().is_empty() {
                self.error(espeak, "espeak is empty; name the program, e.g. \"espeak-ng\" or \"/usr/bin/espeak-ng\"");
            } else {
                tts.espeak = espeak.get_ref().into();
            }
        }
        let range = crate::config::RATE_RANGE;
        tts.rate = raw.rate.as_ref().map(|r| {
            self.in_range(
                Some(r),
                "rate",
                *range.start() as i64,
                *range.end() as i64,
                175,
            ) as u32
        });
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
