//! `loa serve`: wires the parts together — config, store thread, pacer
//! thread, control socket, signals, systemd notification — around the one
//! engine task, where the shell (`shell`) feeds the core (`core`, the
//! decisions, without I/O). Startup order matters: the history is repaired
//! before anything plays, and READY is sent only once the socket answers.
//!
//! Must not touch: decisions (they live in the core, arbiter, scheduler).

pub(crate) mod core;
mod notify;
pub mod server;
mod shell;
pub(crate) mod tasks;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::pacer::{self, PacerOptions};
use crate::store::Store;
use self::core::{Core, Restored};
use server::ServerOptions;
use shell::{Lanes, Parts, Shell, ShellHandler, ShellMsg};

pub use self::core::PREPARE_LEAD;
/// The zone key rings at run time: `keys(zone)`, `subscribe()` for changes,
/// `rotate_now(zone, now)` for revocation (speaker sessions use these).
pub use tasks::keys::{KeysHandle, KeysView, REVOKE_HANDOUT};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Config(crate::config::ConfigErrors),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
    #[error(transparent)]
    Control(#[from] server::ControlError),
    #[error("cannot start: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot start: {0}")]
    Zone(#[from] pacer::ZoneSpecError),
}

/// Deletes speech WAVs unused for `tts::CACHE_MAX_AGE`: at start, then
/// once a day. File I/O, so on a blocking thread, never on the engine task.
async fn prune_speech_daily(dir: PathBuf) {
    let mut daily = tokio::time::interval(Duration::from_secs(24 * 3600));
    daily.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        daily.tick().await;
        let d = dir.clone();
        let result = tokio::task::spawn_blocking(move || {
            crate::media::tts::prune(&d, std::time::SystemTime::now(), crate::media::tts::CACHE_MAX_AGE)
        })
        .await;
        match result {
            Ok(Ok(p)) if p.files > 0 => tracing::info!(
                "speech cache: deleted {} WAV(s), {} bytes, unused for {} days, from {}",
                p.files,
                p.bytes,
                crate::media::tts::CACHE_MAX_AGE.as_secs() / 86_400,
                dir.display()
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("cannot clean the speech cache {}: {e}", dir.display()),
            Err(e) => tracing::warn!("speech cache cleaning stopped: {e}"),
        }
    }
}

/// Runs the daemon until SIGTERM/SIGINT.
pub fn run(config_path: &Path) -> Result<(), DaemonError> {
    let config = Config::load(config_path).map_err(DaemonError::Config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("loa-rt")
        .enable_all()
        .build()?;
    runtime.block_on(serve(config, config_path.to_path_buf()))
}

async fn serve(config: Config, config_path: PathBuf) -> Result<(), DaemonError> {
    // History first: rows a crash left open become `interrupted` before
    // anything new is written.
    // A database that cannot be opened at all stops the start with the
    // reason; one that opens but cannot be written (full or read-only disk)
    // does not: the broadcast goes on and the writes wait (ARCHITECTURE.md).
    let store = Store::open(&config.daemon.state_dir)?;
    let restored = Restored {
        schedules: store.schedules()?,
        playlists: store.playlists()?,
        last_fires: store.last_fires()?,
    };
    let loudness = crate::media::loudness::Cache::from_rows(store.loudness()?);
    let saved_keys = store.zone_keys()?;
    let (store, store_thread) = tasks::store::spawn(store, config.daemon.state_dir.clone())?;
    let keys = KeysHandle::start(&config, saved_keys, store.clone(), std::time::SystemTime::now());
    let started = Timestamp::now();
    store.write("mark rows left open by a previous run", move |s| {
        let interrupted = s.close_unfinished(started)?;
        if interrupted > 0 {
            tracing::warn!("{interrupted} history row(s) were left open by a previous run; marked interrupted");
        }
        Ok(())
    });

    // The box may boot before its address is configured (DHCP, a slow
    // network unit): start anyway, without a socket, and let the core ask
    // for one once the address appears. Other socket errors stay fatal.
    let socket = match crate::net::sender_socket(&config.network) {
        Ok(socket) => Some(socket),
        Err(crate::net::NetError::Interface { source, .. }) if crate::net::netwatch::address_missing(&source) => None,
        Err(e) => return Err(e.into()),
    };
    let socket_ok = socket.is_some();
    let zones: Vec<pacer::ZoneSpec> = config
        .zones
        .iter()
        .map(|z| pacer::ZoneSpec::for_zone(&config.network, &config.audio, z, keys.keys(&z.name).as_ref()))
        .collect::<Result<_, _>>()?;
    let zones_facts: Vec<tasks::sessions::ZoneFacts> = zones
        .iter()
        .zip(&config.zones)
        .map(|(z, zone)| tasks::sessions::ZoneFacts {
            ssrc: z.session.ssrc,
            pt: z.session.payload_type,
            channels: config.audio.channels.count() as u8,
            group: zone.group,
        })
        .collect();
    let zone_ssrcs: std::collections::HashMap<String, u32> = zones.iter().map(|z| (z.name.clone(), z.session.ssrc)).collect();
    let (events_tx, _) = tokio::sync::broadcast::channel(256);
    let health = tasks::health::spawn(&config, zone_ssrcs.clone(), store.clone(), events_tx.clone(), keys.clone());
    let (sap, sap_task) = tasks::sap::spawn(&config);
    let mut pacer = pacer::spawn(socket, PacerOptions { frame: config.audio.frame, zones, exit_when_idle: false })?;
    let heartbeat = pacer.heartbeat.clone();

    let (urgent, mut urgent_rx) = mpsc::unbounded_channel();
    let (normal, mut normal_rx) = mpsc::unbounded_channel();
    let lanes = Lanes { urgent, normal };
    // Pacer events arrive on a std channel; one blocking task forwards them.
    let pacer_events = pacer.take_events();
    {
        let lane = lanes.normal.clone();
        tokio::task::spawn_blocking(move || {
            for event in pacer_events {
                if lane.send(ShellMsg::Pacer(event)).is_err() {
                    break;
                }
            }
        });
    }

    // Joined speakers: their sessions, the audit and revocation (the
    // speakers thread), and the listener when `[speakers] listen` is set.
    let sessions = {
        let lane = lanes.normal.clone();
        tasks::sessions::SessionsHandle::new(
            config.speakers.keepalive,
            config.speakers.missed_keepalives,
            Box::new(move |zone, targets| {
                let _ = lane.send(ShellMsg::SpeakerTargets { zone, targets });
            }),
        )
    };
    // Made (or checked) here, before the speakers thread opens it too.
    let identity = match config.speakers.listen {
        Some(_) => match crate::speakers::Identity::load_or_create(&config.daemon.state_dir) {
            Ok(identity) => Some(Arc::new(identity)),
            Err(e) => {
                tracing::error!("no speaker can join: {e}");
                None
            }
        },
        None => None,
    };
    let links = tasks::speakers::Links {
        sessions: sessions.clone(),
        keys: keys.clone(),
        health: config.speakers.listen.map(|_| health.clone()),
    };
    let (speakers, speakers_thread) = tasks::speakers::spawn(config.daemon.state_dir.clone(), links)?;
    if let (Some(listen), Some(identity)) = (config.speakers.listen, identity) {
        let facts = config
            .zones
            .iter()
            .zip(&zones_facts)
            .map(|(zone, facts)| (zone.name.clone(), *facts))
            .collect();
        let parts = tasks::sessions::ListenerParts {
            listen,
            keepalive: config.speakers.keepalive,
            zones: facts,
            keys: keys.clone(),
            speakers: speakers.clone(),
            identity,
            health: health.clone(),
        };
        let socket = tasks::sessions::start(sessions.clone(), parts)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen for speakers on {listen}: {e}")))?;
        let _ = pacer.commands.send(pacer::Command::SetSpeakersSocket(socket));
    }

    let keys_task = {
        let lane = lanes.normal.clone();
        keys.spawn(Box::new(move |zone, keys| {
            let _ = lane.send(ShellMsg::ZoneKeys { zone, keys: Box::new(keys) });
        }))
    };

    let mut options = ServerOptions::new(&config.daemon.socket);
    options.group = config.daemon.socket_group.clone();
    let listener = server::bind(&options).await?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let server_task =
        tokio::spawn(server::serve(listener, options, Arc::new(ShellHandler::new(lanes.clone())), events_tx, shutdown_rx));

    let tts_prune = tokio::spawn(prune_speech_daily(config.daemon.state_dir.join("tts")));

    let core = Core::new(config.clone(), config_path.clone(), restored, socket_ok, shell::now());
    let parts = Parts {
        pacer: pacer.commands.clone(),
        store: store.clone(),
        health,
        sap: sap.clone(),
        speakers,
        loudness,
        network: config.network.clone(),
        config_path: config_path.clone(),
        zone_ssrcs,
        zone_names: config.zones.iter().map(|z| z.name.clone()).collect(),
        keys,
        sessions,
    };
    let mut shell = Shell::new(core, parts, lanes.clone());
    tracing::info!(
        config = %config_path.display(),
        socket = %config.daemon.socket.display(),
        zones = config.zones.len(),
        schedules = config.schedules.len(),
        "loa daemon ready"
    );
    notify::ready();
    let mut watchdog = notify::Watchdog::from_env();

    let mut sighup = signal(SignalKind::hangup())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut last_beat = 0;
    loop {
        // Commands waiting for room in the pacer's queue are tried again
        // every frame or so.
        let retry = shell.pacer_waiting().then(|| std::time::Instant::now() + Duration::from_millis(20));
        let wake = match (shell.poll_timeout(), retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let timer = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // Requests and urgent programs first: an emergency never waits
            // behind a burst of other programs' events.
            biased;
            Some(msg) = urgent_rx.recv() => shell.message(msg),
            _ = timer => {
                shell.flush_pacer();
                shell.timeout();
            }
            Some(msg) = normal_rx.recv() => shell.message(msg),
            _ = sighup.recv() => {
                notify::reloading();
                shell.load_config(None, None);
            }
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = watchdog.tick() => {
                // Alive means the pacer still ticks, not only this task.
                let beat = heartbeat.load(Ordering::Relaxed);
                if beat != last_beat {
                    notify::watchdog();
                    last_beat = beat;
                } else {
                    tracing::error!("the pacer thread has stopped ticking; withholding the watchdog ping");
                }
            }
        }
    }

    tts_prune.abort();
    keys_task.abort();
    tracing::info!("shutting down: stopping programs, sending RTCP BYE");
    notify::stopping();
    // SAP deletions first, so players drop the zones as the RTP stops.
    sap.stop().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), sap_task).await;
    shell.shutdown();
    let _ = shutdown_tx.send(true);
    let stats = tokio::task::spawn_blocking(move || pacer.join()).await.ok();
    let _ = tokio::time::timeout(Duration::from_secs(3), server_task).await;
    drop(shell);
    drop(store);
    drop(lanes);
    // A speakers call in progress (a key being made) finishes first.
    let _ = tokio::time::timeout(Duration::from_secs(5), tokio::task::spawn_blocking(move || speakers_thread.join())).await;
    // Every queued history write finishes before exit.
    let flushed = tokio::time::timeout(Duration::from_secs(10), tokio::task::spawn_blocking(move || store_thread.join())).await;
    if flushed.is_err() {
        tracing::error!("history writes did not finish within 10 s; the last rows may be missing");
    }
    if let Some(stats) = stats {
        tracing::info!(
            packets = stats.packets,
            underruns = stats.underruns,
            p99_ms = stats.lateness_quantile(0.99).as_secs_f64() * 1e3,
            max_ms = stats.max_lateness.as_secs_f64() * 1e3,
            // Stalls are outside the lateness figures (their ticks were
            // skipped, not sent late), so they are reported beside them.
            stalls = stats.stalls,
            skipped_ticks = stats.skipped_ticks,
            longest_stall_ms = stats.longest_stall.as_millis() as u64,
            "pacer stopped"
        );
    }
    Ok(())
}
