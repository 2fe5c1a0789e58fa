//! Work no listener waits for — the whole-file loudness of a long file
//! after its first play started from a partial measurement — done one job
//! at a time on one thread at nice 10.
//!
//! Why: each such measurement decodes the whole file (~0.2 s of CPU for two
//! minutes of MP3). Run on a thread of its own per program at normal
//! priority, as it was, 60 programs started in a row left ~4.5 of them
//! runnable at any moment on a 2-core box; CPU time is shared by weight, so
//! an emergency's worker got its share with them (scripts/busy-emergency.sh:
//! 40–100 ms to go on air, the starts 0.35 s each). One thread at nice 10
//! weighs a tenth of a normal one (110 : 1024).
//! Not lower: SCHED_IDLE or nice 19 would hold the measurement back for
//! minutes on a machine other processes keep busy (0.3–1.5 % of a core
//! against each busy process), where nice 10 still gets ~10 %; the whole
//! file is expected measured while its first play goes on.
//!
//! Must not touch: anything a playing program needs.

use std::collections::HashSet;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Mutex, OnceLock};

/// Jobs waiting at most. Each holds a program's event sender (the result
/// goes to the store through it), which keeps that program's event
/// forwarder alive in the daemon: on a machine too busy to ever run them,
/// the queue must not grow without end. Past it a job is dropped; the
/// file's next play measures its first part again and queues it anew.
const MAX_QUEUED: usize = 64;

type Job = Box<dyn FnOnce() + Send + 'static>;

struct Queue {
    tx: SyncSender<(String, Job)>,
    /// Keys queued or running: a file started on several programs at once
    /// is measured once.
    keys: Mutex<HashSet<String>>,
}

static QUEUE: OnceLock<Option<Queue>> = OnceLock::new();

/// Why a job was not queued.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NotQueued {
    #[error("the same work is already queued")]
    Duplicate,
    #[error("{MAX_QUEUED} jobs are already waiting in the background")]
    Full,
    #[error("the background thread could not be started")]
    NoThread,
}

/// Queues `job` for the background thread (after the jobs before it), unless a job
/// with the same `key` is waiting or running.
pub(crate) fn run_in_background(key: String, job: impl FnOnce() + Send + 'static) -> Result<(), NotQueued> {
    let queue = QUEUE.get_or_init(start).as_ref().ok_or(NotQueued::NoThread)?;
    let mut keys = queue.keys.lock().unwrap_or_else(|e| e.into_inner());
    if !keys.insert(key.clone()) {
        return Err(NotQueued::Duplicate);
    }
    match queue.tx.try_send((key.clone(), Box::new(job))) {
        Ok(()) => Ok(()),
        Err(TrySendError::Full(_)) => {
            keys.remove(&key);
            Err(NotQueued::Full)
        }
        Err(TrySendError::Disconnected(_)) => {
            keys.remove(&key);
            Err(NotQueued::NoThread)
        }
    }
}

fn start() -> Option<Queue> {
    let (tx, rx) = mpsc::sync_channel(MAX_QUEUED);
    let spawned = std::thread::Builder::new().name("loa-background".into()).spawn(move || run(rx));
    match spawned {
        Ok(_) => Some(Queue {
            tx,
            keys: Mutex::new(HashSet::new()),
        }),
        Err(e) => {
            tracing::warn!("cannot start the background thread: {e}");
            None
        }
    }
}

fn run(rx: Receiver<(String, Job)>) {
    super::prepare::lower_own_priority(super::prepare::YIELDING_NICE);
    for (key, job) in rx {
        job();
        if let Some(queue) = QUEUE.get().and_then(Option::as_ref) {
            queue.keys.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    #[test]
    fn jobs_run_on_a_thread_at_nice_10() {
        let (tx, rx) = channel();
        run_in_background("jobs_run_on_a_thread_at_nice_10".into(), move || {
            // SAFETY: plain syscall on the calling thread.
            tx.send(unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }).unwrap();
        })
        .unwrap();
        // SAFETY: as above.
        let own = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        assert_eq!(rx.recv().unwrap(), super::super::prepare::YIELDING_NICE.max(own));
    }

    #[test]
    fn the_same_work_is_queued_once() {
        let (hold_tx, hold_rx) = channel::<()>();
        let (done_tx, done_rx) = channel();
        let key = "the_same_work".to_string();
        run_in_background(key.clone(), move || {
            let _ = hold_rx.recv();
            done_tx.send(()).unwrap();
        })
        .unwrap();
        assert_eq!(run_in_background(key.clone(), || {}), Err(NotQueued::Duplicate));
        hold_tx.send(()).unwrap();
        done_rx.recv().unwrap();
    }
}
