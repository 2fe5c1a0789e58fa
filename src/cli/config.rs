//! The config file from the command line: `loa check` (validate, errors as
//! FILE:LINE:COL), `loa sdp` (a zone's SDP) and `loa reload` (ask the
//! running daemon to re-read it).
//!
//! Must not touch: daemon state (reload goes through the socket).

use std::path::Path;
use std::process::ExitCode;

use crate::config::{Config, ZoneSecurity};
use crate::proto::keys::{ZoneKeysInfo, ZoneKeysParams};
use crate::proto::reload::{ReloadParams, Reloaded};
use crate::rtp::sdp::SdpProtection;
use crate::rtp::srtp::{CryptoAttribute, KeyParam, MasterKey, Mki, Suite};

use super::args::{Global, SdpArgs};
use super::client::Client;
use super::{call_and_print, fail, user_error, TIMEOUT};

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
        let srtp: Vec<&str> =
            config.zones.iter().filter(|z| z.security == ZoneSecurity::Srtp).map(|z| z.name.as_str()).collect();
        if !srtp.is_empty() {
            println!(
                "{}: SAP announces SRTP zones as RTP/SAVP without their key, which never travels in SAP (receivers get it from `loa sdp --zone Z`): {}",
                path.display(),
                srtp.join(", ")
            );
        }
    }
    for warning in config.insecure_zone_warnings().into_iter().chain(config.mki_less_zone_warnings()) {
        eprintln!("{}: warning: {warning}", path.display());
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

/// `loa sdp`: a plain zone's SDP comes from the config alone; an SRTP
/// zone's carries its keys, which only the running daemon has.
pub fn sdp(args: SdpArgs, global: &Global) -> ExitCode {
    let config = match load(global.config()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let Some(zone) = config.zone(&args.zone) else {
        return match super::stream::zone_sdp(&config, &args.zone) {
            Err(e) => user_error(e),
            Ok(_) => user_error(format!("unknown zone \"{}\"", args.zone)),
        };
    };
    // Said once the SDP is out: a file that could not be written holds no secret.
    let mut notes = Vec::new();
    let text = match zone.security {
        ZoneSecurity::None => crate::rtp::sdp::for_zone(&config, zone),
        ZoneSecurity::Srtp => {
            let keys = match Client::connect(&global.socket(), TIMEOUT)
                .and_then(|mut c| c.call(&ZoneKeysParams { zone: zone.name.clone() }))
            {
                Ok(keys) => keys,
                Err(e) => {
                    eprintln!("loa: zone {} is an SRTP zone: its keys come from the running daemon", zone.name);
                    return fail(e);
                }
            };
            let text = match crypto_lines(&keys) {
                Ok(crypto) => {
                    crate::rtp::sdp::for_zone_with(&config, zone, SdpProtection::Srtp { crypto, ssrc: keys.ssrc })
                }
                Err(e) => return user_error(format!("the daemon's keys for zone {} are unusable: {e}", zone.name)),
            };
            notes.push(format!(
                "this SDP holds zone {}'s key: it is a secret, since whoever has it can play audio on the zone's speakers",
                zone.name
            ));
            if keys.mki_len == 0 {
                // The daemon's clock has nanoseconds; the operator reads seconds.
                let switch_at = match keys.switch_at.parse::<jiff::Timestamp>() {
                    Ok(t) => t.round(jiff::Unit::Second).unwrap_or(t).to_string(),
                    Err(_) => keys.switch_at.clone(),
                };
                notes.push(format!(
                    "zone {} has mki = false: this SDP holds only the key in use, which stops playing at the next key change ({switch_at}); give receivers a new SDP after it",
                    zone.name
                ));
            } else {
                notes.push("keys rotate: this SDP plays until the key after the two it holds takes over".into());
            }
            text
        }
    };
    match &args.out {
        None => print!("{text}"),
        Some(path) => {
            if let Err(e) = write_private(path, text.as_bytes()) {
                return user_error(format!("cannot write {}: {}", path.display(), crate::proto::text::io_reason(&e)));
            }
        }
    }
    for note in notes {
        eprintln!("loa: {note}");
    }
    ExitCode::SUCCESS
}

/// The zone's `a=crypto` attribute (RFC 4568 §6.1): one line holding both
/// master keys, current first, each with its MKI, so a receiver holds the
/// next key before the switch and follows the MKI across it. For a zone
/// whose packets carry no MKI (`mki_len` 0), the current key alone, with
/// no lifetime or MKI: several keys need MKIs (§6.1), and ffmpeg reads
/// nothing after the key.
pub fn crypto_lines(keys: &ZoneKeysInfo) -> Result<Vec<String>, String> {
    let suite = Suite::from_sdp_name(&keys.suite).ok_or_else(|| format!("unknown suite {}", keys.suite))?;
    let entries = if keys.mki_len == 0 { &keys.keys[..keys.keys.len().min(1)] } else { &keys.keys[..] };
    let params = entries
        .iter()
        .map(|entry| {
            let key = MasterKey::from_inline(suite, &entry.inline).map_err(|e| e.to_string())?;
            let mki = match keys.mki_len {
                0 => None,
                len => Some(Mki::new(entry.mki, len).map_err(|e| e.to_string())?),
            };
            Ok(KeyParam { key, lifetime: None, mki })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let attribute = CryptoAttribute { tag: 1, suite, keys: params };
    Ok(vec![attribute.expose_sdp_line()])
}

/// Writes `bytes` to `path` readable by its owner only, whatever the
/// umask, replacing what was there.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    // An existing file keeps its mode on open: tighten it first.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)
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

    fn info(mki_len: u8) -> ZoneKeysInfo {
        let inline = |fill: u8| MasterKey::from_bytes(Suite::AesCm128HmacSha1_80, &[fill; 30]).unwrap().to_inline();
        ZoneKeysInfo {
            zone: "z".into(),
            ssrc: 1,
            suite: "AES_CM_128_HMAC_SHA1_80".into(),
            mki_len,
            keys: vec![
                crate::proto::keys::ZoneKeyEntry { mki: 7, inline: inline(1) },
                crate::proto::keys::ZoneKeyEntry { mki: 8, inline: inline(2) },
            ],
            switch_at: "2026-12-06T00:00:00Z".into(),
        }
    }

    #[test]
    fn the_sdp_key_line_names_both_keys_by_mki_or_gives_the_current_key_alone() {
        let named = crypto_lines(&info(4)).unwrap();
        assert_eq!(named.len(), 1);
        assert!(named[0].ends_with("inline:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB|7:4;inline:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgIC|8:4"), "{}", named[0]);
        // What ffmpeg reads: one key, nothing after it.
        let bare = crypto_lines(&info(0)).unwrap();
        assert_eq!(bare, ["a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB"]);
    }
}
