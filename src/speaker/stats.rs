//! Reception statistics for one RTP source, as RFC 3550 Appendix A computes
//! them (sans-IO): sequence tracking (A.1), expected and lost packets and
//! the loss fraction per report interval (A.3), interarrival jitter (A.8),
//! and the LSR/DLSR fields from the last Sender Report heard (§6.4.1).
//!
//! Owns: the numbers in the speaker's report block. Must not touch:
//! sockets, clocks (arrival times come in as arguments), the wire format
//! (that is `rtp::rtcp`).
//!
//! Simplification: a new source is counted from its first packet, without
//! the MIN_SEQUENTIAL probation of A.1 — the jitter buffer already refuses
//! to switch sources on a single stray packet.

use std::time::{Duration, Instant};

use crate::rtp::rtcp::ReportBlock;
use crate::rtp::CLOCK_RATE;

const RTP_SEQ_MOD: u32 = 1 << 16;
/// A.1: a jump of more than this is a restart or a bad packet.
const MAX_DROPOUT: u16 = 3000;
/// A.1: a step back of up to this many is a reordered or duplicate packet.
const MAX_MISORDER: u16 = 100;

#[derive(Debug, Clone)]
pub struct ReceiverStats {
    ssrc: u32,
    max_seq: u16,
    /// Shifted count of sequence number cycles (A.1 `cycles`).
    cycles: u32,
    base_seq: u32,
    /// Last 'bad' sequence number + 1 (A.1).
    bad_seq: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// Relative transit time of the previous packet, in timestamp units.
    transit: Option<u32>,
    /// Interarrival jitter scaled by 16 (A.8's integer form).
    jitter_q4: u32,
    /// Arrival-time zero: arrivals are converted to RTP clock units from here.
    epoch: Instant,
    /// Middle 32 bits of the last SR's NTP time and when it arrived.
    last_sr: Option<(u32, Instant)>,
}

impl ReceiverStats {
    /// Starts counting a source at its first packet (A.1 `init_seq`).
    pub fn new(ssrc: u32, seq: u16, epoch: Instant) -> ReceiverStats {
        let mut stats = ReceiverStats {
            ssrc,
            max_seq: seq,
            cycles: 0,
            base_seq: 0,
            bad_seq: 0,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter_q4: 0,
            epoch,
            last_sr: None,
        };
        stats.init_seq(seq);
        stats
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// A.1 `update_seq`, then A.8 for packets that count. Returns false for
    /// a packet A.1 calls bad (a large jump not yet confirmed by the next).
    pub fn on_packet(&mut self, arrival: Instant, seq: u16, rtp_timestamp: u32) -> bool {
        let udelta = seq.wrapping_sub(self.max_seq);
        if udelta < MAX_DROPOUT {
            // In order, with a permissible gap.
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
            }
            self.max_seq = seq;
        } else if udelta <= (RTP_SEQ_MOD - u32::from(MAX_MISORDER)) as u16 {
            // The sequence number made a very large jump.
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets: the other side restarted without
                // telling us, so re-sync.
                self.init_seq(seq);
                self.transit = None;
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return false;
            }
        }
        // Otherwise a duplicate or reordered packet: counted as received.
        self.received = self.received.wrapping_add(1);
        self.update_jitter(arrival, rtp_timestamp);
        true
    }

    /// A.8: J += (|D| - J) / 16, kept scaled by 16 in integers.
    fn update_jitter(&mut self, arrival: Instant, rtp_timestamp: u32) {
        let arrival_units = self.rtp_units(arrival.saturating_duration_since(self.epoch));
        let transit = arrival_units.wrapping_sub(rtp_timestamp);
        if let Some(previous) = self.transit {
            let d = (transit.wrapping_sub(previous) as i32).unsigned_abs();
            self.jitter_q4 = self
                .jitter_q4
                .wrapping_add(d)
                .wrapping_sub((self.jitter_q4 + 8) >> 4);
        }
        self.transit = Some(transit);
    }

    /// A time in RTP clock units, modulo 2^32.
    fn rtp_units(&self, d: Duration) -> u32 {
        (d.as_nanos() * u128::from(CLOCK_RATE) / 1_000_000_000) as u32
    }

    /// Remembers a Sender Report from this source, for LSR and DLSR.
    pub fn on_sender_report(&mut self, arrival: Instant, ntp_time: u64) {
        self.last_sr = Some(((ntp_time >> 16) as u32, arrival));
    }

    pub fn extended_max_seq(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// A.3: expected minus received; negative with duplicates.
    pub fn cumulative_lost(&self) -> i64 {
        let expected = i64::from(self.extended_max_seq()) - i64::from(self.base_seq) + 1;
        expected - i64::from(self.received)
    }

    /// Interarrival jitter in timestamp units (what the RR carries).
    pub fn jitter(&self) -> u32 {
        self.jitter_q4 >> 4
    }

    pub fn jitter_duration(&self) -> Duration {
        Duration::from_nanos(u64::from(self.jitter()) * 1_000_000_000 / u64::from(CLOCK_RATE))
    }

    /// The report block about this source as of `now`; starts a new report
    /// interval for the loss fraction (A.3).
    pub fn report_block(&mut self, now: Instant) -> ReportBlock {
        let extended_max = self.extended_max_seq();
        let expected = extended_max.wrapping_sub(self.base_seq).wrapping_add(1);
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        // A.3: clamp to the 24-bit signed field, sent as two's complement.
        let lost = self.cumulative_lost().clamp(-0x80_0000, 0x7F_FFFF);
        let (last_sender_report, delay_since_last_sender_report) = match self.last_sr {
            Some((lsr, at)) => (lsr, dlsr(now.saturating_duration_since(at))),
            None => (0, 0),
        };
        ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: (lost as u32) & 0xFF_FFFF,
            extended_sequence_number: extended_max,
            interarrival_jitter: self.jitter(),
            last_sender_report,
            delay_since_last_sender_report,
        }
    }
}

/// DLSR in units of 1/65536 s (§6.4.1), saturating.
fn dlsr(delay: Duration) -> u32 {
    let units = delay.as_nanos() * 65_536 / 1_000_000_000;
    units.min(u128::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSRC: u32 = 0x1234_5678;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_extended_sequence_number_counts_cycles_across_the_wrap() {
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(SSRC, 65_534, t0);
        for seq in [65_534u16, 65_535, 0, 1, 2] {
            assert!(s.on_packet(t0, seq, 0));
        }
        assert_eq!(s.extended_max_seq(), 65_536 + 2);
        assert_eq!(s.cumulative_lost(), 0);
        assert_eq!(s.report_block(t0).extended_sequence_number, 0x0001_0002);
    }

    #[test]
    fn a_reordered_packet_after_the_wrap_does_not_add_a_cycle() {
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(SSRC, 65_535, t0);
        for seq in [65_535u16, 1, 0, 2] {
            s.on_packet(t0, seq, 0);
        }
        assert_eq!(s.extended_max_seq(), 65_538);
        assert_eq!(s.cumulative_lost(), 0);
    }

    #[test]
    fn fraction_lost_is_lost_over_expected_in_256ths_per_interval() {
        // A.3: 100 expected, 90 received in the interval → 10 lost,
        // (10 << 8) / 100 = 25.
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(SSRC, 1000, t0);
        for seq in 1000u16..1100 {
            if seq % 10 != 5 {
                s.on_packet(t0, seq, 0);
            }
        }
        let block = s.report_block(t0);
        assert_eq!((block.fraction_lost, block.cumulative_lost), (25, 10));
        // Next interval: 50 more, none lost. Cumulative stays, fraction is
        // per interval.
        for seq in 1100u16..1150 {
            s.on_packet(t0, seq, 0);
        }
        let block = s.report_block(t0);
        assert_eq!((block.fraction_lost, block.cumulative_lost), (0, 10));
        assert_eq!(block.extended_sequence_number, 1149);
    }

    #[test]
    fn duplicates_make_cumulative_lost_negative_in_24_bit_twos_complement() {
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(SSRC, 1, t0);
        for seq in [1u16, 2, 2, 3] {
            s.on_packet(t0, seq, 0);
        }
        assert_eq!(s.cumulative_lost(), -1);
        let block = s.report_block(t0);
        assert_eq!(block.cumulative_lost, 0xFF_FFFF);
        assert_eq!(block.fraction_lost, 0, "a negative loss reports as zero");
    }

    #[test]
    fn a_large_jump_counts_only_when_the_next_packet_confirms_it() {
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(SSRC, 10, t0);
        s.on_packet(t0, 10, 0);
        s.on_packet(t0, 11, 0);
        assert!(!s.on_packet(t0, 40_000, 0), "one packet far away is bad");
        assert_eq!(s.extended_max_seq(), 11);
        assert!(s.on_packet(t0, 40_001, 0), "the next in sequence re-syncs");
        assert_eq!((s.extended_max_seq(), s.cumulative_lost()), (40_001, 0));
    }

    #[test]
    fn jitter_follows_the_rfc_3550_a8_estimator() {
        // Packets 20 ms apart in timestamp; the second arrives 10 ms late
        // (480 units): D = 480, J = 0 + (480 - 0) / 16 = 30.
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(SSRC, 0, t0);
        s.on_packet(t0, 0, 0);
        s.on_packet(t0 + ms(30), 1, 960);
        assert_eq!(s.jitter(), 30);
        // The third is back on time: D = 480 again, J = 30 + (480 - 30)/16
        // = 58.125 → 58 (integer form: 480 + 480 - 30 = 930 → 930 >> 4).
        s.on_packet(t0 + ms(40), 2, 1920);
        assert_eq!(s.jitter(), 58);
        assert_eq!(s.report_block(t0).interarrival_jitter, 58);
    }

    #[test]
    fn steady_arrivals_have_no_jitter_even_across_a_timestamp_wrap() {
        let t0 = Instant::now();
        let start = u32::MAX - 1000;
        let mut s = ReceiverStats::new(SSRC, 0, t0);
        for i in 0..50u16 {
            let ts = start.wrapping_add(u32::from(i) * 960);
            s.on_packet(t0 + ms(u64::from(i) * 20), i, ts);
        }
        assert_eq!(s.jitter(), 0);
    }

    #[test]
    fn lsr_is_the_middle_of_the_ntp_time_and_dlsr_counts_65536ths() {
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(SSRC, 0, t0);
        s.on_packet(t0, 0, 0);
        let block = s.report_block(t0);
        assert_eq!(
            (
                block.last_sender_report,
                block.delay_since_last_sender_report
            ),
            (0, 0)
        );
        // RFC 3550 §6.4.1 example: an SR with NTP 0xB44DB705:2000 (in its
        // middle bits 0xB705_2000) received, the report sent 5.25 s later
        // carries DLSR 0x0005:4000.
        s.on_sender_report(t0, 0xB44D_B705_2000_0000);
        let block = s.report_block(t0 + ms(5250));
        assert_eq!(block.last_sender_report, 0xB705_2000);
        assert_eq!(block.delay_since_last_sender_report, 0x0005_4000);
    }
}
