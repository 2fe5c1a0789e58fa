use super::*;
use std::time::Duration;

const SSRC: u32 = 0x1122_3344;

fn sender_info() -> SenderInfo {
    SenderInfo {
        ntp_time: 0xE000_0001_8000_0000,
        rtp_timestamp: 0x0102_0304,
        packet_count: 250,
        octet_count: 20_000,
    }
}

/// Every packet's length field, walked the way a receiver walks them.
fn assert_lengths_tile(compound: &[u8]) {
    assert_eq!(compound.len() % 4, 0, "compound is 32-bit aligned");
    let mut offset = 0;
    while offset < compound.len() {
        let words = u16::from_be_bytes([compound[offset + 2], compound[offset + 3]]);
        offset += 4 * (usize::from(words) + 1);
    }
    assert_eq!(
        offset,
        compound.len(),
        "length fields add up to the datagram"
    );
}

#[test]
fn ntp_time_counts_from_1900_with_a_binary_fraction() {
    let wall = UNIX_EPOCH + Duration::from_millis(1_500);
    assert_eq!(ntp_time(wall), ((NTP_UNIX_OFFSET + 1) << 32) | 0x8000_0000);
}

#[test]
fn ntp_seconds_wrap_into_era_one_in_2036() {
    // 2036-02-07T06:28:16Z is 2^32 s after 1900-01-01.
    let era_end = UNIX_EPOCH + Duration::from_secs((1 << 32) - NTP_UNIX_OFFSET);
    assert_eq!(ntp_time(era_end), 0);
    assert_eq!(ntp_time(era_end + Duration::from_secs(1)) >> 32, 1);
}

#[test]
fn sender_report_with_sdes_cname_is_byte_exact() {
    let mut out = Vec::new();
    write_report(&mut out, SSRC, Some(sender_info()), "loa@127.0.0.1");
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        // SR: V=2 P=0 RC=0, PT=200, length=6 (28 bytes)
        &[0x80, 200, 0x00, 0x06][..],
        &[0x11, 0x22, 0x33, 0x44],                         // SSRC of sender
        &[0xE0, 0x00, 0x00, 0x01, 0x80, 0x00, 0x00, 0x00], // NTP timestamp
        &[0x01, 0x02, 0x03, 0x04],                         // RTP timestamp
        &[0x00, 0x00, 0x00, 250],                          // sender's packet count
        &[0x00, 0x00, 0x4E, 0x20],                         // sender's octet count
        // SDES: V=2 P=0 SC=1, PT=202, length=5 (24 bytes)
        &[0x81, 202, 0x00, 0x05],
        &[0x11, 0x22, 0x33, 0x44],
        // CNAME=1, len 13, "loa@127.0.0.1", then the null octet ending
        // the item list, which already reaches a 32-bit boundary
        // (§6.5: 4 + 2 + 13 + 1 = 20).
        &[1, 13],
        b"loa@127.0.0.1",
        &[0],
    ]
    .concat();
    assert_eq!(out, expected);
    assert_eq!(out.len(), report_len(true, "loa@127.0.0.1"));
    assert_lengths_tile(&out);
}

#[test]
fn sdes_item_ending_on_a_word_boundary_still_gets_a_null_word() {
    // SSRC + CNAME item "ab" = 8 octets, already aligned: §6.5 still
    // needs a null octet to end the item list, so a whole null word
    // follows.
    let mut out = Vec::new();
    write_report(&mut out, SSRC, None, "ab");
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x80, 201, 0x00, 0x01, 0x11, 0x22, 0x33, 0x44,  // RR, RC=0
        0x81, 202, 0x00, 0x03, 0x11, 0x22, 0x33, 0x44,  // SDES SC=1, 16 bytes
        1, 2, b'a', b'b', 0, 0, 0, 0,
    ];
    assert_eq!(out, expected);
    assert_eq!(out.len(), report_len(false, "ab"));
    assert_lengths_tile(&out);
}

#[test]
fn sdes_cname_is_padded_with_nulls_to_32_bits() {
    // 4 + 2 + 5 = 11 octets: one null ends the list and aligns.
    let mut out = Vec::new();
    write_report(&mut out, SSRC, None, "loa@x");
    assert_eq!(
        &out[8..],
        &[
            0x81, 202, 0x00, 0x03, 0x11, 0x22, 0x33, 0x44, 1, 5, b'l', b'o', b'a', b'@', b'x',
            0
        ]
    );
    // 4 + 2 + 3 = 9 octets: three nulls.
    write_report(&mut out, SSRC, None, "loa");
    assert_eq!(
        &out[8..],
        &[0x81, 202, 0x00, 0x03, 0x11, 0x22, 0x33, 0x44, 1, 3, b'l', b'o', b'a', 0, 0, 0]
    );
    assert_eq!(out.len(), report_len(false, "loa"));
    assert_lengths_tile(&out);
}

#[test]
fn bye_without_reason_follows_an_empty_receiver_report() {
    let mut out = Vec::new();
    write_bye(&mut out, SSRC, None, "a", None);
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[0x80, 201, 0x00, 0x01, 0x11, 0x22, 0x33, 0x44][..],            // RR, no blocks
        &[0x81, 202, 0x00, 0x02, 0x11, 0x22, 0x33, 0x44, 1, 1, b'a', 0], // SDES
        &[0x81, 203, 0x00, 0x01, 0x11, 0x22, 0x33, 0x44],                // BYE SC=1
    ]
    .concat();
    assert_eq!(out, expected);
    assert_lengths_tile(&out);
}

#[test]
fn bye_reason_that_fills_a_word_needs_no_padding() {
    let mut out = Vec::new();
    write_bye(&mut out, SSRC, None, "a", Some("end"));
    let bye = &out[20..];
    // Length octet + "end" = 4 octets: no null padding (§6.6).
    assert_eq!(
        bye,
        &[0x81, 203, 0x00, 0x02, 0x11, 0x22, 0x33, 0x44, 3, b'e', b'n', b'd']
    );
    assert_lengths_tile(&out);
}

#[test]
fn bye_reason_is_padded_with_nulls_to_32_bits() {
    let mut out = Vec::new();
    write_bye(&mut out, SSRC, Some(sender_info()), "a", Some("shutdown"));
    let bye = &out[28 + 12..];
    // Length octet + 8 octets = 9, padded with three nulls, without the
    // P bit (§6.6: "padded with null octets").
    #[rustfmt::skip]
    assert_eq!(
        bye,
        &[0x81, 203, 0x00, 0x04, 0x11, 0x22, 0x33, 0x44,
          8, b's', b'h', b'u', b't', b'd', b'o', b'w', b'n', 0, 0, 0]
    );
    assert_lengths_tile(&out);
}

#[test]
fn overlong_texts_are_cut_to_255_octets_on_a_character_boundary() {
    let mut out = Vec::new();
    let reason = "đ".repeat(200); // 400 octets
    write_bye(&mut out, SSRC, None, &"c".repeat(300), Some(&reason));
    let parsed = parse_compound(&out).unwrap();
    let RtcpPacket::Sdes { cnames } = &parsed[1] else {
        panic!("{parsed:?}")
    };
    assert_eq!(cnames[0].1.len(), 255);
    let RtcpPacket::Bye {
        reason: Some(reason),
        ..
    } = &parsed[2]
    else {
        panic!("{parsed:?}")
    };
    assert_eq!(reason.len(), 254, "127 two-octet characters");
}

#[test]
fn what_we_write_parses_back() {
    let mut out = Vec::new();
    let info = sender_info();
    write_bye(&mut out, SSRC, Some(info), "loa@10.0.0.1", Some("bye"));
    let parsed = parse_compound(&out).unwrap();
    assert_eq!(
        parsed,
        vec![
            RtcpPacket::SenderReport {
                ssrc: SSRC,
                info,
                reports: vec![]
            },
            RtcpPacket::Sdes {
                cnames: vec![(SSRC, "loa@10.0.0.1".into())]
            },
            RtcpPacket::Bye {
                ssrcs: vec![SSRC],
                reason: Some("bye".into())
            },
        ]
    );
}

#[test]
fn receiver_report_blocks_parse_from_rfc_layout_bytes() {
    #[rustfmt::skip]
    let rr: [u8; 32] = [
        0x81, 201, 0x00, 0x07, 0xAA, 0xBB, 0xCC, 0xDD, // RR from 0xAABBCCDD, RC=1
        0x11, 0x22, 0x33, 0x44,                         // about SSRC
        25, 0x00, 0x00, 0x10,                           // 25/256 lost, 16 cumulative
        0x00, 0x01, 0x00, 0x20,                         // cycles 1, highest seq 32
        0x00, 0x00, 0x00, 0x30,                         // jitter 48
        0x12, 0x34, 0x56, 0x78,                         // LSR
        0x00, 0x01, 0x00, 0x00,                         // DLSR 1 s
    ];
    let parsed = parse_compound(&rr).unwrap();
    assert_eq!(
        parsed,
        vec![RtcpPacket::ReceiverReport {
            ssrc: 0xAABB_CCDD,
            reports: vec![ReportBlock {
                ssrc: SSRC,
                fraction_lost: 25,
                cumulative_lost: 16,
                extended_sequence_number: 0x0001_0020,
                interarrival_jitter: 48,
                last_sender_report: 0x1234_5678,
                delay_since_last_sender_report: 0x0001_0000,
            }]
        }]
    );
}

#[test]
fn a_receiver_report_with_blocks_parses_back() {
    let block = ReportBlock {
        ssrc: 0xAABB_CCDD,
        fraction_lost: 25,
        cumulative_lost: 0xFF_FFFF,
        extended_sequence_number: 0x0001_0020,
        interarrival_jitter: 48,
        last_sender_report: 0x1234_5678,
        delay_since_last_sender_report: 0x0001_0000,
    };
    let mut out = Vec::new();
    write_receiver_report(&mut out, SSRC, &[block], "speaker@127.0.0.2");
    assert_eq!(&out[..4], &[0x81, 201, 0x00, 0x07], "RR, RC=1, 32 bytes");
    assert_lengths_tile(&out);
    assert_eq!(
        parse_compound(&out).unwrap(),
        vec![
            RtcpPacket::ReceiverReport {
                ssrc: SSRC,
                reports: vec![block]
            },
            RtcpPacket::Sdes {
                cnames: vec![(SSRC, "speaker@127.0.0.2".into())]
            },
        ]
    );
}

#[test]
fn unknown_packet_types_are_kept_as_other() {
    // RR, then an APP-like unknown type 210 with one word of data.
    let data = [0x80, 201, 0, 1, 1, 2, 3, 4, 0x80, 210, 0, 1, 9, 9, 9, 9];
    assert_eq!(
        parse_compound(&data).unwrap(),
        vec![
            RtcpPacket::ReceiverReport {
                ssrc: 0x0102_0304,
                reports: vec![]
            },
            RtcpPacket::Other { packet_type: 210 }
        ]
    );
}

#[test]
fn empty_or_short_datagrams_are_truncated() {
    assert_eq!(
        parse_compound(&[]),
        Err(RtcpError::Truncated {
            offset: 0,
            expected: 4,
            actual: 0
        })
    );
    assert_eq!(
        parse_compound(&[0x80]),
        Err(RtcpError::Truncated {
            offset: 0,
            expected: 4,
            actual: 1
        })
    );
    // A valid RR followed by two stray octets.
    let data = [0x80, 201, 0, 1, 1, 2, 3, 4, 0x80, 201];
    assert_eq!(
        parse_compound(&data),
        Err(RtcpError::Truncated {
            offset: 8,
            expected: 4,
            actual: 2
        })
    );
}

#[test]
fn an_sr_shorter_than_its_sender_info_is_truncated() {
    let data = [0x80, 200, 0, 1, 1, 2, 3, 4];
    assert_eq!(
        parse_compound(&data),
        Err(RtcpError::Truncated {
            offset: 0,
            expected: 28,
            actual: 8
        })
    );
}

#[test]
fn versions_other_than_two_are_rejected_in_every_packet() {
    assert_eq!(
        parse_compound(&[0x40, 201, 0, 1, 1, 2, 3, 4]),
        Err(RtcpError::WrongVersion {
            offset: 0,
            version: 1
        })
    );
    // The second packet is checked too, not only the first.
    let data = [0x80, 201, 0, 1, 1, 2, 3, 4, 0xC0, 201, 0, 1, 1, 2, 3, 4];
    assert_eq!(
        parse_compound(&data),
        Err(RtcpError::WrongVersion {
            offset: 8,
            version: 3
        })
    );
}

#[test]
fn a_length_beyond_the_datagram_is_a_bad_length() {
    assert_eq!(
        parse_compound(&[0x80, 201, 0xFF, 0xFF, 1, 2, 3, 4]),
        Err(RtcpError::BadLength {
            offset: 0,
            declared: 262_144,
            available: 8
        })
    );
}

#[test]
fn report_counts_beyond_the_length_are_too_many_report_blocks() {
    // RR claiming 31 blocks with none present.
    assert_eq!(
        parse_compound(&[0x9F, 201, 0x00, 0x01, 1, 2, 3, 4]),
        Err(RtcpError::TooManyReportBlocks {
            offset: 0,
            count: 31,
            room: 0
        })
    );
    // SR claiming 2 blocks with room for one.
    let mut sr = vec![0x82, 200, 0x00, 12];
    sr.resize(28 + 24, 0);
    assert_eq!(
        parse_compound(&sr),
        Err(RtcpError::TooManyReportBlocks {
            offset: 0,
            count: 2,
            room: 1
        })
    );
}

#[test]
fn padding_is_only_allowed_on_the_last_packet() {
    // Padded RR (one word: 0,0,0,4) followed by another RR.
    let data = [
        0xA0, 201, 0, 2, 1, 2, 3, 4, 0, 0, 0, 4, 0x80, 201, 0, 1, 1, 2, 3, 4,
    ];
    assert_eq!(
        parse_compound(&data),
        Err(RtcpError::BadPadding { offset: 0 })
    );
    // Padding count of zero, and padding longer than the packet body.
    assert_eq!(
        parse_compound(&[0xA0, 201, 0, 1, 1, 2, 3, 0]),
        Err(RtcpError::BadPadding { offset: 0 })
    );
    assert_eq!(
        parse_compound(&[0xA0, 201, 0, 1, 1, 2, 3, 9]),
        Err(RtcpError::BadPadding { offset: 0 })
    );
    // Valid: padding on the last packet.
    let ok = [0xA0, 201, 0, 2, 1, 2, 3, 4, 0, 0, 0, 4];
    assert!(matches!(
        parse_compound(&ok).unwrap()[..],
        [RtcpPacket::ReceiverReport { .. }]
    ));
}

#[test]
fn errors_read_as_lowercase_sentences() {
    let e = parse_compound(&[0x9F, 201, 0x00, 0x01, 1, 2, 3, 4]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "rtcp report at byte 0 claims 31 report blocks but has room for 0"
    );
}

fn valid_compound() -> Vec<u8> {
    let mut out = Vec::new();
    write_bye(
        &mut out,
        SSRC,
        Some(sender_info()),
        "loa@127.0.0.1",
        Some("stop"),
    );
    out
}

proptest::proptest! {
    #[test]
    fn parsing_arbitrary_bytes_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
        let _ = parse_compound(&data);
    }

    /// Random bytes rarely get past the version check; corrupting a real
    /// compound reaches the per-type parsers.
    #[test]
    fn parsing_corrupted_compounds_never_panics(
        edits in proptest::collection::vec((0usize..80, proptest::num::u8::ANY), 1..6),
        cut in 0usize..80,
    ) {
        let mut data = valid_compound();
        for (at, byte) in edits {
            let at = at % data.len();
            data[at] = byte;
        }
        data.truncate(cut.max(1));
        let _ = parse_compound(&data);
    }
}

#[test]
fn report_template_writes_what_the_builders_write() {
    let template = ReportTemplate::new(0x1234_5678, "loa@192.0.2.10");
    let info = SenderInfo {
        ntp_time: 0xE6A1_2345_8000_0001,
        rtp_timestamp: 0xDEAD_BEEF,
        packet_count: 4242,
        octet_count: 0x0102_0304,
    };
    for sender in [Some(info), None] {
        let (mut built, mut patched) = (Vec::new(), Vec::with_capacity(1500));
        write_report(&mut built, 0x1234_5678, sender, "loa@192.0.2.10");
        template.write(&mut patched, sender);
        assert_eq!(patched, built, "sender info {sender:?}");
    }
}
