//! Joined speakers at run time (issue 15): the TLS listener on
//! `[speakers] listen` (`conn`), the UDP socket on the same port number
//! where their SRTCP keepalives arrive and their unicast SRTP leaves
//! (`udp`), the TLS fallback for speakers UDP does not reach
//! (`fallback`), and the state all share — the sans-IO bindings, each
//! session's uplink key, the zones as joined speakers are told of them
//! (the catalog, which a reload changes), and the handle revocation and
//! `speakers list` use.
//!
//! The state sits behind one lock held only for map operations and one
//! SRTCP check, never across an await, so neither a slow peer nor a flood
//! at the UDP port can hold up the engine (which never takes this lock).
//!
//! Must not touch: SQL (the speakers thread), the pacer beyond its
//! targets (sent through the engine), key schedules (the keys task).

mod conn;
mod fallback;
mod udp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::{mpsc, watch};

use crate::daemon::tasks::keys::KeysHandle;
use crate::daemon::tasks::speakers::SpeakersHandle;
use crate::proto::speakers::{SpeakerInfo, SpeakerState, SpeakerTransport};
use crate::rtp::srtp::{MasterKey, SetupError, SrtpReceiver, SrtpSender, DEFAULT_REPLAY_WINDOW};
use crate::speakers::bindings::{Bindings, Change, Timing, WhyTls};

pub use conn::ZoneFacts;

/// Where a zone's unicast targets go: the engine, then the pacer.
pub type TargetsSink = Box<dyn Fn(String, Vec<SocketAddr>) + Send + Sync>;

/// How long after joining a speaker's UDP may take to authenticate before
/// its audio goes inside TLS. Its first keepalive leaves at once after the
/// welcome, so 2 s is several round trips even on a 4G link; if that one
/// datagram is lost the speaker spends a few seconds on TLS until its next
/// keepalive wins unicast back, and loses no audio either way.
pub const FALLBACK_AFTER: Duration = Duration::from_secs(2);

/// One admitted session, as revocation and the fallback need it.
struct Live {
    id: u64,
    link: fallback::Link,
    uplink_ssrc: u32,
    /// Whether the connection was last told its audio comes inside TLS.
    told_tls: bool,
    /// The MKIs it holds of each zone: those of its welcome or `zone`
    /// message, then of its last `keys_ack`.
    holds: HashMap<String, Vec<u32>>,
}

/// A session's uplink: the key its keepalives are checked under, and
/// loa's answers to its UDP keepalives are sealed under (with their own
/// SSRC, `join::answer_ssrc`), which tell the speaker loa's UDP reaches it.
pub(super) struct Uplink {
    speaker: String,
    ssrc: u32,
    rx: SrtpReceiver,
    answer: SrtpSender,
}

impl Uplink {
    pub(super) fn new(speaker: &str, ssrc: u32, key: &MasterKey) -> Result<Uplink, SetupError> {
        Ok(Uplink {
            speaker: speaker.to_string(),
            ssrc,
            rx: SrtpReceiver::new(ssrc, key.clone(), None, DEFAULT_REPLAY_WINDOW)?,
            answer: SrtpSender::new(crate::speakers::join::answer_ssrc(ssrc), key.clone(), None)?,
        })
    }

    /// The answer to one authenticated UDP keepalive: an empty receiver
    /// report (RFC 3550 §6.4.2) from the answer SSRC, sealed: smaller than
    /// any keepalive `loa speaker` sends, and only a keepalive that passed
    /// the replay window gets one, so the port amplifies nothing.
    fn answer(&mut self) -> Option<Vec<u8>> {
        let mut packet = Vec::with_capacity(64);
        crate::rtp::rtcp::write_receiver_report(&mut packet, crate::speakers::join::answer_ssrc(self.ssrc), &[], "loa");
        match self.answer.protect_rtcp(&mut packet) {
            Ok(()) => Some(packet),
            Err(e) => {
                tracing::warn!(speaker = %self.speaker, "cannot seal the answer to a keepalive: {e}");
                None
            }
        }
    }
}

struct Inner {
    bindings: Bindings,
    live: HashMap<String, Live>,
    uplinks: HashMap<u32, Uplink>,
    /// Wall time of each speaker's last authenticated keepalive.
    heard_at: HashMap<String, Timestamp>,
    next_id: u64,
    security: udp::SecurityLog,
    /// Where the pacer sends the packets of zones with a speaker inside
    /// TLS (the fallback's loopback socket), once it is bound.
    fallback: Option<SocketAddr>,
    /// Told when a session ends, so the speaker shows offline at once.
    health: Option<crate::daemon::tasks::health::HealthHandle>,
    /// The zones loa sends now, by name: what a welcome or a reload's
    /// `zone` message is made of (keys come from the rings).
    catalog: HashMap<String, ZoneFacts>,
}

/// The shared session state; cheap to clone.
#[derive(Clone)]
pub struct SessionsHandle {
    inner: Arc<Mutex<Inner>>,
    targets: Arc<TargetsSink>,
    /// Bumped when the catalog changes: each session then tells its
    /// speaker what changed in its zones.
    catalog_changed: Arc<watch::Sender<u64>>,
}

impl SessionsHandle {
    pub fn new(keepalive: Duration, missed: u32, targets: TargetsSink) -> SessionsHandle {
        let timing = Timing { keepalive, missed, fallback_after: FALLBACK_AFTER };
        let inner = Inner {
            bindings: Bindings::new(timing),
            live: HashMap::new(),
            uplinks: HashMap::new(),
            heard_at: HashMap::new(),
            next_id: 0,
            security: udp::SecurityLog::default(),
            fallback: None,
            health: None,
            catalog: HashMap::new(),
        };
        let (catalog_changed, _) = watch::channel(0);
        SessionsHandle { inner: Arc::new(Mutex::new(inner)), targets: Arc::new(targets), catalog_changed: Arc::new(catalog_changed) }
    }

    /// A zone loa now sends (at start, or added or sent anew by a reload
    /// with a new SSRC or group). Call after the pacer has the zone, so
    /// the unicast targets that follow land on it.
    pub fn zone_added(&self, name: &str, facts: ZoneFacts) {
        self.lock().catalog.insert(name.to_string(), facts);
        self.catalog_changed.send_modify(|n| *n += 1);
    }

    /// A zone retired by a reload (removed, or about to be sent anew).
    pub fn zone_retired(&self, name: &str) {
        if self.lock().catalog.remove(name).is_some() {
            self.catalog_changed.send_modify(|n| *n += 1);
        }
    }

    fn zone_facts(&self, name: &str) -> Option<ZoneFacts> {
        self.lock().catalog.get(name).copied()
    }

    fn watch_catalog(&self) -> watch::Receiver<u64> {
        self.catalog_changed.subscribe()
    }

    /// Session `id` of `speaker` is now served `zones` (a reload changed
    /// them): the unicast targets of every zone it had or has are sent
    /// again, so a zone sent anew under the same name gets them too.
    fn set_zones(&self, speaker: &str, id: u64, zones: Vec<String>) {
        let mut inner = self.lock();
        if inner.live.get(speaker).map(|l| l.id) != Some(id) {
            return;
        }
        let mut touched = inner.bindings.set_zones(speaker, zones.clone());
        touched.extend(zones.into_iter().filter(|z| !touched.contains(z)).collect::<Vec<_>>());
        let updates = self.targets_of(&inner, &touched);
        drop(inner);
        self.send_targets(updates);
    }

    /// The zone loa sends now under `ssrc`.
    fn zone_with_ssrc(&self, ssrc: u32) -> Option<String> {
        self.lock().catalog.iter().find(|(_, facts)| facts.ssrc == ssrc).map(|(name, _)| name.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An admitted speaker: any older session of the same speaker ends
    /// (a 4G box that reconnected before its old TCP timed out).
    /// `multicast`: it takes its zones from their groups, never unicast.
    /// `udp` false (its hello said it has none) puts its audio inside TLS
    /// at once. Returns the session's id, for [`SessionsHandle::left`].
    fn joined(&self, zones: Vec<String>, multicast: bool, uplink: Uplink, link: fallback::Link, udp: bool) -> u64 {
        let (name, uplink_ssrc) = (uplink.speaker.clone(), uplink.ssrc);
        let speaker = name.as_str();
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        if let Some(old) = inner.live.remove(speaker) {
            let _ = old.link.kick.send("the speaker joined again from another connection".into());
            inner.uplinks.remove(&old.uplink_ssrc);
        }
        // The old session's unicast or fallback target goes with it.
        let old_zones = inner.bindings.zones(speaker).to_vec();
        inner.bindings.left(speaker);
        inner.bindings.joined(speaker, zones, multicast, Instant::now());
        inner.uplinks.insert(uplink_ssrc, uplink);
        inner.live.insert(speaker.to_string(), Live { id, link, uplink_ssrc, told_tls: false, holds: HashMap::new() });
        let mut updates = self.targets_of(&inner, &old_zones);
        if !udp {
            let change = inner.bindings.without_udp(speaker);
            updates.extend(self.apply(&mut inner, change.into_iter().collect()));
        }
        drop(inner);
        self.send_targets(updates);
        id
    }

    /// Session `id` of `speaker` ended; false when it had already been
    /// replaced or revoked.
    fn left(&self, speaker: &str, id: u64) -> bool {
        let mut inner = self.lock();
        if inner.live.get(speaker).map(|l| l.id) != Some(id) {
            return false;
        }
        let live = inner.live.remove(speaker).expect("looked up above");
        inner.uplinks.remove(&live.uplink_ssrc);
        tell_health(&inner, speaker, "its session ended");
        let zones = inner.bindings.zones(speaker).to_vec();
        inner.bindings.left(speaker);
        let updates = self.targets_of(&inner, &zones);
        drop(inner);
        self.send_targets(updates);
        true
    }

    /// Session `id` of `speaker` says whether loa's UDP reaches it (its
    /// `downstream` message): inside TLS now, or unicast again.
    fn downstream(&self, speaker: &str, id: u64, udp: bool) {
        let mut inner = self.lock();
        if inner.live.get(speaker).map(|l| l.id) != Some(id) {
            return;
        }
        if udp {
            tracing::info!(speaker = %speaker, "the speaker hears loa's UDP again");
        }
        let change = inner.bindings.downstream(speaker, udp);
        let updates = self.apply(&mut inner, change.into_iter().collect());
        drop(inner);
        self.send_targets(updates);
    }

    /// Session `id` of `speaker` holds `mkis` of `zone`. True when every
    /// live session granted `zone` now holds `mki` (a revocation's next
    /// key: the switch need not wait any longer).
    fn holds(&self, speaker: &str, id: u64, zone: &str, mkis: Vec<u32>, mki: u32) -> bool {
        let mut inner = self.lock();
        match inner.live.get_mut(speaker) {
            Some(live) if live.id == id => live.holds.insert(zone.to_string(), mkis),
            _ => return false,
        };
        let inner = &*inner;
        inner
            .live
            .iter()
            .filter(|(name, _)| inner.bindings.zones(name).iter().any(|z| z == zone))
            .all(|(_, live)| live.holds.get(zone).is_some_and(|held| held.contains(&mki)))
    }

    /// Whether session `id` of `speaker` is still the live one (checked
    /// before handing it keys: a revoked session must get no new key).
    fn is_live(&self, speaker: &str, id: u64) -> bool {
        self.lock().live.get(speaker).is_some_and(|l| l.id == id)
    }

    /// Revocation, step one: the session ends with `bye` now, its
    /// uplink key is forgotten and its unicast stops. True when it had a
    /// session. Call before the zones are re-keyed, so the re-key is
    /// never handed to it.
    pub fn revoke(&self, speaker: &str) -> bool {
        let mut inner = self.lock();
        let Some(live) = inner.live.remove(speaker) else {
            return false;
        };
        let _ = live.link.kick.send("this speaker was revoked by the operator".into());
        inner.uplinks.remove(&live.uplink_ssrc);
        tell_health(&inner, speaker, "revoked by the operator");
        let zones = inner.bindings.zones(speaker).to_vec();
        inner.bindings.left(speaker);
        let updates = self.targets_of(&inner, &zones);
        drop(inner);
        self.send_targets(updates);
        true
    }

    /// `speakers list`'s rows with what the sessions know: transport,
    /// public address (over TLS: the connection's, as its NAT shows it),
    /// last keepalive, online/offline.
    pub fn overlay(&self, rows: &mut [SpeakerInfo]) {
        let inner = self.lock();
        let now = Instant::now();
        for row in rows.iter_mut().filter(|r| r.state != SpeakerState::Revoked) {
            let Some(seen) = inner.bindings.seen(&row.name) else { continue };
            let tcp_peer = match seen.transport {
                Some(SpeakerTransport::Tls) => inner.live.get(&row.name).map(|l| l.link.peer),
                _ => None,
            };
            row.transport = seen.transport;
            row.address = seen.address.or(tcp_peer).map(|a| a.to_string());
            row.last_keepalive = inner.heard_at.get(&row.name).copied();
            row.state = if inner.bindings.online(&row.name, now) { SpeakerState::Online } else { SpeakerState::Offline };
        }
    }

    /// The zones' unicast target lists, read under the lock: the
    /// speakers' addresses, and the fallback's socket when a speaker of
    /// the zone is inside TLS (the pacer seals once per zone; the
    /// fallback frames those very bytes into each connection).
    fn targets_of(&self, inner: &Inner, zones: &[String]) -> Vec<(String, Vec<SocketAddr>)> {
        let target = |zone: &str| {
            let mut targets = inner.bindings.unicast_targets(zone);
            if let Some(fallback) = inner.fallback.filter(|_| inner.bindings.tls_speakers(zone).next().is_some()) {
                targets.push(fallback);
            }
            targets
        };
        zones.iter().map(|z| (z.clone(), target(z))).collect()
    }

    fn send_targets(&self, updates: Vec<(String, Vec<SocketAddr>)>) {
        for (zone, targets) in updates {
            (self.targets)(zone, targets);
        }
    }

    /// Acts on what the bindings decided: the pacer's targets, the
    /// connection's `transport` messages, the log.
    fn apply(&self, inner: &mut Inner, changes: Vec<Change>) -> Vec<(String, Vec<SocketAddr>)> {
        let mut zones: Vec<String> = Vec::new();
        for change in changes {
            let speaker = match &change {
                Change::Adopted { speaker, address, .. } if inner.bindings.multicast(speaker) => {
                    tracing::info!(speaker = %speaker, %address, "speaker online: multicast, keepalives from its address");
                    speaker
                }
                Change::Dropped { speaker, .. } if inner.bindings.multicast(speaker) => {
                    tracing::warn!(speaker = %speaker, "speaker offline: its keepalives stopped (it takes multicast: nothing else changes)");
                    speaker
                }
                Change::Adopted { speaker, address, previous: None } => {
                    tracing::info!(speaker = %speaker, %address, "speaker online: unicast to its keepalives' address");
                    speaker
                }
                Change::Adopted { speaker, address, previous: Some(previous) } => {
                    tracing::info!(speaker = %speaker, %address, %previous, "speaker's address changed (authenticated keepalive); unicast follows");
                    speaker
                }
                Change::Dropped { speaker, address } => {
                    tracing::warn!(speaker = %speaker, address = ?address, "speaker offline: its keepalives stopped; unicast to it stopped");
                    speaker
                }
                Change::FellBackToTls { speaker, why } => {
                    let why = match why {
                        WhyTls::NothingByUdp => "no authenticated UDP from the speaker",
                        WhyTls::HelloWithoutUdp => "the speaker's hello said it has no UDP",
                        WhyTls::SpeakerHearsNoUdp => "the speaker says loa's UDP does not reach it (its keepalives arrive but go unanswered there)",
                    };
                    tracing::warn!(speaker = %speaker, "{why}: its audio goes inside its TLS connection");
                    speaker
                }
            };
            Self::tell_transport(inner, speaker);
            for zone in inner.bindings.zones(speaker) {
                if !zones.contains(zone) {
                    zones.push(zone.clone());
                }
            }
        }
        self.targets_of(inner, &zones)
    }

    /// Tells the speaker's connection when its audio moves into TLS or
    /// back out (it then sends its keepalives inside TLS too, or stops).
    fn tell_transport(inner: &mut Inner, speaker: &str) {
        let tls = inner.bindings.seen(speaker).is_some_and(|s| s.transport == Some(SpeakerTransport::Tls));
        let Some(live) = inner.live.get_mut(speaker) else { return };
        if live.told_tls != tls {
            live.told_tls = tls;
            let transport = if tls { SpeakerTransport::Tls } else { SpeakerTransport::Unicast };
            let _ = live.link.transport.send(transport);
        }
    }

    /// One sealed packet of `zone` for the fallback: queued for every
    /// connection of the zone whose audio is inside TLS. A queue that is
    /// full (a slow TCP peer) drops it and counts: nothing waits for TCP.
    fn forward(&self, zone: &str, packet: &Arc<[u8]>) {
        let inner = self.lock();
        for speaker in inner.bindings.tls_speakers(zone) {
            let Some(live) = inner.live.get(speaker) else { continue };
            if let Err(mpsc::error::TrySendError::Full(_)) = live.link.media.try_send(packet.clone()) {
                live.link.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Drops bindings whose keepalives stopped, until the runtime ends.
    async fn expire(self) {
        loop {
            let next = self.lock().bindings.poll_timeout();
            let wait = next.map_or(Duration::from_secs(1), |at| at.saturating_duration_since(Instant::now()));
            tokio::time::sleep(wait.min(Duration::from_secs(1))).await;
            self.tick(Instant::now());
        }
    }

    /// Drops the bindings whose keepalives stopped by `now`.
    fn tick(&self, now: Instant) {
        let mut inner = self.lock();
        let changes = inner.bindings.handle_timeout(now);
        let updates = self.apply(&mut inner, changes);
        drop(inner);
        self.send_targets(updates);
    }
}

/// A session of `speaker` ended: health shows it offline now.
fn tell_health(inner: &Inner, speaker: &str, why: &str) {
    if let Some(health) = &inner.health {
        let (speaker, why) = (speaker.to_string(), why.to_string());
        health.send(crate::daemon::tasks::health::HealthInput::Left { speaker, why });
    }
}

/// What the listener needs besides the shared state.
pub struct ListenerParts {
    pub listen: SocketAddr,
    pub keepalive: Duration,
    pub zones: HashMap<String, ZoneFacts>,
    pub keys: KeysHandle,
    pub speakers: SpeakersHandle,
    pub identity: Arc<crate::speakers::Identity>,
    /// Verified keepalives are receiver reports: health hears them.
    pub health: crate::daemon::tasks::health::HealthHandle,
}

/// Binds TCP and UDP on `listen` and runs the sessions until the runtime
/// ends. The UDP socket is returned (a clone) for the pacer: unicast must
/// leave from the port the speakers' NAT mappings were opened to.
pub async fn start(sessions: SessionsHandle, parts: ListenerParts) -> std::io::Result<std::net::UdpSocket> {
    let udp = std::net::UdpSocket::bind(parts.listen)?;
    udp.set_nonblocking(true)?;
    let for_pacer = udp.try_clone()?;
    let pacer_from = udp.local_addr()?;
    let udp = tokio::net::UdpSocket::from_std(udp)?;
    let tcp = tokio::net::TcpListener::bind(parts.listen).await?;
    tracing::info!(listen = %parts.listen, "speakers may join (TLS over TCP, SRTP/SRTCP over UDP)");
    for (name, facts) in &parts.zones {
        sessions.zone_added(name, *facts);
    }
    let loopback = fallback::bind(pacer_from).await?;
    sessions.lock().fallback = Some(loopback.local_addr()?);
    sessions.lock().health = Some(parts.health.clone());
    tokio::spawn(fallback::receive(sessions.clone(), loopback));
    tokio::spawn(udp::receive(sessions.clone(), udp, parts.health.clone()));
    tokio::spawn(sessions.clone().expire());
    tokio::spawn(conn::accept(sessions, tcp, parts));
    Ok(for_pacer)
}

#[cfg(test)]
mod tests;
