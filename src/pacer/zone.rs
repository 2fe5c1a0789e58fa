//! What the pacer sends for one zone, made from the config.

use std::net::SocketAddr;

use crate::config::{Audio, Network, Zone, ZoneSecurity};
use crate::keys::ZoneKeys;
use crate::rtp::session::SessionConfig;
use crate::rtp::srtp::SetupError;

use super::seal::ZoneSeal;

/// What the pacer sends for one zone.
pub struct ZoneSpec {
    pub name: String,
    pub session: SessionConfig,
    /// The multicast group first, then unicast targets.
    pub rtp_targets: Vec<SocketAddr>,
    /// RTCP destinations (each RTP target's port + 1).
    pub rtcp_targets: Vec<SocketAddr>,
    /// SRTP for the zone's packets; None: plain RTP (`security = "none"`).
    /// Made here, off the pacer thread (libsrtp allocates its context).
    pub seal: Option<ZoneSeal>,
}

impl ZoneSpec {
    /// The RTP targets and a fresh session (random SSRC, seq and timestamp,
    /// as RFC 3550 §5.1 asks) for `zone`; SRTP under `keys` when the zone
    /// is an SRTP zone. An SRTP zone without keys is refused rather than
    /// sent in the clear.
    pub fn for_zone(
        network: &Network,
        audio: &Audio,
        zone: &Zone,
        keys: Option<&ZoneKeys>,
    ) -> Result<ZoneSpec, ZoneSpecError> {
        let mut rtp_targets: Vec<SocketAddr> = vec![SocketAddr::V4(zone.group)];
        rtp_targets.extend(zone.unicast.iter().copied());
        let rtcp_targets = rtp_targets.iter().map(|&a| crate::net::rtcp_addr(a)).collect();
        // RTP/UDP/IPv4 headers on every frame count toward the session
        // bandwidth RTCP takes its 5 % of (RFC 3550 §6.2).
        let packets_per_second = 1000 / audio.frame.millis();
        let session_bandwidth_bps = audio.bitrate_bps + packets_per_second * (12 + 8 + 20) * 8;
        let ssrc: u32 = rand::random();
        let seal = match (zone.security, keys) {
            (ZoneSecurity::None, _) => None,
            (ZoneSecurity::Srtp, None) => return Err(ZoneSpecError::NoKeys(zone.name.clone())),
            (ZoneSecurity::Srtp, Some(keys)) => Some(
                ZoneSeal::new(ssrc, keys).map_err(|e| ZoneSpecError::Srtp(zone.name.clone(), e))?,
            ),
        };
        Ok(ZoneSpec {
            name: zone.name.clone(),
            session: SessionConfig {
                ssrc,
                initial_seq: rand::random(),
                initial_timestamp: rand::random(),
                payload_type: audio.payload_type,
                cname: format!("loa@{}", network.interface),
                session_bandwidth_bps,
                rng_seed: rand::random(),
            },
            rtp_targets,
            rtcp_targets,
            seal,
        })
    }
}

/// A zone the pacer cannot send safely.
#[derive(Debug, thiserror::Error)]
pub enum ZoneSpecError {
    #[error("zone {0} is an SRTP zone but has no keys")]
    NoKeys(String),
    #[error("zone {0}: cannot set up SRTP: {1}")]
    Srtp(String, SetupError),
}
