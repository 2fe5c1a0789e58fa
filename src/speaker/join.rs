//! `loa speaker --join`: the speaker starts the session itself, as a 4G
//! box behind a carrier NAT must. TLS 1.3 to loa (pinning the daemon's
//! identity from the credential, showing the speaker's certificate),
//! `hello`, then `welcome`: the zone, its SSRC, payload type and keys, and
//! the speaker's own uplink key. One UDP socket then carries everything:
//! the speaker's SRTCP receiver reports leave from it (they are its
//! keepalives and open the NAT mapping the audio comes back through) and
//! the unicast SRTP arrives on it, verified by the same gate as `--sdp`.
//!
//! A thread keeps reading the TLS connection: `keys` go to the zone's gate
//! (a revocation's fresh key arrives before the switch), `zone` and
//! `zone_gone` (a reload) replace or remove a grant, `bye` or `refused`
//! end the session with the reason (`rejoin` decides what follows).
//!
//! Every zone granted is received; which one plays is `zones`' rule. With
//! `--multicast-interface` the hello says the speaker takes multicast: loa
//! then grants each zone with its group, the speaker joins the groups on
//! that interface and loa sends it no unicast copy; its keepalives still
//! go to loa's UDP port (they keep it online). A group it cannot join
//! ends the speaker with the reason (run it without the flag to get
//! unicast instead).
//!
//! The TLS fallback (UDP does not get through): loa frames the zones' SRTP
//! packets into the connection (RFC 4571) and says so with `transport`.
//! The reader thread puts those packets in the same queue as the UDP
//! sockets' datagrams, so they meet the same gates (auth tag, replay
//! window, SSRC lock) and jitter buffer, and a packet that arrives both
//! ways is a replay the second time. While the audio comes inside TLS the
//! keepalives go both ways: inside TLS (they keep the speaker online) and
//! by UDP (one that gets through wins unicast back); each copy is sealed
//! on its own, so neither is a replay of the other.
//!
//! loa answers each UDP keepalive that authenticates with one small SRTCP
//! packet under the uplink key (`speakers::join::answer_ssrc`): the proof
//! that its UDP reaches the speaker, which `downstream` judges; a speaker
//! left without answers asks for the fallback itself (`downstream`,
//! `udp: false`), as one whose network lets its UDP out but not loa's in
//! would otherwise hear nothing for good. With `--tls-only` the hello says
//! `udp: false`: the audio comes inside TLS from the welcome on, and no
//! datagram is read or sent (the socket `setup` binds stays unused).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine;

use super::net::{Channel, Datagram};
use super::zones::Granted;
use super::SpeakerError;
use crate::proto::speakers::SpeakerTransport;
use super::downstream::Downstream;
use crate::rtp::srtp::{is_rtcp, CryptoAttribute, KeyParam, MasterKey, Mki, SrtpReceiver, SrtpSender, Suite, DEFAULT_REPLAY_WINDOW};
use crate::speakers::join::{self, Deframer, KeyGrant, Message, Payload, Welcome, ZoneGrant};
use crate::speakers::Credential;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the welcome may take; also how often the reader thread looks
/// at its stop flag (as a multiple of `POLL`).
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(100);
/// Keepalives waiting for the reader thread to write them inside TLS; a
/// full queue (loa not reading) drops the new one: the next period sends
/// another.
const UPLINK_QUEUE: usize = 8;

/// What `--join` was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinOptions {
    /// `HOST:PORT` of loa's `[speakers] listen`.
    pub daemon: String,
    pub credential: PathBuf,
    /// The speaker takes multicast, joining groups on this interface.
    pub multicast: Option<Ipv4Addr>,
    /// No UDP at all: the audio comes inside TLS from the start.
    pub tls_only: bool,
}

/// What the TLS connection says after the welcome.
#[derive(Debug)]
pub enum Control {
    /// New keys for a zone (by MKI).
    Keys { zone: String, keys: Vec<(Mki, MasterKey)> },
    /// A zone granted anew or changed by a reload.
    Zone(Granted),
    /// A zone no longer granted, and why.
    Gone { zone: String, reason: String },
    /// The audio now comes inside TLS (true) or by UDP (false).
    Fallback(bool),
    /// The session ended: loa's reason, or the connection's fate.
    Ended(String),
}

/// A joined session, ready to play.
pub struct Joined {
    pub zones: Vec<Granted>,
    pub channels: u8,
    /// Where unicast arrives and keepalives leave; unused with `--tls-only`.
    pub socket: UdpSocket,
    /// Whether the session uses UDP at all (false with `--tls-only`).
    pub udp: bool,
    /// Where keepalives go: loa's address, the welcome's UDP port.
    pub daemon_udp: SocketAddr,
    pub uplink_ssrc: u32,
    /// Taken by the player, which protects the keepalives with it.
    pub uplink: Option<SrtpSender>,
    pub keepalive: Duration,
    pub control: Receiver<Control>,
    /// Taken by the player: keepalives inside TLS while in the fallback.
    pub tls_uplink: Option<TlsUplink>,
    reader: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

/// The way into the TLS connection for the speaker's keepalives and
/// messages, and what decides whether the audio should come that way.
pub struct TlsUplink {
    out: SyncSender<Vec<u8>>,
    /// The audio comes inside TLS: keepalives go this way too.
    pub active: bool,
    /// Whether the speaker uses UDP at all (false with `--tls-only`).
    pub udp: bool,
    /// Whether loa's UDP reaches the speaker; none with `--tls-only` or
    /// multicast (nothing of it would travel inside TLS).
    pub(super) check: Option<UdpCheck>,
}

/// The downstream rule and the key loa's answers verify under.
pub(super) struct UdpCheck {
    pub rule: Downstream,
    pub answer_ssrc: u32,
    answers: SrtpReceiver,
    /// A `downstream` message the connection's queue had no room for:
    /// sent on the next pass.
    pub unsent: Option<bool>,
}

impl UdpCheck {
    /// Whether `packet` is loa's answer to a keepalive and verifies (auth
    /// tag, replay window); a packet that does not is left as it was, for
    /// the gates to count.
    pub fn verify(&mut self, packet: &[u8]) -> bool {
        if answer_ssrc_of(packet) != Some(self.answer_ssrc) {
            return false;
        }
        self.answers.unprotect_rtcp(&mut packet.to_vec()).is_ok()
    }
}

/// The SSRC an SRTCP packet carries, if `packet` is one.
fn answer_ssrc_of(packet: &[u8]) -> Option<u32> {
    let ssrc = packet.get(4..8)?;
    is_rtcp(packet).then(|| u32::from_be_bytes([ssrc[0], ssrc[1], ssrc[2], ssrc[3]]))
}

impl TlsUplink {
    /// Queues a payload for the reader thread to write framed (a sealed
    /// SRTCP packet, or a control message); never blocks.
    pub fn send(&self, packet: Vec<u8>) -> bool {
        self.out.try_send(packet).is_ok()
    }
}

impl Drop for Joined {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.reader.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = thread.join();
        }
    }
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn failed(daemon: &str, what: impl std::fmt::Display) -> SpeakerError {
    SpeakerError::JoinFailed(format!("cannot join loa at {daemon}: {what}"))
}

/// The handshake's failure; our verifier refusing loa's certificate (the
/// only certificate errors this client raises) is `WrongDaemon`: a rejoin
/// cannot fix it.
fn handshake_failed(daemon: &str, e: std::io::Error) -> SpeakerError {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::General(_)) => SpeakerError::WrongDaemon(format!("cannot join loa at {daemon}: {e}")),
        _ => failed(daemon, e),
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
}

/// What one frame from loa carries.
#[derive(Debug)]
enum Frame {
    Control(Message),
    /// An SRTP packet of the fallback, still protected.
    Media(Vec<u8>),
}

/// The next whole frame already read, if any.
fn next_frame(deframer: &mut Deframer) -> Option<Result<Frame, String>> {
    let payload = match deframer.next_frame()? {
        Ok(payload) => payload,
        Err(e) => return Some(Err(format!("loa sent {e}"))),
    };
    let message = match join::parse(&payload) {
        Ok(Payload::Control(message)) => Some(message),
        Ok(Payload::Media(_)) => None,
        Err(e) => return Some(Err(format!("loa sent {e}"))),
    };
    Some(Ok(message.map_or(Frame::Media(payload), Frame::Control)))
}

/// Reads one frame; Ok(None) on a read timeout.
fn read_frame(tls: &mut Tls, deframer: &mut Deframer) -> Result<Option<Frame>, String> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(frame) = next_frame(deframer) {
            return frame.map(Some);
        }
        match tls.read(&mut buf) {
            Ok(0) => return Err("loa closed the connection".into()),
            Ok(n) => deframer.push(&buf[..n]),
            Err(e) if is_timeout(&e) => return Ok(None),
            Err(e) => return Err(format!("the connection to loa failed: {e}")),
        }
    }
}

/// Reads one control message (media before the welcome is skipped);
/// Ok(None) on a read timeout.
fn read_message(tls: &mut Tls, deframer: &mut Deframer) -> Result<Option<Message>, String> {
    loop {
        match read_frame(tls, deframer)? {
            Some(Frame::Control(message)) => return Ok(Some(message)),
            Some(Frame::Media(_)) => continue,
            None => return Ok(None),
        }
    }
}

fn key_of(suite: Suite, grant: &KeyGrant) -> Result<(Mki, MasterKey), String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(&grant.key).map_err(|e| format!("a key that is not base64: {e}"))?;
    let key = MasterKey::from_bytes(suite, &bytes).map_err(|e| e.to_string())?;
    let mki = Mki::new(grant.mki, crate::keys::MKI_LEN).map_err(|e| e.to_string())?;
    Ok((mki, key))
}

/// Connects, says hello and waits for the welcome (or the refusal). Audio
/// that comes inside TLS is put in `datagrams`, as the UDP readers' is.
pub fn join(options: &JoinOptions, bind: Ipv4Addr, datagrams: SyncSender<Datagram>) -> Result<Joined, SpeakerError> {
    let daemon = options.daemon.as_str();
    let text = std::fs::read_to_string(&options.credential)
        .map_err(|e| SpeakerError::Credential(format!("cannot read the credential {}: {e}", options.credential.display())))?;
    let credential = Credential::parse(&text)
        .map_err(|e| SpeakerError::Credential(format!("{}: {e}", options.credential.display())))?;
    let addr = daemon
        .to_socket_addrs()
        .map_err(|e| failed(daemon, format!("not an address: {e}")))?
        .next()
        .ok_or_else(|| failed(daemon, "the name has no address"))?;
    let config = crate::speakers::tls::client_config(&credential)
        .map_err(|e| SpeakerError::Credential(format!("{}: {e}", options.credential.display())))?;
    let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
    let connection = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| failed(daemon, e))?;
    let tcp = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|e| failed(daemon, e))?;
    tcp.set_read_timeout(Some(WELCOME_TIMEOUT)).map_err(|e| failed(daemon, e))?;
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    let hello = Message::Hello { version: join::VERSION, multicast: options.multicast.is_some(), udp: !options.tls_only };
    tls.write_all(&join::frame_message(&hello)).and_then(|()| tls.flush()).map_err(|e| handshake_failed(daemon, e))?;
    let mut deframer = Deframer::default();
    let welcome = match read_message(&mut tls, &mut deframer).map_err(|e| failed(daemon, e))? {
        Some(Message::Welcome(welcome)) => welcome,
        Some(Message::Refused { reason } | Message::Bye { reason }) => return Err(SpeakerError::Refused(reason)),
        Some(other) => return Err(failed(daemon, format!("loa answered hello with {other:?}"))),
        None => return Err(failed(daemon, format!("no welcome within {} s", WELCOME_TIMEOUT.as_secs()))),
    };
    let (mut joined, answers) = setup(&welcome, addr, bind).map_err(|e| failed(daemon, e))?;
    tls.sock.set_read_timeout(Some(POLL)).map_err(|e| failed(daemon, e))?;
    // A daemon that stops reading cannot hold the reader thread for long.
    tls.sock.set_write_timeout(Some(CONNECT_TIMEOUT)).map_err(|e| failed(daemon, e))?;
    let (tx, control) = mpsc::channel();
    let (out, uplink_rx) = mpsc::sync_channel(UPLINK_QUEUE);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let suites = joined.zones.iter().map(|z| (z.name.clone(), z.crypto.suite)).collect();
        let answer_ssrc = join::answer_ssrc(joined.uplink_ssrc);
        let mut link = Link { suites, daemon: addr, answer_ssrc, control: tx, datagrams, uplink: uplink_rx };
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("speaker-join".into())
            .spawn(move || follow(tls, deframer, &mut link, &stop))
            .map_err(SpeakerError::Thread)?
    };
    let fallback = welcome.zones.iter().any(|z| z.transport == SpeakerTransport::Tls);
    let udp = !options.tls_only;
    let check = (udp && options.multicast.is_none())
        .then(|| UdpCheck { rule: Downstream::new(fallback), answer_ssrc: join::answer_ssrc(joined.uplink_ssrc), answers, unsent: None });
    joined.udp = udp;
    joined.tls_uplink = Some(TlsUplink { out, active: fallback, udp, check });
    joined.control = control;
    joined.reader = Some((stop, reader));
    Ok(joined)
}

/// A zone's grant as the speaker plays it: its keys ready for a gate.
fn granted(zone: &ZoneGrant) -> Result<Granted, String> {
    let suite = Suite::from_sdp_name(&zone.suite).ok_or_else(|| format!("zone {} uses suite {}, unknown here", zone.name, zone.suite))?;
    let mut keys: Vec<&KeyGrant> = zone.keys.iter().collect();
    // The current key first: it makes the context, the others are added.
    keys.sort_by_key(|k| !k.current);
    let keys = keys
        .into_iter()
        .map(|g| key_of(suite, g).map(|(mki, key)| KeyParam { key, lifetime: None, mki: Some(mki) }))
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(format!("zone {} came without keys", zone.name));
    }
    Ok(Granted {
        name: zone.name.clone(),
        ssrc: zone.ssrc,
        payload_type: zone.pt,
        crypto: CryptoAttribute { tag: 1, suite, keys },
        group: zone.group,
    })
}

/// The welcome as the speaker plays it, and the receiver loa's answers to
/// its keepalives verify under.
fn setup(welcome: &Welcome, daemon: SocketAddr, bind: Ipv4Addr) -> Result<(Joined, SrtpReceiver), String> {
    let first = welcome.zones.first().ok_or("loa granted no zone (are this speaker's zones SRTP zones in its config?)")?;
    let zones = welcome.zones.iter().map(granted).collect::<Result<Vec<_>, _>>()?;
    // One uplink per session: every grant carries the same.
    let suite = zones[0].crypto.suite;
    let uplink_bytes = base64::engine::general_purpose::STANDARD.decode(&first.uplink.key).map_err(|e| format!("an uplink key that is not base64: {e}"))?;
    let uplink_key = MasterKey::from_bytes(suite, &uplink_bytes).map_err(|e| e.to_string())?;
    let answers = SrtpReceiver::new(join::answer_ssrc(first.uplink.ssrc), uplink_key.clone(), None, DEFAULT_REPLAY_WINDOW).map_err(|e| e.to_string())?;
    let uplink = SrtpSender::new(first.uplink.ssrc, uplink_key, None).map_err(|e| e.to_string())?;
    let socket = UdpSocket::bind((bind, 0)).map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    socket.set_read_timeout(Some(POLL)).map_err(|e| e.to_string())?;
    let (tx, control) = mpsc::channel();
    drop(tx);
    let joined = Joined {
        channels: first.channels,
        zones,
        socket,
        udp: true,
        daemon_udp: SocketAddr::new(daemon.ip(), welcome.udp_port),
        uplink_ssrc: first.uplink.ssrc,
        uplink: Some(uplink),
        keepalive: Duration::from_millis(welcome.keepalive_ms.max(100)),
        control,
        tls_uplink: None,
        reader: None,
    };
    Ok((joined, answers))
}

/// What the reader thread needs besides the connection.
struct Link {
    /// Each granted zone's suite, which its keys are read in.
    suites: HashMap<String, Suite>,
    /// loa's address, as the fallback's datagrams' source.
    daemon: SocketAddr,
    /// loa never frames its answers to keepalives into TLS: one that came
    /// that way would prove nothing of UDP, and is dropped.
    answer_ssrc: u32,
    control: Sender<Control>,
    /// The player's queue, shared with the UDP readers.
    datagrams: SyncSender<Datagram>,
    /// Sealed keepalives to write inside TLS.
    uplink: Receiver<Vec<u8>>,
}

/// What one frame from loa means for the player: a message for the loop,
/// audio for the gates (stamped with its arrival), or nothing.
fn route(frame: Frame, suites: &mut HashMap<String, Suite>, daemon: SocketAddr, answer_ssrc: u32, arrival: Instant) -> Option<Result<Control, Datagram>> {
    match frame {
        Frame::Media(data) if answer_ssrc_of(&data) == Some(answer_ssrc) => None,
        Frame::Media(data) => Some(Err(Datagram { channel: Channel::Rtp, arrival, from: daemon, data, multicast: false })),
        // Said for each zone; the speaker's audio comes one way for all.
        Frame::Control(Message::Transport { zone, transport }) if suites.contains_key(&zone) => {
            Some(Ok(Control::Fallback(transport == SpeakerTransport::Tls)))
        }
        Frame::Control(message) => control_of(message, suites).map(Ok),
    }
}

/// Writes the keepalives queued for TLS; Err when the connection failed.
fn write_uplink(tls: &mut Tls, uplink: &Receiver<Vec<u8>>) -> Result<(), String> {
    loop {
        let packet = match uplink.try_recv() {
            Ok(packet) => packet,
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => return Ok(()),
        };
        let framed = join::frame(&packet).map_err(|e| e.to_string())?;
        tls.write_all(&framed).and_then(|()| tls.flush()).map_err(|e| format!("the connection to loa failed: {e}"))?;
    }
}

/// The reader thread: passes on keys, zone changes, `transport` and the
/// end, the audio inside TLS to the player's queue; writes the keepalives
/// queued for TLS between reads (at most `POLL` late).
fn follow(mut tls: Tls, mut deframer: Deframer, link: &mut Link, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let read = read_frame(&mut tls, &mut deframer);
        let arrival = Instant::now();
        let routed = match read.and_then(|frame| write_uplink(&mut tls, &link.uplink).map(|()| frame)) {
            Ok(None) => continue,
            Ok(Some(frame)) => route(frame, &mut link.suites, link.daemon, link.answer_ssrc, arrival),
            Err(e) => Some(Ok(Control::Ended(e))),
        };
        let control = match routed {
            None => continue,
            // Dropped when the player is behind, as the UDP readers do.
            Some(Err(datagram)) => match link.datagrams.try_send(datagram) {
                Ok(()) | Err(TrySendError::Full(_)) => continue,
                Err(TrySendError::Disconnected(_)) => return,
            },
            Some(Ok(control)) => control,
        };
        let end = matches!(control, Control::Ended(_));
        if link.control.send(control).is_err() || end {
            return;
        }
    }
    // The player's last packets (its BYE) before the goodbye.
    let _ = write_uplink(&mut tls, &link.uplink);
    let _ = tls.write_all(&join::frame_message(&Message::Bye { reason: "speaker stopped".into() }));
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

/// What a control message after the welcome means to the player; None
/// for messages it has no use for (and keys of a zone it was not granted).
/// `suites`: each granted zone's suite, which its keys are read in.
fn control_of(message: Message, suites: &mut HashMap<String, Suite>) -> Option<Control> {
    Some(match message {
        Message::Keys { zone, keys } => {
            let suite = *suites.get(&zone)?;
            match keys.iter().map(|g| key_of(suite, g)).collect() {
                Ok(keys) => Control::Keys { zone, keys },
                Err(e) => Control::Ended(format!("loa sent a key that is not valid: {e}")),
            }
        }
        Message::Zone(grant) => match granted(&grant) {
            Ok(granted) => {
                suites.insert(granted.name.clone(), granted.crypto.suite);
                Control::Zone(granted)
            }
            Err(e) => Control::Ended(format!("loa sent a zone that is not valid: {e}")),
        },
        Message::ZoneGone { zone, reason } => Control::Gone { zone, reason },
        Message::Bye { reason } | Message::Refused { reason } => Control::Ended(format!("loa ended the session: {reason}")),
        _ => return None,
    })
}

#[cfg(test)]
#[path = "join_tests.rs"]
mod tests;
