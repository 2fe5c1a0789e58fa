//! `loa` command line: parses arguments (clap) and calls one function per
//! subcommand. Exit codes are a contract: 0 ok, 1 user error, 2 daemon
//! unreachable.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use loa::cli;
use loa::config::Config;
use serde_json::json;
use loa::cli::stream::{self, StreamRequest};

const DEFAULT_CONFIG: &str = "/etc/loa/loa.toml";

#[derive(Parser)]
#[command(name = "loa", version, about = "Commune IP loudspeaker broadcast controller")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a config file; errors are printed as FILE:LINE:COL: message.
    Check {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Stream files back to back to one zone, without the daemon.
    Stream {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Zone name from the config.
        #[arg(long, short)]
        zone: String,
        /// Audio files (MP3, AAC/M4A, FLAC, Ogg Vorbis, WAV).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the zone's SDP, for ffmpeg, GStreamer, VLC or a speaker.
    Sdp {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long, short)]
        zone: String,
    },
    /// Run the daemon in the foreground (systemd Type=notify).
    Serve {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// What plays on each zone, what is waiting, the next schedule fires.
    Status {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Start a broadcast now: files, or a playlist.
    Play {
        #[command(flatten)]
        client: ClientArgs,
        /// Audio files (absolute, relative to here, or inside a media folder).
        files: Vec<PathBuf>,
        /// Play a playlist instead of files.
        #[arg(long, conflicts_with = "files")]
        playlist: Option<String>,
        /// Zones, comma-separated, or "all".
        #[arg(long, required = true)]
        zones: String,
        /// emergency, live, announcement (default), scheduled or background.
        #[arg(long)]
        priority: Option<String>,
        /// Name shown in status and history.
        #[arg(long)]
        name: Option<String>,
        /// Start again after the last item until stopped.
        #[arg(long = "loop")]
        looped: bool,
        /// Refuse instead of waiting when a zone is busy with an equal or higher program.
        #[arg(long)]
        refuse_if_busy: bool,
        /// Cut the broadcast after this long, e.g. 30m.
        #[arg(long)]
        max_duration: Option<String>,
    },
    /// Speak Vietnamese text on zones now (espeak-ng on the daemon's machine).
    Say {
        #[command(flatten)]
        client: ClientArgs,
        /// The text, e.g. "Xin chào bà con".
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        text: Option<String>,
        /// Read the text from a UTF-8 file instead.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Zones, comma-separated, or "all".
        #[arg(long, required = true)]
        zones: String,
        /// espeak-ng voice, e.g. vi, vi-vn-x-central, vi-vn-x-south (default: [tts] voice).
        #[arg(long)]
        voice: Option<String>,
        /// emergency, live, announcement (default), scheduled or background.
        #[arg(long)]
        priority: Option<String>,
        /// Name shown in status and history.
        #[arg(long)]
        name: Option<String>,
        /// Refuse instead of waiting when a zone is busy with an equal or higher program.
        #[arg(long)]
        refuse_if_busy: bool,
    },
    /// Go on air live: a microphone (ALSA capture device) or raw PCM on
    /// stdin, until Ctrl-C or the end of the input. Lower programs pause and
    /// resume after.
    Live {
        #[command(flatten)]
        client: ClientArgs,
        /// Zones, comma-separated, or "all".
        #[arg(long, required_unless_present = "list_devices")]
        zones: Option<String>,
        /// live (default) or emergency.
        #[arg(long)]
        priority: Option<String>,
        /// Read raw PCM from stdin, e.g. `arecord -t raw -f S16_LE -r 16000 -c 1 | loa live --stdin --rate 16000 …`.
        #[arg(long, conflicts_with = "device")]
        stdin: bool,
        /// ALSA capture device (default: "default"); see --list-devices.
        #[arg(long)]
        device: Option<String>,
        /// List the ALSA capture devices and exit.
        #[arg(long)]
        list_devices: bool,
        /// Sample format on stdin: s16le, s32le or f32le.
        #[arg(long, default_value = "s16le")]
        format: String,
        /// Sample rate of the input, Hz (a device may give another; loa resamples).
        #[arg(long, default_value_t = 48_000)]
        rate: u32,
        /// Channels of the input.
        #[arg(long, default_value_t = 1)]
        channels: u16,
        /// Name shown in status and history.
        #[arg(long)]
        name: Option<String>,
        /// End the broadcast after this long, e.g. 10m.
        #[arg(long)]
        max_duration: Option<String>,
    },
    /// Stop a program by id, everything on a zone, or everything.
    Stop {
        #[command(flatten)]
        client: ClientArgs,
        /// Program id (see `loa status`).
        id: Option<u64>,
        #[arg(long, conflicts_with_all = ["id", "all"])]
        zone: Option<String>,
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// Add, list, remove, enable or disable schedules.
    Schedule {
        #[command(subcommand)]
        command: ScheduleCommand,
    },
    /// Load or list playlists.
    Playlist {
        #[command(subcommand)]
        command: PlaylistCommand,
    },
    /// What played, where, when, who started it, and the content hash.
    History {
        #[command(flatten)]
        client: ClientArgs,
        /// A date (2026-11-27), a local time ("2026-11-27 06:00"), or an age (2h, 3d).
        #[arg(long)]
        since: Option<String>,
        /// Only the newest N rows.
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long, conflicts_with = "json")]
        csv: bool,
    },
    /// Which speakers hear the broadcast: state, loss, jitter, RTT per endpoint.
    Endpoints {
        #[command(flatten)]
        client: ClientArgs,
        /// Only this zone.
        #[arg(long)]
        zone: Option<String>,
        /// Keep printing state changes as they happen (Ctrl-C to stop).
        #[arg(long)]
        watch: bool,
    },
    /// Reference IP loudspeaker: join a zone, play it into a WAV file or
    /// stdout (jitter buffer, Opus FEC/PLC), send RTCP receiver reports back.
    Speaker {
        /// The zone's SDP file (from `loa sdp`).
        #[arg(long, required_unless_present_any = ["group", "listen"])]
        sdp: Option<PathBuf>,
        /// Multicast group and RTP port, e.g. 239.255.0.1:5004.
        #[arg(long)]
        group: Option<std::net::SocketAddrV4>,
        /// Interface address to join the group on (default: the kernel's choice).
        #[arg(long)]
        interface: Option<std::net::Ipv4Addr>,
        /// Also take RTP sent unicast to this address.
        #[arg(long)]
        listen: Option<std::net::SocketAddrV4>,
        /// Address reports are sent from (default: the interface address).
        #[arg(long)]
        bind: Option<std::net::Ipv4Addr>,
        /// Send reports unicast here instead of the group's RTCP port.
        #[arg(long)]
        rtcp_to: Option<std::net::SocketAddrV4>,
        /// Jitter buffer target in milliseconds.
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=2000))]
        jitter_ms: u64,
        /// Decode channels (default: stereo if the SDP says sprop-stereo=1, else mono).
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
        channels: Option<u8>,
        /// WAV file to write (48 kHz, 16-bit), or - for raw s16le on stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Minimum seconds between RTCP reports (RFC 3550: 5; shorter for tests).
        #[arg(long, default_value_t = 5.0)]
        rtcp_interval: f64,
        /// Discard this percentage of incoming RTP packets (simulated lossy link).
        #[arg(long = "drop", default_value_t = 0.0)]
        drop_pct: f64,
        /// Seed for --drop, the SSRC and report timing.
        #[arg(long)]
        seed: Option<u64>,
        /// Print the stats line every 10 s.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Re-read the config file; a broken file is refused and the old one stays.
    Reload {
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(clap::Args)]
struct ClientArgs {
    /// Control socket (default: the one in --config).
    #[arg(long, global = true)]
    socket: Option<PathBuf>,
    /// Config file, used to find the socket.
    #[arg(long, short, default_value = DEFAULT_CONFIG, global = true)]
    config: PathBuf,
    /// Print the daemon's JSON answer.
    #[arg(long, global = true)]
    json: bool,
}

impl ClientArgs {
    fn socket(&self) -> PathBuf {
        cli::socket_path(self.socket.clone(), &self.config)
    }
    fn output(&self) -> cli::Output {
        cli::Output { json: self.json }
    }
}

#[derive(Subcommand)]
// Parsed once per run; boxing the big variant would only obscure the CLI.
#[allow(clippy::large_enum_variant)]
enum ScheduleCommand {
    /// Add a runtime schedule (kept across restarts).
    Add {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        /// 5 fields (min hour day month weekday) or 6 (seconds first), in the daemon's timezone.
        #[arg(long)]
        cron: String,
        #[arg(long, required_unless_present_any = ["file", "say", "say_file"])]
        playlist: Option<String>,
        #[arg(long, conflicts_with_all = ["playlist", "say", "say_file"])]
        file: Option<PathBuf>,
        /// Speak this Vietnamese text (espeak-ng) instead of playing a file.
        #[arg(long, conflicts_with_all = ["playlist", "say_file"])]
        say: Option<String>,
        /// Speak the text of this UTF-8 file (read now, stored with the schedule).
        #[arg(long, conflicts_with = "playlist")]
        say_file: Option<PathBuf>,
        /// espeak-ng voice for --say, e.g. vi-vn-x-south (default: [tts] voice).
        #[arg(long)]
        voice: Option<String>,
        /// Zones, comma-separated, or "all".
        #[arg(long)]
        zones: String,
        #[arg(long)]
        priority: Option<String>,
        #[arg(long)]
        max_duration: Option<String>,
        #[arg(long)]
        misfire_grace: Option<String>,
        /// pause (default) or drop.
        #[arg(long)]
        on_preempt: Option<String>,
        /// wait (default) or refuse.
        #[arg(long)]
        on_busy: Option<String>,
        /// Add it disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// Every schedule with its next fire in local time.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    Remove {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
    },
    Enable {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
    },
    Disable {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
    },
}

#[derive(Subcommand)]
enum PlaylistCommand {
    /// Load an M3U/M3U8/PLS file as a named playlist (kept across restarts).
    Load {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        file: PathBuf,
    },
    /// Every playlist with its item count and total duration.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { config } => check(&config),
        Command::Stream {
            config,
            zone,
            files,
        } => stream(&config, &zone, files),
        Command::Sdp { config, zone } => sdp(&config, &zone),
        Command::Serve { config } => serve(&config),
        command @ Command::Speaker { .. } => speaker(command),
        command => Ok(client(command)),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("loa: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| // Decoder internals log their own view of damaged files; loa reports
        // those to the operator in its own words.
        tracing_subscriber::EnvFilter::new("warn,symphonia=off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Loads the config, printing each error as FILE:LINE:COL: message.
fn load_config(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|errors| {
        eprint!("{errors}");
        if !errors.to_string().ends_with('\n') {
            eprintln!();
        }
        ExitCode::from(1)
    })
}

fn check(path: &std::path::Path) -> anyhow::Result<ExitCode> {
    let config = match load_config(path) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    let zones: Vec<String> = config
        .zones
        .iter()
        .map(|z| format!("{} {}", z.name, z.group))
        .collect();
    println!(
        "{}: ok ({} zone{}: {})",
        path.display(),
        zones.len(),
        if zones.len() == 1 { "" } else { "s" },
        zones.join(", ")
    );
    if config.sap.enabled {
        println!(
            "{}: SAP announces the zones on {} every {:?} (±1/3)",
            path.display(),
            config.sap.address,
            config.sap.interval
        );
    }
    // Not an error: the box may check its config before the address is
    // configured, and `loa serve` waits for it. But a typo shows here.
    if let Err(e) = std::net::UdpSocket::bind((config.network.interface, 0)) {
        eprintln!(
            "{}: warning: interface {} is not on this machine ({e}); `loa serve` will start and wait for it, retrying every second",
            path.display(),
            config.network.interface
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn stream(path: &std::path::Path, zone: &str, files: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    let config = match load_config(path) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).context("cannot install signal handler")?;
    }
    let report = stream::run(StreamRequest {
        config: &config,
        zone,
        files,
        progress: std::io::stderr().is_terminal(),
        stop,
    })?;
    let pacer = &report.pacer;
    tracing::debug!(max_lateness_tick = pacer.max_lateness_tick, ticks = pacer.ticks, "pacer");
    eprintln!(
        "loa: {} {} file(s), {} skipped, {} of audio; {} packets, pacing p99 {:.3} ms, max {:.3} ms, {} underruns",
        if report.interrupted { "interrupted after" } else { "played" },
        report.played,
        report.skipped,
        loa::proto::text::clock_text(report.audio),
        pacer.packets,
        pacer.lateness_quantile(0.99).as_secs_f64() * 1e3,
        pacer.max_lateness.as_secs_f64() * 1e3,
        pacer.underruns,
    );
    Ok(ExitCode::SUCCESS)
}

fn sdp(path: &std::path::Path, zone: &str) -> anyhow::Result<ExitCode> {
    let config = match load_config(path) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    let text = stream::zone_sdp(&config, zone)?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn serve(path: &std::path::Path) -> anyhow::Result<ExitCode> {
    match loa::daemon::run(path) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(loa::daemon::DaemonError::Config(errors)) => {
            eprintln!("{errors}");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}

fn speaker(command: Command) -> anyhow::Result<ExitCode> {
    let Command::Speaker {
        sdp,
        group,
        interface,
        listen,
        bind,
        rtcp_to,
        jitter_ms,
        channels,
        out,
        rtcp_interval,
        drop_pct,
        seed,
        verbose,
    } = command
    else {
        unreachable!("main passes only the speaker command")
    };
    let Some(rtcp_interval) = std::time::Duration::try_from_secs_f64(rtcp_interval)
        .ok()
        .filter(|d| !d.is_zero())
    else {
        eprintln!("loa speaker: --rtcp-interval must be a positive number of seconds");
        return Ok(ExitCode::from(1));
    };
    if !(0.0..=100.0).contains(&drop_pct) {
        eprintln!("loa speaker: --drop must be a percentage from 0 to 100");
        return Ok(ExitCode::from(1));
    }
    let out = match out {
        Some(path) if path.as_os_str() == "-" => loa::speaker::OutputTarget::Stdout,
        Some(path) => loa::speaker::OutputTarget::Wav(path),
        None => loa::speaker::OutputTarget::Discard,
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).context("cannot install signal handler")?;
    }
    let options = loa::speaker::SpeakerOptions {
        sdp,
        group,
        interface,
        listen,
        bind,
        rtcp_to,
        jitter: std::time::Duration::from_millis(jitter_ms),
        channels,
        out,
        rtcp_interval,
        drop_pct,
        seed,
        verbose,
    };
    match loa::speaker::run(options, stop) {
        Ok(stats) => {
            eprintln!("loa speaker: {stats}");
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!("loa speaker: {err}");
            Ok(ExitCode::from(1))
        }
    }
}

/// The subcommands that talk to a running daemon.
fn client(command: Command) -> ExitCode {
    match command {
        Command::Status { client } => cli::call(&client.socket(), "status", json!({}), &client.output(), cli::status_text),
        Command::Play {
            client,
            files,
            playlist,
            zones,
            priority,
            name,
            looped,
            refuse_if_busy,
            max_duration,
        } => {
            if files.is_empty() && playlist.is_none() {
                eprintln!("loa: give files to play or --playlist NAME");
                return ExitCode::from(1);
            }
            let mut params = json!({ "zones": cli::zones_arg(&zones), "loop": looped });
            if let Some(p) = playlist {
                params["playlist"] = json!(p);
            } else {
                params["files"] = json!(files.iter().map(|f| cli::media_arg(f)).collect::<Vec<_>>());
            }
            cli::set_optional(&mut params, [("priority", priority), ("name", name), ("max_duration", max_duration)]);
            if refuse_if_busy {
                params["on_busy"] = json!("refuse");
            }
            cli::call(&client.socket(), "broadcast.start", params, &client.output(), cli::play_text)
        }
        Command::Say {
            client,
            text,
            file,
            zones,
            voice,
            priority,
            name,
            refuse_if_busy,
        } => {
            let text = match (text, file) {
                (Some(text), _) => text,
                (None, Some(file)) => match cli::read_say_file(&file) {
                    Ok(text) => text,
                    Err(e) => {
                        eprintln!("loa: {e}");
                        return ExitCode::from(1);
                    }
                },
                (None, None) => unreachable!("clap requires text or --file"),
            };
            if let Err(e) = loa::media::tts::check_text(&text) {
                eprintln!("loa: {e}");
                return ExitCode::from(1);
            }
            let mut params = json!({ "zones": cli::zones_arg(&zones), "say": text });
            cli::set_optional(&mut params, [("voice", voice), ("priority", priority), ("name", name)]);
            if refuse_if_busy {
                params["on_busy"] = json!("refuse");
            }
            cli::call(&client.socket(), "broadcast.start", params, &client.output(), cli::play_text)
        }
        Command::Live {
            client,
            zones,
            priority,
            stdin,
            device,
            list_devices,
            format,
            rate,
            channels,
            name,
            max_duration,
        } => {
            if list_devices {
                return list_capture_devices(client.json);
            }
            let input = if stdin {
                let encoding = match format.parse() {
                    Ok(e) => e,
                    Err(e) => {
                        eprintln!("loa: {e}");
                        return ExitCode::from(1);
                    }
                };
                loa::cli::live::Input::Stdin(loa::media::PcmFormat { encoding, rate, channels })
            } else {
                loa::cli::live::Input::Device {
                    name: device.unwrap_or_else(|| "default".into()),
                    rate,
                    channels,
                }
            };
            loa::cli::live::run(loa::cli::live::LiveArgs {
                socket: client.socket(),
                zones: cli::zones_arg(zones.as_deref().unwrap_or_default()),
                priority,
                name,
                max_duration,
                input,
                json: client.json,
            })
        }
        Command::Stop { client, id, zone, all } => {
            let params = match (id, zone, all) {
                (Some(id), _, _) => json!({ "id": id }),
                (_, Some(zone), _) => json!({ "zone": zone }),
                (_, _, true) => json!({ "all": true }),
                _ => {
                    eprintln!("loa: say what to stop: a program id, --zone Z or --all");
                    return ExitCode::from(1);
                }
            };
            cli::call(&client.socket(), "broadcast.stop", params, &client.output(), cli::stop_text)
        }
        Command::Schedule { command } => schedule(command),
        Command::Playlist { command } => match command {
            PlaylistCommand::Load { client, name, file } => cli::call(
                &client.socket(),
                "playlist.load",
                json!({ "name": name, "file": cli::media_arg(&file) }),
                &client.output(),
                cli::playlist_loaded_text,
            ),
            PlaylistCommand::List { client } => {
                cli::call(&client.socket(), "playlist.list", json!({}), &client.output(), cli::playlists_text)
            }
        },
        Command::History { client, since, limit, csv } => {
            let format = if csv { cli::HistoryFormat::Csv } else { cli::HistoryFormat::Table };
            cli::call(
                &client.socket(),
                "history",
                json!({ "since": since, "limit": limit }),
                &client.output(),
                |v| cli::history_text(v, format),
            )
        }
        Command::Endpoints { client, zone, watch } => {
            let params = json!({ "zone": zone });
            if watch {
                cli::watch_endpoints(&client.socket(), params, &client.output())
            } else {
                cli::call(&client.socket(), "endpoints.list", params, &client.output(), cli::endpoints_text)
            }
        }
        Command::Reload { client } => cli::call(&client.socket(), "config.reload", json!({}), &client.output(), cli::reload_text),
        Command::Check { .. }
        | Command::Stream { .. }
        | Command::Sdp { .. }
        | Command::Serve { .. }
        | Command::Speaker { .. } => {
            unreachable!("handled in main")
        }
    }
}

fn schedule(command: ScheduleCommand) -> ExitCode {
    match command {
        ScheduleCommand::Add {
            client,
            name,
            cron,
            playlist,
            file,
            say,
            say_file,
            voice,
            zones,
            priority,
            max_duration,
            misfire_grace,
            on_preempt,
            on_busy,
            disabled,
        } => {
            let mut params = json!({ "name": name, "cron": cron, "zones": cli::zones_arg(&zones), "enabled": !disabled });
            if let Some(p) = playlist {
                params["playlist"] = json!(p);
            }
            if let Some(f) = file {
                params["file"] = json!(cli::media_arg(&f));
            }
            let say = match (say, say_file) {
                (Some(text), _) => Some(text),
                (None, Some(file)) => match cli::read_say_file(&file) {
                    Ok(text) => Some(text),
                    Err(e) => {
                        eprintln!("loa: {e}");
                        return ExitCode::from(1);
                    }
                },
                (None, None) => None,
            };
            if let Some(text) = &say {
                if let Err(e) = loa::media::tts::check_text(text) {
                    eprintln!("loa: {e}");
                    return ExitCode::from(1);
                }
            }
            cli::set_optional(&mut params, [
                ("say", say),
                ("voice", voice),
                ("priority", priority),
                ("max_duration", max_duration),
                ("misfire_grace", misfire_grace),
                ("on_preempt", on_preempt),
                ("on_busy", on_busy),
            ]);
            cli::call(&client.socket(), "schedule.add", params, &client.output(), cli::schedule_changed_text)
        }
        ScheduleCommand::List { client } => {
            cli::call(&client.socket(), "schedule.list", json!({}), &client.output(), cli::schedules_text)
        }
        ScheduleCommand::Remove { client, name } => cli::call(
            &client.socket(),
            "schedule.remove",
            json!({ "name": name }),
            &client.output(),
            cli::schedule_changed_text,
        ),
        ScheduleCommand::Enable { client, name } => cli::call(
            &client.socket(),
            "schedule.enable",
            json!({ "name": name }),
            &client.output(),
            cli::schedule_changed_text,
        ),
        ScheduleCommand::Disable { client, name } => cli::call(
            &client.socket(),
            "schedule.disable",
            json!({ "name": name }),
            &client.output(),
            cli::schedule_changed_text,
        ),
    }
}

/// `loa live --list-devices`: the ALSA capture devices on this machine.
fn list_capture_devices(json: bool) -> ExitCode {
    match loa::media::capture::list_devices() {
        Ok(devices) if json => {
            let list: Vec<_> = devices.iter().map(|d| json!({ "name": d.name, "description": d.description })).collect();
            println!("{}", serde_json::to_string_pretty(&list).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(devices) if devices.is_empty() => {
            println!("no capture devices (is a sound card or USB microphone connected?)");
            ExitCode::SUCCESS
        }
        Ok(devices) => {
            let rows: Vec<Vec<String>> = devices
                .iter()
                .map(|d| vec![d.name.clone(), d.description.replace('\n', " · ")])
                .collect();
            print!("{}", cli::table(&["DEVICE", "DESCRIPTION"], &rows));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loa: {e}");
            ExitCode::from(1)
        }
    }
}
