//! Identifiers, as types: a program id cannot be passed where a zone is
//! meant, and "no program" is `None`, never a sentinel 0.

use std::fmt;
use std::num::NonZeroU64;

/// A program: one encode of items (or live input) fanned out to its zones.
/// Numbered from 1 for the daemon's life; shown to operators as `#N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ProgramId(NonZeroU64);

impl ProgramId {
    /// The first id a daemon hands out.
    pub const FIRST: ProgramId = ProgramId(NonZeroU64::MIN);

    /// `None` for 0, which is no program.
    pub fn new(n: u64) -> Option<ProgramId> {
        NonZeroU64::new(n).map(ProgramId)
    }

    pub fn get(self) -> u64 {
        self.0.get()
    }

    /// The id after this one.
    pub fn next(self) -> ProgramId {
        ProgramId(self.0.saturating_add(1))
    }
}

impl fmt::Display for ProgramId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A zone: its place in the daemon's zone table, which only grows (a zone
/// removed by a reload is retired, never reused), so an id stays valid for
/// the daemon's life. On the wire zones travel by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ZoneId(u32);

impl ZoneId {
    pub fn from_index(index: usize) -> ZoneId {
        ZoneId(u32::try_from(index).expect("fewer than 2^32 zones"))
    }

    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for ZoneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "zone {}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_zero_is_no_program() {
        assert_eq!(ProgramId::new(0), None);
        assert_eq!(ProgramId::new(7).map(ProgramId::get), Some(7));
        assert_eq!(ProgramId::FIRST.next().get(), 2);
        assert!(serde_json::from_str::<ProgramId>("0").is_err());
        assert_eq!(serde_json::to_string(&ProgramId::new(12).unwrap()).unwrap(), "12");
    }

    #[test]
    fn zone_ids_are_indices() {
        assert_eq!(ZoneId::from_index(3).index(), 3);
        assert!(ZoneId::from_index(1) < ZoneId::from_index(2));
    }
}
