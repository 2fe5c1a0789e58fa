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
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::client::{Client, ClientError, Notification};
use crate::media::PcmFormat;
use crate::proto::broadcast::{LiveEnded, LiveStartParams, Started};
use crate::proto::Outcome;

use super::args::{Global, LiveArgs};
use super::table::table;
use super::{fail, user_error};

/// How far ahead of real time stdin may be sent.
pub const STDIN_LEAD: Duration = Duration::from_millis(100);

/// How long the daemon may take to say the program is on air.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// After the input ends, how long to wait for the daemon's `live.ended`.
const END_TIMEOUT: Duration = Duration::from_secs(10);

/// Where PCM comes from, opened.
enum Opened {
    Stdin(std::io::Stdin),
    Device(crate::media::capture::Capture),
}

pub fn run(args: LiveArgs, global: &Global) -> ExitCode {
    if args.list_devices {
        return list_devices(global.json);
    }
    let Some(zones) = args.zones else {
        return user_error("give the zones to go on air on: --zones NAMES or --zones all");
    };
    // The device is opened first: a wrong name is reported before anything
    // goes on air.
    let (mut opened, format, source) = if args.stdin {
        let format = PcmFormat { encoding: args.format, rate: args.rate, channels: args.channels };
        if let Err(e) = format.check() {
            return user_error(e);
        }
        (Opened::Stdin(std::io::stdin()), format, "stdin".to_string())
    } else {
        let name = args.device.unwrap_or_else(|| "default".into());
        match crate::media::capture::Capture::open(&name, args.rate, args.channels) {
            Ok(capture) => {
                let format = PcmFormat {
                    encoding: crate::media::PcmEncoding::S16le,
                    rate: capture.rate(),
                    channels: capture.channels(),
                };
                (Opened::Device(capture), format, format!("device {name}"))
            }
            Err(e) => return user_error(e),
        }
    };
    let params = LiveStartParams {
        zones,
        priority: args.priority,
        name: args.name,
        max_duration: args.max_duration,
        source: Some(source.clone()),
        format: format.encoding,
        rate: format.rate,
        channels: format.channels,
    };
    let mut client = match Client::connect(&global.socket(), START_TIMEOUT) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let started = match client.call(&params) {
        Ok(started) => started,
        Err(e) => return fail(e),
    };
    let stream = match client.data_stream() {
        Ok(s) => s,
        Err(e) => return fail(ClientError::Io(e)),
    };
    if global.json {
        println!("{}", serde_json::to_string(&started).expect("protocol types serialize"));
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
    let all_waiting = started.zones.is_empty();
    let mut waiting: std::collections::HashSet<String> = started.waiting.iter().cloned().collect();
    // The daemon's notifications, read beside the sending loop.
    let input_done = Arc::new(AtomicBool::new(false));
    let (ended_tx, ended_rx) = std::sync::mpsc::channel::<Option<LiveEnded>>();
    {
        let input_done = input_done.clone();
        let json = global.json;
        std::thread::spawn(move || loop {
            match client.next_notification() {
                Ok(notification) => {
                    if json {
                        println!("{}", serde_json::to_string(&notification).expect("protocol types serialize"));
                    }
                    match notification {
                        Notification::LiveOnAir if json => {}
                        Notification::LiveOnAir if all_waiting => eprintln!(
                            "WAITING — the input goes on air when the zones are free; Ctrl-C or end of input gives up"
                        ),
                        Notification::LiveOnAir => eprintln!(
                            "ON AIR — speak now; Ctrl-C or end of input ends the broadcast"
                        ),
                        Notification::LivePlaying(playing) => {
                            if waiting.remove(&playing.zone) && !json {
                                eprintln!("ON AIR on {} now", playing.zone);
                            }
                        }
                        Notification::LiveEnded(ended) => {
                            let _ = ended_tx.send(Some(ended));
                            return;
                        }
                        Notification::EndpointChanged(_) | Notification::Other { .. } => {}
                    }
                }
                Err(e) => {
                    let _ = ended_tx.send(None);
                    if !input_done.load(Ordering::SeqCst) {
                        // The daemon closed the stream while input was
                        // still coming (or said something this loa cannot
                        // read): nothing more can be sent.
                        match e {
                            ClientError::Answer(e) => eprintln!("loa: {e}"),
                            _ => eprintln!("loa: the daemon ended the live broadcast"),
                        }
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
        Ok(Some(ended)) => {
            if !global.json {
                eprintln!("{}; {seconds:.1} s of input sent", ended_text(&ended));
            }
            if ended.outcome == Outcome::Completed && sent.error.is_none() {
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

fn started_text(v: &Started, format: &PcmFormat, source: &str) -> String {
    let mut text = format!("live #{} from {source} ({format})", v.id);
    if !v.zones.is_empty() {
        text += &format!(" on {}", v.zones.join(", "));
    }
    if !v.waiting.is_empty() {
        text += &format!(", waiting for {} (a program of equal or higher priority is on)", v.waiting.join(", "));
    }
    text
}

fn ended_text(v: &LiveEnded) -> String {
    let why = v.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
    format!("live broadcast ended ({}{why})", v.outcome)
}

/// `loa live --list-devices`: the ALSA capture devices on this machine.
fn list_devices(json: bool) -> ExitCode {
    #[derive(serde::Serialize)]
    struct Device<'a> {
        name: &'a str,
        description: &'a str,
    }
    let devices = match crate::media::capture::list_devices() {
        Ok(devices) => devices,
        Err(e) => return user_error(e),
    };
    if json {
        let list: Vec<Device> = devices.iter().map(|d| Device { name: &d.name, description: &d.description }).collect();
        print!("{}", super::json_text(&list));
    } else if devices.is_empty() {
        println!("no capture devices (is a sound card or USB microphone connected?)");
    } else {
        let rows: Vec<Vec<String>> =
            devices.iter().map(|d| vec![d.name.clone(), d.description.replace('\n', " · ")]).collect();
        print!("{}", table(&["DEVICE", "DESCRIPTION"], &rows));
    }
    ExitCode::SUCCESS
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::PcmEncoding;
    use crate::proto::ProgramId;

    #[test]
    fn the_start_line_says_the_input_the_zones_and_what_waits() {
        let started = Started { id: ProgramId::new(9).unwrap(), zones: vec!["thon-1".into()], waiting: vec!["thon-2".into()] };
        let format = PcmFormat { encoding: PcmEncoding::S16le, rate: 16_000, channels: 1 };
        assert_eq!(
            started_text(&started, &format, "stdin"),
            "live #9 from stdin (s16le 16000 Hz mono) on thon-1, waiting for thon-2 (a program of equal or higher priority is on)"
        );
    }

    #[test]
    fn the_end_line_says_how_it_ended_and_why() {
        assert_eq!(ended_text(&LiveEnded { outcome: Outcome::Completed, error: None }), "live broadcast ended (completed)");
        let cut = LiveEnded { outcome: Outcome::Preempted, error: Some("emergency on thon-1".into()) };
        assert_eq!(ended_text(&cut), "live broadcast ended (preempted: emergency on thon-1)");
    }
}
