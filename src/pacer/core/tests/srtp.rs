//! SRTP zones: every packet and report sealed once, keys switched at a
//! packet boundary, and no index ever protected twice.

use std::time::UNIX_EPOCH;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::keys::{KeyRing, ZoneKeys};
use crate::pacer::seal::ZoneSeal;
use crate::rtp::srtp::{SrtpReceiver, Suite, UnprotectError};

const DAY: Duration = Duration::from_secs(86_400);

fn ring(seed: u64) -> KeyRing {
    KeyRing::new(Suite::AesCm128HmacSha1_80, DAY, UNIX_EPOCH + DAY * 20_000, &mut StdRng::seed_from_u64(seed))
}

fn srtp_rig(keys: &ZoneKeys) -> Rig {
    let mut spec = spec(0);
    spec.seal = Some(ZoneSeal::new(spec.session.ssrc, keys).unwrap());
    Rig::with_specs(vec![spec])
}

/// A receiver that holds both keys, as one given `loa sdp`'s output.
fn receiver(keys: &ZoneKeys) -> SrtpReceiver {
    let mut rx = SrtpReceiver::new(0x1000, keys.current.key.clone(), Some(keys.current.mki), 128).unwrap();
    rx.add_key(keys.next.key.clone(), keys.next.mki).unwrap();
    rx
}

fn datagrams(ticks: &[Tick], port: u16) -> Vec<Vec<u8>> {
    ticks
        .iter()
        .flat_map(|t| t.out.iter())
        .filter_map(|o| match o {
            Out::Datagram(target, bytes) if target.port() == port => Some(bytes.clone()),
            _ => None,
        })
        .collect()
}

fn mki_of(packet: &[u8]) -> u32 {
    // 4-byte MKI, then the 10-byte tag of AES_CM_128_HMAC_SHA1_80.
    let at = packet.len() - 14;
    u32::from_be_bytes(packet[at..at + 4].try_into().unwrap())
}

/// Unprotects every packet; returns the (seq, frame number) of each.
fn open_all(rx: &mut SrtpReceiver, packets: &[Vec<u8>]) -> Vec<(u16, u32)> {
    packets
        .iter()
        .map(|p| {
            let mut bytes = p.clone();
            let len = rx.unprotect_rtp(&mut bytes).unwrap();
            let r = rtp_rs::RtpReader::new(&bytes[..len]).unwrap();
            let payload = r.payload();
            (u16::from(r.sequence_number()), u32::from_be_bytes(payload[1..5].try_into().unwrap()))
        })
        .collect()
}

#[test]
fn every_packet_is_sealed_and_only_a_key_holder_reads_it() {
    let keys = ring(1).keys();
    let mut rig = srtp_rig(&keys);
    let source = rig.add(1);
    source.push(0, 0..50);
    rig.tick_with(|c| c.assign(zone(0), Some(program(1))));
    let ticks = rig.ticks(50);
    let packets = datagrams(&ticks, 5004);
    assert_eq!(packets.len(), 50);
    // The payload on the wire is not the frame.
    assert!(packets.iter().all(|p| p[12..17] != frame(0, 0).payload.as_slice()[..5]));
    assert!(packets.iter().all(|p| mki_of(p) == keys.current.mki.value()));
    let opened = open_all(&mut receiver(&keys), &packets);
    let frames: Vec<u32> = opened.iter().map(|(_, f)| *f).collect();
    assert_eq!(frames, (0..50).collect::<Vec<_>>());
    // Another key opens nothing.
    let stranger = ring(2).keys();
    let mut bytes = packets[0].clone();
    assert!(matches!(receiver(&stranger).unprotect_rtp(&mut bytes), Err(UnprotectError::UnknownKey { .. } | UnprotectError::BadAuth)));
}

#[test]
fn reports_are_srtcp() {
    let keys = ring(3).keys();
    let mut rig = srtp_rig(&keys);
    let source = rig.add(1);
    source.push(0, 0..400);
    rig.tick_with(|c| c.assign(zone(0), Some(program(1))));
    let ticks = rig.ticks(400);
    let reports = datagrams(&ticks, 5005);
    assert!(!reports.is_empty(), "an SR goes out within 8 s");
    let mut rx = receiver(&keys);
    for report in reports {
        let mut bytes = report.clone();
        let len = rx.unprotect_rtcp(&mut bytes).unwrap();
        let packets = parse_compound(&bytes[..len]).unwrap();
        assert!(matches!(packets[0], RtcpPacket::SenderReport { .. }), "{packets:?}");
    }
}

#[test]
fn a_key_switch_happens_at_a_packet_boundary_and_the_receiver_follows_the_mki() {
    let mut r = StdRng::seed_from_u64(9);
    let mut ring = ring(4);
    let before = ring.keys();
    let mut rig = srtp_rig(&before);
    let source = rig.add(1);
    source.push(0, 0..60);
    rig.tick_with(|c| c.assign(zone(0), Some(program(1))));
    let mut ticks = rig.ticks(30);
    assert!(ring.handle_timeout(before.switch_at, &mut r));
    let after = ring.keys();
    ticks.push(rig.tick_with(|c| c.set_zone_keys(zone(0), &after)));
    ticks.extend(rig.ticks(29));
    let packets = datagrams(&ticks, 5004);
    let mkis: Vec<u32> = packets.iter().map(|p| mki_of(p)).collect();
    let switch = mkis.iter().position(|&m| m == after.current.mki.value()).unwrap();
    assert!(mkis[..switch].iter().all(|&m| m == before.current.mki.value()));
    assert!(mkis[switch..].iter().all(|&m| m == after.current.mki.value()));
    // The receiver from the old SDP held the next key: nothing is lost.
    let frames: Vec<u32> = open_all(&mut receiver(&before), &packets).iter().map(|(_, f)| *f).collect();
    assert_eq!(frames, (0..60).collect::<Vec<_>>());
    assert!(events_of(&ticks).iter().all(|e| !matches!(e, PacerEvent::KeysRefused { .. })));
}

#[test]
fn keys_for_a_plain_zone_are_refused_with_an_event() {
    let mut rig = Rig::new(1);
    let keys = ring(5).keys();
    let tick = rig.tick_with(|c| c.set_zone_keys(zone(0), &keys));
    assert_eq!(tick.events(), [PacerEvent::KeysRefused { zone: zone(0) }]);
}

#[test]
fn a_packet_not_sent_keeps_its_sequence_number_spent() {
    let keys = ring(6).keys();
    let mut rig = srtp_rig(&keys);
    let source = rig.add(1);
    source.push(0, 0..20);
    rig.tick_with(|c| c.assign(zone(0), Some(program(1))));
    let mut ticks = rig.ticks(5);
    rig.failing = Some(libc::ENETUNREACH);
    rig.ticks(2);
    rig.failing = None;
    ticks.extend(rig.ticks(10));
    let packets = datagrams(&ticks, 5004);
    let opened = open_all(&mut receiver(&keys), &packets);
    let seqs: Vec<u16> = opened.iter().map(|(s, _)| *s).collect();
    // Two sequence numbers stay unused (their keystream was spent on
    // packets that never left); every packet sent authenticates.
    assert_eq!(seqs[5], seqs[4].wrapping_add(3), "{seqs:?}");
    for pair in seqs.windows(2) {
        assert_ne!(pair[0], pair[1]);
    }
    assert_eq!(rig.core.stats().seal_errors, 0);
}

#[test]
fn a_stall_restamps_under_fresh_indexes() {
    let keys = ring(7).keys();
    let mut rig = srtp_rig(&keys);
    let source = rig.add(1);
    source.push(0, 0..20);
    rig.tick_with(|c| c.assign(zone(0), Some(program(1))));
    let mut ticks = rig.ticks(3);
    assert_eq!(rig.core.begin_tick(Duration::from_secs(3)), Begin::Skipped);
    ticks.extend(rig.ticks(5));
    let packets = datagrams(&ticks, 5004);
    let opened = open_all(&mut receiver(&keys), &packets);
    let frames: Vec<u32> = opened.iter().map(|(_, f)| *f).collect();
    assert_eq!(frames, (0..8).collect::<Vec<_>>(), "no frame lost to the stall");
    assert_eq!(opened[3].0, opened[2].0.wrapping_add(2), "the withdrawn packet's index is not reused");
    assert_eq!(rig.core.stats().seal_errors, 0);
}
