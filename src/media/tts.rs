//! Text-to-speech with espeak-ng: text in, a WAV file in
//! `state_dir/tts/` out, which then plays like any other item.
//!
//! The text reaches espeak-ng on its stdin, never on a command line or
//! through a shell, so nothing in it can be taken as an option or a command.
//! A WAV is named by the SHA-256 of (voice, rate, text): saying the same
//! thing again reuses the file (and so its hash and its loudness
//! measurement). The pure parts (argument list, cache key, checks, the
//! history label) are separate from `synthesize`, which runs the program.
//! A cache hit sets the file's mtime to now, so the mtime is when it was
//! last used; `prune` deletes the WAVs nobody has used for `CACHE_MAX_AGE`.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

pub use crate::proto::say::{check_text, voice_ok, MAX_CHARS};
use crate::proto::say::SayError;
pub use crate::config::Tts;

/// espeak-ng speaks at well over 10 characters a second; a run longer than
/// this is stuck.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A cached WAV not used (synthesised or played from the cache) for this
/// long is deleted by `prune`.
pub const CACHE_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// `prune` never deletes a file used more recently than this, whatever age
/// it is asked for: a file that is playing, or about to, is always younger.
pub const MIN_PRUNE_AGE: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TtsError {
    #[error(transparent)]
    Say(#[from] SayError),
    #[error("cannot run {program}: {reason} (install espeak-ng, e.g. `make deps`, or set [tts] espeak = \"/path/to/espeak-ng\")")]
    Missing { program: String, reason: String },
    #[error("espeak-ng does not know voice \"{0}\"; see `espeak-ng --voices=vi` for the Vietnamese voices")]
    UnknownVoice(String),
    #[error("espeak-ng failed: {0}")]
    Failed(String),
    #[error("espeak-ng took longer than {}s and was stopped", .0.as_secs())]
    Timeout(Duration),
    #[error("cannot write speech to {path}: {reason}")]
    Io { path: String, reason: String },
}

/// The cache file's name: SHA-256 of everything that changes the sound.
pub fn cache_key(voice: &str, rate: Option<u32>, text: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"espeak-ng\0");
    h.update(voice.as_bytes());
    h.update(b"\0");
    h.update(rate.map(|r| r.to_string()).unwrap_or_default().as_bytes());
    h.update(b"\0");
    h.update(text.trim().as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// espeak-ng's arguments: text comes on stdin (`--stdin`), never here.
pub fn espeak_args(voice: &str, rate: Option<u32>, out: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["-v".into(), voice.into()];
    if let Some(rate) = rate {
        args.push("-s".into());
        args.push(rate.to_string().into());
    }
    args.push("-w".into());
    args.push(out.as_os_str().to_owned());
    args.push("--stdin".into());
    args
}

/// What history shows as the source: `say:VOICE:"text"`, the text on one
/// line and cut at 80 characters with "…".
pub fn label(voice: &str, text: &str) -> String {
    const SHOWN: usize = 80;
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut shown: String = one_line.chars().take(SHOWN).collect();
    if one_line.chars().count() > SHOWN {
        shown.push('…');
    }
    format!("say:{voice}:\"{shown}\"")
}

/// Writes (or finds) the WAV for `text` in `dir` and returns its path.
/// Blocking: run it off the engine task.
pub fn synthesize(tts: &Tts, voice: &str, text: &str, dir: &Path) -> Result<PathBuf, TtsError> {
    check_text(text)?;
    crate::proto::say::check_voice(voice)?;
    let out = dir.join(format!("{}.wav", cache_key(voice, tts.rate, text)));
    if std::fs::metadata(&out).is_ok_and(|m| m.len() > 44) {
        // Used now: `prune` keeps it another `CACHE_MAX_AGE`. A failure
        // only makes the file look older than it is.
        let _ = std::fs::File::options()
            .write(true)
            .open(&out)
            .and_then(|f| f.set_modified(SystemTime::now()));
        return Ok(out);
    }
    let io = |path: &Path, e: std::io::Error| TtsError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    // Written beside the final name and renamed, so a half-written file is
    // never taken from the cache.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    // Unique per run: two identical requests at once each write their own.
    let run_id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let partial = dir.join(format!(".{}-{run_id}.partial.wav", std::process::id()));
    let result = run(tts, voice, text, &partial);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    match std::fs::metadata(&partial) {
        Ok(m) if m.len() > 44 => {}
        _ => {
            let _ = std::fs::remove_file(&partial);
            return Err(TtsError::Failed("it wrote no audio".into()));
        }
    }
    std::fs::rename(&partial, &out).map_err(|e| io(&out, e))?;
    Ok(out)
}

/// What `prune` deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Pruned {
    pub files: usize,
    pub bytes: u64,
}

/// Deletes the WAVs in `dir` (the speech cache) last used more than
/// `max_age` before `now` (by mtime; a cache hit touches the file), and
/// leftovers of interrupted runs as old. Nothing used within
/// `MIN_PRUNE_AGE` is deleted, so a file being played is safe. A missing
/// `dir` is an empty cache. Blocking: run it off the engine task.
pub fn prune(dir: &Path, now: SystemTime, max_age: Duration) -> std::io::Result<Pruned> {
    let max_age = max_age.max(MIN_PRUNE_AGE);
    let mut pruned = Pruned::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(pruned),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|x| x != "wav") {
            continue;
        }
        // Read again right before deleting: a cache hit may just have
        // touched it.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let unused = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok());
        if !meta.is_file() || unused.is_none_or(|age| age < max_age) {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                pruned.files += 1;
                pruned.bytes += meta.len();
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("cannot delete old speech {}: {e}", path.display()),
        }
    }
    Ok(pruned)
}

fn run(tts: &Tts, voice: &str, text: &str, out: &Path) -> Result<(), TtsError> {
    let mut child = Command::new(&tts.espeak)
        .args(espeak_args(voice, tts.rate, out))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| TtsError::Missing {
            program: tts.espeak.display().to_string(),
            reason: e.to_string(),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // espeak-ng reads all of stdin before speaking; a broken pipe means
        // it already exited, which the status below explains.
        let _ = stdin.write_all(text.trim().as_bytes());
        let _ = stdin.write_all(b"\n");
    }
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(TtsError::Timeout(TIMEOUT));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(TtsError::Failed(e.to_string())),
        }
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut stderr);
    }
    if status.success() {
        return Ok(());
    }
    if stderr.contains("voice does not exist") {
        return Err(TtsError::UnknownVoice(voice.into()));
    }
    let stderr = stderr.trim();
    Err(TtsError::Failed(if stderr.is_empty() {
        status.to_string()
    } else {
        stderr.to_string()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_goes_on_stdin_never_in_the_arguments() {
        let args = espeak_args("vi-vn-x-south", Some(140), Path::new("/s/tts/x.wav"));
        let args: Vec<&str> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "-v",
                "vi-vn-x-south",
                "-s",
                "140",
                "-w",
                "/s/tts/x.wav",
                "--stdin"
            ]
        );
        let args = espeak_args("vi", None, Path::new("o.wav"));
        assert_eq!(args.len(), 5, "no -s without a rate");
    }

    #[test]
    fn cache_key_changes_with_voice_rate_and_text_only() {
        let k = cache_key("vi", None, "Xin chào bà con");
        assert_eq!(k.len(), 64);
        assert_eq!(
            k,
            cache_key("vi", None, "  Xin chào bà con\n"),
            "surrounding blanks do not matter"
        );
        assert_ne!(k, cache_key("vi-vn-x-south", None, "Xin chào bà con"));
        assert_ne!(k, cache_key("vi", Some(140), "Xin chào bà con"));
        assert_ne!(k, cache_key("vi", None, "Xin chào bà con!"));
        // No ambiguity between where the voice ends and the text begins.
        assert_ne!(cache_key("vi", None, "a"), cache_key("via", None, ""));
    }

    /// Runs the real espeak-ng (installed by `make deps`).
    #[test]
    fn synthesis_writes_a_wav_once_and_says_why_it_cannot() {
        let dir = tempfile::tempdir().unwrap();
        let tts = Tts::default();
        // Two identical requests at once: one file, both succeed.
        let runs: Vec<_> = (0..2)
            .map(|_| {
                let (tts, dir) = (tts.clone(), dir.path().to_path_buf());
                std::thread::spawn(move || synthesize(&tts, "vi", "Xin chào bà con", &dir))
            })
            .collect();
        let paths: Vec<PathBuf> = runs
            .into_iter()
            .map(|r| r.join().unwrap().unwrap())
            .collect();
        assert_eq!(paths[0], paths[1]);
        let reader = hound::WavReader::open(&paths[0]).unwrap();
        let secs = reader.duration() as f64 / reader.spec().sample_rate as f64;
        assert!((0.5..5.0).contains(&secs), "{secs} s");
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 1, "no partial file is left behind");

        // Option-looking text and shell syntax are only words to speak.
        let pwned = dir.path().join("pwned");
        let nasty = format!(
            "-v en --help; touch {0} $(touch {0}) `touch {0}`",
            pwned.display()
        );
        let spoken = synthesize(&tts, "vi", &nasty, dir.path()).unwrap();
        assert!(!pwned.exists());
        std::fs::remove_file(spoken).unwrap();

        let e = synthesize(&tts, "xx-nope", "Xin chào", dir.path()).unwrap_err();
        assert_eq!(e, TtsError::UnknownVoice("xx-nope".into()));
        let missing = Tts {
            espeak: "/nonexistent/espeak-ng".into(),
            ..Tts::default()
        };
        let e = synthesize(&missing, "vi", "Xin chào", dir.path()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot run /nonexistent/espeak-ng: "),
            "{e}"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "failures leave nothing"
        );
    }

    #[test]
    fn prune_deletes_only_wavs_unused_for_the_max_age() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let day = Duration::from_secs(24 * 3600);
        let file = |name: &str, bytes: usize, age: Duration| {
            let path = dir.path().join(name);
            std::fs::write(&path, vec![0u8; bytes]).unwrap();
            let f = std::fs::File::options().write(true).open(&path).unwrap();
            f.set_modified(now - age).unwrap();
            path
        };
        let old = file("old.wav", 1000, 31 * day);
        let ancient = file("ancient.wav", 500, 400 * day);
        let crashed = file(".1-0.partial.wav", 7, 40 * day);
        let recent = file("recent.wav", 1000, 29 * day);
        let today = file("today.wav", 1000, Duration::from_secs(5));
        let future = file("future.wav", 1000, Duration::ZERO);
        std::fs::File::options()
            .write(true)
            .open(&future)
            .unwrap()
            .set_modified(now + day)
            .unwrap();
        let not_speech = file("notes.txt", 10, 400 * day);

        let pruned = prune(dir.path(), now, CACHE_MAX_AGE).unwrap();
        assert_eq!(
            pruned,
            Pruned {
                files: 3,
                bytes: 1507
            }
        );
        for gone in [&old, &ancient, &crashed] {
            assert!(!gone.exists(), "{}", gone.display());
        }
        for kept in [&recent, &today, &future, &not_speech] {
            assert!(kept.exists(), "{}", kept.display());
        }

        // Asked for a tiny age, it still keeps what was used in the last day.
        let pruned = prune(dir.path(), now, Duration::ZERO).unwrap();
        assert_eq!(
            pruned,
            Pruned {
                files: 1,
                bytes: 1000
            },
            "only recent.wav"
        );
        assert!(today.exists() && future.exists());

        // Nothing cached yet: nothing to do, not an error.
        let none = prune(&dir.path().join("tts"), now, CACHE_MAX_AGE).unwrap();
        assert_eq!(none, Pruned::default());
    }

    /// A cache hit marks the file as used now, so `prune` keeps it.
    #[test]
    fn a_cache_hit_touches_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let tts = Tts::default();
        let path = synthesize(&tts, "vi", "Xin chào", dir.path()).unwrap();
        let long_ago = SystemTime::now() - Duration::from_secs(90 * 24 * 3600);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        assert_eq!(
            synthesize(&tts, "vi", "Xin chào", dir.path()).unwrap(),
            path
        );
        let used = std::fs::metadata(&path).unwrap().modified().unwrap();
        assert!(used > long_ago + Duration::from_secs(80 * 24 * 3600));
        let pruned = prune(dir.path(), SystemTime::now(), CACHE_MAX_AGE).unwrap();
        assert_eq!(pruned.files, 0);
        assert!(path.exists());
    }

    #[test]
    fn label_shows_the_text_on_one_line_cut_sensibly() {
        assert_eq!(
            label("vi", "Xin chào\n  bà con"),
            "say:vi:\"Xin chào bà con\""
        );
        let long = "ạ".repeat(100);
        let l = label("vi", &long);
        assert!(l.ends_with("…\""), "{l}");
        assert_eq!(l.chars().filter(|&c| c == 'ạ').count(), 80);
    }
}
