//! The tokio shell around the health monitor (sans-IO, `crate::health`):
//! RTCP listeners on each zone's port + 1 feed it reports, the engine tells
//! it which zones are sending, probes run as tasks, and its transitions go
//! to the log, the store (`health_events`) and `endpoints.subscribe`rs.
//!
//! Hostile RTCP (truncated, wrong version, bogus lengths, random bytes) is
//! dropped with a rate-limited warning; nothing a datagram holds can stop
//! the listener. Our own SR/RR come back on the groups (multicast loop is
//! on so a monitoring receiver on the box hears the zones): the monitor
//! tells them apart by SSRC and source address, and they are only counted
//! at debug level; our SSRC from another address is a security warning,
//! once per address.
//!
//! On an SRTP zone's port, a report must verify to speak for a speaker.
//! SRTCP from speakers is not verified here yet, so on such a zone every
//! datagram except our own loop-back is unauthenticated: plain RTCP, SRTCP
//! and garbage are counted per zone (`loa status`), said as rate-limited
//! SECURITY lines (`health::UnauthenticatedLog`) and never an endpoint.
//!
//! Joined speakers' keepalives do not come here: the session server
//! verifies them under each speaker's own key and sends them in as
//! `Report`s naming the speaker (`sessions/udp.rs`), and says when a
//! session ends (`HealthInput::Left`).
//!
//! Must not touch: the engine's state, RTP sending.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::report_keys::ReportKeys;
use super::store::StoreHandle;
use crate::daemon::KeysHandle;
use crate::config::{Config, EndpointProbe};
use crate::daemon::server::Event;
use crate::config::ZoneSecurity;
use crate::health::{
    EndpointSpec, HealthConfig, HealthEvent, HealthMonitor, Probe, Report, ReportOrigin, State, Unauthenticated,
    UnauthenticatedLog,
};
use crate::proto::speakers::SpeakerTransport;
use crate::rtp::rtcp::{self, RtcpPacket};

pub enum HealthInput {
    Report(Report),
    /// A datagram at an SRTP zone's RTCP port that did not authenticate.
    Unauthenticated { zone: String, from: SocketAddr, kind: Unauthenticated },
    ZoneSending { zone: String, sending: bool },
    ProbeResult { zone: String, endpoint: String, result: Result<Duration, String> },
    /// A joined speaker's session ended (revoked, left, replaced): it is
    /// offline now, `why` in plain words.
    Left { speaker: String, why: String },
    /// Every enrolled speaker (name, zones), after loa starts and after
    /// each enrolment or revocation: their rows, heard or not.
    Enrolled(Vec<(String, Vec<String>)>),
    /// A reloaded config and the zones' RTP SSRCs.
    Reconfigure(Box<Config>, HashMap<String, u32>),
    /// Every endpoint's status as JSON rows, and the unauthenticated
    /// datagrams per SRTP zone.
    Snapshot(oneshot::Sender<(Vec<Value>, BTreeMap<String, u64>)>),
    /// The daemon is stopping: end the task, its listeners and its hold on
    /// the store (whose thread finishes only when every handle is gone).
    Stop,
    /// The interface address came back (or appeared): listen anew, so
    /// groups are joined on it. Linux keeps a membership when only the
    /// address goes, but not when the device goes, and a join made while
    /// the address was missing failed.
    Rejoin,
}

#[derive(Clone)]
pub struct HealthHandle {
    tx: mpsc::UnboundedSender<HealthInput>,
}

impl HealthHandle {
    pub fn send(&self, input: HealthInput) {
        let _ = self.tx.send(input);
    }

    /// Every endpoint's status as JSON rows, and the unauthenticated
    /// datagrams per SRTP zone since start.
    pub async fn snapshot(&self) -> (Vec<Value>, BTreeMap<String, u64>) {
        let (tx, rx) = oneshot::channel();
        self.send(HealthInput::Snapshot(tx));
        rx.await.unwrap_or_default()
    }
}

pub fn health_config(config: &Config) -> HealthConfig {
    HealthConfig {
        report_interval: config.health.report_interval,
        degraded_loss_pct: config.health.degraded_loss_pct,
        degraded_jitter_ms: config.health.degraded_jitter_ms,
        offline_intervals: config.health.offline_intervals,
        clock_rate: 48_000,
        // The window after which the session server drops a joined
        // speaker's binding (speakers::bindings): N missed keepalives and
        // half a period for a late one. Both say offline at the same time.
        joined_silence: config.speakers.keepalive * config.speakers.missed_keepalives + config.speakers.keepalive / 2,
    }
}

fn inventory(config: &Config) -> Vec<EndpointSpec> {
    config
        .zones
        .iter()
        .flat_map(|zone| {
            zone.endpoints.iter().map(move |e| EndpointSpec {
                zone: zone.name.clone(),
                name: e.name.clone(),
                address: e.address,
                probe: match &e.probe {
                    EndpointProbe::Rtcp => Probe::Rtcp,
                    EndpointProbe::Tcp(port) => Probe::Tcp { port: *port },
                    EndpointProbe::Http(url) => Probe::Http { url: url.clone() },
                },
                probe_interval: e.probe_interval,
                probe_timeout: e.probe_timeout,
            })
        })
        .collect()
}

/// Starts the health task and the RTCP listeners for `config`'s zones;
/// `ssrcs` are the zones' RTP SSRCs (zone name → SSRC).
pub fn spawn(
    config: &Config,
    ssrcs: HashMap<String, u32>,
    store: StoreHandle,
    events: broadcast::Sender<Event>,
    keys: KeysHandle,
) -> HealthHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let handle = HealthHandle { tx };
    let mut monitor = HealthMonitor::new(health_config(config), inventory(config), Instant::now());
    for (zone, ssrc) in &ssrcs {
        monitor.set_zone_ssrc(zone, *ssrc);
    }
    monitor.set_own_address(config.network.interface.into());
    let listeners = Listeners::start(config, &ssrcs, handle.clone(), keys);
    let current = (Box::new(config.clone()), ssrcs);
    tokio::spawn(run(monitor, rx, handle.clone(), store, events, listeners, current));
    handle
}

async fn run(
    mut monitor: HealthMonitor,
    mut rx: mpsc::UnboundedReceiver<HealthInput>,
    handle: HealthHandle,
    store: StoreHandle,
    events: broadcast::Sender<Event>,
    mut listeners: Listeners,
    mut current: (Box<Config>, HashMap<String, u32>),
) {
    let mut unauthenticated = UnauthenticatedLog::default();
    loop {
        let wake = monitor
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1))
            .max(Instant::now());
        tokio::select! {
            input = rx.recv() => {
                let Some(input) = input else { break };
                let now = Instant::now();
                match input {
                    HealthInput::Report(report) => {
                        let (from, ssrc) = (report.from, report.reporter_ssrc);
                        let origin = monitor.handle_report(now, report);
                        log_not_a_speaker(origin, from, ssrc, &current.1, &monitor);
                    }
                    HealthInput::Unauthenticated { zone, from, kind } => {
                        if let Some(line) = unauthenticated.handle(now, &zone, from.ip(), kind) {
                            tracing::warn!("{line}");
                        }
                    }
                    HealthInput::ZoneSending { zone, sending } => monitor.set_zone_sending(&zone, sending, now),
                    HealthInput::ProbeResult { zone, endpoint, result } => {
                        monitor.handle_probe_result(now, &zone, &endpoint, result)
                    }
                    HealthInput::Left { speaker, why } => monitor.handle_left(now, &speaker, &why),
                    HealthInput::Enrolled(enrolled) => monitor.set_enrolled(now, &enrolled),
                    HealthInput::Reconfigure(config, ssrcs) => {
                        monitor.set_inventory(inventory(&config), now);
                        for (zone, ssrc) in &ssrcs {
                            monitor.set_zone_ssrc(zone, *ssrc);
                        }
                        monitor.set_own_address(config.network.interface.into());
                        listeners.restart(&config, &ssrcs, handle.clone());
                        current = (config, ssrcs);
                    }
                    HealthInput::Rejoin => {
                        listeners.restart(&current.0, &current.1, handle.clone());
                        tracing::debug!("RTCP listeners restarted on the returned interface");
                    }
                    HealthInput::Snapshot(reply) => {
                        let _ = reply.send((snapshot_json(&monitor, &current.0, now), unauthenticated.per_zone().clone()));
                    }
                    HealthInput::Stop => break,
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => monitor.handle_timeout(Instant::now()),
        }
        let now = Instant::now();
        while let Some(event) = monitor.poll_event() {
            publish(&event, now, &store, &events);
        }
        while let Some(request) = monitor.poll_probe(now) {
            let handle = handle.clone();
            tokio::spawn(async move {
                let result = crate::health::run_probe(&request).await;
                handle.send(HealthInput::ProbeResult {
                    zone: request.zone,
                    endpoint: request.endpoint,
                    result,
                });
            });
        }
    }
    listeners.stop();
}

/// Logs a report that was not taken for a speaker because it carried one of
/// our SSRCs: our own loop-back at debug level (it comes with every report
/// interval of every zone), someone else using our SSRC as a security
/// warning, once per address.
fn log_not_a_speaker(
    origin: ReportOrigin,
    from: SocketAddr,
    ssrc: u32,
    ssrcs: &HashMap<String, u32>,
    monitor: &HealthMonitor,
) {
    let zone = || {
        ssrcs
            .iter()
            .find(|(_, &ours)| ours == ssrc)
            .map_or("?", |(zone, _)| zone.as_str())
            .to_owned()
    };
    match origin {
        ReportOrigin::OwnLoopback => tracing::debug!(
            "our own RTCP for zone {} came back from {from} (multicast loop), not a speaker; {} so far",
            zone(),
            monitor.own_loopbacks()
        ),
        ReportOrigin::OurSsrcFromElsewhere { first: true } => tracing::warn!(
            "SECURITY: RTCP from {} carries SSRC {ssrc:08x}, which is ours on zone {}: a forged report \
             or an SSRC collision (RFC 3550 §8.2); not taken for a speaker (said once per address)",
            from.ip(),
            zone()
        ),
        ReportOrigin::OurSsrcFromElsewhere { first: false }
        | ReportOrigin::Endpoint
        | ReportOrigin::DroppedStranger => {}
    }
}

fn publish(event: &HealthEvent, now: Instant, store: &StoreHandle, events: &broadcast::Sender<Event>) {
    // A joined speaker is told apart from its NAT's neighbours by the port.
    let shown = event.link.map_or_else(|| shown_address(event.address), |link| link.public.to_string());
    let text = format!(
        "speaker {} ({}) in zone {}: {} → {}: {}",
        event.endpoint,
        shown,
        event.zone,
        event.from.as_str(),
        event.to.as_str(),
        event.detail
    );
    match event.to {
        State::Online => tracing::info!("{text}"),
        State::Unregistered => tracing::warn!("SECURITY: {text}"),
        _ => tracing::warn!("{text}"),
    }
    let at = jiff::Timestamp::now() - jiff::SignedDuration::try_from(now.saturating_duration_since(event.at)).unwrap_or_default();
    let (zone, endpoint, address, state, detail) = (
        event.zone.clone(),
        event.endpoint.clone(),
        shown.clone(),
        event.to.as_str().to_string(),
        event.detail.clone(),
    );
    store.write("record a health event", move |s| {
        s.record_health_event(at, &zone, &endpoint, &address, &state, &detail)
    });
    let _ = events.send(Event {
        topic: "endpoints".into(),
        method: "endpoints.changed".into(),
        params: json!({
            "zone": event.zone,
            "endpoint": event.endpoint,
            "address": shown,
            "from": event.from.as_str(),
            "to": event.to.as_str(),
            "detail": event.detail,
            "at": at.to_string(),
        }),
    });
}

fn secs(d: Option<Duration>) -> Value {
    d.map(|d| json!((d.as_secs_f64() * 10.0).round() / 10.0)).unwrap_or(Value::Null)
}

/// How the zone reaches a speaker listed in the config: unicast when its
/// address is one of the zone's unicast targets, else the zone's group.
/// An unregistered reporter's is not known.
fn listed_transport(config: &Config, zone: &str, address: std::net::IpAddr, registered: bool) -> Option<SpeakerTransport> {
    if !registered {
        return None;
    }
    let unicast = config.zones.iter().any(|z| z.name == zone && z.unicast.iter().any(|t| t.ip() == address));
    Some(if unicast { SpeakerTransport::Unicast } else { SpeakerTransport::Multicast })
}

/// An endpoint's address as shown: `-` for an enrolled speaker not heard
/// since loa started (its row has no address yet).
fn shown_address(address: std::net::IpAddr) -> String {
    if address.is_unspecified() {
        "-".into()
    } else {
        address.to_string()
    }
}

fn snapshot_json(monitor: &HealthMonitor, config: &Config, now: Instant) -> Vec<Value> {
    monitor
        .snapshot()
        .into_iter()
        .map(|s| {
            let transport = match s.link {
                Some(link) => Some(link.transport),
                None if s.joined => None,
                None => listed_transport(config, &s.zone, s.address, s.registered),
            };
            json!({
                "zone": s.zone,
                "name": s.name,
                "address": s.link.map_or_else(|| shown_address(s.address), |link| link.public.to_string()),
                "transport": transport,
                "joined": s.joined,
                "state": s.state.as_str(),
                "since_secs": secs(Some(now.saturating_duration_since(s.since))),
                "loss_pct": s.loss_pct,
                "jitter_ms": s.jitter_ms,
                "rtt_ms": s.rtt_ms,
                "last_report_secs": secs(s.last_report.map(|t| now.saturating_duration_since(t))),
                "registered": s.registered,
                "cname": s.cname,
            })
        })
        .collect()
}

/// The RTCP sockets: one per distinct RTCP port, bound to 0.0.0.0 so it
/// also hears unicast reports, joined to every group that uses the port.
struct Listeners {
    tasks: Vec<JoinHandle<()>>,
    /// The SRTP zones' keys, to verify their SRTCP reports.
    keys: KeysHandle,
}

impl Listeners {
    fn start(config: &Config, ssrcs: &HashMap<String, u32>, handle: HealthHandle, keys: KeysHandle) -> Listeners {
        let mut by_port: HashMap<u16, Vec<(String, Ipv4Addr)>> = HashMap::new();
        for zone in &config.zones {
            by_port
                .entry(zone.group.port() + 1)
                .or_default()
                .push((zone.name.clone(), *zone.group.ip()));
        }
        let mut tasks = Vec::new();
        for (port, zones) in by_port {
            match rtcp_sockets(port, &zones, config.network.interface) {
                Ok(sockets) => {
                    let zones: Vec<String> = zones.into_iter().map(|(name, _)| name).collect();
                    let inventory: HashMap<std::net::IpAddr, String> = config
                        .zones
                        .iter()
                        .filter(|z| zones.contains(&z.name))
                        .flat_map(|z| z.endpoints.iter().map(move |e| (e.address, z.name.clone())))
                        .collect();
                    // Our SSRC on each zone of this port: report blocks say
                    // which stream (so which zone) a report is about.
                    let ours: HashMap<u32, String> = ssrcs
                        .iter()
                        .filter(|(zone, _)| zones.contains(zone))
                        .map(|(zone, &ssrc)| (ssrc, zone.clone()))
                        .collect();
                    let srtp: Vec<String> = config
                        .zones
                        .iter()
                        .filter(|z| zones.contains(&z.name) && z.security == ZoneSecurity::Srtp)
                        .map(|z| z.name.clone())
                        .collect();
                    let port = PortZones { zones, srtp, inventory, ours, own: config.network.interface.into() };
                    // Each socket hears the zones of the whole port: a
                    // unicast report reaches any one of them (SO_REUSEPORT
                    // spreads them), a multicast one the socket that
                    // joined its group.
                    for socket in sockets {
                        let report_keys = ReportKeys::new(keys.clone());
                        tasks.push(tokio::spawn(listen(socket, port.clone(), report_keys, handle.clone())));
                    }
                }
                Err(e) => tracing::error!(port, "cannot listen for RTCP reports: {e}; endpoint health will say unknown"),
            }
        }
        Listeners { tasks, keys }
    }

    /// Listens anew: for a reloaded config, or on a returned interface.
    fn restart(&mut self, config: &Config, ssrcs: &HashMap<String, u32>, handle: HealthHandle) {
        self.stop();
        *self = Listeners::start(config, ssrcs, handle, self.keys.clone());
    }

    fn stop(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

/// The sockets that listen on `port` for the reports of `zones`: as many as
/// the groups need, since Linux lets one socket join only
/// `net.ipv4.igmp_max_memberships` groups (20 by default) and answers
/// ENOBUFS beyond.
fn rtcp_sockets(port: u16, zones: &[(String, Ipv4Addr)], interface: Ipv4Addr) -> std::io::Result<Vec<tokio::net::UdpSocket>> {
    let mut sockets = Vec::new();
    let mut socket = rtcp_socket(port)?;
    let mut joined = 0;
    for (_, group) in zones {
        match socket.join_multicast_v4(group, &interface) {
            Ok(()) => joined += 1,
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) && joined > 0 => {
                sockets.push(into_tokio(socket)?);
                socket = rtcp_socket(port)?;
                socket.join_multicast_v4(group, &interface)?;
                joined = 1;
            }
            Err(e) => return Err(e),
        }
    }
    sockets.push(into_tokio(socket)?);
    Ok(sockets)
}

fn rtcp_socket(port: u16) -> std::io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    // Speakers on the same box (and tests) listen on the same port, and so
    // do this port's other sockets when its zones need more than one.
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    // Only the groups joined here, not every group any process on the
    // machine joined on this port (Linux's default).
    socket.set_multicast_all_v4(false)?;
    socket.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port).into())?;
    Ok(socket)
}

fn into_tokio(socket: socket2::Socket) -> std::io::Result<tokio::net::UdpSocket> {
    socket.set_nonblocking(true)?;
    tokio::net::UdpSocket::from_std(socket.into())
}

/// Warnings about bad datagrams, at most one per source per minute.
struct RateLimit {
    last: HashMap<std::net::IpAddr, (Instant, u64)>,
}

impl RateLimit {
    fn warn(&mut self, from: SocketAddr, reason: &str) {
        let now = Instant::now();
        let entry = self.last.entry(from.ip()).or_insert((now - Duration::from_secs(3600), 0));
        entry.1 += 1;
        if now.duration_since(entry.0) >= Duration::from_secs(60) {
            tracing::warn!("ignored {} malformed RTCP datagram(s) from {from}: {reason}", entry.1);
            *entry = (now, 0);
        }
        if self.last.len() > 4096 {
            // Spoofed sources cannot grow this without bound.
            self.last.retain(|_, (t, _)| now.duration_since(*t) < Duration::from_secs(60));
        }
    }
}

/// What a listener knows of the zones on its port.
#[derive(Clone)]
struct PortZones {
    zones: Vec<String>,
    /// The SRTP zones among them.
    srtp: Vec<String>,
    inventory: HashMap<std::net::IpAddr, String>,
    /// Our SSRC on each zone of this port.
    ours: HashMap<u32, String>,
    /// The interface address: our own RTCP loops back from it.
    own: std::net::IpAddr,
}

impl PortZones {
    /// The SRTP zone a datagram that did not verify is counted against:
    /// the zone whose inventory lists the source, else the first SRTP
    /// zone on the port. None when the port has no SRTP zone.
    fn srtp_zone_for(&self, from: SocketAddr) -> Option<&String> {
        self.inventory
            .get(&from.ip())
            .filter(|z| self.srtp.contains(z))
            .or_else(|| self.srtp.first())
    }
}

async fn listen(socket: tokio::net::UdpSocket, port: PortZones, mut report_keys: ReportKeys, handle: HealthHandle) {
    let PortZones { zones, inventory, ours, .. } = &port;
    let mut buf = vec![0u8; 2048];
    let mut limit = RateLimit { last: HashMap::new() };
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("rtcp receive failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let clear_ssrc = buf[..n].get(4..8).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        // An SRTP zone's own SRTCP looped back by multicast: its first 8
        // bytes (header, SSRC) are clear, the rest encrypted. Not a
        // speaker, and not an intruder.
        let own_loopback = from.ip() == port.own && clear_ssrc.is_some_and(|ssrc| ours.contains_key(&ssrc));
        // SRTCP under an SRTP zone's keys: a key holder's report, about
        // that zone.
        let mut n = n;
        let mut verified = None;
        if !own_loopback && !port.srtp.is_empty() {
            if let Some((zone, len)) = report_keys.open(&port.srtp, &mut buf[..n]) {
                verified = Some(zone);
                n = len;
            }
        }
        let parsed = rtcp::parse_compound(&buf[..n]);
        let packets = match parsed {
            Err(_) if own_loopback => continue,
            Err(e) => {
                match port.srtp_zone_for(from) {
                    Some(zone) => handle.send(HealthInput::Unauthenticated {
                        zone: zone.clone(),
                        from,
                        kind: Unauthenticated::of(&buf[..n], false),
                    }),
                    None => limit.warn(from, &e.to_string()),
                }
                continue;
            }
            Ok(p) => p,
        };
        let arrival_ntp_mid32 = ((rtcp::ntp_time(SystemTime::now()) >> 16) & 0xFFFF_FFFF) as u32;
        let mut cname = None;
        let mut reports = Vec::new();
        for packet in packets {
            match packet {
                // A speaker that also sends (talk-back) reports in an SR.
                // Our own SR/RR loop back on multicast: the monitor knows
                // them by SSRC and source address (and warns when our SSRC
                // comes from elsewhere), so they go to it too.
                RtcpPacket::ReceiverReport { ssrc, reports: blocks }
                | RtcpPacket::SenderReport { ssrc, reports: blocks, .. } => reports.push((ssrc, blocks)),
                RtcpPacket::Sdes { cnames } => cname = cnames.into_iter().next().map(|(_, c)| c),
                _ => {}
            }
        }
        for (reporter_ssrc, blocks) in reports {
            // Which zone: the stream the report is about (our SSRC is per
            // zone), else the zone whose inventory lists the source, else
            // the first zone on this port.
            let zone = verified.clone().or_else(|| blocks.iter().find_map(|b| ours.get(&b.ssrc).cloned()))
                .or_else(|| inventory.get(&from.ip()).cloned())
                .unwrap_or_else(|| zones.first().cloned().unwrap_or_default());
            // Plain RTCP about an SRTP zone proves nothing: anyone can
            // send it. Our own (a plain zone's on a shared port, or one
            // that happens to parse) goes to the monitor, which knows it.
            if verified.is_none() && port.srtp.contains(&zone) && !own_loopback {
                handle.send(HealthInput::Unauthenticated { zone, from, kind: Unauthenticated::PlainRtcp });
                continue;
            }
            handle.send(HealthInput::Report(Report {
                zone,
                from,
                reporter_ssrc,
                cname: cname.clone(),
                blocks,
                arrival_ntp_mid32,
                joined: None,
            }));
        }
    }
}
