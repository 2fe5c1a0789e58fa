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
mod tests {
    use super::*;
    use crate::rtp::rtcp::{parse_compound, RtcpPacket};
    use std::time::UNIX_EPOCH;

    const C: f64 = COMPENSATION;

    fn config() -> SessionConfig {
        SessionConfig {
            ssrc: 0xDEAD_BEEF,
            initial_seq: 100,
            initial_timestamp: 1_000,
            payload_type: 96,
            cname: "loa@127.0.0.1".into(),
            session_bandwidth_bps: 48_000,
            rng_seed: 1,
        }
    }

    /// (marker, payload type, seq, timestamp, ssrc)
    fn header(packet: &[u8]) -> (bool, u8, u16, u32, u32) {
        let r = rtp_rs::RtpReader::new(packet).unwrap();
        (
            r.mark(),
            r.payload_type(),
            u16::from(r.sequence_number()),
            r.timestamp(),
            r.ssrc(),
        )
    }

    /// Sends frames at the given media times and returns their headers.
    fn send(s: &mut Session, t0: Instant, media: &[u64]) -> Vec<(bool, u8, u16, u32, u32)> {
        let mut out = Vec::new();
        media
            .iter()
            .map(|&m| {
                s.handle_frame(t0, m, 960, &[0], &mut out);
                header(&out)
            })
            .collect()
    }

    /// Calls `poll_rtcp` at each timeout until a report goes out (timer
    /// reconsideration may postpone it); returns when it went out.
    fn next_report(s: &mut Session, out: &mut Vec<u8>) -> Instant {
        loop {
            let due = s.poll_timeout().expect("reports are scheduled");
            if s.poll_rtcp(due, UNIX_EPOCH, out) {
                return due;
            }
        }
    }

    #[test]
    fn a_withdrawn_packet_gives_back_its_number_and_the_next_one_is_marked() {
        let t0 = Instant::now();
        let mut cfg = config();
        cfg.initial_seq = 100;
        let mut s = Session::new(cfg, t0);
        let mut out = Vec::new();
        s.handle_frame(t0, 0, 960, &[1; 10], &mut out);
        // Two frames that could not be sent.
        for media in [960, 1920] {
            s.handle_frame(t0, media, 960, &[2; 20], &mut out);
            s.withdraw_last(media, 20);
        }
        s.handle_frame(t0, 2880, 960, &[3; 30], &mut out);
        let seq = u16::from_be_bytes([out[2], out[3]]);
        assert_eq!(seq, 101, "no sequence gap");
        assert_eq!(out[1] & 0x80, 0x80, "marker after the pause");
        let ts = u32::from_be_bytes([out[4], out[5], out[6], out[7]]);
        let ts0 = s.cfg.initial_timestamp;
        assert_eq!(ts.wrapping_sub(ts0), 2880, "the media clock ran on");
        assert_eq!((s.packets_sent, s.octets_sent), (2, 40));
    }

    #[test]
    fn rtp_header_is_byte_exact() {
        let t0 = Instant::now();
        let mut cfg = config();
        cfg.initial_seq = 0xFFFE;
        cfg.initial_timestamp = 0xFFFF_FC40;
        let mut s = Session::new(cfg, t0);
        let mut out = Vec::new();
        s.handle_frame(t0, 0, 960, &[0xAA, 0xBB, 0xCC], &mut out);
        #[rustfmt::skip]
        assert_eq!(
            out,
            [
                0x80,                   // V=2, P=0, X=0, CC=0
                0xE0,                   // M=1 (first packet), PT=96
                0xFF, 0xFE,             // seq 65534
                0xFF, 0xFF, 0xFC, 0x40, // timestamp
                0xDE, 0xAD, 0xBE, 0xEF, // SSRC
                0xAA, 0xBB, 0xCC,       // Opus payload, untouched
            ]
        );
        s.handle_frame(t0, 960, 960, &[0x01], &mut out);
        #[rustfmt::skip]
        assert_eq!(
            out,
            [
                0x80,
                0x60,                   // M=0 (contiguous), PT=96
                0xFF, 0xFF,             // seq 65535
                0x00, 0x00, 0x00, 0x00, // timestamp wrapped
                0xDE, 0xAD, 0xBE, 0xEF,
                0x01,
            ]
        );
    }

    #[test]
    fn payload_type_is_taken_from_the_config() {
        let t0 = Instant::now();
        let mut cfg = config();
        cfg.payload_type = 127;
        let mut s = Session::new(cfg, t0);
        let got = send(&mut s, t0, &[0, 960]);
        assert_eq!((got[0].0, got[0].1), (true, 127));
        assert_eq!((got[1].0, got[1].1), (false, 127));
    }

    #[test]
    fn sequence_number_wraps_from_65535_to_0() {
        let t0 = Instant::now();
        let mut cfg = config();
        cfg.initial_seq = 65_534;
        let mut s = Session::new(cfg, t0);
        let seqs: Vec<u16> = send(&mut s, t0, &[0, 960, 1920, 2880])
            .iter()
            .map(|h| h.2)
            .collect();
        assert_eq!(seqs, [65_534, 65_535, 0, 1]);
    }

    #[test]
    fn timestamp_wraps_modulo_2_32_without_a_marker() {
        let t0 = Instant::now();
        let mut cfg = config();
        cfg.initial_timestamp = u32::MAX - 959; // 960 samples before wrapping
        let mut s = Session::new(cfg, t0);
        let got = send(&mut s, t0, &[0, 960, 1920]);
        let ts: Vec<u32> = got.iter().map(|h| h.3).collect();
        assert_eq!(ts, [u32::MAX - 959, 0, 960]);
        let marks: Vec<bool> = got.iter().map(|h| h.0).collect();
        assert_eq!(marks, [true, false, false], "a wrap is not a gap");
    }

    #[test]
    fn a_pause_shows_as_a_timestamp_jump_with_marker_and_no_seq_gap() {
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0);
        let got = send(&mut s, t0, &[0, 960, 1920, 48_000 * 3, 48_000 * 3 + 960]);
        let seqs: Vec<u16> = got.iter().map(|h| h.2).collect();
        let ts: Vec<u32> = got.iter().map(|h| h.3).collect();
        let marks: Vec<bool> = got.iter().map(|h| h.0).collect();
        assert_eq!(seqs, [100, 101, 102, 103, 104]);
        assert_eq!(ts, [1_000, 1_960, 2_920, 145_000, 145_960]);
        assert_eq!(marks, [true, false, false, true, false]);
        assert!(
            got.iter().all(|h| h.4 == 0xDEAD_BEEF),
            "one SSRC for the session's life"
        );
    }

    #[test]
    fn contiguity_follows_each_frames_own_duration() {
        // 40 ms frames then 20 ms frames: contiguous as long as each starts
        // where the previous one ended.
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0);
        let mut out = Vec::new();
        let mut marks = Vec::new();
        for (media, frame) in [
            (0, 1920),
            (1920, 1920),
            (3840, 960),
            (4800, 960),
            (4801, 960),
        ] {
            s.handle_frame(t0, media, frame, &[0], &mut out);
            marks.push(header(&out).0);
        }
        assert_eq!(marks, [true, false, false, false, true]);
    }

    #[test]
    fn packets_reuse_the_output_buffer() {
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0);
        let mut out = Vec::with_capacity(1500);
        let ptr = out.as_ptr();
        for n in 0..50u64 {
            s.handle_frame(t0, n * 960, 960, &[7; 200], &mut out);
            assert_eq!(out.len(), 12 + 200);
        }
        assert_eq!(out.as_ptr(), ptr, "no reallocation");
    }

    #[test]
    fn counts_packets_and_payload_octets_for_the_sender_report() {
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0);
        let mut out = Vec::new();
        s.handle_frame(t0, 0, 960, &[0; 80], &mut out);
        s.handle_frame(t0, 960, 960, &[0; 70], &mut out);
        assert_eq!((s.packets_sent(), s.octets_sent()), (2, 150));
    }

    #[test]
    fn rtcp_interval_is_the_compensated_minimum_for_a_lone_sender() {
        let bw = 48_000.0 * 0.05 / 8.0; // 300 octets/s
        let t = rtcp_interval(1, 1, bw, true, 100.0, false, 1.0);
        assert!((t - 5.0 / C).abs() < 1e-12, "{t}");
        assert!((5.0 / C - 4.104_141).abs() < 1e-6);
    }

    #[test]
    fn rtcp_interval_halves_the_minimum_before_the_first_report() {
        let t = rtcp_interval(1, 1, 300.0, true, 100.0, true, 1.0);
        assert!((t - 2.5 / C).abs() < 1e-12, "{t}");
    }

    #[test]
    fn rtcp_interval_scales_with_the_random_factor() {
        let lo = rtcp_interval(1, 1, 300.0, true, 100.0, false, 0.5);
        let hi = rtcp_interval(1, 1, 300.0, true, 100.0, false, 1.5);
        assert!(
            (lo - 2.5 / C).abs() < 1e-12 && (hi - 7.5 / C).abs() < 1e-12,
            "{lo} {hi}"
        );
    }

    #[test]
    fn rtcp_interval_gives_few_senders_a_quarter_of_the_bandwidth() {
        // 2 senders of 100 members, 100 octets/s: senders share 25 octets/s,
        // so 2 × 200 octets take 16 s.
        let t = rtcp_interval(100, 2, 100.0, true, 200.0, false, 1.0);
        assert!((t - 16.0 / C).abs() < 1e-9, "{t}");
        // The 98 receivers share the other 75: 98 × 200 / 75.
        let t = rtcp_interval(100, 2, 100.0, false, 200.0, false, 1.0);
        assert!((t - 98.0 * 200.0 / 75.0 / C).abs() < 1e-9, "{t}");
    }

    #[test]
    fn rtcp_interval_shares_all_bandwidth_when_senders_are_many() {
        // 1 sender of 2 members is more than a quarter: everyone shares the
        // whole 10 octets/s, 2 × 100 / 10 = 20 s.
        let t = rtcp_interval(2, 1, 10.0, true, 100.0, false, 1.0);
        assert!((t - 20.0 / C).abs() < 1e-9, "{t}");
    }

    #[test]
    fn rtcp_interval_falls_back_to_the_minimum_without_bandwidth() {
        let t = rtcp_interval(1, 1, 0.0, true, 100.0, false, 1.0);
        assert!((t - 5.0 / C).abs() < 1e-12, "{t}");
    }

    #[test]
    fn first_report_is_due_at_half_the_minimum_times_the_seeded_factor() {
        let t0 = Instant::now();
        let s = Session::new(config(), t0);
        let factor: f64 = SmallRng::seed_from_u64(config().rng_seed).random_range(0.5..=1.5);
        let expected = 2.5 * factor / C;
        let first = (s.poll_timeout().unwrap() - t0).as_secs_f64();
        assert!((first - expected).abs() < 1e-6, "{first} vs {expected}");
        assert!((1.25 / C..=3.75 / C).contains(&first));
    }

    #[test]
    fn different_seeds_draw_different_first_reports() {
        let t0 = Instant::now();
        let due: Vec<Instant> = (0..8)
            .map(|seed| {
                let mut cfg = config();
                cfg.rng_seed = seed;
                Session::new(cfg, t0).poll_timeout().unwrap()
            })
            .collect();
        assert!(due.windows(2).any(|w| w[0] != w[1]), "{due:?}");
    }

    #[test]
    fn nothing_is_sent_before_the_timer_expires() {
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0);
        let mut out = Vec::new();
        let due = s.poll_timeout().unwrap();
        assert!(!s.poll_rtcp(due - Duration::from_millis(1), UNIX_EPOCH, &mut out));
        assert_eq!(s.poll_timeout(), Some(due));
    }

    #[test]
    fn later_reports_are_scheduled_within_the_randomised_five_second_window() {
        let t0 = Instant::now();
        for seed in 0..20 {
            let mut cfg = config();
            cfg.rng_seed = seed;
            let mut s = Session::new(cfg, t0);
            let mut out = Vec::new();
            s.handle_frame(t0, 0, 960, &[0; 80], &mut out);
            let sent = next_report(&mut s, &mut out);
            assert!((sent - t0).as_secs_f64() <= 3.75 / C + 1e-6);
            let next = (s.poll_timeout().unwrap() - sent).as_secs_f64();
            assert!(
                (2.5 / C - 1e-6..=7.5 / C + 1e-6).contains(&next),
                "seed {seed}: {next}"
            );
        }
    }

    #[test]
    fn reports_average_five_seconds_with_timer_reconsideration() {
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0);
        let mut out = Vec::new();
        let mut media = 0;
        let mut sent = Vec::new();
        for _ in 0..3_000 {
            // Keep sending so every report is an SR.
            let due = s.poll_timeout().unwrap();
            s.handle_frame(due, media, 960, &[0; 80], &mut out);
            media += 960;
            if s.poll_rtcp(due, UNIX_EPOCH, &mut out) {
                sent.push(due);
            }
        }
        let gaps: Vec<f64> = sent
            .windows(2)
            .map(|w| (w[1] - w[0]).as_secs_f64())
            .collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        // The e − 3/2 compensation makes reconsideration average Td = 5 s.
        assert!(
            (mean - 5.0).abs() < 0.1,
            "mean interval {mean} over {} reports",
            gaps.len()
        );
        for gap in gaps {
            assert!(
                (2.5 / C - 1e-6..=7.5 / C + 1e-6).contains(&gap),
                "interval {gap}"
            );
        }
    }

    #[test]
    fn average_rtcp_size_follows_rfc3550_6_3_3() {
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0);
        let mut out = Vec::new();
        // SR (28) + SDES with "loa@127.0.0.1" (24) + UDP/IP (28).
        assert_eq!(s.avg_rtcp_size, 80.0);
        next_report(&mut s, &mut out); // no RTP yet: RR (8) + SDES (24)
        assert_eq!(out.len(), 32);
        assert_eq!(s.avg_rtcp_size, 80.0 * 15.0 / 16.0 + (32.0 + 28.0) / 16.0);
    }

    #[test]
    fn sender_report_maps_now_onto_the_packet_timeline() {
        let t0 = Instant::now();
        let mut cfg = config();
        cfg.initial_timestamp = u32::MAX - 10;
        let mut s = Session::new(cfg, t0);
        let mut out = Vec::new();
        s.handle_frame(t0, 0, 960, &[0; 10], &mut out);
        let due = s.poll_timeout().unwrap();
        let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_millis(250);
        let sent = loop {
            let due = s.poll_timeout().unwrap();
            if s.poll_rtcp(due, wall, &mut out) {
                break due;
            }
        };
        assert!(sent >= due);
        let packets = parse_compound(&out).unwrap();
        let RtcpPacket::SenderReport {
            ssrc,
            info,
            reports,
        } = &packets[0]
        else {
            panic!("expected an SR first: {packets:?}");
        };
        assert_eq!(*ssrc, 0xDEAD_BEEF);
        assert!(reports.is_empty());
        // Same timeline as media_samples: a frame due at `sent` would carry
        // exactly this timestamp.
        let samples = ((sent - t0).as_nanos() * 48_000 / 1_000_000_000) as u32;
        assert_eq!(info.rtp_timestamp, (u32::MAX - 10).wrapping_add(samples));
        assert_eq!(
            info.ntp_time,
            ((1_700_000_000 + 2_208_988_800) << 32) | 0x4000_0000
        );
        assert_eq!((info.packet_count, info.octet_count), (1, 10));
        assert_eq!(
            packets[1],
            RtcpPacket::Sdes {
                cnames: vec![(0xDEAD_BEEF, "loa@127.0.0.1".into())]
            }
        );
    }

    #[test]
    fn a_session_that_has_not_sent_reports_as_a_receiver() {
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0);
        let mut out = Vec::new();
        next_report(&mut s, &mut out);
        assert!(
            matches!(parse_compound(&out).unwrap()[..], [RtcpPacket::ReceiverReport { ref reports, .. }, RtcpPacket::Sdes { .. }] if reports.is_empty())
        );
    }

    #[test]
    fn a_session_that_stopped_sending_reports_as_a_receiver_after_two_intervals() {
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0);
        let mut out = Vec::new();
        s.handle_frame(t0, 0, 960, &[0; 10], &mut out);
        let mut kinds = Vec::new();
        let mut last = t0;
        for _ in 0..4 {
            last = next_report(&mut s, &mut out);
            kinds.push(out[1]);
        }
        // Sent before the first report: SR then, and still at the second
        // ("since the last report or the one prior", §6.4); RR afterwards.
        assert_eq!(kinds, [200, 200, 201, 201]);
        // Sending again makes the next report an SR.
        s.handle_frame(last, 48_000 * 30, 960, &[0; 10], &mut out);
        next_report(&mut s, &mut out);
        assert_eq!(out[1], 200);
        assert!(
            !s.poll_rtcp(last, UNIX_EPOCH, &mut out),
            "nothing due right after a report"
        );
    }

    #[test]
    fn bye_is_a_compound_ending_in_bye() {
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0);
        let mut out = Vec::new();
        s.handle_frame(t0, 0, 960, &[0; 10], &mut out);
        s.bye(
            t0 + Duration::from_millis(20),
            UNIX_EPOCH,
            Some("zone removed"),
            &mut out,
        );
        let packets = parse_compound(&out).unwrap();
        assert!(matches!(packets[0], RtcpPacket::SenderReport { .. }));
        assert!(matches!(packets[1], RtcpPacket::Sdes { .. }));
        assert_eq!(
            packets[2],
            RtcpPacket::Bye {
                ssrcs: vec![0xDEAD_BEEF],
                reason: Some("zone removed".into())
            }
        );
    }

    #[test]
    fn bye_from_a_silent_session_starts_with_a_receiver_report() {
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0);
        let mut out = Vec::new();
        s.bye(t0, UNIX_EPOCH, None, &mut out);
        let packets = parse_compound(&out).unwrap();
        assert!(matches!(packets[0], RtcpPacket::ReceiverReport { .. }));
        assert_eq!(
            packets[2],
            RtcpPacket::Bye {
                ssrcs: vec![0xDEAD_BEEF],
                reason: None
            }
        );
    }

    #[test]
    fn no_reports_follow_a_bye() {
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0);
        let mut out = Vec::new();
        s.bye(t0, UNIX_EPOCH, None, &mut out);
        assert_eq!(s.poll_timeout(), None);
        assert!(!s.poll_rtcp(t0 + Duration::from_secs(60), UNIX_EPOCH, &mut out));
    }
}
