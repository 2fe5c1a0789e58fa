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

/// A duration as operators write it: "90s", "30m", "1h30m", "2h 15m"
/// (jiff's friendly format), or a bare "0" (no unit is needed for none).
/// `None` when it is not one.
pub fn parse_duration(text: &str) -> Option<Duration> {
    if text.trim() == "0" {
        return Some(Duration::ZERO);
    }
    let d: jiff::SignedDuration = text.trim().parse().ok()?;
    Duration::try_from(d).ok()
}

/// A duration as it travels in requests: the operator's words ("30m"),
/// read with [`parse_duration`] and written back in the same style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl serde::Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = jiff::SignedDuration::try_from(self.0).map_err(serde::ser::Error::custom)?;
        s.collect_str(&format_args!("{d:#}"))
    }
}

impl<'de> serde::Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<HumanDuration, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        parse_duration(&text).map(HumanDuration).ok_or_else(|| {
            serde::de::Error::custom(format!(r#""{text}" is not a duration; write e.g. "90s", "30m" or "1h30m""#))
        })
    }
}

/// An I/O error in plain words for an operator: the common kinds in the
/// words people use, anything else as the system's message without
/// " (os error N)".
pub fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::NotFound => "file not found".into(),
        ErrorKind::PermissionDenied => "permission denied".into(),
        ErrorKind::InvalidData => "not UTF-8 text".into(),
        ErrorKind::ConnectionRefused => "connection refused".into(),
        ErrorKind::ConnectionReset => "connection reset".into(),
        ErrorKind::HostUnreachable => "host unreachable".into(),
        ErrorKind::NetworkUnreachable => "network unreachable".into(),
        _ => {
            let text = e.to_string();
            match text.find(" (os error ") {
                Some(i) => text[..i].to_string(),
                None => text,
            }
        }
    }
}

/// An instant on the daemon's clock, as status and schedule listings show
/// it: local time with its UTC offset, `2026-12-04T06:00:00+07:00`.
pub fn local_time(t: jiff::Timestamp, tz: &jiff::tz::TimeZone) -> String {
    t.to_zoned_datetime(tz.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_in_plain_words() {
        use std::io::{Error, ErrorKind};
        assert_eq!(io_reason(&Error::from(ErrorKind::NotFound)), "file not found");
        assert_eq!(io_reason(&Error::from(ErrorKind::ConnectionRefused)), "connection refused");
        assert_eq!(io_reason(&Error::from_raw_os_error(libc::EISDIR)), "Is a directory");
    }

    #[test]
    fn durations_travel_as_words() {
        let d: HumanDuration = serde_json::from_str(r#""1h30m""#).unwrap();
        assert_eq!(d.0, Duration::from_secs(5400));
        assert_eq!(serde_json::to_string(&d).unwrap(), r#""1h 30m""#);
        let err = serde_json::from_str::<HumanDuration>(r#""soon""#).unwrap_err().to_string();
        assert!(err.starts_with(r#""soon" is not a duration; write e.g."#), "{err}");
    }

    #[test]
    fn durations_as_operators_write_them() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration(" 1h30m "), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("5"), None, "a number alone is no duration, except none");
        assert_eq!(parse_duration("-5m"), None);
    }

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
