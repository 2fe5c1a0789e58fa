//! The priority arbiter: decides which program owns each zone. Sans-IO and
//! clock-free: it is told about requests and releases and answers with the
//! zone assignments that changed; the daemon turns those into pacer commands,
//! which take effect at the next frame boundary.
//!
//! Rules (DESIGN "Scheduling and priority"):
//! - Each zone goes to the highest-priority program that wants it; among
//!   equals the one that asked first keeps it.
//! - A program that loses some of its zones keeps playing on the rest; one
//!   that holds no zone is paused by the pacer (its queue is not read), so it
//!   resumes at the same position when a zone comes back.
//! - `on_preempt = drop`: a program that loses a zone it held to a higher
//!   program is dropped instead of pausing.
//! - `on_busy = refuse`: a request is refused when any zone it wants is held
//!   by a program of equal or higher priority; `wait` queues it.
//!
//! Must not touch: time, sockets, the pacer, the store.

use std::collections::BTreeMap;

use super::Priority;

pub type ProgramId = u64;

pub use crate::proto::{OnBusy, OnPreempt};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub program: ProgramId,
    pub priority: Priority,
    /// Zone indices.
    pub zones: Vec<usize>,
    pub on_busy: OnBusy,
    pub on_preempt: OnPreempt,
}

/// Why a request was refused: the zones busy and who holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// (zone, holder, holder's priority)
    pub busy: Vec<(usize, ProgramId, Priority)>,
}

/// A change the daemon must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// From the next frame on, `zone` plays `program` (or nothing).
    Assign { zone: usize, program: Option<ProgramId> },
    /// The program holds no zone any more but stays queued (paused or waiting).
    Paused { program: ProgramId },
    /// A paused program has a zone again.
    Resumed { program: ProgramId },
    /// An `on_preempt = drop` program lost a zone to `by`; it is forgotten.
    Dropped { program: ProgramId, by: ProgramId },
}

#[derive(Debug, Clone)]
struct Entry {
    request: Request,
    /// Arrival order: first come keeps among equals.
    order: u64,
    /// Has held at least one zone (so losing all means paused, not waiting).
    started: bool,
}

#[derive(Debug, Clone)]
pub struct Arbiter {
    owners: Vec<Option<ProgramId>>,
    programs: BTreeMap<ProgramId, Entry>,
    next_order: u64,
}

impl Arbiter {
    pub fn new(zones: usize) -> Arbiter {
        Arbiter {
            owners: vec![None; zones],
            programs: BTreeMap::new(),
            next_order: 0,
        }
    }

    /// Number of zones (zone indices are `0..zones()`).
    pub fn zones(&self) -> usize {
        self.owners.len()
    }

    /// Adds a zone at the end (config reload). It starts idle.
    pub fn add_zone(&mut self) -> usize {
        self.owners.push(None);
        self.owners.len() - 1
    }

    /// Who owns `zone` now.
    pub fn owner(&self, zone: usize) -> Option<ProgramId> {
        self.owners.get(zone).copied().flatten()
    }

    /// Zones `program` plays on now.
    pub fn zones_of(&self, program: ProgramId) -> Vec<usize> {
        (0..self.owners.len())
            .filter(|&z| self.owners[z] == Some(program))
            .collect()
    }

    pub fn priority_of(&self, program: ProgramId) -> Option<Priority> {
        self.programs.get(&program).map(|e| e.request.priority)
    }

    pub fn contains(&self, program: ProgramId) -> bool {
        self.programs.contains_key(&program)
    }

    /// A new program asks for its zones. Unknown zone indices are ignored
    /// (the caller validated names).
    pub fn request(&mut self, request: Request) -> Result<Vec<Change>, Refused> {
        if request.on_busy == OnBusy::Refuse {
            let busy: Vec<_> = request
                .zones
                .iter()
                .filter_map(|&zone| {
                    let holder = self.owner(zone)?;
                    let priority = self.programs[&holder].request.priority;
                    (priority >= request.priority).then_some((zone, holder, priority))
                })
                .collect();
            if !busy.is_empty() {
                return Err(Refused { busy });
            }
        }
        let order = self.next_order;
        self.next_order += 1;
        self.programs.insert(
            request.program,
            Entry {
                request,
                order,
                started: false,
            },
        );
        Ok(self.rebalance())
    }

    /// The program ended or was stopped: its zones go to whoever waits.
    pub fn release(&mut self, program: ProgramId) -> Vec<Change> {
        if self.programs.remove(&program).is_none() {
            return Vec::new();
        }
        self.rebalance()
    }

    /// Drops a zone from every program (zone removed by a reload); the zone
    /// index stays (idle) so other indices do not move.
    pub fn retire_zone(&mut self, zone: usize) -> Vec<Change> {
        for entry in self.programs.values_mut() {
            entry.request.zones.retain(|&z| z != zone);
        }
        self.rebalance()
    }

    /// Recomputes every zone's owner from scratch and reports differences.
    /// Programs are few (tens), zones a handful: clarity beats cleverness.
    fn rebalance(&mut self) -> Vec<Change> {
        let mut changes = Vec::new();
        let mut dropped: Vec<(ProgramId, ProgramId)> = Vec::new();
        // A dropped program frees zones that may then go to someone else, so
        // iterate until no more drops happen (at most once per program).
        let owners = loop {
            let owners = self.winners();
            let newly_dropped: Vec<(ProgramId, ProgramId)> = self
                .programs
                .iter()
                .filter(|(_, e)| e.request.on_preempt == OnPreempt::Drop)
                .filter_map(|(&id, _)| {
                    // Lost a zone it held, to a higher program.
                    (0..owners.len()).find_map(|z| {
                        let by = owners[z]?;
                        (self.owners[z] == Some(id) && by != id).then_some((id, by))
                    })
                })
                .collect();
            if newly_dropped.is_empty() {
                break owners;
            }
            for (id, by) in newly_dropped {
                self.programs.remove(&id);
                dropped.push((id, by));
            }
        };
        let before: Vec<ProgramId> = self
            .programs
            .keys()
            .copied()
            .filter(|&id| self.owners.contains(&Some(id)))
            .collect();
        for (zone, owner) in owners.iter().enumerate() {
            if self.owners[zone] != *owner {
                changes.push(Change::Assign {
                    zone,
                    program: *owner,
                });
            }
        }
        self.owners = owners;
        for (program, by) in dropped {
            changes.push(Change::Dropped { program, by });
        }
        for (&id, entry) in self.programs.iter_mut() {
            let playing = self.owners.contains(&Some(id));
            let was_playing = before.contains(&id);
            if was_playing && !playing {
                changes.push(Change::Paused { program: id });
            } else if playing && !was_playing && entry.started {
                changes.push(Change::Resumed { program: id });
            }
            entry.started |= playing;
        }
        changes
    }

    /// The owner each zone should have: highest priority, then first come.
    fn winners(&self) -> Vec<Option<ProgramId>> {
        (0..self.owners.len())
            .map(|zone| {
                self.programs
                    .iter()
                    .filter(|(_, e)| e.request.zones.contains(&zone))
                    .max_by(|(_, a), (_, b)| {
                        a.request
                            .priority
                            .cmp(&b.request.priority)
                            .then(b.order.cmp(&a.order))
                    })
                    .map(|(&id, _)| id)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(program: ProgramId, priority: Priority, zones: &[usize]) -> Request {
        Request {
            program,
            priority,
            zones: zones.to_vec(),
            on_busy: OnBusy::Wait,
            on_preempt: OnPreempt::Pause,
        }
    }

    fn assign(zone: usize, program: Option<ProgramId>) -> Change {
        Change::Assign { zone, program }
    }

    #[test]
    fn a_program_takes_its_free_zones() {
        let mut a = Arbiter::new(2);
        let changes = a.request(req(1, Priority::Scheduled, &[0, 1])).unwrap();
        assert_eq!(changes, vec![assign(0, Some(1)), assign(1, Some(1))]);
        assert_eq!(a.zones_of(1), vec![0, 1]);
    }

    #[test]
    fn emergency_takes_one_zone_and_the_scheduled_program_keeps_the_other() {
        let mut a = Arbiter::new(2);
        a.request(req(1, Priority::Scheduled, &[0])).unwrap();
        a.request(req(2, Priority::Scheduled, &[1])).unwrap();
        let changes = a.request(req(3, Priority::Emergency, &[0])).unwrap();
        assert_eq!(changes, vec![assign(0, Some(3)), Change::Paused { program: 1 }]);
        assert_eq!(a.owner(1), Some(2));
    }

    #[test]
    fn preempted_scheduled_program_resumes_after_emergency() {
        let mut a = Arbiter::new(1);
        a.request(req(1, Priority::Scheduled, &[0])).unwrap();
        a.request(req(2, Priority::Emergency, &[0])).unwrap();
        let changes = a.release(2);
        assert_eq!(changes, vec![assign(0, Some(1)), Change::Resumed { program: 1 }]);
    }

    #[test]
    fn a_program_losing_one_of_two_zones_keeps_playing_on_the_other() {
        let mut a = Arbiter::new(2);
        a.request(req(1, Priority::Scheduled, &[0, 1])).unwrap();
        let changes = a.request(req(2, Priority::Live, &[1])).unwrap();
        assert_eq!(changes, vec![assign(1, Some(2))]);
        assert_eq!(a.zones_of(1), vec![0]);
        assert_eq!(a.release(2), vec![assign(1, Some(1))]);
    }

    #[test]
    fn equal_priority_first_come_keeps_the_zone_and_the_newcomer_waits() {
        let mut a = Arbiter::new(1);
        a.request(req(1, Priority::Scheduled, &[0])).unwrap();
        assert_eq!(a.request(req(2, Priority::Scheduled, &[0])).unwrap(), vec![]);
        assert_eq!(a.owner(0), Some(1));
        // Waiting, not resumed: it never played.
        assert_eq!(a.release(1), vec![assign(0, Some(2))]);
    }

    #[test]
    fn on_busy_refuse_is_refused_by_an_equal_or_higher_holder_only() {
        let mut a = Arbiter::new(2);
        a.request(req(1, Priority::Announcement, &[0])).unwrap();
        let mut r = req(2, Priority::Announcement, &[0, 1]);
        r.on_busy = OnBusy::Refuse;
        assert_eq!(
            a.request(r.clone()),
            Err(Refused {
                busy: vec![(0, 1, Priority::Announcement)]
            })
        );
        assert!(!a.contains(2));
        r.priority = Priority::Emergency;
        assert!(a.request(r).is_ok());
        assert_eq!(a.owner(0), Some(2));
    }

    #[test]
    fn a_lower_program_waits_behind_a_higher_one() {
        let mut a = Arbiter::new(1);
        a.request(req(1, Priority::Emergency, &[0])).unwrap();
        assert_eq!(a.request(req(2, Priority::Background, &[0])).unwrap(), vec![]);
        assert_eq!(a.release(1), vec![assign(0, Some(2))]);
    }

    #[test]
    fn on_preempt_drop_ends_the_program_instead_of_pausing() {
        let mut a = Arbiter::new(2);
        let mut r = req(1, Priority::Scheduled, &[0, 1]);
        r.on_preempt = OnPreempt::Drop;
        a.request(r).unwrap();
        let changes = a.request(req(2, Priority::Emergency, &[0])).unwrap();
        assert_eq!(
            changes,
            vec![
                assign(0, Some(2)),
                assign(1, None),
                Change::Dropped { program: 1, by: 2 }
            ]
        );
        assert!(!a.contains(1));
        assert_eq!(a.release(2), vec![assign(0, None)]);
    }

    #[test]
    fn a_dropped_program_frees_its_zones_for_waiting_programs() {
        let mut a = Arbiter::new(2);
        let mut r = req(1, Priority::Scheduled, &[0, 1]);
        r.on_preempt = OnPreempt::Drop;
        a.request(r).unwrap();
        a.request(req(2, Priority::Background, &[1])).unwrap();
        let changes = a.request(req(3, Priority::Emergency, &[0])).unwrap();
        assert_eq!(
            changes,
            vec![
                assign(0, Some(3)),
                assign(1, Some(2)),
                Change::Dropped { program: 1, by: 3 }
            ]
        );
    }

    #[test]
    fn emergency_over_live_over_announcement_stack_and_unwind_in_order() {
        let mut a = Arbiter::new(1);
        a.request(req(1, Priority::Scheduled, &[0])).unwrap();
        a.request(req(2, Priority::Announcement, &[0])).unwrap();
        a.request(req(3, Priority::Live, &[0])).unwrap();
        a.request(req(4, Priority::Emergency, &[0])).unwrap();
        assert_eq!(a.owner(0), Some(4));
        a.release(4);
        assert_eq!(a.owner(0), Some(3));
        a.release(3);
        assert_eq!(a.owner(0), Some(2));
        a.release(2);
        assert_eq!(a.owner(0), Some(1));
    }

    #[test]
    fn a_retired_zone_goes_idle_and_its_program_keeps_its_other_zones() {
        let mut a = Arbiter::new(2);
        a.request(req(1, Priority::Scheduled, &[0, 1])).unwrap();
        assert_eq!(a.retire_zone(1), vec![assign(1, None)]);
        assert_eq!(a.zones_of(1), vec![0]);
        let z = a.add_zone();
        assert_eq!(z, 2);
        assert_eq!(a.owner(2), None);
    }
}
