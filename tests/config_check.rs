//! `loa check` through the real binary: exit 0 with a summary for a valid
//! file, exit 1 with `FILE:LINE:COL: message` lines for an invalid one.

mod common;

use common::loa;

fn write(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("loa.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn a_valid_file_exits_0_with_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "[network]\ninterface = \"127.0.0.1\"\n[[zone]]\nname = \"thon-1\"\ngroup = \"239.255.77.1:5004\"\n",
    );
    let out = loa(&["check", "--config", &path]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.trim(), format!("{path}: ok (1 zone: thon-1 239.255.77.1:5004)"));
}

#[test]
fn the_shipped_demo_config_is_valid() {
    let out = loa(&["check", "--config", concat!(env!("CARGO_MANIFEST_DIR"), "/config/demo.toml")]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn an_invalid_file_exits_1_with_one_positioned_line_per_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "[network]\ninterface = \"127.0.0.1\"\n[audio]\nbitrate = 900000\n[[zone]]\nname = \"a\"\ngroup = \"10.0.0.1:5004\"\n",
    );
    let out = loa(&["check", "--config", &path]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        [
            format!("{path}:4:11: bitrate 900000 is out of range 6000–510000"),
            format!("{path}:7:9: group 10.0.0.1:5004 is not a multicast address (expected 224.0.0.0–239.255.255.255)"),
        ]
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn garbage_and_missing_files_exit_1_with_a_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "\u{0}\u{1}not toml at all [[[\n");
    let out = loa(&["check", "--config", &path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with(&format!("{path}:1:")));

    let missing = dir.path().join("nope.toml");
    let out = loa(&["check", "--config", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!("{}:1:1: cannot read config file: file not found", missing.display())
    );
}
