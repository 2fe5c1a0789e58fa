//! When history writes fail because of the disk (full, read-only, I/O
//! errors), they wait here in order and are tried again; the broadcast never
//! waits for them. Pure policy: time is an argument, the store thread does
//! the I/O.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Writes kept while the disk fails; beyond this the oldest are dropped.
pub const CAPACITY: usize = 10_000;
/// How often the waiting writes are tried again when nothing new arrives.
pub const RETRY_EVERY: Duration = Duration::from_secs(5);
/// A new write tries the waiting ones again, but not more often than this.
pub const RETRY_ON_WRITE_AFTER: Duration = Duration::from_secs(1);
/// "Still failing" is logged at most this often.
pub const LOG_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Backlog<T> {
    ops: VecDeque<T>,
    capacity: usize,
    last_attempt: Option<Instant>,
    last_log: Option<Instant>,
}

impl<T> Backlog<T> {
    pub fn new(capacity: usize) -> Backlog<T> {
        Backlog {
            ops: VecDeque::new(),
            capacity: capacity.max(1),
            last_attempt: None,
            last_log: None,
        }
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Queues `op` behind the others; returns the oldest one if it had to
    /// make room.
    pub fn push(&mut self, op: T) -> Option<T> {
        let dropped = if self.ops.len() >= self.capacity {
            self.ops.pop_front()
        } else {
            None
        };
        self.ops.push_back(op);
        dropped
    }

    pub fn front_mut(&mut self) -> Option<&mut T> {
        self.ops.front_mut()
    }

    pub fn pop_front(&mut self) -> Option<T> {
        let op = self.ops.pop_front();
        if self.ops.is_empty() {
            self.last_attempt = None;
            self.last_log = None;
        }
        op
    }

    /// Everything left (at shutdown, when it could not be saved).
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.ops.drain(..)
    }

    /// A try of the waiting writes just failed at `now`.
    pub fn attempted(&mut self, now: Instant) {
        self.last_attempt = Some(now);
    }

    /// Whether to try the waiting writes now: on the timer, or because a new
    /// write arrived and the last try is not too recent.
    pub fn retry_due(&self, now: Instant, new_write: bool) -> bool {
        if self.ops.is_empty() {
            return false;
        }
        let Some(last) = self.last_attempt else {
            return true;
        };
        let since = now.saturating_duration_since(last);
        since >= RETRY_EVERY || (new_write && since >= RETRY_ON_WRITE_AFTER)
    }

    /// When the store thread should wake up to try again, if anything waits.
    pub fn next_retry(&self) -> Option<Instant> {
        if self.ops.is_empty() {
            return None;
        }
        Some(
            self.last_attempt
                .map_or_else(Instant::now, |last| last + RETRY_EVERY),
        )
    }

    /// Whether a repeated failure should be logged now (the first one always
    /// is, then at most once per `LOG_EVERY`).
    pub fn should_log(&mut self, now: Instant) -> bool {
        match self.last_log {
            Some(last) if now.saturating_duration_since(last) < LOG_EVERY => false,
            _ => {
                self.last_log = Some(now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_drops_the_oldest_beyond_capacity() {
        let mut b = Backlog::new(3);
        assert_eq!(b.push(1), None);
        assert_eq!(b.push(2), None);
        assert_eq!(b.push(3), None);
        assert_eq!(b.push(4), Some(1));
        assert_eq!(b.push(5), Some(2));
        assert_eq!(b.len(), 3);
        assert_eq!(b.pop_front(), Some(3));
        assert_eq!(b.pop_front(), Some(4));
        assert_eq!(b.pop_front(), Some(5));
        assert!(b.is_empty());
    }

    #[test]
    fn retries_on_the_timer_and_on_new_writes_but_not_in_a_burst() {
        let t0 = Instant::now();
        let mut b = Backlog::new(10);
        assert!(!b.retry_due(t0, true), "nothing waits");
        assert_eq!(b.next_retry(), None);
        b.push("begin");
        assert!(b.retry_due(t0, false), "never tried yet");
        b.attempted(t0);
        assert_eq!(b.next_retry(), Some(t0 + RETRY_EVERY));
        assert!(
            !b.retry_due(t0 + Duration::from_millis(300), true),
            "a burst of writes does not hammer the disk"
        );
        assert!(
            b.retry_due(t0 + RETRY_ON_WRITE_AFTER, true),
            "a new write after a second tries again"
        );
        assert!(
            !b.retry_due(t0 + Duration::from_secs(3), false),
            "the timer waits its 5 s"
        );
        assert!(b.retry_due(t0 + RETRY_EVERY, false));
    }

    #[test]
    fn catching_up_resets_the_retry_clock_and_the_log_limit() {
        let t0 = Instant::now();
        let mut b = Backlog::new(10);
        b.push(1);
        b.attempted(t0);
        assert!(b.should_log(t0));
        assert!(
            !b.should_log(t0 + Duration::from_secs(10)),
            "repeats are rate-limited"
        );
        assert!(b.should_log(t0 + LOG_EVERY));
        b.pop_front();
        b.push(2);
        assert!(
            b.retry_due(t0 + Duration::from_millis(1), false),
            "a new failure episode starts fresh"
        );
        assert!(b.should_log(t0 + LOG_EVERY + Duration::from_secs(1)));
    }

    #[test]
    fn capacity_is_at_least_one() {
        let mut b = Backlog::new(0);
        assert_eq!(b.push('a'), None);
        assert_eq!(b.push('b'), Some('a'));
    }
}
