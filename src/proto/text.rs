//! How durations are written for people, in replies, logs and tables.

use std::time::Duration;

/// A position in an item, as a player shows it: "1:05", "3:00:07".
pub fn clock_text(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// A length of time: "1h 5m", "3m 20s", "45s".
pub fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_text_reads_like_a_player() {
        assert_eq!(clock_text(Duration::from_millis(65_900)), "1:05");
        assert_eq!(clock_text(Duration::from_secs(3 * 3600 + 7)), "3:00:07");
    }

    #[test]
    fn humanize_drops_what_does_not_matter() {
        assert_eq!(humanize(Duration::from_secs(45)), "45s");
        assert_eq!(humanize(Duration::from_secs(200)), "3m 20s");
        assert_eq!(humanize(Duration::from_secs(300)), "5m");
        assert_eq!(humanize(Duration::from_secs(3900)), "1h 5m");
        assert_eq!(humanize(Duration::from_secs(7200)), "2h");
    }
}
