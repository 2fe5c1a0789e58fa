//! A stream's deviation from its own ideal media-clock grid, shared by the
//! examples that judge pacing (`rtp_timing` from a capture,
//! `unicast_speakers` from kernel receive timestamps).
//!
//! Each packet's ideal time is `a + b·(rtp_timestamp / 48000)` with `a`, `b`
//! from a least-squares fit over the packets given; drift is `b − 1` (how
//! fast the sender's clock runs against the measuring clock). Deviation is
//! the residual shifted so the earliest packet is 0: lateness relative to
//! the stream's own best grid, so a constant offset (a receiver that is
//! always served 3 ms into the tick) is not jitter, and a packet that comes
//! late against its neighbours is.

/// The `q` quantile of `sorted` (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Deviations (sorted, ms) and drift (ppm) of one stream's packets, given
/// as (time in seconds, RTP timestamp at 48 kHz) in arrival order; needs at
/// least two packets with different timestamps.
pub fn fit(packets: &[(f64, u32)]) -> (Vec<f64>, f64) {
    // Unwrap RTP timestamps into media seconds since the first packet.
    let mut media = Vec::with_capacity(packets.len());
    let mut acc: i64 = 0;
    let mut prev = packets[0].1;
    for &(t, ts) in packets {
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
    dev.sort_by(|x, y| x.total_cmp(y));
    (dev, (b - 1.0) * 1e6)
}
