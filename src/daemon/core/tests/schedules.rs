//! Schedules: prepared ahead, on air at the instant, misfires, the one
//! validator for the config file and `schedule.add`.

use std::time::Duration;

use super::*;
use crate::store::ScheduleRecord;

const AT_SIX: &str = "[[schedule]]\nname = \"sang\"\ncron = \"0 0 6 * * *\"\nfile = \"news.wav\"\nzones = \"all\"\n";

fn restored_fire(name: &str, at: &str) -> Restored {
    Restored {
        schedules: Vec::new(),
        playlists: Vec::new(),
        last_fires: [(name.to_string(), at.parse().unwrap())].into_iter().collect(),
    }
}

#[test]
fn a_fire_is_prepared_two_seconds_ahead_and_takes_its_zones_on_the_instant() {
    let mut h = Harness::new(AT_SIX);
    h.advance(Duration::from_millis(7_999));
    assert!(h.jobs().is_empty(), "nothing before the 2 s lead");
    h.advance(Duration::from_millis(1));
    match &h.jobs()[..] {
        [(_, Job::Items { items: ItemSource::Config(path), .. })] => assert_eq!(path, &PathBuf::from("news.wav")),
        other => panic!("{other:?}"),
    }
    h.resolve(&["/media/news.wav"], None);
    h.ready(p(1), "/media/news.wav");
    assert!(h.assigns().is_empty(), "prefilled, waiting for its instant");
    h.advance(Duration::from_millis(1_949));
    assert!(h.assigns().is_empty());
    h.advance(Duration::from_millis(1));
    let fire = h.start + Duration::from_secs(10);
    assert_eq!(h.assigns(), vec![(z(0), Some(p(1)), Some(fire)), (z(1), Some(p(1)), Some(fire))], "AssignAt the fire instant");
    h.advance(Duration::from_millis(50));
    assert_eq!(h.writes().pop(), Some(StoreWrite::LastFire { schedule: "sang".into(), at: "2026-12-04T06:00:00Z".parse().unwrap() }));
    assert_eq!(h.spawned().len(), 1, "a prepared fire is not started twice");
}

#[test]
fn a_fire_missed_within_its_grace_plays_late() {
    let mut h = Harness::restored(
        "[[schedule]]\nname = \"sang\"\ncron = \"0 59 5 * * *\"\nfile = \"news.wav\"\nzones = \"all\"\n",
        restored_fire("sang", "2026-12-03T05:59:00Z"),
    );
    h.advance(Duration::ZERO);
    assert_eq!(h.jobs().len(), 1, "50 s late is within the default 5 min grace");
    assert!(h.recorded().is_empty());
    h.resolve(&["/media/news.wav"], None);
    h.ready(p(1), "/media/news.wav");
    assert_eq!(h.assigns(), vec![(z(0), Some(p(1)), None), (z(1), Some(p(1)), None)], "at once");
}

#[test]
fn fires_missed_past_their_grace_are_one_missed_row() {
    let mut h = Harness::restored(
        "[[schedule]]\nname = \"tin\"\ncron = \"0 * * * * *\"\nfile = \"tin.wav\"\nzones = [\"thon-1\"]\nmisfire_grace = \"30s\"\n",
        restored_fire("tin", "2026-12-04T05:50:00Z"),
    );
    h.advance(Duration::ZERO);
    assert!(h.jobs().is_empty());
    let recorded = h.recorded();
    assert_eq!(recorded.len(), 1, "{recorded:#?}");
    let (row, outcome, error) = &recorded[0];
    assert_eq!((row.program, row.program_name.as_str(), *outcome), (None, "tin", Outcome::Missed));
    assert_eq!(row.start, "2026-12-04T05:59:00Z".parse().unwrap());
    let error = error.as_deref().unwrap();
    assert!(error.starts_with("missed 9 fire(s), the last at 2026-12-04 05:59:00 UTC"), "{error}");
    assert!(error.ends_with("is past misfire_grace (30s)"), "{error}");
}

#[test]
fn a_fire_while_the_previous_broadcast_is_on_is_a_missed_row() {
    let mut h = Harness::new(
        "[[schedule]]\nname = \"tin\"\ncron = \"*/10 * * * * *\"\nfile = \"tin.wav\"\nzones = [\"thon-1\"]\n",
    );
    h.advance(Duration::from_secs(8));
    h.resolve(&["/media/tin.wav"], None);
    h.ready(p(1), "/media/tin.wav");
    h.advance(Duration::from_secs(2));
    h.progress(p(1), 0, 0);
    h.advance(Duration::from_secs(10));
    assert_eq!(h.spawned().len(), 1);
    let (row, outcome, error) = h.recorded().pop().expect("a missed row");
    assert_eq!((row.program, outcome), (None, Outcome::Missed));
    assert_eq!(error.as_deref(), Some("fire at 06:00:10 skipped: the previous broadcast of this schedule (#1) is still on"));
}

#[test]
fn a_fire_whose_previous_broadcast_ends_within_the_lead_is_prepared_and_on_its_instant() {
    // Every 2 s (the lead itself), half a second of tone: each fire's
    // preparation begins while the previous broadcast is still on.
    let mut h = Harness::new("[[schedule]]\nname = \"tin\"\ncron = \"*/2 * * * * *\"\nfile = \"tin.wav\"\nzones = [\"thon-1\"]\n");
    h.advance(Duration::ZERO);
    for k in 1..=3u64 {
        h.resolve(&["/media/tin.wav"], None);
        h.ready(p(k), "/media/tin.wav");
        h.advance(Duration::from_secs(2));
        let instant = h.start + Duration::from_secs(2 * k);
        assert_eq!(h.assigns().last(), Some(&(z(0), Some(p(k)), Some(instant))), "fire {k} on its instant");
        h.progress(p(k), 0, 0);
        assert!(h.jobs().is_empty(), "fire {} waits while #{k} is on", k + 1);
        h.advance(Duration::from_millis(500));
        h.pacer(PacerInput::ProgramEnded { program: p(k) });
        h.advance(Duration::ZERO);
        assert_eq!(h.jobs().len(), 1, "fire {} prepared as soon as #{k} ended", k + 1);
    }
    assert!(h.recorded().is_empty(), "no fire missed: {:?}", h.recorded());
}

#[test]
fn the_schedule_is_busy_while_a_branch_of_its_programme_plays() {
    let mut h = Harness::new(
        "[[schedule]]\nname = \"tin\"\ncron = \"*/10 * * * * *\"\nfile = \"tin.wav\"\nzones = \"all\"\n",
    );
    h.advance(Duration::from_secs(8));
    h.resolve(&["/media/tin.wav"], None);
    h.ready(p(1), "/media/tin.wav");
    h.advance(Duration::from_secs(2));
    h.progress(p(1), 0, 0);
    h.on_air(play_params("alert.wav", &["thon-1"], "emergency"), "/media/alert.wav");
    h.pacer(PacerInput::ZoneLeft { zone: z(0), program: p(1), item: 0, position: Duration::from_millis(600) });
    h.pacer(PacerInput::ProgramEnded { program: p(1) });
    assert!(h.core.programs.contains_key(&p(3)), "the branch waits for thon-1");
    h.advance(Duration::from_secs(10));
    let (_, outcome, error) = h.recorded().pop().expect("a missed row");
    assert_eq!(outcome, Outcome::Missed);
    assert!(error.unwrap().ends_with("(#3) is still on"));
}

#[test]
fn schedule_add_is_answered_once_saved() {
    let mut h = Harness::new("");
    let id = h.request("schedule.add", json!({"name": "chieu", "cron": "0 17 * * *", "say": "  Xin chào  ", "zones": ["thon-1"]}));
    let Some(Effect::StoreCall { request, call: StoreCall::SaveSchedule(record) }) = h.effects.pop() else {
        panic!("{:#?}", h.effects)
    };
    assert_eq!((request, record.say.as_deref(), record.on_busy.as_str()), (id, Some("Xin chào"), "wait"));
    assert!(h.reply(id).is_none(), "not before it is saved");
    h.handle(Input::Stored { request: id, result: Ok(Stored::Done) });
    match h.reply(id) {
        Some(Ok(Response::ScheduleAdd(changed))) => {
            assert_eq!(changed.schedule.target, "say:vi:\"Xin chào\"");
            assert_eq!(changed.schedule.next.as_deref(), Some("2026-12-04T17:00:00+00:00"));
        }
        other => panic!("{other:?}"),
    }
    let again = h.request("schedule.add", json!({"name": "chieu", "cron": "0 18 * * *", "say": "Chào", "zones": "all"}));
    assert_eq!(h.refused(again), "schedule \"chieu\" exists; remove it first");
}

#[test]
fn a_schedule_whose_save_fails_is_active_and_says_so() {
    let mut h = Harness::new("");
    let id = h.request("schedule.add", json!({"name": "chieu", "cron": "0 17 * * *", "say": "Chào", "zones": "all"}));
    h.handle(Input::Stored { request: id, result: Err("the disk is full".into()) });
    assert_eq!(
        h.refused(id),
        "internal error: schedule \"chieu\" is active but was not saved, so it will be gone after a restart: the disk is full"
    );
    assert!(h.core.schedules.contains_key("chieu"));
}

#[test]
fn a_schedules_file_from_a_client_is_checked_in_the_media_roots_first() {
    let mut h = Harness::new("");
    let id = h.request("schedule.add", json!({"name": "s", "cron": "0 6 * * *", "file": "tin.wav", "zones": "all"}));
    assert!(h.reply(id).is_none(), "answered once saved");
    let (job, what) = h.jobs().pop().unwrap();
    assert_eq!(what, Job::SocketPath { path: "tin.wav".into(), media_roots: vec!["/media".into()] });
    assert!(!h.core.schedules.contains_key("s"));
    h.handle(Input::Resolved { job, result: Ok(Resolved::Path("/media/tin.wav".into())) });
    let Some(Effect::StoreCall { call: StoreCall::SaveSchedule(record), .. }) = h.effects.pop() else { panic!() };
    assert_eq!(record.file.as_deref(), Some("/media/tin.wav"));
    let bad = h.request("schedule.add", json!({"name": "t", "cron": "0 6 * * *", "file": "../x.wav", "zones": "all"}));
    let (job, _) = h.jobs().pop().unwrap();
    h.handle(Input::Resolved { job, result: Err("../x.wav: \"..\" is not allowed".into()) });
    assert_eq!(h.refused(bad), "../x.wav: \"..\" is not allowed");
}

/// The same bad schedule through the config file and through
/// `schedule.add` says the same words.
#[test]
fn the_config_and_schedule_add_refuse_the_same_schedules_in_the_same_words() {
    let long = "a".repeat(5001);
    // (TOML lines, schedule.add params), each with one thing wrong.
    let cases: Vec<(String, serde_json::Value)> = vec![
        ("name = \"x y\"\ncron = \"0 6 * * *\"\nfile = \"a.wav\"\nzones = \"all\"".into(), json!({"name": "x y", "cron": "0 6 * * *", "file": "a.wav", "zones": "all"})),
        ("name = \"x\"\ncron = \"61 * * * *\"\nfile = \"a.wav\"\nzones = \"all\"".into(), json!({"name": "x", "cron": "61 * * * *", "file": "a.wav", "zones": "all"})),
        ("name = \"x\"\ncron = \"0 6 * * *\"\nfile = \"a.wav\"\nsay = \"Chào\"\nzones = \"all\"".into(), json!({"name": "x", "cron": "0 6 * * *", "file": "a.wav", "say": "Chào", "zones": "all"})),
        ("name = \"x\"\ncron = \"0 6 * * *\"\nzones = \"all\"".into(), json!({"name": "x", "cron": "0 6 * * *", "zones": "all"})),
        ("name = \"x\"\ncron = \"0 6 * * *\"\nsay = \"  \"\nzones = \"all\"".into(), json!({"name": "x", "cron": "0 6 * * *", "say": "  ", "zones": "all"})),
        (format!("name = \"x\"\ncron = \"0 6 * * *\"\nsay = \"{long}\"\nzones = \"all\""), json!({"name": "x", "cron": "0 6 * * *", "say": long, "zones": "all"})),
        ("name = \"x\"\ncron = \"0 6 * * *\"\nsay = \"Chào\"\nvoice = \"vi;rm\"\nzones = \"all\"".into(), json!({"name": "x", "cron": "0 6 * * *", "say": "Chào", "voice": "vi;rm", "zones": "all"})),
        ("name = \"x\"\ncron = \"0 6 * * *\"\nfile = \"a.wav\"\nvoice = \"vi\"\nzones = \"all\"".into(), json!({"name": "x", "cron": "0 6 * * *", "file": "a.wav", "voice": "vi", "zones": "all"})),
        ("name = \"x\"\ncron = \"0 6 * * *\"\nfile = \"a.wav\"\nzones = [\"thon-9\"]".into(), json!({"name": "x", "cron": "0 6 * * *", "file": "a.wav", "zones": ["thon-9"]})),
        ("name = \"x\"\ncron = \"0 6 * * *\"\nfile = \"a.wav\"\nzones = \"thon-1,thon-2\"".into(), json!({"name": "x", "cron": "0 6 * * *", "file": "a.wav", "zones": "thon-1,thon-2"})),
        ("name = \"x\"\ncron = \"0 6 * * *\"\nplaylist = \"nope\"\nzones = \"all\"".into(), json!({"name": "x", "cron": "0 6 * * *", "playlist": "nope", "zones": "all"})),
        ("name = \"x\"\ncron = \"0 6 * * *\"\nfile = \"a.wav\"\nzones = \"all\"\npriority = \"urgent\"".into(), json!({"name": "x", "cron": "0 6 * * *", "file": "a.wav", "zones": "all", "priority": "urgent"})),
        ("name = \"x\"\ncron = \"0 6 * * *\"\nfile = \"a.wav\"\nzones = \"all\"\non_busy = \"later\"".into(), json!({"name": "x", "cron": "0 6 * * *", "file": "a.wav", "zones": "all", "on_busy": "later"})),
        ("name = \"x\"\ncron = \"0 6 * * *\"\nfile = \"a.wav\"\nzones = \"all\"\non_preempt = \"skip\"".into(), json!({"name": "x", "cron": "0 6 * * *", "file": "a.wav", "zones": "all", "on_preempt": "skip"})),
        ("name = \"x\"\ncron = \"0 6 * * *\"\nfile = \"a.wav\"\nzones = \"all\"\nmax_duration = \"0s\"".into(), json!({"name": "x", "cron": "0 6 * * *", "file": "a.wav", "zones": "all", "max_duration": "0s"})),
        ("name = \"x\"\ncron = \"0 6 * * *\"\nfile = \"a.wav\"\nzones = \"all\"\nmax_duration = \"soon\"".into(), json!({"name": "x", "cron": "0 6 * * *", "file": "a.wav", "zones": "all", "max_duration": "soon"})),
        ("name = \"x\"\ncron = \"0 6 * * *\"\nfile = \"a.wav\"\nzones = \"all\"\nmisfire_grace = \"later\"".into(), json!({"name": "x", "cron": "0 6 * * *", "file": "a.wav", "zones": "all", "misfire_grace": "later"})),
    ];
    for (toml, params) in cases {
        let text = format!(
            "[network]\ninterface = \"127.0.0.1\"\n[[zone]]\nname = \"thon-1\"\ngroup = \"239.255.77.1:5004\"\n\
             [[zone]]\nname = \"thon-2\"\ngroup = \"239.255.77.2:5004\"\n[[schedule]]\n{toml}\n"
        );
        let config_errors = Config::parse(&text, "loa.toml").expect_err(&toml).0;
        assert_eq!(config_errors.len(), 1, "{toml}: {config_errors:#?}");
        let from_config = config_errors[0].message.clone();
        let mut h = Harness::new("");
        let api = match Request::parse("schedule.add", params.clone()) {
            Err(e) => e.message,
            Ok(request) => {
                h.handle(Input::Request { id: RequestId(1), caller: CALLER, request });
                h.refused(RequestId(1))
            }
        };
        let from_api = api.strip_prefix("invalid params: schedule.add: ").unwrap_or_else(|| panic!("{api}"));
        assert_eq!(from_api, from_config, "{params}");
    }
    // No grace at all, however written, in both.
    for grace in ["0", "0s"] {
        let c = config(&format!("[[schedule]]\nname = \"x\"\ncron = \"0 6 * * *\"\nfile = \"a.wav\"\nzones = \"all\"\nmisfire_grace = \"{grace}\"\n"));
        assert_eq!(c.schedules[0].misfire_grace, Duration::ZERO);
        let mut h = Harness::new("");
        h.request("schedule.add", json!({"name": "x", "cron": "0 6 * * *", "say": "Chào", "zones": "all", "misfire_grace": grace}));
        assert_eq!(h.core.schedules["x"].spec.misfire_grace, Duration::ZERO, "{grace}");
    }
}

#[test]
fn a_stored_schedule_that_breaks_the_rules_is_not_installed_and_can_be_removed() {
    let record = ScheduleRecord {
        name: "cu".into(),
        cron: "0 6 * * *".into(),
        playlist: None,
        file: Some("/media/a.wav".into()),
        say: None,
        voice: None,
        zones: vec!["all".into()],
        priority: Priority::Scheduled,
        max_duration_secs: None,
        misfire_grace_secs: 300,
        enabled: true,
        on_preempt: "pause".into(),
        on_busy: "sometimes".into(),
        created_by: None,
    };
    let good = ScheduleRecord { name: "moi".into(), on_busy: "refuse".into(), ..record.clone() };
    let restored = Restored { schedules: vec![record, good], playlists: Vec::new(), last_fires: HashMap::new() };
    let mut h = Harness::restored("", restored);
    assert!(!h.core.schedules.contains_key("cu"), "never a silent default");
    assert_eq!(h.core.broken["cu"], "on_busy: unknown on_busy \"sometimes\"; valid: wait, refuse");
    assert_eq!(h.core.schedules["moi"].spec.on_busy, crate::proto::OnBusy::Refuse);
    let id = h.request("schedule.remove", json!({"name": "cu"}));
    let Some(Effect::StoreCall { call: StoreCall::DeleteSchedule(name), .. }) = h.effects.pop() else { panic!() };
    assert_eq!(name, "cu");
    h.handle(Input::Stored { request: id, result: Ok(Stored::Done) });
    match h.reply(id) {
        Some(Ok(Response::ScheduleRemove(r))) => assert_eq!(r.removed, "cu"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_config_schedule_switched_off_says_until_when() {
    let mut h = Harness::new(AT_SIX);
    let id = h.request("schedule.disable", json!({"name": "sang"}));
    match h.reply(id) {
        Some(Ok(Response::ScheduleDisable(changed))) => {
            assert!(!changed.schedule.enabled && changed.schedule.next.is_none());
            assert_eq!(
                changed.note.as_deref(),
                Some("until the next reload or restart; set enabled = false in /etc/loa/loa.toml to keep it")
            );
        }
        other => panic!("{other:?}"),
    }
    h.advance(Duration::from_secs(20));
    assert!(h.jobs().is_empty(), "a disabled schedule does not fire");
    let remove = h.request("schedule.remove", json!({"name": "sang"}));
    assert_eq!(h.refused(remove), "schedule \"sang\" is defined in /etc/loa/loa.toml; remove it there and reload");
}
