//! Speakers that joined loa themselves (issue 15), in the monitor.
//!
//! - Identity is (zone, enrolled name), never the address: speakers behind
//!   one carrier NAT share a public IP and differ only by port, and a 4G
//!   box's port changes when the carrier drops its mapping. A joined
//!   speaker is never `unregistered` and never a SECURITY line: the shell
//!   hands the monitor only reports that authenticated under the speaker's
//!   own uplink key ([`Report::joined`]).
//! - Its first report makes its row (one per zone it is granted); each
//!   report updates its transport and public address:port ([`Link`]).
//! - Quality and state come from its receiver reports exactly as for a
//!   multicast speaker (`quality::judge`).
//! - Its reports are its keepalives, sent whether or not its zones play,
//!   so silence counts always: offline after
//!   [`HealthConfig::joined_silence`] without one. Its session ending
//!   (revoked, left, replaced) makes it offline at once
//!   ([`HealthMonitor::handle_left`]). The row stays, offline, until it
//!   reports again.

use std::net::SocketAddr;
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
                let spec = EndpointSpec {
                    zone: report.zone.clone(),
                    name: reporter.name,
                    address: report.from.ip(),
                    probe: Probe::Rtcp,
                    probe_interval: Duration::ZERO,
                    probe_timeout: Duration::ZERO,
                };
                self.joined.push(Entry::new(spec, true, now));
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

    /// `speaker`'s session ended (`why`, in plain words): every row of it
    /// goes offline now rather than after the silence window, so a revoked
    /// speaker shows offline the moment it is revoked.
    pub fn handle_left(&mut self, now: Instant, speaker: &str, why: &str) {
        for entry in self.joined.iter_mut().filter(|e| e.spec.name == speaker) {
            transition(&mut self.events, entry, State::Offline, now, why.to_owned());
        }
    }
}

/// When silence makes a joined speaker offline, and since when it has been
/// quiet: from its last report, whether or not its zones send.
pub(super) fn silence_deadline(config: &HealthConfig, entry: &Entry) -> Option<(Instant, Instant)> {
    let last = entry.last_report?;
    Some((last.checked_add(config.joined_silence)?, last))
}
