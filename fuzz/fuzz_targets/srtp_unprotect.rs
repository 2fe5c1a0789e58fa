//! Fuzzes the speaker's SRTP receive path: `SrtpReceiver::unprotect_rtp`
//! and `unprotect_rtcp` (our header checks, then libsrtp2) for both suites,
//! with and without MKI. Bytes from the network must give Ok or a typed
//! reject, never a panic or a read past the packet.
//!
//! The first byte picks the case: bit 0 the suite, bit 1 MKI, bit 2 RTCP,
//! bit 3 round trip. A round trip protects the rest as a plain packet
//! with a sender of the same key, then flips the byte the second input
//! byte names: unaltered it must come back identical, altered it must be
//! refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loa::rtp::srtp::{MasterKey, Mki, SrtpReceiver, SrtpSender, Suite, DEFAULT_REPLAY_WINDOW};

const SSRC: u32 = 0x4c4f_4131;

fn key(suite: Suite) -> MasterKey {
    let bytes: Vec<u8> = (0..suite.master_len() as u8).collect();
    MasterKey::from_bytes(suite, &bytes).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let suite = if mode & 1 == 0 {
        Suite::AesCm128HmacSha1_80
    } else {
        Suite::AeadAes128Gcm
    };
    let mki = (mode & 2 != 0).then(|| Mki::new(7, 1).unwrap());
    let rtcp = mode & 4 != 0;

    if mode & 8 == 0 {
        let mut rx = SrtpReceiver::new(SSRC, key(suite), mki, DEFAULT_REPLAY_WINDOW).unwrap();
        let mut packet = rest.to_vec();
        let result = if rtcp {
            rx.unprotect_rtcp(&mut packet)
        } else {
            rx.unprotect_rtp(&mut packet)
        };
        if let Ok(len) = result {
            assert!(len <= rest.len());
        }
        return;
    }

    let Some((&flip, plain)) = rest.split_first() else {
        return;
    };
    let ssrc_at = if rtcp { 4 } else { 8 };
    let Some(ssrc) = plain.get(ssrc_at..ssrc_at + 4) else {
        return;
    };
    let ssrc = u32::from_be_bytes(ssrc.try_into().unwrap());
    let mut tx = SrtpSender::new(ssrc, key(suite), mki).unwrap();
    let mut rx = SrtpReceiver::new(ssrc, key(suite), mki, DEFAULT_REPLAY_WINDOW).unwrap();
    let mut packet = plain.to_vec();
    let protected = if rtcp {
        tx.protect_rtcp(&mut packet)
    } else {
        tx.protect_rtp(&mut packet)
    };
    if protected.is_err() {
        assert_eq!(packet, plain, "a refused packet is left as it was");
        return;
    }
    let altered = usize::from(flip) < packet.len();
    if altered {
        packet[usize::from(flip)] ^= 0x01;
    }
    let result = if rtcp {
        rx.unprotect_rtcp(&mut packet)
    } else {
        rx.unprotect_rtp(&mut packet)
    };
    match result {
        Ok(len) => {
            assert!(!altered, "an altered byte {flip} was accepted");
            assert_eq!(&packet[..len], plain, "round trip");
        }
        Err(e) => assert!(altered, "an unaltered packet was refused: {e}"),
    }
});
