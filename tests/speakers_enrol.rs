//! Enrolment and revocation through the real daemon (issue 15 point 4):
//! `loa speakers add` makes a credential file only its owner can read,
//! bound to the daemon's identity that survives a restart; `list` shows
//! live and revoked speakers; `revoke` frees the name; refusals are in
//! plain words; the store keeps who did each of it.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::daemon::{base_config, zone_toml, Daemon};
use common::require_netns;
use loa::speakers::Credential;
use loa::store::{SpeakerEventKind, Store};

/// The join port of this test's daemon: its own, since the daemon now
/// listens on it and tests run side by side.
fn listen_addr() -> String {
    format!("127.0.0.1:{}", common::unique_group().1)
}

fn config(dir: &Path, listen: bool) -> String {
    config_on(dir, listen.then(listen_addr).as_deref())
}

/// SRTP zones thon-1 and thon-2 (what joined speakers play) and a plain
/// RTP zone, legacy.
fn config_on(dir: &Path, listen: Option<&str>) -> String {
    let srtp = |name| zone_toml(name).0.replace("security = \"none\"\n", "");
    let (legacy, _, _) = zone_toml("legacy");
    let speakers = listen.map(|l| format!("[speakers]\nlisten = \"{l}\"\n")).unwrap_or_default();
    format!("{}{speakers}{}{}{legacy}", base_config(dir), srtp("thon-1"), srtp("thon-2"))
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn enrolment_writes_a_private_credential_bound_to_the_daemon_identity() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let listen = listen_addr();
    let mut daemon = Daemon::start(dir.path(), &config_on(dir.path(), Some(&listen)));
    let file = dir.path().join("xa-dong.toml");
    let out = daemon.loa(&["speakers", "add", "xa-dong", "--zones", "thon-1,thon-2", "--out", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("credential written to"), "{out:?}");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let credential = Credential::parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(credential.speaker, "xa-dong");
    assert_eq!(credential.daemon.to_string(), listen);
    assert_eq!(credential.zones, ["thon-1", "thon-2"]);

    // The daemon's identity is kept: a restart hands out the same pin.
    assert!(daemon.stop());
    let daemon = Daemon::start_existing(dir.path());
    let out = daemon.loa(&["speakers", "add", "moi", "--zones", "thon-1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("secret credential"), "printing a credential warns: {}", stderr(&out));
    let printed = Credential::parse(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert_eq!(printed.daemon_pin, credential.daemon_pin);
    assert_ne!(printed.pin().unwrap(), credential.pin().unwrap());

    let list = daemon.json(&["speakers", "list"]);
    let rows: Vec<(&str, &str)> =
        list["speakers"].as_array().unwrap().iter().map(|s| (s["name"].as_str().unwrap(), s["state"].as_str().unwrap())).collect();
    assert_eq!(rows, [("moi", "offline"), ("xa-dong", "offline")]);
    assert_eq!(list["speakers"][1]["pin"], credential.pin().unwrap().to_string());
}

#[test]
fn revocation_frees_the_name_and_everything_is_audited_with_who() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(dir.path(), &config(dir.path(), true));
    let add = |name: &str| daemon.loa(&["speakers", "add", name, "--zones", "thon-1"]);
    assert!(add("xa-dong").status.success());
    let again = add("xa-dong");
    assert!(!again.status.success());
    assert!(stderr(&again).contains("speaker \"xa-dong\" is already enrolled; revoke it first"), "{}", stderr(&again));

    let out = daemon.loa(&["speakers", "revoke", "xa-dong"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("speaker xa-dong revoked"), "{out:?}");
    let twice = daemon.loa(&["speakers", "revoke", "xa-dong"]);
    assert!(!twice.status.success());
    assert!(stderr(&twice).contains("no enrolled speaker is called \"xa-dong\""), "{}", stderr(&twice));

    assert!(add("xa-dong").status.success(), "a revoked name can be enrolled again");
    let list = daemon.json(&["speakers", "list"]);
    let states: Vec<&str> = list["speakers"].as_array().unwrap().iter().map(|s| s["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["offline", "revoked"]);
    assert!(list["speakers"][1]["revoked_at"].is_string());

    assert!(daemon.stop());
    let store = Store::open(&dir.path().join("state")).unwrap();
    let uid = unsafe { libc::getuid() };
    let events: Vec<(SpeakerEventKind, Option<u32>)> = store.speaker_events(10).unwrap().into_iter().map(|e| (e.kind, e.by_uid)).collect();
    assert_eq!(
        events,
        [(SpeakerEventKind::Enrolled, Some(uid)), (SpeakerEventKind::Revoked, Some(uid)), (SpeakerEventKind::Enrolled, Some(uid))]
    );
}

#[test]
fn enrolment_is_refused_in_words_for_unknown_and_plain_zones_bad_names_and_no_listen_address() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &config(dir.path(), false));
    for (args, words) in [
        (&["speakers", "add", "xa-dong", "--zones", "thon-1"][..], "this daemon takes no speaker joins; add [speakers] listen"),
        (&["speakers", "add", "xa dong", "--zones", "thon-1"], "speaker name \"xa dong\" may only use"),
    ] {
        let out = daemon.loa(args);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains(words), "{args:?}: {}", stderr(&out));
    }
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &config(dir.path(), true));
    let out = daemon.loa(&["speakers", "add", "xa-dong", "--zones", "thon-9"]);
    assert!(stderr(&out).contains("unknown zone \"thon-9\""), "{}", stderr(&out));
    let out = daemon.loa(&["speakers", "add", "xa-dong", "--zones", "thon-1,legacy"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("zone \"legacy\" is plain RTP (security = \"none\"); joined speakers play only SRTP zones"), "{}", stderr(&out));
    assert_eq!(daemon.json(&["speakers", "list"])["speakers"].as_array().unwrap().len(), 0, "nothing enrolled by a refusal");
}
