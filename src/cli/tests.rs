//! The command line as operators type it: global flags before or after the
//! subcommand, protocol words refused before any call, typed values.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

use super::args::*;
use crate::proto::{OnBusy, OnPreempt, PcmEncoding, Priority, ProgramId, ZoneSelection};

fn parse(line: &str) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(line.split_whitespace())
}

fn ok(line: &str) -> Cli {
    parse(line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

/// clap's message for a refused line, without colours.
fn refused(line: &str) -> String {
    match parse(line) {
        Ok(cli) => panic!("{line} was accepted: {cli:?}"),
        Err(e) => e.to_string(),
    }
}

fn global(socket: Option<&str>, config: Option<&str>, json: bool) -> Global {
    Global { socket: socket.map(PathBuf::from), config: config.map(PathBuf::from), json }
}

#[test]
fn socket_config_and_json_are_taken_before_or_after_the_subcommand() {
    for line in ["loa --socket /tmp/s status", "loa status --socket /tmp/s"] {
        let cli = ok(line);
        assert_eq!(cli.global, global(Some("/tmp/s"), None, false), "{line}");
        assert_eq!(cli.command, Command::Status, "{line}");
    }
    for line in ["loa --json schedule list", "loa schedule list --json", "loa schedule --json list"] {
        let cli = ok(line);
        assert_eq!(cli.global, global(None, None, true), "{line}");
        assert_eq!(cli.command, Command::Schedule(ScheduleCommand::List), "{line}");
    }
    for line in ["loa --config /etc/x.toml check", "loa check --config /etc/x.toml", "loa -c /etc/x.toml check", "loa check -c /etc/x.toml"] {
        let cli = ok(line);
        assert_eq!(cli.global.config(), Path::new("/etc/x.toml"), "{line}");
        assert_eq!(cli.command, Command::Check, "{line}");
    }
    let cli = ok("loa --json --socket /tmp/s history --limit 3");
    assert_eq!(cli.global, global(Some("/tmp/s"), None, true));
    assert_eq!(cli.command, Command::History(HistoryArgs { since: None, limit: Some(3), csv: false }));
    let cli = ok("loa --socket /tmp/s play --zones thon-1 tin.mp3 --json --config /etc/x.toml");
    assert_eq!(cli.global, global(Some("/tmp/s"), Some("/etc/x.toml"), true));
}

#[test]
fn the_config_matters_to_serve_stream_and_sdp_in_either_place_and_defaults_to_etc() {
    assert_eq!(ok("loa serve").global.config(), Path::new(DEFAULT_CONFIG));
    assert_eq!(ok("loa --config a.toml serve").global.config(), Path::new("a.toml"));
    let cli = ok("loa stream --zone z --config a.toml x.wav y.wav");
    assert_eq!(cli.global.config(), Path::new("a.toml"));
    assert_eq!(cli.command, Command::Stream(StreamArgs { zone: "z".into(), files: vec!["x.wav".into(), "y.wav".into()] }));
    let cli = ok("loa -c a.toml sdp --zone z");
    assert_eq!((cli.global.config(), cli.command), (Path::new("a.toml"), Command::Sdp(SdpArgs { zone: "z".into(), out: None })));
}

#[test]
fn the_socket_comes_from_the_flag_else_the_config_else_the_packaged_default() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("loa.toml");
    std::fs::write(
        &config,
        "[network]\ninterface = \"127.0.0.1\"\n[daemon]\nsocket = \"/tmp/from-config.sock\"\n\
         [[zone]]\nname = \"z\"\ngroup = \"239.255.0.1:5004\"\n",
    )
    .unwrap();
    let from_config = Global { config: Some(config.clone()), ..Default::default() };
    assert_eq!(from_config.socket(), Path::new("/tmp/from-config.sock"));
    let flag = Global { socket: Some("/tmp/flag.sock".into()), config: Some(config), json: false };
    assert_eq!(flag.socket(), Path::new("/tmp/flag.sock"));
    let unreadable = Global { config: Some(dir.path().join("missing.toml")), ..Default::default() };
    assert_eq!(unreadable.socket(), Path::new(DEFAULT_SOCKET));
}

#[test]
fn a_global_flag_a_command_would_ignore_is_refused_in_words() {
    let said = |line: &str| ok(line).check_global_flags();
    assert_eq!(said("loa serve --json"), Err("serve does not take --json".into()));
    assert_eq!(said("loa --socket /s check"), Err("check does not take --socket".into()));
    assert_eq!(
        said("loa speaker --group 239.255.0.1:5004 --config a.toml --json"),
        Err("speaker does not take --config or --json".into())
    );
    assert_eq!(said("loa history --csv --json"), Err("--json and --csv are two outputs; give one".into()));
    assert_eq!(said("loa --json --socket /s --config a.toml status"), Ok(()));
    assert_eq!(said("loa history --csv --socket /s"), Ok(()));
    assert_eq!(said("loa --config a.toml stream --zone z x.wav"), Ok(()));
}

#[test]
fn priorities_and_policies_are_the_protocol_words_and_a_bad_one_is_refused_with_the_valid_ones() {
    let cli = ok("loa play --zones thon-1,thon-2 --priority emergency --refuse-if-busy --max-duration 1h30m a.mp3");
    let Command::Play(play) = cli.command else { panic!("{:?}", cli.command) };
    assert_eq!(play.priority, Some(Priority::Emergency));
    assert_eq!(play.zones, ZoneSelection::Named(vec!["thon-1".into(), "thon-2".into()]));
    assert_eq!(play.max_duration.map(|d| d.0), Some(Duration::from_secs(5400)));
    assert!(play.refuse_if_busy);

    let err = refused("loa play --zones all --priority urgent a.mp3");
    assert!(err.contains(r#"unknown priority "urgent"; valid: emergency, live, announcement, scheduled, background"#), "{err}");
    let err = refused("loa schedule add s --cron x --file a.mp3 --zones all --on-preempt later");
    assert!(err.contains(r#"unknown on_preempt "later"; valid: pause, drop, rejoin"#), "{err}");
    let err = refused("loa schedule add s --cron x --file a.mp3 --zones all --on-busy never");
    assert!(err.contains(r#"unknown on_busy "never"; valid: wait, refuse"#), "{err}");
    let err = refused("loa live --zones all --stdin --format mp3");
    assert!(err.contains(r#"unknown PCM format "mp3""#), "{err}");
}

#[test]
fn schedule_add_takes_durations_in_words_and_rejoin() {
    let cli = ok("loa schedule add sang --cron 0_6_*_*_* --playlist tin --zones all --priority scheduled \
                  --max-duration 30m --misfire-grace 90s --on-preempt rejoin --on-busy refuse --disabled");
    let Command::Schedule(ScheduleCommand::Add(add)) = cli.command else { panic!("{:?}", cli.command) };
    assert_eq!(add.zones, ZoneSelection::All);
    assert_eq!(add.max_duration.map(|d| d.0), Some(Duration::from_secs(1800)));
    assert_eq!(add.misfire_grace.map(|d| d.0), Some(Duration::from_secs(90)));
    assert_eq!(add.on_preempt, Some(OnPreempt::Rejoin));
    assert_eq!(add.on_busy, Some(OnBusy::Refuse));
    assert!(add.disabled);

    let err = refused("loa schedule add s --cron x --file a.mp3 --zones all --misfire-grace soon");
    assert!(err.contains(r#""soon" is not a duration; write e.g. "90s", "30m" or "1h30m""#), "{err}");
    let err = refused("loa play --zones all --max-duration=-5m a.mp3");
    assert!(err.contains("is not a duration"), "{err}");
}

#[test]
fn zones_are_all_or_names_and_an_empty_list_is_refused() {
    let cli = ok("loa say --zones all Xin_chào");
    let Command::Say(say) = cli.command else { panic!("{:?}", cli.command) };
    assert_eq!(say.zones, ZoneSelection::All);
    let err = refused("loa play --zones , a.mp3");
    assert!(err.contains("give zone names separated by commas, or all"), "{err}");
}

#[test]
fn stop_takes_one_program_id_a_zone_or_all() {
    let stop = |line: &str| match ok(line).command {
        Command::Stop(args) => args,
        other => panic!("{other:?}"),
    };
    assert_eq!(stop("loa stop 4").id, ProgramId::new(4));
    assert_eq!(stop("loa stop #4").id, ProgramId::new(4), "as `loa status` shows it");
    assert_eq!(stop("loa stop --zone thon-1").zone.as_deref(), Some("thon-1"));
    assert!(stop("loa stop --all").all);
    assert_eq!(stop("loa stop"), StopArgs { id: None, zone: None, all: false }, "said in words by the command");
    assert!(refused("loa stop 0").contains("program ids start at 1"));
    assert!(refused("loa stop four").contains(r#""four" is not a program id"#));
    refused("loa stop 4 --all");
    refused("loa stop --zone thon-1 --all");
}

#[test]
fn live_reads_its_pcm_format_and_needs_zones_unless_it_lists_devices() {
    let cli = ok("loa live --zones thon-1 --stdin --format s32le --rate 16000 --channels 2 --priority emergency");
    let Command::Live(live) = cli.command else { panic!("{:?}", cli.command) };
    assert_eq!((live.format, live.rate, live.channels), (PcmEncoding::S32le, 16_000, 2));
    assert_eq!(live.priority, Some(Priority::Emergency));
    let cli = ok("loa live --list-devices --json");
    assert!(cli.global.json);
    assert!(matches!(cli.command, Command::Live(LiveArgs { list_devices: true, zones: None, format: PcmEncoding::S16le, .. })));
    refused("loa live --stdin");
}

#[test]
fn usage_errors_exit_1_because_2_means_the_daemon_is_unreachable() {
    assert_eq!(parse_from(["loa", "play", "--zones", "all", "--priority", "urgent", "a.mp3"]).unwrap_err(), std::process::ExitCode::from(1));
    assert_eq!(parse_from(["loa", "frobnicate"]).unwrap_err(), std::process::ExitCode::from(1));
    assert_eq!(parse_from(["loa", "--version"]).unwrap_err(), std::process::ExitCode::SUCCESS);
}

#[test]
fn the_command_line_definition_is_consistent() {
    <Cli as clap::CommandFactory>::command().debug_assert();
}
