//! The operator's command line through the real binary: `--socket`,
//! `--config` and `--json` before or after the subcommand, `--json` as the
//! daemon's own answer, and bad words refused before any call. The daemon
//! tests run inside the private network namespace.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::daemon::{base_config, zone_toml, Daemon};
use common::{require_netns, write_tones_wav, LOA};
use serde_json::Value;

/// `loa ARGS` exactly as given (no `--socket` appended).
fn loa_as_typed(args: &[&str]) -> Output {
    Command::new(LOA).args(args).output().unwrap()
}

fn stdout_of(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A daemon on one zone that has played one short file to its end.
fn daemon_with_history(dir: &Path) -> Daemon {
    let (zone, _, _) = zone_toml("thon-1");
    std::fs::create_dir_all(dir.join("media")).unwrap();
    write_tones_wav(&dir.join("media/short.wav"), 48_000, 1, &[(600.0, 0.3)]);
    let daemon = Daemon::start(dir, &format!("{}{zone}", base_config(dir)));
    assert!(daemon.loa(&["play", "--zones", "thon-1", "short.wav"]).status.success());
    daemon.wait_history("the short file's row to end", Duration::from_secs(15), |rows| {
        rows.iter().any(|r| r["outcome"] == "completed")
    });
    daemon
}

#[test]
fn socket_config_and_json_before_the_subcommand_reach_the_daemon() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon_with_history(dir.path());
    let socket = daemon.socket.to_str().unwrap();
    let config = daemon.config.to_str().unwrap();

    let before = stdout_of(&loa_as_typed(&["--socket", socket, "status"]), "loa --socket S status");
    assert!(before.contains("NETWORK: sending on 127.0.0.1 ok"), "{before}");
    assert!(before.contains("thon-1  (idle)"), "{before}");
    // The socket read from the config named before the subcommand.
    let via_config = stdout_of(&loa_as_typed(&["--config", config, "status"]), "loa --config F status");
    assert!(via_config.contains("thon-1  (idle)"), "{via_config}");

    let history = |args: &[&str]| -> Value {
        let text = stdout_of(&loa_as_typed(args), &args.join(" "));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {text}"))
    };
    let before = history(&["--json", "--socket", socket, "history"]);
    let after = history(&["history", "--json", "--socket", socket]);
    let mixed = history(&["--json", "history", "--socket", socket]);
    assert_eq!(before, after);
    assert_eq!(before, mixed);
    let rows = before["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{before:#}");
    assert_eq!(rows[0]["outcome"], "completed");
    assert_eq!(rows[0]["zones"][0], "thon-1");

    let csv = stdout_of(&loa_as_typed(&["--socket", socket, "history", "--csv"]), "loa history --csv");
    assert!(csv.starts_with("id,start,end,outcome,program,program_name,source,sha256,"), "{csv}");
    assert!(csv.lines().nth(1).unwrap().contains(",completed,"), "{csv}");
    let both = loa_as_typed(&["--json", "--socket", socket, "history", "--csv"]);
    assert_eq!(both.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&both.stderr).contains("--json and --csv are two outputs; give one"));
}

#[test]
fn json_output_is_the_daemons_answer_field_for_field() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon_with_history(dir.path());
    assert!(daemon.loa(&["schedule", "add", "sang", "--cron", "0 6 * * *", "--file", "short.wav", "--zones", "all",
        "--on-preempt", "rejoin", "--misfire-grace", "90s"]).status.success());
    let raw = |method: &str| -> Value {
        let mut client = loa::cli::client::Client::connect(&daemon.socket, Duration::from_secs(10)).unwrap();
        client.call_raw(method, serde_json::json!({})).unwrap()
    };
    for (args, method) in [
        (&["history"][..], "history"),
        (&["schedule", "list"], "schedule.list"),
        (&["playlist", "list"], "playlist.list"),
        (&["endpoints"], "endpoints.list"),
    ] {
        assert_eq!(daemon.json(args), raw(method), "loa {args:?} --json");
    }
    let schedule = &daemon.json(&["schedule", "list"])["schedules"][0];
    assert_eq!((&schedule["on_preempt"], &schedule["misfire_grace_secs"]), (&Value::from("rejoin"), &Value::from(90)));
    // With a program on air; the uptime and the position tick between the
    // two calls, everything else is the same.
    assert!(daemon.loa(&["play", "--zones", "thon-1", "--loop", "--name", "vong", "short.wav"]).status.success());
    daemon.wait_status("the loop on air with its item hashed", Duration::from_secs(10), |s| {
        let program = &s["programs"][0];
        program["on_air_since"].is_string() && program["item"]["sha256"].is_string()
    });
    let mut cli = daemon.json(&["status"]);
    let mut answer = raw("status");
    for status in [&mut cli, &mut answer] {
        status.as_object_mut().unwrap().remove("uptime_secs");
        // The one difference: a zone with no speaker listed or heard is
        // `{}` in the daemon's answer and five zero counts in the CLI's.
        for zone in status["zones"].as_array_mut().unwrap() {
            let counts = zone["endpoints"].as_object_mut().unwrap();
            for state in ["online", "degraded", "offline", "unknown", "unregistered"] {
                counts.entry(state).or_insert(0.into());
            }
        }
        for program in status["programs"].as_array_mut().unwrap() {
            if let Some(item) = program["item"].as_object_mut() {
                item.remove("position_secs");
            }
        }
    }
    assert_eq!(cli["programs"][0]["name"], "vong", "{cli:#}");
    assert_eq!(cli, answer);
    assert!(daemon.loa(&["stop", "--all"]).status.success());
}

#[test]
fn a_bad_word_or_duration_is_refused_by_the_cli_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("none.sock");
    let nowhere = nowhere.to_str().unwrap();
    for (args, says) in [
        (&["play", "--zones", "all", "--priority", "urgent", "a.mp3"][..], "valid: emergency, live, announcement, scheduled, background"),
        (&["schedule", "add", "s", "--cron", "0 6 * * *", "--file", "a.mp3", "--zones", "all", "--on-busy", "later"], "valid: wait, refuse"),
        (&["schedule", "add", "s", "--cron", "0 6 * * *", "--file", "a.mp3", "--zones", "all", "--max-duration", "soon"], "is not a duration"),
        (&["stop", "0"], "program ids start at 1"),
    ] {
        let mut all = vec!["--socket", nowhere];
        all.extend_from_slice(args);
        let out = loa_as_typed(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        // 2 would mean it tried the (absent) daemon.
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let out = loa_as_typed(&["status", "--json", "--socket", nowhere]);
    assert_eq!(out.status.code(), Some(2), "an absent daemon is still exit 2");
}

#[test]
fn speaker_mistakes_are_refused_in_words_before_any_call_or_enrolment() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("none.sock");
    let nowhere = nowhere.to_str().unwrap();
    let missing = dir.path().join("no-such-folder/xa-dong.toml");
    for (args, says) in [
        (vec!["--socket", nowhere, "speakers", "add", "xã-đông", "--zones", "thon-1"], "may only use letters A–Z"),
        (vec!["--socket", nowhere, "speakers", "revoke", "xa dong"], "may only use letters A–Z"),
        // The credential's folder is looked at before the daemon is asked:
        // a typo must not leave an enrolled speaker nobody holds.
        (vec!["--socket", nowhere, "speakers", "add", "xa-dong", "--zones", "thon-1", "--out", missing.to_str().unwrap()],
         "no-such-folder does not exist; nothing was enrolled"),
        (vec!["speaker", "--join", "192.0.2.1", "--credential", "c.toml"], "\"192.0.2.1\" has no port; give loa's address and the port of its [speakers] listen"),
        (vec!["speaker", "--join", "loa.example:http", "--credential", "c.toml"], "\"http\" is not a port number"),
    ] {
        let out = loa_as_typed(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        // 2 would mean it tried the (absent) daemon.
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(!missing.parent().unwrap().exists());
}

#[test]
fn a_credential_file_that_is_not_one_is_named_with_what_to_give_instead() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("loa.toml");
    std::fs::write(&config, "[network]\ninterface = \"127.0.0.1\"\n[[zone]]\nname = \"thon-1\"\ngroup = \"239.255.77.1:5004\"\n").unwrap();
    let missing = dir.path().join("xa-dong.toml");
    for (credential, says) in [
        (&config, "it is a loa config file, not a speaker credential; give the file `loa speakers add NAME --zones Z --out FILE` wrote"),
        (&missing, "cannot read the credential"),
    ] {
        // The file is read before anything dials; loopback all the same.
        let out = loa_as_typed(&["speaker", "--join", "127.0.0.1:9", "--credential", credential.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "a bad credential: {err}");
        assert!(err.contains(says), "{err}");
    }
}
