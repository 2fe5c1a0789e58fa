//! Behaviour of the SRTP contexts and key encodings. Known-answer tests
//! (RFC 3711 Appendix B, libsrtp's and ffmpeg's reference packets) are in
//! `tests_kat.rs`.

use super::context::estimate_index;
use super::*;

const SSRC: u32 = 0x1234_5678;

fn key(suite: Suite, fill: u8) -> MasterKey {
    let bytes: Vec<u8> = (0..suite.master_len() as u8)
        .map(|i| i.wrapping_mul(7) ^ fill)
        .collect();
    MasterKey::from_bytes(suite, &bytes).unwrap()
}

fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 960).to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A sender report with no report blocks (RFC 3550 §6.4.1), 28 bytes.
fn sender_report(packets: u32) -> Vec<u8> {
    let mut p = vec![0x80, 200, 0, 6];
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(&[0xe0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 3, 0xc0]);
    p.extend_from_slice(&packets.to_be_bytes());
    p.extend_from_slice(&(packets * 80).to_be_bytes());
    p
}

fn pair(suite: Suite, mki: Option<Mki>) -> (SrtpSender, SrtpReceiver) {
    let tx = SrtpSender::new(SSRC, key(suite, 1), mki).unwrap();
    let rx = SrtpReceiver::new(SSRC, key(suite, 1), mki, DEFAULT_REPLAY_WINDOW).unwrap();
    (tx, rx)
}

fn mki(value: u32) -> Mki {
    Mki::new(value, 1).unwrap()
}

#[test]
fn rtp_round_trips_encrypted_for_both_suites() {
    for suite in Suite::ALL {
        let (mut tx, mut rx) = pair(suite, None);
        let plain = rtp(
            1000,
            b"opus frame bytes, about a hundred of them in real life",
        );
        let mut packet = plain.clone();
        tx.protect_rtp(&mut packet).unwrap();
        assert_eq!(packet.len(), plain.len() + suite.tag_len(), "{suite}");
        assert_eq!(packet[..12], plain[..12], "{suite}: the header stays clear");
        assert_ne!(
            packet[12..plain.len()],
            plain[12..],
            "{suite}: the payload is encrypted"
        );
        let len = rx.unprotect_rtp(&mut packet).unwrap();
        assert_eq!(packet[..len], plain[..], "{suite}");
    }
}

#[test]
fn rtcp_round_trips_as_srtcp_for_both_suites() {
    for suite in Suite::ALL {
        let (mut tx, mut rx) = pair(suite, None);
        for n in 1..=3 {
            let plain = sender_report(n);
            let mut packet = plain.clone();
            tx.protect_rtcp(&mut packet).unwrap();
            assert_eq!(packet.len(), plain.len() + 4 + suite.tag_len(), "{suite}");
            assert_ne!(
                packet[8..plain.len()],
                plain[8..],
                "{suite}: SRTCP encrypts after the SSRC"
            );
            // AES-CM: E ‖ index ‖ tag; GCM: tag ‖ E ‖ index.
            let at = if suite == Suite::AeadAes128Gcm {
                packet.len() - 4
            } else {
                plain.len()
            };
            let index = u32::from_be_bytes(packet[at..at + 4].try_into().unwrap());
            assert_eq!(
                index,
                0x8000_0000 | n,
                "{suite}: E bit set, index counts from 1"
            );
            let len = rx.unprotect_rtcp(&mut packet).unwrap();
            assert_eq!(packet[..len], plain[..], "{suite}");
        }
    }
}

#[test]
fn replayed_packets_are_refused() {
    for suite in Suite::ALL {
        let (mut tx, mut rx) = pair(suite, None);
        let mut packet = rtp(7, b"hello");
        tx.protect_rtp(&mut packet).unwrap();
        let copy = packet.clone();
        rx.unprotect_rtp(&mut packet).unwrap();
        let mut again = copy.clone();
        assert_eq!(
            rx.unprotect_rtp(&mut again),
            Err(UnprotectError::Replay { index: 7 }),
            "{suite}"
        );

        let mut report = sender_report(1);
        tx.protect_rtcp(&mut report).unwrap();
        let copy = report.clone();
        rx.unprotect_rtcp(&mut report).unwrap();
        let mut again = copy;
        assert_eq!(
            rx.unprotect_rtcp(&mut again),
            Err(UnprotectError::Replay { index: 1 }),
            "{suite}"
        );
    }
}

#[test]
fn a_packet_older_than_the_replay_window_is_refused() {
    let (mut tx, mut rx) = pair(Suite::AesCm128HmacSha1_80, None);
    let mut old = rtp(100, b"late");
    tx.protect_rtp(&mut old).unwrap();
    for seq in 101..=400 {
        let mut p = rtp(seq, b"x");
        tx.protect_rtp(&mut p).unwrap();
        rx.unprotect_rtp(&mut p).unwrap();
    }
    assert_eq!(
        rx.unprotect_rtp(&mut old),
        Err(UnprotectError::Replay { index: 100 })
    );
}

#[test]
fn an_altered_byte_anywhere_is_refused_as_bad_auth() {
    for suite in Suite::ALL {
        let (mut tx, mut rx) = pair(suite, None);
        let mut packet = rtp(50, b"twelve bytes");
        tx.protect_rtp(&mut packet).unwrap();
        // Every byte but the SSRC (which names another stream) and the
        // sequence number's (which moves the index).
        for at in (0..packet.len()).filter(|i| !(2..4).contains(i) && !(8..12).contains(i)) {
            let mut altered = packet.clone();
            altered[at] ^= 0x01;
            let result = rx.unprotect_rtp(&mut altered);
            assert!(
                matches!(
                    result,
                    Err(UnprotectError::BadAuth | UnprotectError::Malformed(_))
                ),
                "{suite}: byte {at}: {result:?}"
            );
        }
        let mut report = sender_report(1);
        tx.protect_rtcp(&mut report).unwrap();
        for at in 8..report.len() {
            let mut altered = report.clone();
            altered[at] ^= 0x80;
            assert!(
                rx.unprotect_rtcp(&mut altered).is_err(),
                "{suite}: SRTCP byte {at}"
            );
        }
        // The untouched packets still pass: failures did not poison the state.
        rx.unprotect_rtp(&mut packet).unwrap();
        rx.unprotect_rtcp(&mut report).unwrap();
    }
}

#[test]
fn a_wrong_key_is_refused_as_bad_auth() {
    for suite in Suite::ALL {
        let mut tx = SrtpSender::new(SSRC, key(suite, 1), None).unwrap();
        let mut rx = SrtpReceiver::new(SSRC, key(suite, 2), None, DEFAULT_REPLAY_WINDOW).unwrap();
        let mut packet = rtp(1, b"secret");
        tx.protect_rtp(&mut packet).unwrap();
        assert_eq!(
            rx.unprotect_rtp(&mut packet),
            Err(UnprotectError::BadAuth),
            "{suite}"
        );
        let mut report = sender_report(1);
        tx.protect_rtcp(&mut report).unwrap();
        assert_eq!(
            rx.unprotect_rtcp(&mut report),
            Err(UnprotectError::BadAuth),
            "{suite}"
        );
    }
}

#[test]
fn truncated_packets_are_refused_with_a_plain_error() {
    for suite in Suite::ALL {
        for use_mki in [None, Some(mki(3))] {
            let (mut tx, mut rx) = pair(suite, use_mki);
            let mut packet = rtp(9, b"payload");
            tx.protect_rtp(&mut packet).unwrap();
            let mut report = sender_report(1);
            tx.protect_rtcp(&mut report).unwrap();
            for len in 0..packet.len() {
                let mut cut = packet[..len].to_vec();
                let err = rx.unprotect_rtp(&mut cut).unwrap_err();
                assert!(!err.to_string().is_empty());
                // Cut short, payload bytes may pass for an MKI the receiver does not hold.
                assert!(
                    matches!(
                        err,
                        UnprotectError::Malformed(_)
                            | UnprotectError::BadAuth
                            | UnprotectError::UnknownKey { .. }
                    ),
                    "{suite} {len}: {err}"
                );
            }
            for len in 0..report.len() {
                let mut cut = report[..len].to_vec();
                assert!(
                    rx.unprotect_rtcp(&mut cut).is_err(),
                    "{suite}: SRTCP cut to {len}"
                );
            }
            rx.unprotect_rtp(&mut packet).unwrap();
        }
    }
    let (_, mut rx) = pair(Suite::AesCm128HmacSha1_80, None);
    assert_eq!(
        rx.unprotect_rtp(&mut [0x80, 96, 0, 1])
            .unwrap_err()
            .to_string(),
        "malformed packet: shorter than the 12-byte RTP header"
    );
}

#[test]
fn a_packet_from_another_ssrc_is_refused_as_unknown() {
    let (_, mut rx) = pair(Suite::AesCm128HmacSha1_80, None);
    let mut tx = SrtpSender::new(0xdead_beef, key(Suite::AesCm128HmacSha1_80, 1), None).unwrap();
    let mut packet = rtp(1, b"x");
    packet[8..12].copy_from_slice(&0xdead_beef_u32.to_be_bytes());
    tx.protect_rtp(&mut packet).unwrap();
    let err = rx.unprotect_rtp(&mut packet).unwrap_err();
    assert_eq!(err, UnprotectError::UnknownSsrc { ssrc: 0xdead_beef });
    assert_eq!(err.to_string(), "packet from unknown SSRC 0xdeadbeef");
    assert_eq!(err.reason(), "unknown_ssrc");
}

#[test]
fn the_rollover_counter_carries_across_sequence_65535_to_0() {
    for suite in Suite::ALL {
        let (mut tx, mut rx) = pair(suite, None);
        let mut after_wrap = Vec::new();
        for seq in (65530..=65535).chain(0..6) {
            let mut p = rtp(seq, b"wrap");
            tx.protect_rtp(&mut p).unwrap();
            if seq == 3 {
                after_wrap = p.clone();
            }
            rx.unprotect_rtp(&mut p)
                .unwrap_or_else(|e| panic!("{suite} seq {seq}: {e}"));
        }
        assert_eq!(tx.last_index(), Some(0x1_0005), "{suite}");
        assert_eq!(rx.highest_index(), Some(0x1_0005), "{suite}");
        // A receiver that believes ROC 0 cannot authenticate it: the ROC is
        // in the tag (AES-CM) and the nonce (GCM).
        let mut fresh =
            SrtpReceiver::new(SSRC, key(suite, 1), None, DEFAULT_REPLAY_WINDOW).unwrap();
        assert_eq!(
            fresh.unprotect_rtp(&mut after_wrap),
            Err(UnprotectError::BadAuth),
            "{suite}"
        );
    }
}

#[test]
fn an_index_is_never_protected_twice() {
    let (mut tx, _) = pair(Suite::AeadAes128Gcm, None);
    let mut first = rtp(10, b"first");
    tx.protect_rtp(&mut first).unwrap();
    // What the pacer's `withdraw_last` would do: the same seq, other bytes.
    let mut second = rtp(10, b"other");
    let before = second.clone();
    let err = tx.protect_rtp(&mut second).unwrap_err();
    assert_eq!(err, ProtectError::IndexNotAdvancing { seq: 10, last: 10 });
    assert_eq!(second, before, "a refused packet is left as it was");
    let mut older = rtp(9, b"older");
    assert!(tx.protect_rtp(&mut older).is_err());
    let mut next = rtp(11, b"next");
    tx.protect_rtp(&mut next).unwrap();
}

#[test]
fn the_sender_refuses_packets_of_another_ssrc_and_non_rtp() {
    let (mut tx, _) = pair(Suite::AesCm128HmacSha1_80, None);
    let mut p = rtp(1, b"x");
    p[11] ^= 1;
    assert!(matches!(
        tx.protect_rtp(&mut p),
        Err(ProtectError::WrongSsrc { .. })
    ));
    let mut short = vec![0x80, 96, 0];
    assert_eq!(
        tx.protect_rtp(&mut short),
        Err(ProtectError::NotRtp("shorter than the 12-byte RTP header"))
    );
    let mut v1 = rtp(1, b"x");
    v1[0] = 0x40;
    assert_eq!(
        tx.protect_rtp(&mut v1),
        Err(ProtectError::NotRtp("RTP version is not 2"))
    );
}

#[test]
fn protect_reuses_a_buffer_that_has_room_for_the_trailer() {
    let (mut tx, _) = pair(Suite::AesCm128HmacSha1_80, None);
    let mut buffer = Vec::with_capacity(1500);
    for seq in 0..100 {
        buffer.clear();
        buffer.extend_from_slice(&rtp(seq, &[0x55; 100]));
        let before = buffer.as_ptr();
        tx.protect_rtp(&mut buffer).unwrap();
        assert_eq!(buffer.as_ptr(), before, "no reallocation");
        assert_eq!(buffer.len(), 112 + tx.rtp_trailer_len());
    }
}

#[test]
fn the_key_switches_by_mki_at_a_packet_boundary() {
    for suite in Suite::ALL {
        let (mut tx, mut rx) = pair(suite, Some(mki(1)));
        let mut before_install = rtp(0, b"k1");
        tx.protect_rtp(&mut before_install).unwrap();
        let replay = before_install.clone();
        rx.unprotect_rtp(&mut before_install).unwrap();

        // The next key is handed out before the switch, to both ends.
        tx.add_key(key(suite, 9), mki(2)).unwrap();
        rx.add_key(key(suite, 9), mki(2)).unwrap();
        for seq in 1..10u16 {
            if seq == 5 {
                tx.use_key(mki(2)).unwrap();
            }
            let mut p = rtp(seq, b"rotating");
            tx.protect_rtp(&mut p).unwrap();
            let expected_mki = if seq < 5 { 1 } else { 2 };
            // The MKI precedes the tag for AES-CM, ends the packet for GCM.
            let at = if suite == Suite::AeadAes128Gcm {
                p.len() - 1
            } else {
                p.len() - suite.tag_len() - 1
            };
            assert_eq!(p[at], expected_mki, "{suite}: the MKI names the key");
            rx.unprotect_rtp(&mut p)
                .unwrap_or_else(|e| panic!("{suite} seq {seq}: {e}"));
        }
        // libsrtp forgets its replay window on a key change; the floor does not.
        let mut replay = replay;
        assert_eq!(
            rx.unprotect_rtp(&mut replay),
            Err(UnprotectError::Replay { index: 0 }),
            "{suite}"
        );

        // The old key is retired at both ends; a packet still using it is refused.
        tx.remove_key(mki(1)).unwrap();
        rx.remove_key(mki(1)).unwrap();
        let mut stale_tx = SrtpSender::new(SSRC, key(suite, 1), Some(mki(1))).unwrap();
        let mut stale = rtp(20, b"old key");
        stale_tx.protect_rtp(&mut stale).unwrap();
        assert_eq!(
            rx.unprotect_rtp(&mut stale),
            Err(UnprotectError::UnknownKey { mki: 1 }),
            "{suite}"
        );
        let mut p = rtp(21, b"new key");
        tx.protect_rtp(&mut p).unwrap();
        rx.unprotect_rtp(&mut p).unwrap();
        let mut report = sender_report(9);
        tx.protect_rtcp(&mut report).unwrap();
        rx.unprotect_rtcp(&mut report).unwrap();
    }
}

#[test]
fn key_changes_that_cannot_work_are_refused_in_plain_words() {
    let (mut tx, mut rx) = pair(Suite::AesCm128HmacSha1_80, Some(mki(1)));
    assert_eq!(
        tx.remove_key(mki(1)),
        Err(SetupError::RemovingActiveKey(mki(1)))
    );
    assert_eq!(
        rx.remove_key(mki(1)),
        Err(SetupError::RemovingActiveKey(mki(1)))
    );
    assert_eq!(tx.use_key(mki(2)), Err(SetupError::NoSuchMki(mki(2))));
    assert_eq!(
        tx.add_key(key(Suite::AesCm128HmacSha1_80, 2), mki(1)),
        Err(SetupError::DuplicateMki(mki(1)))
    );
    assert_eq!(
        tx.add_key(key(Suite::AeadAes128Gcm, 2), mki(2))
            .unwrap_err()
            .to_string(),
        "a AEAD_AES_128_GCM key cannot join a AES_CM_128_HMAC_SHA1_80 context"
    );
    assert_eq!(
        tx.add_key(key(Suite::AesCm128HmacSha1_80, 2), Mki::new(2, 2).unwrap()),
        Err(SetupError::MkiLengthMismatch {
            expected: 1,
            got: 2
        })
    );
    for n in 2..=16 {
        tx.add_key(key(Suite::AesCm128HmacSha1_80, n as u8), mki(n))
            .unwrap();
    }
    assert_eq!(
        tx.add_key(key(Suite::AesCm128HmacSha1_80, 17), mki(17)),
        Err(SetupError::TooManyKeys)
    );
    let (mut plain_tx, _) = pair(Suite::AesCm128HmacSha1_80, None);
    assert_eq!(
        plain_tx.add_key(key(Suite::AesCm128HmacSha1_80, 2), mki(2)),
        Err(SetupError::NeedsMki)
    );
    assert_eq!(
        SrtpReceiver::new(SSRC, key(Suite::AesCm128HmacSha1_80, 1), None, 10)
            .unwrap_err()
            .to_string(),
        "replay window of 10 packets is outside 64 to 32767"
    );
}

/// Drives a sender through `wraps` full sequence cycles from `first_seq`.
fn sender_after(suite: Suite, first_seq: u16, packets: u64) -> SrtpSender {
    let mut tx = SrtpSender::new(SSRC, key(suite, 1), None).unwrap();
    let mut p = Vec::with_capacity(64);
    for n in 0..packets {
        p.clear();
        p.extend_from_slice(&rtp(first_seq.wrapping_add(n as u16), b"x"));
        tx.protect_rtp(&mut p).unwrap();
    }
    tx
}

#[test]
fn a_late_joiner_given_the_senders_index_finds_the_rollover_counter() {
    let suite = Suite::AesCm128HmacSha1_80;
    // Three wraps and then some: ROC 3; the join lands on seq 0x9000 and
    // on seq 0x1000 (either half of the sequence space).
    for (packets, label) in [
        (3 * 65536 + 0x9000 - 100, "high seq"),
        (3 * 65536 + 0x1000 - 100, "low seq"),
    ] {
        let mut tx = sender_after(suite, 100, packets);
        let joined_at = tx.last_index().unwrap();
        assert_eq!(joined_at >> 16, 3, "{label}");
        let mut rx = SrtpReceiver::new(SSRC, key(suite, 1), None, DEFAULT_REPLAY_WINDOW).unwrap();
        let mut blind =
            SrtpReceiver::new(SSRC, key(suite, 1), None, DEFAULT_REPLAY_WINDOW).unwrap();
        rx.expect_index(joined_at).unwrap();
        for n in 1..=3u64 {
            let seq = (joined_at + n) as u16;
            let mut p = rtp(seq, b"joined");
            tx.protect_rtp(&mut p).unwrap();
            let mut q = p.clone();
            rx.unprotect_rtp(&mut p)
                .unwrap_or_else(|e| panic!("{label} seq {seq:#x}: {e}"));
            assert_eq!(
                blind.unprotect_rtp(&mut q),
                Err(UnprotectError::BadAuth),
                "{label}: ROC 0 fails"
            );
        }
        assert_eq!(rx.highest_index(), Some(joined_at + 3), "{label}");
        assert_eq!(rx.expect_index(0), Err(SetupError::AlreadySynchronised));
    }
}

#[test]
fn a_stray_first_packet_does_not_stop_a_late_joiner() {
    let suite = Suite::AesCm128HmacSha1_80;
    let mut tx = sender_after(suite, 0, 2 * 65536 + 0x100);
    let joined_at = tx.last_index().unwrap();
    let mut rx = SrtpReceiver::new(SSRC, key(suite, 1), None, DEFAULT_REPLAY_WINDOW).unwrap();
    rx.expect_index(joined_at).unwrap();
    // A forged packet whose seq puts libsrtp at ROC 3 first ...
    let mut forged = rtp(0x9000, &[0; 20]);
    assert_eq!(rx.unprotect_rtp(&mut forged), Err(UnprotectError::BadAuth));
    // ... and the real stream (ROC 2, low seq) still authenticates.
    let mut p = rtp((joined_at + 1) as u16, b"real");
    tx.protect_rtp(&mut p).unwrap();
    rx.unprotect_rtp(&mut p).unwrap();
}

#[test]
fn the_index_estimate_follows_rfc_3711_appendix_a() {
    assert_eq!(estimate_index(0, 5), 5);
    assert_eq!(
        estimate_index(0x8000, 0xffff),
        0xffff,
        "ROC 0 until past half the space"
    );
    assert_eq!(
        estimate_index(0xfffe, 2),
        0x1_0002,
        "forward across the wrap"
    );
    assert_eq!(
        estimate_index(0x1_0002, 0xfffe),
        0xfffe,
        "backward across the wrap"
    );
    assert_eq!(estimate_index(0x3_9000, 0x0fff), 0x4_0fff);
    assert_eq!(
        estimate_index(0x3_9000, 0x1000),
        0x3_1000,
        "exactly half the space back stays"
    );
    assert_eq!(estimate_index(0x3_1000, 0x9001), 0x2_9001);
}

#[test]
fn is_rtcp_tells_rtcp_from_rtp_on_a_shared_port() {
    assert!(is_rtcp(&sender_report(1)));
    assert!(!is_rtcp(&rtp(1, b"x")));
    let mut marked = rtp(1, b"x");
    marked[1] |= 0x80;
    assert!(!is_rtcp(&marked), "PT 96 with the marker is 224: RTP");
    assert!(!is_rtcp(&[0x80]));
}

#[test]
fn trailer_lengths_agree_with_libsrtp() {
    for suite in Suite::ALL {
        for use_mki in [None, Some(Mki::new(7, 4).unwrap())] {
            let (tx, _) = pair(suite, use_mki);
            let (rtp_len, rtcp_len) = tx.libsrtp_trailer_lengths();
            assert_eq!(tx.rtp_trailer_len(), rtp_len, "{suite} {use_mki:?}");
            assert_eq!(tx.rtcp_trailer_len(), rtcp_len, "{suite} {use_mki:?}");
        }
    }
}

#[test]
fn a_master_key_never_shows_in_debug_output() {
    for suite in Suite::ALL {
        let k = key(suite, 0x5a);
        let shown = format!(
            "{k:?} {:?}",
            KeyParam {
                key: k.clone(),
                lifetime: None,
                mki: None
            }
        );
        assert!(!shown.contains(&k.expose_hex()), "{shown}");
        assert!(!shown.contains(&k.to_inline()), "{shown}");
        assert!(shown.contains("<secret>"), "{shown}");
        let (tx, rx) = pair(suite, Some(mki(1)));
        let shown = format!("{tx:?} {rx:?}");
        assert!(!shown.contains(&key(suite, 1).expose_hex()), "{shown}");
    }
}

#[test]
fn inline_keys_are_base64_of_key_and_salt() {
    let cm = MasterKey::from_bytes(Suite::AesCm128HmacSha1_80, &[0u8; 30]).unwrap();
    assert_eq!(cm.to_inline(), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    // RFC 7714 §12: 16 + 12 bytes for AEAD_AES_128_GCM, so one `=` of padding.
    let gcm = key(Suite::AeadAes128Gcm, 3);
    let inline = gcm.to_inline();
    assert_eq!(inline.len(), 40);
    assert!(inline.ends_with('='));
    for text in [inline.as_str(), inline.trim_end_matches('=')] {
        let back = MasterKey::from_inline(Suite::AeadAes128Gcm, text).unwrap();
        assert_eq!(back.expose_bytes(), gcm.expose_bytes());
    }
    assert_eq!(
        MasterKey::from_inline(Suite::AeadAes128Gcm, &cm.to_inline())
            .unwrap_err()
            .to_string(),
        "AEAD_AES_128_GCM needs 28 bytes of master key and salt, got 30"
    );
    assert_eq!(
        MasterKey::from_inline(Suite::AesCm128HmacSha1_80, "not*base64").unwrap_err(),
        KeyError::NotBase64
    );
}

#[test]
fn generated_keys_come_from_the_given_generator() {
    use rand::SeedableRng;
    let mut a = rand::rngs::StdRng::seed_from_u64(7);
    let mut b = rand::rngs::StdRng::seed_from_u64(7);
    let k1 = MasterKey::generate(Suite::AeadAes128Gcm, &mut a);
    let k2 = MasterKey::generate(Suite::AeadAes128Gcm, &mut b);
    assert_eq!(k1.expose_bytes(), k2.expose_bytes());
    assert_eq!(k1.expose_bytes().len(), 28);
    assert_ne!(
        k1.expose_bytes(),
        MasterKey::generate(Suite::AeadAes128Gcm, &mut a).expose_bytes()
    );
}

#[test]
fn a_crypto_attribute_round_trips_with_lifetime_and_mkis() {
    let k1 = key(Suite::AesCm128HmacSha1_80, 1);
    let k2 = key(Suite::AesCm128HmacSha1_80, 2);
    let line = format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}|2^31|1:1;inline:{}|2^31|2:1",
        k1.to_inline(),
        k2.to_inline()
    );
    let attribute = CryptoAttribute::parse(&line).unwrap();
    assert_eq!(attribute.tag, 1);
    assert_eq!(attribute.suite, Suite::AesCm128HmacSha1_80);
    assert_eq!(attribute.keys.len(), 2);
    assert_eq!(attribute.keys[1].mki, Some(mki(2)));
    assert_eq!(attribute.keys[0].lifetime, Some(Lifetime(1 << 31)));
    assert_eq!(attribute.keys[1].key.expose_bytes(), k2.expose_bytes());
    assert_eq!(attribute.expose_sdp_line(), line);

    let plain = CryptoAttribute::parse(&format!(
        "crypto:2 AEAD_AES_128_GCM inline:{}\r\n",
        key(Suite::AeadAes128Gcm, 1).to_inline()
    ))
    .unwrap();
    assert_eq!(
        (plain.tag, plain.suite, plain.keys[0].mki),
        (2, Suite::AeadAes128Gcm, None)
    );
    assert_eq!(
        plain.expose_gst_caps_fields(),
        format!(
            "srtp-key=(buffer){}, srtp-cipher=(string)aes-128-gcm, srtp-auth=(string)null, srtcp-cipher=(string)aes-128-gcm, srtcp-auth=(string)null",
            key(Suite::AeadAes128Gcm, 1).expose_hex()
        )
    );
    assert!(attribute.expose_gst_caps_fields().contains(&format!(
        ", srtp-key2=(buffer){}, mki2=(buffer)02",
        k2.expose_hex()
    )));
}

#[test]
fn crypto_attributes_loa_cannot_honour_are_refused_in_plain_words() {
    let k = key(Suite::AesCm128HmacSha1_80, 1).to_inline();
    let cases = [
        (format!("a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{k}"), "crypto suite \"AES_CM_128_HMAC_SHA1_32\" is not supported (loa knows AES_CM_128_HMAC_SHA1_80 and AEAD_AES_128_GCM)"),
        (format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{k} KDR=1"), "session parameter \"KDR=1\" is not supported"),
        (format!("a=crypto:x AES_CM_128_HMAC_SHA1_80 inline:{k}"), "crypto tag \"x\" is not a decimal number of 1 to 9 digits"),
        ("a=crypto:1 AES_CM_128_HMAC_SHA1_80".to_string(), "the a=crypto attribute has no key parameter"),
        (format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{k};inline:{k}"), "several keys need an MKI each, all of one length"),
        (format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{k}|1:1;inline:{k}|2:2"), "several keys need an MKI each, all of one length"),
        (format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{k}|2^x"), "key lifetime \"2^x\" is neither a number nor a power of two like 2^31"),
        (format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{k}|300:1"), "MKI value 300 does not fit in 1 byte(s)"),
        (format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{k}|1:5"), "an MKI of 5 bytes is not supported (loa uses 1 to 4)"),
        (format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 secret:{k}"), "key parameter \"secret:…\" does not start with \"inline:\""),
        ("a=rtpmap:96 opus/48000/2".to_string(), "not an a=crypto attribute"),
    ];
    for (line, message) in cases {
        let err = CryptoAttribute::parse(&line).unwrap_err();
        assert_eq!(err.to_string(), message, "{line}");
        assert!(!err.to_string().contains(&k), "errors never show the key");
    }
}
