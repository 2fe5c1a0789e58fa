//! The command line as clap reads it: every subcommand's arguments, typed
//! with the protocol's own types (priorities, policies, durations, zone
//! selections, program ids), so a bad word is refused here, with the valid
//! words, before anything is sent.
//!
//! `--socket`, `--config` and `--json` are global: they may come before or
//! after the subcommand (`loa --socket S status`, `loa status --socket S`).
//!
//! Must not touch: anything that runs a command (see the sibling modules).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::proto::text::{parse_duration, HumanDuration};
use crate::proto::{OnBusy, OnPreempt, PcmEncoding, Priority, ProgramId, ZoneSelection};

/// Where the config file is when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "/etc/loa/loa.toml";

/// Where the control socket is when neither `--socket` nor the config says.
pub const DEFAULT_SOCKET: &str = "/run/loa/loa.sock";

#[derive(Debug, Parser)]
#[command(name = "loa", version, about = "Commune IP loudspeaker broadcast controller")]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand takes, before or after its name.
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct Global {
    /// Control socket of the daemon (default: the one in --config, else /run/loa/loa.sock).
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Config file (default: /etc/loa/loa.toml); commands that talk to the daemon read the socket path from it.
    #[arg(long, short, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the daemon's answer as JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

impl Global {
    /// The config file: `--config`, else the packaged default.
    pub fn config(&self) -> &Path {
        self.config.as_deref().unwrap_or(Path::new(DEFAULT_CONFIG))
    }

    /// The control socket: `--socket`, else the config's, else the packaged
    /// default.
    pub fn socket(&self) -> PathBuf {
        self.socket
            .clone()
            .or_else(|| crate::config::Config::load(self.config()).ok().map(|c| c.daemon.socket))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
    }
}

#[derive(Debug, PartialEq, Subcommand)]
// Parsed once per run; boxing the big variants would only obscure the CLI.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Validate a config file; errors are printed as FILE:LINE:COL: message.
    Check,
    /// Stream files back to back to one zone, without the daemon.
    Stream(StreamArgs),
    /// Print the zone's SDP, for ffmpeg, GStreamer, VLC or a speaker.
    Sdp(SdpArgs),
    /// Run the daemon in the foreground (systemd Type=notify).
    Serve,
    /// What plays on each zone, what is waiting, the next schedule fires.
    Status,
    /// Start a broadcast now: files, or a playlist.
    Play(PlayArgs),
    /// Speak Vietnamese text on zones now (espeak-ng on the daemon's machine).
    Say(SayArgs),
    /// Go on air live: a microphone (ALSA capture device) or raw PCM on
    /// stdin, until Ctrl-C or the end of the input. Lower programs pause and
    /// resume after.
    Live(LiveArgs),
    /// Stop a program by id, everything on a zone, or everything.
    Stop(StopArgs),
    /// Add, list, remove, enable or disable schedules.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Load or list playlists.
    #[command(subcommand)]
    Playlist(PlaylistCommand),
    /// What played, where, when, who started it, and the content hash.
    History(HistoryArgs),
    /// Which speakers hear the broadcast: state, loss, jitter, RTT per endpoint.
    Endpoints(EndpointsArgs),
    /// Enrol, list and revoke speakers that join loa themselves (behind NAT).
    #[command(subcommand)]
    Speakers(SpeakersCommand),
    /// Reference IP loudspeaker: join a zone, play it into a WAV file or
    /// stdout (jitter buffer, Opus FEC/PLC), send RTCP receiver reports back.
    #[command(after_help = SPEAKER_AFTER_HELP)]
    Speaker(SpeakerArgs),
    /// Re-read the config file; a broken file is refused and the old one stays.
    Reload,
}

impl Command {
    /// The subcommand as typed, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Check => "check",
            Command::Stream(_) => "stream",
            Command::Sdp(_) => "sdp",
            Command::Serve => "serve",
            Command::Status => "status",
            Command::Play(_) => "play",
            Command::Say(_) => "say",
            Command::Live(_) => "live",
            Command::Stop(_) => "stop",
            Command::Schedule(_) => "schedule",
            Command::Playlist(_) => "playlist",
            Command::History(_) => "history",
            Command::Endpoints(_) => "endpoints",
            Command::Speakers(_) => "speakers",
            Command::Speaker(_) => "speaker",
            Command::Reload => "reload",
        }
    }

    /// Whether the command reads `--socket`, `--config` and `--json`
    /// (in that order). A global flag the command would ignore is refused:
    /// nothing given on the command line is silently dropped.
    fn uses(&self) -> [bool; 3] {
        match self {
            Command::Sdp(_) => [true, true, false],
            Command::Check | Command::Stream(_) | Command::Serve => [false, true, false],
            Command::Speaker(_) => [false, false, false],
            Command::History(HistoryArgs { csv: true, .. }) => [true, true, false],
            _ => [true, true, true],
        }
    }
}

impl Cli {
    /// The global flags given that this command does not use, refused in
    /// words.
    pub fn check_global_flags(&self) -> Result<(), String> {
        let given = [self.global.socket.is_some(), self.global.config.is_some(), self.global.json];
        let names = ["--socket", "--config", "--json"];
        let unused: Vec<&str> =
            (0..3).filter(|&i| given[i] && !self.command.uses()[i]).map(|i| names[i]).collect();
        match (unused.as_slice(), &self.command) {
            ([], _) => Ok(()),
            (["--json"], Command::History(_)) => Err("--json and --csv are two outputs; give one".into()),
            (flags, command) => Err(format!("{} does not take {}", command.name(), flags.join(" or "))),
        }
    }
}

/// Reads the command line; on a usage error prints clap's message and
/// gives the exit code (1, a user error; 0 for --help and --version).
pub fn parse() -> Result<Cli, ExitCode> {
    parse_from(std::env::args_os())
}

pub fn parse_from<I: IntoIterator<Item = T>, T: Into<std::ffi::OsString> + Clone>(args: I) -> Result<Cli, ExitCode> {
    match Cli::try_parse_from(args) {
        Ok(cli) => Ok(cli),
        Err(e) => {
            let _ = e.print();
            // clap's own code for usage errors is 2, which loa keeps for
            // "the daemon is unreachable".
            Err(if e.use_stderr() { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
    }
}

#[derive(Debug, PartialEq, Args)]
pub struct StreamArgs {
    /// Zone name from the config.
    #[arg(long, short)]
    pub zone: String,
    /// Audio files (MP3, AAC/M4A, FLAC, Ogg Vorbis, WAV).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, PartialEq, Args)]
pub struct SdpArgs {
    /// Zone name from the config.
    #[arg(long, short)]
    pub zone: String,
    /// Write the SDP to FILE (mode 0600: for an SRTP zone it holds the key)
    /// instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, PartialEq, Args)]
pub struct PlayArgs {
    /// Audio files (absolute, relative to here, or inside a media folder).
    pub files: Vec<PathBuf>,
    /// Play a playlist instead of files.
    #[arg(long, conflicts_with = "files")]
    pub playlist: Option<String>,
    /// Zones, comma-separated, or "all".
    #[arg(long, value_parser = zones)]
    pub zones: ZoneSelection,
    /// emergency, live, announcement (default), scheduled or background.
    #[arg(long)]
    pub priority: Option<Priority>,
    /// Name shown in status and history.
    #[arg(long)]
    pub name: Option<String>,
    /// Start again after the last item until stopped.
    #[arg(long = "loop")]
    pub looped: bool,
    /// Refuse instead of waiting when a zone is busy with an equal or higher program.
    #[arg(long)]
    pub refuse_if_busy: bool,
    /// Cut the broadcast after this long, e.g. 30m.
    #[arg(long, value_parser = duration)]
    pub max_duration: Option<HumanDuration>,
}

#[derive(Debug, PartialEq, Args)]
pub struct SayArgs {
    /// The text, e.g. "Xin chào bà con".
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub text: Option<String>,
    /// Read the text from a UTF-8 file instead.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Zones, comma-separated, or "all".
    #[arg(long, value_parser = zones)]
    pub zones: ZoneSelection,
    /// espeak-ng voice, e.g. vi, vi-vn-x-central, vi-vn-x-south (default: [tts] voice).
    #[arg(long)]
    pub voice: Option<String>,
    /// emergency, live, announcement (default), scheduled or background.
    #[arg(long)]
    pub priority: Option<Priority>,
    /// Name shown in status and history.
    #[arg(long)]
    pub name: Option<String>,
    /// Refuse instead of waiting when a zone is busy with an equal or higher program.
    #[arg(long)]
    pub refuse_if_busy: bool,
}

#[derive(Debug, PartialEq, Args)]
pub struct LiveArgs {
    /// Zones, comma-separated, or "all".
    #[arg(long, value_parser = zones, required_unless_present = "list_devices")]
    pub zones: Option<ZoneSelection>,
    /// live (default) or emergency.
    #[arg(long)]
    pub priority: Option<Priority>,
    /// Read raw PCM from stdin, e.g. `arecord -t raw -f S16_LE -r 16000 -c 1 | loa live --stdin --rate 16000 …`.
    #[arg(long, conflicts_with = "device")]
    pub stdin: bool,
    /// ALSA capture device (default: "default"); see --list-devices.
    #[arg(long)]
    pub device: Option<String>,
    /// List the ALSA capture devices and exit.
    #[arg(long)]
    pub list_devices: bool,
    /// Sample format on stdin: s16le, s32le or f32le.
    #[arg(long, default_value = "s16le")]
    pub format: PcmEncoding,
    /// Sample rate of the input, Hz (a device may give another; loa resamples).
    #[arg(long, default_value_t = 48_000)]
    pub rate: u32,
    /// Channels of the input.
    #[arg(long, default_value_t = 1)]
    pub channels: u16,
    /// Name shown in status and history.
    #[arg(long)]
    pub name: Option<String>,
    /// End the broadcast after this long, e.g. 10m.
    #[arg(long, value_parser = duration)]
    pub max_duration: Option<HumanDuration>,
}

#[derive(Debug, PartialEq, Args)]
#[group(multiple = false)]
pub struct StopArgs {
    /// Program id (see `loa status`).
    #[arg(value_parser = program_id)]
    pub id: Option<ProgramId>,
    /// Everything on this zone.
    #[arg(long)]
    pub zone: Option<String>,
    /// Everything on every zone.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, PartialEq, Subcommand)]
// Parsed once per run; boxing the big variant would only obscure the CLI.
#[allow(clippy::large_enum_variant)]
pub enum ScheduleCommand {
    /// Add a runtime schedule (kept across restarts).
    Add(ScheduleAddArgs),
    /// Every schedule with its next fire in local time.
    List,
    Remove {
        name: String,
    },
    Enable {
        name: String,
    },
    Disable {
        name: String,
    },
}

#[derive(Debug, PartialEq, Args)]
pub struct ScheduleAddArgs {
    pub name: String,
    /// 5 fields (min hour day month weekday) or 6 (seconds first), in the daemon's timezone.
    #[arg(long)]
    pub cron: String,
    #[arg(long, required_unless_present_any = ["file", "say", "say_file"])]
    pub playlist: Option<String>,
    #[arg(long, conflicts_with_all = ["playlist", "say", "say_file"])]
    pub file: Option<PathBuf>,
    /// Speak this Vietnamese text (espeak-ng) instead of playing a file.
    #[arg(long, conflicts_with_all = ["playlist", "say_file"])]
    pub say: Option<String>,
    /// Speak the text of this UTF-8 file (read now, stored with the schedule).
    #[arg(long, conflicts_with = "playlist")]
    pub say_file: Option<PathBuf>,
    /// espeak-ng voice for --say, e.g. vi-vn-x-south (default: [tts] voice).
    #[arg(long)]
    pub voice: Option<String>,
    /// Zones, comma-separated, or "all".
    #[arg(long, value_parser = zones)]
    pub zones: ZoneSelection,
    /// emergency, live, announcement, scheduled (default) or background.
    #[arg(long)]
    pub priority: Option<Priority>,
    /// Cut each broadcast after this long, e.g. 30m.
    #[arg(long, value_parser = duration)]
    pub max_duration: Option<HumanDuration>,
    /// How late a fire missed while the daemon was down may still play, e.g. 5m.
    #[arg(long, value_parser = duration)]
    pub misfire_grace: Option<HumanDuration>,
    /// pause (default), drop or rejoin.
    #[arg(long)]
    pub on_preempt: Option<OnPreempt>,
    /// wait (default) or refuse.
    #[arg(long)]
    pub on_busy: Option<OnBusy>,
    /// Add it disabled.
    #[arg(long)]
    pub disabled: bool,
}

#[derive(Debug, PartialEq, Subcommand)]
pub enum PlaylistCommand {
    /// Load an M3U/M3U8/PLS file as a named playlist (kept across restarts).
    Load { name: String, file: PathBuf },
    /// Every playlist with its item count and total duration.
    List,
}

#[derive(Debug, PartialEq, Subcommand)]
pub enum SpeakersCommand {
    /// Enrol a speaker: make its credential (printed, or written with mode 0600).
    Add {
        /// The speaker's name in `loa speakers list` and `loa endpoints`:
        /// letters, digits, '-' and '_', e.g. xa-dong.
        #[arg(value_parser = speaker_name)]
        name: String,
        /// The zones it plays, comma-separated names from the config
        /// (SRTP zones; not "all").
        #[arg(long, value_delimiter = ',', required = true)]
        zones: Vec<String>,
        /// Write the credential file here (mode 0600) instead of printing it.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Every enrolled speaker: zones, transport, public address, last keepalive, state.
    List,
    /// Cut a speaker off: its session ends now, its credential no longer
    /// joins, and its zones get new keys.
    Revoke {
        /// The name it was enrolled under (see `loa speakers list`).
        #[arg(value_parser = speaker_name)]
        name: String,
    },
}

#[derive(Debug, PartialEq, Args)]
pub struct HistoryArgs {
    /// A date (2026-11-27), a local time ("2026-11-27 06:00"), or an age (2h, 3d).
    #[arg(long)]
    pub since: Option<String>,
    /// Only the newest N rows.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print CSV (one row per line, the header first) instead of a table.
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, PartialEq, Args)]
pub struct EndpointsArgs {
    /// Only this zone.
    #[arg(long)]
    pub zone: Option<String>,
    /// Keep printing state changes as they happen (Ctrl-C to stop).
    #[arg(long)]
    pub watch: bool,
}

/// `loa speaker --help`: what --join does when a session ends, and the
/// exit statuses (speaker/rejoin.rs decides).
const SPEAKER_AFTER_HELP: &str = "\
With --join, a session that ends is rejoined by itself, for ever: the
connection lost or broken, loa restarted, upgraded or stopped (its bye),
loa not up yet at start, busy (too many joins from one address) or
unable to check enrolments now. The delay starts at 1 s and doubles to
60 s, each ±20 % at random; a session that lasted 60 s starts it over.
The output plays on meanwhile (silence), is never reopened, and the
counters go on. Another box joining with this credential, or a refusal
in words this speaker does not know, is retried every 60 s. What a rejoin
cannot fix stops the speaker instead.

Exit status:
  0  stopped by SIGINT/SIGTERM
  1  could not run (arguments, output, sockets, a multicast group)
  3  loa refused this credential: not enrolled, revoked, or a join
     protocol it does not speak
  4  loa's identity is not the one the credential pins (another machine
     may be answering at that address)
  5  the credential file cannot be read or is not a credential";

#[derive(Debug, PartialEq, Args)]
pub struct SpeakerArgs {
    /// The zone's SDP file (from `loa sdp`).
    #[arg(long, value_name = "FILE", required_unless_present_any = ["group", "listen", "join"])]
    pub sdp: Option<PathBuf>,
    /// Join loa as an enrolled speaker: loa's address as this speaker
    /// reaches it and the port of its [speakers] listen, e.g. 192.0.2.1:5300;
    /// rejoined by itself when the session ends (below).
    #[arg(long, value_name = "HOST:PORT", value_parser = host_port, requires = "credential",
          conflicts_with_all = ["sdp", "group", "listen", "rtcp_to"])]
    pub join: Option<String>,
    /// The speaker's credential file (from `loa speakers add NAME --zones Z --out FILE`).
    #[arg(long, value_name = "FILE", requires = "join")]
    pub credential: Option<PathBuf>,
    /// With --join: this speaker takes multicast. loa then grants each zone
    /// with its group, which the speaker joins on this interface address, and
    /// sends it no unicast copy; keepalives still go to loa's port.
    #[arg(long, requires = "join", value_name = "IP")]
    pub multicast_interface: Option<Ipv4Addr>,
    /// With --join: no UDP at all. The audio comes inside the TLS connection
    /// from the start (loa lists the speaker as transport tls), for a site
    /// whose network is known to break UDP.
    #[arg(long, requires = "join", conflicts_with = "multicast_interface")]
    pub tls_only: bool,
    /// Multicast group and RTP port, e.g. 239.255.0.1:5004.
    #[arg(long, value_name = "ADDR:PORT")]
    pub group: Option<SocketAddrV4>,
    /// Interface address to join the group on (default: the kernel's choice).
    #[arg(long, value_name = "IP")]
    pub interface: Option<Ipv4Addr>,
    /// Also take RTP sent unicast to this address.
    #[arg(long, value_name = "IP:PORT")]
    pub listen: Option<SocketAddrV4>,
    /// Address reports are sent from (default: the interface address).
    #[arg(long, value_name = "IP")]
    pub bind: Option<Ipv4Addr>,
    /// Send reports unicast here instead of the group's RTCP port.
    #[arg(long, value_name = "IP:PORT")]
    pub rtcp_to: Option<SocketAddrV4>,
    /// Jitter buffer target in milliseconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=2000))]
    pub jitter_ms: u64,
    /// Decode channels (default: stereo if the SDP says sprop-stereo=1, else mono).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub channels: Option<u8>,
    /// WAV file to write (48 kHz, 16-bit), or - for raw s16le on stdout.
    #[arg(long, value_name = "FILE.wav|-")]
    pub out: Option<PathBuf>,
    /// Minimum seconds between RTCP reports (RFC 3550: 5; shorter for tests).
    #[arg(long, default_value_t = 5.0)]
    pub rtcp_interval: f64,
    /// Discard this percentage of incoming RTP packets (simulated lossy link).
    #[arg(long = "drop", default_value_t = 0.0)]
    pub drop_pct: f64,
    /// Seed for --drop, the SSRC and report timing.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print the stats line every 10 s.
    #[arg(long, short)]
    pub verbose: bool,
}

/// `--zones`: `all` or names separated by commas; an empty list is
/// refused here rather than sent.
fn zones(text: &str) -> Result<ZoneSelection, String> {
    match ZoneSelection::from_arg(text) {
        ZoneSelection::Named(names) if names.is_empty() => {
            Err("give zone names separated by commas, or all".into())
        }
        zones => Ok(zones),
    }
}

/// A speaker name, refused here in words rather than by the daemon as
/// "invalid params".
fn speaker_name(text: &str) -> Result<String, String> {
    crate::speakers::check_name(text).map(|()| text.to_string())
}

/// `--join`: HOST:PORT, checked for its shape before the credential is
/// read or anything dials (the name itself is looked up when joining).
fn host_port(text: &str) -> Result<String, String> {
    let wanted = "give loa's address and the port of its [speakers] listen, e.g. 192.0.2.1:5300";
    match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0) => Ok(text.to_string()),
        Some((_, port)) => Err(format!("\"{port}\" is not a port number; {wanted}")),
        None => Err(format!("\"{text}\" has no port; {wanted}")),
    }
}

/// `--max-duration`, `--misfire-grace`: "90s", "30m", "1h30m".
fn duration(text: &str) -> Result<HumanDuration, String> {
    parse_duration(text)
        .map(HumanDuration)
        .ok_or_else(|| format!(r#""{text}" is not a duration; write e.g. "90s", "30m" or "1h30m""#))
}

/// A program id as `loa status` shows it, with or without its `#`.
fn program_id(text: &str) -> Result<ProgramId, String> {
    let digits = text.strip_prefix('#').unwrap_or(text);
    match digits.parse::<u64>() {
        Ok(n) => ProgramId::new(n).ok_or_else(|| "program ids start at 1 (see `loa status`)".into()),
        Err(_) => Err(format!("\"{text}\" is not a program id; give the number `loa status` shows, e.g. 3")),
    }
}
