//! Per-zone RTP sender session (sans-IO): owns the SSRC, sequence numbers,
//! the media-clock → RTP timestamp mapping, packet/octet counts and the
//! RTCP report schedule (RFC 3550 §6.2–6.3, Appendix A.7).
//!
//! Time comes in as arguments (`now`, `wall`) and randomness as a seed, so
//! tests drive it with made-up clocks. Must not touch: sockets, clocks,
//! Opus bytes (the payload is opaque here).
//!
//! Surface, as the pacer uses it:
//! - `handle_frame(now, media_samples, frame_samples, payload, out)` writes
//!   one RTP packet into a reused buffer;
//! - `poll_timeout()` says when to call `poll_rtcp(now, wall, out)`, which
//!   writes SR (or RR) + SDES CNAME when a report is due;
//! - `bye(now, wall, reason, out)` writes the farewell compound.

use std::time::{Duration, Instant, SystemTime};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rtp_rs::{RtpPacketBuilder, Seq};

use super::rtcp::{self, ReportTemplate, SenderInfo};
use super::CLOCK_RATE;

/// What the caller draws once per zone: RFC 3550 §5.1 wants the SSRC and
/// the initial sequence number and timestamp random, so the caller picks
/// them (and a test can pin them).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    pub ssrc: u32,
    pub initial_seq: u16,
    pub initial_timestamp: u32,
    /// Dynamic payload type, 96–127 (RFC 3551 §6).
    pub payload_type: u8,
    /// SDES CNAME (RFC 3550 §6.5.1), e.g. `loa@192.0.2.10`.
    pub cname: String,
    /// Session bandwidth (payload + headers) for the RTCP interval (§6.2).
    pub session_bandwidth_bps: u32,
    /// Seed for the RTCP interval randomisation (§6.3.1).
    pub rng_seed: u64,
}

/// Minimum RTCP report interval Tmin (§6.2).
const RTCP_MIN_INTERVAL: f64 = 5.0;
/// Fraction of the session bandwidth given to RTCP (§6.2).
const RTCP_BANDWIDTH_FRACTION: f64 = 0.05;
/// Share of the RTCP bandwidth for senders when they are few (§6.2).
const RTCP_SENDER_BANDWIDTH_FRACTION: f64 = 0.25;
/// "To compensate for 'timer reconsideration' converging to a value below
/// the intended average" (A.7): e − 3/2. With reconsideration in
/// `poll_rtcp`, the mean interval comes out at exactly Td.
const COMPENSATION: f64 = std::f64::consts::E - 1.5;
/// Octets of UDP + IPv4 header counted into the average RTCP size (§6.3.1).
const UDP_IP_OVERHEAD: f64 = 28.0;
/// Ceiling for one interval, so absurd inputs cannot overflow an `Instant`.
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// RFC 3550 Appendix A.7 `rtcp_interval`, in seconds. `rtcp_bw` is in
/// octets per second, `avg_rtcp_size` in octets including UDP/IP headers.
/// `random_factor` is the uniform draw from [0.5, 1.5] (§6.3.1), passed in
/// so the function is pure. A bandwidth that is not positive yields Tmin
/// rather than an infinite interval.
pub(crate) fn rtcp_interval(
    members: u32,
    senders: u32,
    rtcp_bw: f64,
    we_sent: bool,
    avg_rtcp_size: f64,
    initial: bool,
    random_factor: f64,
) -> f64 {
    // "The very first call at application start-up uses half the minimum
    // delay for quicker notification" (A.7, §6.2).
    let min_time = if initial {
        RTCP_MIN_INTERVAL / 2.0
    } else {
        RTCP_MIN_INTERVAL
    };
    let mut n = f64::from(members.max(1));
    let mut bw = rtcp_bw;
    // Senders share a quarter of the RTCP bandwidth when they are at most a
    // quarter of the members, so a new receiver hears the CNAMEs soon (§6.2).
    if f64::from(senders) <= f64::from(members) * RTCP_SENDER_BANDWIDTH_FRACTION {
        if we_sent {
            bw *= RTCP_SENDER_BANDWIDTH_FRACTION;
            n = f64::from(senders.max(1));
        } else {
            bw *= 1.0 - RTCP_SENDER_BANDWIDTH_FRACTION;
            n = f64::from(members.saturating_sub(senders).max(1));
        }
    }
    let t = if bw > 0.0 {
        (avg_rtcp_size * n / bw).max(min_time)
    } else {
        min_time
    };
    t * random_factor / COMPENSATION
}

#[derive(Debug)]
pub struct Session {
    cfg: SessionConfig,
    /// Media time zero: `media_samples` and the SR's RTP timestamp count
    /// from here.
    epoch: Instant,
    next_seq: u16,
    /// Media time (samples since epoch) where the last packet's frame ended;
    /// a frame starting anywhere else follows a gap.
    expected_media: Option<u64>,
    packets_sent: u32,
    octets_sent: u32,
    last_rtp_sent: Option<Instant>,
    receivers: u32,
    rng: SmallRng,
    /// §6.3.3 running average of compound sizes, UDP/IP included.
    avg_rtcp_size: f64,
    /// tn: when the next report is due (§6.3).
    next_rtcp: Instant,
    /// tp: when the last report went out (the epoch before the first).
    last_report: Instant,
    /// The report before `last_report`; "we_sent" looks back to it (§6.4).
    report_before_last: Instant,
    /// No report sent yet: Tmin is halved (§6.2).
    initial: bool,
    /// BYE sent: no more reports (§6.3.7).
    left: bool,
    /// The report's bytes, built once: `poll_rtcp` runs on the pacer
    /// thread, which must not allocate.
    report: ReportTemplate,
}

impl Session {
    /// A session whose media time zero is `epoch`. The first report is
    /// scheduled at once, half the minimum interval out (§6.2).
    pub fn new(cfg: SessionConfig, epoch: Instant) -> Session {
        // A PT above 127 would spill into the marker bit; config validation
        // keeps it in 96–127.
        assert!(
            cfg.payload_type <= 127,
            "rtp payload type {} is not 7-bit",
            cfg.payload_type
        );
        // §6.3.2: start from the probable size of the first report; it will
        // be an SR if the zone starts playing at once.
        let avg_rtcp_size = rtcp::report_len(true, &cfg.cname) as f64 + UDP_IP_OVERHEAD;
        let mut session = Session {
            next_seq: cfg.initial_seq,
            expected_media: None,
            packets_sent: 0,
            octets_sent: 0,
            last_rtp_sent: None,
            receivers: 0,
            rng: SmallRng::seed_from_u64(cfg.rng_seed),
            avg_rtcp_size,
            next_rtcp: epoch,
            last_report: epoch,
            report_before_last: epoch,
            initial: true,
            left: false,
            report: ReportTemplate::new(cfg.ssrc, &cfg.cname),
            epoch,
            cfg,
        };
        session.next_rtcp = epoch + session.draw_interval();
        session
    }

    pub fn ssrc(&self) -> u32 {
        self.cfg.ssrc
    }

    /// RTP packets sent (the SR's sender's packet count, wraps).
    pub fn packets_sent(&self) -> u32 {
        self.packets_sent
    }

    /// Payload octets sent (the SR's sender's octet count, wraps).
    pub fn octets_sent(&self) -> u32 {
        self.octets_sent
    }

    /// Receivers heard from (future: counted from RTCP RRs); with our one
    /// sender they make up the member total for the RTCP interval.
    pub fn set_receivers(&mut self, receivers: u32) {
        self.receivers = receivers;
    }

    /// RTP timestamp for a media time in samples since the epoch: random
    /// offset plus media time, mod 2^32 (§5.1).
    fn rtp_timestamp(&self, media_samples: u64) -> u32 {
        self.cfg
            .initial_timestamp
            .wrapping_add(media_samples as u32)
    }

    /// Writes the RTP packet (RFC 3550 §5.1, RFC 7587 §4.2) for one frame
    /// into `out`, which is cleared and reused (no allocation once it has
    /// grown to a packet's size).
    ///
    /// `media_samples` is the 48 kHz sample count since the epoch at which
    /// the frame is due, so the timestamp follows the wall clock and an idle
    /// gap shows as a jump. `frame_samples` is this frame's duration: the
    /// next frame is contiguous iff it starts at `media_samples +
    /// frame_samples`. The marker bit is set on the first packet and on
    /// every packet that is not contiguous with the previous one — the
    /// first after a silence, as RFC 3551 §4.1 asks for audio.
    /// Seq increments by one per packet whatever the gap, so receivers see
    /// no loss.
    pub fn handle_frame(
        &mut self,
        now: Instant,
        media_samples: u64,
        frame_samples: u32,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) {
        let marker = self.expected_media != Some(media_samples);
        let builder = RtpPacketBuilder::new()
            .payload_type(self.cfg.payload_type)
            .ssrc(self.cfg.ssrc)
            .sequence(Seq::from(self.next_seq))
            .timestamp(self.rtp_timestamp(media_samples))
            .marked(marker)
            .payload(payload);
        out.clear();
        out.resize(builder.target_length(), 0);
        let len = builder.build_into_unchecked(out);
        out.truncate(len);

        self.next_seq = self.next_seq.wrapping_add(1);
        self.expected_media = Some(media_samples.wrapping_add(u64::from(frame_samples)));
        self.packets_sent = self.packets_sent.wrapping_add(1);
        // §6.4.1: the octet count is payload only, no header or padding.
        self.octets_sent = self.octets_sent.wrapping_add(payload.len() as u32);
        self.last_rtp_sent = Some(now);
    }

    /// The packet `handle_frame` just built reached no one (the interface
    /// address is gone, the send buffer is full). RFC 3550 §5.1 numbers the
    /// packets *sent*, so it gives back its sequence number and counts:
    /// receivers see no loss (their reports would blame the speakers for
    /// our outage), only a timestamp jump with the marker bit — a pause, as
    /// when a zone goes idle.
    pub fn withdraw_last(&mut self, media_samples: u64, payload_len: usize) {
        self.next_seq = self.next_seq.wrapping_sub(1);
        self.packets_sent = self.packets_sent.wrapping_sub(1);
        self.octets_sent = self.octets_sent.wrapping_sub(payload_len as u32);
        // Not what the next frame will carry: its packet gets the marker.
        self.expected_media = Some(media_samples);
    }

    /// Like `withdraw_last`, for a packet SRTP already protected: its
    /// sequence number stays spent, since protecting another payload under
    /// the same index would reuse the keystream (RFC 3711 §9.1), and the
    /// sender's context refuses it anyway. Receivers see one lost packet
    /// besides the pause.
    pub fn abandon_last(&mut self, media_samples: u64, payload_len: usize) {
        self.packets_sent = self.packets_sent.wrapping_sub(1);
        self.octets_sent = self.octets_sent.wrapping_sub(payload_len as u32);
        self.expected_media = Some(media_samples);
    }

    /// When `poll_rtcp` should next be called; `None` after `bye`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.left).then_some(self.next_rtcp)
    }

    /// If a report is due at `now`, writes SR (or an empty RR when we have
    /// not sent lately) + SDES CNAME into `out` and returns true.
    ///
    /// Applies timer reconsideration (§6.3.6): when the timer fires the
    /// interval is drawn afresh, and if the last report plus the new
    /// interval is still ahead, the timer moves there and nothing is sent.
    /// That is what the e − 3/2 compensation in the interval assumes; with it
    /// reports average 5 s for a lone sender.
    pub fn poll_rtcp(&mut self, now: Instant, wall: SystemTime, out: &mut Vec<u8>) -> bool {
        if self.left || now < self.next_rtcp {
            return false;
        }
        let reconsidered = self.last_report + self.draw_interval();
        if reconsidered > now {
            self.next_rtcp = reconsidered;
            return false;
        }
        let sender = self.we_sent().then(|| self.sender_info(now, wall));
        self.report.write(out, sender);
        // §6.3.3: avg_rtcp_size = 1/16 * packet_size + 15/16 * avg_rtcp_size.
        self.avg_rtcp_size =
            (out.len() as f64 + UDP_IP_OVERHEAD) / 16.0 + self.avg_rtcp_size * 15.0 / 16.0;
        self.initial = false;
        self.report_before_last = self.last_report;
        self.last_report = now;
        self.next_rtcp = now + self.draw_interval();
        true
    }

    /// Writes SR (or RR) + SDES + BYE into `out` (§6.1, §6.6) and stops
    /// reporting. Sent at once: the BYE back-off of §6.3.7 guards against
    /// many members leaving together, while a zone has one sender and the
    /// daemon must exit promptly on SIGTERM. An empty reason is sent as none.
    pub fn bye(&mut self, now: Instant, wall: SystemTime, reason: Option<&str>, out: &mut Vec<u8>) {
        let sender = self.we_sent().then(|| self.sender_info(now, wall));
        rtcp::write_bye(out, self.cfg.ssrc, sender, &self.cfg.cname, reason);
        self.left = true;
    }

    /// §6.4: "The sender report is issued if a site has sent any data
    /// packets during the interval since issuing the last report or the one
    /// prior, otherwise the receiver report is issued." Two silent intervals
    /// and we count as a receiver again (§6.3.8).
    fn we_sent(&self) -> bool {
        self.last_rtp_sent
            .is_some_and(|t| t >= self.report_before_last)
    }

    fn sender_info(&self, now: Instant, wall: SystemTime) -> SenderInfo {
        // The SR's RTP timestamp is "the same time as the NTP timestamp"
        // (§6.4.1) on the packets' own timeline: samples since the epoch.
        let since_epoch = now.saturating_duration_since(self.epoch);
        let samples = since_epoch.as_nanos() * u128::from(CLOCK_RATE) / 1_000_000_000;
        SenderInfo {
            ntp_time: rtcp::ntp_time(wall),
            rtp_timestamp: self.rtp_timestamp(samples as u64),
            packet_count: self.packets_sent,
            octet_count: self.octets_sent,
        }
    }

    /// One randomised interval T for the current state (§6.3.1). We are the
    /// only possible sender; the rest of the members are receivers.
    fn draw_interval(&mut self) -> Duration {
        let rtcp_bw = f64::from(self.cfg.session_bandwidth_bps) * RTCP_BANDWIDTH_FRACTION / 8.0;
        let we_sent = self.we_sent();
        let members = self.receivers.saturating_add(1);
        let factor = self.rng.random_range(0.5..=1.5);
        let secs = rtcp_interval(
            members,
            u32::from(we_sent),
            rtcp_bw,
            we_sent,
            self.avg_rtcp_size,
            self.initial,
            factor,
        );
        Duration::try_from_secs_f64(secs).map_or(MAX_INTERVAL, |t| t.min(MAX_INTERVAL))
    }
}

#[cfg(test)]
mod tests;
