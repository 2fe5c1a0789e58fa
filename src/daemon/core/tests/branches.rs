//! A programme on several zones, cut on some: every zone hears it all.

use std::time::Duration;

use super::*;

/// A scheduled programme on both zones, on air, its first item playing.
fn news_on_both(h: &mut Harness, on_preempt: &str) -> ProgramId {
    let mut params = json!({"files": ["seq_a.mp3", "seq_b.flac"], "zones": "all", "priority": "scheduled"});
    params["name"] = json!("ban-tin");
    let request = h.play(params);
    h.resolve(&["/media/seq_a.mp3", "/media/seq_b.flac"], None);
    let news = p(1);
    h.ready(news, "/media/seq_a.mp3");
    h.started(request);
    h.progress(news, 0, 0);
    if on_preempt != "pause" {
        h.core.programs.get_mut(&news).unwrap().on_preempt = on_preempt.parse().unwrap();
    }
    news
}

fn cut(h: &mut Harness, zone: ZoneId, program: ProgramId, item: usize, ms: u64) {
    h.pacer(PacerInput::ZoneLeft { zone, program, item, position: Duration::from_millis(ms) });
}

#[test]
fn a_cut_zone_branches_off_and_resumes_where_it_was_cut_when_the_emergency_ends() {
    let mut h = Harness::new("");
    let news = news_on_both(&mut h, "pause");
    let (_, alert) = h.on_air(play_params("alert.wav", &["thon-1"], "emergency"), "/media/alert.wav");
    assert_eq!(h.core.arbiter.zones_of(news), vec![z(1)], "the programme goes on on thon-2");
    cut(&mut h, z(0), news, 0, 1240);
    let (branch, worker) = h.spawned().pop().unwrap();
    assert_eq!(branch, p(3));
    assert_eq!(worker.items, vec![PathBuf::from("/media/seq_a.mp3"), PathBuf::from("/media/seq_b.flac")]);
    let start = worker.start.expect("a branch begins where the zone was cut");
    assert_eq!((start.item, start.position), (0, Duration::from_millis(1240)));
    let resumed = start.resumed.expect("the item's hash and gain as the programme had them");
    assert_eq!((resumed.sha256.as_deref(), resumed.gain_db), (Some("sha-0"), Some(-2.0)));
    let b = &h.core.programs[&branch];
    assert_eq!((b.name.as_str(), b.priority, b.zones.clone()), ("ban-tin", Priority::Scheduled, vec![z(0)]));
    assert_eq!(h.core.programs[&news].zones, vec![z(1)]);
    // Prepared while the emergency plays; the zone is the branch's when free.
    h.ready(branch, "/media/seq_a.mp3");
    assert_eq!(h.core.arbiter.owner(z(0)), Some(alert));
    h.pacer(PacerInput::ProgramEnded { program: alert });
    assert_eq!(h.assigns().last(), Some(&(z(0), Some(branch), None)));
    assert_eq!(h.core.arbiter.zones_of(news), vec![z(1)], "the programme never rejoins the live position on thon-1");
}

#[test]
fn a_branch_that_is_not_ready_when_its_zone_frees_leaves_it_silent_until_ready() {
    let mut h = Harness::new("");
    let news = news_on_both(&mut h, "pause");
    let (_, alert) = h.on_air(play_params("alert.wav", &["thon-1"], "emergency"), "/media/alert.wav");
    cut(&mut h, z(0), news, 0, 800);
    let branch = p(3);
    h.pacer(PacerInput::ProgramEnded { program: alert });
    // The pacer never hears of a program before its queue.
    assert_eq!(h.assigns().last(), Some(&(z(0), None, None)));
    h.ready(branch, "/media/seq_a.mp3");
    let cmds = h.pacer_cmds();
    let n = cmds.len();
    assert_eq!(cmds[n - 2..], [PacerCmd::AddProgram { program: branch }, PacerCmd::Assign { zone: z(0), program: Some(branch) }]);
}

#[test]
fn branch_rows_list_the_branchs_zone_and_it_outlives_the_programme() {
    let mut h = Harness::new("");
    let news = news_on_both(&mut h, "pause");
    let (_, alert) = h.on_air(play_params("alert.wav", &["thon-1"], "emergency"), "/media/alert.wav");
    cut(&mut h, z(0), news, 0, 1240);
    let branch = p(3);
    h.ready(branch, "/media/seq_a.mp3");
    h.pacer(PacerInput::ProgramEnded { program: alert });
    h.pacer(PacerInput::FirstPacket { program: branch, zone: z(0), at: h.now.mono });
    h.progress(branch, 0, 1240);
    let (_, row) = h.begun().pop().unwrap();
    assert_eq!((row.program, row.zones.clone(), row.program_name.as_str()), (Some(branch), vec!["thon-1".to_string()], "ban-tin"));
    // The programme ends on thon-2; the branch still plays thon-1.
    h.pacer(PacerInput::ProgramEnded { program: news });
    assert!(h.core.programs.contains_key(&branch));
    assert_eq!(h.core.programs[&branch].origin, state::Origin::Caller(CALLER));
}

#[test]
fn zones_cut_at_one_frame_share_one_branch() {
    let mut h = Harness::new("[[zone]]\nname = \"thon-3\"\ngroup = \"239.255.77.3:5004\"\n");
    let news = news_on_both(&mut h, "pause");
    assert_eq!(h.core.arbiter.zones_of(news).len(), 3);
    h.on_air(play_params("alert.wav", &["thon-1", "thon-2"], "emergency"), "/media/alert.wav");
    cut(&mut h, z(0), news, 0, 500);
    cut(&mut h, z(1), news, 0, 500);
    let branches: Vec<_> = h.spawned().into_iter().filter(|(_, w)| w.start.is_some()).collect();
    assert_eq!(branches.len(), 1, "one decode for both cut zones");
    assert_eq!(h.core.programs[&branches[0].0].zones, vec![z(0), z(1)]);
    assert_eq!(h.core.programs[&news].zones, vec![z(2)]);
}

#[test]
fn a_rejoin_programme_takes_its_zone_back_where_it_is_now() {
    let mut h = Harness::new("");
    let news = news_on_both(&mut h, "rejoin");
    let (_, alert) = h.on_air(play_params("alert.wav", &["thon-1"], "emergency"), "/media/alert.wav");
    cut(&mut h, z(0), news, 0, 1240);
    assert_eq!(h.spawned().len(), 2, "no branch");
    h.pacer(PacerInput::ProgramEnded { program: alert });
    assert_eq!(h.assigns().last(), Some(&(z(0), Some(news), None)));
}

#[test]
fn stopping_a_programme_stops_its_branches() {
    let mut h = Harness::new("");
    let news = news_on_both(&mut h, "pause");
    h.on_air(play_params("alert.wav", &["thon-1"], "emergency"), "/media/alert.wav");
    cut(&mut h, z(0), news, 0, 1240);
    let stop = h.request("broadcast.stop", json!({"id": 1}));
    match h.reply(stop) {
        Some(Ok(Response::Stop(s))) => assert_eq!(s.stopped, vec![news, p(3)]),
        other => panic!("{other:?}"),
    }
    assert!(!h.core.programs.contains_key(&p(3)));
    // The branch never went on air: its row says it was stopped.
    let (row, outcome, _) = h.recorded().pop().unwrap();
    assert_eq!((row.program, outcome, row.zones), (Some(p(3)), Outcome::Stopped, vec!["thon-1".to_string()]));
}

#[test]
fn stop_by_zone_stops_the_branch_there_and_not_the_programme_elsewhere() {
    let mut h = Harness::new("");
    let news = news_on_both(&mut h, "pause");
    h.on_air(play_params("alert.wav", &["thon-1"], "emergency"), "/media/alert.wav");
    cut(&mut h, z(0), news, 0, 1240);
    let stop = h.request("broadcast.stop", json!({"zone": "thon-1"}));
    match h.reply(stop) {
        Some(Ok(Response::Stop(s))) => assert_eq!(s.stopped, vec![p(2), p(3)], "the emergency and the branch"),
        other => panic!("{other:?}"),
    }
    assert_eq!(h.core.arbiter.zones_of(news), vec![z(1)]);
}

#[test]
fn a_programme_paused_everywhere_resumes_its_zones_itself_and_one_not_given_back_branches() {
    let mut h = Harness::new("");
    let news = news_on_both(&mut h, "pause");
    let (_, one) = h.on_air(play_params("a1.wav", &["thon-1"], "emergency"), "/media/a1.wav");
    let (_, two) = h.on_air(play_params("a2.wav", &["thon-2"], "emergency"), "/media/a2.wav");
    // The pacer cut thon-1 first while thon-2 still played...
    cut(&mut h, z(0), news, 0, 400);
    // ...but by the time it says so the programme plays nowhere: parked.
    cut(&mut h, z(1), news, 0, 400);
    assert_eq!(h.spawned().len(), 3, "paused at one frame on both zones: no branch yet");
    // thon-2 comes back first; thon-1 must not wait for it at the live
    // position, it branches off where it was cut.
    h.pacer(PacerInput::ProgramEnded { program: two });
    assert_eq!(h.core.arbiter.zones_of(news), vec![z(1)]);
    let (branch, worker) = h.spawned().pop().unwrap();
    let start = worker.start.unwrap();
    assert_eq!((start.item, start.position), (0, Duration::from_millis(400)));
    assert_eq!(h.core.programs[&branch].zones, vec![z(0)]);
    h.ready(branch, "/media/seq_a.mp3");
    h.pacer(PacerInput::ProgramEnded { program: one });
    assert_eq!(h.assigns().last(), Some(&(z(0), Some(branch), None)));
}

#[test]
fn a_zone_parked_at_another_frame_than_the_programmes_pause_branches_at_once() {
    let mut h = Harness::new("");
    let news = news_on_both(&mut h, "pause");
    h.on_air(play_params("a1.wav", &["thon-1"], "emergency"), "/media/a1.wav");
    h.on_air(play_params("a2.wav", &["thon-2"], "emergency"), "/media/a2.wav");
    cut(&mut h, z(0), news, 0, 400);
    // thon-2 went on a second longer: the programme pauses at 1.4 s.
    cut(&mut h, z(1), news, 0, 1400);
    let (branch, worker) = h.spawned().pop().unwrap();
    assert_eq!(worker.start.map(|s| s.position), Some(Duration::from_millis(400)));
    assert_eq!(h.core.programs[&branch].zones, vec![z(0)]);
    assert_eq!(h.core.programs[&news].zones, vec![z(1)]);
}

#[test]
fn a_live_program_cut_on_one_zone_rejoins_it_live() {
    let mut h = Harness::new("");
    let conn = ConnId(7);
    let params = crate::proto::broadcast::LiveStartParams {
        zones: crate::proto::ZoneSelection::All,
        priority: None,
        name: None,
        max_duration: None,
        source: None,
        format: crate::proto::PcmEncoding::S16le,
        rate: 48_000,
        channels: 1,
    };
    h.handle(Input::LiveStart { id: RequestId(99), caller: CALLER, params, conn });
    h.resolve(&["<live input>"], None);
    h.ready(p(1), "<live input>");
    h.on_air(play_params("alert.wav", &["thon-1"], "emergency"), "/media/alert.wav");
    cut(&mut h, z(0), p(1), 0, 2000);
    assert!(h.spawned().iter().all(|(_, w)| w.start.is_none()), "live input cannot be decoded twice");
}
