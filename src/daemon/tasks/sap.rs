//! The SAP task: owns the announcement socket and sends what
//! `sap::Announcer` decides, for the zones of the current config. Reloads
//! reach it as a new config; at shutdown it sends a deletion per zone.
//!
//! Must not touch: the RTP sockets, zone decisions (the engine's).

use std::net::{SocketAddrV4, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::config::{Config, Network};
use crate::net::sap::{Announcer, Kind, Outgoing};

enum SapInput {
    Reconfigure(Box<Config>),
    Stop(oneshot::Sender<()>),
}

#[derive(Default)]
struct SapStatus {
    enabled: bool,
    address: String,
    last_sent: Option<Timestamp>,
    error: Option<String>,
}

#[derive(Clone)]
pub struct SapHandle {
    tx: mpsc::UnboundedSender<SapInput>,
    status: Arc<Mutex<SapStatus>>,
}

impl SapHandle {
    pub fn reconfigure(&self, config: &Config) {
        let _ = self
            .tx
            .send(SapInput::Reconfigure(Box::new(config.clone())));
    }

    /// Sends the deletions and waits (briefly) until they are out.
    pub async fn stop(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(SapInput::Stop(ack)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), done).await;
        }
    }

    /// What `loa status` shows of SAP.
    pub fn status(&self) -> crate::daemon::core::SapState {
        let s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        crate::daemon::core::SapState {
            enabled: s.enabled,
            address: s.address.clone(),
            last_sent: s.last_sent,
            error: s.error.clone(),
        }
    }
}

/// Each zone's (name, SDP) when SAP is on, else none.
fn sessions(config: &Config) -> Vec<(String, String)> {
    if !config.sap.enabled {
        return Vec::new();
    }
    config
        .zones
        .iter()
        .map(|z| (z.name.clone(), crate::rtp::sdp::for_zone(config, z)))
        .collect()
}

struct Sender {
    network: Network,
    socket: Option<UdpSocket>,
    status: Arc<Mutex<SapStatus>>,
}

impl Sender {
    /// Sends `packets` to `to`; the socket is made on first use (and again
    /// after an error), so a missing interface address is retried.
    fn send(&mut self, packets: Vec<Outgoing>, to: SocketAddrV4) {
        for p in packets {
            if self.socket.is_none() {
                match crate::net::sender_socket(&self.network) {
                    Ok(s) => self.socket = Some(s),
                    Err(e) => {
                        self.fail(format!("cannot send SAP announcements: {e}"));
                        return;
                    }
                }
            }
            let socket = self.socket.as_ref().expect("made above");
            match socket.send_to(&p.bytes, to) {
                Ok(_) => {
                    tracing::debug!(zone = %p.zone, deletion = p.kind == Kind::Delete, "SAP sent to {to}");
                    let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
                    s.last_sent = Some(Timestamp::now());
                    s.error = None;
                }
                Err(e) => {
                    self.socket = None;
                    self.fail(format!(
                        "cannot send the SAP announcement of zone {} to {to}: {e}",
                        p.zone
                    ));
                }
            }
        }
    }

    fn fail(&self, message: String) {
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if s.error.as_deref() != Some(&message) {
            tracing::warn!("{message}");
        }
        s.error = Some(message);
    }
}

pub fn spawn(config: &Config) -> (SapHandle, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let status = Arc::new(Mutex::new(SapStatus {
        enabled: config.sap.enabled,
        address: config.sap.address.to_string(),
        ..SapStatus::default()
    }));
    let handle = SapHandle {
        tx,
        status: status.clone(),
    };
    let mut announcer = Announcer::new(
        config.network.interface,
        config.sap.interval,
        rand::random(),
    );
    let mut address = config.sap.address;
    let mut sender = Sender {
        network: config.network.clone(),
        socket: None,
        status,
    };
    let first = announcer.set_sessions(sessions(config), Instant::now().into_std());
    let task = tokio::spawn(async move {
        sender.send(first, address);
        loop {
            let wake = announcer.next_wakeup();
            tokio::select! {
                input = rx.recv() => match input {
                    Some(SapInput::Reconfigure(mut config)) => {
                        // [network] changes wait for a restart (the RTP
                        // sockets keep theirs), so the SDP keeps saying
                        // where the zones really come from.
                        config.network = sender.network.clone();
                        if config.sap.address != address {
                            sender.send(announcer.stop(), address);
                            address = config.sap.address;
                        }
                        announcer.set_interval(config.sap.interval);
                        let gone = announcer.set_sessions(sessions(&config), Instant::now().into_std());
                        sender.send(gone, address);
                        let mut s = sender.status.lock().unwrap_or_else(|e| e.into_inner());
                        s.enabled = config.sap.enabled;
                        s.address = address.to_string();
                    }
                    Some(SapInput::Stop(ack)) => {
                        sender.send(announcer.stop(), address);
                        let _ = ack.send(());
                        return;
                    }
                    None => {
                        sender.send(announcer.stop(), address);
                        return;
                    }
                },
                _ = async {
                    match wake {
                        Some(at) => tokio::time::sleep_until(Instant::from_std(at)).await,
                        None => std::future::pending().await,
                    }
                } => {
                    let due = announcer.poll(Instant::now().into_std());
                    sender.send(due, address);
                }
            }
        }
    });
    (handle, task)
}
