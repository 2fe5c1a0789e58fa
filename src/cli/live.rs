//! `loa live`, the operator's side: takes PCM from stdin or an ALSA capture
//! device, asks the daemon for a live program (`live.start`) and streams
//! the PCM on the same connection until the input ends or Ctrl-C.
//!
//! Must not touch: daemon state (everything goes through the socket).
//!
//! Stdin is paced to real time: a file piped in (`cat notice.raw | loa live
//! --stdin`) plays at its own speed instead of flooding the daemon, which
//! would drop what runs ahead (see `crate::live`). A live source
//! (`arecord … |`) never waits on this; only one whose clock runs faster
//! than this machine's by more than [`STDIN_LEAD`] over the session is held
//! back, and then its extra delay grows by that difference (50 ppm is
//! 3 ms a minute). An ALSA device read here is not paced: the daemon's
//! backlog rule keeps its delay bounded.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cli::client::{Client, ClientError};
use crate::media::PcmFormat;

/// How far ahead of real time stdin may be sent.
pub const STDIN_LEAD: Duration = Duration::from_millis(100);

/// How long the daemon may take to say the program is on air.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// After the input ends, how long to wait for the daemon's `live.ended`.
const END_TIMEOUT: Duration = Duration::from_secs(10);

pub enum Input {
    Stdin(PcmFormat),
    /// An ALSA device name (`default`, `hw:1,0`, `plughw:CARD=USB,DEV=0`).
    Device {
        name: String,
        rate: u32,
        channels: u16,
    },
}

pub struct LiveArgs {
    pub socket: PathBuf,
    pub zones: Value,
    pub priority: Option<String>,
    pub name: Option<String>,
    pub max_duration: Option<String>,
    pub input: Input,
    pub json: bool,
}

/// Where PCM comes from, opened.
enum Opened {
    Stdin(std::io::Stdin),
    Device(crate::media::capture::Capture),
}

pub fn run(args: LiveArgs) -> ExitCode {
    // The device is opened first: a wrong name is reported before anything
    // goes on air.
    let (mut opened, format, source) = match args.input {
        Input::Stdin(format) => {
            if let Err(e) = format.check() {
                eprintln!("loa: {e}");
                return ExitCode::from(1);
            }
            (Opened::Stdin(std::io::stdin()), format, "stdin".to_string())
        }
        Input::Device {
            name,
            rate,
            channels,
        } => match crate::media::capture::Capture::open(&name, rate, channels) {
            Ok(capture) => {
                let format = PcmFormat {
                    encoding: crate::media::PcmEncoding::S16le,
                    rate: capture.rate(),
                    channels: capture.channels(),
                };
                (Opened::Device(capture), format, format!("device {name}"))
            }
            Err(e) => {
                eprintln!("loa: {e}");
                return ExitCode::from(1);
            }
        },
    };
    let mut params = json!({
        "zones": args.zones,
        "source": source,
        "format": format.encoding,
        "rate": format.rate,
        "channels": format.channels,
    });
    crate::cli::set_optional(&mut params, [
        ("priority", args.priority),
        ("name", args.name),
        ("max_duration", args.max_duration),
    ]);
    let mut client = match Client::connect(&args.socket, START_TIMEOUT) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let started = match client.call("live.start", params) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    let stream = match client.data_stream() {
        Ok(s) => s,
        Err(e) => return fail(ClientError::Io(e)),
    };
    if args.json {
        println!("{started}");
    } else {
        eprintln!("{}", started_text(&started, &format, &source));
    }

    // Ctrl-C or SIGTERM ends the input: the daemon finishes the last frame
    // and says `live.ended`.
    let stopping = Arc::new(AtomicBool::new(false));
    if let Ok(mut signals) = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ]) {
        let (stream, stopping) = (stream.try_clone(), stopping.clone());
        std::thread::spawn(move || {
            if signals.forever().next().is_some() {
                stopping.store(true, Ordering::SeqCst);
                if let Ok(stream) = stream {
                    let _ = stream.shutdown(Shutdown::Write);
                }
            }
        });
    }

    // With every zone held by an equal or higher program, the input waits
    // (only its newest 40 ms are kept) until the zones are free.
    let all_waiting = zone_names(&started, "zones").is_empty();
    let mut waiting: std::collections::HashSet<String> = zone_names(&started, "waiting").into_iter().collect();
    // The daemon's notifications, read beside the sending loop.
    let input_done = Arc::new(AtomicBool::new(false));
    let (ended_tx, ended_rx) = std::sync::mpsc::channel();
    {
        let input_done = input_done.clone();
        let json = args.json;
        std::thread::spawn(move || loop {
            match client.next_notification() {
                Ok((method, params)) => {
                    if json {
                        println!("{}", json!({ "method": method, "params": params }));
                    }
                    match method.as_str() {
                        "live.on_air" if json => {}
                        "live.on_air" if all_waiting => eprintln!(
                            "WAITING — the input goes on air when the zones are free; Ctrl-C or end of input gives up"
                        ),
                        "live.on_air" => eprintln!(
                            "ON AIR — speak now; Ctrl-C or end of input ends the broadcast"
                        ),
                        "live.playing" => {
                            let zone = params["zone"].as_str().unwrap_or("");
                            if waiting.remove(zone) && !json {
                                eprintln!("ON AIR on {zone} now");
                            }
                        }
                        "live.ended" => {
                            let _ = ended_tx.send(Some(params));
                            return;
                        }
                        _ => {}
                    }
                }
                Err(_) => {
                    let _ = ended_tx.send(None);
                    if !input_done.load(Ordering::SeqCst) {
                        // The daemon closed the stream while input was
                        // still coming: nothing more can be sent.
                        eprintln!("loa: the daemon ended the live broadcast");
                        std::process::exit(1);
                    }
                    return;
                }
            }
        });
    }

    let sent = match &mut opened {
        Opened::Stdin(stdin) => send_paced(&mut stdin.lock(), &stream, &format, &stopping),
        Opened::Device(capture) => send_capture(capture, &stream, &stopping),
    };
    input_done.store(true, Ordering::SeqCst);
    let _ = stream.shutdown(Shutdown::Write);
    let seconds = format.ms_of(sent.bytes as usize) as f64 / 1000.0;
    if let Some(e) = &sent.error {
        eprintln!("loa: {e}");
    }
    match ended_rx.recv_timeout(END_TIMEOUT) {
        Ok(Some(params)) => {
            let outcome = params["outcome"].as_str().unwrap_or("?");
            if !args.json {
                let why = params["error"]
                    .as_str()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default();
                eprintln!("live broadcast ended ({outcome}{why}); {seconds:.1} s of input sent");
            }
            if outcome == "completed" && sent.error.is_none() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Ok(None) | Err(_) => {
            eprintln!("loa: the daemon did not confirm the end of the live broadcast; {seconds:.1} s of input sent");
            ExitCode::from(1)
        }
    }
}

fn fail(e: ClientError) -> ExitCode {
    eprintln!("loa: {e}");
    ExitCode::from(e.exit_code())
}

/// The zone names under `key` in the daemon's answer ("zones", "waiting").
fn zone_names(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn started_text(v: &Value, format: &PcmFormat, source: &str) -> String {
    let list = |key: &str| zone_names(v, key).join(", ");
    let mut text = format!("live #{} from {source} ({format})", v["id"]);
    let (on, waiting) = (list("zones"), list("waiting"));
    if !on.is_empty() {
        text += &format!(" on {on}");
    }
    if !waiting.is_empty() {
        text += &format!(", waiting for {waiting} (a program of equal or higher priority is on)");
    }
    text
}

struct Sent {
    bytes: u64,
    error: Option<String>,
}

/// Copies `input` to `out` no faster than real time plus [`STDIN_LEAD`]
/// (absolute deadlines from the first byte, so sleeps do not add up).
fn send_paced(
    input: &mut impl Read,
    out: &UnixStream,
    format: &PcmFormat,
    stopping: &AtomicBool,
) -> Sent {
    let mut buf = vec![0u8; format.bytes_for_ms(10).max(format.frame_bytes())];
    let mut sent = Sent {
        bytes: 0,
        error: None,
    };
    let mut origin: Option<Instant> = None;
    let bytes_per_sec = format.rate as u64 * format.frame_bytes() as u64;
    while !stopping.load(Ordering::SeqCst) {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                sent.error = Some(format!("cannot read stdin: {e}"));
                break;
            }
        };
        let origin = *origin.get_or_insert_with(Instant::now);
        let due = origin + Duration::from_nanos(sent.bytes * 1_000_000_000 / bytes_per_sec);
        if let Some(wait) = due.checked_duration_since(Instant::now() + STDIN_LEAD) {
            std::thread::sleep(wait);
        }
        if (&*out).write_all(&buf[..n]).is_err() {
            break; // the daemon ended it (its reason comes as live.ended)
        }
        sent.bytes += n as u64;
    }
    sent
}

fn send_capture(
    capture: &mut crate::media::capture::Capture,
    out: &UnixStream,
    stopping: &AtomicBool,
) -> Sent {
    let channels = capture.channels() as usize;
    let mut samples = vec![0i16; (capture.rate() as usize / 100).max(1) * channels];
    let mut bytes = Vec::with_capacity(samples.len() * 2);
    let mut sent = Sent {
        bytes: 0,
        error: None,
    };
    while !stopping.load(Ordering::SeqCst) {
        let frames = match capture.read(&mut samples) {
            Ok(n) => n,
            Err(e) => {
                sent.error = Some(e.to_string());
                break;
            }
        };
        bytes.clear();
        bytes.extend(
            samples[..frames * channels]
                .iter()
                .flat_map(|s| s.to_le_bytes()),
        );
        if (&*out).write_all(&bytes).is_err() {
            break;
        }
        sent.bytes += bytes.len() as u64;
    }
    sent
}
