//! Live, speech, status, reload, history and the network watch.

use std::time::Duration;

use super::*;
use crate::proto::broadcast::LiveStartParams;
use crate::proto::health::Endpoint;
use crate::proto::status::{HistoryHealth, ProgramState};
use crate::proto::{EndpointState, PcmEncoding, ZoneSelection};

fn live_params(zones: &[&str], priority: Option<Priority>) -> LiveStartParams {
    LiveStartParams {
        zones: ZoneSelection::Named(zones.iter().map(|z| z.to_string()).collect()),
        priority,
        name: None,
        max_duration: None,
        source: Some("stdin".into()),
        format: PcmEncoding::S16le,
        rate: 16_000,
        channels: 1,
    }
}

fn snapshot(endpoints: Vec<Endpoint>) -> Snapshot {
    Snapshot { endpoints, history: HistoryHealth::default(), sap: SapState::default(), unauthenticated: Default::default() }
}

fn endpoint(zone: &str, name: &str, state: EndpointState) -> Endpoint {
    Endpoint {
        zone: zone.into(),
        name: name.into(),
        address: "127.0.0.2".into(),
        state,
        since_secs: None,
        loss_pct: None,
        jitter_ms: None,
        rtt_ms: None,
        last_report_secs: None,
        registered: true,
        cname: None,
        transport: None,
        joined: false,
    }
}

#[test]
fn live_waits_behind_an_emergency_then_goes_on_air() {
    let mut h = Harness::new("");
    let (_, alert) = h.on_air(play_params("alert.wav", &["thon-1"], "emergency"), "/media/alert.wav");
    let conn = ConnId(5);
    h.handle(Input::LiveStart { id: RequestId(50), caller: CALLER, params: live_params(&["thon-1"], None), conn });
    assert!(matches!(h.jobs().pop(), Some((_, Job::Items { items: ItemSource::Live, .. }))));
    h.resolve(&["<live input>"], None);
    let (live, worker) = h.spawned().pop().unwrap();
    assert_eq!((worker.live, worker.queue_frames, worker.prefill_frames, worker.urgent), (Some(conn), 1, 1, true));
    h.ready(live, "<live input>");
    let started = h.started(RequestId(50));
    assert_eq!((started.zones.len(), started.waiting), (0, vec!["thon-1".to_string()]), "the client says WAITING");
    h.pacer(PacerInput::ProgramEnded { program: alert });
    assert_eq!(h.assigns().last(), Some(&(z(0), Some(live), None)));
    h.pacer(PacerInput::FirstPacket { program: live, zone: z(0), at: h.now.mono });
    h.progress(live, 0, 0);
    assert_eq!(h.live_notes(), vec![(conn, LiveNote::Playing { zone: "thon-1".into() })]);
    assert_eq!(h.begun().pop().unwrap().1.source, "live:stdin s16le 16000 Hz mono");
    h.request("broadcast.stop", json!({"id": live.get()}));
    let ended = LiveNote::Ended { outcome: Outcome::Stopped, error: Some("stopped by uid 1000".into()) };
    assert_eq!(h.live_notes().pop(), Some((conn, ended)));
    assert!(matches!(h.effects.iter().rev().find(|e| matches!(e, Effect::LiveDone { .. })), Some(Effect::LiveDone { conn: c }) if *c == conn));
}

#[test]
fn live_input_below_live_priority_is_refused_and_its_connection_let_go() {
    let mut h = Harness::new("");
    let conn = ConnId(6);
    h.handle(Input::LiveStart { id: RequestId(60), caller: CALLER, params: live_params(&["thon-1"], Some(Priority::Announcement)), conn });
    assert_eq!(
        h.refused(RequestId(60)),
        "invalid params: live input goes on air as live or emergency, not announcement; use loa play for recorded announcement broadcasts"
    );
    assert!(matches!(h.effects.last(), Some(Effect::LiveDone { conn: c }) if *c == conn));
}

#[test]
fn a_say_program_starts_once_its_speech_is_synthesised() {
    let mut h = Harness::new("[tts]\nvoice = \"vi-vn-x-central\"\n");
    let request = h.play(json!({"say": "Xin chào bà con", "zones": "all"}));
    match &h.jobs()[..] {
        [(_, Job::Items { items: ItemSource::Speech { voice, text, dir, .. }, .. })] => {
            assert_eq!((voice.as_str(), text.as_str(), dir), ("vi-vn-x-central", "Xin chào bà con", &PathBuf::from("/state/tts")));
        }
        other => panic!("{other:?}"),
    }
    assert!(h.spawned().is_empty(), "espeak-ng first");
    h.resolve(&["/state/tts/ab.wav"], None);
    h.ready(p(1), "/state/tts/ab.wav");
    assert_eq!(h.started(request).zones, vec!["thon-1", "thon-2"]);
    h.progress(p(1), 0, 0);
    let (_, row) = h.begun().pop().unwrap();
    assert_eq!((row.source.as_str(), row.program_name.as_str()), ("say:vi-vn-x-central:\"Xin chào bà con\"", "say"));
}

#[test]
fn speech_that_cannot_be_synthesised_is_a_failed_row_and_a_refusal() {
    let mut h = Harness::new("");
    let request = h.play(json!({"say": "Chào", "voice": "vi-vn-x-south", "zones": ["thon-1"]}));
    let (job, _) = h.jobs().pop().unwrap();
    let message = "cannot synthesise speech: espeak-ng is not installed";
    h.handle(Input::Resolved { job, result: Err(message.into()) });
    assert_eq!(h.refused(request), message);
    let (row, outcome, error) = h.recorded().pop().unwrap();
    assert_eq!((row.source.as_str(), outcome, error.as_deref()), ("say:vi-vn-x-south:\"Chào\"", Outcome::Failed, Some(message)));
    let bad = h.play(json!({"say": "Chào", "voice": "vi;rm", "zones": ["thon-1"]}));
    assert!(h.refused(bad).starts_with("invalid params: voice \"vi;rm\" is not a voice name"));
}

#[test]
fn status_is_built_from_the_cores_state_and_the_snapshot() {
    let mut h = Harness::new("[[schedule]]\nname = \"sang\"\ncron = \"0 0 6 * * *\"\nfile = \"n.wav\"\nzones = [\"thon-2\"]\n");
    let (_, news) = h.on_air(play_params("news.wav", &["thon-1", "thon-2"], "scheduled"), "/media/news.wav");
    h.progress(news, 0, 1500);
    h.on_air(play_params("alert.wav", &["thon-1", "thon-2"], "emergency"), "/media/alert.wav");
    let (_, waiting) = h.on_air(play_params("bg.wav", &["thon-2"], "background"), "/media/bg.wav");
    h.advance(Duration::from_secs(3));
    let id = h.request("status", json!({}));
    assert!(matches!(h.effects.last(), Some(Effect::Snapshot { request }) if *request == id));
    let endpoints = vec![endpoint("thon-1", "a", EndpointState::Online), endpoint("thon-1", "b", EndpointState::Offline)];
    h.handle(Input::Snapshot { request: id, snapshot: snapshot(endpoints) });
    let Some(Ok(Response::Status(status))) = h.reply(id) else { panic!() };
    assert_eq!((status.uptime_secs, status.timezone.as_str()), (3, "UTC"));
    assert_eq!(status.started_at, "2026-12-04T05:59:50+00:00");
    assert_eq!(status.zones[0].program, Some(p(2)));
    assert_eq!((status.zones[0].endpoints.online, status.zones[0].endpoints.offline), (1, 1));
    assert_eq!(status.zones[1].group.as_deref(), Some("239.255.77.2:5004"));
    let states: Vec<ProgramState> = status.programs.iter().map(|p| p.state).collect();
    assert_eq!(states, [ProgramState::Paused, ProgramState::Playing, ProgramState::Waiting]);
    let item = status.programs[0].item.as_ref().unwrap();
    assert_eq!((item.position_secs, item.gain_db, item.sha256.as_deref()), (1.5, Some(-2.0), Some("sha-0")));
    assert_eq!(status.programs[2].id, waiting);
    assert_eq!(status.next[0].schedule, "sang");
    assert_eq!((status.next[0].at.as_str(), status.next[0].zones.clone()), ("2026-12-04T06:00:00+00:00", vec!["thon-2".to_string()]));
    assert_eq!(status.network.state, crate::proto::status::NetState::Ok);
}

#[test]
fn endpoints_of_one_zone_and_an_unknown_zone_refused() {
    let mut h = Harness::new("");
    let id = h.request("endpoints.list", json!({"zone": "thon-2"}));
    let endpoints = vec![endpoint("thon-1", "a", EndpointState::Online), endpoint("thon-2", "b", EndpointState::Unknown)];
    h.handle(Input::Snapshot { request: id, snapshot: snapshot(endpoints) });
    match h.reply(id) {
        Some(Ok(Response::EndpointsList(list))) => assert_eq!(list.endpoints.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["b"]),
        other => panic!("{other:?}"),
    }
    let bad = h.request("endpoints.list", json!({"zone": "thon-9"}));
    assert_eq!(h.refused(bad), "unknown zone \"thon-9\"; zones: thon-1, thon-2");
}

#[test]
fn reload_adds_a_zone_and_retires_one_and_programs_on_kept_zones_are_untouched() {
    let mut h = Harness::new("");
    let (_, one) = h.on_air(play_params("a.wav", &["thon-1"], "announcement"), "/media/a.wav");
    let (_, two) = h.on_air(play_params("b.wav", &["thon-1", "thon-2"], "scheduled"), "/media/b.wav");
    let before = h.effects.len();
    let id = h.request("config.reload", json!({}));
    assert!(matches!(h.effects.last(), Some(Effect::LoadConfig { request: Some(r), .. }) if *r == id));
    let text = "[network]\ninterface = \"127.0.0.1\"\n[daemon]\ntimezone = \"UTC\"\nstate_dir = \"/state\"\nmedia_roots = [\"/media\"]\n\
                [[zone]]\nname = \"thon-1\"\ngroup = \"239.255.77.1:5004\"\n[[zone]]\nname = \"thon-3\"\ngroup = \"239.255.77.3:5004\"\n";
    let new = Config::parse(text, "loa.toml").unwrap();
    h.handle(Input::ConfigLoaded { request: Some(id), caller: Some(CALLER), result: Ok(new) });
    let Some(Ok(Response::Reload(summary))) = h.reply(id) else { panic!("{:#?}", h.effects) };
    assert_eq!((summary.zones_added, summary.zones_removed), (vec!["thon-3".to_string()], vec!["thon-2".to_string()]));
    let after: Vec<&Effect> = h.effects[before..].iter().collect();
    assert!(after.iter().any(|e| matches!(e, Effect::Pacer(PacerCmd::RetireZone { zone }) if *zone == z(1))));
    assert!(after.iter().any(|e| matches!(e, Effect::AddZone { zone, config, .. } if *zone == z(2) && config.name == "thon-3")));
    assert!(after.iter().any(|e| matches!(e, Effect::Health(HealthCmd::Reconfigure(_)))));
    assert!(after.iter().any(|e| matches!(e, Effect::Sap(_))));
    // thon-1 keeps its program: no command touches it or either program.
    assert!(!after.iter().any(|e| matches!(e, Effect::Pacer(PacerCmd::Assign { zone, .. }) if *zone == z(0))));
    assert!(!after.iter().any(|e| matches!(e, Effect::Pacer(PacerCmd::RemoveProgram { .. }) | Effect::StopWorker { .. })));
    assert_eq!(h.core.arbiter.owner(z(0)), Some(one));
    assert_eq!(h.core.programs[&two].zones, vec![z(0)], "the retired zone left the program");
    let (_, three) = h.on_air(play_params("c.wav", &["thon-3"], "announcement"), "/media/c.wav");
    assert_eq!(h.assigns().last(), Some(&(z(2), Some(three), None)));
}

#[test]
fn a_bad_new_config_is_refused_and_the_old_one_stays() {
    let mut h = Harness::new("");
    let id = h.request("config.reload", json!({}));
    let errors = Config::parse("[network]\ninterface = \"x\"\n", "loa.toml").unwrap_err();
    h.handle(Input::ConfigLoaded { request: Some(id), caller: Some(CALLER), result: Err(errors) });
    let Some(Err(e)) = h.reply(id) else { panic!() };
    assert!(e.message.starts_with("the new config is not valid; the old one stays in effect:\nloa.toml:"), "{}", e.message);
    assert!(e.message.contains("\nloa.toml:2:13: interface \"x\" is not an IPv4 address"), "{}", e.message);
    let data = e.data.unwrap();
    assert!(data["errors"].as_array().unwrap().iter().any(|l| l.as_str().unwrap().starts_with("loa.toml:2:13: ")), "{data}");
    assert_eq!(h.core.live_zone_names(), ["thon-1", "thon-2"]);
}

#[test]
fn history_asks_the_store_and_answers_in_the_daemons_zone() {
    let mut h = Harness::new("");
    let id = h.request("history", json!({"since": "2h"}));
    let Some(Effect::StoreCall { call: StoreCall::History { since, limit }, .. }) = h.effects.pop() else { panic!() };
    assert_eq!((since, limit), (Some("2026-12-04T03:59:50Z".parse().unwrap()), Some(1000)));
    h.handle(Input::Stored { request: id, result: Ok(Stored::History(Vec::new())) });
    match h.reply(id) {
        Some(Ok(Response::History(history))) => assert_eq!(history.timezone, "UTC"),
        other => panic!("{other:?}"),
    }
    let bad = h.request("history", json!({"since": "yesterday-ish"}));
    assert!(h.refused(bad).contains("since \"yesterday-ish\" is not a date"));
}

#[test]
fn a_loaded_playlist_is_saved_then_answered_and_can_be_played() {
    let mut h = Harness::new("");
    let id = h.request("playlist.load", json!({"name": "tin", "file": "tin.m3u"}));
    let (job, what) = h.jobs().pop().unwrap();
    assert_eq!(what, Job::PlaylistLoad { file: "tin.m3u".into(), media_roots: vec!["/media".into()] });
    let result = Ok(Resolved::Playlist { file: "/media/tin.m3u".into(), items: vec!["/media/a.wav".into()], missing: vec!["/media/b.wav".into()] });
    h.handle(Input::Resolved { job, result });
    h.handle(Input::Stored { request: id, result: Ok(Stored::Done) });
    match h.reply(id) {
        Some(Ok(Response::PlaylistLoad(loaded))) => assert_eq!((loaded.items, loaded.missing), (1, vec!["/media/b.wav".to_string()])),
        other => panic!("{other:?}"),
    }
    h.play(json!({"playlist": "tin", "zones": "all"}));
    assert!(matches!(h.jobs().pop(), Some((_, Job::Items { items: ItemSource::Runtime(_), .. }))));
    let bad = h.request("playlist.load", json!({"name": "x y", "file": "tin.m3u"}));
    assert!(h.refused(bad).contains("playlist name \"x y\" may only use"));
}

#[test]
fn a_failing_interface_tells_health_the_zones_are_silent_and_recovery_rejoins() {
    let mut h = Harness::new("");
    h.on_air(play_params("a.wav", &["thon-1"], "announcement"), "/media/a.wav");
    let before = h.effects.len();
    let target = "239.255.77.1:5004".parse().unwrap();
    let gone = std::io::Error::from_raw_os_error(libc::EADDRNOTAVAIL);
    h.handle(Input::SendFailing { errno: Some(libc::ENETUNREACH), target, address: Err(gone) });
    let silent: Vec<_> = h.effects[before..]
        .iter()
        .filter_map(|e| match e {
            Effect::Health(HealthCmd::ZoneSending { zone, sending }) => Some((zone.clone(), *sending)),
            _ => None,
        })
        .collect();
    assert_eq!(silent, [("thon-1".to_string(), false), ("thon-2".to_string(), false)]);
    h.advance(Duration::from_secs(1));
    assert!(matches!(h.effects.last(), Some(Effect::ProbeAddress)), "the address is checked once a second");
    h.handle(Input::AddressProbed(Ok(())));
    h.pacer(PacerInput::NotSent { zone: z(0), count: 40 });
    h.pacer(PacerInput::Sending);
    assert!(h.effects.iter().any(|e| matches!(e, Effect::Health(HealthCmd::Rejoin))));
    assert!(matches!(h.effects.last(), Some(Effect::Health(HealthCmd::ZoneSending { sending: false, .. }))));
    assert_eq!(h.core.net.not_sent(0), 40);
}

#[test]
fn without_its_address_at_start_the_core_asks_for_a_socket_once_it_appears() {
    let now = Now { mono: Instant::now(), wall: start_wall() };
    let restored = Restored { schedules: Vec::new(), playlists: Vec::new(), last_fires: HashMap::new() };
    let mut core = Core::new(config(""), "/etc/loa/loa.toml".into(), restored, false, now);
    while core.poll_effect().is_some() {}
    let later = now.after(Duration::from_secs(1));
    core.handle_timeout(later);
    assert!(matches!(core.poll_effect(), Some(Effect::ProbeAddress)));
    core.handle(Input::AddressProbed(Ok(())), later);
    assert!(matches!(core.poll_effect(), Some(Effect::BuildSocket)));
    core.handle(Input::SocketBuilt(Ok(())), later);
    assert!(!core.net.is_down());
}
