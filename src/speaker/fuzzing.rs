//! The receive path without sockets, for the fuzzer (`fuzz/`): datagrams
//! through the RTP parser, the Opus TOC check, the jitter buffer and the
//! decoder (packet, FEC, PLC), with made-up arrival times. Not API.

use std::time::{Duration, Instant};

use super::decode::{self, FrameDecoder};
use super::jitter::{JitterBuffer, Playout};

/// `input` is a sequence of datagrams, each prefixed by a 2-byte length
/// and a 1-byte arrival delay in milliseconds.
pub fn receive(input: &[u8]) {
    let mut buffer = JitterBuffer::new(Duration::from_millis(60));
    let Ok(mut decoder) = FrameDecoder::new(1, 960) else {
        return;
    };
    let mut now = Instant::now();
    let mut rest = input;
    while rest.len() >= 3 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 3);
        now += Duration::from_millis(u64::from(rest[2]));
        let datagram = &rest[3..3 + len];
        rest = &rest[3 + len..];
        let Ok(rtp) = rtp_rs::RtpReader::new(datagram) else {
            continue;
        };
        let payload = rtp.payload();
        let Some(samples) = decode::packet_samples(payload) else {
            continue;
        };
        if buffer.ssrc().is_none() {
            buffer.set_frame_samples(samples as u32);
            decoder.set_frame_samples(samples);
        }
        buffer.push(
            now,
            u16::from(rtp.sequence_number()),
            rtp.timestamp(),
            rtp.mark(),
            rtp.ssrc(),
            payload,
        );
        while let Some(playout) = buffer.pop(now) {
            match playout {
                Playout::Packet(p) => {
                    decoder.packet(&p);
                }
                Playout::Lost { next } => {
                    decoder.lost(next.as_deref());
                }
                Playout::Idle => {
                    decoder.silence();
                    break;
                }
            }
        }
    }
}
