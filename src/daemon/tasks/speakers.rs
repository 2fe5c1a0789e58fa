//! The speakers thread: enrolment, listing and revocation (blocking work:
//! key generation, SQLite) off the engine task. Calls arrive with the
//! client's reply channel, already checked by the core against the
//! configuration, and are answered from here.

use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;

use jiff::Timestamp;

use crate::daemon::core::SpeakersCall;
use crate::daemon::shell::Reply;
use crate::proto::{Response, RpcError};
use crate::speakers::registry::{Registry, RegistryError};

enum Msg {
    Call { call: SpeakersCall, reply: Reply },
    Stop,
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

impl SpeakersThread {
    pub fn join(self) {
        let _ = self.stop.send(Msg::Stop);
        let _ = self.join.join();
    }
}

/// Opens the registry (its own connection to `loa.db`, the daemon's
/// identity) on a new thread.
pub fn spawn(state_dir: PathBuf) -> std::io::Result<(SpeakersHandle, SpeakersThread)> {
    let (tx, rx) = mpsc::channel();
    let join = std::thread::Builder::new().name("loa-speakers".into()).spawn(move || run(&state_dir, rx))?;
    Ok((SpeakersHandle { tx: tx.clone() }, SpeakersThread { join, stop: tx }))
}

fn run(state_dir: &std::path::Path, rx: mpsc::Receiver<Msg>) {
    let mut registry = Registry::open(state_dir);
    if let Err(e) = &registry {
        tracing::error!("speakers cannot be enrolled or listed: {e}");
    }
    while let Ok(msg) = rx.recv() {
        let Msg::Call { call, reply } = msg else { return };
        let answer = match &mut registry {
            Ok(registry) => answer(registry, call, Timestamp::now()),
            Err(e) => Err(RpcError::internal(format!("the speaker registry is not open: {e}"))),
        };
        let _ = reply.send(answer);
    }
}

fn answer(registry: &mut Registry, call: SpeakersCall, now: Timestamp) -> Result<Response, RpcError> {
    let result = match call {
        SpeakersCall::Add { by, name, zones, listen } => registry.add(Some(by), &name, zones, listen, now).map(Response::SpeakersAdd),
        SpeakersCall::List => registry.list().map(Response::SpeakersList),
        SpeakersCall::Revoke { by, name } => registry.revoke(Some(by), &name, now).map(Response::SpeakersRevoke),
    };
    result.map_err(|e| match e {
        RegistryError::Refused(why) => RpcError::refused(why),
        RegistryError::Failed(why) => RpcError::internal(why),
    })
}
