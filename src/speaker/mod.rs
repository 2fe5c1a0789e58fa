//! `loa speaker`: the reference IP loudspeaker. Joins a zone's group (or
//! listens unicast), plays the Opus/RTP stream through a jitter buffer with
//! FEC recovery and concealment into a WAV file or stdout, and reports back
//! with RTCP Receiver Reports + SDES CNAME, as vendor speakers should.
//!
//! The parts that decide are sans-IO: `jitter` (what each tick plays),
//! `stats` (RFC 3550 A.1/A.3/A.8 numbers), `report` (when to report),
//! `sdp` (what to play). This file is the blocking shell: reader threads
//! timestamp datagrams, one loop feeds them in and runs the output clock.
//!
//! Must not touch: the daemon, the config file (a speaker only needs an SDP
//! or a group).

mod decode;
mod downstream;
// `gate` and `join` are public for examples/unicast_speakers (`make bench`:
// many joined speakers in one process, each joining and verifying exactly
// as `loa speaker --join` does).
pub mod gate;
mod jitter;
pub mod join;
mod joined;
mod net;
mod output;
mod rejoin;
mod report;
mod sdp;
mod stats;
mod summary;
mod zones;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::rtp::rtcp::{self, RtcpPacket};
use decode::{FrameDecoder, Produced};
use gate::Gate;
pub use gate::Rejected;
use jitter::{Arrival, JitterBuffer, Playout};
pub use net::Datagram;
use net::{Channel, Groups, Readers};
use output::Output;
use report::ReportTimer;
use stats::ReceiverStats;

pub use output::OutputTarget;
pub use report::MIN_INTERVAL as RTCP_MIN_INTERVAL;
pub use join::JoinOptions;
pub use joined::Arrived;
pub use summary::SpeakerStats;
pub use sdp::{SdpError, SdpStream};

/// Default jitter buffer target.
pub const DEFAULT_JITTER: Duration = Duration::from_millis(60);

/// What `loa speaker` was asked to do.
#[derive(Debug, Clone)]
pub struct SpeakerOptions {
    /// Session description naming group, port, payload type and stereo.
    pub sdp: Option<PathBuf>,
    /// Multicast group and RTP port (overrides the SDP's).
    pub group: Option<SocketAddrV4>,
    /// Interface address to join on; unspecified lets the kernel choose.
    pub interface: Option<Ipv4Addr>,
    /// Also (or only) take RTP sent unicast to this address.
    pub listen: Option<SocketAddrV4>,
    /// Source address of reports (default: the interface address).
    pub bind: Option<Ipv4Addr>,
    /// Send reports here, unicast, instead of the group's RTCP port.
    pub rtcp_to: Option<SocketAddrV4>,
    pub jitter: Duration,
    /// 1 or 2; default from the SDP's sprop-stereo, else mono.
    pub channels: Option<u8>,
    pub out: OutputTarget,
    /// RTCP Tmin (RFC 3550 §6.2: 5 s); shorter only for tests.
    pub rtcp_interval: Duration,
    /// Share of incoming RTP packets to discard, in percent (lossy link).
    pub drop_pct: f64,
    /// Seed for the drop simulation, SSRC and report timing.
    pub seed: Option<u64>,
    /// Print the stats line every 10 s.
    pub verbose: bool,
    /// Join loa as an enrolled speaker instead (`--join`, `--credential`).
    pub join: Option<JoinOptions>,
}

impl Default for SpeakerOptions {
    fn default() -> Self {
        SpeakerOptions {
            sdp: None,
            group: None,
            interface: None,
            listen: None,
            bind: None,
            rtcp_to: None,
            jitter: DEFAULT_JITTER,
            channels: None,
            out: OutputTarget::Discard,
            rtcp_interval: RTCP_MIN_INTERVAL,
            drop_pct: 0.0,
            seed: None,
            verbose: false,
            join: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    #[error("cannot read SDP file {path}: {source}")]
    ReadSdp {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bad SDP file {path}: {source}")]
    Sdp {
        path: PathBuf,
        #[source]
        source: SdpError,
    },
    #[error("bad a=crypto line in {path}: {source}")]
    Crypto {
        path: PathBuf,
        source: crate::rtp::srtp::CryptoAttributeError,
    },
    #[error("nothing to play: give --sdp FILE, --group ADDR:PORT or --listen IP:PORT")]
    NoStream,
    #[error("cannot join group {group} on interface {interface}: {source}")]
    Join {
        group: SocketAddrV4,
        interface: Ipv4Addr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddrV4,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot send RTCP from {bind}: {source} (is the address configured on this machine?)")]
    ReportSocket {
        bind: Ipv4Addr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start a socket reader thread: {0}")]
    Thread(#[source] std::io::Error),
    /// loa refused the join; its reason, in its words.
    #[error("loa refused this speaker: {0}")]
    Refused(String),
    /// The join could not be made, or the session ended (loa stopped, the
    /// connection broke): why. Rejoined (`rejoin`).
    #[error("{0}")]
    JoinFailed(String),
    /// The credential file cannot be read or is not a credential.
    #[error("{0}")]
    Credential(String),
    /// loa's certificate is not the one the credential pins.
    #[error("{0}")]
    WrongDaemon(String),
    #[error(transparent)]
    Decoder(#[from] decode::DecoderError),
    #[error(transparent)]
    Output(#[from] output::OutputError),
}

impl SpeakerError {
    /// The process's exit status: 3 loa refused this credential (unknown,
    /// revoked), 4 loa's identity is not the pinned one, 5 the credential
    /// file is unreadable or malformed, 1 anything else.
    pub fn exit_status(&self) -> u8 {
        match rejoin::cause(self) {
            rejoin::Cause::Final(stop) => stop.exit_status(),
            rejoin::Cause::Lost | rejoin::Cause::Held => 1,
        }
    }
}

/// The stream after reading the SDP and the flags.
#[derive(Debug, Clone)]
struct Plan {
    group: Option<SocketAddrV4>,
    interface: Ipv4Addr,
    payload_type: Option<u8>,
    channels: usize,
    rtcp_port: Option<u16>,
    /// An SRTP stream's keys (`RTP/SAVP` with `a=crypto`).
    crypto: Option<crate::rtp::srtp::CryptoAttribute>,
}

fn plan(options: &SpeakerOptions) -> Result<Plan, SpeakerError> {
    let sdp = match &options.sdp {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| SpeakerError::ReadSdp {
                path: path.clone(),
                source,
            })?;
            Some(sdp::parse(&text).map_err(|source| SpeakerError::Sdp {
                path: path.clone(),
                source,
            })?)
        }
        None => None,
    };
    let group = options.group.or(sdp.as_ref().map(|s| s.group));
    if group.is_none() && options.listen.is_none() {
        return Err(SpeakerError::NoStream);
    }
    let rtcp_port = match (&sdp, options.group) {
        (Some(s), None) => Some(s.rtcp_port),
        _ => group.map(|g| g.port().wrapping_add(1)),
    };
    let stereo = sdp.as_ref().is_some_and(|s| s.stereo);
    let crypto = match (sdp.as_ref().and_then(|s| s.crypto.as_deref()), &options.sdp) {
        (Some(line), Some(path)) => Some(
            crate::rtp::srtp::CryptoAttribute::parse(line)
                .map_err(|source| SpeakerError::Crypto { path: path.clone(), source })?,
        ),
        _ => None,
    };
    Ok(Plan {
        crypto,
        group,
        interface: options.interface.unwrap_or(Ipv4Addr::UNSPECIFIED),
        payload_type: sdp.as_ref().map(|s| s.payload_type),
        channels: match options.channels {
            Some(n) => usize::from(n),
            None if stereo => 2,
            None => 1,
        },
        rtcp_port,
    })
}

/// Plays until `stop` is set (SIGINT/SIGTERM in `main`), then sends BYE,
/// finalises the output and returns what happened. Joined (`--join`): a
/// session that ends is rejoined by `rejoin`'s rule while the output plays
/// on; it returns only when stopped or for what a rejoin cannot fix.
pub fn run(options: SpeakerOptions, stop: Arc<AtomicBool>) -> Result<SpeakerStats, SpeakerError> {
    let seed = options.seed.unwrap_or_else(rand::random);
    let mut rng = SmallRng::seed_from_u64(seed);
    let bind_join = options.bind.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let mut rejoining = options.join.clone().map(|join| joined::Rejoining::new(join, bind_join, rng.random()));
    // The first session sets the output's channels: nothing plays before.
    let first = match rejoining.as_mut() {
        Some(r) => match r.first_join(&stop)? {
            Some(first) => Some(first),
            None => return Ok(SpeakerStats::default()),
        },
        None => None,
    };
    let plan = match &first {
        // Each zone's keys and payload type are in `zones`.
        Some(first) => Plan {
            group: None,
            interface: Ipv4Addr::UNSPECIFIED,
            payload_type: None,
            channels: usize::from(options.channels.unwrap_or(first.joined.channels)),
            rtcp_port: None,
            crypto: None,
        },
        None => plan(&options)?,
    };
    let (mut readers, datagrams) = Readers::new();
    if let Some(group) = plan.group {
        let socket = net::listener(group, plan.interface).map_err(|source| SpeakerError::Join {
            group,
            interface: plan.interface,
            source,
        })?;
        readers
            .spawn(socket, Channel::Rtp)
            .map_err(SpeakerError::Thread)?;
        if let Some(port) = plan.rtcp_port {
            // Sender Reports (for LSR/DLSR) and BYE arrive on the RTCP port.
            let addr = SocketAddrV4::new(*group.ip(), port);
            let socket =
                net::listener(addr, plan.interface).map_err(|source| SpeakerError::Join {
                    group: addr,
                    interface: plan.interface,
                    source,
                })?;
            readers
                .spawn(socket, Channel::Rtcp)
                .map_err(SpeakerError::Thread)?;
        }
    }
    if let Some(addr) = options.listen {
        let socket = net::listener(addr, plan.interface)
            .map_err(|source| SpeakerError::Listen { addr, source })?;
        readers
            .spawn(socket, Channel::Rtp)
            .map_err(SpeakerError::Thread)?;
    }
    let bind = options.bind.unwrap_or(plan.interface);
    let report_socket = match &first {
        // Replaced by each session's own (`begin_session`).
        Some(first) => first.joined.socket.try_clone().map_err(|source| SpeakerError::ReportSocket { bind, source })?,
        None => net::report_socket(bind, plan.interface).map_err(|source| SpeakerError::ReportSocket { bind, source })?,
    };
    let cname = cname_of(&report_socket, bind);
    let output = Output::open(&options.out, plan.channels as u16)?;
    let decoder = FrameDecoder::new(plan.channels, 960)?;

    let now = Instant::now();
    let report_ssrc = rng.random();
    let gate = plan.crypto.clone().map(Gate::new);
    // From an SDP with keys: reports are SRTCP under the zone's keys,
    // following the key the zone's packets use. Joined: the session's
    // uplink key (`begin_session`).
    let uplink = gate.as_ref().and_then(|g| g.report_sender(report_ssrc));
    let mut speaker = Speaker {
        zones: None,
        groups: None,
        readers,
        datagrams,
        arrived: Arrived::default(),
        gate,
        buffer: JitterBuffer::new(options.jitter),
        decoder,
        channels: plan.channels,
        output,
        source: None,
        stats: SpeakerStats::default(),
        lost_before: 0,
        payload_type: plan.payload_type,
        drop_fraction: (options.drop_pct / 100.0).clamp(0.0, 1.0),
        ssrc: report_ssrc,
        rtcp_to: options.rtcp_to.map(SocketAddr::V4).or_else(|| {
            Some(SocketAddr::V4(SocketAddrV4::new(
                *plan.group?.ip(),
                plan.rtcp_port?,
            )))
        }),
        rtcp_from_rtp_sender: options.listen.map(|l| l.port().wrapping_add(1)),
        report_socket,
        cname,
        timer: ReportTimer::new(now, options.rtcp_interval, rng.random()),
        rtcp_mux: first.is_some(),
        uplink_follows_zone: first.is_none(),
        uplink,
        tls_uplink: None,
        control: None,
        session: None,
        rejoining,
        earlier: Default::default(),
        rng,
        packet: Vec::new(),
    };
    match &options.join {
        // Where it listens and reports from comes with each session (the
        // `joined loa for zone(s) …` line).
        Some(join) => eprintln!(
            "loa speaker: joining loa at {}, {} channel(s), jitter buffer {} ms",
            join.daemon,
            plan.channels,
            options.jitter.as_millis(),
        ),
        None => eprintln!(
            "loa speaker: listening on {}{} (interface {}), {} channel(s), jitter buffer {} ms, reports from {} as {}",
            plan.group.map(|g| g.to_string()).unwrap_or_default(),
            options.listen.map(|l| format!(" unicast {l}")).unwrap_or_default(),
            plan.interface,
            plan.channels,
            options.jitter.as_millis(),
            bind,
            speaker.cname,
        ),
    }
    let result = match first {
        Some(first) => speaker.begin_session(first, now, false).and_then(|()| speaker.run_loop(&stop, options.verbose)),
        None => speaker.run_loop(&stop, options.verbose),
    };
    speaker.send_bye();
    let Speaker { output, readers, session, .. } = speaker;
    drop(readers);
    drop(session);
    let finished = output.finish();
    let stats = result?;
    finished?;
    Ok(stats)
}

/// The CNAME of reports: the address they leave from.
fn cname_of(report_socket: &UdpSocket, bind: Ipv4Addr) -> String {
    format!("loa-speaker@{}", report_socket.local_addr().map(|a| a.ip()).unwrap_or(bind.into()))
}

/// How long the loop may block waiting for datagrams, so the stop flag is
/// seen promptly.
const MAX_WAIT: Duration = Duration::from_millis(50);
const FLUSH_EVERY: Duration = Duration::from_secs(1);
const PRINT_EVERY: Duration = Duration::from_secs(10);

struct Speaker {
    /// Joined: every granted zone behind its own gate, and which plays.
    zones: Option<zones::JoinedZones>,
    /// Joined with `--multicast-interface`: the groups it is in.
    groups: Option<Groups>,
    /// The threads reading this session's sockets (joined: replaced with
    /// each session), and their queue.
    readers: Readers,
    datagrams: std::sync::mpsc::Receiver<Datagram>,
    arrived: Arrived,
    buffer: JitterBuffer,
    decoder: FrameDecoder,
    /// Interleaved channels of the decoded audio.
    channels: usize,
    output: Output,
    /// Statistics of the source being played.
    source: Option<ReceiverStats>,
    stats: SpeakerStats,
    /// SRTP: every datagram is verified here first.
    gate: Option<Gate>,
    /// Losses of sources played before the current one.
    lost_before: u64,
    payload_type: Option<u8>,
    drop_fraction: f64,
    /// Our own SSRC as a report sender.
    ssrc: u32,
    rtcp_to: Option<SocketAddr>,
    /// Unicast only: reports go to the RTP sender's address on this port.
    rtcp_from_rtp_sender: Option<u16>,
    report_socket: UdpSocket,
    cname: String,
    timer: ReportTimer,
    rng: SmallRng,
    packet: Vec<u8>,
    /// Joined: RTP and RTCP share the one socket (RFC 5761).
    rtcp_mux: bool,
    /// Reports are SRTCP under this sender: the session's uplink key
    /// (joined) or the zone's keys (an SDP with `a=crypto`).
    uplink: Option<crate::rtp::srtp::SrtpSender>,
    /// The uplink uses the zone's keys: it switches when the zone does.
    uplink_follows_zone: bool,
    /// Joined: key changes and the session's end.
    control: Option<std::sync::mpsc::Receiver<join::Control>>,
    /// Joined: keepalives inside TLS while the audio comes that way.
    tls_uplink: Option<join::TlsUplink>,
    /// Joined: the session under way (dropping it ends its TLS thread).
    session: Option<join::Joined>,
    /// Joined: when to try loa again, and the attempt under way.
    rejoining: Option<joined::Rejoining>,
    /// Joined: what the stats line counted in sessions that ended.
    earlier: joined::Earlier,
}

impl Speaker {
    fn run_loop(&mut self, stop: &AtomicBool, verbose: bool) -> Result<SpeakerStats, SpeakerError> {
        let start = Instant::now();
        let mut next_flush = start + FLUSH_EVERY;
        let mut next_print = start + PRINT_EVERY;
        while !stop.load(Ordering::Relaxed) {
            if let Some(ended) = self.follow_control()? {
                self.session_lost(ended, Instant::now())?;
            }
            self.follow_rejoin(Instant::now())?;
            let now = Instant::now();
            let mut deadline = (now + MAX_WAIT).min(self.timer.poll_timeout());
            for due in [self.buffer.poll_timeout(), self.rejoining.as_ref().and_then(|r| r.poll_timeout())].into_iter().flatten() {
                deadline = deadline.min(due);
            }
            match self.datagrams.recv_timeout(deadline.saturating_duration_since(now)) {
                Ok(datagram) => {
                    // What the TLS connection said meanwhile first: a zone
                    // granted anew by a reload must be in place before its
                    // first packet is verified (the wait above can be
                    // MAX_WAIT long, a program's first packet sooner).
                    if let Some(ended) = self.follow_control()? {
                        self.session_lost(ended, Instant::now())?;
                    }
                    self.handle(datagram);
                    // Take what else is waiting before playing, so a
                    // packet that came just in time is not counted late.
                    while let Ok(datagram) = self.datagrams.try_recv() {
                        self.handle(datagram);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let now = Instant::now();
            while let Some(playout) = self.buffer.pop(now) {
                self.play(playout)?;
            }
            if self.timer.poll(now) {
                self.send_report(now);
            }
            if now >= next_flush {
                self.output.flush()?;
                next_flush = now + FLUSH_EVERY;
            }
            if verbose && now >= next_print {
                eprintln!("loa speaker: {}", self.snapshot());
                next_print = now + PRINT_EVERY;
            }
        }
        Ok(self.snapshot())
    }

    fn snapshot(&self) -> SpeakerStats {
        let counters = self.buffer.counters();
        let mut stats = self.stats.clone();
        stats.late = counters.late;
        stats.duplicates = counters.duplicates;
        stats.ssrc_changes = counters.ssrc_changes;
        stats.lost = self.lost_before
            + self
                .source
                .as_ref()
                .map_or(0, |s| s.cumulative_lost().max(0) as u64);
        stats.jitter = self
            .source
            .as_ref()
            .map_or(Duration::ZERO, |s| s.jitter_duration());
        stats.ssrc = self.buffer.ssrc();
        stats.rejected = self.zones.as_ref().map(|z| self.earlier.rejected(z)).or(self.gate.as_ref().map(|g| g.rejected));
        stats.arrived = self.zones.as_ref().map(|z| Arrived { not_played: self.earlier.not_played + z.not_played, ..self.arrived });
        stats
    }

    fn handle(&mut self, mut datagram: Datagram) {
        if self.rtcp_mux && crate::rtp::srtp::is_rtcp(&datagram.data) {
            datagram.channel = Channel::Rtcp;
        }
        if self.zones.is_some() {
            if !self.open_joined(&mut datagram) {
                return;
            }
        } else if let Some(gate) = self.gate.as_mut() {
            // Only what verifies goes on; the rest is counted, nothing else.
            let rtcp = datagram.channel == Channel::Rtcp;
            match gate.open(&mut datagram.data, rtcp, datagram.arrival) {
                Some(len) => datagram.data.truncate(len),
                None => return,
            }
        }
        match datagram.channel {
            Channel::Rtp => self.handle_rtp(&datagram),
            Channel::Rtcp => self.handle_rtcp(&datagram),
        }
    }

    fn handle_rtp(&mut self, datagram: &Datagram) {
        if self.drop_fraction > 0.0 && self.rng.random::<f64>() < self.drop_fraction {
            self.stats.dropped += 1;
            return;
        }
        let Ok(rtp) = rtp_rs::RtpReader::new(&datagram.data) else {
            self.stats.ignored += 1;
            return;
        };
        let payload = rtp.payload();
        let payload_type_ok = match self.payload_type {
            Some(pt) => rtp.payload_type() == pt,
            // Without an SDP: any dynamic type (RFC 3551 §6), as loa uses.
            None => (96..=127).contains(&rtp.payload_type()),
        };
        let Some(frame_samples) = payload_type_ok
            .then(|| decode::packet_samples(payload))
            .flatten()
        else {
            self.stats.ignored += 1;
            return;
        };
        let (seq, timestamp, ssrc) = (
            u16::from(rtp.sequence_number()),
            rtp.timestamp(),
            rtp.ssrc(),
        );
        let before = self.buffer.ssrc();
        let arrival = self
            .buffer
            .push(datagram.arrival, seq, timestamp, rtp.mark(), ssrc, payload);
        if arrival == Arrival::Probation {
            return;
        }
        if before != Some(ssrc) {
            // A new source: its frame duration sets the output clock, and
            // its statistics start afresh.
            self.buffer.set_frame_samples(frame_samples as u32);
            self.decoder.set_frame_samples(frame_samples);
            if let Some(old) = self.source.take() {
                self.lost_before += old.cumulative_lost().max(0) as u64;
            }
            self.source = Some(ReceiverStats::new(ssrc, seq, datagram.arrival));
        }
        if let Some(source) = self.source.as_mut() {
            if source.on_packet(datagram.arrival, seq, timestamp) {
                self.stats.received += 1;
            }
        }
        if let Some(port) = self.rtcp_from_rtp_sender {
            if self.rtcp_to.is_none() {
                self.rtcp_to = Some(SocketAddr::new(datagram.from.ip(), port));
            }
        }
    }

    fn handle_rtcp(&mut self, datagram: &Datagram) {
        // Our own reports loop back here too; they parse and are ignored.
        let Ok(packets) = rtcp::parse_compound(&datagram.data) else {
            return;
        };
        let Some(source) = self.source.as_mut() else {
            return;
        };
        for packet in packets {
            match packet {
                RtcpPacket::SenderReport { ssrc, info, .. } if ssrc == source.ssrc() => {
                    source.on_sender_report(datagram.arrival, info.ntp_time);
                }
                RtcpPacket::Bye { ssrcs, reason } if ssrcs.contains(&source.ssrc()) => {
                    tracing::info!(
                        ssrc = source.ssrc(),
                        reason = reason.as_deref().unwrap_or(""),
                        "sender said bye"
                    );
                }
                _ => {}
            }
        }
    }

    fn play(&mut self, playout: Playout) -> Result<(), SpeakerError> {
        let (produced, pcm) = match &playout {
            Playout::Packet(payload) => self.decoder.packet(payload),
            Playout::Lost { next } => self.decoder.lost(next.as_deref()),
            Playout::Idle => self.decoder.silence(),
        };
        match produced {
            Produced::Recovered => self.stats.recovered += 1,
            Produced::Concealed | Produced::Corrupt => self.stats.concealed += 1,
            Produced::Decoded | Produced::Silence => {}
        }
        let samples = pcm.len() / self.channels;
        self.output.write(pcm)?;
        self.stats.frames += 1;
        self.stats.played += Duration::from_nanos(samples as u64 * 1_000_000_000 / 48_000);
        Ok(())
    }
}

#[cfg(test)]
mod tests;

/// The receive path without sockets, for the fuzzer (`fuzz/`). Not API.
#[doc(hidden)]
pub mod fuzzing;
