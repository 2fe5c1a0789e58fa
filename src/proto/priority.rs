//! Priority levels of programs, highest first (DESIGN "Scheduling and
//! priority"). A closed set, so an enum: the arbiter compares them, the
//! store and the control socket spell them as lowercase words.

use std::fmt;
use std::str::FromStr;

/// Declared lowest first so the derived `Ord` reads naturally:
/// `Priority::Emergency > Priority::Scheduled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Background,
    Scheduled,
    Announcement,
    Live,
    Emergency,
}

impl Priority {
    /// Every level, highest first, as operators see them listed.
    pub const ALL: [Priority; 5] = [
        Priority::Emergency,
        Priority::Live,
        Priority::Announcement,
        Priority::Scheduled,
        Priority::Background,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Background => "background",
            Priority::Scheduled => "scheduled",
            Priority::Announcement => "announcement",
            Priority::Live => "live",
            Priority::Emergency => "emergency",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown priority {0:?}; valid: emergency, live, announcement, scheduled, background")]
pub struct UnknownPriority(pub String);

impl serde::Serialize for Priority {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Priority {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Priority, D::Error> {
        let word = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        word.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for Priority {
    type Err = UnknownPriority;

    fn from_str(s: &str) -> Result<Priority, UnknownPriority> {
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPriority(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emergency_outranks_everything_and_background_nothing() {
        for level in Priority::ALL {
            assert!(Priority::Emergency >= level);
            assert!(Priority::Background <= level);
        }
        assert!(Priority::Live > Priority::Announcement);
        assert!(Priority::Announcement > Priority::Scheduled);
    }

    #[test]
    fn names_round_trip_and_unknown_names_list_the_valid_ones() {
        for level in Priority::ALL {
            assert_eq!(level.as_str().parse::<Priority>(), Ok(level));
        }
        let err = "urgent".parse::<Priority>().unwrap_err();
        assert!(err.to_string().contains("valid: emergency, live"), "{err}");
    }
}
