//! The joined speaker's part of the receive loop: datagrams through the
//! session's zones (`zones`: each zone's gate, the rule of which plays),
//! and what the TLS connection says after the welcome — new keys, a zone
//! changed or taken away by a reload (and the groups that follow), the
//! session's end.
//!
//! Must not touch: the jitter buffer and the decoder (the loop in `mod`
//! feeds them what this lets through).

use std::fmt;
use std::net::SocketAddrV4;

use super::join::Control;
use super::net::{Channel, Datagram};
use super::zones::Opened;
use super::{Speaker, SpeakerError};

/// Verified RTP packets of a joined session, by the way they came.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Arrived {
    pub multicast: u64,
    pub unicast: u64,
    /// Of those, packets of a zone that was not the one playing.
    pub not_played: u64,
}

impl fmt::Display for Arrived {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "joined: {} packet(s) by multicast, {} by unicast, {} of zones not played",
            self.multicast, self.unicast, self.not_played
        )
    }
}

impl Speaker {
    /// Verifies a joined session's datagram in place; whether it goes on
    /// to the player (the played zone's RTP, any zone's SRTCP).
    pub(super) fn open_joined(&mut self, datagram: &mut Datagram) -> bool {
        let Some(zones) = self.zones.as_mut() else { return false };
        let rtcp = datagram.channel == Channel::Rtcp;
        let before = zones.playing().map(str::to_string);
        let opened = zones.open(&mut datagram.data, rtcp, datagram.arrival);
        if zones.playing() != before.as_deref() {
            eprintln!("loa speaker: playing zone {}", zones.playing().unwrap_or("none"));
        }
        if matches!(opened, Opened::Play { .. } | Opened::NotPlayed) {
            match datagram.multicast {
                true => self.arrived.multicast += 1,
                false => self.arrived.unicast += 1,
            }
        }
        match opened {
            Opened::Play { len, payload_type } => {
                datagram.data.truncate(len);
                self.payload_type = Some(payload_type);
                true
            }
            Opened::Rtcp { len } => {
                datagram.data.truncate(len);
                true
            }
            Opened::NotPlayed | Opened::Rejected => false,
        }
    }

    /// Joined: what the TLS connection said since the last look.
    pub(super) fn follow_control(&mut self) -> Result<(), SpeakerError> {
        let Some(control) = &self.control else { return Ok(()) };
        let messages: Vec<Control> = control.try_iter().collect();
        let mut report_now = false;
        for message in messages {
            match message {
                Control::Fallback(tls) => {
                    if let Some(uplink) = self.tls_uplink.as_mut() {
                        uplink.active = tls;
                    }
                    report_now |= tls;
                }
                Control::Keys { zone, keys } => {
                    let mkis = keys.iter().map(|(mki, _)| mki.value()).collect();
                    if let Some(zones) = self.zones.as_mut() {
                        zones.add_keys(&zone, keys);
                    }
                    self.acknowledge(zone, mkis);
                }
                Control::Zone(granted) => {
                    eprintln!(
                        "loa speaker: zone {} changed (SSRC {:08x}{}); playing on without rejoining",
                        granted.name,
                        granted.ssrc,
                        granted.group.map(|g| format!(", group {g}")).unwrap_or_default()
                    );
                    let (zone, mkis) = (granted.name.clone(), granted.crypto.keys.iter().filter_map(|k| k.mki).map(|m| m.value()).collect());
                    if let Some(zones) = self.zones.as_mut() {
                        zones.grant(granted);
                    }
                    self.acknowledge(zone, mkis);
                    self.follow_groups()?;
                }
                Control::Gone { zone, reason } => {
                    eprintln!("loa speaker: zone {zone} is no longer granted: {reason}");
                    if let Some(zones) = self.zones.as_mut() {
                        zones.gone(&zone);
                    }
                    self.follow_groups()?;
                }
                Control::Ended(reason) => return Err(SpeakerError::JoinFailed(reason)),
            }
        }
        // At once: the keepalive inside TLS is what shows it online.
        if report_now {
            self.send_report(std::time::Instant::now());
        }
        Ok(())
    }

    /// Tells loa, inside the TLS connection, which keys of `zone` the gates
    /// hold now: a revocation's switch then waits for no one. Lost when
    /// the connection's queue is full; loa then switches at the end of the
    /// hand-out time instead.
    fn acknowledge(&self, zone: String, mkis: Vec<u32>) {
        let Some(uplink) = &self.tls_uplink else { return };
        match serde_json::to_vec(&crate::speakers::join::Message::KeysAck { zone, mkis }) {
            Ok(ack) => {
                uplink.send(ack);
            }
            Err(e) => eprintln!("loa speaker: cannot write a keys acknowledgement: {e}"),
        }
    }

    /// Multicast: the groups of the zones granted now, joined; the others
    /// left.
    fn follow_groups(&mut self) -> Result<(), SpeakerError> {
        let (Some(groups), Some(zones)) = (self.groups.as_mut(), self.zones.as_ref()) else { return Ok(()) };
        let wanted: Vec<SocketAddrV4> = zones.granted().filter_map(|z| z.group).collect();
        let interface = groups.interface();
        groups.follow(&wanted, &mut self.readers).map_err(|(group, source)| SpeakerError::Join { group, interface, source })
    }
}
