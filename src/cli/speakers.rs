//! `loa speakers add | list | revoke`, as `speakers.*` with typed params
//! and answers. The credential `add` returns is a secret: written with mode
//! 0600, or printed with a warning on stderr.
//!
//! Must not touch: daemon state (everything goes through the socket).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::proto::speakers::{SpeakerAdded, SpeakerInfo, SpeakerList, SpeakerRevoked, SpeakersAddParams, SpeakersListParams, SpeakersRevokeParams};

use super::args::{Global, SpeakersCommand};
use super::client::Client;
use super::table::table;
use super::{call_and_print, fail, json_text, user_error, TIMEOUT};

pub fn run(command: SpeakersCommand, global: &Global) -> ExitCode {
    match command {
        SpeakersCommand::Add { name, zones, out } => add(global, SpeakersAddParams { name, zones }, out.as_deref()),
        SpeakersCommand::List => call_and_print(global, &SpeakersListParams {}, speakers_text),
        SpeakersCommand::Revoke { name } => call_and_print(global, &SpeakersRevokeParams { name }, revoked_text),
    }
}

fn add(global: &Global, params: SpeakersAddParams, out: Option<&Path>) -> ExitCode {
    if let Some(Err(e)) = out.map(writable) {
        return user_error(format!("{e}; nothing was enrolled"));
    }
    let added = match Client::connect(&global.socket(), TIMEOUT).and_then(|mut c| c.call(&params)) {
        Ok(added) => added,
        Err(e) => return fail(e),
    };
    match out {
        Some(path) => {
            if let Err(e) = crate::speakers::identity::write_private(path, added.credential.as_bytes()) {
                return user_error(format!("speaker {} is enrolled, but {e}; revoke it and add it again", added.name));
            }
            let text = if global.json { json_text(&added) } else { written_text(&added, path) };
            let _ = std::io::stdout().write_all(text.as_bytes());
        }
        None => {
            eprintln!("loa: this is speaker {}'s secret credential: whoever has it can join as that speaker; keep it like a password", added.name);
            let text = if global.json { json_text(&added) } else { added.credential.clone() };
            let _ = std::io::stdout().write_all(text.as_bytes());
        }
    }
    ExitCode::SUCCESS
}

/// Whether the credential can be written at `path`, asked before the
/// daemon enrols anything: a typo in `--out` must not leave an enrolled
/// speaker whose credential nobody holds (it would have to be revoked).
/// Tried the way `write_private` writes: a new file beside `path`.
fn writable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    if path.is_dir() {
        return Err(format!("{} is a folder; give the credential a file name, e.g. {}", path.display(), path.join("NAME.toml").display()));
    }
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        return Err(format!("cannot write {}: the folder {} does not exist", path.display(), folder.display()));
    }
    let probe = path.with_extension("tmp");
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        // Left by an earlier write; `write_private` replaces it.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot write {}: {}", path.display(), crate::proto::text::io_reason(&e))),
    }
}

fn written_text(added: &SpeakerAdded, path: &Path) -> String {
    format!(
        "speaker {} enrolled for {} (certificate pin {}); credential written to {} (mode 0600)\n",
        added.name,
        added.zones.join(","),
        added.pin,
        path.display()
    )
}

pub fn speakers_text(v: &SpeakerList) -> String {
    if v.speakers.is_empty() {
        return "no speakers enrolled\n".into();
    }
    let rows: Vec<Vec<String>> = v.speakers.iter().map(row).collect();
    table(&["NAME", "ZONES", "TRANSPORT", "ADDRESS", "LAST KEEPALIVE", "STATE"], &rows)
}

fn row(s: &SpeakerInfo) -> Vec<String> {
    let dash = || "-".to_string();
    vec![
        s.name.clone(),
        s.zones.join(","),
        s.transport.map_or_else(dash, |t| t.to_string()),
        s.address.clone().unwrap_or_else(dash),
        s.last_keepalive.map_or_else(dash, to_the_second),
        match s.revoked_at {
            Some(at) => format!("{} {}", s.state, to_the_second(at)),
            None => s.state.to_string(),
        },
    ]
}

/// A time in the table: the daemon keeps nanoseconds, a person reads seconds.
fn to_the_second(t: jiff::Timestamp) -> String {
    t.round(jiff::Unit::Second).unwrap_or(t).to_string()
}

pub fn revoked_text(v: &SpeakerRevoked) -> String {
    let mut out = format!("speaker {} revoked: its credential no longer joins\n", v.name);
    if v.session_closed {
        out += "its session was closed\n";
    }
    if !v.zones_rekeyed.is_empty() {
        out += &format!("new keys for {}\n", v.zones_rekeyed.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::proto::speakers::{SpeakerState, SpeakerTransport};

    fn speaker(name: &str) -> SpeakerInfo {
        SpeakerInfo {
            name: name.into(),
            zones: vec!["thon-1".into(), "thon-2".into()],
            state: SpeakerState::Offline,
            transport: None,
            address: None,
            last_keepalive: None,
            pin: "sha256:aa".into(),
            enrolled_at: Timestamp::from_second(1_800_000_000).unwrap(),
            enrolled_by: Some(0),
            revoked_at: None,
            revoked_by: None,
        }
    }

    #[test]
    fn speakers_show_transport_address_keepalive_and_state() {
        let mut online = speaker("xa-dong");
        online.state = SpeakerState::Online;
        online.transport = Some(SpeakerTransport::Unicast);
        online.address = Some("203.0.113.9:40112".into());
        online.last_keepalive = Some(Timestamp::new(1_800_000_100, 84_976_138).unwrap());
        let mut revoked = speaker("cu");
        revoked.state = SpeakerState::Revoked;
        revoked.revoked_at = Some(Timestamp::new(1_800_000_199, 817_000_000).unwrap());
        let text = speakers_text(&SpeakerList { speakers: vec![online, speaker("moi"), revoked] });
        assert_eq!(
            text,
            "NAME     ZONES          TRANSPORT  ADDRESS            LAST KEEPALIVE        STATE\n\
             xa-dong  thon-1,thon-2  unicast    203.0.113.9:40112  2027-01-15T08:01:40Z  online\n\
             moi      thon-1,thon-2  -          -                  -                     offline\n\
             cu       thon-1,thon-2  -          -                  -                     revoked 2027-01-15T08:03:20Z\n"
        );
        assert_eq!(speakers_text(&SpeakerList { speakers: vec![] }), "no speakers enrolled\n");
    }

    #[test]
    fn a_credential_path_that_cannot_be_written_is_refused_before_enrolling() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(writable(&dir.path().join("xa-dong.toml")), Ok(()));
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "the trial leaves nothing behind");
        let missing = dir.path().join("nowhere/xa-dong.toml");
        assert_eq!(
            writable(&missing),
            Err(format!("cannot write {}: the folder {} does not exist", missing.display(), dir.path().join("nowhere").display()))
        );
        assert!(writable(dir.path()).unwrap_err().contains("is a folder; give the credential a file name"));
    }
}
