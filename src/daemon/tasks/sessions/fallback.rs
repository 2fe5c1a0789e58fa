//! The TLS fallback (issue 15): where a speaker's UDP does not get through,
//! the very SRTP packets the pacer sealed for its zone travel inside its
//! TLS connection, RFC 4571 framed, and its keepalives come back the same
//! way.
//!
//! The pacer is not changed for it: the sessions bind one loopback UDP
//! socket, connected to the speakers socket the pacer sends from (so only
//! the pacer's datagrams are read), and add it as one more unicast target
//! of every zone with a speaker inside TLS (`SessionsHandle::targets_of`).
//! Each datagram read there is queued for every fallback connection of
//! its zone (by SSRC). The queues are bounded and filled with `try_send`:
//! a slow TCP peer loses packets (counted), it never holds up the pacer,
//! this task or another speaker.
//!
//! Must not touch: the pacer, keys (packets arrive sealed), the bindings'
//! rules (`speakers::bindings`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::SessionsHandle;
use crate::proto::speakers::SpeakerTransport;
use crate::rtp::srtp::is_rtcp;

/// Packets queued per connection: about 1.3 s of one zone at 20 ms frames.
/// More would only be played late; the speaker's jitter buffer is 60 ms.
pub(super) const MEDIA_QUEUE: usize = 64;
const MAX_DATAGRAM: usize = 2048;

/// How the sessions reach one connection's task.
pub(super) struct Link {
    /// The TCP peer, as its NAT shows it.
    pub peer: SocketAddr,
    /// Ends the session with a `bye` carrying this reason.
    pub kick: mpsc::UnboundedSender<String>,
    /// Its audio moved inside TLS or back out: a `transport` message.
    pub transport: mpsc::UnboundedSender<SpeakerTransport>,
    /// Sealed packets of its zones while its audio is inside TLS.
    pub media: mpsc::Sender<Arc<[u8]>>,
    /// Packets dropped because `media` was full.
    pub dropped: Arc<AtomicU64>,
}

/// The connection task's ends of its [`Link`].
pub(super) struct LinkEnds {
    pub kicked: mpsc::UnboundedReceiver<String>,
    pub transport: mpsc::UnboundedReceiver<SpeakerTransport>,
    pub media: mpsc::Receiver<Arc<[u8]>>,
    pub dropped: Arc<AtomicU64>,
}

pub(super) fn link(peer: SocketAddr) -> (Link, LinkEnds) {
    let (kick, kicked) = mpsc::unbounded_channel();
    let (transport_tx, transport_rx) = mpsc::unbounded_channel();
    let (media_tx, media_rx) = mpsc::channel(MEDIA_QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let link = Link { peer, kick, transport: transport_tx, media: media_tx, dropped: dropped.clone() };
    (link, LinkEnds { kicked, transport: transport_rx, media: media_rx, dropped })
}

/// The loopback socket the pacer's fallback copies arrive at, connected to
/// `pacer_from` (the speakers socket) so nothing else is read from it.
pub(super) async fn bind(pacer_from: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    let loopback = match pacer_from.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    // A wildcard listen sends to loopback from the loopback address.
    let peer = if pacer_from.ip().is_unspecified() { SocketAddr::new(loopback, pacer_from.port()) } else { pacer_from };
    let socket = tokio::net::UdpSocket::bind(SocketAddr::new(loopback, 0)).await?;
    socket.connect(peer).await?;
    Ok(socket)
}

/// The SSRC of an RTP packet (the pacer sends only RTP to speakers).
fn rtp_ssrc(packet: &[u8]) -> Option<u32> {
    if packet.len() < 12 || is_rtcp(packet) {
        return None;
    }
    Some(u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]))
}

/// Reads the pacer's copies and hands each to its zone's fallback
/// connections, until the runtime ends.
pub(super) async fn receive(sessions: SessionsHandle, socket: tokio::net::UdpSocket) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let len = match socket.recv(&mut buf).await {
            Ok(len) => len,
            Err(e) => {
                tracing::debug!("TLS fallback receive: {e}");
                continue;
            }
        };
        // By the catalog, which follows reloads (a zone sent anew has a
        // new SSRC).
        let Some(zone) = rtp_ssrc(&buf[..len]).and_then(|ssrc| sessions.zone_with_ssrc(ssrc)) else { continue };
        sessions.forward(&zone, &Arc::from(&buf[..len]));
    }
}

/// A packet inside a speaker's connection that was not its keepalive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Refused {
    pub reason: &'static str,
    /// Counted on the speakers port's security log (the same as bad UDP):
    /// `(since the last line, total)` when a line is due now.
    pub log: Option<(u64, u64)>,
}

/// A keepalive that came inside the TLS connection of the session with
/// `uplink_ssrc`: verified under its uplink key exactly as a UDP one
/// (auth tag, replay window), then it only says the speaker is alive (no
/// address is adopted from TCP). The length of the plain report, or why
/// it is not one (counted).
pub(super) fn check_keepalive(sessions: &SessionsHandle, uplink_ssrc: u32, packet: &mut [u8], now: Instant) -> Result<usize, Refused> {
    let mut inner = sessions.lock();
    let checked = verify(&mut inner, uplink_ssrc, packet);
    match checked {
        Ok((speaker, len)) => {
            inner.heard_at.insert(speaker.clone(), jiff::Timestamp::now());
            inner.bindings.heard_over_tls(&speaker, now);
            Ok(len)
        }
        Err(reason) => Err(Refused { reason, log: inner.security.count(now) }),
    }
}

fn verify(inner: &mut super::Inner, uplink_ssrc: u32, packet: &mut [u8]) -> Result<(String, usize), &'static str> {
    if packet.len() < 8 || !is_rtcp(packet) {
        return Err("not an SRTCP packet");
    }
    let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
    if ssrc != uplink_ssrc {
        return Err("not this session's uplink SSRC");
    }
    let Some(uplink) = inner.uplinks.get_mut(&ssrc) else {
        return Err("the session has ended");
    };
    let len = uplink.rx.unprotect_rtcp(packet).map_err(|e| e.reason())?;
    Ok((uplink.speaker.clone(), len))
}
