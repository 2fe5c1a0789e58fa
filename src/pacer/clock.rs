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

/// Sleeps until `deadline`, waking `SPIN` early and spinning the rest.
pub fn wait_until_ns(deadline: u64) {
    if deadline > SPIN {
        sleep_until_ns(deadline - SPIN);
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

    #[test]
    fn absolute_sleep_does_not_accumulate_drift() {
        let start = now_ns();
        let frame = 2_000_000; // 2 ms
        for n in 1..=50 {
            sleep_until_ns(start + n * frame);
        }
        let elapsed = now_ns() - start;
        // 50 sleeps of 2 ms: ends at 100 ms, late only by the last wake-up,
        // not by 50 wake-ups (a relative sleep would be ≥ 100 ms + 50 × slack).
        assert!(elapsed >= 100_000_000, "woke early: {elapsed} ns");
        assert!(elapsed < 100_000_000 + 20_000_000, "drifted: {elapsed} ns");
    }
}
