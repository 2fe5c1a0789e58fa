//! What a measuring window says about the receivers: each one's arrival
//! deviation from its own 20 ms grid (common/grid.rs), pooled over all of
//! them; lost packets from the sequence numbers; how far apart the first
//! and the last receiver got the same packet (the fan-out within a tick).

use std::collections::HashMap;

use super::grid::{fit, quantile};

/// One verified RTP packet as a receiver got it.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// Kernel receive time, ns since the Unix epoch.
    pub at_ns: i64,
    pub rtp_timestamp: u32,
    pub seq: u16,
    /// The receiving socket's running count of datagrams it dropped for
    /// want of room (this process read too slowly), as of this one.
    pub socket_drops: u32,
}

#[derive(Debug, Default)]
pub struct Figures {
    /// Receivers with at least 10 packets in the window.
    pub heard: usize,
    pub packets: usize,
    pub lost: u64,
    /// Receivers that lost at least one packet.
    pub lossy: usize,
    /// Of the lost packets, those the receiving sockets dropped because
    /// this process did not read them in time: the bench's loss, not
    /// the daemon's or the network's.
    pub socket_drops: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The worst single receiver's own p99.
    pub worst_p99_ms: f64,
    pub worst_drift_ppm: f64,
    /// First to last receiver of the same packet: median and largest.
    pub fanout_p50_ms: f64,
    pub fanout_max_ms: f64,
    /// Pooled p99 of the tenth of receivers served first in each tick, and
    /// of the tenth served last (by their mean place in the fan-out): does
    /// the jitter grow along the send loop?
    pub first_tenth_p99_ms: f64,
    pub last_tenth_p99_ms: f64,
}

/// Packets lost among `seqs` (in arrival order): the span of extended
/// sequence numbers minus the distinct numbers that came.
fn lost(seqs: impl Iterator<Item = u16>) -> u64 {
    let mut extended: Vec<i64> = Vec::new();
    let mut last: Option<i64> = None;
    for seq in seqs {
        let ext = match last {
            None => i64::from(seq),
            Some(prev) => prev + i64::from(seq.wrapping_sub(prev as u16) as i16),
        };
        last = Some(ext.max(last.unwrap_or(ext)));
        extended.push(ext);
    }
    extended.sort_unstable();
    extended.dedup();
    match (extended.first(), extended.last()) {
        (Some(first), Some(last)) => (last - first + 1) as u64 - extended.len() as u64,
        _ => 0,
    }
}

/// The figures of every receiver's packets that arrived in [`from_ns`, `to_ns`).
pub fn window<'a>(receivers: impl Iterator<Item = &'a [Arrival]>, from_ns: i64, to_ns: i64) -> Figures {
    let mut figures = Figures::default();
    let mut pooled: Vec<f64> = Vec::new();
    let mut spans: HashMap<u32, (i64, i64)> = HashMap::new();
    let mut each: Vec<(Vec<f64>, Vec<&Arrival>)> = Vec::new();
    for arrivals in receivers {
        let kept: Vec<&Arrival> = arrivals.iter().filter(|a| a.at_ns >= from_ns && a.at_ns < to_ns).collect();
        if kept.len() < 10 {
            continue;
        }
        figures.heard += 1;
        figures.packets += kept.len();
        let lost = lost(kept.iter().map(|a| a.seq));
        figures.lost += lost;
        figures.lossy += usize::from(lost > 0);
        figures.socket_drops += u64::from(kept[kept.len() - 1].socket_drops.wrapping_sub(kept[0].socket_drops));
        let first = kept[0].at_ns;
        let series: Vec<(f64, u32)> = kept.iter().map(|a| ((a.at_ns - first) as f64 / 1e9, a.rtp_timestamp)).collect();
        let (dev, drift) = fit(&series);
        figures.worst_p99_ms = figures.worst_p99_ms.max(quantile(&dev, 0.99));
        figures.worst_drift_ppm = figures.worst_drift_ppm.max(drift.abs());
        pooled.extend_from_slice(&dev);
        for a in &kept {
            let span = spans.entry(a.rtp_timestamp).or_insert((a.at_ns, a.at_ns));
            span.0 = span.0.min(a.at_ns);
            span.1 = span.1.max(a.at_ns);
        }
        each.push((dev, kept));
    }
    // Each receiver's mean place in the fan-out, then the two tenths.
    let mut placed: Vec<(f64, &Vec<f64>)> = each
        .iter()
        .map(|(dev, kept)| {
            let offset: i64 = kept.iter().map(|a| a.at_ns - spans[&a.rtp_timestamp].0).sum();
            (offset as f64 / kept.len() as f64, dev)
        })
        .collect();
    placed.sort_by(|a, b| a.0.total_cmp(&b.0));
    let tenth = placed.len().div_ceil(10);
    let p99_of = |group: &[(f64, &Vec<f64>)]| {
        let mut all: Vec<f64> = group.iter().flat_map(|(_, dev)| dev.iter().copied()).collect();
        all.sort_by(|x, y| x.total_cmp(y));
        if all.is_empty() { 0.0 } else { quantile(&all, 0.99) }
    };
    figures.first_tenth_p99_ms = p99_of(&placed[..tenth]);
    figures.last_tenth_p99_ms = p99_of(&placed[placed.len() - tenth..]);
    if pooled.is_empty() {
        return figures;
    }
    pooled.sort_by(|x, y| x.total_cmp(y));
    figures.p50_ms = quantile(&pooled, 0.5);
    figures.p99_ms = quantile(&pooled, 0.99);
    figures.max_ms = pooled[pooled.len() - 1];
    let mut fan: Vec<f64> = spans.values().map(|(lo, hi)| (hi - lo) as f64 / 1e6).collect();
    fan.sort_by(|x, y| x.total_cmp(y));
    figures.fanout_p50_ms = quantile(&fan, 0.5);
    figures.fanout_max_ms = fan[fan.len() - 1];
    figures
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_counts_the_gaps_across_a_wrap_and_ignores_duplicates() {
        assert_eq!(lost([65534u16, 65535, 1, 2, 2, 4].into_iter()), 2);
        assert_eq!(lost([7u16, 8, 9].into_iter()), 0);
    }
}
