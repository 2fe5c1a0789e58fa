//! RTCP compound packets (RFC 3550 §6): building what a sender sends (SR or
//! empty RR, SDES CNAME, BYE) with rtcp-types builders, and a bounds-checked
//! parse into plain values for tests and the health monitor.
//!
//! Must not touch: sockets, clocks (NTP time comes in as an argument).

use std::time::{SystemTime, UNIX_EPOCH};

use rtcp_types::{
    Bye, Compound, Packet, ReceiverReport, RtcpPacketParserExt as _, RtcpPacketWriter, RtcpParseError, Sdes, SdesChunk,
    SdesItem, SenderReport,
};

/// Seconds between 1900-01-01 (NTP epoch) and 1970-01-01 (Unix epoch).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// SDES item type CNAME (RFC 3550 §6.5.1).
const SDES_CNAME: u8 = 1;

/// 64-bit NTP timestamp (RFC 3550 §4): seconds since 1900 in the upper 32
/// bits, binary fraction in the lower 32.
pub fn ntp_time(wall: SystemTime) -> u64 {
    let since_unix = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_unix.as_secs() + NTP_UNIX_OFFSET;
    let fraction = ((since_unix.subsec_nanos() as u64) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

/// What the sender reports about itself in an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    pub ntp_time: u64,
    pub rtp_timestamp: u32,
    pub packet_count: u32,
    pub octet_count: u32,
}

/// Writes a compound packet into `out` (cleared first): an SR when
/// `sender` is given, else an RR without report blocks (a compound packet
/// must start with a report, §6.1), then SDES CNAME, then BYE if `bye`.
pub fn write_compound(
    out: &mut Vec<u8>,
    ssrc: u32,
    sender: Option<SenderInfo>,
    cname: &str,
    bye: Option<Option<&str>>,
) {
    let mut compound = Compound::builder();
    compound = match sender {
        Some(info) => compound.add_packet(
            SenderReport::builder(ssrc)
                .ntp_timestamp(info.ntp_time)
                .rtp_timestamp(info.rtp_timestamp)
                .packet_count(info.packet_count)
                .octet_count(info.octet_count),
        ),
        None => compound.add_packet(ReceiverReport::builder(ssrc)),
    };
    compound = compound.add_packet(
        Sdes::builder().add_chunk(SdesChunk::builder(ssrc).add_item(SdesItem::builder(SDES_CNAME, cname))),
    );
    if let Some(reason) = bye {
        let mut builder = Bye::builder().add_source(ssrc);
        if let Some(reason) = reason {
            builder = builder.reason(reason);
        }
        compound = compound.add_packet(builder);
    }
    // Sizes are bounded (CNAME ≤ 255 bytes is checked by the builder), so
    // the only failure is a programming error.
    let size = compound.calculate_size().expect("valid rtcp compound");
    out.clear();
    out.resize(size, 0);
    let written = compound.write_into_unchecked(out);
    out.truncate(written);
}

/// One report block of an SR or RR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    pub ssrc: u32,
    pub fraction_lost: u8,
    pub cumulative_lost: u32,
    pub extended_sequence_number: u32,
    pub interarrival_jitter: u32,
    pub last_sender_report: u32,
    pub delay_since_last_sender_report: u32,
}

/// A parsed RTCP packet, copied out of the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    SenderReport {
        ssrc: u32,
        info: SenderInfo,
        reports: Vec<ReportBlock>,
    },
    ReceiverReport {
        ssrc: u32,
        reports: Vec<ReportBlock>,
    },
    /// SDES chunks as (ssrc, CNAME) where a CNAME was present.
    Sdes { cnames: Vec<(u32, String)> },
    Bye { ssrcs: Vec<u32>, reason: Option<String> },
    /// Any other type (APP, feedback, XR): ignored by loa.
    Other { packet_type: u8 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    #[error("malformed rtcp packet: {0}")]
    Malformed(String),
}

impl From<RtcpParseError> for RtcpError {
    fn from(e: RtcpParseError) -> Self {
        RtcpError::Malformed(e.to_string().to_lowercase())
    }
}

fn blocks<'a>(iter: impl Iterator<Item = rtcp_types::ReportBlock<'a>>) -> Vec<ReportBlock> {
    iter.map(|b| ReportBlock {
        ssrc: b.ssrc(),
        fraction_lost: b.fraction_lost(),
        cumulative_lost: b.cumulative_lost(),
        extended_sequence_number: b.extended_sequence_number(),
        interarrival_jitter: b.interarrival_jitter(),
        last_sender_report: b.last_sender_report_timestamp(),
        delay_since_last_sender_report: b.delay_since_last_sender_report_timestamp(),
    })
    .collect()
}

/// Parses a compound RTCP datagram. Every length is bounds-checked by
/// rtcp-types; nothing here can panic on hostile input.
pub fn parse_compound(data: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
    let mut packets = Vec::new();
    for packet in Compound::parse(data)? {
        packets.push(match packet? {
            Packet::Sr(sr) => RtcpPacket::SenderReport {
                ssrc: sr.ssrc(),
                info: SenderInfo {
                    ntp_time: sr.ntp_timestamp(),
                    rtp_timestamp: sr.rtp_timestamp(),
                    packet_count: sr.packet_count(),
                    octet_count: sr.octet_count(),
                },
                reports: blocks(sr.report_blocks()),
            },
            Packet::Rr(rr) => RtcpPacket::ReceiverReport {
                ssrc: rr.ssrc(),
                reports: blocks(rr.report_blocks()),
            },
            Packet::Sdes(sdes) => RtcpPacket::Sdes {
                cnames: sdes
                    .chunks()
                    .filter_map(|chunk| {
                        chunk
                            .items()
                            .find(|item| item.type_() == SDES_CNAME)
                            .map(|item| (chunk.ssrc(), String::from_utf8_lossy(item.value()).into_owned()))
                    })
                    .collect(),
            },
            Packet::Bye(bye) => RtcpPacket::Bye {
                ssrcs: bye.ssrcs().collect(),
                reason: bye.reason().map(|r| String::from_utf8_lossy(r).into_owned()),
            },
            other => RtcpPacket::Other {
                packet_type: other_type(&other),
            },
        });
    }
    Ok(packets)
}

fn other_type(packet: &Packet<'_>) -> u8 {
    match packet {
        Packet::App(_) => 204,
        Packet::TransportFeedback(_) => 205,
        Packet::PayloadFeedback(_) => 206,
        Packet::Xr(_) => 207,
        Packet::Unknown(u) => u.type_(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SSRC: u32 = 0x1122_3344;

    #[test]
    fn ntp_time_counts_from_1900_with_a_binary_fraction() {
        let wall = UNIX_EPOCH + Duration::from_millis(1_500);
        assert_eq!(ntp_time(wall), ((NTP_UNIX_OFFSET + 1) << 32) | 0x8000_0000);
    }

    #[test]
    fn sender_report_with_sdes_cname_is_byte_exact() {
        let mut out = Vec::new();
        let info = SenderInfo {
            ntp_time: 0xE000_0001_8000_0000,
            rtp_timestamp: 0x0102_0304,
            packet_count: 250,
            octet_count: 20_000,
        };
        write_compound(&mut out, SSRC, Some(info), "loa@127.0.0.1", None);
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            // SR: V=2 P=0 RC=0, PT=200, length=6 (28 bytes)
            &[0x80, 200, 0x00, 0x06][..],
            &[0x11, 0x22, 0x33, 0x44],
            &[0xE0, 0x00, 0x00, 0x01, 0x80, 0x00, 0x00, 0x00],
            &[0x01, 0x02, 0x03, 0x04],
            &[0x00, 0x00, 0x00, 250],
            &[0x00, 0x00, 0x4E, 0x20],
            // SDES: V=2 P=0 SC=1, PT=202, length=5 (24 bytes)
            &[0x81, 202, 0x00, 0x05],
            &[0x11, 0x22, 0x33, 0x44],
            // CNAME=1, len 13, "loa@127.0.0.1", then the null octet ending
            // the item list, which already reaches a 32-bit boundary
            // (§6.5: 2 + 13 + 1 = 16).
            &[1, 13],
            b"loa@127.0.0.1",
            &[0],
        ]
        .concat();
        assert_eq!(out, expected);
    }

    #[test]
    fn bye_without_reason_follows_an_empty_receiver_report() {
        let mut out = Vec::new();
        write_compound(&mut out, SSRC, None, "a", Some(None));
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            &[0x80, 201, 0x00, 0x01, 0x11, 0x22, 0x33, 0x44][..], // RR, no blocks
            &[0x81, 202, 0x00, 0x02, 0x11, 0x22, 0x33, 0x44, 1, 1, b'a', 0], // SDES
            &[0x81, 203, 0x00, 0x01, 0x11, 0x22, 0x33, 0x44], // BYE SC=1
        ]
        .concat();
        assert_eq!(out, expected);
    }

    #[test]
    fn bye_with_reason_is_padded_to_32_bits() {
        let mut out = Vec::new();
        write_compound(&mut out, SSRC, None, "a", Some(Some("end")));
        let bye = &out[20..];
        // BYE header, SSRC, then length-prefixed reason "end" = 4 bytes.
        assert_eq!(bye, &[0x81, 203, 0x00, 0x02, 0x11, 0x22, 0x33, 0x44, 3, b'e', b'n', b'd']);
        assert_eq!(out.len() % 4, 0);
    }

    #[test]
    fn what_we_write_parses_back() {
        let mut out = Vec::new();
        let info = SenderInfo {
            ntp_time: 42,
            rtp_timestamp: 7,
            packet_count: 3,
            octet_count: 99,
        };
        write_compound(&mut out, SSRC, Some(info), "loa@10.0.0.1", Some(Some("bye")));
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
    fn malformed_packets_are_errors_not_panics() {
        let cases: &[&[u8]] = &[
            &[],
            &[0x80],
            &[0x40, 200, 0, 6, 0, 0, 0, 0],          // version 1
            &[0x80, 201, 0xFF, 0xFF, 1, 2, 3, 4],    // length beyond the datagram
            &[0x9F, 201, 0x00, 0x01, 1, 2, 3, 4],    // 31 report blocks claimed, none present
        ];
        for case in cases {
            assert!(parse_compound(case).is_err(), "{case:?} must be rejected");
        }
    }

    proptest::proptest! {
        #[test]
        fn parsing_arbitrary_bytes_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_compound(&data);
        }
    }
}
