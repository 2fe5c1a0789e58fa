//! `loa serve`: runs the daemon in the foreground on the config file.
//!
//! Must not touch: the daemon's workings (`crate::daemon` owns them).

use std::path::Path;
use std::process::ExitCode;

use crate::daemon::DaemonError;

use super::{error_chain, user_error};

pub fn run(config: &Path) -> ExitCode {
    match crate::daemon::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        // Each already reads FILE:LINE:COL: message.
        Err(DaemonError::Config(errors)) => {
            eprintln!("{errors}");
            ExitCode::from(1)
        }
        Err(e) => user_error(error_chain(&e)),
    }
}
