//! The speakers' keepalives, on a thread of their own: they must leave on
//! time even while the receiving loop works through a backlog, or the
//! daemon rightly drops the bindings (after `missed_keepalives`) and the
//! bench would measure its own slowness as loss.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use loa::rtp::srtp::SrtpSender;

/// One speaker's keepalive: from its own socket (a clone of the one its
/// audio arrives on), under its uplink key, every `every`.
pub struct Keeper {
    pub name: String,
    pub socket: UdpSocket,
    pub uplink: SrtpSender,
    pub ssrc: u32,
    pub to: SocketAddr,
    pub every: Duration,
}

impl Keeper {
    pub fn send(&mut self) -> Result<(), String> {
        super::net::send_keepalive(&self.socket, &mut self.uplink, self.ssrc, &self.name, self.to)
    }
}

pub struct Keepalives {
    tx: mpsc::Sender<Keeper>,
    pub sent: Arc<AtomicU64>,
    pub errors: Arc<Mutex<Vec<String>>>,
}

impl Keepalives {
    pub fn start() -> std::io::Result<Keepalives> {
        let (tx, rx) = mpsc::channel::<Keeper>();
        let sent = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let (counter, errs) = (sent.clone(), errors.clone());
        std::thread::Builder::new().name("keepalives".into()).spawn(move || {
            let mut keepers: Vec<(Keeper, Instant)> = Vec::new();
            let send = |k: &mut Keeper| match k.send() {
                Ok(()) => {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => errs.lock().unwrap_or_else(|e| e.into_inner()).push(format!("{}: {e}", k.name)),
            };
            loop {
                let now = Instant::now();
                for (k, next) in keepers.iter_mut().filter(|(_, next)| *next <= now) {
                    send(k);
                    *next = now + k.every;
                }
                let wait = keepers.iter().map(|(_, next)| next.saturating_duration_since(now)).min().unwrap_or(Duration::from_secs(1));
                match rx.recv_timeout(wait.min(Duration::from_millis(50))) {
                    // The first at once: it binds the unicast.
                    Ok(mut k) => {
                        send(&mut k);
                        let next = Instant::now() + k.every;
                        keepers.push((k, next));
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        })?;
        Ok(Keepalives { tx, sent, errors })
    }

    pub fn add(&self, keeper: Keeper) {
        let _ = self.tx.send(keeper);
    }
}
