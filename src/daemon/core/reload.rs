//! Reload: a new, valid config applied without cutting programs on the
//! zones it keeps; an invalid one refused with its errors.

use super::io::{Effect, HealthCmd, PacerCmd, RequestId};
use super::state::ZoneSlot;
use super::Core;
use crate::config::{Config, ConfigErrors};
use crate::daemon::server::Caller;
use crate::proto::reload::Reloaded;
use crate::proto::{Response, RpcError};

impl Core {
    /// A reload: applied if the new file is valid, else refused with its
    /// errors and the old config stays.
    pub(super) fn config_loaded(&mut self, request: Option<RequestId>, caller: Option<Caller>, result: Result<Config, ConfigErrors>) {
        let path = self.config_path.display().to_string();
        match result {
            Ok(new) => {
                let summary = self.reload(new);
                tracing::info!(
                    uid = caller.map(|c| c.uid),
                    "config reloaded from {path}: {} zone(s) added, {} removed, {} schedule(s); {}",
                    summary.zones_added.len(),
                    summary.zones_removed.len(),
                    summary.schedules,
                    summary.notes.join("; ")
                );
                if let Some(id) = request {
                    self.reply(id, Ok(Response::Reload(summary)));
                }
            }
            Err(errors) => {
                let lines: Vec<String> = errors.0.iter().map(|e| e.to_string()).collect();
                tracing::error!("config reload refused, the old config stays:\n{}", lines.join("\n"));
                if let Some(id) = request {
                    let mut e = RpcError::refused(format!(
                        "the new config is not valid; the old one stays in effect:\n{}",
                        lines.join("\n")
                    ));
                    // The wire's error data: the lines one by one, for scripts.
                    e.data = Some(serde_json::json!({ "errors": lines }));
                    self.reply(id, Err(e));
                }
            }
        }
    }

    /// Reload keeps every zone whose group and unicast targets are
    /// unchanged (programs on it are not touched); a removed or moved zone
    /// is retired (BYE) and a moved one returns as a new zone.
    fn reload(&mut self, new: Config) -> Reloaded {
        let mut added = Vec::new();
        let mut removed = Vec::new();
        let mut notes = Vec::new();
        for zone in self.live_zones() {
            let name = self.zone_name(zone).to_string();
            let keep = match (self.config.zone(&name), new.zone(&name)) {
                (Some(old), Some(new_zone)) => old.group == new_zone.group && old.unicast == new_zone.unicast,
                _ => false,
            };
            if !keep {
                self.zones[zone.index()].retired = true;
                for program in self.programs.values_mut() {
                    program.zones.retain(|&z| z != zone);
                    program.parked.retain(|&(z, _)| z != zone);
                }
                let changes = self.arbiter.retire_zone(zone);
                self.apply(changes);
                self.emit(Effect::Pacer(PacerCmd::RetireZone { zone }));
                removed.push(name);
            }
        }
        for zone in &new.zones {
            if self.zone_id(&zone.name).is_none() {
                let id = self.arbiter.add_zone();
                debug_assert_eq!(id.index(), self.zones.len());
                self.zones.push(ZoneSlot { name: zone.name.clone(), retired: false, stalls: Default::default() });
                self.emit(Effect::AddZone {
                    zone: id,
                    config: zone.clone(),
                    // [network] changes wait for a restart: new zones are
                    // sent as the old ones are.
                    network: self.config.network.clone(),
                    audio: new.audio.clone(),
                });
                added.push(zone.name.clone());
            }
        }
        if new.network != self.config.network {
            notes.push("[network] changes take effect when the daemon restarts".to_string());
        }
        if new.audio != self.config.audio {
            notes.push("[audio] changes apply to programs started from now on".to_string());
        }
        if new.daemon.socket != self.config.daemon.socket || new.daemon.state_dir != self.config.daemon.state_dir {
            notes.push("socket and state_dir changes take effect when the daemon restarts".to_string());
        }
        self.reload_schedules(&new.schedules);
        self.emit(Effect::Health(HealthCmd::Reconfigure(Box::new(new.clone()))));
        self.emit(Effect::Sap(Box::new(new.clone())));
        // [network] stays as the sockets were built.
        let network = self.config.network.clone();
        self.config = new;
        self.config.network = network;
        Reloaded { zones_added: added, zones_removed: removed, schedules: self.schedules.len(), notes }
    }
}
