//! `[speakers]`: the join address, keepalive period and how many may be
//! missed.

use std::net::SocketAddr;
use std::time::Duration;

use super::Validator;
use crate::config::raw::RawSpeakers;
use crate::config::Speakers;

impl Validator<'_> {
    pub(super) fn speakers(&mut self, raw: Option<&RawSpeakers>) -> Speakers {
        let mut speakers = Speakers::default();
        let Some(raw) = raw else { return speakers };
        if let Some(at) = &raw.listen {
            match at.get_ref().parse::<SocketAddr>() {
                Ok(a) if a.port() != 0 && !a.ip().is_multicast() => speakers.listen = Some(a),
                _ => self.error(
                    at,
                    format!("speakers listen \"{}\" is not ADDR:PORT of this machine; write e.g. \"0.0.0.0:5300\"", at.get_ref()),
                ),
            }
        }
        if let Some(at) = &raw.keepalive {
            if let Some(d) = self.positive_duration(at, "keepalive") {
                if d < Duration::from_millis(100) || d > Duration::from_secs(60) {
                    self.error(at, format!("keepalive \"{}\" is out of range 100ms–60s; NATs drop idle UDP mappings after ~30 s (default \"15s\")", at.get_ref()));
                } else {
                    speakers.keepalive = d;
                }
            }
        }
        if let Some(at) = &raw.missed_keepalives {
            match u32::try_from(*at.get_ref()) {
                Ok(n @ 1..=20) => speakers.missed_keepalives = n,
                _ => self.error(at, format!("missed_keepalives {} is out of range 1–20 (default 3)", at.get_ref())),
            }
        }
        speakers
    }
}
