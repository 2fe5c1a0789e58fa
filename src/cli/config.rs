//! The config file from the command line: `loa check` (validate, errors as
//! FILE:LINE:COL), `loa sdp` (a zone's SDP) and `loa reload` (ask the
//! running daemon to re-read it).
//!
//! Must not touch: daemon state (reload goes through the socket).

use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;
use crate::proto::reload::{ReloadParams, Reloaded};

use super::args::{Global, SdpArgs};
use super::{call_and_print, user_error};

/// Loads the config, printing each error as FILE:LINE:COL: message.
pub fn load(path: &Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|errors| {
        eprint!("{errors}");
        if !errors.to_string().ends_with('\n') {
            eprintln!();
        }
        ExitCode::from(1)
    })
}

pub fn check(path: &Path) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let zones: Vec<String> = config.zones.iter().map(|z| format!("{} {}", z.name, z.group)).collect();
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
    ExitCode::SUCCESS
}

pub fn sdp(args: SdpArgs, path: &Path) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    match super::stream::zone_sdp(&config, &args.zone) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => user_error(e),
    }
}

pub fn reload(global: &Global) -> ExitCode {
    call_and_print(global, &ReloadParams {}, reload_text)
}

pub fn reload_text(v: &Reloaded) -> String {
    let mut out = String::from("config reloaded\n");
    for (zones, label) in [(&v.zones_added, "zones added"), (&v.zones_removed, "zones removed")] {
        if !zones.is_empty() {
            out += &format!("{label}: {}\n", zones.join(", "));
        }
    }
    for note in &v.notes {
        out += &format!("note: {note}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_says_which_zones_came_and_went_and_what_waits() {
        let v = Reloaded {
            zones_added: vec!["thon-3".into(), "thon-4".into()],
            zones_removed: vec![],
            schedules: 2,
            notes: vec!["[network] changes apply after a restart".into()],
        };
        assert_eq!(
            reload_text(&v),
            "config reloaded\nzones added: thon-3, thon-4\nnote: [network] changes apply after a restart\n"
        );
        let nothing = Reloaded { zones_added: vec![], zones_removed: vec!["cu".into()], schedules: 0, notes: vec![] };
        assert_eq!(reload_text(&nothing), "config reloaded\nzones removed: cu\n");
    }
}
