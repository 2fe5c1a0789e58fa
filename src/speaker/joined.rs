//! The joined speaker's part of the receive loop: datagrams through the
//! session's zones (`zones`: each zone's gate, the rule of which plays),
//! and what the TLS connection says after the welcome — new keys, a zone
//! changed or taken away by a reload (and the groups that follow), the
//! session's end; the sessions one after the other: a session that
//! ends is rejoined when `rejoin`'s rule says, on a thread of its own (a
//! join blocks for up to 15 s; the output clock must not), and the new
//! session's zones, sockets and keys replace the old ones while the jitter
//! buffer, the decoder, the output and the counters go on; and the shell
//! of the downstream rule (`downstream`): loa's answers to the keepalives
//! taken out of the stream and verified, verified audio noted, the rule's
//! probes and its `downstream` messages sent.
//!
//! Must not touch: the jitter buffer and the decoder (the loop in `mod`
//! feeds them what this lets through).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::{Duration, Instant};

use rand::Rng;

use super::downstream::{Action, ANSWER_WITHIN};
use super::gate::Rejected;
use super::join::{self, Control, JoinOptions, Joined};
use super::net::{Channel, Datagram, Groups, Readers};
use super::rejoin::{self, Next, Rejoin};
use super::zones::{JoinedZones, Opened};
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

/// A session as a join made it: the TLS thread already puts the audio it
/// carries in `datagrams`, the queue of `readers`.
pub(super) struct NewSession {
    pub joined: Joined,
    readers: Readers,
    datagrams: Receiver<Datagram>,
}

/// A join on its own thread.
struct Attempt {
    result: Receiver<Result<Joined, SpeakerError>>,
    readers: Readers,
    datagrams: Receiver<Datagram>,
}

/// Joined: the rule, what a join needs, and the attempt under way.
pub(super) struct Rejoining {
    rule: Rejoin,
    options: JoinOptions,
    bind: Ipv4Addr,
    attempt: Option<Attempt>,
}

/// How long the first join's wait looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);

impl Rejoining {
    pub fn new(options: JoinOptions, bind: Ipv4Addr, seed: u64) -> Rejoining {
        Rejoining { rule: Rejoin::new(Instant::now(), seed), options, bind, attempt: None }
    }

    /// When the next attempt is due (None while joined or attempting).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.rule.poll_timeout()
    }

    fn join(&self) -> (Result<Joined, SpeakerError>, Readers, Receiver<Datagram>) {
        let (readers, datagrams) = Readers::new();
        (join::join(&self.options, self.bind, readers.sender()), readers, datagrams)
    }

    /// The first session, before anything plays (its welcome says how
    /// many channels the output has): tried as a rejoin is, in this
    /// thread. None when stopped first.
    pub fn first_join(&mut self, stop: &AtomicBool) -> Result<Option<NewSession>, SpeakerError> {
        while !stop.load(Ordering::Relaxed) {
            if !self.rule.poll(Instant::now()) {
                let wait = self.rule.poll_timeout().map_or(STOP_POLL, |due| due.saturating_duration_since(Instant::now()));
                std::thread::sleep(wait.min(STOP_POLL));
                continue;
            }
            let (result, readers, datagrams) = self.join();
            let now = Instant::now();
            match result {
                Ok(joined) => {
                    self.rule.joined(now);
                    return Ok(Some(NewSession { joined, readers, datagrams }));
                }
                Err(e) => match self.rule.ended(now, rejoin::cause(&e)) {
                    Next::Stop(_) => return Err(e),
                    Next::RetryIn(d) => eprintln!("loa speaker: cannot join loa yet ({e}); trying again in {:.1} s", d.as_secs_f64()),
                },
            }
        }
        Ok(None)
    }

    fn start_attempt(&mut self) -> Result<(), SpeakerError> {
        let (readers, datagrams) = Readers::new();
        let sender = readers.sender();
        let (tx, result) = mpsc::channel();
        let (options, bind) = (self.options.clone(), self.bind);
        // Not joined on stop: it ends by itself within the join's
        // timeouts, and what it made is dropped with its channel.
        std::thread::Builder::new()
            .name("speaker-rejoin".into())
            .spawn(move || {
                let _ = tx.send(join::join(&options, bind, sender));
            })
            .map_err(SpeakerError::Thread)?;
        self.attempt = Some(Attempt { result, readers, datagrams });
        Ok(())
    }
}

/// What the stats line counted in the sessions that ended (each
/// session's gates start from zero).
#[derive(Debug, Default)]
pub(super) struct Earlier {
    rejected: Rejected,
    pub not_played: u64,
}

impl Earlier {
    pub fn rejected(&self, zones: &JoinedZones) -> Rejected {
        let (a, b) = (self.rejected, zones.rejected());
        Rejected {
            bad_auth: a.bad_auth + b.bad_auth,
            replay: a.replay + b.replay,
            unknown_ssrc: a.unknown_ssrc + b.unknown_ssrc,
            malformed: a.malformed + b.malformed,
        }
    }
}

impl Speaker {
    /// A session begins (the first, or a rejoin): its zones' gates, its
    /// socket's reader, its groups, its uplink key and keepalive period
    /// replace the previous session's.
    pub(super) fn begin_session(&mut self, new: NewSession, now: Instant, again: bool) -> Result<(), SpeakerError> {
        let NewSession { mut joined, readers, datagrams } = new;
        self.end_session();
        self.readers = readers;
        self.datagrams = datagrams;
        // `--tls-only`: nothing is read by UDP.
        if joined.udp {
            self.readers.spawn(joined.socket.try_clone().map_err(SpeakerError::Thread)?, Channel::Rtp).map_err(SpeakerError::Thread)?;
        }
        if let Some(old) = self.zones.take() {
            self.earlier.rejected = self.earlier.rejected(&old);
            self.earlier.not_played += old.not_played;
        }
        self.zones = Some(JoinedZones::new(joined.zones.clone()));
        let multicast = self.rejoining.as_ref().and_then(|r| r.options.multicast);
        if let Some(interface) = multicast {
            self.groups = Some(Groups::new(interface));
            self.follow_groups()?;
        }
        let bind = joined.socket.local_addr().map_or(Ipv4Addr::UNSPECIFIED, |a| match a.ip() {
            std::net::IpAddr::V4(ip) => ip,
            std::net::IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        });
        // Keepalives leave from the socket the audio comes to: they open
        // the NAT mapping it comes back through.
        self.report_socket = joined.socket.try_clone().map_err(|source| SpeakerError::ReportSocket { bind, source })?;
        self.cname = super::cname_of(&self.report_socket, bind);
        self.ssrc = joined.uplink_ssrc;
        self.rtcp_to = Some(joined.daemon_udp);
        self.uplink = joined.uplink.take();
        self.tls_uplink = joined.tls_uplink.take();
        self.control = Some(std::mem::replace(&mut joined.control, mpsc::channel().1));
        self.timer = super::ReportTimer::new(now, joined.keepalive, self.rng.random());
        let names: Vec<&str> = joined.zones.iter().map(|z| z.name.as_str()).collect();
        let how = match (self.groups.is_some(), joined.udp) {
            (true, _) => "multicast",
            (false, true) => "unicast",
            (false, false) => "TLS only (no UDP)",
        };
        let to = if joined.udp { joined.daemon_udp.to_string() } else { "loa inside TLS".into() };
        eprintln!(
            "loa speaker: {} loa for zone(s) {} by {how}; keepalives to {to} every {} ms",
            if again { "rejoined" } else { "joined" },
            names.join(", "),
            joined.keepalive.as_millis()
        );
        self.session = Some(joined);
        // The first keepalive at once: it binds the unicast.
        self.send_report(now);
        Ok(())
    }

    /// The session's TLS thread, sockets and keys let go; reports wait
    /// for the next session. The zones stay until then (their counts).
    fn end_session(&mut self) {
        self.session = None;
        self.control = None;
        self.tls_uplink = None;
        self.uplink = None;
        self.rtcp_to = None;
        self.groups = None;
        (self.readers, self.datagrams) = Readers::new();
    }

    /// The session ended, or a rejoin failed, with `error`: rejoin when
    /// the rule says, or stop with it.
    pub(super) fn session_lost(&mut self, error: SpeakerError, now: Instant) -> Result<(), SpeakerError> {
        let was_joined = self.session.is_some();
        self.end_session();
        let Some(rejoining) = self.rejoining.as_mut() else { return Err(error) };
        match rejoining.rule.ended(now, rejoin::cause(&error)) {
            Next::Stop(_) => Err(error),
            Next::RetryIn(d) => {
                let what = if was_joined { "session lost" } else { "rejoin failed" };
                eprintln!("loa speaker: {what} ({error}); rejoining in {:.1} s", d.as_secs_f64());
                Ok(())
            }
        }
    }

    /// Joined without a session: starts the attempt when due, takes its
    /// result when it came.
    pub(super) fn follow_rejoin(&mut self, now: Instant) -> Result<(), SpeakerError> {
        let Some(rejoining) = self.rejoining.as_mut() else { return Ok(()) };
        let Some(attempt) = &rejoining.attempt else {
            if self.session.is_none() && rejoining.rule.poll(now) {
                rejoining.start_attempt()?;
            }
            return Ok(());
        };
        let result = match attempt.result.try_recv() {
            Ok(result) => result,
            Err(TryRecvError::Empty) => return Ok(()),
            Err(TryRecvError::Disconnected) => Err(SpeakerError::JoinFailed("the join attempt ended without an answer".into())),
        };
        let Attempt { readers, datagrams, .. } = rejoining.attempt.take().expect("looked at above");
        match result {
            Ok(joined) => {
                rejoining.rule.joined(now);
                self.begin_session(NewSession { joined, readers, datagrams }, now, true)
            }
            Err(e) => self.session_lost(e, now),
        }
    }

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

    /// Joined: what the TLS connection said since the last look; the
    /// session's end, if it came.
    pub(super) fn follow_control(&mut self) -> Result<Option<SpeakerError>, SpeakerError> {
        let Some(control) = &self.control else { return Ok(None) };
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
                Control::Ended(reason) => return Ok(Some(rejoin::session_end(reason))),
            }
        }
        // At once: the keepalive inside TLS is what shows it online.
        if report_now {
            self.send_report(Instant::now());
        }
        self.follow_downstream(Instant::now());
        Ok(None)
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
