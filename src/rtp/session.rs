//! Per-zone RTP sender session (sans-IO): owns the SSRC, sequence numbers,
//! the media-clock → RTP timestamp mapping, packet/octet counts and the
//! RTCP report schedule (RFC 3550 §6.2–6.3, Appendix A.7).
//!
//! Time comes in as arguments (`now`, `wall`) and randomness as a seed, so
//! tests drive it with made-up clocks. Must not touch: sockets, clocks.

use std::time::{Duration, Instant, SystemTime};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rtp_rs::{RtpPacketBuilder, Seq};

use super::rtcp::{self, SenderInfo};
use super::CLOCK_RATE;

#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    pub ssrc: u32,
    pub initial_seq: u16,
    pub initial_timestamp: u32,
    pub payload_type: u8,
    pub cname: String,
    /// Session bandwidth (payload + headers) for the RTCP interval (§6.2).
    pub session_bandwidth_bps: u32,
    /// Seed for the RTCP interval randomisation (§6.3.1).
    pub rng_seed: u64,
}

/// Minimum RTCP report interval (§6.2).
const RTCP_MIN_INTERVAL: f64 = 5.0;
/// Bytes of UDP + IPv4 header counted into the average RTCP size (§6.3.1).
const UDP_IP_OVERHEAD: f64 = 28.0;

/// RFC 3550 Appendix A.7 `rtcp_interval`, in seconds. `random_factor` is
/// the uniform draw from [0.5, 1.5] (§6.3.1), passed in so the function is
/// pure.
pub fn rtcp_interval(
    members: u32,
    senders: u32,
    rtcp_bw_octets_per_s: f64,
    we_sent: bool,
    avg_rtcp_size: f64,
    initial: bool,
    random_factor: f64,
) -> f64 {
    // "To compensate for 'timer reconsideration' converging to a value below
    // the intended average" (A.7).
    const COMPENSATION: f64 = std::f64::consts::E - 1.5;
    let min_time = if initial { RTCP_MIN_INTERVAL / 2.0 } else { RTCP_MIN_INTERVAL };
    let mut n = members.max(1) as f64;
    let mut bw = rtcp_bw_octets_per_s;
    // Senders get a quarter of the RTCP bandwidth when they are at most a
    // quarter of the members (§6.2).
    if (senders as f64) <= (members as f64) * 0.25 {
        if we_sent {
            bw *= 0.25;
            n = senders.max(1) as f64;
        } else {
            bw *= 0.75;
            n -= senders as f64;
        }
    }
    let t = (avg_rtcp_size * n / bw).max(min_time);
    t * random_factor / COMPENSATION
}

#[derive(Debug)]
pub struct Session {
    cfg: SessionConfig,
    epoch: Instant,
    next_seq: u16,
    /// Media time (samples since epoch) where the last packet's frame ended.
    expected_media: Option<u64>,
    packets_sent: u32,
    octets_sent: u32,
    last_rtp_sent: Option<Instant>,
    receivers: u32,
    rng: SmallRng,
    avg_rtcp_size: f64,
    next_rtcp: Instant,
    /// When the previous report went out; "we_sent" looks back to it (two
    /// intervals, §6.3.8).
    report_before_last: Instant,
    last_report: Instant,
    initial: bool,
}

impl Session {
    pub fn new(cfg: SessionConfig, epoch: Instant) -> Session {
        let mut rng = SmallRng::seed_from_u64(cfg.rng_seed);
        // First estimate of our compound size: SR (28) + SDES with the CNAME.
        let avg_rtcp_size = 28.0 + 12.0 + cfg.cname.len() as f64 + UDP_IP_OVERHEAD;
        let mut session = Session {
            next_seq: cfg.initial_seq,
            expected_media: None,
            packets_sent: 0,
            octets_sent: 0,
            last_rtp_sent: None,
            receivers: 0,
            avg_rtcp_size,
            next_rtcp: epoch,
            report_before_last: epoch,
            last_report: epoch,
            initial: true,
            epoch,
            rng: SmallRng::seed_from_u64(rng.random()),
            cfg,
        };
        session.next_rtcp = epoch + session.draw_interval(true);
        session
    }

    pub fn ssrc(&self) -> u32 {
        self.cfg.ssrc
    }
    pub fn packets_sent(&self) -> u32 {
        self.packets_sent
    }
    pub fn octets_sent(&self) -> u32 {
        self.octets_sent
    }

    /// Receivers heard from (future: from RTCP RRs); counts toward the
    /// member total for the RTCP interval.
    pub fn set_receivers(&mut self, receivers: u32) {
        self.receivers = receivers;
    }

    /// RTP timestamp for a media time in samples since the epoch.
    fn rtp_timestamp(&self, media_samples: u64) -> u32 {
        self.cfg.initial_timestamp.wrapping_add(media_samples as u32)
    }

    /// Writes the RTP packet (RFC 3550 §5.1, RFC 7587) for one frame into
    /// `out`. `media_samples` is the 48 kHz sample count since the epoch at
    /// which the frame is due, so the timestamp follows the wall clock; the
    /// marker bit flags the first packet and the first after a gap.
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
        self.expected_media = Some(media_samples + u64::from(frame_samples));
        self.packets_sent = self.packets_sent.wrapping_add(1);
        self.octets_sent = self.octets_sent.wrapping_add(payload.len() as u32);
        self.last_rtp_sent = Some(now);
    }

    /// When the next RTCP report is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        Some(self.next_rtcp)
    }

    /// If a report is due at `now`, writes SR (or RR when we stopped sending)
    /// + SDES CNAME into `out` and returns true.
    pub fn poll_rtcp(&mut self, now: Instant, wall: SystemTime, out: &mut Vec<u8>) -> bool {
        if now < self.next_rtcp {
            return false;
        }
        let sender = self.we_sent().then(|| self.sender_info(now, wall));
        rtcp::write_compound(out, self.cfg.ssrc, sender, &self.cfg.cname, None);
        // §6.3.3: avg_rtcp_size = 1/16 * packet_size + 15/16 * avg_rtcp_size.
        self.avg_rtcp_size = (out.len() as f64 + UDP_IP_OVERHEAD) / 16.0 + self.avg_rtcp_size * 15.0 / 16.0;
        self.initial = false;
        self.report_before_last = self.last_report;
        self.last_report = now;
        self.next_rtcp = now + self.draw_interval(false);
        true
    }

    /// SR (or RR) + SDES + BYE, sent when the zone stops (§6.3.7).
    pub fn bye(&mut self, now: Instant, wall: SystemTime, reason: Option<&str>, out: &mut Vec<u8>) {
        let sender = self.we_sent().then(|| self.sender_info(now, wall));
        rtcp::write_compound(out, self.cfg.ssrc, sender, &self.cfg.cname, Some(reason));
    }

    /// "we_sent": RTP went out during the last two report intervals
    /// (§6.3.8); otherwise we report as a receiver.
    fn we_sent(&self) -> bool {
        self.last_rtp_sent
            .is_some_and(|t| t >= self.report_before_last || self.initial)
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

    fn draw_interval(&mut self, initial: bool) -> Duration {
        let rtcp_bw = self.cfg.session_bandwidth_bps as f64 * 0.05 / 8.0;
        let members = 1 + self.receivers;
        let we_sent = self.we_sent() || initial;
        let factor = self.rng.random_range(0.5..1.5);
        let secs = rtcp_interval(members, 1, rtcp_bw, we_sent, self.avg_rtcp_size, initial, factor);
        Duration::from_secs_f64(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::rtcp::{parse_compound, RtcpPacket};
    use std::time::UNIX_EPOCH;

    fn config() -> SessionConfig {
        SessionConfig {
            ssrc: 0xDEAD_BEEF,
            initial_seq: 65_534,
            initial_timestamp: 0xFFFF_FC40, // 960 samples before wrapping
            payload_type: 96,
            cname: "loa@127.0.0.1".into(),
            session_bandwidth_bps: 48_000,
            rng_seed: 1,
        }
    }

    fn header(packet: &[u8]) -> (bool, u8, u16, u32, u32) {
        let r = rtp_rs::RtpReader::new(packet).unwrap();
        (r.mark(), r.payload_type(), u16::from(r.sequence_number()), r.timestamp(), r.ssrc())
    }

    #[test]
    fn rtp_header_is_byte_exact() {
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0);
        let mut out = Vec::new();
        s.handle_frame(t0, 0, 960, &[0xAA, 0xBB, 0xCC], &mut out);
        assert_eq!(
            out,
            [
                0x80, // V=2, P=0, X=0, CC=0
                0xE0, // M=1 (first packet), PT=96
                0xFF, 0xFE, // seq 65534
                0xFF, 0xFF, 0xFC, 0x40, // timestamp
                0xDE, 0xAD, 0xBE, 0xEF, // SSRC
                0xAA, 0xBB, 0xCC,
            ]
        );
    }

    #[test]
    fn seq_and_timestamp_wrap_and_stay_continuous() {
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0);
        let mut out = Vec::new();
        let mut seen = Vec::new();
        for n in 0..3u64 {
            s.handle_frame(t0, n * 960, 960, &[1], &mut out);
            seen.push(header(&out));
        }
        assert_eq!(seen[0].2, 65_534);
        assert_eq!(seen[1].2, 65_535);
        assert_eq!(seen[2].2, 0);
        assert_eq!(seen[1].3, 0, "timestamp wrapped to 0");
        assert_eq!(seen[2].3, 960);
        assert!(seen[0].0 && !seen[1].0 && !seen[2].0, "marker only on the first packet");
    }

    #[test]
    fn a_pause_shows_as_a_timestamp_jump_with_marker_and_no_seq_gap() {
        let t0 = Instant::now();
        let mut cfg = config();
        cfg.initial_seq = 100;
        cfg.initial_timestamp = 1_000;
        let mut s = Session::new(cfg, t0);
        let mut out = Vec::new();
        let mut got = Vec::new();
        for media in [0, 960, 1920, 48_000 * 3, 48_000 * 3 + 960] {
            s.handle_frame(t0, media, 960, &[0], &mut out);
            got.push(header(&out));
        }
        let seqs: Vec<u16> = got.iter().map(|h| h.2).collect();
        let ts: Vec<u32> = got.iter().map(|h| h.3).collect();
        let marks: Vec<bool> = got.iter().map(|h| h.0).collect();
        assert_eq!(seqs, [100, 101, 102, 103, 104]);
        assert_eq!(ts, [1_000, 1_960, 2_920, 145_000, 145_960]);
        assert_eq!(marks, [true, false, false, true, false]);
    }

    #[test]
    fn counts_payload_octets_for_the_sender_report() {
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0);
        let mut out = Vec::new();
        s.handle_frame(t0, 0, 960, &[0; 80], &mut out);
        s.handle_frame(t0, 960, 960, &[0; 70], &mut out);
        assert_eq!((s.packets_sent(), s.octets_sent()), (2, 150));
    }

    #[test]
    fn rtcp_interval_follows_rfc3550_a7() {
        let bw = 48_000.0 * 0.05 / 8.0; // 300 octets/s
        // A lone sender with small reports: the 5 s minimum, compensated.
        let t = rtcp_interval(1, 1, bw, true, 100.0, false, 1.0);
        assert!((t - 5.0 / (std::f64::consts::E - 1.5)).abs() < 1e-9);
        // Initial report: half the minimum.
        let t = rtcp_interval(1, 1, bw, true, 100.0, true, 1.0);
        assert!((t - 2.5 / (std::f64::consts::E - 1.5)).abs() < 1e-9);
        // Randomisation scales linearly within [0.5, 1.5].
        let lo = rtcp_interval(1, 1, bw, true, 100.0, false, 0.5);
        let hi = rtcp_interval(1, 1, bw, true, 100.0, false, 1.5);
        assert!((hi / lo - 3.0).abs() < 1e-9);
        // Many receivers sharing 75 % of a small bandwidth: above the minimum.
        let t = rtcp_interval(1001, 1, bw, false, 100.0, false, 1.0);
        let expected = 100.0 * 1000.0 / (bw * 0.75) / (std::f64::consts::E - 1.5);
        assert!((t - expected).abs() < 1e-6);
    }

    #[test]
    fn first_report_comes_around_half_the_minimum_then_every_five_seconds_on_average() {
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0);
        let first = s.poll_timeout().unwrap() - t0;
        let c = std::f64::consts::E - 1.5;
        assert!(first.as_secs_f64() >= 1.25 / c && first.as_secs_f64() <= 3.75 / c, "{first:?}");

        let mut out = Vec::new();
        let mut now = t0;
        let mut media = 0;
        let mut report_times = Vec::new();
        // Send for 10 minutes of made-up time, polling every frame.
        while now < t0 + Duration::from_secs(600) {
            s.handle_frame(now, media, 960, &[0; 80], &mut out);
            media += 960;
            if s.poll_rtcp(now, UNIX_EPOCH, &mut out) {
                report_times.push(now);
            }
            now += Duration::from_millis(20);
        }
        let mean = report_times.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).sum::<f64>()
            / (report_times.len() - 1) as f64;
        // Mean of U[0.5,1.5]·5 s / (e − 3/2) ≈ 4.1 s.
        assert!((mean - 5.0 / c).abs() < 0.4, "mean interval {mean}");
        for w in report_times.windows(2) {
            let d = (w[1] - w[0]).as_secs_f64();
            assert!(d >= 2.5 / c - 0.03 && d <= 7.5 / c + 0.03, "interval {d}");
        }
    }

    #[test]
    fn sender_report_maps_now_onto_the_packet_timeline() {
        let t0 = Instant::now();
        let mut cfg = config();
        cfg.initial_timestamp = 5_000;
        let mut s = Session::new(cfg, t0);
        let mut out = Vec::new();
        s.handle_frame(t0, 0, 960, &[0; 10], &mut out);
        let due = s.poll_timeout().unwrap();
        let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert!(s.poll_rtcp(due, wall, &mut out));
        let packets = parse_compound(&out).unwrap();
        let RtcpPacket::SenderReport { ssrc, info, .. } = &packets[0] else {
            panic!("expected an SR first: {packets:?}");
        };
        assert_eq!(*ssrc, 0xDEAD_BEEF);
        let expected_samples = ((due - t0).as_nanos() * 48_000 / 1_000_000_000) as u32;
        assert_eq!(info.rtp_timestamp, 5_000 + expected_samples);
        assert_eq!(info.ntp_time >> 32, 1_700_000_000 + 2_208_988_800);
        assert_eq!((info.packet_count, info.octet_count), (1, 10));
        assert!(matches!(&packets[1], RtcpPacket::Sdes { cnames } if cnames[0].1 == "loa@127.0.0.1"));
    }

    #[test]
    fn a_session_that_stopped_sending_reports_as_a_receiver() {
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0);
        let mut out = Vec::new();
        s.handle_frame(t0, 0, 960, &[0; 10], &mut out);
        let mut now = t0;
        let mut kinds = Vec::new();
        for _ in 0..4 {
            now = s.poll_timeout().unwrap();
            assert!(s.poll_rtcp(now, UNIX_EPOCH, &mut out));
            kinds.push(out[1]);
        }
        // Sent before the first report; two intervals later we are silent.
        assert_eq!(kinds[0], 200);
        assert_eq!(kinds[3], 201);
        assert!(!s.poll_rtcp(now, UNIX_EPOCH, &mut out), "nothing due right after a report");
    }

    #[test]
    fn bye_is_a_compound_ending_in_bye() {
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0);
        let mut out = Vec::new();
        s.handle_frame(t0, 0, 960, &[0; 10], &mut out);
        s.bye(t0 + Duration::from_millis(20), UNIX_EPOCH, None, &mut out);
        let packets = parse_compound(&out).unwrap();
        assert!(matches!(packets[0], RtcpPacket::SenderReport { .. }));
        assert!(matches!(packets[1], RtcpPacket::Sdes { .. }));
        assert_eq!(
            packets[2],
            RtcpPacket::Bye {
                ssrcs: vec![0xDEAD_BEEF],
                reason: None
            }
        );
    }
}
