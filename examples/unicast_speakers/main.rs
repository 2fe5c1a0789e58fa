//! Many joined speakers in one process, for `make bench` (issue 15 point 8;
//! scripts/bench-unicast.sh runs it in the private namespace):
//!
//!  1. enrols `--count` + `--first-audio` speakers through the control
//!     socket (`speakers.add`, what `loa speakers add` calls: the daemon
//!     makes each key and certificate and writes its audit row), writing
//!     each credential file 0600;
//!  2. **join to first audio**, `--first-audio` times, with the program
//!     already on air: from the moment `loa speaker --join`'s own join code
//!     (`loa::speaker::join`) starts the TCP connect to the kernel receive
//!     time of the first packet that verifies (auth tag and replay window,
//!     `loa::speaker::Gate`), each speaker leaving before the next joins;
//!  3. **reference**: one joined speaker alone on the zone for
//!     `--reference-secs`;
//!  4. **N speakers**: the other `--count` − 1 join (`--joiners` threads),
//!     and after `--settle` all `--count` are measured for `--secs`.
//!
//! Every speaker keeps its own UDP socket, sends its SRTCP keepalive at
//! once and every `keepalive` the welcome gives, as `loa speaker --join`
//! does, and verifies its stream: every datagram until one verifies, then
//! one in `--verify-every` (10; see `Receiver::read` for why not all),
//! the others taken by their clear header under the verified SSRC. Per
//! receiver, the arrival jitter is each packet's kernel receive time
//! (SO_TIMESTAMPNS) against
//! that receiver's own ideal 20 ms grid (a least-squares fit of arrival
//! time on RTP timestamp, common/grid.rs, as examples/rtp_timing does for
//! a capture); the deviations of all receivers are pooled for p50/p99/max.
//! Lost packets come from each receiver's sequence numbers in the window.
//! The daemon's CPU (and its pacer thread's) is read from /proc over each
//! window, its skipped ticks and unsent packets from `status` before and
//! after. Underruns are counted by the pacer and said when the daemon
//! stops (the script reads that line).
//!
//! At the end the process exits without a goodbye per session: the daemon
//! sees the connections close.

#[path = "../common/grid.rs"]
mod grid;
mod figures;
mod keepalive;
mod net;

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use figures::Arrival;
use loa::cli::client::Client;
use loa::proto::speakers::SpeakersAddParams;
use loa::proto::status::StatusParams;
use loa::rtp::srtp::is_rtcp;
use loa::speaker::gate::Gate;
use loa::speaker::join::{Control, JoinOptions, Joined};
use loa::speaker::Datagram;
use keepalive::{Keepalives, Keeper};
use net::Poller;

const USAGE: &str = "unicast_speakers --socket PATH --listen ADDR:PORT --zone Z --dir DIR --daemon-pid PID \
     [--count N] [--first-audio K] [--reference-secs S] [--secs S] [--settle S] [--joiners T] [--verify-every K]";

struct Args {
    socket: PathBuf,
    listen: String,
    zone: String,
    dir: PathBuf,
    daemon_pid: u32,
    count: usize,
    first_audio: usize,
    reference_secs: f64,
    secs: f64,
    settle_secs: f64,
    joiners: usize,
    verify_every: u64,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        socket: PathBuf::new(),
        listen: String::new(),
        zone: String::new(),
        dir: PathBuf::new(),
        daemon_pid: 0,
        count: 1000,
        first_audio: 10,
        reference_secs: 15.0,
        secs: 30.0,
        settle_secs: 3.0,
        joiners: 4,
        verify_every: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value ({USAGE})"))?;
        let number = |v: &str| v.parse::<f64>().map_err(|_| format!("{flag} {v}: not a number"));
        match flag.as_str() {
            "--socket" => a.socket = value.into(),
            "--listen" => a.listen = value,
            "--zone" => a.zone = value,
            "--dir" => a.dir = value.into(),
            "--daemon-pid" => a.daemon_pid = number(&value)? as u32,
            "--count" => a.count = number(&value)? as usize,
            "--first-audio" => a.first_audio = number(&value)? as usize,
            "--reference-secs" => a.reference_secs = number(&value)?,
            "--secs" => a.secs = number(&value)?,
            "--settle" => a.settle_secs = number(&value)?,
            "--joiners" => a.joiners = (number(&value)? as usize).max(1),
            "--verify-every" => a.verify_every = (number(&value)? as u64).max(1),
            other => return Err(format!("unknown argument {other} ({USAGE})")),
        }
    }
    if a.listen.is_empty() || a.zone.is_empty() || a.dir.as_os_str().is_empty() || a.daemon_pid == 0 || a.count == 0 {
        return Err(format!("missing arguments ({USAGE})"));
    }
    Ok(a)
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// Enrols each name on `zone`; the credential files, written 0600.
fn enrol(args: &Args, names: &[String]) -> Result<Vec<PathBuf>, String> {
    let mut client = Client::connect(&args.socket, Duration::from_secs(30)).map_err(|e| e.to_string())?;
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let params = SpeakersAddParams { name: name.clone(), zones: vec![args.zone.clone()] };
        let added = client.call(&params).map_err(|e| format!("cannot enrol {name}: {e}"))?;
        let file = args.dir.join(format!("{name}.toml"));
        write_secret(&file, &added.credential)?;
        files.push(file);
    }
    Ok(files)
}

fn write_secret(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    f.write_all(text.as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A joined session and the queue its TLS connection would put audio in
/// (the fallback; never used here, since UDP gets through, but the reader
/// thread ends when nobody holds it).
struct Session {
    joined: Joined,
    tls_media: mpsc::Receiver<Datagram>,
}

fn join(args: &Args, credential: &Path) -> Result<Session, String> {
    let options = JoinOptions { daemon: args.listen.clone(), credential: credential.to_path_buf(), multicast: None, tls_only: false };
    let (datagrams, tls_media) = mpsc::sync_channel(64);
    let joined = loa::speaker::join::join(&options, Ipv4Addr::LOCALHOST, datagrams).map_err(|e| e.to_string())?;
    Ok(Session { joined, tls_media })
}

/// One joined speaker: its session, the gate every datagram goes through
/// and what verified. Its keepalives are a [`Keeper`] of their own.
struct Receiver {
    name: String,
    joined: Joined,
    _tls_media: mpsc::Receiver<Datagram>,
    gate: Gate,
    arrivals: Vec<Arrival>,
    ended: Option<String>,
    /// Datagrams read, RTP packets verified, and the SSRC they verified under.
    seen: u64,
    verified: u64,
    verified_ssrc: Option<u32>,
}

impl Receiver {
    fn new(name: String, session: Session) -> Result<(Receiver, Keeper), String> {
        let Session { mut joined, tls_media } = session;
        let zone = joined.zones.first().ok_or("the session granted no zone")?;
        let gate = Gate::new(zone.crypto.clone());
        let uplink = joined.uplink.take().ok_or("the session came without an uplink key")?;
        let socket = joined.socket.try_clone().map_err(|e| format!("cannot share the socket with the keepalives: {e}"))?;
        let keeper = Keeper { name: name.clone(), socket, uplink, ssrc: joined.uplink_ssrc, to: joined.daemon_udp, every: joined.keepalive };
        Ok((Receiver { name, joined, _tls_media: tls_media, gate, arrivals: Vec::new(), ended: None, seen: 0, verified: 0, verified_ssrc: None }, keeper))
    }

    /// Reads every datagram waiting; verified RTP is kept with its time.
    /// Reads every datagram waiting; RTP of the zone's stream is kept with
    /// its time. Until a packet has verified nothing is taken; from then
    /// on one in `verify_every` goes through the gate (auth tag, replay
    /// window) and the others are taken by their clear header when they
    /// carry the verified SSRC. libsrtp's crypto (NSS on Debian) costs this
    /// process tens of µs a packet under load: verifying all 50 000 a second
    /// would make the bench, not loa, the bottleneck, and its backlog of
    /// queued buffers then slows the sender's allocations too.
    fn read(&mut self, buf: &mut [u8], verify_every: u64) -> std::io::Result<()> {
        while let Some(got) = net::recv_stamped(self.joined.socket.as_raw_fd(), buf)? {
            let packet = &mut buf[..got.len];
            let rtcp = is_rtcp(packet);
            // loa's answers to the keepalives (the downstream check of
            // `loa speaker`): not the zone's, and not counted as refused.
            if rtcp && packet.get(4..8) == Some(&loa::speakers::join::answer_ssrc(self.joined.uplink_ssrc).to_be_bytes()[..]) {
                continue;
            }
            self.seen += 1;
            let ssrc = packet.get(8..12).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            let taken = match self.verified_ssrc {
                Some(locked) if !rtcp && self.seen % verify_every != 0 => (ssrc == Some(locked) && packet.len() >= 12).then_some(packet.len()),
                _ => {
                    let opened = self.gate.open(packet, rtcp, Instant::now());
                    if opened.is_some() && !rtcp {
                        self.verified += 1;
                        self.verified_ssrc = ssrc;
                    }
                    opened
                }
            };
            match taken {
                Some(plain) if !rtcp && plain >= 12 => self.arrivals.push(Arrival {
                    at_ns: got.at_ns,
                    socket_drops: got.socket_drops,
                    seq: u16::from_be_bytes([packet[2], packet[3]]),
                    rtp_timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
                }),
                _ => {}
            }
        }
        Ok(())
    }

    /// Keys of a rotation go to the gate; the end of the session is kept.
    fn follow_control(&mut self) {
        while let Ok(control) = self.joined.control.try_recv() {
            match control {
                Control::Keys { keys, .. } => keys.into_iter().for_each(|(mki, key)| self.gate.add_key(key, mki)),
                Control::Ended(reason) => self.ended = Some(reason),
                // One zone, on unicast, no reload during the bench.
                Control::Zone(_) | Control::Gone { .. } | Control::Fallback(_) => {}
            }
        }
    }
}

/// A join made by a joiner thread: the speaker's index and name, and how
/// it went.
type Joining = (usize, String, Result<Session, String>);

struct Bench {
    poller: Poller,
    receivers: Vec<Receiver>,
    buf: Vec<u8>,
    ready: Vec<u64>,
    errors: Vec<String>,
    keepalives: Keepalives,
    verify_every: u64,
    debug_at: Instant,
    longest_read: Duration,
}

impl Bench {
    fn add(&mut self, (receiver, keeper): (Receiver, Keeper)) {
        let key = self.receivers.len() as u64;
        match self.poller.add(&receiver.joined.socket, key) {
            Ok(()) => {
                self.receivers.push(receiver);
                self.keepalives.add(keeper);
            }
            Err(e) => self.errors.push(format!("{}: {e}", receiver.name)),
        }
    }

    /// Receives and takes in new joins until
    /// `until`, or until `joins` more have come when `until` is None.
    fn pump(&mut self, until: Option<Instant>, incoming: Option<(&mpsc::Receiver<Joining>, &mut usize)>) -> std::io::Result<()> {
        let mut incoming = incoming;
        let mut housekeeping = Instant::now();
        loop {
            let now = Instant::now();
            if until.is_some_and(|u| now >= u) {
                return Ok(());
            }
            if let Some((rx, pending)) = incoming.as_mut() {
                while let Ok((_, name, joined)) = rx.try_recv() {
                    **pending -= 1;
                    match joined.and_then(|j| Receiver::new(name.clone(), j)) {
                        Ok(r) => self.add(r),
                        Err(e) => self.errors.push(format!("{name}: {e}")),
                    }
                }
                if until.is_none() && **pending == 0 {
                    return Ok(());
                }
            }
            let wait = until.map_or(Duration::from_millis(10), |u| u.saturating_duration_since(now).min(Duration::from_millis(10)));
            let mut ready = std::mem::take(&mut self.ready);
            self.poller.wait(wait.as_millis() as i32, &mut ready)?;
            let reading = Instant::now();
            for &key in &ready {
                self.receivers[key as usize].read(&mut self.buf, self.verify_every)?;
            }
            self.longest_read = self.longest_read.max(reading.elapsed());
            self.ready = ready;
            if now.duration_since(housekeeping) >= Duration::from_millis(100) {
                housekeeping = now;
                if std::env::var_os("BENCH_DEBUG").is_some_and(|v| !v.is_empty()) && now.duration_since(self.debug_at) >= Duration::from_secs(1) {
                    self.debug_at = now;
                    let packets: usize = self.receivers.iter().map(|r| r.arrivals.len()).sum();
                    eprintln!(
                        "debug: receivers {} keepalives {} packets {packets} longest read pass {:?}",
                        self.receivers.len(),
                        self.keepalives.sent.load(std::sync::atomic::Ordering::Relaxed),
                        std::mem::take(&mut self.longest_read)
                    );
                }
                self.receivers.iter_mut().for_each(Receiver::follow_control);
            }
        }
    }
}

impl Bench {
    /// Reads what is still queued: packets that arrived in a window but
    /// were not read before it ended belong to it (their kernel time says so).
    fn drain(&mut self) -> std::io::Result<()> {
        for r in &mut self.receivers {
            r.read(&mut self.buf, self.verify_every)?;
        }
        Ok(())
    }

    fn errors(&self) -> Vec<String> {
        let keepalives = self.keepalives.errors.lock().unwrap_or_else(|e| e.into_inner()).clone();
        self.errors.iter().cloned().chain(keepalives).collect()
    }
}

/// Join to first verified packet, `files.len()` times, one speaker at a
/// time; (join to first audio, join to welcome), ms.
fn first_audio(args: &Args, names: &[String], files: &[PathBuf]) -> Result<Vec<(f64, f64)>, String> {
    let mut times = Vec::new();
    let mut buf = vec![0u8; 2048];
    for (name, file) in names.iter().zip(files) {
        let start = now_ns();
        let joined = join(args, file).map_err(|e| format!("{name}: {e}"))?;
        let welcome = now_ns();
        let mut poller = Poller::new().map_err(|e| e.to_string())?;
        let (mut r, mut keeper) = Receiver::new(name.clone(), joined)?;
        poller.add(&r.joined.socket, 0).map_err(|e| e.to_string())?;
        keeper.send()?;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut ready = Vec::new();
        while r.arrivals.is_empty() && Instant::now() < deadline {
            poller.wait(10, &mut ready).map_err(|e| e.to_string())?;
            if !ready.is_empty() {
                // Every packet verified here: the first must be.
                r.read(&mut buf, 1).map_err(|e| e.to_string())?;
            }
        }
        let first = r
            .arrivals
            .first()
            .ok_or_else(|| format!("{name}: no verified audio within 5 s of joining (datagrams refused: {:?})", r.gate.rejected))?;
        times.push(((first.at_ns - start) as f64 / 1e6, (welcome - start) as f64 / 1e6));
        // Leaves (bye) before the next joins.
        drop(r);
    }
    Ok(times)
}

/// utime + stime of /proc/PID/stat or /proc/PID/task/TID/stat, in clock ticks.
fn cpu_ticks(stat: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(stat).ok()?;
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The daemon's pacer thread's stat file.
fn pacer_stat(pid: u32) -> Option<PathBuf> {
    std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten().find_map(|task| {
        let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
        (comm.trim() == "loa-pacer").then(|| task.path().join("stat"))
    })
}

/// What is read before and after a window: wall time, the daemon's and
/// its pacer's CPU ticks, its skipped ticks and the zone's unsent packets.
struct Snapshot {
    at: Instant,
    at_ns: i64,
    daemon: Option<u64>,
    pacer: Option<u64>,
    skipped_ticks: Option<u64>,
    not_sent: Option<u64>,
}

fn snapshot(args: &Args) -> Snapshot {
    let asked = Instant::now();
    let status = Client::connect(&args.socket, Duration::from_secs(5)).and_then(|mut c| c.call(&StatusParams {})).ok();
    if std::env::var_os("BENCH_DEBUG").is_some_and(|v| !v.is_empty()) {
        eprintln!("debug: status answered in {:?}", asked.elapsed());
    }
    Snapshot {
        at: Instant::now(),
        at_ns: now_ns(),
        daemon: cpu_ticks(Path::new(&format!("/proc/{}/stat", args.daemon_pid))),
        pacer: pacer_stat(args.daemon_pid).and_then(|p| cpu_ticks(&p)),
        skipped_ticks: status.as_ref().map(|s| s.pacer.skipped_ticks),
        not_sent: status.and_then(|s| s.zones.into_iter().find(|z| z.name == args.zone).map(|z| z.packets_not_sent)),
    }
}

fn delta(a: Option<u64>, b: Option<u64>) -> String {
    a.zip(b).map_or("?".into(), |(a, b)| b.saturating_sub(a).to_string())
}

/// Clock ticks per second of /proc's CPU times.
fn clock_hz() -> f64 {
    // SAFETY: sysconf takes no pointers.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

fn cpu_pct(a: Option<u64>, b: Option<u64>, secs: f64) -> String {
    a.zip(b).map_or("?".into(), |(a, b)| format!("{:.1}", b.saturating_sub(a) as f64 / clock_hz() / secs * 100.0))
}

/// One line of figures for a window of `speakers` joined speakers.
fn report(label: &str, speakers: usize, bench: &Bench, before: &Snapshot, after: &Snapshot) -> usize {
    let f = figures::window(bench.receivers.iter().map(|r| r.arrivals.as_slice()), before.at_ns, after.at_ns);
    let secs = after.at.duration_since(before.at).as_secs_f64();
    println!(
        "{label}: speakers={speakers} receivers={} secs={secs:.1} packets={} lost={} lossy_receivers={} \
         socket_drops={} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} worst_receiver_p99_ms={:.3} worst_drift_ppm={:.1} \
         fanout_p50_ms={:.3} fanout_max_ms={:.3} first_tenth_p99_ms={:.3} last_tenth_p99_ms={:.3} daemon_cpu_pct={} pacer_cpu_pct={} skipped_ticks={} not_sent={}",
        f.heard,
        f.packets,
        f.lost,
        f.lossy,
        f.socket_drops,
        f.p50_ms,
        f.p99_ms,
        f.max_ms,
        f.worst_p99_ms,
        f.worst_drift_ppm,
        f.fanout_p50_ms,
        f.fanout_max_ms,
        f.first_tenth_p99_ms,
        f.last_tenth_p99_ms,
        cpu_pct(before.daemon, after.daemon, secs),
        cpu_pct(before.pacer, after.pacer, secs),
        delta(before.skipped_ticks, after.skipped_ticks),
        delta(before.not_sent, after.not_sent),
    );
    f.heard
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    grid::quantile(values, 0.5)
}

fn run(args: &Args) -> Result<(), String> {
    let names: Vec<String> = (0..args.count).map(|i| format!("bench-{i:04}")).collect();
    let fa_names: Vec<String> = (0..args.first_audio).map(|i| format!("first-{i:02}")).collect();
    let started = Instant::now();
    let all: Vec<String> = names.iter().chain(&fa_names).cloned().collect();
    let files = enrol(args, &all)?;
    let secs = started.elapsed().as_secs_f64();
    println!("enrolment: speakers={} secs={secs:.1} ms_each={:.1} (speakers.add on the control socket)", all.len(), secs * 1e3 / all.len() as f64);
    let (files, fa_files) = files.split_at(args.count);

    if args.first_audio > 0 {
        let times = first_audio(args, &fa_names, fa_files)?;
        let mut audio: Vec<f64> = times.iter().map(|t| t.0).collect();
        let mut welcome: Vec<f64> = times.iter().map(|t| t.1).collect();
        let max = audio.iter().cloned().fold(0.0, f64::max);
        let min = audio.iter().cloned().fold(f64::INFINITY, f64::min);
        println!(
            "join to first audio: joins={} median_ms={:.1} min_ms={min:.1} max_ms={max:.1} welcome_median_ms={:.1}",
            times.len(),
            median(&mut audio),
            median(&mut welcome)
        );
    }

    let mut bench = Bench { poller: Poller::new().map_err(|e| e.to_string())?, receivers: Vec::new(), buf: vec![0u8; 2048], ready: Vec::new(), errors: Vec::new(), keepalives: Keepalives::start().map_err(|e| e.to_string())?, verify_every: args.verify_every, debug_at: Instant::now(), longest_read: Duration::ZERO };
    let first = join(args, &files[0]).and_then(|j| Receiver::new(names[0].clone(), j)).map_err(|e| format!("{}: {e}", names[0]))?;
    bench.add(first);
    let io = |e: std::io::Error| format!("receiving: {e}");
    bench.pump(Some(Instant::now() + Duration::from_secs_f64(args.settle_secs)), None).map_err(io)?;
    let before = snapshot(args);
    bench.pump(Some(Instant::now() + Duration::from_secs_f64(args.reference_secs)), None).map_err(io)?;
    let after = snapshot(args);
    bench.drain().map_err(io)?;
    report("reference", 1, &bench, &before, &after);

    // The others join from a few threads while the first keeps playing.
    let started = Instant::now();
    let (tx, rx) = mpsc::channel::<Joining>();
    let mut pending = args.count - 1;
    std::thread::scope(|scope| -> Result<(), String> {
        for t in 0..args.joiners {
            let tx = tx.clone();
            let (names, files) = (&names, files);
            scope.spawn(move || {
                for i in (1..args.count).filter(|i| i % args.joiners == t) {
                    if tx.send((i, names[i].clone(), join(args, &files[i]))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        bench.pump(None, Some((&rx, &mut pending))).map_err(io)
    })?;
    let join_secs = started.elapsed().as_secs_f64();
    println!(
        "joins: speakers={} of={} secs={join_secs:.1} failed={} ({} threads)",
        bench.receivers.len(),
        args.count,
        bench.errors().len(),
        args.joiners
    );
    bench.pump(Some(Instant::now() + Duration::from_secs_f64(args.settle_secs)), None).map_err(io)?;
    let before = snapshot(args);
    bench.pump(Some(Instant::now() + Duration::from_secs_f64(args.secs)), None).map_err(io)?;
    let after = snapshot(args);
    bench.drain().map_err(io)?;
    let heard = report("unicast", bench.receivers.len(), &bench, &before, &after);

    let rejected: u64 = bench.receivers.iter().map(|r| r.gate.rejected.total()).sum();
    let verified: u64 = bench.receivers.iter().map(|r| r.verified).sum();
    let ended: Vec<&Receiver> = bench.receivers.iter().filter(|r| r.ended.is_some()).collect();
    let own = cpu_ticks(Path::new("/proc/self/stat"));
    println!(
        "receivers: verified={verified} (1 in {} after the first) rejected={rejected} sessions_ended={} errors={} own_cpu_s={}",
        args.verify_every,
        ended.len(),
        bench.errors().len(),
        own.map_or("?".into(), |t| format!("{:.1}", t as f64 / clock_hz()))
    );
    for e in bench.errors().iter().take(5) {
        eprintln!("unicast_speakers: {e}");
    }
    if let Some(r) = ended.first() {
        eprintln!("unicast_speakers: {} (and {} more) ended: {}", r.name, ended.len() - 1, r.ended.as_deref().unwrap_or(""));
    }
    // The sessions are not dropped one by one (each waits up to 100 ms
    // for its reader thread): the process exits and the daemon sees the
    // connections close.
    std::mem::forget(bench);
    if heard == 0 {
        return Err("no receiver heard the zone in the measuring window".into());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("unicast_speakers: {e}");
            return ExitCode::from(2);
        }
    };
    let code = match run(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("unicast_speakers: {e}");
            1
        }
    };
    // Exits without dropping the sessions one by one (each waits for its
    // reader thread): the daemon sees the connections close.
    use std::io::Write;
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}
