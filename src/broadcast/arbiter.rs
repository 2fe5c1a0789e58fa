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
//! - A branch (`split`) takes over some zones of a program and keeps that
//!   program's place among equals: a zone cut from a programme waits for
//!   it as the programme itself would have.
//!
//! Must not touch: time, sockets, the pacer, the store.

use std::collections::BTreeMap;

use super::Priority;

pub use crate::proto::{OnBusy, OnPreempt, ProgramId, ZoneId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub program: ProgramId,
    pub priority: Priority,
    pub zones: Vec<ZoneId>,
    pub on_busy: OnBusy,
    pub on_preempt: OnPreempt,
}

/// Why a request was refused: the zones busy and who holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// (zone, holder, holder's priority)
    pub busy: Vec<(ZoneId, ProgramId, Priority)>,
}

/// A change the daemon must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// From the next frame on, `zone` plays `program` (or nothing).
    Assign { zone: ZoneId, program: Option<ProgramId> },
    /// The program holds no zone any more but stays queued (paused or waiting).
    Paused { program: ProgramId },
    /// A paused program has a zone again.
    Resumed { program: ProgramId },
    /// An `on_preempt = drop` program lost a zone to `by`; it is forgotten.
    Dropped { program: ProgramId, by: ProgramId },
}

/// Place in the queue among programs of equal priority: arrival first,
/// then (for branches of one programme, which never want the same zone)
/// the order they were split off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Order {
    arrival: u64,
    branch: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    request: Request,
    order: Order,
    /// Has held at least one zone (so losing all means paused, not waiting).
    started: bool,
}

#[derive(Debug, Clone)]
pub struct Arbiter {
    owners: Vec<Option<ProgramId>>,
    programs: BTreeMap<ProgramId, Entry>,
    next_order: u64,
    next_branch: u64,
}

impl Arbiter {
    pub fn new(zones: usize) -> Arbiter {
        Arbiter {
            owners: vec![None; zones],
            programs: BTreeMap::new(),
            next_order: 0,
            next_branch: 1,
        }
    }

    /// Number of zones (zone ids are `0..zones()`).
    pub fn zones(&self) -> usize {
        self.owners.len()
    }

    /// Adds a zone at the end (config reload). It starts idle.
    pub fn add_zone(&mut self) -> ZoneId {
        self.owners.push(None);
        ZoneId::from_index(self.owners.len() - 1)
    }

    /// Who owns `zone` now.
    pub fn owner(&self, zone: ZoneId) -> Option<ProgramId> {
        self.owners.get(zone.index()).copied().flatten()
    }

    /// Zones `program` plays on now.
    pub fn zones_of(&self, program: ProgramId) -> Vec<ZoneId> {
        (0..self.owners.len())
            .filter(|&z| self.owners[z] == Some(program))
            .map(ZoneId::from_index)
            .collect()
    }

    /// Zones `program` asked for and still wants (playing or not).
    pub fn wanted_by(&self, program: ProgramId) -> Vec<ZoneId> {
        self.programs.get(&program).map(|e| e.request.zones.clone()).unwrap_or_default()
    }

    pub fn priority_of(&self, program: ProgramId) -> Option<Priority> {
        self.programs.get(&program).map(|e| e.request.priority)
    }

    pub fn contains(&self, program: ProgramId) -> bool {
        self.programs.contains_key(&program)
    }

    /// A new program asks for its zones. Unknown zone ids are ignored
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
        let order = Order { arrival: self.next_order, branch: 0 };
        self.next_order += 1;
        self.programs.insert(request.program, Entry { request, order, started: false });
        Ok(self.rebalance())
    }

    /// Moves `zones` from `program`'s request to `branch`, which keeps
    /// `program`'s place among equals (same priority, same arrival) and
    /// counts as started (it resumes, it never merely waits). If `branch`
    /// is already known the zones are added to it. Nothing happens for an
    /// unknown `program` or zones it does not want.
    pub fn split(&mut self, program: ProgramId, branch: ProgramId, zones: &[ZoneId]) -> Vec<Change> {
        let Some(entry) = self.programs.get_mut(&program) else {
            return Vec::new();
        };
        let moved: Vec<ZoneId> = zones.iter().copied().filter(|z| entry.request.zones.contains(z)).collect();
        if moved.is_empty() {
            return Vec::new();
        }
        entry.request.zones.retain(|z| !moved.contains(z));
        let (request, arrival) = (entry.request.clone(), entry.order.arrival);
        match self.programs.get_mut(&branch) {
            Some(existing) => existing.request.zones.extend(moved),
            None => {
                let order = Order { arrival, branch: self.next_branch };
                self.next_branch += 1;
                let request = Request { program: branch, zones: moved, ..request };
                self.programs.insert(branch, Entry { request, order, started: true });
            }
        }
        self.rebalance()
    }

    /// The program ended or was stopped: its zones go to whoever waits.
    pub fn release(&mut self, program: ProgramId) -> Vec<Change> {
        if self.programs.remove(&program).is_none() {
            return Vec::new();
        }
        self.rebalance()
    }

    /// Drops a zone from every program (zone removed by a reload); the zone
    /// id stays (idle) so other ids do not move.
    pub fn retire_zone(&mut self, zone: ZoneId) -> Vec<Change> {
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
        let before: Vec<ProgramId> =
            self.programs.keys().copied().filter(|&id| self.owners.contains(&Some(id))).collect();
        for (zone, owner) in owners.iter().enumerate() {
            if self.owners[zone] != *owner {
                changes.push(Change::Assign { zone: ZoneId::from_index(zone), program: *owner });
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
                let zone = ZoneId::from_index(zone);
                self.programs
                    .iter()
                    .filter(|(_, e)| e.request.zones.contains(&zone))
                    .max_by(|(_, a), (_, b)| a.request.priority.cmp(&b.request.priority).then(b.order.cmp(&a.order)))
                    .map(|(&id, _)| id)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
