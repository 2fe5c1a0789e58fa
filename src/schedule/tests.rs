use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::*;

fn tz(name: &str) -> TimeZone {
    TimeZone::get(name).expect("bundled tzdb has the zone")
}

/// An instant written with its offset, e.g. "2026-03-29T03:00+02:00".
fn at(s: &str) -> Timestamp {
    s.parse().expect("valid RFC 3339 instant")
}

fn cron(s: &str) -> CronExpr {
    CronExpr::parse(s).expect("valid cron")
}

fn entry(name: &str, expr: &str, grace_secs: u64) -> ScheduleEntry {
    ScheduleEntry {
        name: name.to_string(),
        cron: cron(expr),
        enabled: true,
        misfire_grace: Duration::from_secs(grace_secs),
    }
}

fn drain(s: &mut Scheduler, now: Timestamp) -> Vec<Due> {
    std::iter::from_fn(|| s.poll(now)).collect()
}

fn fires(expr: &str, zone: &str, from: &str, n: usize) -> Vec<Timestamp> {
    let c = cron(expr);
    let z = tz(zone);
    let mut t = at(from);
    (0..n)
        .map(|_| {
            t = c.next_after(t, &z).expect("a next fire");
            t
        })
        .collect()
}

// --- parsing ---

#[test]
fn five_field_expression_fires_on_the_minute() {
    let c = cron("15 6 * * *");
    assert_eq!(c.as_str(), "15 6 * * *");
    let next = c.next_after(at("2026-01-01T00:00:00Z"), &TimeZone::UTC);
    assert_eq!(next, Some(at("2026-01-01T06:15:00Z")));
}

#[test]
fn six_field_expression_has_seconds_first() {
    let c = cron("30 15 6 * * *");
    let next = c.next_after(at("2026-01-01T00:00:00Z"), &TimeZone::UTC);
    assert_eq!(next, Some(at("2026-01-01T06:15:30Z")));
}

#[test]
fn wrong_field_count_says_what_is_valid() {
    let err = CronExpr::parse("* * *").unwrap_err();
    assert_eq!(
        err,
        CronError::FieldCount {
            expr: "* * *".into(),
            fields: 3
        }
    );
    assert_eq!(
        err.to_string(),
        "cron expression \"* * *\" has 3 fields; expected 5 (minute hour day month weekday) or 6 (with seconds first)"
    );
    assert!(matches!(
        CronExpr::parse("0 0 0 1 1 * 2030"),
        Err(CronError::FieldCount { fields: 7, .. })
    ));
}

#[test]
fn empty_expression_is_refused() {
    assert_eq!(CronExpr::parse("   "), Err(CronError::Empty));
}

#[test]
fn out_of_range_value_names_the_field_and_range() {
    let err = CronExpr::parse("60 * * * *").unwrap_err();
    let CronError::Field { field, value, .. } = &err else {
        panic!("expected a field error, got {err:?}");
    };
    assert_eq!((*field, value.as_str()), ("minute", "60"));
    let msg = err.to_string();
    assert!(msg.contains("0-59"), "{msg}");
    assert!(!msg.ends_with('.'), "{msg}");

    let err = CronExpr::parse("0 25 * * *").unwrap_err();
    assert!(
        matches!(err, CronError::Field { field: "hour", .. }),
        "{err:?}"
    );
    let err = CronExpr::parse("0 0 0 * 13 *").unwrap_err();
    assert!(
        matches!(err, CronError::Field { field: "month", .. }),
        "{err:?}"
    );
}

#[test]
fn garbage_expression_is_refused_with_lowercase_message() {
    let err = CronExpr::parse("every day at six").unwrap_err();
    // 4 words: a field-count error.
    assert!(matches!(err, CronError::FieldCount { fields: 4, .. }));
    let err = CronExpr::parse("a b c d e").unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            CronError::Field {
                field: "minute",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(msg.starts_with("cron expression \"a b c d e\""), "{msg}");
    assert!(!msg.ends_with('.'), "{msg}");
}

#[test]
fn nickname_is_accepted() {
    let c = cron("@daily");
    let next = c.next_after(at("2026-01-01T12:00:00Z"), &TimeZone::UTC);
    assert_eq!(next, Some(at("2026-01-02T00:00:00Z")));
}

// --- civil time and DST ---

#[test]
fn ho_chi_minh_morning_news_fires_at_six_local() {
    let next =
        cron("0 6 * * *").next_after(at("2026-11-27T05:00:00+07:00"), &tz("Asia/Ho_Chi_Minh"));
    assert_eq!(next, Some(at("2026-11-27T06:00:00+07:00")));
}

#[test]
fn next_after_is_strictly_after() {
    let c = cron("0 6 * * *");
    let z = tz("Asia/Ho_Chi_Minh");
    let six = at("2026-11-27T06:00:00+07:00");
    assert_eq!(c.next_after(six, &z), Some(at("2026-11-28T06:00:00+07:00")));
    let just_before = six
        .checked_sub(jiff::SignedDuration::from_millis(1))
        .unwrap();
    assert_eq!(c.next_after(just_before, &z), Some(six));
}

#[test]
fn spring_forward_gap_fires_once_when_the_clock_jumps() {
    // Berlin 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:30 does not exist.
    let got = fires(
        "30 2 * * *",
        "Europe/Berlin",
        "2026-03-28T12:00:00+01:00",
        3,
    );
    assert_eq!(
        got,
        vec![
            at("2026-03-29T03:00:00+02:00"), // the jump instant (01:00 UTC)
            at("2026-03-30T02:30:00+02:00"), // next day: 02:30 again
            at("2026-03-31T02:30:00+02:00"),
        ]
    );
}

#[test]
fn spring_forward_gap_collapses_several_matches_into_one_fire() {
    let got = fires(
        "*/15 * * * *",
        "Europe/Berlin",
        "2026-03-29T01:50:00+01:00",
        3,
    );
    assert_eq!(
        got,
        vec![
            at("2026-03-29T03:00:00+02:00"),
            at("2026-03-29T03:15:00+02:00"),
            at("2026-03-29T03:30:00+02:00"),
        ]
    );
}

#[test]
fn fall_back_fold_daily_fires_once_at_the_earlier_instant() {
    // Berlin 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
    let got = fires(
        "30 2 * * *",
        "Europe/Berlin",
        "2026-10-24T12:00:00+02:00",
        2,
    );
    assert_eq!(
        got,
        vec![
            at("2026-10-25T02:30:00+02:00"),
            at("2026-10-26T02:30:00+01:00")
        ]
    );
}

#[test]
fn fall_back_fold_repeated_hour_does_not_replay_half_hourly() {
    let got = fires(
        "*/30 * * * *",
        "Europe/Berlin",
        "2026-10-25T01:45:00+02:00",
        4,
    );
    assert_eq!(
        got,
        vec![
            at("2026-10-25T02:00:00+02:00"),
            at("2026-10-25T02:30:00+02:00"),
            // 02:00 and 02:30 CET already played in the first pass.
            at("2026-10-25T03:00:00+01:00"),
            at("2026-10-25T03:30:00+01:00"),
        ]
    );
}

#[test]
fn fall_back_fold_entry_created_in_repeated_hour_waits_for_after_the_fold() {
    let next =
        cron("*/30 * * * *").next_after(at("2026-10-25T02:10:00+01:00"), &tz("Europe/Berlin"));
    assert_eq!(next, Some(at("2026-10-25T03:00:00+01:00")));
}

#[test]
fn leap_day_schedule_waits_for_the_next_leap_year() {
    let next =
        cron("0 9 29 2 *").next_after(at("2026-03-01T00:00:00+07:00"), &tz("Asia/Ho_Chi_Minh"));
    assert_eq!(next, Some(at("2028-02-29T09:00:00+07:00")));
}

#[test]
fn impossible_date_has_no_next_fire() {
    assert_eq!(
        cron("0 0 30 2 *").next_after(at("2026-01-01T00:00:00Z"), &TimeZone::UTC),
        None
    );
}

#[test]
fn prev_at_or_before_inverts_next_after_across_dst() {
    let z = tz("Europe/Berlin");
    for expr in ["30 2 * * *", "*/30 * * * *", "*/15 * * * *", "0 * * * *"] {
        let c = cron(expr);
        let mut t = at("2026-03-28T00:00:00+01:00");
        for _ in 0..40 {
            let n = c.next_after(t, &z).unwrap();
            assert_eq!(c.prev_at_or_before(n, &z), Some(n), "{expr} at {n}");
            t = n;
        }
        let mut t = at("2026-10-24T22:00:00+02:00");
        for _ in 0..40 {
            let n = c.next_after(t, &z).unwrap();
            assert_eq!(c.prev_at_or_before(n, &z), Some(n), "{expr} at {n}");
            t = n;
        }
    }
    // In the repeated hour, the latest fire is from the first pass.
    let c = cron("*/30 * * * *");
    assert_eq!(
        c.prev_at_or_before(at("2026-10-25T02:10:00+01:00"), &z),
        Some(at("2026-10-25T02:30:00+02:00"))
    );
}

// --- scheduler ---

fn hourly_since_ten(now: &str, grace_secs: u64) -> Scheduler {
    let mut s = Scheduler::new(TimeZone::UTC);
    s.upsert(
        entry("news", "0 * * * *", grace_secs),
        Some(at("2026-05-01T10:00:00Z")),
        at(now),
    );
    s
}

#[test]
fn new_entry_first_fire_is_strictly_after_now() {
    let mut s = Scheduler::new(TimeZone::UTC);
    s.upsert(
        entry("news", "0 * * * *", 300),
        None,
        at("2026-05-01T10:00:00Z"),
    );
    assert_eq!(s.next_fire("news"), Some(at("2026-05-01T11:00:00Z")));
    assert_eq!(s.poll(at("2026-05-01T10:00:00Z")), None);
}

#[test]
fn on_time_poll_fires_with_zero_lateness() {
    let mut s = Scheduler::new(TimeZone::UTC);
    s.upsert(
        entry("news", "0 * * * *", 0),
        None,
        at("2026-05-01T10:00:00Z"),
    );
    assert_eq!(s.poll_timeout(), Some(at("2026-05-01T11:00:00Z")));
    assert_eq!(s.poll(at("2026-05-01T10:59:59Z")), None);
    let due = drain(&mut s, at("2026-05-01T11:00:00Z"));
    assert_eq!(
        due,
        vec![Due {
            name: "news".into(),
            scheduled: at("2026-05-01T11:00:00Z"),
            kind: DueKind::Fire {
                late: Duration::ZERO
            },
        }]
    );
    assert_eq!(s.next_fire("news"), Some(at("2026-05-01T12:00:00Z")));
}

#[test]
fn timer_jitter_is_not_a_misfire_even_with_zero_grace() {
    let mut s = Scheduler::new(TimeZone::UTC);
    s.upsert(
        entry("news", "0 * * * *", 0),
        None,
        at("2026-05-01T10:00:00Z"),
    );
    let due = drain(&mut s, at("2026-05-01T11:00:00.300Z"));
    assert_eq!(
        due[0].kind,
        DueKind::Fire {
            late: Duration::from_millis(300)
        }
    );
}

#[test]
fn misfire_within_grace_fires_latest_and_reports_earlier_as_missed() {
    let mut s = hourly_since_ten("2026-05-01T12:03:00Z", 300);
    let due = drain(&mut s, at("2026-05-01T12:03:00Z"));
    assert_eq!(
        due,
        vec![
            Due {
                name: "news".into(),
                scheduled: at("2026-05-01T11:00:00Z"),
                kind: DueKind::Missed { count: 1 },
            },
            Due {
                name: "news".into(),
                scheduled: at("2026-05-01T12:00:00Z"),
                kind: DueKind::Fire {
                    late: Duration::from_secs(180)
                },
            },
        ]
    );
    assert_eq!(s.next_fire("news"), Some(at("2026-05-01T13:00:00Z")));
}

#[test]
fn misfire_beyond_grace_is_one_missed_with_count() {
    let mut s = hourly_since_ten("2026-05-01T12:10:00Z", 300);
    let due = drain(&mut s, at("2026-05-01T12:10:00Z"));
    assert_eq!(
        due,
        vec![Due {
            name: "news".into(),
            scheduled: at("2026-05-01T12:00:00Z"),
            kind: DueKind::Missed { count: 2 },
        }]
    );
    assert_eq!(s.next_fire("news"), Some(at("2026-05-01T13:00:00Z")));
    assert_eq!(s.poll_timeout(), Some(at("2026-05-01T13:00:00Z")));
}

#[test]
fn clock_jumping_forward_a_day_gives_missed_not_a_burst() {
    let mut s = Scheduler::new(TimeZone::UTC);
    s.upsert(
        entry("news", "0 * * * *", 300),
        None,
        at("2026-05-01T10:30:00Z"),
    );
    assert_eq!(drain(&mut s, at("2026-05-01T11:00:00Z")).len(), 1);
    let due = drain(&mut s, at("2026-05-02T11:30:00Z"));
    assert_eq!(
        due,
        vec![Due {
            name: "news".into(),
            scheduled: at("2026-05-02T11:00:00Z"),
            kind: DueKind::Missed { count: 24 },
        }]
    );
    assert_eq!(s.next_fire("news"), Some(at("2026-05-02T12:00:00Z")));
}

#[test]
fn per_second_schedule_missed_for_a_year_saturates_the_count() {
    let mut s = Scheduler::new(TimeZone::UTC);
    s.upsert(
        entry("tick", "* * * * * *", 60),
        Some(at("2025-05-01T00:00:00Z")),
        at("2026-05-01T00:00:00.500Z"),
    );
    let due = drain(&mut s, at("2026-05-01T00:00:00.500Z"));
    assert_eq!(
        due,
        vec![
            Due {
                name: "tick".into(),
                scheduled: at("2026-04-30T23:59:59Z"),
                kind: DueKind::Missed {
                    count: MISSED_COUNT_CAP - 1
                },
            },
            Due {
                name: "tick".into(),
                scheduled: at("2026-05-01T00:00:00Z"),
                kind: DueKind::Fire {
                    late: Duration::from_millis(500)
                },
            },
        ]
    );
    assert_eq!(s.next_fire("tick"), Some(at("2026-05-01T00:00:01Z")));
}

#[test]
fn disabled_entry_never_fires() {
    let mut s = Scheduler::new(TimeZone::UTC);
    let mut e = entry("news", "* * * * *", 300);
    e.enabled = false;
    s.upsert(
        e,
        Some(at("2026-05-01T09:00:00Z")),
        at("2026-05-01T10:00:00Z"),
    );
    assert_eq!(s.next_fire("news"), None);
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.poll(at("2026-05-02T10:00:00Z")), None);
    assert!(s.upcoming(at("2026-05-01T10:00:00Z"), 5).is_empty());
}

#[test]
fn disabling_drops_pending_items_and_enabling_does_not_catch_up() {
    let mut s = hourly_since_ten("2026-05-01T12:03:00Z", 300);
    assert!(s.poll(at("2026-05-01T12:03:00Z")).is_some()); // Missed; Fire still queued
    assert!(s.set_enabled("news", false, at("2026-05-01T12:03:00Z")));
    assert_eq!(s.poll(at("2026-05-01T12:03:00Z")), None);
    assert!(s.set_enabled("news", true, at("2026-05-01T15:30:00Z")));
    assert_eq!(s.next_fire("news"), Some(at("2026-05-01T16:00:00Z")));
    assert_eq!(s.poll(at("2026-05-01T15:30:00Z")), None);
    assert!(!s.set_enabled("nope", true, at("2026-05-01T15:30:00Z")));
}

#[test]
fn removed_entry_is_gone() {
    let mut s = hourly_since_ten("2026-05-01T12:03:00Z", 300);
    assert!(s.remove("news"));
    assert!(!s.remove("news"));
    assert_eq!(s.entry("news").map(|e| e.name.clone()), None);
    assert_eq!(s.names().count(), 0);
    assert_eq!(s.poll(at("2026-05-01T12:03:00Z")), None);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn upsert_replaces_an_entry() {
    let mut s = Scheduler::new(TimeZone::UTC);
    let now = at("2026-05-01T10:00:00Z");
    s.upsert(entry("news", "0 * * * *", 300), None, now);
    s.upsert(entry("news", "30 * * * *", 300), None, now);
    assert_eq!(s.names().collect::<Vec<_>>(), vec!["news"]);
    assert_eq!(s.entry("news").unwrap().cron.as_str(), "30 * * * *");
    assert_eq!(s.next_fire("news"), Some(at("2026-05-01T10:30:00Z")));
}

#[test]
fn upcoming_orders_fires_across_entries() {
    let z = tz("Asia/Ho_Chi_Minh");
    let mut s = Scheduler::new(z);
    let now = at("2026-05-01T05:00:00+07:00");
    s.upsert(entry("news", "0 6,18 * * *", 300), None, now);
    s.upsert(entry("bell", "30 */4 * * *", 300), None, now);
    s.upsert(entry("anthem", "0 6 * * 1", 300), None, now); // Mondays; May 4 2026
    let got = s.upcoming(now, 6);
    let want = [
        ("news", "2026-05-01T06:00:00+07:00"),
        ("bell", "2026-05-01T08:30:00+07:00"),
        ("bell", "2026-05-01T12:30:00+07:00"),
        ("bell", "2026-05-01T16:30:00+07:00"),
        ("news", "2026-05-01T18:00:00+07:00"),
        ("bell", "2026-05-01T20:30:00+07:00"),
    ];
    let want: Vec<(String, Timestamp)> = want.iter().map(|(n, t)| (n.to_string(), at(t))).collect();
    assert_eq!(got, want);
    assert_eq!(s.poll_timeout(), Some(at("2026-05-01T06:00:00+07:00")));
}

#[test]
fn several_due_entries_come_out_in_time_order() {
    let mut s = Scheduler::new(TimeZone::UTC);
    let start = at("2026-05-01T09:59:00Z");
    s.upsert(entry("b-late", "5 10 * * *", 600), None, start);
    s.upsert(entry("a-early", "0 10 * * *", 600), None, start);
    let due = drain(&mut s, at("2026-05-01T10:06:00Z"));
    let names: Vec<&str> = due.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, vec!["a-early", "b-late"]);
    assert!(due.iter().all(|d| matches!(d.kind, DueKind::Fire { .. })));
}

#[test]
fn dst_gap_fire_is_due_at_the_jump_in_scheduler() {
    let mut s = Scheduler::new(tz("Europe/Berlin"));
    s.upsert(
        entry("news", "30 2 * * *", 300),
        None,
        at("2026-03-28T12:00:00+01:00"),
    );
    assert_eq!(s.poll_timeout(), Some(at("2026-03-29T03:00:00+02:00")));
    let due = drain(&mut s, at("2026-03-29T03:00:00+02:00"));
    assert_eq!(due.len(), 1);
    assert_eq!(
        due[0].kind,
        DueKind::Fire {
            late: Duration::ZERO
        }
    );
    assert_eq!(s.next_fire("news"), Some(at("2026-03-30T02:30:00+02:00")));
}

#[test]
fn clock_set_back_far_replans_from_now() {
    let mut s = Scheduler::new(TimeZone::UTC);
    // The RTC said 2027; NTP corrects to 2026.
    s.upsert(
        entry("news", "0 * * * *", 300),
        None,
        at("2027-01-01T09:30:00Z"),
    );
    assert_eq!(drain(&mut s, at("2027-01-01T10:00:00Z")).len(), 1);
    assert_eq!(s.poll(at("2026-05-01T10:30:00Z")), None);
    assert_eq!(s.next_fire("news"), Some(at("2026-05-01T11:00:00Z")));
}

#[test]
fn clock_set_back_a_little_does_not_replay() {
    let mut s = Scheduler::new(TimeZone::UTC);
    s.upsert(
        entry("news", "0 * * * *", 300),
        None,
        at("2026-05-01T09:30:00Z"),
    );
    assert_eq!(drain(&mut s, at("2026-05-01T10:00:00Z")).len(), 1);
    assert_eq!(s.poll(at("2026-05-01T09:45:00Z")), None);
    assert_eq!(s.next_fire("news"), Some(at("2026-05-01T11:00:00Z")));
}
