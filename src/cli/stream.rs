//! One-shot streaming (`loa stream`): owns wiring one program to one zone's
//! pacer without the daemon, reporting skipped files and progress, and
//! ending with RTCP BYE; [`command`] runs it from the command line.
//!
//! Must not touch: RTP bytes (rtp::session), decoding (media), pacing (pacer).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::proto::text::clock_text;

use crate::config::{Config, Zone};
use crate::net::{self, NetError};
use crate::pacer::{self, Command, PacerEvent, PacerOptions, PacerStats, ZoneSpec};
use crate::proto::ids::{ProgramId, ZoneId};
use crate::program::{self, ProgramEvent, ProgramSpec, SpawnError};
use crate::rtp::sdp;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("unknown zone \"{zone}\"; configured zones: {known}")]
    UnknownZone { zone: String, known: String },
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Program(#[from] SpawnError),
    #[error("cannot start the pacer thread: {0}")]
    Pacer(std::io::Error),
    #[error("none of the {count} file(s) could be played")]
    NothingPlayable { count: usize },
    #[error(
        "zone \"{0}\" is an SRTP zone, and its keys live in the daemon: play through it (`loa play --zones {0} FILE`), \
         or set security = \"none\" on the zone for plain RTP"
    )]
    SrtpZone(String),
}

pub struct StreamRequest<'a> {
    pub config: &'a Config,
    pub zone: &'a str,
    pub files: Vec<PathBuf>,
    /// Redraw a progress line on stderr (when it is a terminal).
    pub progress: bool,
    /// Set by a signal handler: stop after the current frame, send BYE.
    pub stop: Arc<AtomicBool>,
}

#[derive(Debug)]
pub struct StreamReport {
    pub played: usize,
    pub skipped: usize,
    pub interrupted: bool,
    pub audio: Duration,
    pub pacer: PacerStats,
}

/// Lookahead between encoder and pacer (DESIGN: ~1 s).
const LOOKAHEAD: Duration = Duration::from_secs(1);
const UI_TICK: Duration = Duration::from_millis(50);
const PROGRAM: ProgramId = ProgramId::FIRST;

fn find_zone<'c>(config: &'c Config, name: &str) -> Result<&'c Zone, StreamError> {
    config.zone(name).ok_or_else(|| StreamError::UnknownZone {
        zone: name.to_string(),
        known: config
            .zones
            .iter()
            .map(|z| z.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// `loa stream --zone Z FILE...`: plays the files, then one summary line
/// on stderr. Exit 1 when the config, the zone or every file was bad.
pub fn command(args: super::args::StreamArgs, config: &Path) -> ExitCode {
    let config = match super::config::load(config) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let stop = match super::stop_on_signals() {
        Ok(stop) => stop,
        Err(e) => return super::user_error(e),
    };
    let request = StreamRequest {
        config: &config,
        zone: &args.zone,
        files: args.files,
        progress: std::io::stderr().is_terminal(),
        stop,
    };
    let report = match run(request) {
        Ok(report) => report,
        Err(e) => return super::user_error(super::error_chain(&e)),
    };
    let pacer = &report.pacer;
    tracing::debug!(max_lateness_tick = pacer.max_lateness_tick, ticks = pacer.ticks, "pacer");
    eprintln!(
        "loa: {} {} file(s), {} skipped, {} of audio; {} packets, pacing p99 {:.3} ms, max {:.3} ms, {} underruns",
        if report.interrupted { "interrupted after" } else { "played" },
        report.played,
        report.skipped,
        clock_text(report.audio),
        pacer.packets,
        pacer.lateness_quantile(0.99).as_secs_f64() * 1e3,
        pacer.max_lateness.as_secs_f64() * 1e3,
        pacer.underruns,
    );
    ExitCode::SUCCESS
}

/// The SDP receivers open to play the zone named `zone`.
pub fn zone_sdp(config: &Config, zone: &str) -> Result<String, StreamError> {
    Ok(sdp::for_zone(config, find_zone(config, zone)?))
}

pub fn run(request: StreamRequest<'_>) -> Result<StreamReport, StreamError> {
    let config = request.config;
    let zone = find_zone(config, request.zone)?;
    // Refused before anything is decoded or sent: never plain RTP on a
    // zone whose speakers expect SRTP.
    if zone.security == crate::config::ZoneSecurity::Srtp {
        return Err(StreamError::SrtpZone(zone.name.clone()));
    }
    let socket = net::sender_socket(&config.network)?;
    let count = request.files.len();
    let queue_frames = (LOOKAHEAD.as_millis() / config.audio.frame.duration().as_millis()) as usize;
    let program = program::spawn(ProgramSpec {
        live: None,
        items: request.files.clone(),
        audio: config.audio.clone(),
        queue_frames,
        prefill_frames: queue_frames,
        looped: false,
        // No state dir here: measured afresh each run.
        loudness: Some(crate::media::loudness::Cache::default()),
        first_play_limit: crate::media::loudness::FIRST_PLAY_LIMIT,
        start: None,
        urgent: false,
    })?;
    let mut ui = Ui::new(request.files, request.progress);

    // Wait for the lookahead before the clock starts, so the first second
    // cannot underrun.
    while let Ok(event) = program.events.recv() {
        let ready = matches!(event, ProgramEvent::Ready);
        ui.program_event(&event);
        if ready {
            break;
        }
    }
    if ui.started == 0 {
        program.join();
        return Err(StreamError::NothingPlayable { count });
    }

    let pacer = pacer::spawn(
        Some(socket),
        PacerOptions {
            frame: config.audio.frame,
            zones: vec![ZoneSpec::for_zone(&config.network, &config.audio, zone, None)
                .map_err(|_| StreamError::SrtpZone(zone.name.clone()))?],
            exit_when_idle: true,
        },
    )
    .map_err(StreamError::Pacer)?;
    let ProgramHandleParts { frames, events, handle } = ProgramHandleParts::split(program);
    let _ = pacer.commands.send(Command::AddProgram { id: PROGRAM, frames });
    let _ = pacer.commands.send(Command::Assign {
        zone: ZoneId::from_index(0),
        program: Some(PROGRAM),
    });

    let mut interrupted = false;
    while !pacer.is_finished() {
        if request.stop.load(Ordering::Relaxed) && !interrupted {
            interrupted = true;
            handle.cancel();
            let _ = pacer.commands.send(Command::Shutdown);
        }
        while let Ok(event) = events.try_recv() {
            ui.program_event(&event);
        }
        while let Ok(event) = pacer.events.try_recv() {
            ui.pacer_event(&event);
        }
        ui.draw();
        std::thread::sleep(UI_TICK);
    }
    while let Ok(event) = pacer.events.try_recv() {
        ui.pacer_event(&event);
    }
    let stats = pacer.join();
    handle.cancel();
    while let Ok(event) = events.recv_timeout(Duration::from_secs(1)) {
        ui.program_event(&event);
    }
    handle.join();
    ui.clear_line();
    Ok(StreamReport {
        played: ui.started,
        skipped: ui.skipped,
        interrupted,
        audio: ui.audio,
        pacer: stats,
    })
}

/// The program handle with its channels taken out, so the frame queue can go
/// to the pacer while events stay here.
struct ProgramHandleParts {
    frames: std::sync::mpsc::Receiver<program::Frame>,
    events: std::sync::mpsc::Receiver<ProgramEvent>,
    handle: program::ProgramControl,
}

impl ProgramHandleParts {
    fn split(handle: program::ProgramHandle) -> Self {
        let (frames, events, handle) = handle.into_parts();
        ProgramHandleParts { frames, events, handle }
    }
}

/// Operator-facing output on stderr: one line per skipped or damaged file,
/// and a progress line redrawn in place when stderr is a terminal.
struct Ui {
    files: Vec<PathBuf>,
    durations: HashMap<usize, Option<Duration>>,
    progress: bool,
    started: usize,
    skipped: usize,
    audio: Duration,
    now_playing: Option<(usize, Duration)>,
    /// RTP packets not sent while the interface failed (the pacer's count).
    not_sent: u64,
    line_shown: bool,
    last_draw: Option<Instant>,
}

impl Ui {
    fn new(files: Vec<PathBuf>, progress: bool) -> Ui {
        Ui {
            files,
            durations: HashMap::new(),
            progress,
            started: 0,
            skipped: 0,
            audio: Duration::ZERO,
            now_playing: None,
            not_sent: 0,
            line_shown: false,
            last_draw: None,
        }
    }

    fn say(&mut self, line: &str) {
        self.clear_line();
        eprintln!("{line}");
    }

    fn program_event(&mut self, event: &ProgramEvent) {
        match event {
            ProgramEvent::ItemStarted { item, duration, .. } => {
                self.started += 1;
                self.durations.insert(*item, *duration);
            }
            ProgramEvent::ItemSkipped { path, error, .. } => {
                self.skipped += 1;
                tracing::info!(file = %path.display(), "skipped: {error}");
                self.say(&format!("loa: skipped {}: {error}", path.display()));
            }
            ProgramEvent::ItemEncoded {
                path,
                encoded,
                error,
                ..
            } => {
                self.audio += *encoded;
                if let Some(error) = error {
                    tracing::info!(file = %path.display(), "stopped early: {error}");
                    self.say(&format!(
                        "loa: {} stopped at {}: {error}",
                        path.display(),
                        clock_text(*encoded)
                    ));
                }
            }
            ProgramEvent::Ready
            | ProgramEvent::Finished { .. }
            | ProgramEvent::Measured { .. } => {}
        }
    }

    fn pacer_event(&mut self, event: &PacerEvent) {
        match event {
            PacerEvent::Progress { item, position, .. } => {
                if self.now_playing.map(|(i, _)| i) != Some(*item) {
                    tracing::info!(file = %self.files[*item].display(), "playing");
                }
                self.now_playing = Some((*item, *position));
            }
            // One line per change; the daemon's engine says more (netwatch).
            PacerEvent::SendFailing { errno, target } => self.say(&format!(
                "loa: cannot send: {}; the stream keeps time and sends again when it can",
                net::netwatch::describe_send_error(*errno, *target)
            )),
            // Sent per zone just before `Sending`; one zone here.
            PacerEvent::NotSent { count, .. } => self.not_sent = *count,
            PacerEvent::Sending => self.say(&format!("loa: sending again, {} packets not sent", self.not_sent)),
            // Said by the pacer thread itself before it stopped logging.
            PacerEvent::SendError { target, errno, errors, .. } => tracing::warn!(
                %target,
                errors,
                "cannot send: {}",
                errno.map_or_else(|| "no socket".to_string(), |e| std::io::Error::from_raw_os_error(e).to_string())
            ),
            PacerEvent::Stalled { late, .. } => tracing::warn!(
                late_ms = late.as_millis() as u64,
                "pacer stalled; skipping the missed frames"
            ),
            _ => {}
        }
    }

    fn draw(&mut self) {
        if !self.progress {
            return;
        }
        let Some((item, position)) = self.now_playing else {
            return;
        };
        if self.last_draw.is_some_and(|t| t.elapsed() < Duration::from_millis(250)) {
            return;
        }
        self.last_draw = Some(Instant::now());
        let total = match self.durations.get(&item).copied().flatten() {
            Some(d) => clock_text(d),
            None => "?".into(),
        };
        let name = self.files[item]
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K▶ [{}/{}] {name}  {} / {total}",
            item + 1,
            self.files.len(),
            clock_text(position)
        );
        let _ = err.flush();
        self.line_shown = true;
    }

    fn clear_line(&mut self) {
        if self.line_shown {
            eprint!("\r\x1b[2K");
            self.line_shown = false;
        }
    }
}

