//! Joined speakers at run time (issue 15): the TLS listener on
//! `[speakers] listen` (`conn`), the UDP socket on the same port number
//! where their SRTCP keepalives arrive and their unicast SRTP leaves
//! (`udp`), and the state both share — the sans-IO bindings, each
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
mod udp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::{mpsc, watch};

use crate::daemon::tasks::keys::KeysHandle;
use crate::daemon::tasks::speakers::SpeakersHandle;
use crate::proto::speakers::{SpeakerInfo, SpeakerState, SpeakerTransport};
use crate::rtp::srtp::SrtpReceiver;
use crate::speakers::bindings::{Bindings, Change, Timing};

pub use conn::ZoneFacts;

/// Where a zone's unicast targets go: the engine, then the pacer.
pub type TargetsSink = Box<dyn Fn(String, Vec<SocketAddr>) + Send + Sync>;

/// No TLS fallback yet: a speaker whose UDP never gets through stays
/// offline instead of being marked `tls` with nothing sent that way.
const NO_FALLBACK: Duration = Duration::from_secs(365 * 24 * 3600);

/// One admitted session, as revocation needs it.
struct Live {
    id: u64,
    /// Ends the session with a `bye` carrying this reason.
    kick: mpsc::UnboundedSender<String>,
    uplink_ssrc: u32,
}

/// A session's uplink: the key its keepalives are checked under.
struct Uplink {
    speaker: String,
    rx: SrtpReceiver,
}

struct Inner {
    bindings: Bindings,
    live: HashMap<String, Live>,
    uplinks: HashMap<u32, Uplink>,
    /// Wall time of each speaker's last authenticated keepalive.
    heard_at: HashMap<String, Timestamp>,
    next_id: u64,
    security: udp::SecurityLog,
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
        let timing = Timing { keepalive, missed, fallback_after: NO_FALLBACK };
        let inner = Inner {
            bindings: Bindings::new(timing),
            live: HashMap::new(),
            uplinks: HashMap::new(),
            heard_at: HashMap::new(),
            next_id: 0,
            security: udp::SecurityLog::default(),
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An admitted speaker: any older session of the same speaker ends
    /// (a 4G box that reconnected before its old TCP timed out). Returns
    /// the session's id, for [`SessionsHandle::left`].
    fn joined(&self, speaker: &str, zones: Vec<String>, multicast: bool, uplink_ssrc: u32, rx: SrtpReceiver, kick: mpsc::UnboundedSender<String>) -> u64 {
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        if let Some(old) = inner.live.remove(speaker) {
            let _ = old.kick.send("the speaker joined again from another connection".into());
            inner.uplinks.remove(&old.uplink_ssrc);
        }
        let dropped = inner.bindings.left(speaker);
        inner.bindings.joined(speaker, zones, multicast, Instant::now());
        inner.uplinks.insert(uplink_ssrc, Uplink { speaker: speaker.to_string(), rx });
        inner.live.insert(speaker.to_string(), Live { id, kick, uplink_ssrc });
        let zones = inner.bindings.zones(speaker).to_vec();
        let updates = dropped.map(|_| self.targets_of(&inner, &zones));
        drop(inner);
        updates.into_iter().for_each(|u| self.send_targets(u));
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
        let zones = inner.bindings.zones(speaker).to_vec();
        inner.bindings.left(speaker);
        let updates = self.targets_of(&inner, &zones);
        drop(inner);
        self.send_targets(updates);
        true
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
        let _ = live.kick.send("this speaker was revoked by the operator".into());
        inner.uplinks.remove(&live.uplink_ssrc);
        let zones = inner.bindings.zones(speaker).to_vec();
        inner.bindings.left(speaker);
        let updates = self.targets_of(&inner, &zones);
        drop(inner);
        self.send_targets(updates);
        true
    }

    /// `speakers list`'s rows with what the sessions know: transport,
    /// public address, last keepalive, online/offline.
    pub fn overlay(&self, rows: &mut [SpeakerInfo]) {
        let inner = self.lock();
        for row in rows.iter_mut().filter(|r| r.state != SpeakerState::Revoked) {
            let Some(seen) = inner.bindings.seen(&row.name) else { continue };
            row.transport = seen.transport;
            row.address = seen.address.map(|a| a.to_string());
            row.last_keepalive = inner.heard_at.get(&row.name).copied();
            row.state = match seen.transport {
                Some(SpeakerTransport::Unicast | SpeakerTransport::Multicast) => SpeakerState::Online,
                Some(SpeakerTransport::Tls) | None => SpeakerState::Offline,
            };
        }
    }

    /// The zones' unicast target lists, read under the lock.
    fn targets_of(&self, inner: &Inner, zones: &[String]) -> Vec<(String, Vec<SocketAddr>)> {
        zones.iter().map(|z| (z.clone(), inner.bindings.unicast_targets(z))).collect()
    }

    fn send_targets(&self, updates: Vec<(String, Vec<SocketAddr>)>) {
        for (zone, targets) in updates {
            (self.targets)(zone, targets);
        }
    }

    /// Acts on what the bindings decided: the pacer's targets, the log.
    fn apply(&self, inner: &Inner, changes: Vec<Change>) -> Vec<(String, Vec<SocketAddr>)> {
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
                Change::FellBackToTls { speaker } => speaker,
            };
            for zone in inner.bindings.zones(speaker) {
                if !zones.contains(zone) {
                    zones.push(zone.clone());
                }
            }
        }
        self.targets_of(inner, &zones)
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
        let updates = self.apply(&inner, changes);
        drop(inner);
        self.send_targets(updates);
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
    let udp = tokio::net::UdpSocket::from_std(udp)?;
    let tcp = tokio::net::TcpListener::bind(parts.listen).await?;
    tracing::info!(listen = %parts.listen, "speakers may join (TLS over TCP, SRTP/SRTCP over UDP)");
    for (name, facts) in &parts.zones {
        sessions.zone_added(name, *facts);
    }
    let zone_of = parts.zones.iter().map(|(name, facts)| (facts.ssrc, name.clone())).collect();
    tokio::spawn(udp::receive(sessions.clone(), udp, parts.health.clone(), zone_of));
    tokio::spawn(sessions.clone().expire());
    tokio::spawn(conn::accept(sessions, tcp, parts));
    Ok(for_pacer)
}

#[cfg(test)]
mod tests;
