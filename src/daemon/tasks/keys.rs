//! The zone keys task: keeps each SRTP zone's key ring (`crate::keys`, the
//! decisions), saves every change in the store, makes the switches when
//! they are due, and tells the engine (which tells the pacer) and anyone
//! watching (`subscribe`: the speaker sessions) when a zone's keys change.
//!
//! The rings live behind one lock, held only for map operations (never
//! across an await or a store call), because three parties read them: this
//! task, the engine (a zone added by a reload needs keys before its first
//! packet) and the control handler (`zone.keys`).
//!
//! Must not touch: packets, sockets, the pacer (the engine carries keys to
//! it), SQL (the store thread does that).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{watch, Notify};

use crate::config::{Config, Security, ZoneSecurity};
use crate::daemon::tasks::store::StoreHandle;
use crate::keys::{KeyRing, KeyRings, RestoreNote, SavedRing, ZoneKeys};
use crate::rtp::srtp::Suite;

/// Every SRTP zone's keys, as last changed.
pub type KeysView = Arc<BTreeMap<String, ZoneKeys>>;

/// How long revocation gives remaining speakers to learn the new key
/// before it is used.
pub const REVOKE_HANDOUT: Duration = Duration::from_secs(2);

struct Shared {
    rings: KeyRings,
    security: Security,
}

/// The rings, shared; cheap to clone.
#[derive(Clone)]
pub struct KeysHandle {
    shared: Arc<Mutex<Shared>>,
    wake: Arc<Notify>,
    view: Arc<watch::Sender<KeysView>>,
    store: StoreHandle,
}

/// What the task tells the engine: `zone`'s keys changed.
pub type KeysChanged = Box<dyn Fn(String, ZoneKeys) + Send + Sync>;

impl KeysHandle {
    /// The rings of `config`'s SRTP zones, restored from `saved` where
    /// possible (so SDPs handed out before a restart keep working until
    /// their keys expire), new otherwise; every ring is saved.
    pub fn start(config: &Config, saved: Vec<(String, SavedRing)>, store: StoreHandle, now: SystemTime) -> KeysHandle {
        let mut saved: BTreeMap<String, SavedRing> = saved.into_iter().collect();
        let mut rings = KeyRings::default();
        let suite = Suite::from(config.security.suite);
        for zone in config.zones.iter().filter(|z| z.security == ZoneSecurity::Srtp) {
            let ring = match saved.remove(&zone.name) {
                Some(saved) => {
                    let (ring, note) = KeyRing::restore(&saved, suite, config.security.rotate, now, &mut rand::rng());
                    match note {
                        RestoreNote::Kept => {}
                        RestoreNote::SwitchedWhileDown => {
                            tracing::info!(zone = %zone.name, "the zone's next key took over while the daemon was down")
                        }
                        RestoreNote::Fresh(why) => {
                            tracing::warn!(zone = %zone.name, "new zone keys: {why}; SDPs saved before no longer play")
                        }
                    }
                    ring
                }
                None => KeyRing::new(suite, config.security.rotate, now, &mut rand::rng()),
            };
            rings.insert(&zone.name, ring.with_mki(zone.mki));
        }
        // Rings of zones no longer in the config (or now plain) are forgotten.
        for zone in saved.into_keys() {
            store.write("forget a removed zone's keys", move |s| s.delete_zone_keys(&zone));
        }
        let handle = KeysHandle {
            shared: Arc::new(Mutex::new(Shared { rings, security: config.security.clone() })),
            wake: Arc::new(Notify::new()),
            view: Arc::new(watch::channel(Arc::new(BTreeMap::new())).0),
            store,
        };
        handle.publish_changes(&|_, _| {});
        handle
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `zone`'s keys; None for a plain zone or one not known.
    pub fn keys(&self, zone: &str) -> Option<ZoneKeys> {
        self.lock().rings.get(zone).map(KeyRing::keys)
    }

    /// Keys for a zone a reload added (made now if it had none); `mki`
    /// is the zone's choice.
    pub fn keys_for_new_zone(&self, zone: &str, mki: bool, now: SystemTime) -> ZoneKeys {
        let keys = {
            let mut shared = self.lock();
            if let Some(ring) = shared.rings.get(zone) {
                ring.keys()
            } else {
                let ring = KeyRing::new(Suite::from(shared.security.suite), shared.security.rotate, now, &mut rand::rng())
                    .with_mki(mki);
                let keys = ring.keys();
                shared.rings.insert(zone, ring);
                keys
            }
        };
        self.publish_changes(&|_, _| {});
        self.wake.notify_one();
        keys
    }

    /// A zone removed by a reload: its keys are forgotten.
    pub fn remove_zone(&self, zone: &str) {
        if self.lock().rings.remove(zone).is_some() {
            let name = zone.to_string();
            self.store.write("forget a removed zone's keys", move |s| s.delete_zone_keys(&name));
            self.view.send_modify(|view| {
                Arc::make_mut(view).remove(zone);
            });
        }
    }

    /// Revocation: `zone`'s next key is replaced and takes over after
    /// `REVOKE_HANDOUT`. False for a plain or unknown zone.
    pub fn rotate_now(&self, zone: &str, now: SystemTime) -> bool {
        let rotated = self.lock().rings.rotate_now(zone, now, REVOKE_HANDOUT, &mut rand::rng());
        self.wake.notify_one();
        rotated
    }

    /// Every joined speaker of `zone` holds its revocation key `next_mki`:
    /// the switch is made now instead of at the end of `REVOKE_HANDOUT`.
    pub fn switch_early(&self, zone: &str, next_mki: u32, now: SystemTime) {
        if self.lock().rings.switch_early(zone, next_mki, now) {
            tracing::info!(zone, mki = next_mki, "every joined speaker holds the new key: switching now");
            self.wake.notify_one();
        }
    }

    /// Every SRTP zone's keys, now and after each change.
    pub fn subscribe(&self) -> watch::Receiver<KeysView> {
        self.view.subscribe()
    }

    /// Saves and publishes every ring changed since the last call, and
    /// hands each to `changed` (the engine: on to the pacer).
    fn publish_changes(&self, changed: &dyn Fn(String, ZoneKeys)) {
        let mut out = Vec::new();
        {
            let mut shared = self.lock();
            while let Some(zone) = shared.rings.poll_change() {
                if let Some(ring) = shared.rings.get(&zone) {
                    out.push((zone, ring.keys(), ring.saved()));
                }
            }
        }
        if out.is_empty() {
            return;
        }
        self.view.send_modify(|view| {
            let view = Arc::make_mut(view);
            for (zone, keys, _) in &out {
                view.insert(zone.clone(), keys.clone());
            }
        });
        for (zone, keys, saved) in out {
            let name = zone.clone();
            self.store.write("save a zone's keys", move |s| s.put_zone_keys(&name, &saved));
            changed(zone, keys);
        }
    }

    /// The task: sleeps until the next switch (or a change), makes the
    /// switches due, saves and hands on what changed. Ends with the runtime.
    pub fn spawn(&self, changed: KeysChanged) -> tokio::task::JoinHandle<()> {
        let handle = self.clone();
        tokio::spawn(async move {
            loop {
                handle.publish_changes(&*changed);
                let next = handle.lock().rings.poll_timeout();
                let wait = next.map(|at| at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO));
                // The wall clock may be stepped (NTP): never sleep more than
                // a minute on one reading of it.
                let wait = wait.unwrap_or(Duration::from_secs(60)).min(Duration::from_secs(60));
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = handle.wake.notified() => {}
                }
                let now = SystemTime::now();
                handle.lock().rings.handle_timeout(now, &mut rand::rng());
            }
        })
    }
}
