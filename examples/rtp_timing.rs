//! Send-time deviation of RTP streams from their ideal media-clock grid, from
//! a packet capture. Used by `scripts/pacing.sh` and `scripts/capacity.sh`;
//! kept in the repo so the figures in the README can be re-derived.
//!
//! Input (stdin): tshark fields `frame.time_epoch KEY rtp.timestamp`, tab
//! separated, where KEY names the stream (`udp.dstport` or `ip.dst`). Output:
//! one line per stream with packet count, p50/p99/max deviation (ms) and
//! clock drift (ppm); with `--pooled`, one line over all streams' packets
//! together (how many streams, p50/p99/max, the largest drift) — for many
//! zones at once (`scripts/capacity.sh`).
//!
//! `--skip SECONDS` leaves out each stream's packets captured in the first
//! SECONDS after that stream's own first packet, before anything is fitted:
//! start-up (probing, encoder warm-up, an initial burst) is excluded the same
//! way for every sender, whenever it started.
//!
//! Each kept packet's ideal send time is `a + b·(rtp_timestamp / 48000)` with
//! `a`, `b` from a least-squares fit over the kept packets; drift is `b − 1`
//! (how fast the sender's clock runs against the capture clock). Deviation is
//! the residual shifted so the earliest kept packet is 0: lateness relative
//! to the sender's own best grid. Lines that do not parse are counted and
//! reported on stderr; a stream with fewer than 10 kept packets is reported
//! on stderr and left out (so a caller that expects it sees it missing).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::process::ExitCode;

#[path = "common/grid.rs"]
mod grid;
use grid::{fit, quantile};

struct Args {
    pooled: bool,
    skip_s: f64,
}

fn args() -> Result<Args, String> {
    let mut parsed = Args { pooled: false, skip_s: 0.0 };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--pooled" => parsed.pooled = true,
            "--skip" => {
                let v = it.next().ok_or("--skip needs a number of seconds")?;
                parsed.skip_s = v.parse().map_err(|_| format!("--skip {v}: not a number of seconds"))?;
            }
            other => return Err(format!("unknown argument {other} (takes --pooled, --skip SECONDS)")),
        }
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rtp_timing: {e}");
            return ExitCode::from(2);
        }
    };
    let mut streams: BTreeMap<String, Vec<(f64, u32)>> = BTreeMap::new();
    let mut unparsed = 0u64;
    for line in std::io::stdin().lock().lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("rtp_timing: reading stdin: {e}");
                return ExitCode::FAILURE;
            }
        };
        let f: Vec<&str> = line.split('\t').collect();
        let parsed = match f.as_slice() {
            [t, key, ts, ..] => t.parse::<f64>().ok().zip(ts.parse::<u32>().ok()).map(|p| (key, p)),
            _ => None,
        };
        match parsed {
            Some((key, (t, ts))) => streams.entry(key.to_string()).or_default().push((t, ts)),
            None => unparsed += 1,
        }
    }
    if unparsed > 0 {
        eprintln!("rtp_timing: {unparsed} input line(s) did not parse and were left out");
    }
    let mut all: Vec<f64> = Vec::new();
    let mut worst_drift: f64 = 0.0;
    let mut count = 0;
    if !args.pooled {
        println!("{:>6} {:>8} {:>9} {:>9} {:>9} {:>10}", "port", "packets", "p50_ms", "p99_ms", "max_ms", "drift_ppm");
    }
    for (key, packets) in streams {
        let first = packets[0].0;
        let kept: Vec<(f64, u32)> = packets.into_iter().filter(|p| p.0 - first >= args.skip_s).collect();
        if kept.len() < 10 {
            eprintln!("rtp_timing: stream {key}: {} packet(s) after the first {} s, too few to fit", kept.len(), args.skip_s);
            continue;
        }
        let (dev, drift) = fit(&kept);
        if args.pooled {
            count += 1;
            worst_drift = worst_drift.max(drift.abs());
            all.extend_from_slice(&dev);
            continue;
        }
        println!(
            "{:>6} {:>8} {:>9.3} {:>9.3} {:>9.3} {:>10.1}",
            key,
            dev.len(),
            quantile(&dev, 0.5),
            quantile(&dev, 0.99),
            dev[dev.len() - 1],
            drift
        );
    }
    if args.pooled {
        if all.is_empty() {
            eprintln!("rtp_timing: no stream to pool");
            return ExitCode::FAILURE;
        }
        all.sort_by(|x, y| x.total_cmp(y));
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
    ExitCode::SUCCESS
}
