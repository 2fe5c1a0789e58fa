use super::*;
use crate::speaker::gate::tests::rtp;
use crate::rtp::srtp::{KeyParam, SrtpSender, Suite};

const FRAME: Duration = Duration::from_millis(20);

/// A zone as loa would grant it, and loa's sender for it.
fn zone(name: &str, ssrc: u32) -> (Granted, SrtpSender) {
    let suite = Suite::AesCm128HmacSha1_80;
    let key = MasterKey::generate(suite, &mut rand::rng());
    let mki = Mki::new(1, 4).unwrap();
    let tx = SrtpSender::new(ssrc, key.clone(), Some(mki)).unwrap();
    let crypto = CryptoAttribute { tag: 1, suite, keys: vec![KeyParam { key, lifetime: None, mki: Some(mki) }] };
    (Granted { name: name.into(), ssrc, payload_type: 96, crypto, group: None }, tx)
}

fn sealed(tx: &mut SrtpSender, ssrc: u32, seq: u16) -> Vec<u8> {
    let mut p = rtp(ssrc, seq);
    tx.protect_rtp(&mut p).unwrap();
    p
}

#[test]
fn the_zone_playing_keeps_playing_while_it_is_on_air() {
    let t0 = Instant::now();
    let mut s = Selector::default();
    assert!(s.heard("a", t0));
    for n in 1..100u32 {
        let t = t0 + FRAME * n;
        assert!(s.heard("a", t), "a at frame {n}");
        assert!(!s.heard("b", t), "b is on air too, and not played at frame {n}");
    }
    assert_eq!(s.playing(), Some("a"));
}

#[test]
fn another_zone_on_air_takes_over_only_once_the_one_playing_went_idle() {
    let t0 = Instant::now();
    let mut s = Selector::default();
    assert!(s.heard("a", t0));
    assert!(!s.heard("b", t0 + IDLE_AFTER - Duration::from_millis(1)), "a may still be in a short gap");
    assert!(s.heard("b", t0 + IDLE_AFTER));
    assert_eq!(s.playing(), Some("b"));
    // a comes back while b plays: b keeps the speaker.
    assert!(!s.heard("a", t0 + IDLE_AFTER + FRAME));
    assert!(s.heard("b", t0 + IDLE_AFTER + FRAME));
}

#[test]
fn a_zone_taken_away_lets_another_play_at_once() {
    let t0 = Instant::now();
    let mut s = Selector::default();
    assert!(s.heard("a", t0));
    s.forget("b");
    assert_eq!(s.playing(), Some("a"), "forgetting another zone changes nothing");
    s.forget("a");
    assert!(s.heard("b", t0 + FRAME));
}

#[test]
fn packets_of_the_zone_not_played_are_verified_and_go_no_further() {
    let t0 = Instant::now();
    let ((a, mut tx_a), (b, mut tx_b)) = (zone("a", 10), zone("b", 20));
    let mut zones = JoinedZones::new(vec![a, b]);
    for seq in 0..50u16 {
        let t = t0 + FRAME * u32::from(seq);
        assert_eq!(zones.open(&mut sealed(&mut tx_a, 10, seq), false, t), Opened::Play { len: 18, payload_type: 96 });
        assert_eq!(zones.open(&mut sealed(&mut tx_b, 20, 1000 + seq), false, t), Opened::NotPlayed);
    }
    assert_eq!(zones.not_played, 50);
    assert_eq!(zones.playing(), Some("a"));
    assert_eq!(zones.rejected().total(), 0);
    // a ends; b, still on air, takes over after the idle time.
    let end = t0 + FRAME * 50;
    assert_eq!(zones.open(&mut sealed(&mut tx_b, 20, 2000), false, end), Opened::NotPlayed);
    assert_eq!(zones.open(&mut sealed(&mut tx_b, 20, 2001), false, end + IDLE_AFTER), Opened::Play { len: 18, payload_type: 96 });
    assert_eq!(zones.playing(), Some("b"));
}

#[test]
fn forged_packets_in_another_zones_name_neither_play_nor_take_the_speaker() {
    let t0 = Instant::now();
    let ((a, mut tx_a), (b, _)) = (zone("a", 10), zone("b", 20));
    let (_, mut forger) = zone("b", 20);
    let mut zones = JoinedZones::new(vec![a, b]);
    assert!(matches!(zones.open(&mut sealed(&mut tx_a, 10, 1), false, t0), Opened::Play { .. }));
    let late = t0 + IDLE_AFTER * 4;
    // b's SSRC under a key loa never gave, plain RTP, a stranger's SSRC.
    assert_eq!(zones.open(&mut sealed(&mut forger, 20, 5), false, late), Opened::Rejected);
    assert_eq!(zones.open(&mut rtp(20, 6), false, late), Opened::Rejected);
    let (_, mut stranger) = zone("x", 99);
    assert_eq!(zones.open(&mut sealed(&mut stranger, 99, 7), false, late), Opened::Rejected);
    assert_eq!(zones.open(&mut [0x80, 96, 0], false, late), Opened::Rejected);
    assert_eq!(zones.playing(), Some("a"));
    let r = zones.rejected();
    assert_eq!((r.bad_auth, r.unknown_ssrc, r.malformed), (1, 1, 2), "{r:?}");
    assert!(matches!(zones.open(&mut sealed(&mut tx_a, 10, 2), false, late), Opened::Play { .. }));
}

#[test]
fn a_zone_sent_anew_by_a_reload_plays_on_under_its_new_ssrc_and_the_old_one_is_refused() {
    let t0 = Instant::now();
    let (a, mut tx_a) = zone("a", 10);
    let mut zones = JoinedZones::new(vec![a]);
    assert!(matches!(zones.open(&mut sealed(&mut tx_a, 10, 1), false, t0), Opened::Play { .. }));
    let (renewed, mut tx_new) = zone("a", 11);
    zones.grant(renewed);
    assert_eq!(zones.granted().count(), 1);
    assert!(matches!(zones.open(&mut sealed(&mut tx_new, 11, 500), false, t0 + FRAME), Opened::Play { .. }));
    assert_eq!(zones.open(&mut sealed(&mut tx_a, 10, 2), false, t0 + FRAME), Opened::Rejected);
    zones.gone("a");
    assert_eq!(zones.open(&mut sealed(&mut tx_new, 11, 501), false, t0 + FRAME * 2), Opened::Rejected);
    assert_eq!(zones.playing(), None);
    assert_eq!(zones.rejected().unknown_ssrc, 2);
}
