use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::rtp::srtp::Suite;

const DAY: Duration = Duration::from_secs(86_400);

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(15)
}

fn mkis(keys: &ZoneKeys) -> (u32, u32) {
    (keys.current.mki.value(), keys.next.mki.value())
}

#[test]
fn a_new_ring_holds_the_next_key_a_whole_lifetime_before_the_switch() {
    let ring = KeyRing::new(Suite::AesCm128HmacSha1_80, DAY, t(0), &mut rng());
    let keys = ring.keys();
    assert_eq!(mkis(&keys), (1, 2));
    assert_eq!(keys.switch_at, t(86_400));
    assert_eq!(keys.current.mki.byte_len(), MKI_LEN);
    assert_ne!(keys.current.key.expose_bytes(), keys.next.key.expose_bytes());
    assert_eq!(keys.current.key.expose_bytes().len(), 30);
}

#[test]
fn at_the_switch_the_next_key_takes_over_and_a_fresh_next_is_made() {
    let mut r = rng();
    let mut ring = KeyRing::new(Suite::AesCm128HmacSha1_80, DAY, t(0), &mut r);
    let before = ring.keys();
    assert!(!ring.handle_timeout(t(86_399), &mut r));
    assert!(ring.handle_timeout(t(86_400), &mut r));
    let after = ring.keys();
    assert_eq!(mkis(&after), (2, 3));
    assert_eq!(after.current.key.expose_bytes(), before.next.key.expose_bytes());
    assert_ne!(after.next.key.expose_bytes(), before.current.key.expose_bytes());
    assert_eq!(after.switch_at, t(2 * 86_400));
}

#[test]
fn revocation_replaces_the_next_key_and_brings_the_switch_forward() {
    let mut r = rng();
    let mut ring = KeyRing::new(Suite::AeadAes128Gcm, DAY, t(0), &mut r);
    let before = ring.keys();
    ring.rotate_now(t(100), Duration::from_secs(2), &mut r);
    let revoked = ring.keys();
    assert_eq!(mkis(&revoked), (1, 3));
    assert_eq!(revoked.current.key.expose_bytes(), before.current.key.expose_bytes());
    assert_ne!(revoked.next.key.expose_bytes(), before.next.key.expose_bytes());
    assert_eq!(revoked.switch_at, t(102));
    assert!(ring.handle_timeout(t(102), &mut r));
    // Neither key the revoked party held is left.
    let after = ring.keys();
    assert_eq!(mkis(&after), (3, 4));
    for key in after.keys() {
        assert_ne!(key.key.expose_bytes(), before.current.key.expose_bytes());
        assert_ne!(key.key.expose_bytes(), before.next.key.expose_bytes());
    }
}

#[test]
fn a_revocation_key_held_by_every_speaker_switches_at_once_and_a_daily_one_waits() {
    let mut r = rng();
    let mut ring = KeyRing::new(Suite::AesCm128HmacSha1_80, DAY, t(0), &mut r);
    assert!(!ring.switch_early(2, t(10)), "the daily next key keeps its time");
    assert_eq!(ring.switch_at(), t(86_400));
    ring.rotate_now(t(100), Duration::from_secs(2), &mut r);
    assert!(!ring.switch_early(2, t(100)), "a key that is no longer next");
    assert!(ring.switch_early(3, t(100) + Duration::from_millis(40)));
    assert_eq!(ring.switch_at(), t(100) + Duration::from_millis(40));
    assert!(ring.handle_timeout(t(100) + Duration::from_millis(40), &mut r));
    assert_eq!(mkis(&ring.keys()), (3, 4));
    assert!(!ring.switch_early(4, t(101)), "the new next key is a daily one again");
    // Acknowledged only after the hand-out ran out: nothing to bring forward.
    ring.rotate_now(t(200), Duration::from_secs(2), &mut r);
    assert!(!ring.switch_early(5, t(203)));
}

#[test]
fn a_restart_before_the_switch_keeps_both_keys() {
    let mut r = rng();
    let ring = KeyRing::new(Suite::AesCm128HmacSha1_80, DAY, t(0), &mut r);
    let saved = ring.saved();
    let (restored, note) = KeyRing::restore(&saved, Suite::AesCm128HmacSha1_80, DAY, t(3600), &mut r);
    assert_eq!(note, RestoreNote::Kept);
    assert_eq!(restored.saved(), saved);
}

#[test]
fn a_switch_missed_while_down_is_made_at_start() {
    let mut r = rng();
    let ring = KeyRing::new(Suite::AesCm128HmacSha1_80, DAY, t(0), &mut r);
    let next = ring.keys().next.key.expose_bytes().to_vec();
    let (restored, note) =
        KeyRing::restore(&ring.saved(), Suite::AesCm128HmacSha1_80, DAY, t(90_000), &mut r);
    assert_eq!(note, RestoreNote::SwitchedWhileDown);
    assert_eq!(mkis(&restored.keys()), (2, 3));
    assert_eq!(restored.keys().current.key.expose_bytes(), next.as_slice());
    assert_eq!(restored.switch_at(), t(90_000 + 86_400));
}

#[test]
fn expired_keys_another_suite_or_a_damaged_row_give_fresh_keys() {
    let mut r = rng();
    let ring = KeyRing::new(Suite::AesCm128HmacSha1_80, DAY, t(0), &mut r);
    let saved = ring.saved();
    let (_, note) = KeyRing::restore(&saved, Suite::AesCm128HmacSha1_80, DAY, t(2 * 86_400), &mut r);
    assert_eq!(note, RestoreNote::Fresh("both saved keys expired while the daemon was down".into()));
    let (fresh, note) = KeyRing::restore(&saved, Suite::AeadAes128Gcm, DAY, t(10), &mut r);
    assert_eq!(
        note,
        RestoreNote::Fresh("the suite changed from AES_CM_128_HMAC_SHA1_80 to AEAD_AES_128_GCM".into())
    );
    assert_eq!(fresh.keys().suite, Suite::AeadAes128Gcm);
    let mut damaged = saved.clone();
    damaged.next_key.truncate(10);
    let (_, note) = KeyRing::restore(&damaged, Suite::AesCm128HmacSha1_80, DAY, t(10), &mut r);
    assert_eq!(note, RestoreNote::Fresh("the saved keys are unreadable".into()));
}

#[test]
fn a_shorter_lifetime_in_the_config_brings_the_saved_switch_forward() {
    let mut r = rng();
    let ring = KeyRing::new(Suite::AesCm128HmacSha1_80, DAY, t(0), &mut r);
    let hour = Duration::from_secs(3600);
    let (restored, note) = KeyRing::restore(&ring.saved(), Suite::AesCm128HmacSha1_80, hour, t(60), &mut r);
    assert_eq!(note, RestoreNote::Kept);
    assert_eq!(restored.switch_at(), t(60 + 3600));
}

#[test]
fn the_set_reports_each_changed_zone_once_and_its_earliest_switch() {
    let mut r = rng();
    let mut rings = KeyRings::default();
    rings.insert("thon-1", KeyRing::new(Suite::AesCm128HmacSha1_80, DAY, t(0), &mut r));
    rings.insert("thon-2", KeyRing::new(Suite::AesCm128HmacSha1_80, DAY, t(50), &mut r));
    assert_eq!(rings.poll_change().as_deref(), Some("thon-1"));
    assert_eq!(rings.poll_change().as_deref(), Some("thon-2"));
    assert_eq!(rings.poll_change(), None);
    assert_eq!(rings.poll_timeout(), Some(t(86_400)));
    rings.handle_timeout(t(86_400), &mut r);
    assert_eq!(rings.poll_change().as_deref(), Some("thon-1"));
    assert_eq!(rings.poll_change(), None);
    assert_eq!(rings.poll_timeout(), Some(t(86_450)));
    assert!(rings.rotate_now("thon-2", t(86_401), Duration::from_secs(2), &mut r));
    assert!(rings.rotate_now("thon-2", t(86_401), Duration::from_secs(2), &mut r));
    assert!(!rings.rotate_now("plain", t(86_401), Duration::from_secs(2), &mut r));
    assert_eq!(rings.poll_change().as_deref(), Some("thon-2"));
    assert_eq!(rings.poll_change(), None);
    assert_eq!(rings.poll_timeout(), Some(t(86_403)));
}

#[test]
fn a_zone_without_mki_keeps_that_choice_across_switches_and_revocation() {
    let mut r = rng();
    let mut ring = KeyRing::new(Suite::AesCm128HmacSha1_80, DAY, t(0), &mut r).with_mki(false);
    assert_eq!(ring.keys().mki_len(), 0);
    assert!(ring.handle_timeout(t(86_400), &mut r));
    ring.rotate_now(t(86_500), Duration::from_secs(2), &mut r);
    let keys = ring.keys();
    assert!(!keys.packets_carry_mki);
    assert_eq!(mkis(&keys), (2, 4), "keys are still numbered, for the store and the logs");
    assert_eq!(KeyRing::new(Suite::AesCm128HmacSha1_80, DAY, t(0), &mut r).keys().mki_len(), MKI_LEN);
}
