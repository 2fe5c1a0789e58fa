//! The operator's command line: `args` reads it, [`run`] hands each
//! subcommand's own arguments to its module, and each module builds the
//! typed params, calls the daemon and prints the typed answer as a table
//! people read, or as JSON with `--json`. Exit codes are a contract: 0 ok,
//! 1 user error or refused, 2 daemon unreachable.
//!
//! Modules: `status`; `broadcast` (play, say, stop); `live`; `schedule`;
//! `playlist`; `history`; `endpoints`; `config` (check, sdp, reload);
//! `stream` (`loa stream` without the daemon); `speaker`; `serve`;
//! `client` (the socket) and `table` (the table renderer).
//!
//! Must not touch: daemon state; everything goes through the socket.

pub mod args;
pub mod broadcast;
pub mod client;
pub mod config;
pub mod endpoints;
pub mod history;
pub mod live;
pub mod playlist;
pub mod schedule;
pub mod serve;
pub mod speaker;
pub mod speakers;
pub mod status;
pub mod stream;
pub mod table;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::proto::request::Method;

use self::args::{Cli, Command, Global};
use self::client::{Client, ClientError};

/// How long a CLI call waits for the daemon (a `play` answers once the
/// program is on air, which takes a prefill).
const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs one command line.
pub fn run(cli: Cli) -> ExitCode {
    if let Err(e) = cli.check_global_flags() {
        return user_error(e);
    }
    let Cli { global, command } = cli;
    match command {
        Command::Check => config::check(global.config()),
        Command::Sdp(args) => config::sdp(args, &global),
        Command::Reload => config::reload(&global),
        Command::Stream(args) => stream::command(args, global.config()),
        Command::Serve => serve::run(global.config()),
        Command::Speaker(args) => speaker::run(args),
        Command::Status => status::run(&global),
        Command::Play(args) => broadcast::play(args, &global),
        Command::Say(args) => broadcast::say(args, &global),
        Command::Stop(args) => broadcast::stop(args, &global),
        Command::Live(args) => live::run(args, &global),
        Command::Schedule(command) => schedule::run(command, &global),
        Command::Playlist(command) => playlist::run(command, &global),
        Command::History(args) => history::run(args, &global),
        Command::Endpoints(args) => endpoints::run(args, &global),
        Command::Speakers(command) => speakers::run(command, &global),
    }
}

/// Calls the daemon with `params` and prints its answer with `human`, or
/// as pretty JSON with `--json` (the daemon's answer, field for field).
pub fn call_and_print<M: Method>(global: &Global, params: &M, human: impl FnOnce(&M::Response) -> String) -> ExitCode {
    match Client::connect(&global.socket(), TIMEOUT).and_then(|mut c| c.call(params)) {
        Ok(response) => {
            let text = if global.json { json_text(&response) } else { human(&response) };
            let _ = std::io::stdout().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// A typed answer as `--json` prints it: pretty, one trailing newline.
pub fn json_text(value: &impl serde::Serialize) -> String {
    // The protocol's types serialize to JSON by construction (string keys,
    // finite numbers from the daemon's own JSON).
    serde_json::to_string_pretty(value).expect("protocol types serialize") + "\n"
}

/// Prints a client error and gives its exit code (2 unreachable, else 1).
pub fn fail(e: ClientError) -> ExitCode {
    eprintln!("loa: {e}");
    ExitCode::from(e.exit_code())
}

/// Prints `loa: MESSAGE` and gives exit code 1.
pub fn user_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("loa: {message}");
    ExitCode::from(1)
}

/// A flag set by SIGINT or SIGTERM, for commands that stop cleanly.
pub fn stop_on_signals() -> Result<Arc<AtomicBool>, String> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).map_err(|e| format!("cannot install signal handler: {e}"))?;
    }
    Ok(stop)
}

/// An error and the causes its own text does not already say, joined by
/// ": " (a cause that only repeats the message is left out).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text = format!("{text}: {said}");
        }
        source = cause.source();
    }
    text
}

/// A path the operator typed: made absolute when it exists here, so
/// `loa play ./tin.mp3` means this folder's file; otherwise sent as typed
/// for the daemon to look up in its media folders.
pub fn media_arg(path: &Path) -> String {
    match std::fs::canonicalize(path) {
        Ok(abs) => abs.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests;
