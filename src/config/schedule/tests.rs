use std::time::Duration;

use super::*;

fn zones() -> Vec<String> {
    vec!["thon-1".into(), "thon-2".into()]
}

fn playlists() -> Vec<String> {
    vec!["tin-sang".into()]
}

fn fields() -> ScheduleFields<'static> {
    ScheduleFields {
        name: "sang",
        cron: "0 6 * * *",
        playlist: None,
        file: Some("tin.wav"),
        say: None,
        voice: None,
        zones: None,
        priority: None,
        max_duration: None,
        misfire_grace: None,
        on_preempt: None,
        on_busy: None,
        enabled: true,
    }
}

fn errors(f: ScheduleFields<'_>) -> Vec<String> {
    let (z, p) = (zones(), playlists());
    check(&f, Known { zones: &z, playlists: &p }).unwrap_err().iter().map(ToString::to_string).collect()
}

#[test]
fn defaults_fill_what_is_not_written() {
    let (z, p) = (zones(), playlists());
    let s = check(&fields(), Known { zones: &z, playlists: &p }).unwrap();
    assert_eq!(s.zones, ZoneSelection::All);
    assert_eq!(s.priority, Priority::Scheduled);
    assert_eq!(s.misfire_grace, DEFAULT_MISFIRE_GRACE);
    assert_eq!((s.on_busy, s.on_preempt), (OnBusy::Wait, OnPreempt::Pause));
    assert_eq!(s.max_duration, None);
}

#[test]
fn spoken_text_is_trimmed_and_zero_grace_is_zero_however_written() {
    let (z, p) = (zones(), playlists());
    for grace in ["0", "0s", " 0s "] {
        let f = ScheduleFields { file: None, say: Some("  Xin chào  "), misfire_grace: Some(grace), ..fields() };
        let s = check(&f, Known { zones: &z, playlists: &p }).unwrap();
        assert_eq!(s.target, ScheduleTarget::Say { text: "Xin chào".into(), voice: None });
        assert_eq!(s.misfire_grace, Duration::ZERO, "{grace:?}");
    }
}

#[test]
fn every_bad_field_is_named_with_what_would_be_valid() {
    let names = ["thon-9".to_string()];
    let e = errors(ScheduleFields {
        name: "x y",
        cron: "61 * * * *",
        zones: Some(&names),
        priority: Some("urgent"),
        max_duration: Some("soon"),
        misfire_grace: Some("later"),
        on_preempt: Some("skip"),
        on_busy: Some("queue"),
        ..fields()
    });
    assert_eq!(e.len(), 8, "{e:#?}");
    assert!(e[0].starts_with("name: schedule name \"x y\" may only use"), "{}", e[0]);
    assert!(e[1].starts_with("cron: "), "{}", e[1]);
    assert_eq!(e[2], "zones: unknown zone \"thon-9\"; zones: thon-1, thon-2");
    assert!(e[3].starts_with("priority: unknown priority \"urgent\"; valid: emergency"), "{}", e[3]);
    assert_eq!(e[4], "max_duration: \"soon\" is not a duration; write e.g. \"90s\", \"30m\" or \"1h30m\"");
    assert_eq!(e[5], "misfire_grace: \"later\" is not a duration; write e.g. \"90s\", \"30m\" or \"1h30m\"");
    assert_eq!(e[6], "on_preempt: unknown on_preempt \"skip\"; valid: pause, drop, rejoin");
    assert_eq!(e[7], "on_busy: unknown on_busy \"queue\"; valid: wait, refuse");
}

#[test]
fn targets_are_exactly_one_and_known() {
    let none = errors(ScheduleFields { file: None, ..fields() });
    assert_eq!(none, ["a schedule needs exactly one of playlist (a name), file (a path) or say (text to speak)"]);
    let two = errors(ScheduleFields { playlist: Some("tin-sang"), ..fields() });
    assert_eq!(two, none);
    let unknown = errors(ScheduleFields { file: None, playlist: Some("tin-chieu"), ..fields() });
    assert_eq!(unknown, ["playlist: unknown playlist \"tin-chieu\"; playlists: tin-sang"]);
}

#[test]
fn speech_rules_are_loa_says() {
    let blank = errors(ScheduleFields { file: None, say: Some(" \n "), ..fields() });
    assert_eq!(blank, ["say: the text to say is empty"]);
    let long = "a".repeat(5001);
    let too_long = errors(ScheduleFields { file: None, say: Some(&long), ..fields() });
    assert!(too_long[0].starts_with("say: the text to say is 5001 characters long; the limit is 5000"), "{too_long:?}");
    let voice = errors(ScheduleFields { file: None, say: Some("Chào"), voice: Some("vi;rm"), ..fields() });
    assert!(voice[0].starts_with("voice: voice \"vi;rm\" is not a voice name"), "{voice:?}");
    let stray = errors(ScheduleFields { voice: Some("vi"), ..fields() });
    assert_eq!(stray, ["voice: a voice is only for a schedule that says text (say)"]);
}

#[test]
fn zones_are_named_one_by_one() {
    let empty: [String; 0] = [];
    assert_eq!(errors(ScheduleFields { zones: Some(&empty), ..fields() }), ["zones: no zones given; list zone names or write \"all\""]);
    let joined = ["thon-1,thon-2".to_string()];
    assert_eq!(
        errors(ScheduleFields { zones: Some(&joined), ..fields() }),
        ["zones: \"thon-1,thon-2\" is not one zone name; list zones one by one, e.g. [\"thon-1\", \"thon-2\"]"]
    );
}

#[test]
fn a_zero_max_duration_is_refused_and_typed_durations_read_back() {
    assert_eq!(
        errors(ScheduleFields { max_duration: Some("0s"), ..fields() }),
        ["max_duration: must be more than zero (leave it out for no limit)"]
    );
    for d in [Duration::ZERO, Duration::from_secs(90), Duration::from_secs(5400), Duration::from_millis(1500)] {
        assert_eq!(parse_duration(&duration_words(d)), Some(d), "{}", duration_words(d));
    }
}
