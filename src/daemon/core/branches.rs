//! A programme on several zones, cut on some of them, goes on where it
//! still plays; with `on_preempt = "pause"` every cut zone must still hear
//! the whole programme, from the frame it missed. So a cut zone branches
//! off: a new program of the same items, priority, origin and name begins
//! at that frame (a second decode while the zones are apart), waits in the
//! arbiter with the programme's place among equals, and plays when the zone
//! is free. The programme keeps its other zones.
//!
//! The pacer says where a zone was cut (`ZoneLeft`: the first frame it did
//! not get). Zones cut at one frame share one branch. A programme cut
//! everywhere pauses at the frame its zones missed and resumes there, so
//! its zones stay with it ("parked") — unless it resumes on some of them
//! only, or is cut again at another frame first: then the others branch.
//! `rejoin` programmes (and live input, which cannot be decoded twice)
//! take their zone back where they are now.

use super::io::{Effect, ResumedItem, StartPoint};
use super::state::{Cut, Phase, Program};
use super::Core;
use crate::proto::{ProgramId, ZoneId};

impl Core {
    pub(super) fn zone_left(&mut self, zone: ZoneId, id: ProgramId, cut: Cut) {
        let Some(program) = self.programs.get(&id) else {
            return;
        };
        // A retired zone, or one a branch already took over.
        if !program.zones.contains(&zone) || !program.branches_when_cut() {
            return;
        }
        if self.arbiter.owner(zone) == Some(id) {
            // Given back before the pacer's word arrived: the zone rejoined
            // where the programme is now (a cut of a few frames).
            tracing::debug!(program = %id, zone = self.zone_name(zone), "zone rejoined at once");
            return;
        }
        if !self.arbiter.zones_of(id).is_empty() {
            // Still on air elsewhere: this zone must not follow it.
            return self.branch(id, &[zone], cut);
        }
        // Paused everywhere, at the frame its zones missed: the zone waits
        // with it, and zones parked at another frame cannot.
        let program = self.programs.get_mut(&id).expect("checked above");
        let (elsewhere, same): (Vec<_>, Vec<_>) = program.parked.drain(..).partition(|(_, c)| *c != cut);
        program.parked = same;
        program.parked.push((zone, cut));
        for (zone, cut) in elsewhere {
            self.branch(id, &[zone], cut);
        }
    }

    /// The arbiter gave `id` a zone again: parked zones it did not get back
    /// branch off at the frame they missed.
    pub(super) fn resumed(&mut self, id: ProgramId) {
        let Some(program) = self.programs.get_mut(&id) else { return };
        let parked = std::mem::take(&mut program.parked);
        for (zone, cut) in parked {
            if self.arbiter.owner(zone) != Some(id) {
                self.branch(id, &[zone], cut);
            }
        }
    }

    /// Moves `zones` of programme `id` to a branch beginning at `cut`: one
    /// not yet on air that begins there takes them, else a new one.
    fn branch(&mut self, id: ProgramId, zones: &[ZoneId], cut: Cut) {
        let Some(program) = self.programs.get(&id) else { return };
        let zones: Vec<ZoneId> = zones.iter().copied().filter(|z| program.zones.contains(z)).collect();
        if zones.is_empty() {
            return;
        }
        let family = program.family();
        let existing = self
            .programs
            .get(&family)
            .and_then(|root| root.open_branches.iter().find(|(b, c)| *c == cut && self.programs.contains_key(b)))
            .map(|(b, _)| *b);
        let branch = match existing {
            Some(branch) => branch,
            None => self.new_branch(id, cut),
        };
        tracing::info!(
            program = %id,
            branch = %branch,
            "[{}] cut at item {} {:.2} s: a branch resumes there when the zone is free",
            self.zone_list(&zones),
            cut.item,
            cut.position.as_secs_f64()
        );
        if let Some(program) = self.programs.get_mut(&id) {
            program.zones.retain(|z| !zones.contains(z));
        }
        if let Some(b) = self.programs.get_mut(&branch) {
            b.zones.extend(zones.iter().copied());
        }
        let changes = self.arbiter.split(id, branch, &zones);
        self.apply(changes);
    }

    fn new_branch(&mut self, id: ProgramId, cut: Cut) -> ProgramId {
        let branch = self.next_program_id();
        let now = self.now.wall;
        let program = &self.programs[&id];
        let resumed = program.info.get(&cut.item).map(|i| ResumedItem { sha256: i.sha256.clone(), gain_db: i.gain_db });
        let family = program.family();
        let new = Program {
            id: branch,
            name: program.name.clone(),
            priority: program.priority,
            origin: program.origin.clone(),
            zones: Vec::new(),
            items: program.items.clone(),
            labels: program.labels.clone(),
            looped: program.looped,
            on_busy: program.on_busy,
            on_preempt: program.on_preempt,
            max_duration: program.max_duration,
            // max_duration bounds the programme's time on air: its
            // branches end when it would have.
            deadline: program.deadline,
            start_at: None,
            // Waiting in the arbiter already; it plays once prepared.
            phase: Phase::Admitted,
            spawned: false,
            in_pacer: false,
            reply: None,
            info: Default::default(),
            opened: 0,
            skipped: Vec::new(),
            current: None,
            first_packet: None,
            created: now,
            live: None,
            speech: None,
            start: Some(StartPoint { item: cut.item, position: cut.position, resumed }),
            branch_of: Some(family),
            open_branches: Vec::new(),
            parked: Vec::new(),
        };
        self.programs.insert(branch, new);
        if let Some(root) = self.programs.get_mut(&family) {
            root.open_branches.push((branch, cut));
        }
        self.spawn(branch);
        debug_assert!(matches!(self.effects.back(), Some(Effect::Spawn { .. })));
        branch
    }
}
