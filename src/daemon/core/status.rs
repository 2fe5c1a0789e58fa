//! `loa status`, built from the core's state and what the shell's snapshot
//! adds (speaker health, history writes, SAP).

use std::collections::BTreeMap;

use super::io::Snapshot;
use super::state::{Phase, Program};
use super::Core;
use crate::proto::status::{ItemStatus, NetState, NetworkStatus, NextFire, ProgramState, ProgramStatus, SapStatus, Status, ZoneStatus};
use crate::proto::text::local_time;
use crate::proto::EndpointCounts;

impl Core {
    pub(super) fn status(&self, snapshot: Snapshot) -> Status {
        let tz = self.time_zone();
        let mut counts: BTreeMap<&str, EndpointCounts> = BTreeMap::new();
        for e in &snapshot.endpoints {
            counts.entry(e.zone.as_str()).or_default().add(e.state);
        }
        let zones = self
            .live_zones()
            .into_iter()
            .map(|zone| {
                let name = self.zone_name(zone).to_string();
                let owner = self.arbiter.owner(zone);
                ZoneStatus {
                    packets_not_sent: self.net.not_sent(zone.index()),
                    group: self.config.zone(&name).map(|c| c.group.to_string()),
                    program: owner,
                    priority: owner.and_then(|id| self.programs.get(&id)).map(|p| p.priority),
                    endpoints: counts.get(name.as_str()).copied().unwrap_or_default(),
                    security: match self.config.zone(&name).map(|c| c.security) {
                        Some(crate::config::ZoneSecurity::None) => crate::proto::status::ZoneSecurity::None,
                        _ => crate::proto::status::ZoneSecurity::Srtp,
                    },
                    stalls: self.zones[zone.index()].stalls.stalls,
                    skipped_ms: self.zones[zone.index()].stalls.skipped.as_millis() as u64,
                    name,
                }
            })
            .collect();
        let next = self
            .scheduler
            .upcoming(self.now.wall, 3)
            .into_iter()
            .map(|(name, at)| NextFire {
                zones: self.schedules.get(&name).map(|d| self.selection_names(&d.spec.zones)).unwrap_or_default(),
                schedule: name,
                at: local_time(at, tz),
            })
            .collect();
        let net = self.net.status(self.now.mono);
        let network = NetworkStatus {
            interface: net.interface.to_string(),
            state: if net.error.is_some() { NetState::Error } else { NetState::Ok },
            error: net.error,
            since: self.net_down_at.map(|t| local_time(t, tz)),
            down_secs: net.down_for.map(|d| (d.as_secs_f64() * 10.0).round() / 10.0),
            packets_not_sent: net.not_sent,
            packets_not_sent_total: net.not_sent_total,
        };
        Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            config: self.config_path.display().to_string(),
            timezone: self.config.daemon.timezone.clone(),
            started_at: local_time(self.started_at, tz),
            uptime_secs: self.now.mono.saturating_duration_since(self.started).as_secs(),
            zones,
            programs: self.programs.values().map(|p| self.program_status(p)).collect(),
            next,
            network,
            history: snapshot.history,
            sap: SapStatus {
                enabled: snapshot.sap.enabled,
                address: snapshot.sap.address,
                last_sent: snapshot.sap.last_sent.map(|t| local_time(t, tz)),
                error: snapshot.sap.error,
            },
            pacer: self.stalls.status(),
        }
    }

    fn program_status(&self, p: &Program) -> ProgramStatus {
        let playing = self.arbiter.zones_of(p.id);
        let state = match p.phase {
            Phase::Resolving | Phase::Preparing | Phase::Prepared => ProgramState::Starting,
            Phase::Admitted if !playing.is_empty() && p.in_pacer => ProgramState::Playing,
            // A branch played before it was cut.
            Phase::Admitted if p.current.is_some() || p.branch_of.is_some() => ProgramState::Paused,
            Phase::Admitted => ProgramState::Waiting,
        };
        let item = p.current.as_ref().map(|c| {
            let info = p.info.get(&c.index);
            ItemStatus {
                index: c.index % p.items.len().max(1),
                count: p.items.len(),
                file: info.map(|i| i.path.display().to_string()),
                position_secs: c.position.as_secs_f64(),
                duration_secs: info.and_then(|i| i.duration).map(|d| d.as_secs_f64()),
                sha256: info.and_then(|i| i.sha256.clone()),
                gain_db: info.and_then(|i| i.gain_db).map(|g| (g * 10.0).round() / 10.0),
            }
        });
        ProgramStatus {
            id: p.id,
            name: p.name.clone(),
            priority: p.priority,
            origin: p.origin.text(),
            state,
            zones: self.names(&p.zones),
            playing_on: self.names(&playing),
            looped: p.looped,
            item,
            created: p.created.to_string(),
            on_air_since: p.first_packet.map(|t| t.to_string()),
        }
    }
}
