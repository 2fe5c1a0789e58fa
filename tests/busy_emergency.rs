//! An emergency on a busy daemon (issue: "no decision may wait for another
//! program's preparation"): while programs on distinct, never-played files
//! are started one after another with `loa play`, `loa play --priority
//! emergency` on one zone is timed from the command to its first packet on
//! the wire, several times; the starts themselves are timed too.
//!
//! A measurement of minutes, so ignored by `make test`:
//! `scripts/netns.sh scripts/busy-emergency.sh` builds the files and runs
//! it with these settings (environment):
//!   LOA_BUSY_MEDIA        folder of `prog-*.mp3` (required)
//!   LOA_BUSY_PROGRAMS     programs started one after another (60)
//!   LOA_BUSY_ZONES        zones; program i plays on zone i mod ZONES (16)
//!   LOA_BUSY_EMERGENCIES  emergencies at least (5); they go on, one every
//!                         1.2 s, as long as the starts run
//!   LOA_BUSY_PARALLEL     sequences of starts running at once (1)
//!   LOA_BUSY_IDLE=1       the emergencies on an idle daemon instead

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use common::daemon::{base_config, zone_toml, Daemon, Packet, RtpListener};
use common::{goertzel_power, require_netns, write_tones_wav_at, LOA};

/// The emergency's tone; the programs' files hold none of it.
const ALERT_HZ: f32 = 1400.0;
const ALERT_SECONDS: f32 = 0.6;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// "p50 X ms, max Y ms" of `values`.
fn summary(values: &[Duration]) -> String {
    let mut v: Vec<f64> = values.iter().copied().map(millis).collect();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return "no values".into();
    }
    format!("p50 {:.1} ms, max {:.1} ms", v[(v.len() - 1) / 2], v[v.len() - 1])
}

/// The candidate tone holding most of each packet's energy, decoding each
/// packet on its own (a fresh decoder): the zone's stream switches from a
/// program's encoder to the emergency's, and a decoder that goes on from the
/// program's packets garbles the first packet of the new encoder, which
/// would count one frame too late.
fn packet_tones(packets: &[Packet], candidates: &[f32]) -> Vec<Option<f32>> {
    let mut pcm = vec![0f32; 5760];
    packets
        .iter()
        .map(|p| {
            let mut decoder = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
            let n = decoder.decode_float(&p.payload, &mut pcm, false).unwrap_or(0);
            let x = &pcm[..n];
            let energy: f32 = x.iter().map(|v| v * v).sum::<f32>() / n.max(1) as f32;
            if energy < 1e-5 {
                return None;
            }
            let (best, power) = candidates
                .iter()
                .map(|&f| (f, goertzel_power(x, 48_000, f)))
                .fold((0.0, 0.0), |a, b| if b.1 > a.1 { b } else { a });
            (power > 0.25 * energy).then_some(best)
        })
        .collect()
}

/// The daemon's log without its colour codes (ESC [ … m).
fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Wall-clock instants of the log lines holding all of `marks`.
fn log_times(log: &str, marks: &[&str]) -> Vec<SystemTime> {
    log.lines()
        .filter(|line| marks.iter().all(|m| line.contains(m)))
        .filter_map(|line| {
            // The first word: RFC 3339 UTC.
            let at: jiff::Timestamp = line.split_whitespace().next()?.parse().ok()?;
            Some(SystemTime::UNIX_EPOCH + Duration::from_nanos(at.as_nanosecond() as u64))
        })
        .collect()
}

fn program_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("LOA_BUSY_MEDIA {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("prog-") && n.ends_with(".mp3")))
        .collect();
    files.sort();
    files
}

#[test]
#[ignore = "a measurement of minutes: scripts/busy-emergency.sh runs it"]
fn an_emergency_goes_on_air_within_100_ms_while_programs_start_one_after_another() {
    require_netns();
    let media_src = PathBuf::from(std::env::var("LOA_BUSY_MEDIA").expect("LOA_BUSY_MEDIA: the folder of prog-*.mp3"));
    let programs = setting("LOA_BUSY_PROGRAMS", 60);
    let zones = setting("LOA_BUSY_ZONES", 16).max(1);
    let emergencies = setting("LOA_BUSY_EMERGENCIES", 5);
    let parallel = setting("LOA_BUSY_PARALLEL", 1).max(1);
    let idle = std::env::var("LOA_BUSY_IDLE").is_ok_and(|v| v == "1");
    let files = program_files(&media_src);
    assert!(files.len() >= programs, "{} holds {} prog-*.mp3, {programs} needed", media_src.display(), files.len());

    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    let mut config = base_config(dir.path());
    let mut alert_zone = None;
    for z in 0..zones {
        let (toml, group, port) = zone_toml(&format!("z{z}"));
        config.push_str(&toml);
        if z == 0 {
            alert_zone = Some((group, port));
        }
    }
    let (group, port) = alert_zone.unwrap();
    // Every emergency is a file never played before (a new recording).
    for file in files.iter().take(programs) {
        // Inside the media folder for real (a symlink out of it is refused).
        let to = media.join(file.file_name().unwrap());
        if std::fs::hard_link(file, &to).is_err() {
            std::fs::copy(file, &to).unwrap();
        }
    }
    let mut daemon = Daemon::start(dir.path(), &config);
    let listener = RtpListener::start(&group, port);

    // The starts, one after another, each `loa play` waiting for its
    // answer (in `parallel` such sequences at once).
    let socket = daemon.socket.clone();
    let names: Vec<String> = files.iter().take(programs).map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    let mut starter = Some(std::thread::spawn(move || {
        let begun = Instant::now();
        let sequences: Vec<_> = (0..parallel)
            .map(|lane| {
                let (names, socket) = (names.clone(), socket.clone());
                std::thread::spawn(move || {
                    let mut each = Vec::new();
                    for (i, name) in names.iter().enumerate().skip(lane).step_by(parallel) {
                        let zone = format!("z{}", i % zones);
                        let t = Instant::now();
                        let out = Command::new(LOA)
                            .args(["play", "--zones", &zone, "--priority", "scheduled", name, "--socket"])
                            .arg(&socket)
                            .output()
                            .unwrap();
                        each.push(t.elapsed());
                        assert!(out.status.success(), "loa play {name}: {}", String::from_utf8_lossy(&out.stderr));
                    }
                    each
                })
            })
            .collect();
        let each: Vec<Duration> = sequences.into_iter().flat_map(|s| s.join().unwrap()).collect();
        (each, begun.elapsed())
    }));
    let mut starts = None;
    if idle {
        starts = starter.take().map(|s| s.join().unwrap());
    } else {
        // Let the load build up.
        std::thread::sleep(Duration::from_secs(1));
    }

    let mut commands = Vec::new();
    for k in 0.. {
        let starting = starter.as_ref().is_some_and(|s| !s.is_finished());
        if k >= emergencies && !starting {
            break;
        }
        let alert = media.join(format!("alert-{k}.wav"));
        if !alert.exists() {
            write_tones_wav_at(&alert, 48_000, 1, &[(ALERT_HZ, ALERT_SECONDS)], 0.4 + 0.001 * k as f32);
        }
        let command = Instant::now();
        let wall = SystemTime::now();
        let out = daemon.loa(&["play", "--zones", "z0", "--priority", "emergency", &format!("alert-{k}.wav")]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        commands.push((command, wall, starter.as_ref().is_none_or(|s| s.is_finished())));
        // Its whole tone, then the scheduled program back for a while.
        std::thread::sleep(Duration::from_secs_f32(ALERT_SECONDS + 0.6));
    }

    let (each, total) = match starter {
        Some(starter) => starter.join().unwrap(),
        None => starts.unwrap_or_default(),
    };
    let packets = listener.stop();

    let tones = packet_tones(&packets, &[400.0, 600.0, 800.0, 1000.0, 1200.0, ALERT_HZ]);
    let latencies: Vec<(Duration, bool)> = commands
        .iter()
        .map(|&(command, _, starts_over)| {
            packets
                .iter()
                .zip(&tones)
                .find(|(p, t)| p.at > command && **t == Some(ALERT_HZ))
                .map(|(p, _)| (p.at - command, !starts_over))
                .unwrap_or_else(|| panic!("an emergency never arrived on z0:\n{}", daemon.log_text()))
        })
        .collect();
    // Where the time went, from the daemon's log: the CLI reaching the
    // daemon, the program admitted (prepared, prefilled), its first packet.
    let log = plain(&daemon.log_text());
    let received = log_times(&log, &["broadcast.start", "priority=emergency"]);
    let admitted = log_times(&log, &["on air on [z0]", "priority=emergency"]);
    let mut parts: [Vec<Duration>; 3] = Default::default();
    for (k, &(_, wall, _)) in commands.iter().enumerate() {
        let (Some(&received), Some(&admitted), Some(&(total, _))) = (received.get(k), admitted.get(k), latencies.get(k)) else {
            continue;
        };
        let sent = wall + total;
        for (part, (from, to)) in parts.iter_mut().zip([(wall, received), (received, admitted), (admitted, sent)]) {
            part.push(to.duration_since(from).unwrap_or_default());
        }
    }
    println!(
        "emergency latency parts (p50/max): command to daemon {}; to admitted {}; to first packet {}",
        summary(&parts[0]),
        summary(&parts[1]),
        summary(&parts[2])
    );
    // A start that waits must not cost a playing program its frames.
    assert!(daemon.stop(), "loa serve did not stop cleanly");
    let log = plain(&daemon.log_text());
    let underruns: u64 = log
        .lines()
        .find(|line| line.contains("pacer stopped"))
        .and_then(|line| line.split("underruns=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no pacer figures in the log:\n{log}"));
    println!("pacer underruns over the whole run: {underruns}");
    let during: Vec<Duration> = latencies.iter().filter(|l| l.1).map(|l| l.0).collect();
    let after: Vec<Duration> = latencies.iter().filter(|l| !l.1).map(|l| l.0).collect();
    println!("emergency latencies (ms), * while starts ran: {}", latencies.iter().map(|(d, s)| format!("{:.1}{}", millis(*d), if *s { "*" } else { "" })).collect::<Vec<_>>().join(" "));
    if idle {
        println!("emergency latency on an idle daemon over {}: {}", after.len(), summary(&after));
    } else {
        println!("emergency latency while {programs} programs start on {zones} zones, over {}: {}", during.len(), summary(&during));
        println!("emergency latency after the starts, {programs} programs on {zones} zones, over {}: {}", after.len(), summary(&after));
        println!(
            "program start (loa play to its answer) over {programs}, {parallel} at a time: {}, {:.0} ms per program ({:.1} s in all)",
            summary(&each),
            millis(total) / programs.max(1) as f64,
            total.as_secs_f64()
        );
    }
    assert_eq!(underruns, 0, "playing programs missed frames");
    for (latency, _) in &latencies {
        assert!(*latency < Duration::from_millis(100), "an emergency took {latency:?} to go on air");
    }
}
