//! The UDP side of the speakers port: each datagram must be an SRTCP
//! packet that authenticates under a joined speaker's uplink key (its
//! keepalive, RFC 6263, with RTP and RTCP on one port, RFC 5761). Only
//! such a packet moves that speaker's unicast to its source address
//! (symmetric RTP, RFC 4961). Anything else is counted and logged, at most
//! every `LOG_EVERY`, as a security event, and never counts as a speaker.
//!
//! A keepalive is a receiver report: once it verifies, it goes to the
//! health monitor once for each zone of the speaker, under the speaker's
//! enrolled name with its transport and public address:port (the monitor
//! judges each zone by the blocks about that zone's stream). Speakers
//! behind one NAT are then told apart by name, not by their shared IP.
//!
//! Each verified keepalive of a speaker that does not take multicast is
//! answered at once from this socket to its source (the very 5-tuple its
//! NAT opened): one small SRTCP packet under the session's uplink key that
//! proves to the speaker that loa's UDP reaches it. A speaker left without
//! answers asks for its audio inside TLS (`Message::Downstream`).

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use super::SessionsHandle;
use crate::daemon::tasks::health::{HealthHandle, HealthInput};
use crate::health::{JoinedReporter, Report};
use crate::proto::speakers::SpeakerTransport;
use crate::rtp::rtcp::{self, RtcpPacket};
use crate::rtp::srtp::is_rtcp;
use crate::throttle::{Full, Throttle};

const LOG_EVERY: Duration = Duration::from_secs(10);
const MAX_DATAGRAM: usize = 2048;

/// Unauthenticated datagrams: counted, logged rate-limited.
#[derive(Debug)]
pub(super) struct SecurityLog {
    total: u64,
    lines: Throttle<()>,
}

impl Default for SecurityLog {
    fn default() -> SecurityLog {
        SecurityLog { total: 0, lines: Throttle::new(LOG_EVERY, 1, Full::Quiet) }
    }
}

impl SecurityLog {
    /// Counts one; says whether to log now (the first, then at most once
    /// per `LOG_EVERY`), with how many came since the last line.
    pub(super) fn count(&mut self, now: Instant) -> Option<(u64, u64)> {
        self.total += 1;
        self.lines.hit(now, ()).map(|since| (since, self.total))
    }
}

/// A datagram that verified as a joined speaker's keepalive.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Keepalive {
    pub speaker: String,
    /// The length of the plain report at the start of the datagram.
    pub len: usize,
    /// The sealed answer to send back to where it came from (none for a
    /// speaker that takes multicast: it has nothing to decide).
    pub answer: Option<Vec<u8>>,
}

/// Whose keepalive a datagram is, or why it is no speaker's.
pub(super) fn check(sessions: &SessionsHandle, packet: &mut [u8], from: SocketAddr, now: Instant) -> Result<Keepalive, &'static str> {
    if packet.len() < 8 || !is_rtcp(packet) {
        return Err("not an SRTCP packet");
    }
    let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
    let mut inner = sessions.lock();
    let Some(uplink) = inner.uplinks.get_mut(&ssrc) else {
        return Err("no joined speaker has its SSRC");
    };
    let len = match uplink.rx.unprotect_rtcp(packet) {
        Ok(len) => len,
        Err(e) => return Err(e.reason()),
    };
    let speaker = uplink.speaker.clone();
    let answer = if inner.bindings.multicast(&speaker) { None } else { inner.uplinks.get_mut(&ssrc).and_then(super::Uplink::answer) };
    inner.heard_at.insert(speaker.clone(), jiff::Timestamp::now());
    let change = inner.bindings.heard(&speaker, from, now);
    let updates = sessions.apply(&mut inner, change.into_iter().collect());
    drop(inner);
    sessions.send_targets(updates);
    Ok(Keepalive { speaker, len, answer })
}

/// The verified report of `speaker` to the health monitor: one per zone
/// of the speaker and reporting SSRC. The TLS fallback's reports (framed
/// in the connection) are to come through here too, with transport `tls`
/// and the connection's peer address.
pub(super) fn feed_health(health: &HealthHandle, speaker: JoinedReporter, zones: &[String], plain: &[u8], from: SocketAddr) {
    let Ok(packets) = rtcp::parse_compound(plain) else { return };
    let arrival_ntp_mid32 = ((rtcp::ntp_time(SystemTime::now()) >> 16) & 0xFFFF_FFFF) as u32;
    let mut cname = None;
    let mut reports = Vec::new();
    for packet in packets {
        match packet {
            RtcpPacket::ReceiverReport { ssrc, reports: blocks } => reports.push((ssrc, blocks)),
            RtcpPacket::Sdes { cnames } => cname = cnames.into_iter().next().map(|(_, c)| c),
            _ => {}
        }
    }
    for (reporter_ssrc, blocks) in reports {
        for zone in zones {
            health.send(HealthInput::Report(Report {
                zone: zone.clone(),
                from,
                reporter_ssrc,
                cname: cname.clone(),
                blocks: blocks.clone(),
                arrival_ntp_mid32,
                joined: Some(speaker.clone()),
            }));
        }
    }
}

pub(super) async fn receive(sessions: SessionsHandle, socket: tokio::net::UdpSocket, health: HealthHandle) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (len, from) = match socket.recv_from(&mut buf).await {
            Ok(got) => got,
            Err(e) => {
                // ICMP errors from a speaker that went away surface here
                // on Linux; they say nothing about the socket.
                tracing::debug!("speakers UDP receive: {e}");
                continue;
            }
        };
        let now = Instant::now();
        match check(&sessions, &mut buf[..len], from, now) {
            Ok(Keepalive { speaker, len: plain, answer }) => {
                if let Some(answer) = answer {
                    // Lost like any datagram; the speaker sends again.
                    if let Err(e) = socket.send_to(&answer, from).await {
                        tracing::debug!(%from, "cannot answer a keepalive: {e}");
                    }
                }
                let (zones, transport) = {
                    let inner = sessions.lock();
                    let seen = inner.bindings.seen(&speaker).and_then(|s| s.transport);
                    (inner.bindings.zones(&speaker).to_vec(), seen)
                };
                // Heard over UDP: unicast unless it takes its zones' groups.
                let transport = transport.unwrap_or(SpeakerTransport::Unicast);
                feed_health(&health, JoinedReporter { name: speaker, transport }, &zones, &buf[..plain], from);
            }
            Err(why) => {
            let log = sessions.lock().security.count(now);
            if let Some((since, total)) = log {
                tracing::warn!(
                    %from, reason = why, since_last_line = since, total,
                    "SECURITY: unauthenticated datagram at the speakers port, ignored"
                );
            }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_lines_are_rate_limited_and_say_how_many_came_between() {
        let mut log = SecurityLog::default();
        let t = Instant::now();
        assert_eq!(log.count(t), Some((1, 1)));
        for i in 1..=99 {
            assert_eq!(log.count(t + Duration::from_millis(i * 50)), None);
        }
        assert_eq!(log.count(t + LOG_EVERY), Some((100, 101)));
        assert_eq!(log.count(t + LOG_EVERY + Duration::from_secs(1)), None);
    }
}
