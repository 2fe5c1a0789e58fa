//! `loa check` through the real binary: exit 0 with a one-line summary on
//! stdout for a valid file, exit 1 with one `FILE:LINE:COL: message` line
//! per error on stderr for an invalid one.

use std::process::{Command, Output};

fn check(path: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loa"))
        .args(["check", "--config", path])
        .output()
        .unwrap()
}

/// Writes `text` to `loa.toml` in `dir`, returning its path.
fn write(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("loa.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn valid_file_exits_0_with_a_summary_of_its_zones() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "[network]\ninterface = \"127.0.0.1\"\n\
         [[zone]]\nname = \"thon-1\"\ngroup = \"239.255.77.1:5004\"\n\
         [[zone]]\nname = \"thon-2\"\ngroup = \"239.255.77.2:5004\"\n",
    );
    let out = check(&path);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        format!("{path}: ok (2 zones: thon-1 239.255.77.1:5004, thon-2 239.255.77.2:5004)")
    );
}

#[test]
fn single_zone_summary_says_zone() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "[network]\ninterface = \"127.0.0.1\"\n[[zone]]\nname = \"thon-1\"\ngroup = \"239.255.77.1:5004\"\n",
    );
    let out = check(&path);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        format!("{path}: ok (1 zone: thon-1 239.255.77.1:5004)")
    );
}

#[test]
fn a_plain_rtp_zone_is_valid_with_a_warning_that_anyone_can_play_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "[network]\ninterface = \"127.0.0.1\"\n[[zone]]\nname = \"thon-1\"\ngroup = \"239.255.77.1:5004\"\n\
         [[zone]]\nname = \"cu\"\ngroup = \"239.255.77.2:5004\"\nsecurity = \"none\"\n",
    );
    let out = check(&path);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!("{path}: warning: zone cu has security = \"none\": its audio is plain RTP, so anyone on the network can play audio on its speakers")
    );
}

#[test]
fn enabled_sap_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "[network]\ninterface = \"127.0.0.1\"\n[sap]\nenabled = true\ninterval = \"10s\"\n\
         [[zone]]\nname = \"thon-1\"\ngroup = \"239.255.77.1:5004\"\n",
    );
    let out = check(&path);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        format!(
            "{path}: ok (1 zone: thon-1 239.255.77.1:5004)\n\
             {path}: SAP announces the zones on 224.2.127.254:9875 every 10s (±1/3)\n\
             {path}: SAP announces SRTP zones as RTP/SAVP without their key, which never travels in SAP \
             (receivers get it from `loa sdp --zone Z`): thon-1"
        )
    );
}

#[test]
fn shipped_demo_config_passes_check() {
    let out = check(concat!(env!("CARGO_MANIFEST_DIR"), "/config/demo.toml"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn invalid_file_exits_1_with_one_positioned_line_per_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "[network]\ninterface = \"127.0.0.1\"\n[audio]\nbitrate = 900000\n\
         [[zone]]\nname = \"a\"\ngroup = \"10.0.0.1:5004\"\n\
         [[zone]]\nname = \"a\"\ngroup = \"239.1.1.1:5004\"\n",
    );
    let out = check(&path);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_lines(&out),
        [
            format!("{path}:4:11: bitrate 900000 is out of range 6000–510000"),
            format!("{path}:7:9: group 10.0.0.1:5004 is not a multicast address (expected 224.0.0.0–239.255.255.255)"),
            format!("{path}:9:8: duplicate zone name \"a\" (first defined at line 6)"),
        ]
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn unknown_key_exits_1_naming_the_valid_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "[network]\ninterface = \"127.0.0.1\"\nttll = 2\n[[zone]]\nname = \"a\"\ngroup = \"239.1.1.1:5004\"\n",
    );
    let out = check(&path);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_lines(&out),
        [format!(
            "{path}:3:1: unknown key \"ttll\" in [network]; expected one of interface, ttl, dscp"
        )]
    );
}

#[test]
fn toml_syntax_error_exits_1_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "[network]\ninterface = \"127.0.0.1\n");
    let out = check(&path);
    assert_eq!(out.status.code(), Some(1));
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with(&format!("{path}:2:")), "{lines:?}");
}

#[test]
fn missing_file_exits_1_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let missing = missing.to_str().unwrap();
    let out = check(missing);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_lines(&out),
        [format!(
            "{missing}:1:1: cannot read config file: file not found"
        )]
    );
}
