//! Scheduling: cron expressions evaluated in the configured time zone, next
//! fire, due list and misfire policy. Sans-IO: every function takes `now`.
//!
//! Owns: which schedule is due when, and whether a past fire is played late
//! or recorded as missed. Must not touch: playback, zones, priorities, the
//! store. The shell persists each entry's last fire instant, passes it back
//! to [`Scheduler::upsert`] on start, sleeps until [`Scheduler::poll_timeout`]
//! and drains [`Scheduler::poll`].
//!
//! Time rules:
//! - DST: a civil time in a spring-forward gap fires when the clock jumps
//!   (first instant after the gap); a civil time in a fall-back fold fires
//!   once, at the earlier instant, so nothing plays twice in the repeated
//!   hour (see [`cron`]).
//! - Misfire: all fire instants at or before `now` collapse into at most one
//!   `Fire` (the latest, if `now - latest <= misfire_grace`) plus one `Missed`
//!   for the rest. A clock jumping forward therefore never causes a burst.
//!   Grace below [`MIN_MISFIRE_GRACE`] is raised to it, so timer wake-up
//!   jitter is never a misfire.
//! - Counting missed instants walks at most [`MISSED_COUNT_CAP`] of them; a
//!   `Missed { count: MISSED_COUNT_CAP }` means "at least that many" (a
//!   per-second cron missed for a year never hangs the daemon).
//! - Clock set back: if `now` is more than [`CLOCK_BACK_TOLERANCE`] before an
//!   entry's last fire, the entry is re-planned from `now` (an RTC that was in
//!   the future must not silence schedules until it is reached again);
//!   smaller steps back do not replay what already played. Wall-clock jumps
//!   are seen only at a poll, so the shell should poll at least once a minute
//!   even when [`Scheduler::poll_timeout`] is further away.

mod cron;

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;

pub use cron::{CronError, CronExpr};

/// Lateness always treated as on time, whatever `misfire_grace` says.
pub const MIN_MISFIRE_GRACE: Duration = Duration::from_secs(2);
/// Missed instants are counted up to this many; the count saturates there.
pub const MISSED_COUNT_CAP: u64 = 10_000;
/// How far the wall clock may step back before entries are re-planned.
pub const CLOCK_BACK_TOLERANCE: Duration = Duration::from_secs(3 * 3600);

#[derive(Debug, Clone)]
pub struct ScheduleEntry {
    pub name: String,
    pub cron: CronExpr,
    pub enabled: bool,
    pub misfire_grace: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    pub name: String,
    pub scheduled: Timestamp,
    pub kind: DueKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DueKind {
    /// Play now; `late` is now - scheduled (zero or small normally, larger for
    /// a misfire within grace).
    Fire { late: Duration },
    /// The fire time passed more than misfire_grace ago (daemon down, machine
    /// suspended, clock jumped). `count` fire instants were missed (saturating
    /// at [`MISSED_COUNT_CAP`]); `scheduled` is the latest of them.
    Missed { count: u64 },
}

#[derive(Debug)]
struct Slot {
    entry: ScheduleEntry,
    /// Pending fire instant; may be `<= now` until the next poll.
    next: Option<Timestamp>,
    /// Latest instant handled by a poll (fired or missed), for clock-back
    /// detection.
    last_handled: Option<Timestamp>,
}

#[derive(Debug)]
pub struct Scheduler {
    tz: TimeZone,
    slots: BTreeMap<String, Slot>,
    /// Items already decided, handed out one per poll.
    outbox: VecDeque<Due>,
}

impl Scheduler {
    pub fn new(tz: TimeZone) -> Scheduler {
        Scheduler {
            tz,
            slots: BTreeMap::new(),
            outbox: VecDeque::new(),
        }
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// Adds or replaces an entry. `last_fire` is the persisted instant of its
    /// last fire (None for a new schedule): with None, the next fire is
    /// strictly after `now`; with Some(t), fires between t and now are due at
    /// the next poll (misfire handling).
    pub fn upsert(&mut self, entry: ScheduleEntry, last_fire: Option<Timestamp>, now: Timestamp) {
        self.purge_outbox(&entry.name);
        let next = if entry.enabled {
            entry.cron.next_after(last_fire.unwrap_or(now), &self.tz)
        } else {
            None
        };
        let name = entry.name.clone();
        self.slots.insert(
            name,
            Slot {
                entry,
                next,
                last_handled: last_fire,
            },
        );
    }

    pub fn remove(&mut self, name: &str) -> bool {
        self.purge_outbox(name);
        self.slots.remove(name).is_some()
    }

    /// Enabling computes the next fire strictly after `now` (no catch-up for
    /// the time it was disabled); enabling an enabled entry changes nothing.
    pub fn set_enabled(&mut self, name: &str, enabled: bool, now: Timestamp) -> bool {
        let Some(slot) = self.slots.get_mut(name) else {
            return false;
        };
        if enabled && !slot.entry.enabled {
            slot.next = slot.entry.cron.next_after(now, &self.tz);
        } else if !enabled {
            slot.next = None;
        }
        slot.entry.enabled = enabled;
        if !enabled {
            self.purge_outbox(name);
        }
        true
    }

    pub fn entry(&self, name: &str) -> Option<&ScheduleEntry> {
        self.slots.get(name).map(|s| &s.entry)
    }

    /// Entry names in lexical order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.slots.keys().map(String::as_str)
    }

    /// Earliest next fire among enabled entries (for the shell's timer). In
    /// the past when items are waiting: poll right away.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let waiting = self.outbox.iter().map(|d| d.scheduled).min();
        let next = self.slots.values().filter_map(|s| s.next).min();
        match (waiting, next) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Returns one due item at a time (call until None). Fire instants <= now
    /// are due. Several missed instants of one entry collapse into: one Fire
    /// for the latest if it is within misfire_grace (preceded by a
    /// Missed{count} for the earlier ones, if any), else one Missed{count}.
    /// After returning, the entry's next fire is strictly after now. Entries
    /// are handled in order of their pending instant, then name.
    pub fn poll(&mut self, now: Timestamp) -> Option<Due> {
        if let Some(due) = self.outbox.pop_front() {
            return Some(due);
        }
        self.replan_after_clock_back(now);
        let (name, first) = self
            .slots
            .iter()
            .filter_map(|(name, s)| s.next.filter(|&t| t <= now).map(|t| (t, name)))
            .min()
            .map(|(t, name)| (name.clone(), t))?;
        let tz = self.tz.clone();
        let slot = self.slots.get_mut(&name)?;
        let cron = &slot.entry.cron;

        let walk = walk_due(cron, &tz, first, now);
        let grace = slot.entry.misfire_grace.max(MIN_MISFIRE_GRACE);
        let late = signed_to_std(now.duration_since(walk.latest));
        if late <= grace {
            if let Some(previous) = walk.previous {
                self.outbox.push_back(Due {
                    name: name.clone(),
                    scheduled: previous,
                    kind: DueKind::Missed {
                        count: walk.count - 1,
                    },
                });
            }
            self.outbox.push_back(Due {
                name: name.clone(),
                scheduled: walk.latest,
                kind: DueKind::Fire { late },
            });
        } else {
            self.outbox.push_back(Due {
                name: name.clone(),
                scheduled: walk.latest,
                kind: DueKind::Missed { count: walk.count },
            });
        }
        slot.next = cron.next_after(now, &tz);
        slot.last_handled = Some(walk.latest);
        self.outbox.pop_front()
    }

    /// Next fire of one entry (None if disabled or no future match). An
    /// instant `<= now` means the entry is due and not yet polled.
    pub fn next_fire(&self, name: &str) -> Option<Timestamp> {
        self.slots.get(name)?.next
    }

    /// The next `n` fires across all enabled entries in time order (an entry
    /// may appear several times), for `loa status`. A pending instant `<= now`
    /// is listed once (as poll would collapse it), then fires after `now`.
    pub fn upcoming(&self, now: Timestamp, n: usize) -> Vec<(String, Timestamp)> {
        let mut cursors: Vec<(&Slot, Timestamp)> = self
            .slots
            .values()
            .filter_map(|s| s.next.map(|t| (s, t)))
            .collect();
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let Some(i) =
                (0..cursors.len()).min_by_key(|&i| (cursors[i].1, &cursors[i].0.entry.name))
            else {
                break;
            };
            let (slot, at) = cursors[i];
            out.push((slot.entry.name.clone(), at));
            match slot.entry.cron.next_after(at.max(now), &self.tz) {
                Some(t) => cursors[i].1 = t,
                None => {
                    cursors.swap_remove(i);
                }
            }
        }
        out
    }

    fn purge_outbox(&mut self, name: &str) {
        self.outbox.retain(|d| d.name != name);
    }

    fn replan_after_clock_back(&mut self, now: Timestamp) {
        let Ok(back_limit) = now.checked_add(CLOCK_BACK_TOLERANCE) else {
            return;
        };
        for slot in self.slots.values_mut() {
            if slot.last_handled.is_some_and(|t| t > back_limit) {
                slot.last_handled = None;
                if slot.entry.enabled {
                    slot.next = slot.entry.cron.next_after(now, &self.tz);
                }
            }
        }
    }
}

/// Fire instants of one entry in `[first, now]`.
struct DueWalk {
    latest: Timestamp,
    /// The instant before `latest`, if `count > 1`.
    previous: Option<Timestamp>,
    /// Saturates at `MISSED_COUNT_CAP`.
    count: u64,
}

fn walk_due(cron: &CronExpr, tz: &TimeZone, first: Timestamp, now: Timestamp) -> DueWalk {
    let mut walk = DueWalk {
        latest: first,
        previous: None,
        count: 1,
    };
    while walk.count < MISSED_COUNT_CAP {
        match cron.next_after(walk.latest, tz) {
            Some(t) if t <= now => {
                walk.previous = Some(walk.latest);
                walk.latest = t;
                walk.count += 1;
            }
            _ => return walk,
        }
    }
    // Too many to walk: jump to the end, keep the count saturated.
    if let Some(latest) = cron.prev_at_or_before(now, tz).filter(|&t| t > walk.latest) {
        walk.previous = latest
            .checked_sub(jiff::SignedDuration::from_nanos(1))
            .ok()
            .and_then(|t| cron.prev_at_or_before(t, tz))
            .or(walk.previous);
        walk.latest = latest;
    }
    walk
}

fn signed_to_std(d: jiff::SignedDuration) -> Duration {
    Duration::try_from(d).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests;
