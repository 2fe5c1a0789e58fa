//! The endpoint health state machine (sans-IO).
//!
//! Inputs are RTCP receiver reports ([`HealthMonitor::handle_report`]),
//! probe results ([`HealthMonitor::handle_probe_result`]) and the passing of
//! time ([`HealthMonitor::handle_timeout`]); outputs are transition events,
//! probe requests and the next deadline. No sockets, no clocks: every
//! `Instant` is an argument, so tests drive it with made-up time.
//!
//! Rules, in the order they are applied:
//! - A report whose sender SSRC is one of our own zones' SSRCs is not a
//!   participant (RFC 3550 §8.2): our own SR/RR looped back by multicast,
//!   or someone sending in our name; never an endpoint ([`OwnRtcp`]).
//! - An endpoint is identified by (zone, source IP); the report's port is
//!   ignored because speakers send RTCP from whatever port they like.
//! - A report from an IP that is not in the zone's inventory creates an
//!   `unregistered` entry (a security signal: someone is listening who should
//!   not be, or a speaker is misconfigured). It never becomes online. At most
//!   [`MAX_UNREGISTERED`] such entries are kept so spoofed floods cannot grow
//!   memory; later strangers are counted and dropped.
//! - Only report blocks about our sender SSRC of that zone judge quality.
//!   One such report is enough: loss ≥ threshold or jitter ≥ threshold makes
//!   it `degraded`; it is `online` again after a report below
//!   [`RECOVER_FRACTION`] of both thresholds. The band between is
//!   hysteresis: a speaker hovering at the threshold (a 5 % lossy link,
//!   measured over 1–5 s intervals) otherwise flapped, an event per report
//!   (1 888 transitions in a one-hour soak).
//! - A report without a block about us still proves the speaker is alive:
//!   `unknown`/`offline` become `online`, `degraded` stays (we learnt nothing
//!   about quality).
//! - RTCP-probed endpoints go `offline` after `offline_intervals ×
//!   report_interval` without a report, counted only while the zone is
//!   sending (from the later of the last report and the start of sending),
//!   because idle speakers have nothing to report on. Stopping does not
//!   revive them: `offline` stays until a report arrives.
//! - TCP/HTTP-probed endpoints take their liveness from the probe (success:
//!   `unknown`/`offline` → `online`; failure → `offline`), and their quality
//!   from RTCP if they send it. Silence does not make them offline.
//! - Speakers that joined loa themselves (issue 15) are known by their
//!   enrolled name, not their address: many sit behind one carrier NAT's
//!   public IP. Their rules are in [`joined`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::own_rtcp::{OwnRtcp, ReportOrigin};
use crate::rtp::rtcp::ReportBlock;

mod joined;
mod quality;

use quality::judge;

pub use joined::{JoinedReporter, Link};

/// Unregistered entries kept at most; beyond that strangers are only counted.
pub(crate) const MAX_UNREGISTERED: usize = 256;
/// Probes are never issued more often than this, whatever the inventory says,
/// so a zero interval cannot turn into a busy loop.
const MIN_PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// Extra time given to the executor past its own timeout before the monitor
/// declares the probe lost (the executor should always answer first).
const PROBE_GRACE: Duration = Duration::from_secs(1);
/// A silence window longer than this is treated as "never" so `Instant`
/// arithmetic cannot overflow.
const MAX_WINDOW: Duration = Duration::from_secs(365 * 24 * 3600);

/// A degraded speaker is online again below this fraction of the thresholds.
pub const RECOVER_FRACTION: f64 = 0.6;

#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    /// Expected interval between receiver reports of one speaker.
    pub report_interval: Duration,
    /// Fraction lost (percent) at or above which a speaker is degraded.
    pub degraded_loss_pct: f64,
    /// Interarrival jitter (ms) at or above which a speaker is degraded.
    pub degraded_jitter_ms: f64,
    /// Report intervals of silence (while sending) before `offline`.
    pub offline_intervals: u32,
    /// RTP clock rate, to turn jitter in timestamp units into time.
    pub clock_rate: u32,
    /// Silence after which a joined speaker is offline: its keepalives
    /// (which are its receiver reports) come whether or not its zones
    /// send, so this counts always. The daemon sets the window its
    /// bindings drop a speaker after.
    pub joined_silence: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            report_interval: Duration::from_secs(5),
            degraded_loss_pct: 5.0,
            degraded_jitter_ms: 30.0,
            offline_intervals: 3,
            clock_rate: 48_000,
            // 3 missed keepalives of 15 s, and half a period of grace.
            joined_silence: Duration::from_millis(52_500),
        }
    }
}

impl HealthConfig {
    fn silence_window(&self) -> Duration {
        self.report_interval
            .checked_mul(self.offline_intervals)
            .unwrap_or(MAX_WINDOW)
            .min(MAX_WINDOW)
    }
}

/// An endpoint's state; the same closed set the control protocol carries.
pub use crate::proto::EndpointState as State;

/// How liveness of an endpoint is checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Probe {
    /// Health from RTCP receiver reports only.
    #[default]
    Rtcp,
    /// A TCP connect to this port of the endpoint.
    Tcp { port: u16 },
    /// An HTTP/1.0 GET of this `http://` URL; 2xx is alive.
    Http { url: String },
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Probe::Rtcp => f.write_str("rtcp"),
            Probe::Tcp { port } => write!(f, "tcp:{port}"),
            Probe::Http { url } => write!(f, "http:{url}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointSpec {
    pub zone: String,
    pub name: String,
    pub address: IpAddr,
    pub probe: Probe,
    pub probe_interval: Duration,
    pub probe_timeout: Duration,
}

/// One received RTCP compound packet (SR or RR), reduced to what health needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub zone: String,
    pub from: SocketAddr,
    pub reporter_ssrc: u32,
    pub cname: Option<String>,
    pub blocks: Vec<ReportBlock>,
    /// NTP middle 32 bits of the wall time the packet arrived.
    pub arrival_ntp_mid32: u32,
    /// Set when the report authenticated under a joined speaker's own
    /// key: it speaks for that speaker, whatever address it came from.
    pub joined: Option<JoinedReporter>,
}

/// One state transition.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthEvent {
    pub zone: String,
    /// Inventory name, or the address for an unregistered endpoint.
    pub endpoint: String,
    pub address: IpAddr,
    pub from: State,
    pub to: State,
    pub at: Instant,
    /// Why, in plain words ("loss 12.1 %, jitter 3.2 ms", "no report for 15 s").
    pub detail: String,
    /// A joined speaker's transport and public address:port.
    pub link: Option<Link>,
}

/// What the daemon shows for one endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointStatus {
    pub zone: String,
    pub name: String,
    pub address: IpAddr,
    pub state: State,
    /// When `state` was entered.
    pub since: Instant,
    /// From the last report block about our stream.
    pub loss_pct: Option<f64>,
    pub jitter_ms: Option<f64>,
    /// From LSR/DLSR of the last block that allowed it.
    pub rtt_ms: Option<f64>,
    /// Round trip of the last successful TCP/HTTP probe.
    pub probe_ms: Option<f64>,
    pub last_report: Option<Instant>,
    pub registered: bool,
    pub cname: Option<String>,
    /// A joined speaker's transport and public address:port.
    pub link: Option<Link>,
    /// A speaker that joins loa itself (enrolled); `link` is None until
    /// its first authenticated report.
    pub joined: bool,
}

/// A probe the shell should run (see [`crate::health::run_probe`]) and
/// answer with [`HealthMonitor::handle_probe_result`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeRequest {
    pub zone: String,
    pub endpoint: String,
    pub address: IpAddr,
    pub probe: Probe,
    pub timeout: Duration,
}

#[derive(Debug)]
struct Entry {
    spec: EndpointSpec,
    registered: bool,
    state: State,
    since: Instant,
    loss_pct: Option<f64>,
    jitter_ms: Option<f64>,
    rtt_ms: Option<f64>,
    probe_ms: Option<f64>,
    last_report: Option<Instant>,
    cname: Option<String>,
    /// Next time a probe is due (probed endpoints only).
    next_probe: Instant,
    /// Deadline of the probe in flight, if any.
    probe_deadline: Option<Instant>,
    /// A joined speaker's way in (its identity is its name).
    link: Option<Link>,
    /// A speaker that joins loa itself (enrolled), heard yet or not.
    joined: bool,
}

impl Entry {
    fn new(spec: EndpointSpec, registered: bool, now: Instant) -> Entry {
        Entry {
            spec,
            registered,
            state: if registered {
                State::Unknown
            } else {
                State::Unregistered
            },
            since: now,
            loss_pct: None,
            jitter_ms: None,
            rtt_ms: None,
            probe_ms: None,
            last_report: None,
            cname: None,
            next_probe: now,
            probe_deadline: None,
            link: None,
            joined: false,
        }
    }

    fn probed(&self) -> bool {
        self.registered && self.spec.probe != Probe::Rtcp
    }

    fn status(&self) -> EndpointStatus {
        EndpointStatus {
            zone: self.spec.zone.clone(),
            name: self.spec.name.clone(),
            address: self.spec.address,
            state: self.state,
            since: self.since,
            loss_pct: self.loss_pct,
            jitter_ms: self.jitter_ms,
            rtt_ms: self.rtt_ms,
            probe_ms: self.probe_ms,
            last_report: self.last_report,
            registered: self.registered,
            cname: self.cname.clone(),
            link: self.link,
            joined: self.joined,
        }
    }
}

#[derive(Debug, Default)]
struct ZoneState {
    ssrc: Option<u32>,
    /// `Some(start)` while the zone is sending.
    sending_since: Option<Instant>,
}

/// Health of every endpoint of every zone. See the module comment for rules.
#[derive(Debug)]
pub struct HealthMonitor {
    config: HealthConfig,
    /// Inventory order.
    registered: Vec<Entry>,
    /// Order of first report.
    unregistered: Vec<Entry>,
    /// Joined speakers, order of first report. Only a report that
    /// authenticated under a speaker's own key makes one, so enrolment
    /// bounds it.
    joined: Vec<Entry>,
    zones: HashMap<String, ZoneState>,
    events: VecDeque<HealthEvent>,
    /// Reports from strangers dropped because the unregistered list was full.
    dropped_strangers: u64,
    /// Reports with one of our SSRCs: our own looped back, or forged.
    own: OwnRtcp,
}

impl HealthMonitor {
    pub fn new(config: HealthConfig, endpoints: Vec<EndpointSpec>, now: Instant) -> Self {
        HealthMonitor {
            config,
            registered: endpoints
                .into_iter()
                .map(|spec| Entry::new(spec, true, now))
                .collect(),
            unregistered: Vec::new(),
            joined: Vec::new(),
            zones: HashMap::new(),
            events: VecDeque::new(),
            dropped_strangers: 0,
            own: OwnRtcp::default(),
        }
    }

    /// The address our RTCP leaves from (`[network] interface`): a report
    /// from it with one of our SSRCs is our own, looped back. Until it is
    /// set, every report with one of our SSRCs is taken for our own.
    pub fn set_own_address(&mut self, address: IpAddr) {
        self.own.set_address(address);
    }

    /// Our own reports heard back since start.
    pub fn own_loopbacks(&self) -> u64 {
        self.own.loopbacks()
    }

    /// Replaces the inventory (config reload). Endpoints whose zone, name and
    /// address are unchanged keep their state, measurements and any probe in
    /// flight; others start `unknown`. Strangers that are now listed drop
    /// their unregistered entry. No events: a reload is not a transition.
    pub fn set_inventory(&mut self, endpoints: Vec<EndpointSpec>, now: Instant) {
        let mut old = std::mem::take(&mut self.registered);
        for spec in endpoints {
            let kept = old.iter().position(|e| {
                e.spec.zone == spec.zone
                    && e.spec.name == spec.name
                    && e.spec.address == spec.address
            });
            let entry = match kept {
                Some(i) => {
                    let mut entry = old.swap_remove(i);
                    if entry.spec.probe != spec.probe {
                        entry.next_probe = now;
                        entry.probe_deadline = None;
                    }
                    entry.spec = spec;
                    entry
                }
                None => Entry::new(spec, true, now),
            };
            self.registered.push(entry);
        }
        let registered = &self.registered;
        self.unregistered.retain(|u| {
            !registered
                .iter()
                .any(|e| e.spec.zone == u.spec.zone && e.spec.address == u.spec.address)
        });
    }

    /// Our sender SSRC in `zone`: only report blocks about it judge quality.
    pub fn set_zone_ssrc(&mut self, zone: &str, ssrc: u32) {
        self.zones.entry(zone.to_owned()).or_default().ssrc = Some(ssrc);
    }

    /// Whether `zone` is streaming; silence only counts while it is.
    pub fn set_zone_sending(&mut self, zone: &str, sending: bool, now: Instant) {
        let z = self.zones.entry(zone.to_owned()).or_default();
        match (sending, z.sending_since) {
            (true, None) => z.sending_since = Some(now),
            (false, Some(_)) => z.sending_since = None,
            _ => {}
        }
    }

    pub fn handle_report(&mut self, now: Instant, report: Report) -> ReportOrigin {
        if let Some(reporter) = report.joined.clone() {
            return self.joined_report(now, report, reporter);
        }
        let address = report.from.ip();
        if self
            .zones
            .values()
            .any(|z| z.ssrc == Some(report.reporter_ssrc))
        {
            return self.own.heard(address);
        }
        let ssrc = self.zones.get(&report.zone).and_then(|z| z.ssrc);
        let entry = match self.entry_for_report(now, &report.zone, address) {
            Some((true, i)) => &mut self.registered[i],
            Some((false, i)) => &mut self.unregistered[i],
            None => return ReportOrigin::DroppedStranger,
        };
        judge(&self.config, &mut self.events, entry, ssrc, report, now);
        ReportOrigin::Endpoint
    }

    /// Answer to a [`ProbeRequest`]. Results for a probe that is not in
    /// flight (late after the monitor gave up, or for a removed endpoint)
    /// are ignored.
    pub fn handle_probe_result(
        &mut self,
        now: Instant,
        zone: &str,
        endpoint: &str,
        result: Result<Duration, String>,
    ) {
        let Some(entry) = self
            .registered
            .iter_mut()
            .find(|e| e.spec.zone == zone && e.spec.name == endpoint && e.probe_deadline.is_some())
        else {
            return;
        };
        entry.probe_deadline = None;
        match result {
            Ok(round_trip) => {
                entry.probe_ms = Some(round_trip.as_secs_f64() * 1000.0);
                if matches!(entry.state, State::Unknown | State::Offline) {
                    let detail = format!(
                        "probe {} ok in {}",
                        probe_label(&entry.spec.probe),
                        fmt_duration(round_trip)
                    );
                    transition(&mut self.events, entry, State::Online, now, detail);
                }
            }
            Err(reason) => {
                let detail = format!("probe {} failed: {reason}", probe_label(&entry.spec.probe));
                transition(&mut self.events, entry, State::Offline, now, detail);
            }
        }
    }

    /// Applies silence and lost probes up to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for entry in self.registered.iter_mut().chain(&mut self.joined) {
            if let Some(deadline) = entry.probe_deadline {
                if now >= deadline {
                    entry.probe_deadline = None;
                    let detail = format!(
                        "probe {} failed: no answer within {}",
                        probe_label(&entry.spec.probe),
                        fmt_duration(entry.spec.probe_timeout)
                    );
                    transition(&mut self.events, entry, State::Offline, now, detail);
                }
            }
            if let Some((deadline, quiet_from)) = silence_deadline(&self.config, &self.zones, entry)
            {
                if now >= deadline {
                    let detail = format!(
                        "no report for {}",
                        fmt_duration(now.saturating_duration_since(quiet_from))
                    );
                    transition(&mut self.events, entry, State::Offline, now, detail);
                }
            }
        }
    }

    /// The earliest instant at which [`Self::handle_timeout`] or
    /// [`Self::poll_probe`] has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        let mut consider = |t: Instant| earliest = Some(earliest.map_or(t, |e| e.min(t)));
        for entry in self.registered.iter().chain(&self.joined) {
            if let Some(deadline) = entry.probe_deadline {
                consider(deadline);
            } else if entry.probed() {
                consider(entry.next_probe);
            }
            if let Some((deadline, _)) = silence_deadline(&self.config, &self.zones, entry) {
                consider(deadline);
            }
        }
        earliest
    }

    pub fn poll_event(&mut self) -> Option<HealthEvent> {
        self.events.pop_front()
    }

    /// The next due probe, if any. The next one for the same endpoint is due
    /// one interval after this one was issued, and never while it is in flight.
    pub fn poll_probe(&mut self, now: Instant) -> Option<ProbeRequest> {
        let entry = self
            .registered
            .iter_mut()
            .find(|e| e.probed() && e.probe_deadline.is_none() && e.next_probe <= now)?;
        let interval = entry.spec.probe_interval.max(MIN_PROBE_INTERVAL);
        entry.next_probe = now.checked_add(interval).unwrap_or(now + MAX_WINDOW);
        let allowance = entry.spec.probe_timeout.min(MAX_WINDOW) + PROBE_GRACE;
        entry.probe_deadline = Some(now + allowance);
        Some(ProbeRequest {
            zone: entry.spec.zone.clone(),
            endpoint: entry.spec.name.clone(),
            address: entry.spec.address,
            probe: entry.spec.probe.clone(),
            timeout: entry.spec.probe_timeout,
        })
    }

    /// Every endpoint: inventory order, then joined speakers, unregistered last.
    pub fn snapshot(&self) -> Vec<EndpointStatus> {
        self.registered
            .iter()
            .chain(&self.joined)
            .chain(&self.unregistered)
            .map(Entry::status)
            .collect()
    }

    /// (online, degraded, offline, unknown) among the registered and
    /// joined endpoints of `zone`.
    pub fn zone_counts(&self, zone: &str) -> (usize, usize, usize, usize) {
        let mut counts = (0, 0, 0, 0);
        for entry in self.registered.iter().chain(&self.joined).filter(|e| e.spec.zone == zone) {
            match entry.state {
                State::Online => counts.0 += 1,
                State::Degraded => counts.1 += 1,
                State::Offline => counts.2 += 1,
                State::Unknown => counts.3 += 1,
                State::Unregistered => {}
            }
        }
        counts
    }

    /// Reports from strangers dropped since start because
    /// [`MAX_UNREGISTERED`] entries already existed.
    pub fn dropped_strangers(&self) -> u64 {
        self.dropped_strangers
    }

    /// The entry a report from `address` in `zone` updates, as (registered,
    /// index), creating (and announcing) an unregistered one for a stranger.
    fn entry_for_report(
        &mut self,
        now: Instant,
        zone: &str,
        address: IpAddr,
    ) -> Option<(bool, usize)> {
        let matches = |e: &Entry| e.spec.zone == zone && e.spec.address == address;
        if let Some(i) = self.registered.iter().position(matches) {
            return Some((true, i));
        }
        if let Some(i) = self.unregistered.iter().position(matches) {
            return Some((false, i));
        }
        if self.unregistered.len() >= MAX_UNREGISTERED {
            self.dropped_strangers += 1;
            return None;
        }
        let spec = EndpointSpec {
            zone: zone.to_owned(),
            name: address.to_string(),
            address,
            probe: Probe::Rtcp,
            probe_interval: Duration::ZERO,
            probe_timeout: Duration::ZERO,
        };
        self.events.push_back(HealthEvent {
            zone: zone.to_owned(),
            endpoint: spec.name.clone(),
            address,
            from: State::Unknown,
            to: State::Unregistered,
            at: now,
            detail: format!(
                "security warning: reports from {address}, not in the inventory of zone {zone}"
            ),
            link: None,
        });
        self.unregistered.push(Entry::new(spec, false, now));
        Some((false, self.unregistered.len() - 1))
    }
}

/// Moves `entry` to `to`, queueing one event if that is a change.
fn transition(
    events: &mut VecDeque<HealthEvent>,
    entry: &mut Entry,
    to: State,
    now: Instant,
    detail: String,
) {
    if entry.state == to {
        return;
    }
    events.push_back(HealthEvent {
        zone: entry.spec.zone.clone(),
        endpoint: entry.spec.name.clone(),
        address: entry.spec.address,
        from: entry.state,
        to,
        at: now,
        detail,
        link: entry.link,
    });
    entry.state = to;
    entry.since = now;
}

/// When silence makes an RTCP endpoint offline, and since when it has been
/// quiet; `None` if silence does not count for it right now.
fn silence_deadline(
    config: &HealthConfig,
    zones: &HashMap<String, ZoneState>,
    entry: &Entry,
) -> Option<(Instant, Instant)> {
    if !entry.registered
        || entry.probed()
        || matches!(entry.state, State::Offline | State::Unregistered)
    {
        return None;
    }
    if entry.joined {
        return joined::silence_deadline(config, entry);
    }
    let sending_since = zones.get(&entry.spec.zone)?.sending_since?;
    let quiet_from = entry
        .last_report
        .map_or(sending_since, |t| t.max(sending_since));
    Some((quiet_from.checked_add(config.silence_window())?, quiet_from))
}

fn probe_label(probe: &Probe) -> String {
    match probe {
        Probe::Http { .. } => "http".to_owned(),
        other => other.to_string(),
    }
}

/// "15 s", "1.5 s", "250 ms": durations as people read them in a log line.
pub(crate) fn fmt_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}
