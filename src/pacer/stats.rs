//! What the pacer measured over its life: counts, stalls and a fixed-size
//! wake-up lateness histogram (recording never allocates on the pacer
//! thread).
//!
//! Must not touch: the clock (lateness comes in as an argument).

use std::time::Duration;

/// What the pacer measured over its life.
#[derive(Debug, Clone, Default)]
pub struct PacerStats {
    /// Ticks that sent (or tried to); skipped ticks are not counted.
    pub ticks: u64,
    pub packets: u64,
    pub rtcp_packets: u64,
    /// Ticks where a playing program had no frame ready.
    pub underruns: u64,
    pub send_errors: u64,
    /// Packets SRTP could not protect, so not sent (never sent in clear).
    pub seal_errors: u64,
    /// Wake-ups more than `STALL` late (suspend, debugger).
    pub stalls: u64,
    /// Ticks skipped by stalls: their frames were never sent, on any zone.
    pub skipped_ticks: u64,
    /// The latest wake-up of all, stalls included.
    pub longest_stall: Duration,
    /// Events dropped because the engine did not read them: only `Progress`
    /// and `NotSent`, which the next one of their kind supersedes.
    pub dropped_events: u64,
    pub max_lateness: Duration,
    /// Tick at which the worst lateness happened (0 = the first frame).
    pub max_lateness_tick: u64,
    lateness_hist: LatenessHistogram,
}

impl PacerStats {
    pub(crate) fn record_lateness(&mut self, late: Duration) {
        if late > self.max_lateness {
            self.max_lateness_tick = self.ticks;
        }
        self.max_lateness = self.max_lateness.max(late);
        self.lateness_hist.record(late);
    }

    pub(crate) fn record_stall(&mut self, late: Duration, skipped: u64) {
        self.stalls += 1;
        self.skipped_ticks += skipped;
        self.longest_stall = self.longest_stall.max(late);
    }

    /// Wake-up lateness at quantile `q` (0.0–1.0), to histogram resolution.
    pub fn lateness_quantile(&self, q: f64) -> Duration {
        self.lateness_hist.quantile(q)
    }
}

/// Lateness histogram with 10 µs buckets up to 20 ms (plus one overflow
/// bucket): fixed size, so recording never allocates on the pacer thread.
#[derive(Debug, Clone)]
struct LatenessHistogram {
    buckets: Box<[u64]>,
    count: u64,
}

const BUCKET_NS: u64 = 10_000;
const BUCKETS: usize = 2_000;

impl Default for LatenessHistogram {
    fn default() -> Self {
        LatenessHistogram {
            buckets: vec![0; BUCKETS + 1].into_boxed_slice(),
            count: 0,
        }
    }
}

impl LatenessHistogram {
    fn record(&mut self, late: Duration) {
        let index = ((late.as_nanos() as u64) / BUCKET_NS).min(BUCKETS as u64) as usize;
        self.buckets[index] += 1;
        self.count += 1;
    }

    /// Upper bound of the bucket holding quantile `q`.
    fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let rank = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Duration::from_nanos((index as u64 + 1) * BUCKET_NS);
            }
        }
        Duration::from_nanos((BUCKETS as u64 + 1) * BUCKET_NS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_use_bucket_upper_bounds() {
        let mut h = LatenessHistogram::default();
        for us in 0..100 {
            h.record(Duration::from_micros(us));
        }
        assert_eq!(h.quantile(0.5), Duration::from_micros(50));
        assert_eq!(h.quantile(0.99), Duration::from_micros(100));
        h.record(Duration::from_secs(5));
        assert_eq!(h.quantile(1.0), Duration::from_nanos((BUCKETS as u64 + 1) * BUCKET_NS));
    }

    #[test]
    fn stalls_add_up_skipped_ticks_and_keep_the_longest() {
        let mut stats = PacerStats::default();
        stats.record_stall(Duration::from_millis(1500), 75);
        stats.record_stall(Duration::from_millis(1200), 60);
        assert_eq!((stats.stalls, stats.skipped_ticks), (2, 135));
        assert_eq!(stats.longest_stall, Duration::from_millis(1500));
    }
}
