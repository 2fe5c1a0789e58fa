//! `loa speaker --join` behind the NAT rig (tests/common/nat.rs), as the
//! speakers_nat and speakers_downstream tests drive it: a daemon config
//! with one SRTP zone and joins on loa's host, the speaker process in the
//! speaker's host, and what `loa speakers list` says of it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::daemon::{base_config, Daemon};
use super::nat::{NatRig, LOA_ADDR};
use super::{poll_until, read_wav_mono, unique_group, wait_until, write_tones_wav, Segment, LOA};

pub const LISTEN_PORT: u16 = 5300;
/// The speakers' keepalive in these tests: shorter than every NAT timeout
/// the rig sets, as a deployment's 15 s is shorter than a carrier's 30 s+.
pub const KEEPALIVE: Duration = Duration::from_secs(1);

pub fn listen() -> String {
    format!("{LOA_ADDR}:{LISTEN_PORT}")
}

/// A daemon config with one SRTP zone `thon-1` and joins on loa's host.
pub fn config(dir: &Path) -> String {
    let (group, port) = unique_group();
    format!(
        "{}[speakers]\nlisten = \"{}\"\nkeepalive = \"{}ms\"\nmissed_keepalives = 3\n\
         [[zone]]\nname = \"thon-1\"\ngroup = \"{group}:{port}\"\n",
        base_config(dir),
        listen(),
        KEEPALIVE.as_millis()
    )
}

/// `loa speaker --join` running in the speaker's host.
pub struct Speaker {
    child: Child,
    stderr: PathBuf,
    wav: PathBuf,
}

impl Speaker {
    /// Enrols `name` on `thon-1`, starts the speaker behind the NAT and
    /// waits for it to say it joined.
    pub fn join(rig: &NatRig, daemon: &Daemon, dir: &Path, name: &str) -> Speaker {
        Speaker::join_with(rig, daemon, dir, name, &[])
    }

    /// As `join`, with more arguments for `loa speaker` (`--tls-only`).
    pub fn join_with(rig: &NatRig, daemon: &Daemon, dir: &Path, name: &str, extra: &[&str]) -> Speaker {
        let credential = dir.join(format!("{name}.toml"));
        let out = daemon.loa(&["speakers", "add", name, "--zones", "thon-1", "--out", credential.to_str().unwrap()]);
        assert!(out.status.success(), "loa speakers add: {}", String::from_utf8_lossy(&out.stderr));
        let (stderr, wav) = (dir.join(format!("{name}.log")), dir.join(format!("{name}.wav")));
        let child = rig
            .speaker
            .command(LOA)
            .args(["speaker", "--join", &listen(), "--credential"])
            .arg(&credential)
            .arg("--out")
            .arg(&wav)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut speaker = Speaker { child, stderr, wav };
        wait_until("the speaker to join through the NAT", Duration::from_secs(20), || {
            let text = speaker.log();
            if text.contains("joined loa") {
                return Ok(());
            }
            if let Ok(Some(status)) = speaker.child.try_wait() {
                panic!("the speaker exited ({status}) before joining:\n{text}\ndaemon log:\n{}", daemon.log_text());
            }
            Err(text)
        });
        speaker
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGINT (the speaker finalises its WAV), then its WAV as mono samples.
    pub fn stop(mut self) -> (u32, Vec<f32>) {
        // `ip netns exec` execs, so the child's pid is the speaker's.
        Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().unwrap();
        let exited = poll_until(Duration::from_secs(10), || self.child.try_wait().unwrap().ok_or(()));
        assert!(exited.is_ok(), "the speaker ignored SIGINT:\n{}", self.log());
        read_wav_mono(&self.wav)
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The speaker's row in `loa speakers list --json`.
pub fn row<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["speakers"].as_array().and_then(|s| s.iter().find(|s| s["name"] == name)).unwrap_or(&Value::Null)
}

/// Waits until loa shows `name` online over `transport` and returns the
/// address it sends to.
pub fn wait_online(daemon: &Daemon, name: &str, transport: &str, timeout: Duration, unlike: Option<&str>) -> String {
    let list = daemon.wait_json(&["speakers", "list"], &format!("{name} online over {transport}"), timeout, |list| {
        let s = row(list, name);
        s["state"] == "online" && s["transport"] == transport && s["address"].as_str() != unlike
    });
    row(&list, name)["address"].as_str().unwrap_or_default().to_string()
}

/// Writes `tones` to the media root and plays them on `thon-1`; returns
/// once the daemon has sent the last packet.
pub fn play(daemon: &Daemon, dir: &Path, file: &str, tones: &[(f32, f32)]) {
    write_tones_wav(&dir.join("media").join(file), 48_000, 1, tones);
    let out = daemon.loa(&["play", "--zones", "thon-1", file]);
    assert!(out.status.success(), "loa play: {}", String::from_utf8_lossy(&out.stderr));
}

/// The longest stretch between consecutive tone segments (silence or
/// concealment where the audio should have been).
pub fn longest_hole(segments: &[Segment]) -> f64 {
    segments.windows(2).map(|w| w[1].start - (w[0].start + w[0].seconds)).fold(0.0, f64::max)
}

/// The last line the speaker printed with its counters (at exit).
pub fn stats_line(log: &str) -> &str {
    log.lines().rev().find(|l| l.contains("SRTP rejected")).unwrap_or("")
}
