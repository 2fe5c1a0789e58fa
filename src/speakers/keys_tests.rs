use std::collections::HashMap;

use super::*;

/// A ring in memory: keys are counters, so a test can tell them apart.
#[derive(Default)]
struct MemoryKeys {
    rings: HashMap<String, Ring>,
    made: u32,
}

impl MemoryKeys {
    fn with_zone(zone: &str) -> MemoryKeys {
        let mut keys = MemoryKeys::default();
        let current = keys.fresh();
        let next = Some(keys.fresh());
        keys.rings.insert(zone.into(), Ring { ssrc: 7, suite: "AES_CM_128_HMAC_SHA1_80", current, next });
        keys
    }

    fn fresh(&mut self) -> RingKey {
        self.made += 1;
        RingKey { mki: self.made, material: vec![self.made as u8; 30] }
    }
}

impl ZoneKeys for MemoryKeys {
    fn ring(&self, zone: &str) -> Option<Ring> {
        self.rings.get(zone).cloned()
    }

    fn renew_next(&mut self, zone: &str) -> Result<Ring, String> {
        let fresh = self.fresh();
        let ring = self.rings.get_mut(zone).ok_or_else(|| format!("no zone {zone}"))?;
        ring.next = Some(fresh);
        Ok(ring.clone())
    }

    fn switch_now(&mut self, zone: &str) -> Result<Ring, String> {
        let ring = self.rings.get_mut(zone).ok_or_else(|| format!("no zone {zone}"))?;
        ring.current = ring.next.take().ok_or("no next key")?;
        Ok(ring.clone())
    }
}

#[test]
fn after_revocation_the_zone_runs_on_a_key_the_revoked_speaker_never_had() {
    let mut keys = MemoryKeys::with_zone("thon-1");
    let known_to_revoked: Vec<u32> = keys.ring("thon-1").unwrap().grants().iter().map(|g| g.mki).collect();
    assert_eq!(known_to_revoked, [1, 2]);

    let messages = renew_for_revocation(&mut keys, &["thon-1".into()]).unwrap();
    let [Message::Keys { zone, keys: grants }] = messages.as_slice() else { panic!("{messages:?}") };
    assert_eq!(zone, "thon-1");
    // The remaining speakers get the current key (still on air) and the
    // fresh next one, before the switch.
    assert_eq!(grants.iter().map(|g| (g.mki, g.current)).collect::<Vec<_>>(), [(1, true), (3, false)]);

    let ring = keys.switch_now("thon-1").unwrap();
    assert!(!known_to_revoked.contains(&ring.current.mki));
}

#[test]
fn grants_carry_the_material_in_base64_and_debug_hides_it() {
    let key = RingKey { mki: 9, material: vec![0xff; 30] };
    let ring = Ring { ssrc: 1, suite: "AES_CM_128_HMAC_SHA1_80", current: key.clone(), next: None };
    assert_eq!(ring.grants(), [KeyGrant { mki: 9, key: "/".repeat(40), current: true }]);
    assert!(!format!("{key:?}").contains("255"), "{key:?}");
}

#[test]
fn renewing_an_unknown_zone_says_which() {
    let mut keys = MemoryKeys::with_zone("thon-1");
    let err = renew_for_revocation(&mut keys, &["thon-1".into(), "thon-9".into()]).unwrap_err();
    assert_eq!(err, "no zone thon-9");
}
