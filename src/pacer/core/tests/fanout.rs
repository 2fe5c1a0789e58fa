//! A zone's packet to many joined speakers: the first slice with the
//! group at the deadline, the others each at its own offset in the tick.

use super::*;

fn speakers(n: u16) -> Vec<SocketAddr> {
    (0..n).map(|i| SocketAddr::from(([203, 0, 113, 9], 10_000 + 2 * i))).collect()
}

/// Datagrams sent through `send`/`send_spread` with the core's own times.
fn logger(log: &RefCell<Vec<SocketAddr>>) -> impl FnMut(&[u8], SocketAddr) -> io::Result<()> + '_ {
    move |_, target| {
        log.borrow_mut().push(target);
        Ok(())
    }
}

/// Begins the tick due at `at` and sends it (group and first slice) into
/// `log`, as the thread does at the deadline.
fn send_at(rig: &mut Rig, at: Instant, log: &RefCell<Vec<SocketAddr>>) {
    let wall = rig.wall();
    assert_eq!(rig.core.begin_tick(Duration::ZERO), Begin::Send);
    rig.core.send(at, wall, &mut logger(log));
}

/// A zone playing program 1 with `n` joined speakers, its first packet
/// stamped for the next send.
fn playing_to(n: u16) -> (Rig, Source, Vec<SocketAddr>) {
    let mut rig = Rig::new(1);
    let feed = rig.add(1);
    feed.push(0, 0..20);
    let targets = speakers(n);
    let list = targets.clone();
    rig.tick_with(|core| {
        core.assign(zone(0), Some(program(1)));
        core.set_speaker_targets(zone(0), list);
    });
    (rig, feed, targets)
}

#[test]
fn the_first_slice_goes_with_the_group_and_the_rest_at_their_slots() {
    let (mut rig, _feed, targets) = playing_to(100);
    let log = RefCell::new(Vec::new());
    let due = rig.core.due(rig.core.tick());
    send_at(&mut rig, due, &log);
    let mut expected = vec![rtp_target(0)];
    expected.extend_from_slice(&targets[..spread::SLICE]);
    assert_eq!(*log.borrow(), expected, "group, then the first slice, at the deadline");

    let slot = spread::slot(100, FRAME.duration());
    assert_eq!(rig.core.spread_due(), Some(due + slot));
    rig.core.send_spread(Some(due + slot - Duration::from_micros(1)), &mut logger(&log));
    assert_eq!(log.borrow().len(), expected.len(), "nothing before its slot");
    rig.core.send_spread(Some(due + slot), &mut logger(&log));
    expected.extend_from_slice(&targets[spread::SLICE..2 * spread::SLICE]);
    assert_eq!(*log.borrow(), expected);
    rig.core.send_spread(Some(due + slot * 3), &mut logger(&log));
    expected.extend_from_slice(&targets[2 * spread::SLICE..]);
    assert_eq!(*log.borrow(), expected, "every speaker once");
    assert_eq!(rig.core.spread_due(), None);
}

#[test]
fn every_speaker_gets_every_packet_once_in_order() {
    let (mut rig, _feed, targets) = playing_to(300);
    let ticks = rig.ticks(5);
    for target in [targets[0], targets[150], targets[299]] {
        let frames: Vec<u32> =
            ticks.iter().flat_map(|t| t.out.iter()).filter_map(|o| match o {
                Out::Datagram(to, bytes) if *to == target => Some(u32::from_be_bytes(bytes[13..17].try_into().unwrap())),
                _ => None,
            })
            .collect();
        assert_eq!(frames, [0, 1, 2, 3, 4], "{target}");
    }
    let per_tick: Vec<usize> = ticks.iter().map(|t| t.out.iter().filter(|o| matches!(o, Out::Datagram(..))).count()).collect();
    assert!(per_tick.iter().all(|&n| n == 301), "{per_tick:?}");
    assert_eq!(rig.core.stats().packets, 5 * 301);
}

#[test]
fn a_new_list_during_the_slices_serves_from_the_next_packet() {
    let (mut rig, _feed, targets) = playing_to(100);
    let log = RefCell::new(Vec::new());
    let due = rig.core.due(rig.core.tick());
    send_at(&mut rig, due, &log);
    let newcomer = SocketAddr::from(([198, 51, 100, 7], 4000));
    rig.core.set_speaker_targets(zone(0), vec![newcomer]);
    rig.core.send_spread(None, &mut logger(&log));
    assert_eq!(log.borrow()[1..], targets[..], "the packet finished on the list it began with");
    rig.core.end_tick();
    log.borrow_mut().clear();
    send_at(&mut rig, due + FRAME.duration(), &log);
    assert_eq!(*log.borrow(), [rtp_target(0), newcomer]);
}

#[test]
fn slices_left_by_a_late_thread_go_before_the_next_packet() {
    let (mut rig, _feed, targets) = playing_to(100);
    let log = RefCell::new(Vec::new());
    let due = rig.core.due(rig.core.tick());
    send_at(&mut rig, due, &log);
    rig.core.end_tick();
    log.borrow_mut().clear();
    send_at(&mut rig, due + FRAME.duration(), &log);
    let sent = log.borrow().clone();
    assert_eq!(sent[..100 - spread::SLICE], targets[spread::SLICE..], "the last packet's slices first");
    assert_eq!(sent[100 - spread::SLICE], rtp_target(0));
}
