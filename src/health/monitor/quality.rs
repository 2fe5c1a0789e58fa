//! What one receiver report says of an endpoint: loss, jitter and round
//! trip from the blocks about our stream, and the state they put it in
//! (the rules are in the parent's comment).

use std::collections::VecDeque;
use std::time::Instant;

use super::{transition, Entry, HealthConfig, HealthEvent, Report, State, RECOVER_FRACTION};
use crate::rtp::rtcp::ReportBlock;

/// Round trips above this are measurement garbage (clock steps, forged LSR),
/// not a slow network: 60 s in 1/65536 s units.
const MAX_RTT_UNITS: u32 = 60 * 65536;
/// What one report says of `entry`: its measurements, and the state they
/// put it in. `ssrc` is our sender SSRC of the report's zone: only blocks
/// about it judge quality.
pub(super) fn judge(config: &HealthConfig, events: &mut VecDeque<HealthEvent>, entry: &mut Entry, ssrc: Option<u32>, report: Report, now: Instant) {
    entry.last_report = Some(now);
    if report.cname.is_some() {
        entry.cname = report.cname;
    }

    // Several blocks about us in one packet would be odd; judge by the worst.
    let mut quality: Option<(f64, f64)> = None;
    for block in report.blocks.iter().filter(|b| Some(b.ssrc) == ssrc) {
        let loss = f64::from(block.fraction_lost) * 100.0 / 256.0;
        let clock_rate = f64::from(config.clock_rate.max(1));
        let jitter = f64::from(block.interarrival_jitter) * 1000.0 / clock_rate;
        quality = Some(match quality {
            Some((l, j)) => (l.max(loss), j.max(jitter)),
            None => (loss, jitter),
        });
        if let Some(rtt) = rtt_ms(report.arrival_ntp_mid32, block) {
            entry.rtt_ms = Some(rtt);
        }
    }

    if entry.state == State::Unregistered {
        if let Some((loss, jitter)) = quality {
            entry.loss_pct = Some(loss);
            entry.jitter_ms = Some(jitter);
        }
        return;
    }
    let (to, detail) = match quality {
        Some((loss, jitter)) => {
            entry.loss_pct = Some(loss);
            entry.jitter_ms = Some(jitter);
            let bad = loss >= config.degraded_loss_pct
                || jitter >= config.degraded_jitter_ms;
            let clear = loss < RECOVER_FRACTION * config.degraded_loss_pct
                && jitter < RECOVER_FRACTION * config.degraded_jitter_ms;
            let to = match (bad, clear, entry.state) {
                (true, _, _) => State::Degraded,
                // In the band: no change.
                (false, false, State::Degraded) => return,
                _ => State::Online,
            };
            (to, format!("loss {loss:.1} %, jitter {jitter:.1} ms"))
        }
        None => match entry.state {
            State::Unknown | State::Offline => (State::Online, "report received".to_owned()),
            _ => return,
        },
    };
    transition(events, entry, to, now, detail);
}

/// Round trip from one report block (RFC 3550 §6.4.1): arrival − LSR − DLSR,
/// all in 1/65536 s. `None` without an SR to refer to, or when the result
/// is negative or absurd (forged LSR, clock steps).
fn rtt_ms(arrival_ntp_mid32: u32, block: &ReportBlock) -> Option<f64> {
    if block.last_sender_report == 0 {
        return None;
    }
    let since_sr = arrival_ntp_mid32.wrapping_sub(block.last_sender_report);
    let rtt = since_sr.checked_sub(block.delay_since_last_sender_report)?;
    (rtt <= MAX_RTT_UNITS).then(|| f64::from(rtt) * 1000.0 / 65536.0)
}

