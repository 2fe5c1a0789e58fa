//! A context without MKI (a zone with `mki = false`, for receivers such
//! as ffmpeg that cannot read one): its one key is replaced at a key
//! change, and only a receiver holding the new key follows.

use super::*;

const SSRC: u32 = 0x0bad_cafe;

fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 960).to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(&[0xfc, 1, 2, 3]);
    p
}

fn key(suite: Suite, fill: u8) -> MasterKey {
    MasterKey::from_bytes(suite, &vec![fill; suite.master_len()]).unwrap()
}

#[test]
fn a_replaced_key_protects_from_the_next_packet_and_the_index_goes_on() {
    for suite in [Suite::AesCm128HmacSha1_80, Suite::AeadAes128Gcm] {
        let (old, new) = (key(suite, 1), key(suite, 2));
        let mut tx = SrtpSender::new(SSRC, old.clone(), None).unwrap();
        let mut holds_old = SrtpReceiver::new(SSRC, old, None, DEFAULT_REPLAY_WINDOW).unwrap();
        let mut holds_new = SrtpReceiver::new(SSRC, new.clone(), None, DEFAULT_REPLAY_WINDOW).unwrap();
        // Across the sequence wrap, so the ROC must carry over the change.
        for seq in 65_530..=65_535u16 {
            let mut p = rtp(seq);
            tx.protect_rtp(&mut p).unwrap();
            assert_eq!(p.len(), 16 + suite.tag_len(), "no MKI on the wire");
            assert!(holds_old.unprotect_rtp(&mut p).is_ok(), "{suite} seq {seq}");
        }
        tx.replace_key(new).unwrap();
        assert_eq!(tx.last_index(), Some(65_535));
        for seq in 0..5u16 {
            let mut p = rtp(seq);
            tx.protect_rtp(&mut p).unwrap();
            assert_eq!(tx.last_index(), Some(65_536 + u64::from(seq)));
            assert_eq!(holds_old.unprotect_rtp(&mut p.clone()), Err(UnprotectError::BadAuth), "{suite}");
            // A receiver handed the new key after the wrap must know the
            // ROC, as any late joiner does.
            if seq == 0 {
                holds_new.expect_index(65_536).unwrap();
            }
            assert!(holds_new.unprotect_rtp(&mut p).is_ok(), "{suite} seq {seq} under the new key");
        }
        // SRTCP follows the new key too.
        let mut sr = vec![0x80, 200, 0, 1];
        sr.extend_from_slice(&SSRC.to_be_bytes());
        tx.protect_rtcp(&mut sr).unwrap();
        assert!(holds_new.unprotect_rtcp(&mut sr).is_ok());
    }
}

#[test]
fn key_replacement_is_only_for_a_context_without_mki() {
    let suite = Suite::AesCm128HmacSha1_80;
    let mut named = SrtpSender::new(SSRC, key(suite, 1), Some(Mki::new(1, 4).unwrap())).unwrap();
    assert_eq!(named.replace_key(key(suite, 2)), Err(SetupError::NamedByMki));
    let mut bare = SrtpSender::new(SSRC, key(suite, 1), None).unwrap();
    assert_eq!(
        bare.replace_key(key(Suite::AeadAes128Gcm, 2)),
        Err(SetupError::SuiteMismatch { expected: suite, got: Suite::AeadAes128Gcm })
    );
}
