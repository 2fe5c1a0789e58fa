//! The control socket's methods: params in, engine calls, JSON out. Params
//! are checked here with messages that say what would be valid; the engine
//! only sees resolved zones and paths.

use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{json, Value};

use super::engine::{answer_when_on_air, Engine, Origin, PlaylistListing, Reply, StartSpec};
use crate::broadcast::arbiter::{OnBusy, OnPreempt};
use crate::broadcast::playlist;
use crate::proto::Priority;
use crate::config::{Config, Schedule, ScheduleTarget, ZoneSelection, DEFAULT_MISFIRE_GRACE};
use crate::proto::rpc::RpcError;
use crate::daemon::server::Caller;
use crate::schedule::CronExpr;
use crate::store::{HistoryQuery, PlaylistRecord, ScheduleRecord};

/// `"all"` or a list of zone names.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Zones {
    Word(String),
    Names(Vec<String>),
}

impl Zones {
    fn selection(self) -> Result<ZoneSelection, RpcError> {
        match self {
            Zones::Word(w) if w == "all" => Ok(ZoneSelection::All),
            Zones::Word(w) => Ok(ZoneSelection::Named(w.split(',').map(|s| s.trim().to_string()).collect())),
            Zones::Names(n) => Ok(ZoneSelection::Named(n)),
        }
    }
}

fn params<T: serde::de::DeserializeOwned>(method: &str, value: Value) -> Result<T, RpcError> {
    let value = if value.is_null() { json!({}) } else { value };
    serde_json::from_value(value).map_err(|e| RpcError::invalid_params(format!("{method}: {e}")))
}

fn priority(text: Option<String>, default: Priority) -> Result<Priority, RpcError> {
    match text {
        None => Ok(default),
        Some(t) => t.parse().map_err(|e: crate::proto::priority::UnknownPriority| RpcError::invalid_params(e)),
    }
}

fn duration(key: &str, text: Option<String>) -> Result<Option<Duration>, RpcError> {
    text.map(|t| {
        crate::config::parse_duration(&t)
            .ok_or_else(|| RpcError::invalid_params(format!("{key} \"{t}\" is not a duration; write e.g. \"90s\", \"30m\" or \"1h30m\"")))
    })
    .transpose()
}

fn send(reply: Reply, result: Result<Value, RpcError>) {
    let _ = reply.send(result);
}

/// Handles one call; the reply is sent now or later (a starting program
/// answers once it is on air).
pub fn handle(engine: &mut Engine, caller: Caller, method: &str, params: Value, reply: Reply) {
    let result = match method {
        "status" => {
            // Speaker counts per zone come from the health task.
            let mut status = engine.status();
            let health = engine.health.clone();
            tokio::spawn(async move {
                let counts = super::tasks::health::zone_counts(&health.snapshot().await);
                if let Some(zones) = status["zones"].as_array_mut() {
                    for zone in zones {
                        let name = zone["name"].as_str().unwrap_or("").to_string();
                        zone["endpoints"] = counts.get(&name).cloned().unwrap_or_else(|| json!({}));
                    }
                }
                let _ = reply.send(Ok(status));
            });
            return;
        }
        "broadcast.start" => return start(engine, caller, params, reply),
        "broadcast.stop" => stop(engine, caller, params),
        "schedule.list" => Ok(json!({ "schedules": engine.schedules_json() })),
        "schedule.add" => return schedule_add(engine, caller, params, reply),
        "schedule.remove" => return schedule_remove(engine, caller, params, reply),
        "schedule.enable" => return schedule_toggle(engine, caller, params, true, reply),
        "schedule.disable" => return schedule_toggle(engine, caller, params, false, reply),
        "playlist.list" => return playlist_list(engine, reply),
        "playlist.load" => return playlist_load(engine, caller, params, reply),
        "config.reload" => reload(engine, Some(caller)),
        "history" => return history(engine, params, reply),
        "endpoints.list" | "endpoints.subscribe" => return endpoints(engine, params, reply),
        other => Err(RpcError::method_not_found(other)),
    };
    send(reply, result);
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointParams {
    zone: Option<String>,
}

/// Every speaker's health (optionally one zone's). For `endpoints.subscribe`
/// the server then pushes `endpoints.changed` notifications.
fn endpoints(engine: &mut Engine, params: Value, reply: Reply) {
    let p: EndpointParams = match self::params("endpoints.list", params) {
        Ok(p) => p,
        Err(e) => return send(reply, Err(e)),
    };
    if let Some(zone) = &p.zone {
        if let Err(e) = engine.select_zones(&ZoneSelection::Named(vec![zone.clone()])) {
            return send(reply, Err(e));
        }
    }
    let health = engine.health.clone();
    tokio::spawn(async move {
        let rows: Vec<Value> = health
            .snapshot()
            .await
            .into_iter()
            .filter(|r| p.zone.as_deref().is_none_or(|z| r["zone"] == z))
            .collect();
        let _ = reply.send(Ok(json!({ "endpoints": rows })));
    });
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartParams {
    #[serde(default)]
    files: Vec<String>,
    playlist: Option<String>,
    /// Text to speak (espeak-ng) instead of files or a playlist.
    say: Option<String>,
    voice: Option<String>,
    zones: Zones,
    priority: Option<String>,
    name: Option<String>,
    #[serde(default, rename = "loop")]
    looped: bool,
    on_busy: Option<String>,
    max_duration: Option<String>,
}

/// What `broadcast.start` asked for: items to play, or text to speak.
enum Start {
    Play(StartSpec),
    Say { spec: StartSpec, text: String, voice: Option<String> },
}

fn start(engine: &mut Engine, caller: Caller, params: Value, reply: Reply) {
    let result = (|| {
        let p: StartParams = self::params("broadcast.start", params)?;
        let zones = engine.select_zones(&p.zones.selection()?)?;
        // Ad-hoc broadcasts are announcements unless said otherwise: they
        // take the zones from the schedule, not from live or emergency.
        let priority = priority(p.priority, Priority::Announcement)?;
        let on_busy = match p.on_busy.as_deref() {
            None => OnBusy::Wait,
            Some(w) => w.parse::<OnBusy>().ok().ok_or_else(|| RpcError::invalid_params(format!("on_busy \"{w}\": expected \"wait\" or \"refuse\"")))?,
        };
        let max_duration = duration("max_duration", p.max_duration)?;
        let origin = Origin::Caller(caller);
        if p.voice.is_some() && p.say.is_none() {
            return Err(RpcError::invalid_params("voice is only for say"));
        }
        if let Some(text) = &p.say {
            if !p.files.is_empty() || p.playlist.is_some() {
                return Err(RpcError::invalid_params("give files, a playlist or text to say, only one"));
            }
            let spec = StartSpec {
                name: p.name.unwrap_or_else(|| "say".into()),
                items: Vec::new(),
                zones,
                priority,
                origin,
                looped: p.looped,
                on_busy,
                on_preempt: OnPreempt::Pause,
                max_duration,
                start_at: None,
                labels: Default::default(),
                live: None,
            };
            tracing::info!(uid = caller.uid, pid = caller.pid, priority = %priority, "broadcast.start {}: say {} chars", spec.name, text.chars().count());
            return Ok(Start::Say { spec, text: text.clone(), voice: p.voice });
        }
        let (items, looped, name) = match (p.files.is_empty(), p.playlist) {
            (false, None) => {
                let items = p.files.iter().map(|f| engine.socket_path(f)).collect::<Result<Vec<_>, _>>()?;
                (items, p.looped, p.name.unwrap_or_else(|| "play".into()))
            }
            (true, Some(name)) => {
                let (items, looped) = engine.target_items(&ScheduleTarget::Playlist(name.clone()), priority, &origin, &zones, true)?;
                (items, looped || p.looped, p.name.unwrap_or(name))
            }
            _ => return Err(RpcError::invalid_params("give files or a playlist, not both and not neither")),
        };
        tracing::info!(uid = caller.uid, pid = caller.pid, priority = %priority, "broadcast.start {name}: {} item(s)", items.len());
        Ok(Start::Play(StartSpec {
            name,
            items,
            zones,
            priority,
            origin,
            looped,
            on_busy,
            on_preempt: OnPreempt::Pause,
            max_duration,
            start_at: None,
            labels: Default::default(),
                live: None,
        }))
    })();
    match result {
        Ok(what) => answer_when_on_air(Some(reply), |tx| match what {
            Start::Play(spec) => engine.start(spec, Some(tx)),
            Start::Say { spec, text, voice } => engine.say(spec, &text, voice.as_deref(), Some(tx)),
        }),
        Err(e) => send(reply, Err(e)),
    }
}

/// What `live.start` asks for; the PCM follows on the same connection.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LiveParams {
    zones: Zones,
    priority: Option<String>,
    name: Option<String>,
    max_duration: Option<String>,
    /// What feeds the client: "stdin" or "device NAME" (for history).
    source: Option<String>,
    /// PCM sample format, rate and channel count of the stream.
    format: crate::media::PcmEncoding,
    rate: u32,
    channels: u16,
}

/// Starts a live program fed by `input` (the client's connection). It is
/// answered once on air (or waiting for its zones), like `broadcast.start`;
/// the client hears `live.on_air` when its input starts to play (after any
/// chime) and `live.ended` when the program ends.
pub fn live_start(
    engine: &mut Engine,
    caller: Caller,
    params: Value,
    input: std::os::unix::net::UnixStream,
    leftover: Vec<u8>,
    reply: Reply,
) {
    let result = (|| {
        let p: LiveParams = self::params("live.start", params)?;
        let format = crate::media::PcmFormat { encoding: p.format, rate: p.rate, channels: p.channels };
        format.check().map_err(RpcError::invalid_params)?;
        let zones = engine.select_zones(&p.zones.selection()?)?;
        let priority = priority(p.priority, Priority::Live)?;
        if priority < Priority::Live {
            return Err(RpcError::invalid_params(format!(
                "live input goes on air as live or emergency, not {priority}; use loa play for recorded {priority} broadcasts"
            )));
        }
        let max_duration = duration("max_duration", p.max_duration)?;
        // The source text goes into history: printable, short.
        let source: String = p
            .source
            .unwrap_or_else(|| "stdin".into())
            .chars()
            .filter(|c| !c.is_control())
            .take(80)
            .collect();
        let label = format!("live:{source} {format}");
        let name = p.name.unwrap_or_else(|| "live".into());
        tracing::info!(uid = caller.uid, pid = caller.pid, priority = %priority, "live.start {name}: {label}");
        let item = crate::live::live_item();
        Ok(StartSpec {
            name,
            items: vec![item.clone()],
            zones,
            priority,
            origin: Origin::Caller(caller),
            looped: false,
            on_busy: OnBusy::Wait,
            on_preempt: OnPreempt::Pause,
            max_duration,
            start_at: None,
            labels: [(item, label)].into_iter().collect(),
            live: Some(crate::live::LiveInput { stream: input, leftover, format }),
        })
    })();
    match result {
        Ok(spec) => answer_when_on_air(Some(reply), |tx| engine.start(spec, Some(tx))),
        Err(e) => send(reply, Err(e)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StopParams {
    id: Option<u64>,
    zone: Option<String>,
    #[serde(default)]
    all: bool,
}

fn stop(engine: &mut Engine, caller: Caller, params: Value) -> Result<Value, RpcError> {
    let p: StopParams = self::params("broadcast.stop", params)?;
    let ids = match (p.id, p.zone, p.all) {
        (Some(id), None, false) => {
            if !engine.has_program(id) {
                return Err(RpcError::refused(format!("no program #{id} is playing or waiting; see `loa status`")));
            }
            vec![id]
        }
        (None, Some(zone), false) => engine.programs_on_zone(&zone)?,
        (None, None, true) => engine.program_ids(),
        _ => return Err(RpcError::invalid_params("give one of id, zone or all")),
    };
    let stopped = engine.stop(ids, format!("stopped by uid {}", caller.uid));
    tracing::info!(uid = caller.uid, pid = caller.pid, "broadcast.stop: {stopped:?}");
    Ok(json!({ "stopped": stopped }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleParams {
    name: String,
    cron: String,
    playlist: Option<String>,
    file: Option<String>,
    /// Text to speak (espeak-ng) instead of a playlist or file.
    say: Option<String>,
    /// The voice for `say` (default: `[tts] voice`).
    voice: Option<String>,
    zones: Zones,
    priority: Option<String>,
    max_duration: Option<String>,
    misfire_grace: Option<String>,
    on_preempt: Option<String>,
    on_busy: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

fn schedule_add(engine: &mut Engine, caller: Caller, params: Value, reply: Reply) {
    let result = (|| {
        let p: ScheduleParams = self::params("schedule.add", params)?;
        if !crate::config::name_ok(&p.name) {
            return Err(RpcError::invalid_params(format!(
                "schedule name \"{}\" may only use letters A–Z, a–z, digits 0–9, '-' and '_'",
                p.name
            )));
        }
        if let Some(existing) = engine.schedule_def(&p.name) {
            return Err(RpcError::refused(if existing.runtime {
                format!("schedule \"{}\" exists; remove it first", p.name)
            } else {
                format!("schedule \"{}\" is defined in {}; change it there and reload", p.name, engine.config_path.display())
            }));
        }
        let cron = CronExpr::parse(&p.cron).map_err(RpcError::invalid_params)?;
        let zones = p.zones.selection()?;
        engine.select_zones(&zones)?;
        if p.voice.is_some() && p.say.is_none() {
            return Err(RpcError::invalid_params("a voice is only for a schedule that says text (--say)"));
        }
        let target = match (p.playlist, p.file, p.say) {
            (None, None, Some(text)) => {
                // Checked as `loa say` checks it, so a schedule that could
                // never speak is refused before it is stored.
                crate::media::tts::check_text(&text).map_err(|e| RpcError::invalid_params(e.to_string()))?;
                if let Some(voice) = &p.voice {
                    if !crate::media::tts::voice_ok(voice) {
                        return Err(RpcError::invalid_params(crate::proto::say::SayError::BadVoice(voice.clone()).to_string()));
                    }
                }
                ScheduleTarget::Say { text, voice: p.voice }
            }
            (Some(pl), None, None) => {
                if !engine.playlist_names().contains(&pl) {
                    return Err(RpcError::refused(format!(
                        "unknown playlist \"{pl}\"; playlists: {}",
                        engine.playlist_names().join(", ")
                    )));
                }
                ScheduleTarget::Playlist(pl)
            }
            (None, Some(f), None) => ScheduleTarget::File(engine.socket_path(&f)?),
            _ => return Err(RpcError::invalid_params("give one of a playlist, a file or text to say")),
        };
        let on_preempt = match p.on_preempt.as_deref() {
            None => OnPreempt::Pause,
            Some(v) => v.parse::<OnPreempt>().ok().ok_or_else(|| RpcError::invalid_params(format!("on_preempt \"{v}\": expected \"pause\", \"drop\" or \"rejoin\"")))?,
        };
        let on_busy = match p.on_busy.as_deref() {
            None => OnBusy::Wait,
            Some(v) => v.parse::<OnBusy>().ok().ok_or_else(|| RpcError::invalid_params(format!("on_busy \"{v}\": expected \"wait\" or \"refuse\"")))?,
        };
        Ok(Schedule {
            name: p.name,
            cron,
            target,
            zones,
            priority: priority(p.priority, Priority::Scheduled)?,
            max_duration: duration("max_duration", p.max_duration)?,
            misfire_grace: duration("misfire_grace", p.misfire_grace)?.unwrap_or(DEFAULT_MISFIRE_GRACE),
            enabled: p.enabled,
            on_preempt,
            on_busy,
        })
    })();
    let spec = match result {
        Ok(spec) => spec,
        Err(e) => return send(reply, Err(e)),
    };
    let record = ScheduleRecord {
        name: spec.name.clone(),
        cron: spec.cron.as_str().to_string(),
        playlist: match &spec.target {
            ScheduleTarget::Playlist(p) => Some(p.clone()),
            _ => None,
        },
        file: match &spec.target {
            ScheduleTarget::File(f) => Some(f.display().to_string()),
            _ => None,
        },
        say: match &spec.target {
            ScheduleTarget::Say { text, .. } => Some(text.clone()),
            _ => None,
        },
        voice: match &spec.target {
            ScheduleTarget::Say { voice, .. } => voice.clone(),
            _ => None,
        },
        zones: match &spec.zones {
            ZoneSelection::All => vec!["all".into()],
            ZoneSelection::Named(n) => n.clone(),
        },
        priority: spec.priority,
        max_duration_secs: spec.max_duration.map(|d| d.as_secs()),
        misfire_grace_secs: spec.misfire_grace.as_secs(),
        enabled: spec.enabled,
        on_preempt: spec.on_preempt.as_str().into(),
        on_busy: spec.on_busy.as_str().into(),
        created_by: Some(caller.uid),
    };
    let name = spec.name.clone();
    tracing::info!(uid = caller.uid, pid = caller.pid, "schedule.add {name} \"{}\"", spec.cron.as_str());
    engine.add_runtime_schedule(spec);
    let listing = engine.schedules_json().into_iter().find(|s| s["name"] == name.as_str());
    let store = engine.store.clone();
    tokio::spawn(async move {
        let result = match store.call(move |s| s.save_schedule(&record)).await {
            Ok(()) => Ok(json!({ "schedule": listing })),
            Err(e) => Err(RpcError::internal(format!("schedule \"{name}\" is active but was not saved, so it will be gone after a restart: {e}"))),
        };
        let _ = reply.send(result);
    });
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameParams {
    name: String,
}

fn runtime_only(engine: &Engine, name: &str, action: &str) -> Result<(), RpcError> {
    match engine.schedule_def(name) {
        None => Err(RpcError::refused(format!("no schedule \"{name}\"; see `loa schedule list`"))),
        Some(d) if !d.runtime => Err(RpcError::refused(format!(
            "schedule \"{name}\" is defined in {}; {action} it there and reload",
            engine.config_path.display()
        ))),
        Some(_) => Ok(()),
    }
}

fn schedule_remove(engine: &mut Engine, caller: Caller, params: Value, reply: Reply) {
    let name = match self::params::<NameParams>("schedule.remove", params) {
        Ok(p) => p.name,
        Err(e) => return send(reply, Err(e)),
    };
    if let Err(e) = runtime_only(engine, &name, "remove") {
        return send(reply, Err(e));
    }
    engine.remove_schedule(&name);
    tracing::info!(uid = caller.uid, pid = caller.pid, "schedule.remove {name}");
    let store = engine.store.clone();
    tokio::spawn(async move {
        let n = name.clone();
        let result = store
            .call(move |s| s.delete_schedule(&n))
            .await
            .map(|_| json!({ "removed": name }))
            .map_err(|e| RpcError::internal(format!("removed now, but the removal was not saved: {e}")));
        let _ = reply.send(result);
    });
}

fn schedule_toggle(engine: &mut Engine, caller: Caller, params: Value, enabled: bool, reply: Reply) {
    let name = match self::params::<NameParams>("schedule.enable", params) {
        Ok(p) => p.name,
        Err(e) => return send(reply, Err(e)),
    };
    let Some(def) = engine.schedule_def(&name) else {
        return send(reply, Err(RpcError::refused(format!("no schedule \"{name}\"; see `loa schedule list`"))));
    };
    let runtime = def.runtime;
    engine.set_schedule_enabled(&name, enabled);
    tracing::info!(uid = caller.uid, pid = caller.pid, enabled, "schedule toggled: {name}");
    let listing = engine.schedules_json().into_iter().find(|s| s["name"] == name.as_str());
    if !runtime {
        // Config schedules: the file stays the source of truth.
        engine.runtime_toggles.insert(name.clone(), enabled);
        return send(
            reply,
            Ok(json!({
                "schedule": listing,
                "note": format!("until the next reload or restart; set enabled = {enabled} in {} to keep it", engine.config_path.display()),
            })),
        );
    }
    let store = engine.store.clone();
    tokio::spawn(async move {
        let result = store
            .call(move |s| s.set_schedule_enabled(&name, enabled))
            .await
            .map(|_| json!({ "schedule": listing }))
            .map_err(|e| RpcError::internal(format!("changed now, but not saved: {e}")));
        let _ = reply.send(result);
    });
}

fn playlist_list(engine: &mut Engine, reply: Reply) {
    let listing = engine.playlists_for_listing();
    // Durations come from opening every file: off the engine task.
    tokio::task::spawn_blocking(move || {
        let playlists: Vec<Value> = listing
            .into_iter()
            .map(|p| {
                let PlaylistListing { name, origin, source, items, shuffle, looped, error } = p;
                let entries: Vec<playlist::Entry> = items
                    .iter()
                    .map(|p| playlist::Entry { path: p.clone(), title: None, duration: None })
                    .collect();
                let (total, unknown) = playlist::total_duration(&entries);
                json!({
                    "name": name,
                    "origin": origin,
                    "source": source,
                    "items": items.len(),
                    "duration_secs": total.as_secs_f64(),
                    "unknown_durations": unknown,
                    "shuffle": shuffle,
                    "loop": looped,
                    "error": error,
                })
            })
            .collect();
        let _ = reply.send(Ok(json!({ "playlists": playlists })));
    });
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadParams {
    name: String,
    file: String,
}

fn playlist_load(engine: &mut Engine, caller: Caller, params: Value, reply: Reply) {
    let result = (|| {
        let p: LoadParams = self::params("playlist.load", params)?;
        if !crate::config::name_ok(&p.name) {
            return Err(RpcError::invalid_params(format!(
                "playlist name \"{}\" may only use letters A–Z, a–z, digits 0–9, '-' and '_'",
                p.name
            )));
        }
        if engine.config.playlist(&p.name).is_some() {
            return Err(RpcError::refused(format!(
                "playlist \"{}\" is defined in {}; choose another name",
                p.name,
                engine.config_path.display()
            )));
        }
        let file = engine.socket_path(&p.file)?;
        let entries = playlist::load(&file).map_err(RpcError::refused)?;
        let mut items = Vec::new();
        let mut missing = Vec::new();
        let mut outside = Vec::new();
        for entry in entries {
            match engine.socket_path(&entry.path.to_string_lossy()) {
                Ok(path) => items.push(path),
                Err(e) if entry.path.exists() => outside.push(e.message),
                Err(_) => {
                    missing.push(entry.path.display().to_string());
                    items.push(entry.path);
                }
            }
        }
        if !outside.is_empty() {
            return Err(RpcError::refused(format!(
                "playlist {} refused: {}",
                file.display(),
                outside.join("; ")
            )));
        }
        if items.is_empty() {
            return Err(RpcError::refused(format!("playlist {} has no items", file.display())));
        }
        Ok((p.name, file, items, missing))
    })();
    let (name, file, items, missing) = match result {
        Ok(r) => r,
        Err(e) => return send(reply, Err(e)),
    };
    let record = PlaylistRecord {
        name: name.clone(),
        source: file.display().to_string(),
        items: items.clone(),
        loaded_by: Some(caller.uid),
        loaded_at: Timestamp::now(),
    };
    tracing::info!(uid = caller.uid, pid = caller.pid, "playlist.load {name} from {} ({} items)", file.display(), items.len());
    engine.set_runtime_playlist(record.clone());
    let store = engine.store.clone();
    tokio::spawn(async move {
        let result = store
            .call(move |s| s.save_playlist(&record))
            .await
            .map(|_| json!({ "name": name, "items": items.len(), "missing": missing }))
            .map_err(|e| RpcError::internal(format!("loaded now, but not saved: {e}")));
        let _ = reply.send(result);
    });
}

/// Re-reads the config file; `caller` is None for SIGHUP.
pub fn reload(engine: &mut Engine, caller: Option<Caller>) -> Result<Value, RpcError> {
    let path = engine.config_path.clone();
    match Config::load(&path) {
        Ok(new) => {
            let summary = engine.reload(new, |config, zone| {
                config.zone(zone).map(|z| crate::pacer::ZoneSpec::for_zone(&config.network, &config.audio, z))
            });
            tracing::info!(uid = caller.map(|c| c.uid), "config reloaded from {}: {summary}", path.display());
            Ok(summary)
        }
        Err(errors) => {
            let lines: Vec<String> = errors.0.iter().map(|e| e.to_string()).collect();
            tracing::error!("config reload refused, the old config stays:\n{}", lines.join("\n"));
            Err(RpcError {
                code: RpcError::REFUSED,
                message: format!("the new config is not valid; the old one stays in effect:\n{}", lines.join("\n")),
                data: Some(json!({ "errors": lines })),
            })
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryParams {
    since: Option<String>,
    limit: Option<usize>,
}

/// `2026-11-27` (local midnight), `2026-11-27 06:00`, an RFC 3339 instant,
/// or an age such as `2h` / `3d`.
fn parse_since(text: &str, tz: &jiff::tz::TimeZone) -> Option<Timestamp> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Some(t);
    }
    if let Ok(dt) = text.replace(' ', "T").parse::<jiff::civil::DateTime>() {
        return dt.to_zoned_datetime(tz.clone()).ok().map(|z| z.timestamp());
    }
    if let Ok(d) = text.parse::<jiff::civil::Date>() {
        return d.to_zoned_datetime(tz.clone()).ok().map(|z| z.timestamp());
    }
    let text = text.trim();
    if let Some(days) = text.strip_suffix('d').and_then(|n| n.parse::<i64>().ok()) {
        return Some(Timestamp::now() - jiff::SignedDuration::from_hours(24 * days));
    }
    let age = crate::config::parse_duration(text)?;
    Some(Timestamp::now() - jiff::SignedDuration::try_from(age).ok()?)
}

fn history(engine: &mut Engine, params: Value, reply: Reply) {
    let p: HistoryParams = match self::params("history", params) {
        Ok(p) => p,
        Err(e) => return send(reply, Err(e)),
    };
    let since = match p.since.as_deref().map(|s| (s, parse_since(s, engine.time_zone()))) {
        None => None,
        Some((_, Some(t))) => Some(t),
        Some((s, None)) => {
            return send(
                reply,
                Err(RpcError::invalid_params(format!(
                    "since \"{s}\" is not a date; write e.g. 2026-11-27, \"2026-11-27 06:00\" or 2h"
                ))),
            )
        }
    };
    let store = engine.store.clone();
    let tz = engine.time_zone().clone();
    tokio::spawn(async move {
        let query = HistoryQuery { since, limit: p.limit.or(Some(1000)) };
        let result = store
            .call(move |s| s.history(&query))
            .await
            .map(|rows| json!({ "timezone": tz.iana_name(), "rows": rows }))
            .map_err(|e| RpcError::internal(format!("cannot read the history: {e}")));
        let _ = reply.send(result);
    });
}
