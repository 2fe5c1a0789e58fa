//! One speaker's TLS connection: handshake, `hello`, admission (asked of
//! the speakers thread, which keeps the enrolments and writes the audit),
//! then `welcome`, `keys` whenever one of its zones' rings changes, and
//! `bye` when it is revoked or replaced.
//!
//! A slow or hostile peer costs a bounded amount: the handshake and the
//! hello each have `STEP_TIMEOUT`, every write `STEP_TIMEOUT`, a frame is
//! at most 64 KiB (a control message 16 KiB), and at most
//! `max_connections()` connections are served at once; the rest are closed
//! at accept.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

use super::{ListenerParts, SessionsHandle};
use crate::keys::ZoneKeys;
use crate::proto::speakers::SpeakerTransport;
use crate::rtp::srtp::{MasterKey, SrtpReceiver, Suite, DEFAULT_REPLAY_WINDOW};
use crate::speakers::join::{self, Deframer, Message, Payload, Uplink, Welcome, ZoneGrant};
use crate::speakers::keys::Ring;
use crate::store::SpeakerEventKind;

const STEP_TIMEOUT: Duration = Duration::from_secs(5);

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
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "{max} speaker connections are open already; this one is closed");
            continue;
        };
        let (acceptor, sessions, parts) = (acceptor.clone(), sessions.clone(), parts.clone());
        tokio::spawn(async move {
            session(stream, peer, acceptor, sessions, &parts).await;
            drop(permit);
        });
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

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Keys' identity for "did it change": the two MKIs.
fn mkis(keys: &ZoneKeys) -> (u32, u32) {
    (keys.current.mki.value(), keys.next.mki.value())
}

async fn session(stream: tokio::net::TcpStream, peer: SocketAddr, acceptor: TlsAcceptor, sessions: SessionsHandle, parts: &ListenerParts) {
    let tls = match timeout(STEP_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::info!(%peer, "speaker TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, "speaker TLS handshake did not finish within {} s", STEP_TIMEOUT.as_secs());
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
    let hello_ok = match hello {
        Ok(Message::Hello { version, .. }) if version == join::VERSION => Ok(()),
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
    let admitted = join::admit(&enrolment).map(str::to_string).and_then(|name| hello_ok.map(|()| name));
    let name = match admitted {
        Ok(name) => name,
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
    let rx = match SrtpReceiver::new(uplink_ssrc, uplink_key.clone(), None, DEFAULT_REPLAY_WINDOW) {
        Ok(rx) => rx,
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
    let mut sent: HashMap<String, (u32, u32)> = HashMap::new();
    let mut grants = Vec::new();
    for zone in &zones {
        let (Some(facts), Some(keys)) = (parts.zones.get(zone), parts.keys.keys(zone)) else {
            tracing::warn!(speaker = %name, zone = %zone, "zone not served to joined speakers: gone from the config, or plain RTP");
            continue;
        };
        sent.insert(zone.clone(), mkis(&keys));
        grants.push(ZoneGrant {
            name: zone.clone(),
            ssrc: facts.ssrc,
            pt: facts.pt,
            channels: facts.channels,
            suite: keys.suite.sdp_name().to_string(),
            group: None,
            transport: SpeakerTransport::Unicast,
            keys: Ring::from_zone_keys(facts.ssrc, &keys).grants(),
            uplink: uplink.clone(),
        });
    }
    let welcome = Welcome {
        speaker: name.clone(),
        keepalive_ms: parts.keepalive.as_millis() as u64,
        udp_port: parts.listen.port(),
        zones: grants,
    };
    let (kick, mut kicked) = mpsc::unbounded_channel();
    let id = sessions.joined(&name, sent.keys().cloned().collect(), uplink_ssrc, rx, kick);
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
    tracing::info!(%peer, speaker = %name, zones = ?sent.keys().collect::<Vec<_>>(), "speaker joined");
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
                let view = keys_rx.borrow_and_update().clone();
                // Taken after the view: a revocation marks the session
                // before it re-keys, so a revoked session sees it here.
                if !sessions.is_live(&name, id) {
                    continue;
                }
                let mut failed = None;
                for (zone, last) in &mut sent {
                    let (Some(keys), Some(facts)) = (view.get(zone), parts.zones.get(zone)) else { continue };
                    if mkis(keys) == *last {
                        continue;
                    }
                    *last = mkis(keys);
                    let message = Message::Keys { zone: zone.clone(), keys: Ring::from_zone_keys(facts.ssrc, keys).grants() };
                    if let Err(e) = send(&mut wr, &message).await {
                        failed = Some(e);
                        break;
                    }
                }
                if let Some(e) = failed {
                    break e;
                }
            }
            payload = read_payload(&mut rd, &mut deframer) => match payload.map(|p| p.map(|p| join::parse(&p).map(|p| match p {
                Payload::Control(message) => Some(message),
                Payload::Media(_) => None,
            }))) {
                Ok(None) => break "the connection closed".into(),
                Ok(Some(Ok(Some(Message::Bye { reason })))) => break format!("the speaker said bye: {reason}"),
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => break format!("the speaker sent {e}"),
                Err(e) => break e,
            },
        }
    };
    if sessions.left(&name, id) {
        tracing::info!(%peer, speaker = %name, "speaker left: {why}");
    }
    parts.speakers.event(Some(name), SpeakerEventKind::Left, peer, &why);
}
