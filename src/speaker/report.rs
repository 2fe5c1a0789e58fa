//! When the speaker sends its Receiver Reports (sans-IO): RFC 3550 §6.3
//! for a receiver in a small session — the minimum interval Tmin (5 s),
//! halved for the first report (§6.2), each draw scaled by a uniform factor
//! in [0.5, 1.5] (§6.3.1) so receivers that started together spread out.
//!
//! Owns: the report schedule. Must not touch: sockets, clocks (`now` comes
//! in), packet contents.
//!
//! With a handful of members the bandwidth term of §6.3.1 (members × avg
//! size / RTCP bandwidth) is far below Tmin, so it is left out; a speaker
//! has no view of the member count anyway beyond itself and the sender.

use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// RFC 3550 §6.2 minimum report interval.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct ReportTimer {
    min: Duration,
    next: Instant,
    rng: SmallRng,
}

impl ReportTimer {
    /// `min` is Tmin (5 s unless a test overrides it); `seed` drives the
    /// randomisation.
    pub fn new(now: Instant, min: Duration, seed: u64) -> ReportTimer {
        let mut timer = ReportTimer {
            min,
            next: now,
            rng: SmallRng::seed_from_u64(seed),
        };
        timer.next = now + timer.draw(min / 2);
        timer
    }

    pub fn poll_timeout(&self) -> Instant {
        self.next
    }

    /// True when a report is due; the next one is then scheduled.
    pub fn poll(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now + self.draw(self.min);
        true
    }

    fn draw(&mut self, base: Duration) -> Duration {
        base.mul_f64(self.rng.random_range(0.5..=1.5))
    }
}

/// Reports and BYE: RFC 3550 RR with SDES, sealed as SRTCP when the speaker
/// holds keys, to the daemon's RTCP address.
impl super::Speaker {
    pub(super) fn send_report(&mut self, now: Instant) {
        let blocks: Vec<_> = self
            .source
            .as_mut()
            .map(|s| s.report_block(now))
            .into_iter()
            .collect();
        crate::rtp::rtcp::write_receiver_report(&mut self.packet, self.ssrc, &blocks, &self.cname);
        if self.send_rtcp() {
            self.stats.reports += 1;
        }
        // Joined: loa's answer to it is awaited (`downstream`).
        if let Some(check) = self.tls_uplink.as_mut().and_then(|t| t.check.as_mut()) {
            check.rule.keepalive_sent(now);
        }
    }

    pub(super) fn send_bye(&mut self) {
        crate::rtp::rtcp::write_bye(
            &mut self.packet,
            self.ssrc,
            None,
            &self.cname,
            Some("speaker stopped"),
        );
        self.send_rtcp();
    }

    fn send_rtcp(&mut self) -> bool {
        let Some(to) = self.rtcp_to else {
            return false;
        };
        // TLS fallback: a copy inside the connection too, sealed on its own
        // (the same sealed packet twice would be a replay the second time).
        let mut tls_copy = self.tls_uplink.as_ref().filter(|t| t.active).map(|_| self.packet.clone());
        if let Some(uplink) = self.uplink.as_mut() {
            let zone_key = self.gate.as_ref().and_then(super::Gate::current_mki).filter(|_| self.uplink_follows_zone);
            if let Some(mki) = zone_key.filter(|m| uplink.active_mki() != Some(*m)) {
                let _ = uplink.use_key(mki);
            }
            if let Err(e) = uplink.protect_rtcp(&mut self.packet) {
                tracing::warn!(error = %e, "cannot protect a report");
                return false;
            }
            if let Some(copy) = tls_copy.as_mut() {
                if uplink.protect_rtcp(copy).is_err() {
                    tls_copy = None;
                }
            }
        }
        let sent_tls = match (tls_copy, &self.tls_uplink) {
            (Some(copy), Some(tls)) => tls.send(copy),
            _ => false,
        };
        // `--tls-only`: nothing by UDP, ever.
        if self.tls_uplink.as_ref().is_some_and(|t| !t.udp) {
            return sent_tls;
        }
        match self.report_socket.send_to(&self.packet, to) {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, %to, "cannot send rtcp report");
                sent_tls
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_report_comes_within_half_to_one_and_a_half_half_intervals() {
        let t0 = Instant::now();
        for seed in 0..50 {
            let timer = ReportTimer::new(t0, MIN_INTERVAL, seed);
            let first = timer.poll_timeout() - t0;
            assert!(
                first >= Duration::from_millis(1250) && first <= Duration::from_millis(3750),
                "{first:?}"
            );
        }
    }

    #[test]
    fn later_reports_are_randomised_around_the_minimum_interval() {
        let t0 = Instant::now();
        let mut timer = ReportTimer::new(t0, MIN_INTERVAL, 7);
        let mut now = timer.poll_timeout();
        assert!(!timer.poll(now - Duration::from_millis(1)));
        let mut intervals = Vec::new();
        for _ in 0..200 {
            assert!(timer.poll(now));
            intervals.push((timer.poll_timeout() - now).as_secs_f64());
            now = timer.poll_timeout();
        }
        assert!(intervals.iter().all(|&i| (2.5..=7.5).contains(&i)));
        let mean = intervals.iter().sum::<f64>() / intervals.len() as f64;
        assert!((mean - 5.0).abs() < 0.3, "mean {mean}");
        assert!(
            intervals.iter().any(|&i| i < 4.0) && intervals.iter().any(|&i| i > 6.0),
            "spread"
        );
    }

    #[test]
    fn a_shorter_minimum_for_tests_is_honoured() {
        let t0 = Instant::now();
        let timer = ReportTimer::new(t0, Duration::from_millis(500), 1);
        assert!(timer.poll_timeout() - t0 <= Duration::from_millis(375));
    }
}
