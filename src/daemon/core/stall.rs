//! Pacer stalls as the operator sees them: the pacer woke over a second
//! late (the machine suspended, the daemon was stopped) and skipped the
//! missed ticks on every zone: silence, after which each program resumes
//! where it stopped. The core adds them up for `loa status`, charges the
//! silence to the zones that were on air, and writes it on the history row
//! of each item that was on air.

use std::collections::BTreeSet;
use std::time::Duration;

use super::io::{Effect, StoreWrite};
use super::Core;
use crate::proto::status::PacerStatus;
use crate::proto::ProgramId;

/// Stalls since start, over all zones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StallTotals {
    pub stalls: u64,
    pub skipped_ticks: u64,
    pub longest: Duration,
}

/// Stalls that hit one zone while it was on air.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZoneStalls {
    pub stalls: u64,
    /// Silence its speakers heard.
    pub skipped: Duration,
}

impl StallTotals {
    pub fn status(&self) -> PacerStatus {
        PacerStatus {
            stalls: self.stalls,
            skipped_ticks: self.skipped_ticks,
            longest_stall_ms: self.longest.as_millis() as u64,
        }
    }
}

impl Core {
    pub(super) fn stalled(&mut self, late: Duration, skipped_ticks: u64) {
        let frame = self.config.audio.frame.duration();
        // Whole ticks only: the rest of the delay was caught up by sending
        // late, as for any late wake-up.
        let skipped = Duration::from_nanos((frame.as_nanos() as u64).saturating_mul(skipped_ticks));
        self.stalls.stalls += 1;
        self.stalls.skipped_ticks += skipped_ticks;
        self.stalls.longest = self.stalls.longest.max(late);

        // On air: the zone's owner has its frames in the pacer (a program
        // still prefilling had nothing due, so the stall only delays it).
        let mut zones = Vec::new();
        let mut programs = BTreeSet::new();
        for zone in self.live_zones() {
            let owner = self.arbiter.owner(zone).filter(|id| self.programs.get(id).is_some_and(|p| p.in_pacer));
            if let Some(id) = owner {
                zones.push(zone);
                programs.insert(id);
            }
        }
        for zone in &zones {
            let slot = &mut self.zones[zone.index()].stalls;
            slot.stalls += 1;
            slot.skipped += skipped;
        }
        let mut writes = Vec::new();
        for id in &programs {
            let Some(current) = self.programs.get_mut(id).and_then(|p| p.current.as_mut()) else {
                continue;
            };
            current.skipped += skipped;
            writes.push(StoreWrite::Skipped { key: current.row, skipped_ms: current.skipped.as_millis() as u64 });
        }
        for write in writes {
            self.emit(Effect::Store(write));
        }

        let late_s = late.as_secs_f64();
        if zones.is_empty() {
            tracing::warn!(late_ms = late.as_millis() as u64, skipped_ticks, "pacer stalled {late_s:.2} s; nothing was on air");
            return;
        }
        tracing::warn!(
            late_ms = late.as_millis() as u64,
            skipped_ticks,
            "pacer stalled {late_s:.2} s (the machine suspended or loa was stopped): {skipped_ticks} frame ticks skipped, {:.2} s of silence on {}; on air, resuming where it stopped: {}",
            skipped.as_secs_f64(),
            self.zone_list(&zones),
            self.program_list(&programs),
        );
    }

    fn program_list(&self, programs: &BTreeSet<ProgramId>) -> String {
        let named = programs.iter().filter_map(|id| self.programs.get(id)).map(|p| format!("#{} {}", p.id, p.name));
        named.collect::<Vec<_>>().join(", ")
    }
}
