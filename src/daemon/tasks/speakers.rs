//! The speakers thread: enrolment, listing and revocation (blocking work:
//! key generation, SQLite) off the engine task. Calls arrive with the
//! client's reply channel, already checked by the core against the
//! configuration, and are answered from here. The join sessions ask it
//! who a certificate is and have it write their audit rows.
//!
//! Revocation order matters: the store first (a rejoin is refused from
//! then on), then the live session ends and its unicast stops, and only
//! then are its zones re-keyed, so the fresh key is handed to the
//! remaining speakers and never to it.

use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;

use jiff::Timestamp;

use crate::daemon::core::SpeakersCall;
use crate::daemon::tasks::health::{HealthHandle, HealthInput};
use crate::daemon::tasks::keys::KeysHandle;
use crate::daemon::tasks::sessions::SessionsHandle;
use crate::speakers::join::Enrolment;
use crate::speakers::Pin;
use crate::store::{SpeakerEvent, SpeakerEventKind};
use crate::daemon::shell::Reply;
use crate::proto::{Response, RpcError};
use crate::speakers::registry::{Registry, RegistryError};

type Admission = Result<(Enrolment, Vec<String>), String>;

enum Msg {
    Call { call: SpeakersCall, reply: Reply },
    Admit { pin: Pin, reply: tokio::sync::oneshot::Sender<Admission> },
    Event(SpeakerEvent),
    Stop,
}

/// What the speakers thread needs of the rest of the daemon.
pub struct Links {
    pub sessions: SessionsHandle,
    pub keys: KeysHandle,
    /// Told the enrolled speakers when they change, so that `loa
    /// endpoints` lists each from its enrolment (None: no `[speakers]
    /// listen`, nobody can join).
    pub health: Option<HealthHandle>,
}

#[derive(Clone)]
pub struct SpeakersHandle {
    tx: mpsc::Sender<Msg>,
}

pub struct SpeakersThread {
    join: JoinHandle<()>,
    stop: mpsc::Sender<Msg>,
}

impl SpeakersHandle {
    /// Hands `call` to the thread, which answers on `reply`.
    pub fn call(&self, call: SpeakersCall, reply: Reply) {
        if let Err(mpsc::SendError(Msg::Call { reply, .. })) = self.tx.send(Msg::Call { call, reply }) {
            let _ = reply.send(Err(RpcError::refused("the daemon is shutting down")));
        }
    }
}

impl SpeakersHandle {
    /// Who holds the certificate with `pin`, and its zones.
    pub async fn admit(&self, pin: Pin) -> Admission {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.tx.send(Msg::Admit { pin, reply }).map_err(|_| "the daemon is shutting down".to_string())?;
        answer.await.map_err(|_| "the daemon is shutting down".to_string())?
    }

    /// An audit row for a join, a refusal or a departure.
    pub fn event(&self, speaker: Option<String>, kind: SpeakerEventKind, peer: std::net::SocketAddr, detail: &str) {
        let event = SpeakerEvent { at: Timestamp::now(), speaker, kind, by_uid: None, address: Some(peer.to_string()), detail: detail.to_string() };
        let _ = self.tx.send(Msg::Event(event));
    }
}

impl SpeakersThread {
    pub fn join(self) {
        let _ = self.stop.send(Msg::Stop);
        let _ = self.join.join();
    }
}

/// Opens the registry (its own connection to `loa.db`, the daemon's
/// identity) on a new thread.
pub fn spawn(state_dir: PathBuf, links: Links) -> std::io::Result<(SpeakersHandle, SpeakersThread)> {
    let (tx, rx) = mpsc::channel();
    let join = std::thread::Builder::new().name("loa-speakers".into()).spawn(move || run(&state_dir, rx, &links))?;
    Ok((SpeakersHandle { tx: tx.clone() }, SpeakersThread { join, stop: tx }))
}

fn run(state_dir: &std::path::Path, rx: mpsc::Receiver<Msg>, links: &Links) {
    let mut registry = Registry::open(state_dir);
    match &mut registry {
        Ok(registry) => tell_health(registry, links),
        Err(e) => tracing::error!("speakers cannot be enrolled or listed: {e}"),
    }
    let mut refusals = crate::speakers::refusals::RefusalLog::default();
    while let Ok(msg) = rx.recv() {
        match (msg, &mut registry) {
            (Msg::Stop, _) => return,
            (Msg::Call { call, reply }, Ok(registry)) => {
                let changes = !matches!(call, SpeakersCall::List);
                let answer = answer(registry, call, links, Timestamp::now());
                if changes && answer.is_ok() {
                    tell_health(registry, links);
                }
                let _ = reply.send(answer);
            }
            (Msg::Call { reply, .. }, Err(e)) => {
                let _ = reply.send(Err(RpcError::internal(format!("the speaker registry is not open: {e}"))));
            }
            (Msg::Admit { pin, reply }, Ok(registry)) => {
                let _ = reply.send(registry.enrolment(&pin).map_err(|e| e.to_string()));
            }
            (Msg::Admit { reply, .. }, Err(e)) => {
                let _ = reply.send(Err(format!("the speaker registry is not open: {e}")));
            }
            (Msg::Event(mut event), Ok(registry)) => {
                if event.kind == SpeakerEventKind::Refused {
                    let peer = event.address.as_deref().and_then(|a| a.parse::<std::net::SocketAddr>().ok()).map(|a| a.ip());
                    let Some(peer) = peer else { continue };
                    let Some(left_out) = refusals.refused(std::time::Instant::now(), peer, &event.detail) else { continue };
                    if left_out > 0 {
                        event.detail = format!("{} ({left_out} more refused for this since the last row)", event.detail);
                    }
                    tracing::warn!(peer = %peer, speaker = event.speaker.as_deref().unwrap_or("?"), "speaker join refused: {}", event.detail);
                }
                if let Err(e) = registry.event(&event) {
                    tracing::warn!("cannot record a speaker {} event: {e}", event.kind.as_str());
                }
            }
            (Msg::Event(_), Err(_)) => {}
        }
    }
}

/// The enrolled speakers and their zones, to health (revoked ones are not).
fn tell_health(registry: &mut Registry, links: &Links) {
    let Some(health) = &links.health else { return };
    match registry.list() {
        Ok(list) => {
            let enrolled = list.speakers.into_iter().filter(|s| s.revoked_at.is_none()).map(|s| (s.name, s.zones)).collect();
            health.send(HealthInput::Enrolled(enrolled));
        }
        Err(e) => tracing::warn!("cannot list the enrolled speakers for `loa endpoints`: {e}"),
    }
}

fn answer(registry: &mut Registry, call: SpeakersCall, links: &Links, now: Timestamp) -> Result<Response, RpcError> {
    let result = match call {
        SpeakersCall::Add { by, name, zones, listen } => registry.add(Some(by), &name, zones, listen, now).map(Response::SpeakersAdd),
        SpeakersCall::List => registry.list().map(|mut list| {
            links.sessions.overlay(&mut list.speakers);
            Response::SpeakersList(list)
        }),
        SpeakersCall::Revoke { by, name } => registry.revoke(Some(by), &name, now).map(|mut revoked| {
            revoked.session_closed = links.sessions.revoke(&name);
            let wall = std::time::SystemTime::now();
            revoked.zones_rekeyed.retain(|zone| links.keys.rotate_now(zone, wall));
            tracing::info!(speaker = %name, session_closed = revoked.session_closed, zones = ?revoked.zones_rekeyed, "speaker revoked; its zones get fresh keys");
            Response::SpeakersRevoke(revoked)
        }),
    };
    result.map_err(|e| match e {
        RegistryError::Refused(why) => RpcError::refused(why),
        RegistryError::Failed(why) => RpcError::internal(why),
    })
}
