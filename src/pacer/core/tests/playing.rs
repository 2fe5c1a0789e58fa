//! What plays where and when: stamping, pauses, assignments, ends.

use super::*;

#[test]
fn a_frame_is_stamped_per_zone_and_sent_to_every_zone_the_program_owns() {
    let mut rig = Rig::new(3);
    let feed = rig.add(1);
    feed.push(0, 0..10);
    rig.tick_with(|core| {
        core.assign(zone(0), Some(program(1)));
        core.assign(zone(2), Some(program(1)));
    });
    let tick = rig.tick();
    let rtp = tick.rtp();
    assert_eq!(
        rtp.len(),
        2,
        "one packet per zone it owns, none for zone 1: {rtp:?}"
    );
    assert_eq!(rtp[0].0, rtp_target(0));
    assert_eq!(rtp[1].0, rtp_target(2));
    for (n, (_, packet)) in rtp.iter().enumerate() {
        assert_eq!(
            (packet.item, packet.frame),
            (0, 0),
            "the same frame (one encode) on both"
        );
        assert_eq!(
            packet.ssrc,
            0x1000 + 2 * n as u32,
            "each zone's own session"
        );
        assert_eq!(
            packet.timestamp,
            timestamp_at(tick.index),
            "media time is the tick"
        );
        assert!(packet.marker, "first packet of the zone");
        assert_eq!(packet.seq, INITIAL_SEQ);
    }
    assert_eq!(
        feed.queued(),
        8,
        "one frame taken for both zones (and the next in hand)"
    );
    let next = rig.tick().rtp();
    assert!(next
        .iter()
        .all(|(_, p)| p.frame == 1 && !p.marker && p.seq == INITIAL_SEQ.wrapping_add(1)));
}

#[test]
fn a_paused_program_keeps_its_position() {
    let mut rig = Rig::new(1);
    let feed = rig.add(1);
    feed.push(0, 0..100);
    rig.tick_with(|core| core.assign(zone(0), Some(program(1))));
    let played = rtp_of(&rig.ticks(3));
    assert_eq!(
        played.iter().map(|(_, p)| p.frame).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    rig.tick_with(|core| core.assign(zone(0), None));
    let paused = rig.ticks(20);
    assert!(rtp_of(&paused).is_empty(), "nothing while it owns no zone");
    assert_eq!(rig.core.stats().underruns, 0, "a pause is not an underrun");
    let taken_while_paused = 100 - feed.queued() - 4;
    assert!(
        taken_while_paused <= 1,
        "at most the frame that told where the zone left off"
    );
    rig.tick_with(|core| core.assign(zone(0), Some(program(1))));
    let resumed = rtp_of(&rig.ticks(2));
    // Frame 3 went out on the tick the pause came in; 4 was held since.
    assert_eq!(
        resumed.iter().map(|(_, p)| p.frame).collect::<Vec<_>>(),
        [4, 5],
        "resumes at the frame where it stopped"
    );
}

#[test]
fn an_underrun_is_counted_and_sends_nothing() {
    let mut rig = Rig::new(1);
    let feed = rig.add(1);
    feed.push(0, 0..2);
    rig.tick_with(|core| core.assign(zone(0), Some(program(1))));
    let before = rtp_of(&rig.ticks(2));
    let empty = rig.tick();
    assert!(empty.rtp().is_empty());
    assert_eq!(rig.core.stats().underruns, 1);
    feed.push(0, 2..3);
    let after = rig.tick();
    let (_, packet) = after.rtp()[0];
    assert_eq!(packet.frame, 2);
    assert_eq!(
        packet.seq,
        before[1].1.seq.wrapping_add(1),
        "sequence stays contiguous"
    );
    assert_eq!(
        packet.timestamp,
        timestamp_at(after.index),
        "the timestamp jumps over the missed tick"
    );
    assert!(packet.marker, "a gap: marker bit");
    assert_eq!(rig.core.stats().underruns, 1);
}

#[test]
fn a_frame_late_for_stamping_still_makes_its_tick() {
    let mut rig = Rig::new(1);
    let feed = rig.add(1);
    rig.tick_with(|core| core.assign(zone(0), Some(program(1))));
    // Stamping found nothing; the frame arrives before the deadline.
    feed.push(0, 0..1);
    let tick = rig.tick();
    assert_eq!(tick.rtp().len(), 1);
    assert_eq!(tick.rtp()[0].1.timestamp, timestamp_at(tick.index));
    assert_eq!(rig.core.stats().underruns, 0);
}

/// First tick at which `zone` sent.
fn first_send(rig: &mut Rig, ticks: usize, target: SocketAddr) -> Option<u64> {
    (0..ticks)
        .map(|_| rig.tick())
        .find(|t| t.rtp().iter().any(|(to, _)| *to == target))
        .map(|t| t.index)
}

#[test]
fn a_timed_assignment_takes_the_tick_at_or_after_its_instant() {
    for (offset_us, expected) in [
        (-3_000i64, 10),
        (0, 10),
        (400, 10),
        (-400, 10),
        (600, 11),
        (-19_000, 10),
    ] {
        let mut rig = Rig::new(1);
        let feed = rig.add(1);
        feed.push(0, 0..100);
        let due = rig.core.due(10);
        let at = if offset_us < 0 {
            due - Duration::from_micros(offset_us.unsigned_abs())
        } else {
            due + Duration::from_micros(offset_us as u64)
        };
        rig.tick_with(|core| core.assign_at(zone(0), Some(program(1)), at));
        assert!(rig.core.on_air(), "a pending start keeps the clock tight");
        assert_eq!(
            first_send(&mut rig, 20, rtp_target(0)),
            Some(expected),
            "instant {offset_us} µs from tick 10"
        );
    }
}

#[test]
fn an_assignment_supersedes_a_timed_one_of_the_same_zone() {
    let mut rig = Rig::new(1);
    let feed = rig.add(1);
    feed.push(0, 0..100);
    let at = rig.core.due(5);
    rig.tick_with(|core| {
        core.assign_at(zone(0), Some(program(1)), at);
        core.assign(zone(0), None);
    });
    assert_eq!(first_send(&mut rig, 10, rtp_target(0)), None);
}

#[test]
fn removing_a_program_idles_its_zones() {
    let mut rig = Rig::new(2);
    let feed = rig.add(1);
    feed.push(0, 0..100);
    rig.tick_with(|core| {
        core.assign(zone(0), Some(program(1)));
        core.assign(zone(1), Some(program(1)));
    });
    rig.ticks(3);
    let removed = rig.tick_with(|core| assert!(core.remove_program(program(1)).is_some()));
    assert_eq!(
        removed.rtp().len(),
        2,
        "that tick's packets were out before the command"
    );
    let after = rig.ticks(5);
    assert!(rtp_of(&after).is_empty());
    assert!(!rig.core.on_air());
    assert!(rig.core.finished());
    let events = events_of(&after);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, PacerEvent::ZoneLeft { .. })),
        "a removed program plays nowhere: no resume point: {events:?}"
    );
}

#[test]
fn a_retired_zone_says_bye_and_stays_idle() {
    let mut rig = Rig::new(2);
    let feed = rig.add(1);
    feed.push(0, 0..100);
    rig.tick_with(|core| {
        core.assign(zone(0), Some(program(1)));
        core.assign(zone(1), Some(program(1)));
    });
    rig.ticks(2);
    rig.tick_with(|core| core.retire_zone(zone(0)));
    let bye = rig.tick();
    assert_eq!(
        bye.rtp().iter().map(|(to, _)| *to).collect::<Vec<_>>(),
        [rtp_target(1)]
    );
    let rtcp = bye.rtcp();
    assert_eq!(rtcp.len(), 1, "{rtcp:?}");
    assert_eq!(rtcp[0].0.ip(), rtp_target(0).ip());
    assert!(rtcp[0].1.iter().any(|p| matches!(p, RtcpPacket::Bye { ssrcs, reason } if ssrcs == &[0x1000] && reason.as_deref() == Some("zone removed"))));
    rig.tick_with(|core| {
        core.assign(zone(0), Some(program(1)));
        core.assign_at(zone(0), Some(program(1)), core.due(core.tick() + 2));
    });
    let later = rig.ticks(300);
    assert!(
        later.iter().flat_map(|t| t.out.iter()).all(|o| match o {
            Out::Datagram(to, _) => to.ip() != rtp_target(0).ip(),
            Out::Event(_) => true,
        }),
        "no RTP and no report after BYE"
    );
}

#[test]
fn progress_is_reported_on_item_change_and_about_once_a_second() {
    let mut rig = Rig::new(1);
    let feed = rig.add(1);
    feed.push(0, 0..120);
    feed.push(1, 0..100);
    rig.tick_with(|core| core.assign(zone(0), Some(program(1))));
    let ticks = rig.ticks(200);
    let progress: Vec<(u64, usize, Duration)> = ticks
        .iter()
        .flat_map(|t| {
            t.events().into_iter().filter_map(move |e| match e {
                PacerEvent::Progress { item, position, .. } => Some((t.index, item, position)),
                _ => None,
            })
        })
        .collect();
    let ms = Duration::from_millis;
    assert_eq!(
        progress,
        [
            (1, 0, ms(0)),
            (51, 0, ms(1000)),
            (101, 0, ms(2000)),
            (121, 1, ms(0)),
            (171, 1, ms(1000))
        ],
        "first frame, each second, the new item, a second after it"
    );
}

#[test]
fn first_packet_is_reported_once_per_assignment() {
    let mut rig = Rig::new(1);
    let feed = rig.add(1);
    feed.push(0, 0..100);
    rig.tick_with(|core| core.assign(zone(0), Some(program(1))));
    let first = rig.ticks(10);
    let firsts = |ticks: &[Tick]| {
        ticks
            .iter()
            .flat_map(|t| {
                t.events()
                    .into_iter()
                    .filter(|e| matches!(e, PacerEvent::FirstPacket { .. }))
                    .map(move |e| (t.index, e))
            })
            .collect::<Vec<_>>()
    };
    let found = firsts(&first);
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0],
        (
            1,
            PacerEvent::FirstPacket {
                program: program(1),
                zone: zone(0),
                at: rig.core.due(1)
            }
        )
    );
    rig.tick_with(|core| core.assign(zone(0), None));
    rig.tick_with(|core| core.assign(zone(0), Some(program(1))));
    assert_eq!(
        firsts(&rig.ticks(10)).len(),
        1,
        "a new assignment, a new first packet"
    );
}

#[test]
fn a_program_ends_after_its_queue_closes() {
    let mut rig = Rig::new(2);
    let feed = rig.add(1);
    feed.push(0, 0..3);
    feed.close();
    rig.tick_with(|core| {
        core.assign(zone(0), Some(program(1)));
        core.assign(zone(1), Some(program(1)));
    });
    let ticks = rig.ticks(6);
    assert_eq!(rtp_of(&ticks).len(), 6, "three frames on two zones");
    let ended: Vec<u64> = ticks
        .iter()
        .filter(|t| {
            t.events().contains(&PacerEvent::ProgramEnded {
                program: program(1),
            })
        })
        .map(|t| t.index)
        .collect();
    assert_eq!(
        ended,
        [3],
        "said once, at the end of the tick after the last frame"
    );
    assert!(!rig.core.on_air(), "its zones are idle");
    assert!(rig.core.finished());
    assert_eq!(rig.core.stats().underruns, 0, "the end is not an underrun");
    assert!(
        rig.core.take_released().is_some(),
        "its queue is handed back, not dropped by the core"
    );
    assert!(rig.core.take_released().is_none());
    let left = events_of(&ticks);
    assert!(!left
        .iter()
        .any(|e| matches!(e, PacerEvent::ZoneLeft { .. })));
}

#[test]
fn sends_happen_before_any_event_of_the_same_tick() {
    let mut rig = Rig::new(2);
    let a = rig.add(1);
    let b = rig.add(2);
    a.push(0, 0..10);
    b.push(0, 0..10);
    let mut ticks = vec![rig.tick_with(|core| {
        core.assign(zone(0), Some(program(1)));
        core.assign(zone(1), Some(program(2)));
    })];
    // Commands in the middle of a tick: their events come after its sends.
    ticks.push(rig.tick_with(|core| core.assign(zone(1), Some(program(1)))));
    ticks.push(rig.tick());
    for tick in &ticks[1..] {
        let first_event = tick.out.iter().position(|o| matches!(o, Out::Event(_)));
        let last_send = tick
            .out
            .iter()
            .rposition(|o| matches!(o, Out::Datagram(..)));
        assert!(first_event.is_some(), "tick {} has events", tick.index);
        assert!(
            last_send < first_event,
            "tick {}: {:?}",
            tick.index,
            tick.out
        );
    }
}

#[test]
fn joined_speakers_get_the_zones_packet_after_its_group_and_follow_a_new_list() {
    let speaker = |port| SocketAddr::from(([203, 0, 113, 9], port));
    let mut rig = Rig::new(1);
    let feed = rig.add(1);
    feed.push(0, 0..10);
    rig.tick_with(|core| {
        core.assign(zone(0), Some(program(1)));
        core.set_speaker_targets(zone(0), vec![speaker(5004), speaker(5004 + 1000)]);
    });
    let out: Vec<(SocketAddr, u32)> = rig.tick().rtp().into_iter().map(|(to, p)| (to, p.frame)).collect();
    // Port 6004 is not an RTP port to the rig's reader; the datagrams say it.
    assert_eq!(out, [(rtp_target(0), 0), (speaker(5004), 0)]);
    let sent = rig.tick_with(|core| core.set_speaker_targets(zone(0), vec![speaker(5004)]));
    let datagrams = sent.out.iter().filter(|o| matches!(o, Out::Datagram(to, _) if *to == speaker(6004))).count();
    assert_eq!(datagrams, 1, "the old list still served this tick");
    let after = rig.tick().out.iter().filter(|o| matches!(o, Out::Datagram(to, _) if *to == speaker(6004))).count();
    assert_eq!(after, 0, "the replaced list is gone from the next send");
}
