//! Helpers for tests of the real daemon: a `loa serve` process on a temp
//! config, the CLI pointed at its socket, and an RTP listener that records
//! every packet of a zone with its arrival time and decodes it with libopus.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::{goertzel_power, poll_until, timed_out, wait_until, LOA};

pub struct Daemon {
    pub child: Option<Child>,
    pub config: PathBuf,
    pub socket: PathBuf,
    pub log: PathBuf,
    pub dir: PathBuf,
}

/// `[network]` + `[daemon]` for a daemon living in `dir` (media root `dir/media`).
pub fn base_config(dir: &Path) -> String {
    format!(
        "[network]\ninterface = \"127.0.0.1\"\n[audio]\nfec = true\n[daemon]\nsocket = \"{0}/loa.sock\"\nstate_dir = \"{0}/state\"\n\
         timezone = \"UTC\"\nmedia_roots = [\"{0}/media\"]\n",
        dir.display()
    )
}

/// A zone table on a fresh group; returns (toml, group, port).
pub fn zone_toml(name: &str) -> (String, String, u16) {
    let (group, port) = super::unique_group();
    (
        format!("[[zone]]\nname = \"{name}\"\ngroup = \"{group}:{port}\"\nsecurity = \"none\"\n"),
        group,
        port,
    )
}

impl Daemon {
    /// Writes `config` to `dir/loa.toml` and starts `loa serve` on it; waits
    /// until `loa status` answers.
    pub fn start(dir: &Path, config: &str) -> Daemon {
        std::fs::create_dir_all(dir.join("media")).unwrap();
        let path = dir.join("loa.toml");
        std::fs::write(&path, config).unwrap();
        Daemon::start_existing(dir)
    }

    /// Starts `loa serve` on the config already in `dir/loa.toml`.
    pub fn start_existing(dir: &Path) -> Daemon {
        Daemon::start_existing_with(dir, &[], &[])
    }

    /// Like `start`, with `loa serve` run through `prefix` (a command that
    /// execs its arguments, e.g. `setpriv` dropping capabilities), so the
    /// child's pid is the daemon's.
    pub fn start_via(dir: &Path, config: &str, prefix: &[&str]) -> Daemon {
        std::fs::create_dir_all(dir.join("media")).unwrap();
        std::fs::write(dir.join("loa.toml"), config).unwrap();
        Daemon::start_existing_with(dir, prefix, &[])
    }

    /// Like `start`, with extra environment for `loa serve` (LD_PRELOAD…).
    pub fn start_env(dir: &Path, config: &str, env: &[(&str, &str)]) -> Daemon {
        std::fs::create_dir_all(dir.join("media")).unwrap();
        std::fs::write(dir.join("loa.toml"), config).unwrap();
        Daemon::start_existing_with(dir, &[], env)
    }

    pub fn start_existing_env(dir: &Path, env: &[(&str, &str)]) -> Daemon {
        Daemon::start_existing_with(dir, &[], env)
    }

    fn start_existing_with(dir: &Path, prefix: &[&str], env: &[(&str, &str)]) -> Daemon {
        let config = dir.join("loa.toml");
        let log = dir.join(format!("daemon-{}.log", now_ms()));
        let mut command = match prefix.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(LOA);
                c
            }
            None => Command::new(LOA),
        };
        let child = command
            .args(["serve", "--config"])
            .arg(&config)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info,symphonia=off")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start loa serve");
        let mut daemon = Daemon {
            child: Some(child),
            config,
            socket: dir.join("loa.sock"),
            log,
            dir: dir.to_path_buf(),
        };
        let answered = poll_until(Duration::from_secs(15), || {
            let out = daemon.loa(&["status"]);
            if out.status.success() {
                return Ok(());
            }
            if let Some(status) = daemon.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("loa serve exited with {status}:\n{}", daemon.log_text());
            }
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        });
        if let Err(said) = answered {
            panic!(
                "{}\ndaemon log:\n{}",
                timed_out("the daemon to answer `loa status`", Duration::from_secs(15), &said),
                daemon.log_text()
            );
        }
        daemon
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs the CLI against this daemon's socket.
    pub fn loa(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(LOA);
        cmd.args(args).arg("--socket").arg(&self.socket);
        cmd.output().unwrap()
    }

    /// Runs the CLI and returns its parsed `--json` output; panics on failure.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.loa(&all);
        assert!(
            out.status.success(),
            "loa {args:?} failed: {}\n{}\ndaemon log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Runs `loa ARGS --json` until `check` holds on its answer and returns
    /// that answer; on timeout panics with the last answer and the log.
    pub fn wait_json(&self, args: &[&str], what: &str, timeout: Duration, mut check: impl FnMut(&Value) -> bool) -> Value {
        let answer = poll_until(timeout, || {
            let answer = self.json(args);
            if check(&answer) {
                Ok(answer)
            } else {
                Err(answer)
            }
        });
        answer.unwrap_or_else(|last| {
            let seen = format!("`loa {} --json` said {last:#}", args.join(" "));
            panic!("{}\ndaemon log:\n{}", timed_out(what, timeout, &seen), self.log_text())
        })
    }

    /// Waits until `check` holds on `loa status --json`; returns that status.
    pub fn wait_status(&self, what: &str, timeout: Duration, check: impl FnMut(&Value) -> bool) -> Value {
        self.wait_json(&["status"], what, timeout, check)
    }

    /// Waits until no program is left: each one ended, failed or was
    /// stopped, so the pacer has sent every packet it had.
    pub fn wait_idle(&self, timeout: Duration) -> Value {
        self.wait_status("every program to end", timeout, |s| {
            s["programs"].as_array().is_some_and(|p| p.is_empty())
        })
    }

    /// Waits until `check` holds on the history rows (`loa history`,
    /// oldest first); returns them.
    pub fn wait_history(&self, what: &str, timeout: Duration, mut check: impl FnMut(&[Value]) -> bool) -> Vec<Value> {
        let answer = self.wait_json(&["history"], what, timeout, |h| check(history_rows(h)));
        history_rows(&answer).to_vec()
    }

    pub fn kill9(&mut self) {
        let mut child = self.child.take().unwrap();
        let _ = child.kill();
        child.wait().unwrap();
    }

    /// SIGTERM and wait; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        let mut child = self.child.take().unwrap();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let exited = poll_until(Duration::from_secs(15), || match child.try_wait() {
            Ok(Some(status)) => Ok(status.success()),
            _ => Err(()),
        });
        exited.unwrap_or_else(|()| {
            let _ = child.kill();
            let _ = child.wait();
            false
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn history_rows(answer: &Value) -> &[Value] {
    answer["rows"].as_array().map_or(&[], Vec::as_slice)
}

pub fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

#[derive(Debug, Clone)]
pub struct Packet {
    pub arrival: SystemTime,
    pub at: Instant,
    pub seq: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub ssrc: u32,
    pub payload: Vec<u8>,
}

/// Records a zone's RTP packets on its group (joined on 127.0.0.1).
pub struct RtpListener {
    packets: Arc<Mutex<Vec<Packet>>>,
    stop: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
}

impl RtpListener {
    pub fn start(group: &str, port: u16) -> RtpListener {
        let group: Ipv4Addr = group.parse().unwrap();
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        // GStreamer's udpsrc sets both; without SO_REUSEPORT here one of
        // the two receivers could not bind the port.
        socket.set_reuse_address(true).unwrap();
        socket.set_reuse_port(true).unwrap();
        socket.bind(&SocketAddrV4::new(group, port).into()).unwrap();
        socket
            .join_multicast_v4(&group, &Ipv4Addr::LOCALHOST)
            .unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let socket: UdpSocket = socket.into();
        let packets = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (packets.clone(), stop.clone());
        let join = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let record = |b: &[u8]| {
                let (arrival, at) = (SystemTime::now(), Instant::now());
                if b.len() < 12 {
                    return;
                }
                p.lock().unwrap().push(Packet {
                    arrival,
                    at,
                    seq: u16::from_be_bytes([b[2], b[3]]),
                    timestamp: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                    marker: b[1] & 0x80 != 0,
                    ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
                    payload: b[12..].to_vec(),
                });
            };
            while !s.load(Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buf) {
                    record(&buf[..n]);
                }
            }
            // Packets sent before the stop wait in the socket: take them
            // too, so a test that waited for a program to end has all of it.
            if socket.set_nonblocking(true).is_ok() {
                while let Ok(n) = socket.recv(&mut buf) {
                    record(&buf[..n]);
                }
            }
        });
        RtpListener {
            packets,
            stop,
            join: Some(join),
        }
    }

    pub fn packets(&self) -> Vec<Packet> {
        self.packets.lock().unwrap().clone()
    }

    /// Waits until `check` holds on the packets heard so far; returns them.
    pub fn wait_packets_where(&self, what: &str, timeout: Duration, mut check: impl FnMut(&[Packet]) -> bool) -> Vec<Packet> {
        wait_until(what, timeout, || {
            let packets = self.packets();
            if check(&packets) {
                Ok(packets)
            } else {
                Err(format!("{} packet(s)", packets.len()))
            }
        })
    }

    /// Waits until at least `count` packets have arrived; returns them.
    pub fn wait_packets(&self, count: usize, timeout: Duration) -> Vec<Packet> {
        self.wait_packets_where(&format!("{count} RTP packets"), timeout, |p| p.len() >= count)
    }

    /// Waits until a packet carries `tone` (one of `candidates`).
    pub fn wait_tone(&self, tone: f32, candidates: &[f32], timeout: Duration) -> Vec<Packet> {
        self.wait_packets_where(&format!("{tone} Hz on air"), timeout, |p| {
            packet_tones(p, candidates).contains(&Some(tone))
        })
    }

    pub fn stop(mut self) -> Vec<Packet> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
        self.packets()
    }
}

impl Drop for RtpListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Decodes each packet (libopus, 48 kHz mono, in order) and labels it with
/// the candidate tone holding most of its energy, or None.
pub fn packet_tones(packets: &[Packet], candidates: &[f32]) -> Vec<Option<f32>> {
    let mut decoder = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
    let mut pcm = vec![0f32; 5760];
    packets
        .iter()
        .map(|p| {
            let n = decoder
                .decode_float(&p.payload, &mut pcm, false)
                .unwrap_or(0);
            let x = &pcm[..n];
            let energy: f32 = x.iter().map(|v| v * v).sum::<f32>() / n.max(1) as f32;
            if energy < 1e-4 {
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

/// Sequence numbers step by exactly one from packet to packet.
pub fn seq_gaps(packets: &[Packet]) -> usize {
    packets
        .windows(2)
        .filter(|w| w[1].seq != w[0].seq.wrapping_add(1))
        .count()
}

/// A daemon with one SRTP zone `z`, taking joins on a port of its own;
/// keepalives every second, dropped after two missed.
pub fn join_daemon(dir: &Path) -> (Daemon, String, String, u16) {
    let (group, port) = super::unique_group();
    // A port of its own (the zone's port + 1 is the health listener's).
    let listen = format!("127.0.0.1:{}", super::unique_group().1);
    let config = format!(
        "{}[speakers]\nlisten = \"{listen}\"\nkeepalive = \"1s\"\nmissed_keepalives = 2\n\
         [[zone]]\nname = \"z\"\ngroup = \"{group}:{port}\"\n",
        base_config(dir)
    );
    (Daemon::start(dir, &config), listen, group, port)
}

/// Enrols `name` on zone `z`; the path of its credential file.
pub fn enrol(daemon: &Daemon, name: &str) -> PathBuf {
    let file = daemon.dir.join(format!("{name}.toml"));
    let out = daemon.loa(&["speakers", "add", name, "--zones", "z", "--out", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    file
}
