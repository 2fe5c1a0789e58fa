//! One speaker's TLS connection: handshake, `hello`, admission (asked of
//! the speakers thread, which keeps the enrolments and writes the audit),
//! then `welcome`, `keys` whenever one of its zones' rings changes,
//! `zone` / `zone_gone` when a reload adds, changes or removes one of its
//! zones, and `bye` when it is revoked or replaced. In the TLS fallback it
//! also carries `transport` messages, the zones' SRTP packets out and the
//! speaker's SRTCP keepalives in, all RFC 4571 framed.
//!
//! A speaker whose hello says `multicast` gets every zone with its group
//! and transport multicast, and no unicast copy: the pacer already sends
//! each zone to its group. Every loa zone has a group, so there is no zone
//! it must get unicast; a speaker that cannot take multicast joins without
//! saying it can.
//!
//! A slow or hostile peer costs a bounded amount: the handshake and the
//! hello each have `STEP_TIMEOUT`, every write `STEP_TIMEOUT`, a frame is
//! at most 64 KiB (a control message 16 KiB), and at most
//! `max_connections()` connections are served at once; the rest are closed
//! at accept. Of those, at most `handshakes::MAX_PER_ADDRESS` from one
//! source IP may be unauthenticated at once (`speakers::handshakes`), so
//! stalled connections from one host cannot fill the cap; failed
//! handshakes and these refusals are logged rate-limited.

use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

use super::{fallback, udp, ListenerParts, SessionsHandle};
use crate::keys::ZoneKeys;
use crate::proto::speakers::SpeakerTransport;
use crate::rtp::srtp::{MasterKey, Suite};
use crate::speakers::handshakes::{self, Handshakes, Verdict};
use crate::speakers::join::{self, Deframer, Message, Payload, Uplink, Welcome, ZoneGrant};
use crate::speakers::keys::Ring;
use crate::store::SpeakerEventKind;

const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// Fallback packets written at once before one flush.
const MEDIA_BATCH: usize = 16;

/// Connections served at once: half the file descriptors the daemon may
/// open, so a flood of connections leaves the other half to media files,
/// the store and sockets; at most 4096. Under systemd's default soft limit
/// (1024) that is 512 speakers; config/loa.service raises the limit so a
/// commune's 1000+ speakers fit (`make bench` joins 1000).
fn max_connections() -> usize {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct it is given.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 { limit.rlim_cur } else { 1024 };
    usize::try_from(soft / 2).unwrap_or(usize::MAX).clamp(64, 4096)
}

/// What a joined speaker is told of a zone besides its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneFacts {
    pub ssrc: u32,
    pub pt: u8,
    pub channels: u8,
    /// Its multicast group and RTP port, for speakers that take multicast.
    pub group: SocketAddrV4,
}

/// What a speaker was last told of one of its zones: enough to see what a
/// reload (SSRC, group) or a key change (the MKIs) altered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Told {
    ssrc: u32,
    group: Option<SocketAddrV4>,
    mkis: (u32, u32),
}

/// What the session grants of `zone` now, or why it grants nothing (the
/// zone is gone from the config, or plain RTP).
fn grant_now(sessions: &SessionsHandle, parts: &ListenerParts, zone: &str, transport: SpeakerTransport, uplink: &Uplink) -> Result<(ZoneGrant, Told), String> {
    let Some(facts) = sessions.zone_facts(zone) else {
        return Err(format!("zone {zone} is no longer in loa's config"));
    };
    let Some(keys) = parts.keys.keys(zone) else {
        return Err(format!("zone {zone} is plain RTP (security = \"none\"); joined speakers play only SRTP zones"));
    };
    let group = (transport == SpeakerTransport::Multicast).then_some(facts.group);
    let grant = ZoneGrant {
        name: zone.to_string(),
        ssrc: facts.ssrc,
        pt: facts.pt,
        channels: facts.channels,
        suite: keys.suite.sdp_name().to_string(),
        group,
        transport,
        keys: Ring::from_zone_keys(facts.ssrc, &keys).grants(),
        uplink: uplink.clone(),
    };
    Ok((grant, Told { ssrc: facts.ssrc, group, mkis: mkis(&keys) }))
}

/// What to tell a speaker about one of its zones, given what it was told.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tell {
    Nothing,
    /// New SSRC or group (sent anew), or a zone it did not have.
    Zone(ZoneGrant),
    /// Only the ring moved on.
    Keys(ZoneGrant),
    Gone(String),
}

fn tell(told: Option<Told>, now: Result<(ZoneGrant, Told), String>) -> Tell {
    match (told, now) {
        (None, Err(_)) => Tell::Nothing,
        (Some(_), Err(why)) => Tell::Gone(why),
        (None, Ok((grant, _))) => Tell::Zone(grant),
        (Some(old), Ok((grant, new))) if (old.ssrc, old.group) != (new.ssrc, new.group) => Tell::Zone(grant),
        (Some(old), Ok((grant, new))) if old.mkis != new.mkis => Tell::Keys(grant),
        (Some(_), Ok(_)) => Tell::Nothing,
    }
}

pub(super) async fn accept(sessions: SessionsHandle, tcp: tokio::net::TcpListener, parts: ListenerParts) {
    let config = match crate::speakers::tls::server_config(&parts.identity) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!("no speaker can join: {e}");
            return;
        }
    };
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let parts = Arc::new(parts);
    let max = max_connections();
    let limit = Arc::new(Semaphore::new(max));
    let handshakes = Arc::new(Mutex::new(Handshakes::new(handshakes::MAX_PER_ADDRESS)));
    loop {
        let (stream, peer) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                tracing::warn!("cannot accept a speaker connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = Unauthenticated::take(&handshakes, peer) else {
            continue;
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "{max} speaker connections are open already; this one is closed");
            continue;
        };
        let (acceptor, sessions, parts) = (acceptor.clone(), sessions.clone(), parts.clone());
        tokio::spawn(async move {
            session(stream, peer, slot, acceptor, sessions, &parts).await;
            drop(permit);
        });
    }
}

/// A connection's place among its address's unauthenticated ones, given
/// back when it is admitted or dropped.
struct Unauthenticated {
    table: Arc<Mutex<Handshakes>>,
    peer: SocketAddr,
}

impl Unauthenticated {
    /// Its place, or None when its address has too many already (said,
    /// rate-limited; the caller closes the connection).
    fn take(table: &Arc<Mutex<Handshakes>>, peer: SocketAddr) -> Option<Unauthenticated> {
        let verdict = table.lock().unwrap_or_else(|e| e.into_inner()).begin(Instant::now(), peer.ip());
        match verdict {
            Verdict::Handshake => Some(Unauthenticated { table: table.clone(), peer }),
            Verdict::Refuse { log } => {
                if let Some(unsaid) = log {
                    tracing::warn!(
                        %peer, refused_since_last_line = unsaid,
                        "{} speaker connections from this address are still handshaking; this one is closed",
                        handshakes::MAX_PER_ADDRESS
                    );
                }
                None
            }
        }
    }

    /// Its handshake failed (`reason`, a fixed phrase; `detail`, what
    /// TLS said): logged, rate-limited per address and reason.
    fn failed(&self, reason: &'static str, detail: &str) {
        let log = self.table.lock().unwrap_or_else(|e| e.into_inner()).failed(Instant::now(), self.peer.ip(), reason);
        if let Some(unsaid) = log {
            tracing::info!(peer = %self.peer, failed_since_last_line = unsaid, "{reason}: {detail}");
        }
    }
}

impl Drop for Unauthenticated {
    fn drop(&mut self) {
        self.table.lock().unwrap_or_else(|e| e.into_inner()).end(self.peer.ip());
    }
}

/// Reads until one whole frame is there; None when the peer closed.
async fn read_payload<R: AsyncRead + Unpin>(rd: &mut R, deframer: &mut Deframer) -> Result<Option<Vec<u8>>, String> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(frame) = deframer.next_frame() {
            return frame.map(Some).map_err(|e| e.to_string());
        }
        let n = rd.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(None);
        }
        deframer.push(&buf[..n]);
    }
}

async fn send<W: AsyncWrite + Unpin>(wr: &mut W, message: &Message) -> Result<(), String> {
    let bytes = join::frame_message(message);
    match timeout(STEP_TIMEOUT, async {
        wr.write_all(&bytes).await?;
        wr.flush().await
    })
    .await
    {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("the speaker did not take a message within {} s", STEP_TIMEOUT.as_secs())),
    }
}

/// Writes one fallback packet and whatever else is queued (up to
/// `MEDIA_BATCH`), framed, then flushes once. A peer that takes none of it
/// for `STEP_TIMEOUT` ends the session (its queue drops packets meanwhile).
async fn send_media<W: AsyncWrite + Unpin>(wr: &mut W, first: &[u8], queue: &mut tokio::sync::mpsc::Receiver<Arc<[u8]>>, out: &mut Vec<u8>) -> Result<(), String> {
    out.clear();
    let mut push = |packet: &[u8]| {
        if let Ok(len) = u16::try_from(packet.len()) {
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(packet);
        }
    };
    push(first);
    for _ in 1..MEDIA_BATCH {
        let Ok(packet) = queue.try_recv() else { break };
        push(&packet);
    }
    match timeout(STEP_TIMEOUT, async {
        wr.write_all(out).await?;
        wr.flush().await
    })
    .await
    {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("the speaker took no audio inside TLS for {} s", STEP_TIMEOUT.as_secs())),
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Keys' identity for "did it change": the two MKIs.
fn mkis(keys: &ZoneKeys) -> (u32, u32) {
    (keys.current.mki.value(), keys.next.mki.value())
}

async fn session(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    slot: Unauthenticated,
    acceptor: TlsAcceptor,
    sessions: SessionsHandle,
    parts: &ListenerParts,
) {
    let tls = match timeout(STEP_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            slot.failed("speaker TLS handshake failed", &e.to_string());
            return;
        }
        Err(_) => {
            slot.failed("speaker TLS handshake did not finish in time", &format!("nothing within {} s", STEP_TIMEOUT.as_secs()));
            return;
        }
    };
    let pin = crate::speakers::tls::peer_pin(tls.get_ref().1.peer_certificates());
    let (mut rd, mut wr) = tokio::io::split(tls);
    let mut deframer = Deframer::default();
    let hello = match timeout(STEP_TIMEOUT, read_payload(&mut rd, &mut deframer)).await {
        Ok(Ok(Some(payload))) => match join::parse(&payload) {
            Ok(Payload::Control(message)) => Ok(message),
            Ok(Payload::Media(_)) => Err("the first message was not hello".to_string()),
            Err(e) => Err(e.to_string()),
        },
        Ok(Ok(None)) => Err("closed before hello".into()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("no hello within {} s", STEP_TIMEOUT.as_secs())),
    };
    let mut multicast = false;
    let hello_ok = match hello {
        Ok(Message::Hello { version, multicast: m, udp }) if version == join::VERSION => {
            multicast = m;
            Ok(udp)
        }
        Ok(Message::Hello { version, .. }) => {
            Err(format!("this loa speaks join protocol version {}, the speaker {version}", join::VERSION))
        }
        Ok(_) => Err("the first message was not hello".into()),
        Err(e) => Err(e),
    };
    let Some(pin) = pin else { return };
    let (enrolment, zones) = match parts.speakers.admit(pin).await {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(%peer, "cannot look the speaker up: {e}");
            let _ = send(&mut wr, &Message::Refused { reason: format!("loa cannot check enrolments now: {e}") }).await;
            return;
        }
    };
    let admitted = join::admit(&enrolment).map(str::to_string).and_then(|name| hello_ok.map(|udp| (name, udp)));
    let (name, udp) = match admitted {
        Ok(admitted) => {
            // Authenticated: no longer counts against its address (many
            // genuine speakers share a carrier NAT's).
            drop(slot);
            admitted
        }
        Err(reason) => {
            let who = match &enrolment {
                join::Enrolment::Live { name } | join::Enrolment::Revoked { name, .. } => Some(name.clone()),
                join::Enrolment::Unknown => None,
            };
            // Said (rate-limited) where it is stored: daemon/tasks/speakers.
            tracing::debug!(%peer, speaker = who.as_deref().unwrap_or("?"), %pin, "speaker join refused: {reason}");
            parts.speakers.event(who, SpeakerEventKind::Refused, peer, &reason);
            let _ = send(&mut wr, &Message::Refused { reason }).await;
            let _ = wr.shutdown().await;
            return;
        }
    };

    // The uplink: the key its keepalives are checked under, made per
    // session (a rejoin gets a new one; nothing to keep).
    let suite = zones.iter().find_map(|z| parts.keys.keys(z)).map_or(Suite::AesCm128HmacSha1_80, |k| k.suite);
    let uplink_key = MasterKey::generate(suite, &mut rand::rng());
    let uplink_ssrc = rand::random::<u32>().max(1);
    let keys = match super::Uplink::new(&name, uplink_ssrc, &uplink_key) {
        Ok(keys) => keys,
        Err(e) => {
            tracing::error!("cannot set up a speaker's uplink key: {e}");
            return;
        }
    };
    let uplink = Uplink { ssrc: uplink_ssrc, key: b64(uplink_key.expose_bytes()) };
    // Watching before the keys are read: a change in between is then seen
    // (and sent unless the MKIs are the ones granted).
    let mut keys_rx = parts.keys.subscribe();
    keys_rx.borrow_and_update();
    let mut catalog_rx = sessions.watch_catalog();
    catalog_rx.borrow_and_update();
    let mut told: HashMap<String, Told> = HashMap::new();
    let mut grants = Vec::new();
    // How the welcome says each zone comes; the fallback may later move a
    // unicast speaker inside TLS and back (`transport` messages).
    let granted = match (multicast, udp) {
        (true, _) => SpeakerTransport::Multicast,
        (false, true) => SpeakerTransport::Unicast,
        (false, false) => SpeakerTransport::Tls,
    };
    for zone in &zones {
        match grant_now(&sessions, parts, zone, granted, &uplink) {
            Ok((grant, now)) => {
                told.insert(zone.clone(), now);
                grants.push(grant);
            }
            Err(why) => tracing::warn!(speaker = %name, zone = %zone, "zone not served to joined speakers: {why}"),
        }
    }
    let welcome = Welcome {
        speaker: name.clone(),
        keepalive_ms: parts.keepalive.as_millis() as u64,
        udp_port: parts.listen.port(),
        zones: grants,
    };
    let (link, ends) = fallback::link(peer);
    let fallback::LinkEnds { mut kicked, transport: mut transport_rx, media: mut media_rx, dropped } = ends;
    let id = sessions.joined(told.keys().cloned().collect(), multicast, keys, link, udp);
    let mut media_out = Vec::new();
    // A revocation may have run since the first lookup (it found no
    // session to close, and its fresh keys may be in this welcome). The
    // speakers thread answers in order: enrolled now means a revocation
    // still to come will find this session and close it.
    if !matches!(parts.speakers.admit(pin).await, Ok((join::Enrolment::Live { .. }, _))) {
        sessions.left(&name, id);
        let reason = format!("speaker \"{name}\" was revoked while it joined");
        let _ = send(&mut wr, &Message::Refused { reason: reason.clone() }).await;
        parts.speakers.event(Some(name), SpeakerEventKind::Refused, peer, &reason);
        return;
    }
    if let Err(e) = send(&mut wr, &Message::Welcome(welcome)).await {
        sessions.left(&name, id);
        tracing::info!(%peer, speaker = %name, "speaker left before its welcome: {e}");
        return;
    }
    // Its welcome's keys are held: a revocation under way need not wait
    // for it to acknowledge them.
    for (zone, t) in &told {
        held(&sessions, parts, &name, id, zone, vec![t.mkis.0, t.mkis.1]);
    }
    let transport = granted.as_str();
    tracing::info!(%peer, speaker = %name, zones = ?told.keys().collect::<Vec<_>>(), transport, "speaker joined");
    parts.speakers.event(Some(name.clone()), SpeakerEventKind::Joined, peer, "");

    let why = loop {
        tokio::select! {
            reason = kicked.recv() => {
                let reason = reason.unwrap_or_else(|| "the daemon is stopping".into());
                let _ = send(&mut wr, &Message::Bye { reason: reason.clone() }).await;
                let _ = wr.shutdown().await;
                break reason;
            }
            changed = keys_rx.changed() => {
                if changed.is_err() {
                    break "the daemon is stopping".into();
                }
                keys_rx.borrow_and_update();
                if let Err(e) = follow_zones(&sessions, parts, &name, id, &zones, granted, &uplink, &mut told, &mut wr).await {
                    break e;
                }
            }
            changed = catalog_rx.changed() => {
                if changed.is_err() {
                    break "the daemon is stopping".into();
                }
                catalog_rx.borrow_and_update();
                if let Err(e) = follow_zones(&sessions, parts, &name, id, &zones, granted, &uplink, &mut told, &mut wr).await {
                    break e;
                }
            }
            Some(transport) = transport_rx.recv() => {
                let mut failed = None;
                for zone in told.keys() {
                    if let Err(e) = send(&mut wr, &Message::Transport { zone: zone.clone(), transport }).await {
                        failed = Some(e);
                        break;
                    }
                }
                if let Some(e) = failed {
                    break e;
                }
            }
            Some(packet) = media_rx.recv() => {
                if let Err(e) = send_media(&mut wr, &packet, &mut media_rx, &mut media_out).await {
                    break e;
                }
            }
            payload = read_payload(&mut rd, &mut deframer) => match payload {
                Ok(None) => break "the connection closed".into(),
                Ok(Some(mut payload)) => match join::parse(&payload) {
                    Ok(Payload::Control(Message::Bye { reason })) => break format!("the speaker said bye: {reason}"),
                    Ok(Payload::Control(Message::KeysAck { zone, mkis })) => held(&sessions, parts, &name, id, &zone, mkis),
                    Ok(Payload::Control(Message::Downstream { udp })) => sessions.downstream(&name, id, udp),
                    Ok(Payload::Control(_)) => {}
                    Ok(Payload::Media(_)) => keepalive(&sessions, parts, &name, uplink_ssrc, &mut payload, peer),
                    Err(e) => break format!("the speaker sent {e}"),
                },
                Err(e) => break e,
            },
        }
    };
    if sessions.left(&name, id) {
        let dropped = dropped.load(Ordering::Relaxed);
        tracing::info!(%peer, speaker = %name, dropped_for_slow_tls = dropped, "speaker left: {why}");
    }
    parts.speakers.event(Some(name), SpeakerEventKind::Left, peer, &why);
}

/// Session `id` of `name` holds `mkis` of `zone`; when every joined
/// speaker of the zone holds a revocation's next key, the switch is made
/// now rather than at the end of the hand-out (the revoked speaker, which
/// may still hear the zone's group, stops decoding that much sooner).
fn held(sessions: &SessionsHandle, parts: &ListenerParts, name: &str, id: u64, zone: &str, mkis: Vec<u32>) {
    let Some(next) = parts.keys.keys(zone).map(|k| k.next.mki.value()) else { return };
    if sessions.holds(name, id, zone, mkis, next) {
        parts.keys.switch_early(zone, next, std::time::SystemTime::now());
    }
}

/// A keepalive inside the connection (the TLS fallback): verified, then
/// a receiver report for health like a UDP one; anything else is counted
/// as a security event and ignored, the session goes on.
fn keepalive(sessions: &SessionsHandle, parts: &ListenerParts, name: &str, uplink_ssrc: u32, packet: &mut [u8], peer: SocketAddr) {
    let now = Instant::now();
    match fallback::check_keepalive(sessions, uplink_ssrc, packet, now) {
        Ok(plain) => {
            let zones = sessions.lock().bindings.zones(name).to_vec();
            let reporter = crate::health::JoinedReporter { name: name.to_string(), transport: SpeakerTransport::Tls };
            udp::feed_health(&parts.health, reporter, &zones, &packet[..plain], peer);
        }
        Err(fallback::Refused { reason, log }) => {
            if let Some((since, total)) = log {
                tracing::warn!(
                    %peer, speaker = %name, reason, since_last_line = since, total,
                    "SECURITY: a packet inside a speaker's TLS connection did not verify, ignored"
                );
            }
        }
    }
}

/// A ring or the catalog changed: tells the speaker what changed in its
/// zones (`keys`, `zone`, `zone_gone`) and, when the zones it is served
/// changed, moves its unicast targets with them. A revoked session is told
/// nothing (the revocation marks it before it re-keys).
#[allow(clippy::too_many_arguments)]
async fn follow_zones<W: AsyncWrite + Unpin>(
    sessions: &SessionsHandle,
    parts: &ListenerParts,
    name: &str,
    id: u64,
    zones: &[String],
    transport: SpeakerTransport,
    uplink: &Uplink,
    told: &mut HashMap<String, Told>,
    wr: &mut W,
) -> Result<(), String> {
    if !sessions.is_live(name, id) {
        return Ok(());
    }
    let mut moved = false;
    for zone in zones {
        let now = grant_now(sessions, parts, zone, transport, uplink);
        let told_now = now.as_ref().ok().map(|(_, t)| *t);
        let message = match tell(told.get(zone).copied(), now) {
            Tell::Nothing => continue,
            Tell::Keys(grant) => Message::Keys { zone: zone.clone(), keys: grant.keys },
            Tell::Zone(grant) => {
                tracing::info!(speaker = %name, zone = %zone, ssrc = grant.ssrc, "joined speaker told of its zone's change");
                moved = true;
                Message::Zone(grant)
            }
            Tell::Gone(reason) => {
                tracing::info!(speaker = %name, zone = %zone, "joined speaker told its zone is gone: {reason}");
                moved = true;
                Message::ZoneGone { zone: zone.clone(), reason }
            }
        };
        match told_now {
            Some(t) => told.insert(zone.clone(), t),
            None => told.remove(zone),
        };
        send(wr, &message).await?;
    }
    if moved {
        sessions.set_zones(name, id, zones.iter().filter(|z| told.contains_key(*z)).cloned().collect());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::speakers::join::KeyGrant;

    fn grant(ssrc: u32) -> ZoneGrant {
        ZoneGrant {
            name: "z".into(),
            ssrc,
            pt: 96,
            channels: 1,
            suite: "AES_CM_128_HMAC_SHA1_80".into(),
            group: None,
            transport: SpeakerTransport::Unicast,
            keys: vec![KeyGrant { mki: 1, key: "a2V5".into(), current: true }],
            uplink: Uplink { ssrc: 7, key: "dXA=".into() },
        }
    }

    fn told(ssrc: u32, group: Option<&str>, mkis: (u32, u32)) -> Told {
        Told { ssrc, group: group.map(|g| g.parse().unwrap()), mkis }
    }

    #[test]
    fn a_reload_that_sends_the_zone_anew_is_a_zone_message_and_a_new_ring_alone_is_keys() {
        let was = Some(told(1, None, (1, 2)));
        assert_eq!(tell(was, Ok((grant(2), told(2, None, (1, 2))))), Tell::Zone(grant(2)));
        let group = told(1, Some("239.255.0.1:5004"), (1, 2));
        assert_eq!(tell(Some(group), Ok((grant(1), told(1, Some("239.255.0.2:5004"), (1, 2))))), Tell::Zone(grant(1)));
        assert_eq!(tell(was, Ok((grant(1), told(1, None, (2, 3))))), Tell::Keys(grant(1)));
        assert_eq!(tell(was, Ok((grant(1), told(1, None, (1, 2))))), Tell::Nothing);
    }

    #[test]
    fn a_zone_added_back_is_granted_and_a_zone_gone_says_why() {
        assert_eq!(tell(None, Ok((grant(5), told(5, None, (1, 2))))), Tell::Zone(grant(5)));
        assert_eq!(tell(Some(told(1, None, (1, 2))), Err("plain now".into())), Tell::Gone("plain now".into()));
        assert_eq!(tell(None, Err("still gone".into())), Tell::Nothing);
    }
}
