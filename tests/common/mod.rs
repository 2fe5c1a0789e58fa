//! Shared helpers for the integration tests: the network-namespace guard,
//! waiting on conditions, test configs, tone-sequence fixtures, real
//! receivers (GStreamer, ffmpeg, tshark) and tone analysis of what they
//! decoded.
#![allow(dead_code)]

use std::fmt::Debug;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::{Duration, Instant};

pub mod daemon;
pub mod joined;
pub mod nat;

pub const LOA: &str = env!("CARGO_BIN_EXE_loa");

/// Network tests may only run inside the private namespace `make test`
/// creates (scripts/netns.sh): multicast must never reach a real interface.
pub fn require_netns() {
    assert_eq!(
        std::env::var("LOA_IN_NETNS").as_deref(),
        Ok("1"),
        "network tests run only inside a private network namespace: use `make test` \
         (or scripts/netns.sh cargo test)"
    );
}

/// Calls `probe` until it returns `Ok`, for at most `timeout`, and returns
/// that value; `Err` holds what the probe saw on its last call, made at the
/// deadline. For a condition that may rightly never hold (an absence), or
/// one the test's own assert judges right after; everything else uses
/// `wait_until`.
pub fn poll_until<T, S>(timeout: Duration, mut probe: impl FnMut() -> Result<T, S>) -> Result<T, S> {
    let deadline = Instant::now() + timeout;
    // Most conditions hold within milliseconds, so look again quickly at
    // first; then every 50 ms, so a probe that runs the CLI does not load
    // the two cores the daemon under test shares.
    let mut pause = Duration::from_millis(5);
    loop {
        match probe() {
            Ok(value) => return Ok(value),
            Err(seen) if Instant::now() >= deadline => return Err(seen),
            Err(_) => {}
        }
        std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Waits until `probe` returns `Ok` and returns its value. After `timeout`
/// it panics saying what was awaited, for how long, and what the probe saw
/// last (its `Err`), so a failure says more than "timed out". The timeout
/// is only a limit on waiting: a test's own bounds stay in its asserts.
pub fn wait_until<T, S: Debug>(what: &str, timeout: Duration, probe: impl FnMut() -> Result<T, S>) -> T {
    poll_until(timeout, probe).unwrap_or_else(|seen| panic!("{}", timed_out(what, timeout, &format!("{seen:#?}"))))
}

/// The message of a wait that ran out of time.
pub fn timed_out(what: &str, timeout: Duration, seen: &str) -> String {
    format!("waited {timeout:?} for {what}; last seen: {seen}")
}

/// The lines a child process writes on a pipe, read on a thread of their
/// own so a test can wait for one with a timeout instead of blocking on
/// the pipe forever.
pub struct Lines {
    rx: Receiver<String>,
    /// Read but not yet returned by `try_line`/`wait_line`.
    seen: Vec<String>,
}

impl Lines {
    pub fn new(pipe: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) if tx.send(line).is_err() => return,
                    Ok(_) => {}
                }
            }
        });
        Lines { rx, seen: Vec::new() }
    }

    /// Without waiting: if a line containing `needle` has come, the lines
    /// read since the last ones returned, through that one. Panics if the
    /// output ended without it.
    pub fn try_line(&mut self, needle: &str) -> Option<Vec<String>> {
        loop {
            match self.rx.try_recv() {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.seen.push(line);
                    if found {
                        return Some(std::mem::take(&mut self.seen));
                    }
                }
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Disconnected) => {
                    panic!("the output ended before a line containing {needle:?}: {:?}", self.seen)
                }
            }
        }
    }

    /// Waits for a line containing `needle`; returns the lines read since
    /// the last ones returned, through that one.
    pub fn wait_line(&mut self, needle: &str, timeout: Duration) -> Vec<String> {
        wait_until(&format!("a line containing {needle:?}"), timeout, || match self.try_line(needle) {
            Some(lines) => Ok(lines),
            None => Err(self.seen.clone()),
        })
    }

    /// The lines not yet returned and all still to come, up to the end of
    /// the output (the process closed the pipe: it exited).
    pub fn rest(self) -> String {
        self.seen.concat() + &self.rx.iter().collect::<String>()
    }
}

/// A multicast group and port unique to this test process and call, so tests
/// running in parallel never hear each other.
pub fn unique_group() -> (String, u16) {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id() as u16;
    let group = format!("239.255.{}.{}", (pid % 200) + 20, (n % 250) + 1);
    let port = 20_000 + (n * 2) + (pid % 1000) * 20;
    (group, port)
}

pub struct TestZone {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub group: String,
    pub port: u16,
}

/// Writes a config with one zone `z` on a fresh group; `audio` is extra
/// `[audio]` TOML.
pub fn zone_config(audio: &str) -> TestZone {
    let dir = tempfile::tempdir().unwrap();
    let (group, port) = unique_group();
    let config = dir.path().join("loa.toml");
    std::fs::write(
        &config,
        format!(
            "[network]\ninterface = \"127.0.0.1\"\n[audio]\n{audio}\n[[zone]]\nname = \"z\"\ngroup = \"{group}:{port}\"\nsecurity = \"none\"\n"
        ),
    )
    .unwrap();
    TestZone {
        dir,
        config,
        group,
        port,
    }
}

/// Tone frequencies far enough apart to tell apart in 20 ms windows.
pub const TONES: [f32; 6] = [400.0, 600.0, 800.0, 1000.0, 1200.0, 1400.0];

/// Writes a WAV of one-second-style tones: `(frequency, seconds)` pairs.
pub fn write_tones_wav(path: &Path, rate: u32, channels: u16, tones: &[(f32, f32)]) {
    write_tones_wav_at(path, rate, channels, tones, 0.5);
}

/// `write_tones_wav` with the tones' peak `amplitude` (0..1).
pub fn write_tones_wav_at(path: &Path, rate: u32, channels: u16, tones: &[(f32, f32)], amplitude: f32) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &(freq, secs) in tones {
        let n = (secs * rate as f32).round() as usize;
        for i in 0..n {
            let t = i as f32 / rate as f32;
            // Short fades keep tone edges click-free, so the codec does not
            // smear energy across the boundary.
            let fade = (i.min(n - 1 - i) as f32 / (0.005 * rate as f32)).min(1.0);
            let v = (2.0 * std::f32::consts::PI * freq * t).sin() * amplitude * fade;
            for _ in 0..channels {
                w.write_sample((v * i16::MAX as f32) as i16).unwrap();
            }
        }
    }
    w.finalize().unwrap();
}

/// Converts a WAV to another format with ffmpeg (extension picks the codec).
pub fn ffmpeg_convert(input: &Path, output: &Path, extra: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(input)
        .args(extra)
        .arg(output)
        .status()
        .expect("ffmpeg runs (installed by make test)");
    assert!(
        status.success(),
        "ffmpeg conversion to {} failed",
        output.display()
    );
}

/// A background process stopped with SIGINT (so receivers finalise files).
pub struct Background {
    /// Always `Some` until `stop` takes it.
    pub child: Option<Child>,
    pub name: &'static str,
}

impl Background {
    pub fn spawn(name: &'static str, cmd: &mut Command) -> Background {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} (installed by make test): {e}"));
        Background {
            child: Some(child),
            name,
        }
    }

    /// SIGINT, then wait (SIGKILL after `grace`).
    pub fn stop(mut self, grace: Duration) -> Output {
        let mut child = self.child.take().expect("running");
        sigint(child.id());
        let _ = poll_until(grace, || match child.try_wait() {
            Ok(Some(_)) => Ok(()),
            _ => Err(()),
        });
        let _ = child.kill();
        child.wait_with_output().unwrap()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
        }
    }
}

fn sigint(pid: u32) {
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
}

/// Sockets on this host (namespace) joined to multicast `group`, from
/// /proc/net/igmp (the group is printed as its bytes read little-endian).
pub fn group_members(group: &str) -> u32 {
    let Ok(addr) = group.parse::<std::net::Ipv4Addr>() else { return 0 };
    let hex = format!("{:08X}", u32::from_le_bytes(addr.octets()));
    std::fs::read_to_string("/proc/net/igmp")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next() == Some(hex.as_str())).then(|| fields.next()?.parse::<u32>().ok()).flatten()
        })
        .sum()
}

/// Starts a receiver and waits until it has joined `group`: from then on
/// the kernel queues the group's packets for it, however slowly the rest
/// of it starts. (A fixed sleep lost the first tone when a loaded machine
/// started gst-launch slowly.)
fn spawn_joined(name: &'static str, group: &str, cmd: &mut Command) -> Background {
    let before = group_members(group);
    let receiver = Background::spawn(name, cmd);
    wait_until(&format!("{name} to join {group}"), Duration::from_secs(20), || {
        let members = group_members(group);
        if members > before {
            Ok(())
        } else {
            Err(format!("{members} member(s) of the group"))
        }
    });
    receiver
}

/// GStreamer receiver: udpsrc → rtpjitterbuffer → rtpopusdepay → opusdec → WAV.
/// Returns once it has joined the group.
pub fn gst_receiver(group: &str, port: u16, out: &Path) -> Background {
    let caps = "application/x-rtp,media=audio,clock-rate=48000,encoding-name=OPUS,payload=96";
    spawn_joined(
        "gst-launch-1.0",
        group,
        Command::new("gst-launch-1.0").args([
            "-q",
            "-e",
            "udpsrc",
            &format!("address={group}"),
            &format!("port={port}"),
            "multicast-iface=lo",
            &format!("caps={caps}"),
            "!",
            "rtpjitterbuffer",
            "latency=100",
            "!",
            "rtpopusdepay",
            "!",
            "opusdec",
            "!",
            "audioconvert",
            "!",
            "audio/x-raw,channels=1,format=S16LE",
            "!",
            "wavenc",
            "!",
            "filesink",
            &format!("location={}", out.display()),
        ]),
    )
}

/// ffmpeg receiver opening the zone's SDP file. Returns once it has joined
/// the SDP's group.
pub fn ffmpeg_receiver(sdp: &Path, out: &Path) -> Background {
    let text = std::fs::read_to_string(sdp).unwrap();
    let group = text
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))
        .and_then(|c| c.split('/').next())
        .unwrap_or_else(|| panic!("no c= line in {}:\n{text}", sdp.display()));
    spawn_joined(
        "ffmpeg",
        group,
        Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-protocol_whitelist",
                "file,udp,rtp",
                "-i",
            ])
            .arg(sdp)
            .args(["-ac", "1", "-y"])
            .arg(out),
    )
}

/// tshark capture of the zone's RTP and RTCP ports on lo.
pub fn capture(port: u16, out: &Path) -> Background {
    let bg = Background::spawn(
        "tshark",
        Command::new("tshark")
            .args(["-q", "-i", "lo", "-f"])
            .arg(format!("udp dst port {port} or udp dst port {}", port + 1))
            .arg("-w")
            .arg(out),
    );
    // dumpcap opens the interface and sets the filter before it creates
    // the file: once the file is there, packets are captured.
    wait_until(&format!("tshark to create {}", out.display()), Duration::from_secs(20), || {
        out.exists().then_some(()).ok_or("no file yet")
    });
    bg
}

#[derive(Debug, Clone, PartialEq)]
pub struct RtpRecord {
    pub time: f64,
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub payload_type: u8,
}

/// RTP packets from a capture, decoded by tshark.
pub fn rtp_packets(pcap: &Path, port: u16) -> Vec<RtpRecord> {
    let out = Command::new("tshark")
        .args(["-r"])
        .arg(pcap)
        .args([
            "-d",
            &format!("udp.port=={port},rtp"),
            "-Y",
            "rtp",
            "-T",
            "fields",
        ])
        .args([
            "-e",
            "frame.time_epoch",
            "-e",
            "rtp.ssrc",
            "-e",
            "rtp.seq",
            "-e",
            "rtp.timestamp",
        ])
        .args(["-e", "rtp.marker", "-e", "rtp.p_type"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 6 {
                return None;
            }
            Some(RtpRecord {
                time: f[0].parse().ok()?,
                ssrc: u32::from_str_radix(f[1].trim_start_matches("0x"), 16).ok()?,
                seq: f[2].parse().ok()?,
                timestamp: f[3].parse().ok()?,
                marker: f[4] == "1" || f[4] == "True",
                payload_type: f[5].parse().ok()?,
            })
        })
        .collect()
}

/// RTCP packet types (200 SR, 201 RR, 202 SDES, 203 BYE) seen on port+1, in
/// order, one entry per compound packet.
pub fn rtcp_packet_types(pcap: &Path, port: u16) -> Vec<Vec<u8>> {
    let rtcp_port = port + 1;
    let out = Command::new("tshark")
        .args(["-r"])
        .arg(pcap)
        .args([
            "-d",
            &format!("udp.port=={rtcp_port},rtcp"),
            "-Y",
            "rtcp",
            "-T",
            "fields",
            "-e",
            "rtcp.pt",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split(',').filter_map(|p| p.trim().parse().ok()).collect())
        .collect()
}

/// Number of sequence numbers missing between consecutive packets.
pub fn sequence_gaps(packets: &[RtpRecord]) -> usize {
    packets
        .windows(2)
        .map(|w| (w[1].seq.wrapping_sub(w[0].seq) as usize).saturating_sub(1))
        .sum()
}

/// Reads a WAV as mono f32 (channels averaged).
pub fn read_wav_mono(path: &Path) -> (u32, Vec<f32>) {
    let mut r = hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("receiver wrote no readable WAV at {}: {e}", path.display()));
    let spec = r.spec();
    let ch = spec.channels as usize;
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Int => r
            .samples::<i32>()
            .map(|s| s.unwrap_or(0) as f32 / (1i64 << (spec.bits_per_sample - 1)) as f32)
            .collect(),
        hound::SampleFormat::Float => r.samples::<f32>().map(|s| s.unwrap_or(0.0)).collect(),
    };
    let mono = samples
        .chunks(ch)
        .map(|c| c.iter().sum::<f32>() / ch as f32)
        .collect();
    (spec.sample_rate, mono)
}

pub fn goertzel_power(x: &[f32], rate: u32, freq: f32) -> f32 {
    let w = 2.0 * std::f32::consts::PI * freq / rate as f32;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &v in x {
        let s0 = v + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (x.len() as f32 * x.len() as f32)
}

/// A run of one tone found in decoded audio.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub freq: f32,
    pub start: f64,
    pub seconds: f64,
}

/// Splits audio into 10 ms windows, labels each with the candidate tone that
/// holds most of its energy (or silence), and merges runs into segments.
/// Runs shorter than 50 ms (codec transients at edges) are dropped.
pub fn tone_segments(rate: u32, x: &[f32], candidates: &[f32]) -> Vec<Segment> {
    let win = (rate / 100) as usize;
    let mut labels: Vec<Option<f32>> = Vec::new();
    for chunk in x.chunks(win) {
        if chunk.len() < win {
            break;
        }
        let energy: f32 = chunk.iter().map(|v| v * v).sum::<f32>() / chunk.len() as f32;
        if energy < 1e-4 {
            labels.push(None);
            continue;
        }
        let (best, power) = candidates
            .iter()
            .map(|&f| (f, goertzel_power(chunk, rate, f)))
            .fold((0.0, 0.0), |a, b| if b.1 > a.1 { b } else { a });
        // A pure sine of amplitude A has power ≈ A²/4 here and energy A²/2.
        labels.push(if power > 0.25 * energy {
            Some(best)
        } else {
            None
        });
    }
    let mut segments: Vec<Segment> = Vec::new();
    let mut i = 0;
    while i < labels.len() {
        let j = (i..labels.len())
            .find(|&j| labels[j] != labels[i])
            .unwrap_or(labels.len());
        if let Some(freq) = labels[i] {
            let seconds = (j - i) as f64 * 0.01;
            if seconds >= 0.05 {
                // Merge with the previous segment of the same tone when only
                // a short blip separated them.
                match segments.last_mut() {
                    Some(last)
                        if last.freq == freq
                            && i as f64 * 0.01 - (last.start + last.seconds) < 0.05 =>
                    {
                        last.seconds = j as f64 * 0.01 - last.start;
                    }
                    _ => segments.push(Segment {
                        freq,
                        start: i as f64 * 0.01,
                        seconds,
                    }),
                }
            }
        }
        i = j;
    }
    segments
}

/// Asserts that `segments` are exactly `expected` tones, in order, each once,
/// each lasting its expected time within `tolerance` seconds.
pub fn assert_tones(segments: &[Segment], expected: &[(f32, f32)], tolerance: f64, what: &str) {
    let got: Vec<f32> = segments.iter().map(|s| s.freq).collect();
    let want: Vec<f32> = expected.iter().map(|t| t.0).collect();
    assert_eq!(
        got, want,
        "{what}: tones in order, each once; segments: {segments:#?}"
    );
    for (seg, &(freq, secs)) in segments.iter().zip(expected) {
        assert!(
            (seg.seconds - secs as f64).abs() <= tolerance,
            "{what}: tone {freq} Hz lasted {:.3} s, expected {secs} s ± {tolerance}; segments: {segments:#?}",
            seg.seconds
        );
    }
}

/// `text` without its ANSI colour codes: the daemon's log is a file, but
/// tracing colours it all the same.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // ESC [ parameters… m
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

/// Runs `loa` with args to completion.
pub fn loa(args: &[&str]) -> Output {
    Command::new(LOA).args(args).output().unwrap()
}

/// The Opus settings the tests encode their own streams with: mono, 20 ms,
/// 32 kbit/s, complexity 5, no FEC, payload type 96.
pub fn test_audio() -> loa::config::Audio {
    use loa::config::{Audio, Channels, FrameDuration};
    Audio {
        channels: Channels::Mono,
        frame: FrameDuration::Ms20,
        bitrate_bps: 32_000,
        complexity: 5,
        fec: false,
        expected_loss_pct: 0,
        payload_type: 96,
        loudness: Default::default(),
    }
}

/// `count` Opus frames (20 ms each) of a steady `freq` tone at
/// `amplitude`: an attacker's programme, loud and easy to find.
pub fn tone_frames(freq: f32, amplitude: f32, count: usize) -> Vec<Vec<u8>> {
    use loa::media::opus::{OpusEncoder, MAX_PAYLOAD_BYTES};
    let mut encoder = OpusEncoder::new(&test_audio()).unwrap();
    let mut out = [0u8; MAX_PAYLOAD_BYTES];
    (0..count)
        .map(|n| {
            let pcm: Vec<f32> = (0..960)
                .map(|i| amplitude * (2.0 * std::f32::consts::PI * freq * (n * 960 + i) as f32 / 48_000.0).sin())
                .collect();
            let len = encoder.encode(&pcm, &mut out).unwrap();
            out[..len].to_vec()
        })
        .collect()
}

/// A plain RTP packet, payload type 96.
pub fn rtp_packet(ssrc: u32, seq: u16, timestamp: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0x80, 96 | if marker { 0x80 } else { 0 }];
    b.extend(seq.to_be_bytes());
    b.extend(timestamp.to_be_bytes());
    b.extend(ssrc.to_be_bytes());
    b.extend(payload);
    b
}
