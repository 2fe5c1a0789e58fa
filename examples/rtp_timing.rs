//! Send-time deviation of RTP streams from their ideal media-clock grid, from
//! a packet capture. Used by `scripts/pacing.sh`; kept in the repo so the
//! figures in the README can be re-derived.
//!
//! Input (stdin): tshark fields `frame.time_epoch KEY rtp.timestamp`, tab
//! separated, where KEY names the stream (`udp.dstport` or `ip.dst`). Output:
//! one line per stream with packet count, p50/p99/max deviation (ms) and
//! clock drift (ppm); with `--pooled`, one line over all streams' packets
//! together (how many streams, p50/p99/max, the largest drift) — for many
//! zones at once (`scripts/capacity.sh`).
//!
//! Each packet's ideal send time is `a + b·(rtp_timestamp / 48000)` with `a`,
//! `b` from a least-squares fit; drift is `b − 1` (how fast the sender's clock
//! runs against the capture clock). Deviation is the residual shifted so the
//! earliest packet is 0: lateness relative to the sender's own best grid.

use std::collections::BTreeMap;
use std::io::BufRead;

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn main() {
    let pooled = std::env::args().any(|a| a == "--pooled");
    let mut streams: BTreeMap<String, Vec<(f64, u32)>> = BTreeMap::new();
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 3 {
            continue;
        }
        let (Ok(t), Ok(ts)) = (f[0].parse::<f64>(), f[2].parse::<u32>()) else {
            continue;
        };
        streams.entry(f[1].to_string()).or_default().push((t, ts));
    }
    let mut all: Vec<f64> = Vec::new();
    let mut worst_drift: f64 = 0.0;
    let mut count = 0;
    if !pooled {
        println!("{:>6} {:>8} {:>9} {:>9} {:>9} {:>10}", "port", "packets", "p50_ms", "p99_ms", "max_ms", "drift_ppm");
    }
    for (port, packets) in streams {
        if packets.len() < 10 {
            continue;
        }
        // Unwrap RTP timestamps into media seconds since the first packet.
        let mut media = Vec::with_capacity(packets.len());
        let mut acc: i64 = 0;
        let mut prev = packets[0].1;
        for &(t, ts) in &packets {
            acc += ts.wrapping_sub(prev) as i32 as i64;
            prev = ts;
            media.push((acc as f64 / 48_000.0, t - packets[0].0));
        }
        let n = media.len() as f64;
        let (sx, sy) = media.iter().fold((0.0, 0.0), |a, &(x, y)| (a.0 + x, a.1 + y));
        let (mx, my) = (sx / n, sy / n);
        let (sxy, sxx) = media
            .iter()
            .fold((0.0, 0.0), |a, &(x, y)| (a.0 + (x - mx) * (y - my), a.1 + (x - mx) * (x - mx)));
        let b = sxy / sxx;
        let a = my - b * mx;
        let residuals: Vec<f64> = media.iter().map(|&(x, y)| y - (a + b * x)).collect();
        let min = residuals.iter().cloned().fold(f64::INFINITY, f64::min);
        let mut dev: Vec<f64> = residuals.iter().map(|r| (r - min) * 1e3).collect();
        dev.sort_by(|x, y| x.partial_cmp(y).unwrap());
        if pooled {
            count += 1;
            worst_drift = worst_drift.max(((b - 1.0) * 1e6).abs());
            all.extend_from_slice(&dev);
            continue;
        }
        println!(
            "{:>6} {:>8} {:>9.3} {:>9.3} {:>9.3} {:>10.1}",
            port,
            dev.len(),
            quantile(&dev, 0.5),
            quantile(&dev, 0.99),
            dev[dev.len() - 1],
            (b - 1.0) * 1e6
        );
    }
    if pooled && !all.is_empty() {
        all.sort_by(|x, y| x.partial_cmp(y).unwrap());
        println!(
            "streams {} packets {} p50_ms {:.3} p99_ms {:.3} max_ms {:.3} worst_drift_ppm {:.1}",
            count,
            all.len(),
            quantile(&all, 0.5),
            quantile(&all, 0.99),
            all[all.len() - 1],
            worst_drift
        );
    }
}
