//! `loa`: parses the command line, starts logging and hands the command to
//! `loa::cli::run`, whose exit code is the process's (0 ok, 1 user error or
//! refused, 2 daemon unreachable).

use std::process::ExitCode;

use loa::cli;

fn main() -> ExitCode {
    let args = match cli::args::parse() {
        Ok(args) => args,
        Err(code) => return code,
    };
    init_logging();
    cli::run(args)
}

fn init_logging() {
    // Decoder internals log their own view of damaged files; loa reports
    // those to the operator in its own words.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,symphonia=off"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
