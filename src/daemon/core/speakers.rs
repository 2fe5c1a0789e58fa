//! `speakers.add` and `speakers.revoke`, checked against the
//! configuration (a listen address, known zones) before the speakers
//! thread makes keys or touches the store.

use super::io::{Effect, RequestId, SpeakersCall};
use super::Core;
use crate::config::ZoneSecurity;
use crate::daemon::server::Caller;
use crate::proto::speakers::{SpeakersAddParams, SpeakersRevokeParams};
use crate::proto::RpcError;

impl Core {
    pub(super) fn speakers_add(&mut self, id: RequestId, caller: Caller, p: SpeakersAddParams) {
        let call = (|| {
            crate::speakers::check_name(&p.name).map_err(RpcError::invalid_params)?;
            let Some(listen) = self.config.speakers.listen else {
                return Err(RpcError::refused(format!(
                    "this daemon takes no speaker joins; add [speakers] listen = \"ADDR:PORT\" to {} and reload",
                    self.config_path.display()
                )));
            };
            if p.zones.is_empty() {
                return Err(RpcError::invalid_params("a speaker needs at least one zone (--zones Z1,Z2)"));
            }
            let mut zones: Vec<String> = Vec::with_capacity(p.zones.len());
            for zone in p.zones {
                self.zone_named(&zone)?;
                // A joined speaker plays only what verifies: a plain-RTP
                // zone would be granted nothing, silently.
                if self.config.zones.iter().any(|z| z.name == zone && z.security == ZoneSecurity::None) {
                    return Err(RpcError::refused(format!(
                        "zone \"{zone}\" is plain RTP (security = \"none\"); joined speakers play only SRTP zones: enrol this speaker in SRTP zones, or make {zone} an SRTP zone"
                    )));
                }
                if !zones.contains(&zone) {
                    zones.push(zone);
                }
            }
            Ok(SpeakersCall::Add { by: caller.uid, name: p.name, zones, listen })
        })();
        match call {
            Ok(call) => self.emit(Effect::Speakers { request: id, call }),
            Err(e) => self.reply(id, Err(e)),
        }
    }

    pub(super) fn speakers_revoke(&mut self, id: RequestId, caller: Caller, p: SpeakersRevokeParams) {
        match crate::speakers::check_name(&p.name) {
            Ok(()) => self.emit(Effect::Speakers { request: id, call: SpeakersCall::Revoke { by: caller.uid, name: p.name } }),
            Err(e) => self.reply(id, Err(RpcError::invalid_params(e))),
        }
    }
}
