use std::time::{Duration, SystemTime};

use super::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::keys::KeyRing;
use crate::rtp::srtp::{SrtpSender, Suite};

const REPORTER: u32 = 0x5eed_0001;

fn zone_keys() -> ZoneKeys {
    KeyRing::new(Suite::AesCm128HmacSha1_80, Duration::from_secs(86_400), SystemTime::UNIX_EPOCH, &mut StdRng::from_os_rng()).keys()
}

fn report_keys(keys: &ZoneKeys) -> ReportKeys {
    let keys = keys.clone();
    ReportKeys::with_keys(Box::new(move |zone| (zone == "z").then(|| keys.clone())))
}

/// An empty receiver report from `REPORTER`, sealed as SRTCP by `sender`.
fn report(sender: &mut SrtpSender) -> Vec<u8> {
    let mut rr = vec![0x80, 201, 0x00, 0x01];
    rr.extend(REPORTER.to_be_bytes());
    sender.protect_rtcp(&mut rr).unwrap();
    rr
}

fn sender(keys: &ZoneKeys) -> SrtpSender {
    SrtpSender::new(REPORTER, keys.current.key.clone(), Some(keys.current.mki)).unwrap()
}

fn zones() -> Vec<String> {
    vec!["z".to_string()]
}

#[test]
fn a_report_under_the_zone_key_opens_once() {
    let keys = zone_keys();
    let mut rk = report_keys(&keys);
    let sealed = report(&mut sender(&keys));
    let mut first = sealed.clone();
    assert_eq!(rk.open(&zones(), &mut first), Some(("z".to_string(), 8)));
    assert_eq!(&first[..8], &[0x80, 201, 0x00, 0x01, 0x5e, 0xed, 0x00, 0x01]);
    let mut again = sealed.clone();
    assert_eq!(rk.open(&zones(), &mut again), None, "a replay counts once");
    assert_eq!(again, sealed, "a datagram that fails is left as it was");
}

#[test]
fn a_forgery_under_a_known_reporter_does_not_reset_its_replay_window() {
    let keys = zone_keys();
    let mut rk = report_keys(&keys);
    let mut tx = sender(&keys);
    let captured = report(&mut tx);
    assert!(rk.open(&zones(), &mut captured.clone()).is_some());
    // The attacker forges one datagram under the reporter's SSRC...
    let mut forged = captured.clone();
    let last = forged.len() - 1;
    forged[last] ^= 0xff;
    assert_eq!(rk.open(&zones(), &mut forged), None);
    // ...then sends the captured genuine report again: still a replay.
    assert_eq!(rk.open(&zones(), &mut captured.clone()), None, "the replay window survived the forgery");
    // And the reporter's next genuine report still counts.
    assert!(rk.open(&zones(), &mut report(&mut tx)).is_some());
}

#[test]
fn reports_under_other_keys_open_for_no_zone_and_are_not_remembered() {
    let keys = zone_keys();
    let other = zone_keys();
    let mut rk = report_keys(&keys);
    let mut tx = sender(&other);
    for _ in 0..10 {
        assert_eq!(rk.open(&zones(), &mut report(&mut tx)), None);
    }
    assert!(rk.contexts.is_empty(), "forged reports cannot fill the table");
    // A zone the keys task does not know is skipped, not an error.
    assert_eq!(rk.open(&["gone".to_string()], &mut report(&mut sender(&keys))), None);
}
