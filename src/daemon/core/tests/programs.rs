//! Programs: from request to air, item rows, endings, preemption.

use std::time::Duration;

use super::*;

#[test]
fn a_play_resolves_its_files_spawns_and_goes_on_air_when_prefilled() {
    let mut h = Harness::new("");
    let request = h.play(play_params("news.wav", &["thon-1"], "announcement"));
    // Paths from a client are checked off the engine task first.
    let jobs = h.jobs();
    assert_eq!(jobs.len(), 1);
    match &jobs[0].1 {
        Job::Items { items: ItemSource::Socket(files), chime: None, media_roots, .. } => {
            assert_eq!(files, &["news.wav".to_string()]);
            assert_eq!(media_roots, &[PathBuf::from("/media")]);
        }
        other => panic!("{other:?}"),
    }
    assert!(h.spawned().is_empty(), "nothing spawns before its files are known");
    h.resolve(&["/media/news.wav"], None);
    let spawned = h.spawned();
    assert_eq!(spawned.len(), 1);
    let (id, worker) = &spawned[0];
    assert_eq!(worker.items, vec![PathBuf::from("/media/news.wav")]);
    assert_eq!((worker.queue_frames, worker.prefill_frames), (50, 5), "1 s lookahead, 100 ms prefill at 20 ms");
    assert!(!worker.urgent && worker.start.is_none());
    assert!(h.assigns().is_empty(), "no zone before the prefill");
    h.ready(*id, "/media/news.wav");
    assert_eq!(h.pacer_cmds()[0], PacerCmd::AddProgram { program: *id });
    assert_eq!(h.assigns(), vec![(z(0), Some(*id), None)]);
    let started = h.started(request);
    assert_eq!((started.id, started.zones, started.waiting), (*id, vec!["thon-1".to_string()], Vec::<String>::new()));
}

#[test]
fn a_configured_chime_is_the_programs_first_item() {
    let mut h = Harness::new("[chime]\nemergency = true\n");
    h.play(play_params("alert.wav", &["thon-1"], "emergency"));
    match &h.jobs()[0].1 {
        Job::Items { chime: Some(ChimeSource::BuiltIn { state_dir }), .. } => assert_eq!(state_dir, &PathBuf::from("/state")),
        other => panic!("{other:?}"),
    }
    h.resolve(&["/media/alert.wav"], Some("/state/chime.wav"));
    let (_, worker) = h.spawned().pop().unwrap();
    assert_eq!(worker.items, vec![PathBuf::from("/state/chime.wav"), PathBuf::from("/media/alert.wav")]);
    assert!(worker.urgent, "an emergency's events take the priority lane");
    assert_eq!(worker.first_play_limit, crate::media::loudness::URGENT_FIRST_PLAY_LIMIT);
}

#[test]
fn history_rows_begin_at_air_time_and_close_with_the_outcome() {
    let mut h = Harness::new("");
    let (_, id) = h.on_air(play_params("a.wav", &["thon-1", "thon-2"], "announcement"), "/media/a.wav");
    h.advance(Duration::from_millis(300));
    let first_air = h.now.wall;
    h.progress(id, 0, 0);
    let begun = h.begun();
    assert_eq!(begun.len(), 1);
    let (key, row) = &begun[0];
    assert_eq!(row.start, first_air, "a row begins when its first frame is on air, not when decoded");
    assert_eq!((row.program, row.source.as_str(), row.sha256.as_deref()), (Some(id), "/media/a.wav", Some("sha-0")));
    assert_eq!(row.zones, vec!["thon-1", "thon-2"]);
    assert_eq!((row.origin.as_str(), row.caller_uid, row.caller_pid), ("uid:1000", Some(1000), Some(42)));
    h.opened(id, 1, "/media/b.wav");
    h.advance(Duration::from_secs(3));
    h.progress(id, 1, 0);
    let second_air = h.now.wall;
    h.advance(Duration::from_secs(2));
    h.pacer(PacerInput::ProgramEnded { program: id });
    let finished = h.finished();
    assert_eq!(finished.len(), 2);
    assert_eq!((finished[0].0, finished[0].1, finished[0].2), (*key, second_air, Outcome::Completed));
    assert_eq!((finished[1].1, finished[1].2), (h.now.wall, Outcome::Completed));
    assert!(h.effects.iter().any(|e| matches!(e, Effect::StopWorker { program } if *program == id)));
    assert_eq!(h.assigns().last(), Some(&(z(1), None, None)));
}

#[test]
fn a_file_that_cannot_be_played_is_a_failed_row_and_the_rest_plays() {
    let mut h = Harness::new("");
    h.play(play_params("a.wav", &["thon-1"], "announcement"));
    h.resolve(&["/media/gone.wav", "/media/b.wav"], None);
    let id = p(1);
    h.worker(id, WorkerEvent::ItemSkipped { item: 0, path: "/media/gone.wav".into(), error: "file not found".into() });
    h.ready(id, "/media/b.wav");
    let recorded = h.recorded();
    assert_eq!(recorded.len(), 1);
    let (row, outcome, error) = &recorded[0];
    assert_eq!((row.source.as_str(), *outcome, error.as_deref()), ("/media/gone.wav", Outcome::Failed, Some("file not found")));
    assert_eq!(h.assigns(), vec![(z(0), Some(id), None)]);
}

#[test]
fn an_item_that_stops_early_closes_its_row_failed_with_where() {
    let mut h = Harness::new("");
    let (_, id) = h.on_air(play_params("a.wav", &["thon-1"], "announcement"), "/media/a.wav");
    h.progress(id, 0, 0);
    let error = Some("file ends unexpectedly".to_string());
    h.worker(id, WorkerEvent::ItemEncoded { item: 0, encoded: Duration::from_millis(1500), error, sha256: None });
    h.pacer(PacerInput::ProgramEnded { program: id });
    let (_, _, outcome, error) = h.finished().pop().unwrap();
    assert_eq!((outcome, error.as_deref()), (Outcome::Failed, Some("stopped at 0:01: file ends unexpectedly")));
}

#[test]
fn a_program_whose_items_all_fail_is_refused_and_never_takes_a_zone() {
    let mut h = Harness::new("");
    let request = h.play(json!({"files": ["a.wav", "b.wav"], "zones": "all"}));
    h.resolve(&["/media/a.wav", "/media/b.wav"], None);
    for (item, file) in [(0, "/media/a.wav"), (1, "/media/b.wav")] {
        h.worker(p(1), WorkerEvent::ItemSkipped { item, path: file.into(), error: "not audio".into() });
    }
    h.worker(p(1), WorkerEvent::Ready);
    let message = h.refused(request);
    assert_eq!(message, "nothing could be played: /media/a.wav: not audio; /media/b.wav: not audio");
    assert!(h.assigns().is_empty());
    assert_eq!(h.recorded().len(), 2, "each failed item has its row");
    assert!(h.effects.iter().any(|e| matches!(e, Effect::StopWorker { .. })));
}

#[test]
fn a_path_outside_the_media_roots_refuses_the_request() {
    let mut h = Harness::new("");
    let request = h.play(play_params("/etc/shadow", &["thon-1"], "announcement"));
    let (job, _) = h.jobs().pop().unwrap();
    h.handle(Input::Resolved { job, result: Err("/etc/shadow is outside the media roots".into()) });
    assert_eq!(h.refused(request), "/etc/shadow is outside the media roots");
    assert!(h.spawned().is_empty());
}

#[test]
fn the_content_hash_reaches_the_row_when_ready() {
    let mut h = Harness::new("");
    h.play(play_params("a.wav", &["thon-1"], "announcement"));
    h.resolve(&["/media/a.wav"], None);
    let id = p(1);
    let started = WorkerEvent::ItemStarted { item: 0, path: "/media/a.wav".into(), duration: None, sha256: None, gain_db: None };
    h.worker(id, started);
    assert!(h.effects.iter().any(|e| matches!(e, Effect::Hash { program, item: 0, .. } if *program == id)));
    h.worker(id, WorkerEvent::Ready);
    h.progress(id, 0, 0);
    let (key, row) = h.begun().pop().unwrap();
    assert_eq!(row.sha256, None, "hashing runs beside playback");
    h.handle(Input::Hashed { program: id, item: 0, sha256: "ab12".into() });
    assert_eq!(h.writes().pop(), Some(StoreWrite::Hash { key, sha256: "ab12".into() }));
}

#[test]
fn stop_by_id_closes_the_row_stopped_and_frees_the_zone() {
    let mut h = Harness::new("");
    let (_, id) = h.on_air(play_params("a.wav", &["thon-1"], "announcement"), "/media/a.wav");
    h.progress(id, 0, 0);
    let stop = h.request("broadcast.stop", json!({"id": 1}));
    match h.reply(stop) {
        Some(Ok(Response::Stop(s))) => assert_eq!(s.stopped, vec![id]),
        other => panic!("{other:?}"),
    }
    let (_, _, outcome, error) = h.finished().pop().unwrap();
    assert_eq!((outcome, error.as_deref()), (Outcome::Stopped, Some("stopped by uid 1000")));
    assert_eq!(h.pacer_cmds().iter().filter(|c| matches!(c, PacerCmd::RemoveProgram { .. })).count(), 1);
    assert_eq!(h.assigns().last(), Some(&(z(0), None, None)));
    let again = h.request("broadcast.stop", json!({"id": 1}));
    assert_eq!(h.refused(again), "no program #1 is playing or waiting; see `loa status`");
}

#[test]
fn stop_by_zone_stops_what_plays_there_and_nothing_else() {
    let mut h = Harness::new("");
    let (_, one) = h.on_air(play_params("a.wav", &["thon-1"], "announcement"), "/media/a.wav");
    let (_, two) = h.on_air(play_params("b.wav", &["thon-2"], "announcement"), "/media/b.wav");
    let stop = h.request("broadcast.stop", json!({"zone": "thon-2"}));
    match h.reply(stop) {
        Some(Ok(Response::Stop(s))) => assert_eq!(s.stopped, vec![two]),
        other => panic!("{other:?}"),
    }
    assert!(h.core.programs.contains_key(&one) && !h.core.programs.contains_key(&two));
    let bad = h.request("broadcast.stop", json!({"zone": "thon-9"}));
    assert_eq!(h.refused(bad), "unknown zone \"thon-9\"; zones: thon-1, thon-2");
}

#[test]
fn max_duration_cuts_a_program_with_a_stopped_row() {
    let mut h = Harness::new("");
    let mut params = play_params("a.wav", &["thon-1"], "announcement");
    params["max_duration"] = json!("2s");
    let (_, id) = h.on_air(params, "/media/a.wav");
    h.progress(id, 0, 0);
    h.advance(Duration::from_millis(1999));
    assert!(h.finished().is_empty());
    h.advance(Duration::from_millis(1));
    let (_, _, outcome, error) = h.finished().pop().expect("cut at 2 s");
    assert_eq!((outcome, error.as_deref()), (Outcome::Stopped, Some("cut at max_duration 2s")));
    assert!(!h.core.programs.contains_key(&id));
}

#[test]
fn an_equal_program_waits_for_the_zone_with_on_busy_wait() {
    let mut h = Harness::new("");
    let (_, first) = h.on_air(play_params("a.wav", &["thon-1"], "announcement"), "/media/a.wav");
    let (request, second) = h.on_air(play_params("b.wav", &["thon-1"], "announcement"), "/media/b.wav");
    let started = h.started(request);
    assert_eq!((started.zones.len(), started.waiting), (0, vec!["thon-1".to_string()]));
    assert_eq!(h.core.arbiter.owner(z(0)), Some(first));
    h.pacer(PacerInput::ProgramEnded { program: first });
    assert_eq!(h.assigns().last(), Some(&(z(0), Some(second), None)));
}

#[test]
fn an_equal_program_is_refused_with_on_busy_refuse_and_a_refusal_row() {
    let mut h = Harness::new("");
    h.on_air(play_params("a.wav", &["thon-1"], "announcement"), "/media/a.wav");
    let mut params = play_params("b.wav", &["thon-1"], "announcement");
    params["on_busy"] = json!("refuse");
    let (request, second) = h.on_air(params, "/media/b.wav");
    assert_eq!(h.refused(request), "refused: thon-1 is playing #1 play (announcement)");
    let (row, outcome, error) = h.recorded().pop().unwrap();
    assert_eq!((row.program, row.source.as_str(), outcome), (Some(second), "/media/b.wav", Outcome::Failed));
    assert_eq!(error.as_deref(), Some("refused: thon-1 is playing #1 play (announcement)"));
    assert!(!h.core.programs.contains_key(&second));
}

#[test]
fn an_emergency_preempts_the_zone_and_the_program_resumes_when_it_ends() {
    let mut h = Harness::new("");
    let (_, news) = h.on_air(play_params("news.wav", &["thon-1"], "scheduled"), "/media/news.wav");
    let (request, alert) = h.on_air(play_params("alert.wav", &["thon-1"], "emergency"), "/media/alert.wav");
    assert_eq!(h.started(request).zones, vec!["thon-1"]);
    assert_eq!(h.assigns().last(), Some(&(z(0), Some(alert), None)));
    // Paused everywhere: the pacer stops reading its queue, no branch.
    h.pacer(PacerInput::ZoneLeft { zone: z(0), program: news, item: 0, position: Duration::from_millis(1500) });
    assert_eq!(h.spawned().len(), 2, "no branch for a programme cut on its only zone");
    h.pacer(PacerInput::ProgramEnded { program: alert });
    assert_eq!(h.assigns().last(), Some(&(z(0), Some(news), None)));
}

#[test]
fn on_preempt_drop_ends_the_program_with_a_preempted_row() {
    let mut h = Harness::new(
        "[[schedule]]\nname = \"nhac\"\ncron = \"0 0 6 * * *\"\nfile = \"music.mp3\"\nzones = \"all\"\non_preempt = \"drop\"\n",
    );
    h.advance(Duration::from_secs(8));
    h.resolve(&["/media/music.mp3"], None);
    h.ready(p(1), "/media/music.mp3");
    h.advance(Duration::from_secs(2));
    h.progress(p(1), 0, 0);
    let (_, alert) = h.on_air(play_params("alert.wav", &["thon-1"], "emergency"), "/media/alert.wav");
    let (_, _, outcome, error) = h.finished().pop().unwrap();
    assert_eq!((outcome, error.as_deref()), (Outcome::Preempted, Some("preempted by #2 play (emergency)")));
    assert_eq!(h.core.arbiter.owner(z(0)), Some(alert));
    assert_eq!(h.core.arbiter.owner(z(1)), None, "a dropped programme leaves all its zones");
}

#[test]
fn a_runtime_playlist_item_outside_the_roots_is_a_failed_row() {
    let mut h = Harness::restored(
        "",
        Restored {
            schedules: Vec::new(),
            playlists: vec![PlaylistRecord {
                name: "tin".into(),
                source: "/media/tin.m3u".into(),
                items: vec!["/media/a.wav".into(), "/media/link.wav".into()],
                loaded_by: None,
                loaded_at: start_wall(),
            }],
            last_fires: HashMap::new(),
        },
    );
    let request = h.play(json!({"playlist": "tin", "zones": ["thon-1"]}));
    let (job, what) = h.jobs().pop().unwrap();
    assert!(matches!(what, Job::Items { items: ItemSource::Runtime(ref items), .. } if items.len() == 2));
    let result = Ok(Resolved::Items {
        items: vec!["/media/a.wav".into()],
        chime: None,
        rejected: vec![("/media/link.wav".into(), "/media/link.wav resolves outside the media roots".into())],
    });
    h.handle(Input::Resolved { job, result });
    let (row, outcome, _) = h.recorded().pop().unwrap();
    assert_eq!((row.source.as_str(), row.program_name.as_str(), outcome), ("/media/link.wav", "tin", Outcome::Failed));
    h.ready(p(1), "/media/a.wav");
    assert_eq!(h.started(request).zones, vec!["thon-1"]);
}
