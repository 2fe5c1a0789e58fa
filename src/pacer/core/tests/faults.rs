//! Send failures, stalls, zones that leave, a full event ring.

use super::*;

#[test]
fn a_send_failure_reports_each_change_once() {
    let mut rig = Rig::new(2);
    let feed = rig.add(1);
    feed.push(0, 0..1000);
    rig.tick_with(|core| {
        core.assign(zone(0), Some(program(1)));
        core.assign(zone(1), Some(program(1)));
    });
    let fine = rtp_of(&rig.ticks(5));
    let last_seq = fine.last().unwrap().1.seq;

    rig.failing = Some(libc::ENETUNREACH);
    let failing = rig.ticks(120);
    rig.failing = None;
    let back = rig.ticks(3);

    let changes = |events: &[PacerEvent]| {
        events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    PacerEvent::SendFailing { .. } | PacerEvent::Sending | PacerEvent::SendIdle
                )
            })
            .copied()
            .collect::<Vec<_>>()
    };
    let during = events_of(&failing);
    assert_eq!(
        changes(&during),
        [PacerEvent::SendFailing {
            errno: Some(libc::ENETUNREACH),
            target: rtp_target(0)
        }],
        "said once"
    );
    let not_sent: Vec<_> = during
        .iter()
        .filter(|e| matches!(e, PacerEvent::NotSent { .. }))
        .collect();
    assert_eq!(
        not_sent.len(),
        4,
        "each zone, about once a second: {not_sent:?}"
    );
    let after: Vec<_> = events_of(&back)
        .into_iter()
        .filter(|e| !matches!(e, PacerEvent::Progress { .. }))
        .collect();
    assert_eq!(
        after,
        [
            PacerEvent::NotSent {
                zone: zone(0),
                count: 120
            },
            PacerEvent::NotSent {
                zone: zone(1),
                count: 120
            },
            PacerEvent::Sending,
        ],
        "final counts, then Sending, once"
    );
    let resumed = back[0].rtp();
    assert!(
        resumed
            .iter()
            .all(|(_, p)| p.seq == last_seq.wrapping_add(1) && p.marker),
        "packets not sent gave their sequence numbers back: {resumed:?}"
    );
    assert!(
        rig.core.stats().send_errors >= 240,
        "RTP (and any RTCP report due) counted"
    );

    // Failing again, then nothing left to send: idle after a second.
    rig.failing = Some(libc::ENETUNREACH);
    rig.ticks(2);
    rig.tick_with(|core| {
        core.assign(zone(0), None);
        core.assign(zone(1), None);
    });
    let quiet = events_of(&rig.ticks(60));
    assert_eq!(changes(&quiet), [PacerEvent::SendIdle]);
}

#[test]
fn a_full_send_buffer_is_reported_now_and_then_not_as_a_failure() {
    let mut rig = Rig::new(1);
    let feed = rig.add(1);
    feed.push(0, 0..3000);
    rig.tick_with(|core| core.assign(zone(0), Some(program(1))));
    rig.failing = Some(libc::ENOBUFS);
    let events = events_of(&rig.ticks(2001));
    let errors: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            PacerEvent::SendError {
                errors, zone: z, ..
            } if *z == zone(0) => Some(*errors),
            _ => None,
        })
        .collect();
    assert_eq!(errors, [1, 1000, 2000]);
    assert!(!events
        .iter()
        .any(|e| matches!(e, PacerEvent::SendFailing { .. })));
}

#[test]
fn a_stall_skips_ticks_on_the_same_grid() {
    let mut rig = Rig::new(1);
    let feed = rig.add(1);
    feed.push(0, 0..100);
    rig.tick_with(|core| core.assign(zone(0), Some(program(1))));
    let before = rtp_of(&rig.ticks(5));
    let stalled_at = rig.core.tick();
    let late = Duration::from_millis(1_510);
    assert_eq!(rig.core.begin_tick(late), Begin::Skipped);
    assert_eq!(
        rig.core.tick(),
        stalled_at + 75,
        "1.51 s late: 75 whole frames skipped"
    );
    let after = rig.tick();
    let (_, packet) = after.rtp()[0];
    assert_eq!(after.index, stalled_at + 75);
    assert_eq!(packet.frame, 5, "no frame lost, only time");
    assert_eq!(
        packet.timestamp,
        timestamp_at(stalled_at + 75),
        "timestamp on the same grid"
    );
    assert!(packet.marker, "a jump: marker bit");
    assert_eq!(
        packet.seq,
        before.last().unwrap().1.seq.wrapping_add(1),
        "sequence contiguous"
    );
    let stats = rig.core.stats();
    assert_eq!(
        (stats.stalls, stats.skipped_ticks, stats.longest_stall),
        (1, 75, late)
    );
    assert!(after.events().contains(&PacerEvent::Stalled {
        late,
        skipped_ticks: 75
    }));
    assert_eq!(
        rig.core.begin_tick(STALL),
        Begin::Send,
        "a second late is late, not a stall"
    );
}

#[test]
fn a_zone_that_leaves_is_told_the_first_frame_it_did_not_get() {
    const N: u32 = 7;
    let mut rig = Rig::new(2);
    let feed = rig.add(1);
    feed.push(0, 0..100);
    rig.tick_with(|core| {
        core.assign(zone(0), Some(program(1)));
        core.assign(zone(1), Some(program(1)));
    });
    let played = rtp_of(&rig.ticks(N as usize));
    assert_eq!(played.last().unwrap().1.frame, N - 1);
    let left = rig.tick_with(|core| core.assign(zone(0), None));
    let events: Vec<_> = left
        .events()
        .into_iter()
        .filter(|e| matches!(e, PacerEvent::ZoneLeft { .. }))
        .collect();
    assert_eq!(
        events,
        [PacerEvent::ZoneLeft {
            zone: zone(0),
            program: program(1),
            item: 0,
            position: FRAME.duration() * (N + 1)
        }],
        "the tick the command came in still sent frame {N} to both"
    );
    let next = rig.tick().rtp();
    assert_eq!(
        next.iter()
            .map(|(to, p)| (*to, p.frame))
            .collect::<Vec<_>>(),
        [(rtp_target(1), N + 1)],
        "zone 1 got it, zone 0 did not"
    );
    assert!(
        events_of(&rig.ticks(5))
            .iter()
            .all(|e| !matches!(e, PacerEvent::ZoneLeft { .. })),
        "said once"
    );
}

#[test]
fn a_zone_leaving_a_starved_program_is_told_the_place_after_its_last_frame() {
    let mut rig = Rig::new(2);
    let a = rig.add(1);
    let b = rig.add(2);
    a.push(3, 0..4);
    b.push(0, 0..100);
    rig.tick_with(|core| {
        core.assign(zone(0), Some(program(1)));
        core.assign(zone(1), Some(program(1)));
    });
    rig.ticks(5);
    let left = rig.tick_with(|core| core.assign(zone(0), Some(program(2))));
    assert!(
        left.events().contains(&PacerEvent::ZoneLeft {
            zone: zone(0),
            program: program(1),
            item: 3,
            position: FRAME.duration() * 4,
        }),
        "{:?}",
        left.events()
    );
}

#[test]
fn a_paused_program_is_told_where_its_last_zone_left() {
    let mut rig = Rig::new(1);
    let feed = rig.add(1);
    feed.push(2, 0..50);
    rig.tick_with(|core| core.assign(zone(0), Some(program(1))));
    rig.ticks(4);
    let left = rig.tick_with(|core| core.assign(zone(0), None));
    assert!(left.events().contains(&PacerEvent::ZoneLeft {
        zone: zone(0),
        program: program(1),
        item: 2,
        position: FRAME.duration() * 5,
    }));
}

#[test]
fn events_wait_in_the_ring_while_the_queue_is_full() {
    let mut rig = Rig::new(1);
    let feed = rig.add(1);
    feed.push(0, 0..1000);
    rig.core.assign(zone(0), Some(program(1)));
    let start = rig.core.tick();
    for _ in 0..300 {
        rig.core.begin_tick(Duration::ZERO);
        let now = rig.core.due(rig.core.tick());
        rig.core
            .send(now, SystemTime::UNIX_EPOCH, &mut |_: &[u8], _| Ok(()));
        rig.core.end_tick();
        rig.core.flush_events(|e| Err(TrySendError::Full(e)));
    }
    let mut got = Vec::new();
    rig.core.flush_events(|e| {
        got.push(e);
        Ok(())
    });
    let positions: Vec<Duration> = got
        .iter()
        .filter_map(|e| match e {
            PacerEvent::Progress { position, .. } => Some(*position),
            _ => None,
        })
        .collect();
    assert_eq!(positions.len(), 6, "nothing lost: {got:?}");
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "in order");
    assert!(
        matches!(got[0], PacerEvent::FirstPacket { .. }),
        "from tick {start}"
    );
}

#[test]
fn a_full_ring_drops_only_superseded_events() {
    let mut out = Outputs {
        watch: SendWatch::default(),
        stats: PacerStats::default(),
        events: VecDeque::with_capacity(EVENT_RING),
        now: Instant::now(),
    };
    for _ in 0..EVENT_RING {
        out.emit(PacerEvent::SendIdle);
    }
    out.emit(PacerEvent::Progress {
        program: program(1),
        item: 0,
        position: Duration::ZERO,
    });
    out.emit(PacerEvent::NotSent {
        zone: zone(0),
        count: 1,
    });
    out.emit(PacerEvent::ProgramEnded {
        program: program(1),
    });
    assert_eq!(out.stats.dropped_events, 2);
    assert_eq!(
        out.events.back(),
        Some(&PacerEvent::ProgramEnded {
            program: program(1)
        }),
        "a change is never dropped"
    );
}
