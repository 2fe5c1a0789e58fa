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

use loa::config::Config;
use loa::stream::{self, StreamRequest};

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
        stream::clock_text(report.audio),
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
