//! `loa speaker --join` after its session is lost (issue 15): it rejoins
//! by itself while its output plays on (loa restarted mid-stream, loa not
//! up yet when the speaker starts), and stops with its own exit status for
//! what a rejoin cannot fix (revoked, a bad credential, another daemon's
//! identity). Loopback only, inside the private namespace
//! (`scripts/netns.sh cargo test --test speakers_rejoin`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{self, enrol, join_daemon, Daemon};
use common::*;

/// A `loa speaker --join` whose stderr goes to a file, read while it runs.
struct Speaker {
    child: Child,
    stderr: PathBuf,
}

impl Speaker {
    fn start(dir: &Path, listen: &str, credential: &Path, wav: &Path) -> Speaker {
        let stderr = dir.join(format!("speaker-{}.log", daemon::now_ms()));
        let child = Command::new(LOA)
            .args(["speaker", "--join", listen, "--credential", credential.to_str().unwrap(), "--out", wav.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("start loa speaker");
        Speaker { child, stderr }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn wait_log(&mut self, needle: &str, timeout: Duration) {
        let seen = poll_until(timeout, || {
            let log = self.log();
            if log.contains(needle) {
                return Ok(());
            }
            match self.child.try_wait().unwrap() {
                Some(status) => panic!("the speaker exited ({status}) before saying {needle:?}:\n{log}"),
                None => Err(log),
            }
        });
        if let Err(log) = seen {
            panic!("{}", timed_out(&format!("the speaker to say {needle:?}"), timeout, &log));
        }
    }

    fn assert_running(&mut self, when: &str) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("the speaker exited ({status}) {when}:\n{}", self.log());
        }
    }

    /// Waits for it to exit by itself; its status and stderr.
    fn exited(mut self, timeout: Duration) -> (ExitStatus, String) {
        match poll_until(timeout, || self.child.try_wait().unwrap().ok_or(())) {
            Ok(status) => (status, self.log()),
            Err(()) => panic!("the speaker was still running after {timeout:?}:\n{}", self.log()),
        }
    }

    /// SIGINT (it finalises its WAV); its stderr.
    fn stop(mut self) -> String {
        Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().unwrap();
        let exited = poll_until(Duration::from_secs(10), || self.child.try_wait().unwrap().ok_or(()));
        let log = self.log();
        let status = exited.unwrap_or_else(|()| panic!("the speaker ignored SIGINT:\n{log}"));
        assert!(status.success(), "stopped by SIGINT it exits 0 ({status}):\n{log}");
        log
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_online(daemon: &Daemon, name: &str, timeout: Duration) {
    daemon.wait_json(&["speakers", "list"], &format!("{name} online"), timeout, |list| {
        list["speakers"].as_array().is_some_and(|rows| rows.iter().any(|s| s["name"] == name && s["state"] == "online"))
    });
}

/// Plays `file` on zone z and waits until loa is idle again, plus the
/// speaker's jitter buffer.
fn play(daemon: &Daemon, file: &str) {
    let out = daemon.loa(&["play", "--zones", "z", file]);
    assert!(out.status.success(), "loa play: {}", String::from_utf8_lossy(&out.stderr));
    daemon.wait_idle(Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));
}

/// The "N s played" of the speaker's last stats line.
fn played_seconds(log: &str) -> f64 {
    let line = log.lines().rev().find(|l| l.contains(" s played")).unwrap_or_else(|| panic!("no stats line:\n{log}"));
    let before = &line[..line.find(" s played").unwrap()];
    before.rsplit([' ', ',']).next().unwrap().parse().unwrap()
}

#[test]
fn loa_restarted_mid_stream_the_speaker_rejoins_and_plays_both_sequences_in_one_wav() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (mut daemon, listen, _, _) = join_daemon(dir.path());
    let before: Vec<(f32, f32)> = TONES[..3].iter().map(|&f| (f, 1.0)).collect();
    let after: Vec<(f32, f32)> = TONES[3..].iter().map(|&f| (f, 1.0)).collect();
    write_tones_wav(&dir.path().join("media/before.wav"), 48_000, 1, &before);
    write_tones_wav(&dir.path().join("media/after.wav"), 48_000, 1, &after);
    let credential = enrol(&daemon, "xa-dong");
    let wav = dir.path().join("xa-dong.wav");
    let mut speaker = Speaker::start(dir.path(), &listen, &credential, &wav);
    wait_online(&daemon, "xa-dong", Duration::from_secs(10));
    let first_play = Instant::now();
    play(&daemon, "before.wav");

    // loa dies (as a crash or an upgrade would end it), stays away a
    // while, and comes back on the same state dir: same identity, same
    // enrolments, new zone SSRC and keys.
    daemon.kill9();
    speaker.wait_log("session lost (", Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(2));
    speaker.assert_running("while loa was away");
    let daemon = Daemon::start_existing(dir.path());
    speaker.wait_log("rejoined loa for zone(s) z", Duration::from_secs(30));
    wait_online(&daemon, "xa-dong", Duration::from_secs(10));
    play(&daemon, "after.wav");
    speaker.assert_running("after the second sequence");
    let wall = first_play.elapsed().as_secs_f64();
    let log = speaker.stop();

    assert!(log.contains("rejoining in "), "it said when it would try again:\n{log}");
    let (rate, samples) = read_wav_mono(&wav);
    let all: Vec<(f32, f32)> = before.iter().chain(&after).copied().collect();
    assert_tones(&tone_segments(rate, &samples, &TONES), &all, 0.06, &format!("one WAV across the restart ({log})"));
    // The output was never reopened and went on through the outage: the
    // file and the stats line both hold (about) the whole wall time since
    // the first tone (less the 60 ms jitter buffer and the start of play).
    let wav_seconds = samples.len() as f64 / f64::from(rate);
    assert!(wav_seconds >= wall - 1.0, "the WAV holds {wav_seconds:.1} s of {wall:.1} s:\n{log}");
    let played = played_seconds(&log);
    assert!((played - wav_seconds).abs() < 0.5, "the stats line counted {played} s, the WAV holds {wav_seconds:.1} s");
}

#[test]
fn loa_stopped_with_sigterm_the_speaker_rejoins_when_loa_is_back() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (mut daemon, listen, _, _) = join_daemon(dir.path());
    let tones: Vec<(f32, f32)> = TONES[..2].iter().map(|&f| (f, 1.0)).collect();
    write_tones_wav(&dir.path().join("media/tones.wav"), 48_000, 1, &tones);
    let credential = enrol(&daemon, "xa-dong");
    let wav = dir.path().join("xa-dong.wav");
    let mut speaker = Speaker::start(dir.path(), &listen, &credential, &wav);
    wait_online(&daemon, "xa-dong", Duration::from_secs(10));

    // SIGTERM: loa exits 0 (today it closes the speakers' connections
    // without its `bye`; either way the session is lost, not refused).
    assert!(daemon.stop(), "loa stops cleanly:\n{}", daemon.log_text());
    speaker.wait_log("session lost (", Duration::from_secs(5));
    speaker.wait_log("rejoining in", Duration::from_secs(1));
    let daemon = Daemon::start_existing(dir.path());
    speaker.wait_log("rejoined loa for zone(s) z", Duration::from_secs(30));
    play(&daemon, "tones.wav");
    let log = speaker.stop();
    let (rate, samples) = read_wav_mono(&wav);
    assert_tones(&tone_segments(rate, &samples, &TONES), &tones, 0.06, &format!("after loa's stop and start ({log})"));
}

#[test]
fn a_speaker_started_before_loa_joins_when_loa_comes_up() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (mut daemon, listen, _, _) = join_daemon(dir.path());
    let tones: Vec<(f32, f32)> = TONES[..3].iter().map(|&f| (f, 1.0)).collect();
    write_tones_wav(&dir.path().join("media/tones.wav"), 48_000, 1, &tones);
    let credential = enrol(&daemon, "xa-dong");
    assert!(daemon.stop(), "loa stops cleanly:\n{}", daemon.log_text());

    let wav = dir.path().join("xa-dong.wav");
    let mut speaker = Speaker::start(dir.path(), &listen, &credential, &wav);
    speaker.wait_log("cannot join loa yet (", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2));
    speaker.assert_running("while loa was not up");
    let daemon = Daemon::start_existing(dir.path());
    speaker.wait_log("joined loa for zone(s) z", Duration::from_secs(30));
    wait_online(&daemon, "xa-dong", Duration::from_secs(10));
    play(&daemon, "tones.wav");
    let log = speaker.stop();
    let (rate, samples) = read_wav_mono(&wav);
    assert_tones(&tone_segments(rate, &samples, &TONES), &tones, 0.06, &format!("joined once loa came up ({log})"));
}

#[test]
fn a_speaker_revoked_while_joined_stops_by_itself_with_status_3_and_does_not_come_back() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (daemon, listen, _, _) = join_daemon(dir.path());
    let credential = enrol(&daemon, "cu-lao");
    let mut speaker = Speaker::start(dir.path(), &listen, &credential, &dir.path().join("cu-lao.wav"));
    wait_online(&daemon, "cu-lao", Duration::from_secs(10));
    speaker.assert_running("before its revocation");
    let out = daemon.loa(&["speakers", "revoke", "cu-lao"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let (status, log) = speaker.exited(Duration::from_secs(5));
    assert_eq!(status.code(), Some(3), "{log}");
    assert!(log.contains("loa refused this speaker: this speaker was revoked by the operator"), "{log}");
    assert!(!log.contains("rejoining in"), "a revoked speaker does not try again:\n{log}");
    // loa saw no join attempt after the revocation.
    std::thread::sleep(Duration::from_secs(2));
    let refused = strip_ansi(&daemon.log_text()).lines().filter(|l| l.contains("speaker join refused")).count();
    assert_eq!(refused, 0, "{}", daemon.log_text());
}

#[test]
fn a_bad_credential_or_another_daemons_identity_exits_at_once_with_its_own_status() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (daemon, listen, _, _) = join_daemon(dir.path());
    let credential = enrol(&daemon, "xa-dong");
    let wav = dir.path().join("x.wav");

    // Not a credential, and no file at all: 5, before any connection.
    let garbage = dir.path().join("garbage.toml");
    std::fs::write(&garbage, "speaker = \"xa-dong\"\nthis is not toml\n").unwrap();
    for (path, words) in [(garbage.clone(), "garbage.toml"), (dir.path().join("missing.toml"), "cannot read the credential")] {
        let started = Instant::now();
        let (status, log) = Speaker::start(dir.path(), &listen, &path, &wav).exited(Duration::from_secs(5));
        assert_eq!(status.code(), Some(5), "{log}");
        assert!(log.contains(words) && !log.contains("rejoining"), "{log}");
        assert!(started.elapsed() < Duration::from_secs(3), "exited after {:?}", started.elapsed());
    }

    // A credential pinning another identity (its own certificate's): the
    // loa at that address is not the one it trusts. 4, no retry.
    let mut other = loa::speakers::Credential::parse(&std::fs::read_to_string(&credential).unwrap()).unwrap();
    other.daemon_pin = other.pin().unwrap().to_string();
    let other_path = dir.path().join("other.toml");
    std::fs::write(&other_path, other.to_toml()).unwrap();
    let (status, log) = Speaker::start(dir.path(), &listen, &other_path, &wav).exited(Duration::from_secs(5));
    assert_eq!(status.code(), Some(4), "{log}");
    assert!(log.contains("this is not the loa that enrolled this speaker") && !log.contains("rejoining"), "{log}");
}
