//! An item's preparation before its first frame: opening (at a start point
//! if there is one), the content hash, and the loudness gain — from the
//! cache, or by measuring the file's first part on a first play.
//!
//! And who pays for it. A program that is not urgent (below live) does
//! this before its first frame on a helper thread at nice 10, so an
//! emergency starting meanwhile is not held back by other programs getting
//! ready: on a busy daemon, CPU time is shared by weight, and an
//! emergency's worker at nice 0 gets ~90 % of a core shared with one such
//! helper (weights 1024 : 110) instead of half. Only before the program's
//! first frame: nothing of it plays yet, so slower preparation cannot
//! underrun it; once it plays, later items are prepared on the worker at
//! normal priority, so its lookahead never waits behind other processes.
//! Not SCHED_IDLE or nice 19: on a machine other processes keep busy they
//! would hold a scheduled start back for many seconds; at nice 10 against
//! one CPU burner per core it runs ~10× slower (0.1 s of work in 1 s,
//! inside the 2 s a schedule is prepared ahead).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{background, ProgramEvent, ResumedItem};
use crate::config::Audio;
use crate::media::loudness::{self, Measured};
use crate::media::{MediaError, Source};

/// Nice value of work that yields to urgent programs: a non-urgent
/// program's preparation (see the module comment) and the background
/// measurements (`background`).
pub(super) const YIELDING_NICE: libc::c_int = 10;

/// An opened item and what its frames are scaled by.
pub(super) struct Prepared {
    pub(super) source: Source,
    pub(super) sha256: Option<String>,
    pub(super) gain_db: Option<f64>,
}

/// What preparing an item needs from its program.
pub(super) struct Preparer<'a> {
    pub(super) audio: &'a Audio,
    /// None: no normalisation.
    pub(super) cache: Option<&'a loudness::Cache>,
    pub(super) events: &'a Arc<Sender<ProgramEvent>>,
    pub(super) first_play_limit: Duration,
}

impl Preparer<'_> {
    /// Opens `path` at `position` (zero: its start) and finds its hash and
    /// gain, or those the cut run had (`resumed`). `Ok(None)`: the position
    /// is at or past the item's end.
    pub(super) fn item(&self, path: &Path, position: Duration, resumed: Option<ResumedItem>) -> Result<Option<Prepared>, MediaError> {
        let source = if position.is_zero() {
            Source::open(path, self.audio.channels)?
        } else {
            match Source::open_at(path, self.audio.channels, position)? {
                Some(source) => source,
                None => return Ok(None),
            }
        };
        let (sha256, gain_db) = match resumed {
            Some(ResumedItem { sha256, gain_db }) => (sha256, gain_db),
            None => self.gain(path, source.hash_handle()),
        };
        Ok(Some(Prepared { source, sha256, gain_db }))
    }

    /// The item's content hash and loudness gain, measuring the file on a
    /// cache miss (its first `first_play_limit` before its first frame, the
    /// whole of it later, in the background). A file that cannot be
    /// hashed or measured plays unchanged: normalisation never stops a
    /// broadcast.
    fn gain(&self, path: &Path, hash_handle: Option<&File>) -> (Option<String>, Option<f64>) {
        let Some(cache) = self.cache.filter(|_| self.audio.loudness.normalize) else {
            return (None, None);
        };
        let hashed = match hash_handle {
            Some(file) => crate::media::hash::sha256_open(file),
            None => crate::media::hash::sha256_file(path),
        };
        let sha256 = match hashed {
            Ok(sha256) => sha256,
            Err(e) => {
                tracing::warn!(file = %path.display(), "cannot hash, playing without loudness gain: {e}");
                return (None, None);
            }
        };
        let measured = match cache.get(&sha256) {
            Some(measured) => measured,
            None => match loudness::measure(path, self.audio.channels, Some(self.first_play_limit)) {
                Ok((measured, true)) => {
                    remember(cache, self.events, path, &sha256, measured);
                    measured
                }
                Ok((first, false)) => {
                    // A long new file: its first part sets this play's gain,
                    // so the first frame is not held back; the whole file is
                    // measured later for every later play.
                    tracing::info!(
                        file = %path.display(),
                        "first-play loudness from the first {} s: {:.1} LUFS; measuring the whole file",
                        self.first_play_limit.as_secs(),
                        first.integrated_lufs
                    );
                    self.measure_later(cache.clone(), path.to_path_buf(), sha256.clone());
                    first
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), "cannot measure loudness, playing unchanged: {e}");
                    return (Some(sha256), None);
                }
            },
        };
        (Some(sha256), Some(loudness::gain_db(&measured, &self.audio.loudness)))
    }

    /// Measures the whole file in the background (see `background`); the
    /// result goes to the cache and the store, not to this play.
    ///
    /// The job holds the program's events weakly: a strong sender would keep
    /// the daemon's forwarder of those events (a blocking task) alive until
    /// the queue reaches the job, and the runtime waits for its blocking
    /// tasks at shutdown. A program that ended first leaves the measurement
    /// in the cache only (the store learns it on a later first play).
    fn measure_later(&self, cache: loudness::Cache, path: PathBuf, sha256: String) {
        let events = Arc::downgrade(self.events);
        let channels = self.audio.channels;
        let file = path.clone();
        let queued = background::run_in_background(sha256.clone(), move || match loudness::measure(&path, channels, None) {
            Ok((measured, _)) => match events.upgrade() {
                Some(events) => remember(&cache, &events, &path, &sha256, measured),
                None => {
                    tracing::debug!(file = %path.display(), "measured after its program ended: cached, not stored");
                    cache.insert(sha256, measured);
                }
            },
            Err(e) => tracing::warn!(file = %path.display(), "cannot measure loudness: {e}"),
        });
        match queued {
            Ok(()) | Err(background::NotQueued::Duplicate) => {}
            Err(e) => tracing::warn!(file = %file.display(), "whole-file loudness not measured this time: {e}"),
        }
    }
}

/// Caches a measurement and reports it for the store.
fn remember(cache: &loudness::Cache, events: &Sender<ProgramEvent>, path: &Path, sha256: &str, measured: Measured) {
    tracing::info!(
        file = %path.display(),
        "measured loudness: {:.1} LUFS, true peak {:.1} dBTP",
        measured.integrated_lufs,
        measured.true_peak_dbtp
    );
    cache.insert(sha256.to_string(), measured);
    let _ = events.send(ProgramEvent::Measured {
        sha256: sha256.to_string(),
        path: path.to_path_buf(),
        measured,
    });
}

/// Runs `work` on a helper thread at nice `nice` and waits for it (on this
/// thread if no thread can be started). The helper lowers only itself, and
/// lowering needs no privilege; raising back would (CAP_SYS_NICE), which
/// is why the worker does not lower itself.
pub(super) fn at_nice<T: Send>(nice: libc::c_int, work: impl FnOnce() -> T + Send) -> T {
    let work = Mutex::new(Some(work));
    let take = || work.lock().unwrap_or_else(|e| e.into_inner()).take().expect("work runs once");
    std::thread::scope(|scope| {
        let helper = std::thread::Builder::new().name("loa-prepare".into()).spawn_scoped(scope, || {
            lower_own_priority(nice);
            take()()
        });
        match helper {
            Ok(helper) => helper.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(e) => {
                tracing::debug!("cannot start a preparation thread ({e}); preparing on the worker");
                take()()
            }
        }
    })
}

/// Sets the calling thread's nice value (Linux: per thread). Lowering
/// needs no privilege; a thread already lower stays where it is.
pub(super) fn lower_own_priority(nice: libc::c_int) {
    // SAFETY: plain syscalls on the calling thread (who 0).
    let own = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    if own < nice && unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) } != 0 {
        tracing::debug!("cannot lower a thread's priority to nice {nice}: {}", std::io::Error::last_os_error());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_nice() -> libc::c_int {
        // SAFETY: plain syscall on the calling thread.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
    }

    #[test]
    fn work_runs_at_the_nice_value_asked_and_the_caller_keeps_its_own() {
        let before = own_nice();
        let inside = at_nice(YIELDING_NICE, own_nice);
        // Absolute, and never raised: a caller already lower stays there.
        assert_eq!(inside, YIELDING_NICE.max(before));
        assert_eq!(own_nice(), before, "the worker itself is never lowered");
    }
}
