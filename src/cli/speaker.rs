//! `loa speaker`: the reference IP loudspeaker, from its command-line
//! arguments to `crate::speaker::run`, with its own exit codes (0 when it
//! ran, 1 when it could not, 3–5 when `--join` stopped for what a rejoin
//! cannot fix: `SpeakerError::exit_status`).
//!
//! Must not touch: sockets, jitter buffer, decoding (`crate::speaker`).

use std::process::ExitCode;
use std::time::Duration;

use crate::speaker::{OutputTarget, SpeakerOptions};

use super::args::SpeakerArgs;
use super::stop_on_signals;

pub fn run(args: SpeakerArgs) -> ExitCode {
    let options = match options(args) {
        Ok(options) => options,
        Err(e) => return said(e),
    };
    let stop = match stop_on_signals() {
        Ok(stop) => stop,
        Err(e) => return said(e),
    };
    match crate::speaker::run(options, stop) {
        Ok(stats) => {
            eprintln!("loa speaker: {stats}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loa speaker: {e}");
            ExitCode::from(e.exit_status())
        }
    }
}

fn said(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("loa speaker: {e}");
    ExitCode::from(1)
}

/// The arguments as the receiver takes them, or what is wrong with them.
fn options(args: SpeakerArgs) -> Result<SpeakerOptions, &'static str> {
    let SpeakerArgs {
        sdp,
        join,
        credential,
        multicast_interface,
        tls_only,
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
    } = args;
    let rtcp_interval = Duration::try_from_secs_f64(rtcp_interval)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or("--rtcp-interval must be a positive number of seconds")?;
    if !(0.0..=100.0).contains(&drop_pct) {
        return Err("--drop must be a percentage from 0 to 100");
    }
    let out = match out {
        Some(path) if path.as_os_str() == "-" => OutputTarget::Stdout,
        Some(path) => OutputTarget::Wav(path),
        None => OutputTarget::Discard,
    };
    Ok(SpeakerOptions {
        sdp,
        group,
        interface,
        listen,
        bind,
        rtcp_to,
        jitter: Duration::from_millis(jitter_ms),
        channels,
        out,
        rtcp_interval,
        drop_pct,
        seed,
        verbose,
        join: join.zip(credential).map(|(daemon, credential)| crate::speaker::JoinOptions {
            daemon,
            credential,
            multicast: multicast_interface,
            tls_only,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::{Cli, Command};
    use clap::Parser;

    fn parsed(extra: &[&str]) -> SpeakerArgs {
        let mut argv = vec!["loa", "speaker", "--group", "239.255.0.1:5004"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Speaker(args) => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn speaker_arguments_become_receiver_options() {
        let o = options(parsed(&["--out", "-", "--rtcp-interval", "0.5", "--drop", "10"])).unwrap();
        assert_eq!(o.out, OutputTarget::Stdout);
        assert_eq!(o.rtcp_interval, Duration::from_millis(500));
        assert_eq!(o.jitter, Duration::from_millis(60));
        assert_eq!(o.group, Some("239.255.0.1:5004".parse().unwrap()));
    }

    #[test]
    fn a_zero_report_interval_or_a_drop_over_100_percent_is_refused_in_words() {
        assert_eq!(options(parsed(&["--rtcp-interval", "0"])).unwrap_err(), "--rtcp-interval must be a positive number of seconds");
        assert_eq!(options(parsed(&["--drop", "150"])).unwrap_err(), "--drop must be a percentage from 0 to 100");
    }

    #[test]
    fn multicast_interface_goes_with_join_only() {
        let argv = ["loa", "speaker", "--join", "192.0.2.1:5300", "--credential", "c.toml", "--multicast-interface", "192.0.2.40"];
        let Command::Speaker(args) = Cli::try_parse_from(argv).unwrap().command else { panic!() };
        let join = options(args).unwrap().join.unwrap();
        assert_eq!(join.multicast, Some("192.0.2.40".parse().unwrap()));
        let alone = Cli::try_parse_from(["loa", "speaker", "--group", "239.255.0.1:5004", "--multicast-interface", "192.0.2.40"]);
        assert!(alone.unwrap_err().to_string().contains("--join"));
    }

    #[test]
    fn tls_only_goes_with_join_and_not_with_multicast() {
        let argv = ["loa", "speaker", "--join", "192.0.2.1:5300", "--credential", "c.toml", "--tls-only"];
        let Command::Speaker(args) = Cli::try_parse_from(argv).unwrap().command else { panic!() };
        assert!(options(args).unwrap().join.unwrap().tls_only);
        let alone = Cli::try_parse_from(["loa", "speaker", "--group", "239.255.0.1:5004", "--tls-only"]);
        assert!(alone.unwrap_err().to_string().contains("--join"));
        let both = ["loa", "speaker", "--join", "192.0.2.1:5300", "--credential", "c.toml", "--tls-only", "--multicast-interface", "192.0.2.40"];
        assert!(Cli::try_parse_from(both).unwrap_err().to_string().contains("cannot be used with"));
    }
}
