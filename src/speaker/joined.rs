//! The joined speaker's part of the receive loop: datagrams through the
//! session's zones (`zones`: each zone's gate, the rule of which plays),
//! and what the TLS connection says after the welcome — new keys, a zone
//! changed or taken away by a reload (and the groups that follow), the
//! session's end; and the shell of the downstream rule (`downstream`):
//! loa's answers to the keepalives taken out of the stream and verified,
//! verified audio noted, the rule's probes and its `downstream` messages
//! sent.
//!
//! Must not touch: the jitter buffer and the decoder (the loop in `mod`
//! feeds them what this lets through).

use std::fmt;
use std::net::SocketAddrV4;
use std::time::Instant;

use super::downstream::{Action, ANSWER_WITHIN};
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
    /// loa's answers to our UDP keepalives that verified.
    pub answers: u64,
}

impl fmt::Display for Arrived {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "joined: {} packet(s) by multicast, {} by unicast, {} of zones not played, {} answer(s) to keepalives by UDP",
            self.multicast, self.unicast, self.not_played, self.answers
        )
    }
}

impl Speaker {
    /// Verifies a joined session's datagram in place; whether it goes on
    /// to the player (the played zone's RTP, any zone's SRTCP).
    pub(super) fn open_joined(&mut self, datagram: &mut Datagram) -> bool {
        let Some(zones) = self.zones.as_mut() else { return false };
        let rtcp = datagram.channel == Channel::Rtcp;
        let check = self.tls_uplink.as_mut().and_then(|t| t.check.as_mut());
        if let Some(check) = check.filter(|_| rtcp && !datagram.multicast) {
            // loa's answer to a keepalive: proof its UDP reaches us, and
            // nothing for the gates. One that does not verify goes on to
            // them and is counted there like any stranger's packet.
            if check.verify(&datagram.data) {
                check.rule.answered(datagram.arrival);
                self.arrived.answers += 1;
                return false;
            }
        }
        let before = zones.playing().map(str::to_string);
        let opened = zones.open(&mut datagram.data, rtcp, datagram.arrival);
        if zones.playing() != before.as_deref() {
            eprintln!("loa speaker: playing zone {}", zones.playing().unwrap_or("none"));
        }
        if matches!(opened, Opened::Play { .. } | Opened::NotPlayed) {
            if let Some(check) = self.tls_uplink.as_mut().and_then(|t| t.check.as_mut()) {
                check.rule.audio(datagram.arrival);
            }
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
                        if let Some(check) = uplink.check.as_mut() {
                            check.rule.transport(tls, Instant::now());
                        }
                    }
                    eprintln!("loa speaker: loa sends the audio {}", if tls { "inside the TLS connection" } else { "by UDP again" });
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
            self.send_report(Instant::now());
        }
        self.follow_downstream(Instant::now());
        Ok(())
    }

    /// Runs the downstream rule: a keepalive by UDP when it wants one, a
    /// `downstream` message over TLS when loa's UDP stopped or started
    /// reaching us. Called every pass of the loop (at most `MAX_WAIT`
    /// late, far below the rule's quarter-second steps).
    fn follow_downstream(&mut self, now: Instant) {
        loop {
            let Some(uplink) = self.tls_uplink.as_mut() else { return };
            let Some(check) = uplink.check.as_mut() else { return };
            if let Some(udp) = check.unsent {
                match serde_json::to_vec(&crate::speakers::join::Message::Downstream { udp }) {
                    Ok(message) => {
                        if !uplink.send(message) {
                            return;
                        }
                    }
                    Err(e) => eprintln!("loa speaker: cannot write a downstream message: {e}"),
                }
                let Some(check) = uplink.check.as_mut() else { return };
                check.unsent = None;
            }
            let Some(check) = uplink.check.as_mut() else { return };
            if check.rule.poll_timeout().is_none_or(|due| due > now) {
                return;
            }
            match check.rule.poll(now) {
                None => return,
                Some(Action::Probe) => self.send_report(now),
                Some(Action::Ask { udp }) => {
                    match udp {
                        false => eprintln!(
                            "loa speaker: loa's UDP does not reach this speaker (no answer to its keepalives within {} ms); asking for the audio inside TLS",
                            ANSWER_WITHIN.as_millis()
                        ),
                        true => eprintln!("loa speaker: loa's UDP reaches this speaker again (its keepalives are answered); asking for unicast"),
                    }
                    // Sent at the top of the next turn (now, queue room allowing).
                    check.unsent = Some(udp);
                }
            }
        }
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
