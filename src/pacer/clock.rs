//! CLOCK_MONOTONIC sleeping with absolute deadlines, and the thread settings
//! that keep the pacer on time. std has no absolute sleep (`thread::sleep` is
//! relative, so each wake-up's error would add up);
//! `clock_nanosleep(TIMER_ABSTIME)` is the one call that gives drift-free
//! deadlines, hence these small unsafe wrappers.
//!
//! Must not touch: anything but this thread's clock and scheduling.

pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// How long before a deadline the thread stops sleeping and spins on the
/// clock. Timer wake-ups on small VMs and ARM boards land 50–300 µs
/// late; spinning the last stretch puts the send within a few µs of the
/// deadline for ~1.5 % of one core at 20 ms frames.
pub const SPIN: u64 = 300_000;

/// Spinning before each slice of a fan-out spread over the tick (31 a
/// tick for 1,000 speakers), so shorter than `SPIN`: at 1,000 speakers
/// 60 µs costs ~9 % of a core and gave wire p99 0.17 ms, 20 µs ~4 % and
/// 0.31 ms (`scripts/bench-unicast.sh`, 2026-12-05).
pub const SLICE_SPIN: u64 = 60_000;

/// Sleeps until `deadline`, waking `SPIN` early and spinning the rest.
pub fn wait_until_ns(deadline: u64) {
    wait_until_ns_spinning(deadline, SPIN);
}

/// Sleeps until `deadline`, waking `spin` early and spinning the rest.
pub fn wait_until_ns_spinning(deadline: u64, spin: u64) {
    if deadline > spin {
        sleep_until_ns(deadline - spin);
    }
    while now_ns() < deadline {
        std::hint::spin_loop();
    }
}

pub fn sleep_until_ns(deadline: u64) {
    let ts = libc::timespec {
        tv_sec: (deadline / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline % 1_000_000_000) as libc::c_long,
    };
    loop {
        // SAFETY: `ts` is a valid timespec; the remainder pointer may be
        // null with TIMER_ABSTIME.
        let rc = unsafe {
            libc::clock_nanosleep(libc::CLOCK_MONOTONIC, libc::TIMER_ABSTIME, &ts, std::ptr::null_mut())
        };
        if rc != libc::EINTR {
            break;
        }
    }
    // An absolute sleep that returns early must not let the tick loop
    // run ahead of the clock (libfaketime 0.9.10 does this to every
    // CLOCK_MONOTONIC TIMER_ABSTIME sleep, even with monotonic time not
    // faked): sleep the rest relatively. Normally `now >= deadline` here.
    let now = now_ns();
    if now < deadline {
        std::thread::sleep(std::time::Duration::from_nanos(deadline - now));
    }
}

/// The default 50 µs timer slack lets the kernel wake us that late on
/// purpose; the pacer wants its deadline, not power savings.
pub fn lower_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes an unsigned long; affects this thread only.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        tracing::debug!("cannot lower timer slack: {}", std::io::Error::last_os_error());
    }
}

/// SCHED_FIFO keeps the pacer on time when the machine is busy. It needs
/// CAP_SYS_NICE (the systemd unit grants it); without it we run at
/// normal priority and say so.
pub fn try_realtime_priority() {
    let param = libc::sched_param { sched_priority: 10 };
    // SAFETY: valid pthread handle for the current thread and a valid param.
    let rc = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
    if rc != 0 {
        tracing::debug!(
            "pacer runs without realtime priority: {}",
            std::io::Error::from_raw_os_error(rc)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const FRAME: u64 = 10_000_000; // 10 ms
    const TICKS: u64 = 20;
    /// Time each tick spends before its wait, as the pacer sends before it
    /// sleeps: half a frame. It is slept, not spun, so a busy machine does
    /// not starve the test of the CPU it needs to catch up.
    const WORK: u64 = 5_000_000;
    /// What late wake-ups may leave at the end on a busy machine: a tick
    /// woken late is made up by the following ticks' spare half frames.
    const SLACK: u64 = 50_000_000;
    // The bound lies below the least a relative sleep can take.
    const _: () = assert!(TICKS * (WORK + FRAME) > TICKS * FRAME + SLACK);

    /// Runs `TICKS` ticks of `WORK` followed by `wait(deadline)`, where tick
    /// `n`'s deadline is `start + n × FRAME`; returns the time taken.
    fn run_ticks(mut wait: impl FnMut(u64)) -> u64 {
        let start = now_ns();
        for n in 1..=TICKS {
            std::thread::sleep(Duration::from_nanos(WORK));
            wait(start + n * FRAME);
        }
        now_ns() - start
    }

    /// Ticks on absolute deadlines end at `TICKS × FRAME` (200 ms), late
    /// only by what the last ticks could not make up. A loop that sleeps a
    /// frame after its work takes at least `TICKS × (WORK + FRAME)` (300
    /// ms), whatever the load: the bound (250 ms) sits between the two.
    fn check_no_drift(elapsed: u64) -> Result<(), String> {
        let due = TICKS * FRAME;
        if elapsed < due {
            return Err(format!("woke early: {elapsed} ns for {due} ns of ticks"));
        }
        if elapsed >= due + SLACK {
            return Err(format!("drifted: {elapsed} ns for {due} ns of ticks"));
        }
        Ok(())
    }

    #[test]
    fn absolute_sleep_does_not_accumulate_drift() {
        check_no_drift(run_ticks(sleep_until_ns)).unwrap();
    }

    #[test]
    fn the_drift_check_fails_a_relative_sleep() {
        // The naive loop: sleep one frame after the work, ignoring the
        // deadline. Its 20 × 5 ms of work add up; the check must see it.
        let elapsed = run_ticks(|_deadline| std::thread::sleep(Duration::from_nanos(FRAME)));
        let verdict = check_no_drift(elapsed);
        assert!(verdict.is_err(), "a relative sleep passed the drift check in {elapsed} ns");
    }
}
