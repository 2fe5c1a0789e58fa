//! The worker on real files (WAVs written here), read through its queues:
//! what frames come out, tagged how, and which events say so.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::config::{Channels, FrameDuration};

fn audio() -> Audio {
    Audio {
        channels: Channels::Mono,
        frame: FrameDuration::Ms20,
        bitrate_bps: 32_000,
        complexity: 0,
        fec: false,
        expected_loss_pct: 0,
        payload_type: 96,
        loudness: Default::default(),
    }
}

/// A 44.1 kHz stereo tone of `secs` (resampled and downmixed on the way,
/// so a start point goes through the whole decode path).
fn tone(dir: &Path, name: &str, secs: f32) -> PathBuf {
    let path = dir.join(name);
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for i in 0..(secs * 44_100.0) as usize {
        let v = ((2.0 * std::f32::consts::PI * 700.0 * i as f32 / 44_100.0).sin() * 8000.0) as i16;
        w.write_sample(v).unwrap();
        w.write_sample(v).unwrap();
    }
    w.finalize().unwrap();
    path
}

fn spec(items: Vec<PathBuf>, looped: bool, start: Option<StartPoint>) -> ProgramSpec {
    ProgramSpec {
        items,
        audio: audio(),
        queue_frames: 50,
        prefill_frames: 5,
        looped,
        loudness: Some(loudness::Cache::default()),
        first_play_limit: loudness::FIRST_PLAY_LIMIT,
        live: None,
        start,
        urgent: false,
    }
}

fn at(item: usize, ms: u64) -> Option<StartPoint> {
    Some(StartPoint {
        item,
        position: Duration::from_millis(ms),
        resumed: None,
    })
}

/// Every frame's (item, position in ms) and every event, to the end.
fn run(spec: ProgramSpec) -> (Vec<(usize, u128)>, Vec<ProgramEvent>) {
    let handle = spawn(spec).unwrap();
    let frames = handle.frames.iter().map(|f| (f.item, f.position.as_millis())).collect();
    let events = handle.events.iter().collect();
    (frames, events)
}

/// The first `n` frames of a looped program, then it is cancelled.
fn first_frames(spec: ProgramSpec, n: usize) -> Vec<(usize, u128)> {
    let handle = spawn(spec).unwrap();
    let frames = handle.frames.iter().take(n).map(|f| (f.item, f.position.as_millis())).collect();
    handle.cancel();
    frames
}

fn started(events: &[ProgramEvent]) -> Vec<usize> {
    events
        .iter()
        .filter_map(|e| match e {
            ProgramEvent::ItemStarted { item, .. } => Some(*item),
            _ => None,
        })
        .collect()
}

fn encoded(events: &[ProgramEvent]) -> Vec<(usize, u128)> {
    events
        .iter()
        .filter_map(|e| match e {
            ProgramEvent::ItemEncoded { item, encoded, .. } => Some((*item, encoded.as_millis())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_start_point_continues_with_the_frames_a_full_run_has_from_there() {
    let dir = tempfile::tempdir().unwrap();
    let items = vec![tone(dir.path(), "a.wav", 1.0), tone(dir.path(), "b.wav", 0.5)];
    let (full, full_events) = run(spec(items.clone(), false, None));
    let (branch, events) = run(spec(items, false, at(0, 620)));
    let from = full.iter().position(|&f| f == (0, 620)).unwrap();
    assert_eq!(branch, full[from..]);
    assert_eq!(started(&events), [0, 1]);
    assert_eq!(encoded(&events), encoded(&full_events), "items end where a full run's do");
    assert!(matches!(events.last(), Some(ProgramEvent::Finished { played: 2, skipped: 0 })));
}

#[test]
fn a_start_point_between_frames_begins_on_the_frame_holding_it() {
    let dir = tempfile::tempdir().unwrap();
    let items = vec![tone(dir.path(), "a.wav", 1.0)];
    let (branch, _) = run(spec(items, false, at(0, 615)));
    assert_eq!(branch.first(), Some(&(0, 600)));
}

#[test]
fn a_start_point_past_its_items_end_begins_with_the_next_item() {
    let dir = tempfile::tempdir().unwrap();
    let items = vec![tone(dir.path(), "a.wav", 1.0), tone(dir.path(), "b.wav", 0.5)];
    let (branch, events) = run(spec(items.clone(), false, at(0, 1000)));
    assert_eq!(branch.first(), Some(&(1, 0)));
    assert_eq!(branch.len(), 25);
    assert_eq!(started(&events), [1], "the finished item is not announced again");
    let (after_all, events) = run(spec(items, false, at(1, 5000)));
    assert!(after_all.is_empty());
    assert!(events.iter().any(|e| matches!(e, ProgramEvent::Ready)), "the engine still hears the end");
    assert!(matches!(events.last(), Some(ProgramEvent::Finished { played: 0, skipped: 0 })));
}

#[test]
fn items_before_the_start_point_are_passed_over() {
    let dir = tempfile::tempdir().unwrap();
    // Item 0 stands for the chime the engine puts first.
    let items = vec![tone(dir.path(), "chime.wav", 0.3), tone(dir.path(), "a.wav", 0.5)];
    let (branch, events) = run(spec(items, false, at(1, 200)));
    assert_eq!(branch.first(), Some(&(1, 200)));
    assert_eq!(branch.last(), Some(&(1, 480)));
    assert_eq!(started(&events), [1]);
}

#[test]
fn a_looped_program_resumed_in_a_later_pass_keeps_counting_items() {
    let dir = tempfile::tempdir().unwrap();
    let items = vec![tone(dir.path(), "a.wav", 0.1), tone(dir.path(), "b.wav", 0.06)];
    // Item 3 is the second pass's b.wav.
    let frames = first_frames(spec(items.clone(), true, at(3, 20)), 10);
    assert_eq!(frames, [(3, 20), (3, 40), (4, 0), (4, 20), (4, 40), (4, 60), (4, 80), (5, 0), (5, 20), (5, 40)]);
    // Past the end of a pass's last item: the next pass.
    let frames = first_frames(spec(items, true, at(3, 60)), 2);
    assert_eq!(frames, [(4, 0), (4, 20)]);
}

#[test]
fn a_looped_program_whose_files_all_fail_ends_even_from_a_start_point() {
    let dir = tempfile::tempdir().unwrap();
    let items = vec![dir.path().join("gone-1.wav"), dir.path().join("gone-2.wav")];
    let (frames, events) = run(spec(items, true, at(1, 0)));
    assert!(frames.is_empty());
    // The part-pass (item 1) and one whole pass (2, 3) were tried.
    assert!(matches!(events.last(), Some(ProgramEvent::Finished { played: 0, skipped: 3 })), "{events:?}");
}

#[test]
fn a_resumed_item_keeps_the_cut_runs_gain_and_hash() {
    let dir = tempfile::tempdir().unwrap();
    let items = vec![tone(dir.path(), "a.wav", 0.5)];
    let mut resumed = spec(items, false, at(0, 100));
    let cache = resumed.loudness.clone().unwrap();
    if let Some(start) = resumed.start.as_mut() {
        start.resumed = Some(ResumedItem {
            sha256: Some("ab".repeat(32)),
            gain_db: Some(-3.5),
        });
    }
    let (_, events) = run(resumed);
    let Some(ProgramEvent::ItemStarted { sha256, gain_db, .. }) = events.iter().find(|e| matches!(e, ProgramEvent::ItemStarted { .. })) else {
        panic!("no ItemStarted in {events:?}");
    };
    assert_eq!(sha256.as_deref(), Some("ab".repeat(32).as_str()));
    assert_eq!(*gain_db, Some(-3.5));
    assert_eq!(cache.measured(), 0, "the file was not measured again");
}

#[test]
fn a_start_point_without_what_the_cut_run_knew_measures_as_a_full_play() {
    let dir = tempfile::tempdir().unwrap();
    let items = vec![tone(dir.path(), "a.wav", 0.5)];
    let (_, full) = run(spec(items.clone(), false, None));
    let (_, branch) = run(spec(items, false, at(0, 100)));
    let gain = |events: &[ProgramEvent]| {
        events.iter().find_map(|e| match e {
            ProgramEvent::ItemStarted { sha256, gain_db, .. } => Some((sha256.clone(), *gain_db)),
            _ => None,
        })
    };
    assert!(gain(&full).is_some_and(|(sha256, gain_db)| sha256.is_some() && gain_db.is_some()));
    assert_eq!(gain(&branch), gain(&full));
}
