//! Speakers that joined loa themselves (issue 15), in the monitor.
//!
//! - Identity is (zone, enrolled name), never the address: speakers behind
//!   one carrier NAT share a public IP and differ only by port, and a 4G
//!   box's port changes when the carrier drops its mapping. A joined
//!   speaker is never `unregistered` and never a SECURITY line: the shell
//!   hands the monitor only reports that authenticated under the speaker's
//!   own uplink key ([`Report::joined`]).
//! - Its rows (one per zone it is granted) exist from the moment it is
//!   enrolled, or from loa's start for those enrolled before
//!   ([`HealthMonitor::set_enrolled`]): `unknown` until its first report,
//!   so a speaker that never comes back after a restart is seen going
//!   offline, not missing. Revoking it removes its rows (its session's
//!   end made them offline first, and that transition is in the history).
//!   Each report updates its transport and public address:port ([`Link`]).
//! - Quality and state come from its receiver reports exactly as for a
//!   multicast speaker (`quality::judge`).
//! - Its reports are its keepalives, sent whether or not its zones play,
//!   so silence counts always: offline after
//!   [`HealthConfig::joined_silence`] without one. Its session ending
//!   (revoked, left, replaced) makes it offline at once
//!   ([`HealthMonitor::handle_left`]). The row stays, offline, until it
//!   reports again or is revoked.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::{judge, transition, EndpointSpec, Entry, HealthConfig, HealthMonitor, Probe, Report, ReportOrigin, State};
use crate::proto::speakers::SpeakerTransport;

/// Who sent an authenticated report, as the session server knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinedReporter {
    /// The enrolled name.
    pub name: String,
    /// How loa sends its audio now.
    pub transport: SpeakerTransport,
}

/// How a joined speaker is reached: its transport, and the public
/// address:port its authenticated packets come from (its NAT's mapping).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub transport: SpeakerTransport,
    pub public: SocketAddr,
}

impl HealthMonitor {
    /// A report that authenticated under `reporter`'s own key.
    pub(super) fn joined_report(&mut self, now: Instant, report: Report, reporter: JoinedReporter) -> ReportOrigin {
        let link = Link { transport: reporter.transport, public: report.from };
        let i = match self.joined.iter().position(|e| e.spec.zone == report.zone && e.spec.name == reporter.name) {
            Some(i) => i,
            None => {
                let spec = joined_spec(&report.zone, &reporter.name, Some(report.from.ip()));
                self.joined.push(Entry::joined(spec, now));
                self.joined.len() - 1
            }
        };
        let entry = &mut self.joined[i];
        entry.spec.address = report.from.ip();
        entry.link = Some(link);
        let ssrc = self.zones.get(&report.zone).and_then(|z| z.ssrc);
        judge(&self.config, &mut self.events, entry, ssrc, report, now);
        ReportOrigin::Endpoint
    }

    /// The enrolled speakers (name, zones), whole: a row for each zone of
    /// each, `unknown` until it reports; rows of names or zones no longer
    /// enrolled (revoked) go.
    pub fn set_enrolled(&mut self, now: Instant, enrolled: &[(String, Vec<String>)]) {
        let is_enrolled = |name: &str, zone: &str| enrolled.iter().any(|(n, zones)| n == name && zones.iter().any(|z| z == zone));
        self.joined.retain(|e| is_enrolled(&e.spec.name, &e.spec.zone));
        for (name, zones) in enrolled {
            for zone in zones {
                if !self.joined.iter().any(|e| &e.spec.name == name && &e.spec.zone == zone) {
                    self.joined.push(Entry::joined(joined_spec(zone, name, None), now));
                }
            }
        }
    }

    /// `speaker`'s session ended (`why`, in plain words): every row of it
    /// goes offline now rather than after the silence window, so a revoked
    /// speaker shows offline the moment it is revoked.
    pub fn handle_left(&mut self, now: Instant, speaker: &str, why: &str) {
        for entry in self.joined.iter_mut().filter(|e| e.spec.name == speaker) {
            transition(&mut self.events, entry, State::Offline, now, why.to_owned());
        }
    }
}

/// A joined speaker's row of `zone`; its address is its NAT's, once known.
fn joined_spec(zone: &str, name: &str, address: Option<IpAddr>) -> EndpointSpec {
    EndpointSpec {
        zone: zone.to_owned(),
        name: name.to_owned(),
        address: address.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        probe: Probe::Rtcp,
        probe_interval: Duration::ZERO,
        probe_timeout: Duration::ZERO,
    }
}

impl Entry {
    fn joined(spec: EndpointSpec, now: Instant) -> Entry {
        Entry { joined: true, ..Entry::new(spec, true, now) }
    }
}

/// When silence makes a joined speaker offline, and since when it has been
/// quiet: from its last report, whether or not its zones send; never
/// heard, from when its row was made (`since`: it is `unknown` until then).
pub(super) fn silence_deadline(config: &HealthConfig, entry: &Entry) -> Option<(Instant, Instant)> {
    let last = entry.last_report.unwrap_or(entry.since);
    Some((last.checked_add(config.joined_silence)?, last))
}
