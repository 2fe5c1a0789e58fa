//! The typed protocol reads what today's clients send and what today's
//! daemon answers (wire compatibility), and refuses bad input in words.

use serde_json::json;

use super::*;
use crate::proto::{OnBusy, Priority, ProgramId, ZoneSelection};

#[test]
fn every_method_is_listed_once_and_round_trips() {
    let mut names = METHODS.to_vec();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), METHODS.len());
    for name in METHODS {
        let params = match *name {
            "broadcast.start" => json!({"files": ["/m/a.mp3"], "zones": "all"}),
            "schedule.add" => json!({"name": "s", "cron": "0 6 * * *", "file": "/m/a.mp3", "zones": ["a"]}),
            "schedule.remove" | "schedule.enable" | "schedule.disable" => json!({"name": "s"}),
            "playlist.load" => json!({"name": "p", "file": "/m/p.m3u"}),
            "live.start" => json!({"zones": ["a"], "format": "s16le", "rate": 16000, "channels": 1}),
            "speakers.add" => json!({"name": "xa-dong", "zones": ["a"]}),
            "speakers.revoke" => json!({"name": "xa-dong"}),
            "zone.keys" => json!({"zone": "a"}),
            _ => Value::Null,
        };
        let request = Request::parse(name, params).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(request.method(), *name);
        assert_eq!(Request::parse(name, request.params()).unwrap(), request);
    }
}

#[test]
fn what_todays_cli_sends_parses() {
    let r = Request::parse(
        "broadcast.start",
        json!({"zones": ["thon-1"], "loop": true, "files": ["/m/a.mp3"], "priority": "emergency",
               "name": "lũ", "max_duration": "30m", "on_busy": "refuse"}),
    )
    .unwrap();
    let Request::Start(p) = r else { panic!("{r:?}") };
    assert_eq!(p.zones, ZoneSelection::Named(vec!["thon-1".into()]));
    assert_eq!(p.priority, Some(Priority::Emergency));
    assert_eq!(p.on_busy, Some(OnBusy::Refuse));
    assert_eq!(p.max_duration.map(|d| d.0.as_secs()), Some(1800));
    assert!(p.looped);
    let r = Request::parse("broadcast.stop", json!({"id": 4})).unwrap();
    assert_eq!(r, Request::Stop(StopParams { id: ProgramId::new(4), ..Default::default() }));
    let r = Request::parse("history", json!({"since": null, "limit": null})).unwrap();
    assert_eq!(r, Request::History(HistoryParams::default()));
    let r = Request::parse("endpoints.list", json!({"zone": null})).unwrap();
    assert_eq!(r, Request::EndpointsList(EndpointsList(EndpointsParams { zone: None })));
}

#[test]
fn bad_params_say_which_field_and_what_is_valid() {
    let err = |method: &str, params: Value| Request::parse(method, params).unwrap_err();
    let e = err("broadcast.start", json!({"files": ["a"], "zones": "all", "priority": "urgent"}));
    assert_eq!(e.code, RpcError::INVALID_PARAMS);
    assert!(e.message.contains("broadcast.start: priority: unknown priority \"urgent\"; valid: emergency"), "{}", e.message);
    let e = err("schedule.add", json!({"name": "s", "cron": "* * * * *", "file": "a", "zones": "all", "on_busy": "later"}));
    assert!(e.message.contains("on_busy: unknown on_busy \"later\"; valid: wait, refuse"), "{}", e.message);
    let e = err("broadcast.start", json!({"files": ["a"], "zones": "all", "max_duration": "soon"}));
    assert!(e.message.contains("max_duration: \"soon\" is not a duration"), "{}", e.message);
    let e = err("broadcast.stop", json!({"id": 0}));
    assert_eq!(e.code, RpcError::INVALID_PARAMS, "program 0 is no program");
    let e = err("status", json!({"verbose": true}));
    assert!(e.message.contains("unknown field `verbose`"), "{}", e.message);
    let e = err("broadcast.start", json!({"files": ["a"]}));
    assert!(e.message.contains("missing field `zones`"), "{}", e.message);
    let e = err("frobnicate", Value::Null);
    assert_eq!(e.code, RpcError::METHOD_NOT_FOUND);
}

#[test]
fn what_todays_daemon_answers_reads_as_the_typed_responses() {
    // Shapes as the daemon built them with json! before the protocol was typed.
    let status = json!({
        "version": "0.1.0", "config": "/etc/loa/loa.toml", "timezone": "Asia/Ho_Chi_Minh",
        "started_at": "2026-12-04T06:00:00+07:00", "uptime_secs": 5,
        "zones": [{"name": "thon-1", "packets_not_sent": 0, "group": "239.255.77.1:5004", "program": 3,
                   "priority": "scheduled", "endpoints": {"online": 1, "degraded": 0, "offline": 0, "unknown": 0, "unregistered": 0},
                   "security": "srtp"}],
        "programs": [{"id": 3, "name": "tin-tuc", "priority": "scheduled", "origin": "schedule:sang", "state": "playing",
                      "zones": ["thon-1"], "playing_on": ["thon-1"], "looped": false,
                      "item": {"index": 0, "count": 2, "file": "/m/a.mp3", "position_secs": 1.5, "duration_secs": 3.0,
                               "sha256": null, "gain_db": -2.5},
                      "created": "2026-12-03T23:00:00Z", "on_air_since": null}],
        "next": [{"schedule": "sang", "at": "2026-12-05T06:00:00+07:00", "zones": ["thon-1"]}],
        "network": {"interface": "127.0.0.1", "state": "ok", "error": null, "since": null, "down_secs": null,
                    "packets_not_sent": 0, "packets_not_sent_total": 0},
        "history": {"write_errors": 0, "last_error": null, "failing": null, "waiting_writes": 0, "lost_writes": 0,
                    "lost_rows": 0, "lost_since": null, "caught_up_at": null, "path": "/var/lib/loa/loa.db"},
        "sap": {"enabled": false, "address": "224.2.127.254:9875", "last_sent": null, "error": null},
    });
    let typed = response_of::<StatusParams>(status.clone()).unwrap();
    // Fields added since read as none happened (no stall), and are written.
    let mut now = status.clone();
    now["pacer"] = json!({"stalls": 0, "skipped_ticks": 0, "longest_stall_ms": 0});
    now["zones"][0]["stalls"] = json!(0);
    now["zones"][0]["skipped_ms"] = json!(0);
    now["zones"][0]["unauthenticated"] = json!(0);
    assert_eq!(serde_json::to_value(&typed).unwrap(), now);

    let schedule = json!({"name": "sang", "cron": "0 6 * * *", "target": "playlist:tin-tuc", "zones": "all",
        "priority": "scheduled", "enabled": true, "source": "config", "max_duration_secs": null,
        "misfire_grace_secs": 300, "on_preempt": "pause", "on_busy": "wait", "next": "2026-12-05T06:00:00+07:00"});
    let list = json!({"schedules": [schedule.clone()]});
    assert_eq!(serde_json::to_value(response_of::<ScheduleListParams>(list.clone()).unwrap()).unwrap(), list);
    let changed = json!({"schedule": schedule, "note": "until the next reload"});
    assert_eq!(serde_json::to_value(response_of::<ScheduleEnable>(changed.clone()).unwrap()).unwrap(), changed);

    let rows = json!({"timezone": "Asia/Ho_Chi_Minh", "rows": [{"id": 1, "program": 2, "program_name": "p",
        "source": "/m/a.mp3", "sha256": "ab", "zones": ["thon-1"], "priority": "announcement", "origin": "uid:0",
        "caller_uid": 0, "caller_pid": 42, "start": "2026-12-04T00:00:00Z", "end": "2026-12-04T00:00:03Z",
        "outcome": "completed", "error": null}]});
    let mut now = rows.clone();
    now["rows"][0]["skipped_ms"] = Value::Null;
    assert_eq!(serde_json::to_value(response_of::<HistoryParams>(rows.clone()).unwrap()).unwrap(), now);

    let endpoints = json!({"endpoints": [{"zone": "thon-1", "name": "loa-cho", "address": "127.0.0.2", "state": "online",
        "since_secs": 2.5, "loss_pct": 0.0, "jitter_ms": 1.2, "rtt_ms": null, "last_report_secs": 0.4,
        "registered": true, "cname": "speaker@127.0.0.2"}]});
    // An older daemon's answer reads; the transport and whether the
    // speaker joined loa itself (issue 15) are then unknown and false.
    let mut now = endpoints.clone();
    now["endpoints"][0]["transport"] = Value::Null;
    now["endpoints"][0]["joined"] = json!(false);
    assert_eq!(serde_json::to_value(response_of::<EndpointsList>(endpoints.clone()).unwrap()).unwrap(), now);

    for (method_answer, expected) in [
        (response_of::<StartParams>(json!({"id": 5, "zones": ["a"], "waiting": []})).map(|_| ()), Ok(())),
        (response_of::<StopParams>(json!({"stopped": [5, 6]})).map(|_| ()), Ok(())),
        (response_of::<PlaylistLoadParams>(json!({"name": "p", "items": 2, "missing": []})).map(|_| ()), Ok(())),
        (response_of::<ReloadParams>(json!({"zones_added": [], "zones_removed": ["x"], "schedules": 2, "notes": []})).map(|_| ()), Ok(())),
        (response_of::<ScheduleRemove>(json!({"removed": "s"})).map(|_| ()), Ok(())),
    ] {
        assert_eq!(method_answer, expected);
    }
    let playlists = json!({"playlists": [{"name": "p", "origin": "runtime", "source": "/m/p.m3u", "items": 2,
        "duration_secs": 6.0, "unknown_durations": 0, "shuffle": false, "loop": false, "error": null}]});
    assert_eq!(serde_json::to_value(response_of::<PlaylistListParams>(playlists.clone()).unwrap()).unwrap(), playlists);
}

#[test]
fn an_answer_of_another_shape_is_an_error_naming_the_field() {
    let err = response_of::<StatusParams>(json!({"version": 1})).unwrap_err();
    assert!(err.contains("answer to status") && err.contains("version"), "{err}");
}
