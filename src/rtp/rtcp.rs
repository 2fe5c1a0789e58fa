//! RTCP compound packets (RFC 3550 §6): building what a sender sends (SR or
//! empty RR, SDES CNAME, BYE) with rtcp-types builders, and a bounds-checked
//! parse into plain values for tests and the endpoint health monitor.
//!
//! Owns: the RTCP wire format. Must not touch: sockets, clocks (NTP time
//! comes in as an argument), report scheduling (that is `session`).

use std::time::{SystemTime, UNIX_EPOCH};

use rtcp_types::{
    Bye, Compound, Packet, ReceiverReport, RtcpPacketParser as _, RtcpPacketWriter as _,
    RtcpParseError, Sdes, SdesChunk, SdesItem, SenderReport,
};

/// Seconds between 1900-01-01 (NTP epoch) and 1970-01-01 (Unix epoch).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// RTCP packet types (RFC 3550 §12.1).
const PT_SR: u8 = 200;
const PT_RR: u8 = 201;

/// SDES item type CNAME (RFC 3550 §6.5.1).
const SDES_CNAME: u8 = 1;

/// SDES item values and the BYE reason carry an 8-bit length (§6.5, §6.6).
const MAX_TEXT_LEN: usize = 255;

/// Fixed part of an SR (header, SSRC, sender info) and of an RR (§6.4).
const SR_FIXED_LEN: usize = 28;
const RR_FIXED_LEN: usize = 8;
const REPORT_BLOCK_LEN: usize = 24;

/// 64-bit NTP timestamp (RFC 3550 §4): seconds since 1900 in the upper 32
/// bits, binary fraction in the lower 32. The seconds wrap in February 2036
/// (NTP era 1, RFC 5905 §6), which is what receivers expect: only the low
/// 32 bits of the seconds are on the wire. A wall clock before 1970 is
/// reported as 1970 rather than failing a report.
pub(crate) fn ntp_time(wall: SystemTime) -> u64 {
    let since_unix = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = (since_unix.as_secs() + NTP_UNIX_OFFSET) & 0xFFFF_FFFF;
    let fraction = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

/// What the sender reports about itself in an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    pub ntp_time: u64,
    pub rtp_timestamp: u32,
    /// Packets sent since the session started (wraps).
    pub packet_count: u32,
    /// Payload octets sent, headers and padding excluded (wraps).
    pub octet_count: u32,
}

/// Writes a periodic report into `out` (cleared first): SR when `sender` is
/// given, else an RR without report blocks — a compound packet must start
/// with a report (§6.1), and a participant that has not sent RTP lately
/// reports as a receiver (§6.4) — followed by SDES CNAME (§6.5.1).
pub(crate) fn write_report(out: &mut Vec<u8>, ssrc: u32, sender: Option<SenderInfo>, cname: &str) {
    write_compound(out, ssrc, sender, cname, None);
}

/// The periodic report of one session, built once with the builders and
/// then copied with the sender info patched in: the builders allocate (a
/// `Vec` per packet and per SDES chunk), and reports go out on the realtime
/// pacer thread, which must not allocate or free (ARCHITECTURE.md, "Timing
/// and RTP"). The SSRC and CNAME never change within a session, so only the
/// SR's sender info (§6.4.1) differs from one report to the next.
#[derive(Debug, Clone)]
pub(crate) struct ReportTemplate {
    /// SR (sender info zeroed) + SDES CNAME.
    sender: Vec<u8>,
    /// Empty RR + SDES CNAME.
    receiver: Vec<u8>,
}

impl ReportTemplate {
    pub(crate) fn new(ssrc: u32, cname: &str) -> ReportTemplate {
        let zero = SenderInfo { ntp_time: 0, rtp_timestamp: 0, packet_count: 0, octet_count: 0 };
        let (mut sender, mut receiver) = (Vec::new(), Vec::new());
        write_report(&mut sender, ssrc, Some(zero), cname);
        write_report(&mut receiver, ssrc, None, cname);
        ReportTemplate { sender, receiver }
    }

    /// Writes the same bytes as [`write_report`] into `out` (cleared
    /// first); no allocation once `out` has room for a report.
    pub(crate) fn write(&self, out: &mut Vec<u8>, sender: Option<SenderInfo>) {
        out.clear();
        match sender {
            Some(info) => {
                out.extend_from_slice(&self.sender);
                // SR layout (§6.4.1): header 4, SSRC 4, then NTP 8, RTP 4,
                // packet count 4, octet count 4.
                out[8..16].copy_from_slice(&info.ntp_time.to_be_bytes());
                out[16..20].copy_from_slice(&info.rtp_timestamp.to_be_bytes());
                out[20..24].copy_from_slice(&info.packet_count.to_be_bytes());
                out[24..28].copy_from_slice(&info.octet_count.to_be_bytes());
            }
            None => out.extend_from_slice(&self.receiver),
        }
    }
}

/// Like [`write_report`] with a BYE for `ssrc` appended (§6.6), "the last
/// packet" of the compound as §6.1 asks. An empty reason is sent as none.
pub(crate) fn write_bye(
    out: &mut Vec<u8>,
    ssrc: u32,
    sender: Option<SenderInfo>,
    cname: &str,
    reason: Option<&str>,
) {
    write_compound(out, ssrc, sender, cname, Some(reason.unwrap_or("")));
}

/// Size in octets of the compound [`write_report`] writes, for the first
/// `avg_rtcp_size` estimate (RFC 3550 §6.3.2).
pub(crate) fn report_len(sender: bool, cname: &str) -> usize {
    let report = if sender { SR_FIXED_LEN } else { RR_FIXED_LEN };
    // SDES header + SSRC, then type, length, value and at least one null
    // octet ending the item list, padded to 32 bits (§6.5).
    let items = 2 + truncate(cname).len() + 1;
    report + 8 + items.next_multiple_of(4)
}

/// The longest prefix of `text` that fits an 8-bit length, cut on a
/// character boundary. CNAMEs we build are short (`loa@<ipv4>`), so this
/// only guards the builders' size check, which would otherwise fail a send.
fn truncate(text: &str) -> &str {
    if text.len() <= MAX_TEXT_LEN {
        return text;
    }
    let mut end = MAX_TEXT_LEN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn write_compound(
    out: &mut Vec<u8>,
    ssrc: u32,
    sender: Option<SenderInfo>,
    cname: &str,
    bye: Option<&str>,
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
    compound = compound.add_packet(Sdes::builder().add_chunk(
        SdesChunk::builder(ssrc).add_item(SdesItem::builder(SDES_CNAME, truncate(cname))),
    ));
    if let Some(reason) = bye {
        compound = compound.add_packet(Bye::builder().add_source(ssrc).reason(truncate(reason)));
    }
    // Every field is in range: one SSRC, no report blocks, texts truncated
    // to 255 octets. A failure here is a bug in this function.
    let size = compound
        .calculate_size()
        .expect("sender rtcp compound is always valid");
    out.clear();
    out.resize(size, 0);
    let written = compound.write_into_unchecked(out);
    out.truncate(written);
}

/// Writes a receiver's periodic report into `out` (cleared first): an RR
/// from `ssrc` carrying `blocks` (the first 31, all RC can count, §6.4.2),
/// followed by SDES CNAME (§6.5.1). Cumulative loss is taken modulo 2^24:
/// callers pass it already clamped to the signed 24-bit field (A.3).
pub(crate) fn write_receiver_report(
    out: &mut Vec<u8>,
    ssrc: u32,
    blocks: &[ReportBlock],
    cname: &str,
) {
    let mut rr = ReceiverReport::builder(ssrc);
    for b in blocks.iter().take(31) {
        rr = rr.add_report_block(
            rtcp_types::ReportBlock::builder(b.ssrc)
                .fraction_lost(b.fraction_lost)
                .cumulative_lost(b.cumulative_lost & 0xFF_FFFF)
                .extended_sequence_number(b.extended_sequence_number)
                .interarrival_jitter(b.interarrival_jitter)
                .last_sender_report_timestamp(b.last_sender_report)
                .delay_since_last_sender_report_timestamp(b.delay_since_last_sender_report),
        );
    }
    let compound = Compound::builder().add_packet(rr).add_packet(Sdes::builder().add_chunk(
        SdesChunk::builder(ssrc).add_item(SdesItem::builder(SDES_CNAME, truncate(cname))),
    ));
    // At most 31 blocks, loss masked to 24 bits, CNAME truncated: always
    // valid. A failure here is a bug in this function.
    let size = compound
        .calculate_size()
        .expect("receiver rtcp compound is always valid");
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
    /// SDES chunks as (ssrc, CNAME) where a CNAME was present; other items
    /// are skipped.
    Sdes { cnames: Vec<(u32, String)> },
    Bye {
        ssrcs: Vec<u32>,
        reason: Option<String>,
    },
    /// Any other type (APP, feedback, XR): not used by loa.
    Other { packet_type: u8 },
}

/// Why a datagram is not valid RTCP. `offset` is where the offending packet
/// starts within the compound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    #[error("rtcp packet at byte {offset} is truncated: needs {expected} bytes, has {actual}")]
    Truncated {
        offset: usize,
        expected: usize,
        actual: usize,
    },
    #[error("rtcp packet at byte {offset} has version {version}, expected 2")]
    WrongVersion { offset: usize, version: u8 },
    #[error("rtcp packet at byte {offset} declares {declared} bytes but {available} remain")]
    BadLength {
        offset: usize,
        declared: usize,
        available: usize,
    },
    #[error("rtcp report at byte {offset} claims {count} report blocks but has room for {room}")]
    TooManyReportBlocks {
        offset: usize,
        count: u8,
        room: usize,
    },
    #[error("rtcp packet at byte {offset} has invalid padding")]
    BadPadding { offset: usize },
    #[error("rtcp packet type {packet_type} at byte {offset} is malformed: {reason}")]
    Malformed {
        offset: usize,
        packet_type: u8,
        reason: String,
    },
}

impl RtcpError {
    fn from_parser(e: RtcpParseError, offset: usize, packet_type: u8) -> RtcpError {
        match e {
            RtcpParseError::Truncated { expected, actual } => RtcpError::Truncated {
                offset,
                expected,
                actual,
            },
            RtcpParseError::UnsupportedVersion(version) => {
                RtcpError::WrongVersion { offset, version }
            }
            RtcpParseError::TooLarge { expected, actual } => RtcpError::BadLength {
                offset,
                declared: expected,
                available: actual,
            },
            RtcpParseError::InvalidPadding => RtcpError::BadPadding { offset },
            other => RtcpError::Malformed {
                offset,
                packet_type,
                reason: other.to_string().to_lowercase(),
            },
        }
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

/// Parses a compound RTCP datagram, checking each packet's header as RFC
/// 3550 A.2 does (version 2, length within the datagram, padding only on the
/// last packet, report count within the length) before handing it to the
/// rtcp-types parser. Nothing here can panic on hostile input.
///
/// Deliberately lenient on one point: the compound need not start with SR
/// or RR (§6.1), so reduced-size RTCP (RFC 5506) from vendor speakers still
/// yields its report blocks.
pub fn parse_compound(data: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
    if data.is_empty() {
        return Err(RtcpError::Truncated {
            offset: 0,
            expected: 4,
            actual: 0,
        });
    }
    let mut packets = Vec::new();
    let mut offset = 0;
    while offset < data.len() {
        let length = check_header(data, offset)?;
        let packet = &data[offset..offset + length];
        let packet_type = packet[1];
        let parsed =
            Packet::parse(packet).map_err(|e| RtcpError::from_parser(e, offset, packet_type))?;
        packets.push(convert(parsed));
        offset += length;
    }
    Ok(packets)
}

/// Length in octets from the header's length field: 32-bit words minus one
/// (§6.4.1).
fn declared_len(header: &[u8]) -> usize {
    4 * (usize::from(u16::from_be_bytes([header[2], header[3]])) + 1)
}

/// Validates the header of the packet at `offset`; returns its length in
/// octets.
fn check_header(data: &[u8], offset: usize) -> Result<usize, RtcpError> {
    let rest = &data[offset..];
    if rest.len() < 4 {
        return Err(RtcpError::Truncated {
            offset,
            expected: 4,
            actual: rest.len(),
        });
    }
    let version = rest[0] >> 6;
    if version != 2 {
        return Err(RtcpError::WrongVersion { offset, version });
    }
    let length = declared_len(rest);
    if length > rest.len() {
        return Err(RtcpError::BadLength {
            offset,
            declared: length,
            available: rest.len(),
        });
    }
    // Only the last packet of a compound may be padded; its last octet
    // counts the padding, itself included, and cannot eat the header (A.2).
    let padding = if rest[0] & 0x20 != 0 {
        let count = usize::from(rest[length - 1]);
        let last = offset + length == data.len();
        if !last || count == 0 || count > length - 4 {
            return Err(RtcpError::BadPadding { offset });
        }
        count
    } else {
        0
    };
    let fixed = match rest[1] {
        PT_SR => SR_FIXED_LEN,
        PT_RR => RR_FIXED_LEN,
        _ => return Ok(length),
    };
    let body = length - padding;
    if body < fixed {
        return Err(RtcpError::Truncated {
            offset,
            expected: fixed,
            actual: body,
        });
    }
    // RC is 5 bits, so up to 31 blocks may be claimed; each must fit before
    // any padding (§6.4.1).
    let count = rest[0] & 0x1F;
    let room = (body - fixed) / REPORT_BLOCK_LEN;
    if usize::from(count) > room {
        return Err(RtcpError::TooManyReportBlocks {
            offset,
            count,
            room,
        });
    }
    Ok(length)
}

fn convert(packet: Packet<'_>) -> RtcpPacket {
    match packet {
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
                        .map(|item| {
                            (
                                chunk.ssrc(),
                                String::from_utf8_lossy(item.value()).into_owned(),
                            )
                        })
                })
                .collect(),
        },
        Packet::Bye(bye) => RtcpPacket::Bye {
            ssrcs: bye.ssrcs().collect(),
            reason: bye
                .reason()
                .map(|r| String::from_utf8_lossy(r).into_owned()),
        },
        Packet::App(_) => RtcpPacket::Other { packet_type: 204 },
        Packet::TransportFeedback(_) => RtcpPacket::Other { packet_type: 205 },
        Packet::PayloadFeedback(_) => RtcpPacket::Other { packet_type: 206 },
        Packet::Xr(_) => RtcpPacket::Other { packet_type: 207 },
        Packet::Unknown(u) => RtcpPacket::Other {
            packet_type: u.data()[1],
        },
    }
}

#[cfg(test)]
mod tests {
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
            super::write_report(&mut built, 0x1234_5678, sender, "loa@192.0.2.10");
            template.write(&mut patched, sender);
            assert_eq!(patched, built, "sender info {sender:?}");
        }
    }

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
}
