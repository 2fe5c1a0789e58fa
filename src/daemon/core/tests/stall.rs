//! Pacer stalls: counted for status, their silence charged to the zones
//! on air and to the history row of each item on air.

use super::*;
use crate::proto::status::PacerStatus;

fn stall(h: &mut Harness, late_ms: u64, skipped_ticks: u64) {
    h.pacer(PacerInput::Stalled { late: Duration::from_millis(late_ms), skipped_ticks });
}

fn status(h: &mut Harness) -> crate::proto::status::Status {
    let id = h.request("status", json!({}));
    let snapshot = Snapshot { endpoints: Vec::new(), history: Default::default(), sap: Default::default() };
    h.handle(Input::Snapshot { request: id, snapshot });
    match h.reply(id) {
        Some(Ok(Response::Status(status))) => status,
        other => panic!("no status: {other:?}"),
    }
}

/// (row, running total) of every skipped-audio write.
fn skipped(h: &Harness) -> Vec<(RowKey, u64)> {
    h.writes()
        .into_iter()
        .filter_map(|w| match w {
            StoreWrite::Skipped { key, skipped_ms } => Some((key, skipped_ms)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_stall_is_charged_to_the_zone_and_the_item_on_air_and_adds_up_in_status() {
    let mut h = Harness::new("");
    let (_, news) = h.on_air(play_params("news.wav", &["thon-1"], "scheduled"), "/media/news.wav");
    h.progress(news, 0, 1_000);
    let row = h.begun()[0].0;
    stall(&mut h, 1_510, 75);
    assert_eq!(skipped(&h), [(row, 1_500)], "75 frames of 20 ms");
    stall(&mut h, 1_200, 60);
    assert_eq!(skipped(&h), [(row, 1_500), (row, 2_700)], "the row holds the running total");

    let status = status(&mut h);
    assert_eq!(status.pacer, PacerStatus { stalls: 2, skipped_ticks: 135, longest_stall_ms: 1_510 });
    assert_eq!((status.zones[0].stalls, status.zones[0].skipped_ms), (2, 2_700));
    assert_eq!((status.zones[1].stalls, status.zones[1].skipped_ms), (0, 0), "thon-2 was idle: no silence charged");
}

#[test]
fn the_next_item_starts_with_nothing_skipped() {
    let mut h = Harness::new("");
    let (_, news) = h.on_air(play_params("news.wav", &["thon-1"], "scheduled"), "/media/news.wav");
    h.progress(news, 0, 0);
    stall(&mut h, 1_500, 75);
    h.opened(news, 1, "/media/b.wav");
    h.progress(news, 1, 0);
    stall(&mut h, 1_100, 55);
    let rows: Vec<RowKey> = h.begun().iter().map(|(key, _)| *key).collect();
    assert_eq!(skipped(&h), [(rows[0], 1_500), (rows[1], 1_100)]);
}

#[test]
fn a_stall_with_nothing_on_air_is_counted_but_charged_to_no_zone() {
    let mut h = Harness::new("");
    stall(&mut h, 2_000, 100);
    assert!(skipped(&h).is_empty());
    let status = status(&mut h);
    assert_eq!(status.pacer, PacerStatus { stalls: 1, skipped_ticks: 100, longest_stall_ms: 2_000 });
    assert!(status.zones.iter().all(|z| z.stalls == 0 && z.skipped_ms == 0), "{:?}", status.zones);
}

#[test]
fn a_stall_is_charged_to_the_program_on_air_not_the_one_it_preempted() {
    let mut h = Harness::new("");
    let (_, news) = h.on_air(play_params("news.wav", &["thon-1"], "scheduled"), "/media/news.wav");
    h.progress(news, 0, 1_000);
    let (_, alert) = h.on_air(play_params("alert.wav", &["thon-1"], "emergency"), "/media/alert.wav");
    h.progress(alert, 0, 0);
    let alert_row = h.begun().last().unwrap().0;
    stall(&mut h, 1_500, 75);
    assert_eq!(skipped(&h), [(alert_row, 1_500)], "only the emergency was on air");
}

#[test]
fn a_program_still_preparing_has_nothing_charged() {
    let mut h = Harness::new("");
    let _ = h.play(play_params("news.wav", &["thon-1"], "scheduled"));
    h.resolve(&["/media/news.wav"], None);
    stall(&mut h, 1_500, 75);
    assert!(skipped(&h).is_empty());
    assert_eq!(status(&mut h).zones[0].stalls, 0, "no frame of it was due yet");
}
