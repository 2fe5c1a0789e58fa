//! SDP (RFC 4566) describing one zone's Opus stream (RFC 7587 §7), the text
//! ffmpeg, GStreamer, VLC and vendor speakers open to receive a zone.
//!
//! Written by hand: the description is a dozen fixed lines, and the SDP
//! crates on crates.io are built for WebRTC offer/answer, not for a
//! broadcast session file.

use std::fmt::Write;
use std::net::{Ipv4Addr, SocketAddrV4};

#[derive(Debug, Clone, PartialEq)]
pub struct SdpParams {
    pub session_id: u64,
    pub session_version: u64,
    /// Sending interface address (the `o=` origin).
    pub origin: Ipv4Addr,
    pub session_name: String,
    pub group: SocketAddrV4,
    pub ttl: u8,
    pub payload_type: u8,
    /// Whether the sender sends stereo (`sprop-stereo`).
    pub stereo: bool,
    pub fec: bool,
    pub ptime_ms: u32,
    pub max_average_bitrate: Option<u32>,
}

/// The zone's SDP with CRLF line endings (RFC 4566 §5).
pub fn zone_sdp(p: &SdpParams) -> String {
    let mut s = String::new();
    let mut line = |text: String| {
        s.push_str(&text);
        s.push_str("\r\n");
    };
    line("v=0".into());
    line(format!("o=- {} {} IN IP4 {}", p.session_id, p.session_version, p.origin));
    line(format!("s={}", p.session_name));
    line(format!("c=IN IP4 {}/{}", p.group.ip(), p.ttl));
    line("t=0 0".into());
    line("a=tool:loa".into());
    // A broadcast: receivers only listen (RFC 4566 §6 "recvonly" is from the
    // receiver's view and is what an SDP file handed to receivers says).
    line("a=type:broadcast".into());
    line("a=recvonly".into());
    line(format!("m=audio {} RTP/AVP {}", p.group.port(), p.payload_type));
    // RFC 7587 §7: the encoding name is always opus/48000/2, whatever is sent.
    line(format!("a=rtpmap:{} opus/48000/2", p.payload_type));
    let mut fmtp = format!(
        "a=fmtp:{} sprop-stereo={};useinbandfec={}",
        p.payload_type,
        u8::from(p.stereo),
        u8::from(p.fec)
    );
    if let Some(bitrate) = p.max_average_bitrate {
        let _ = write!(fmtp, ";maxaveragebitrate={bitrate}");
    }
    line(fmtp);
    line(format!("a=ptime:{}", p.ptime_ms));
    line(format!("a=rtcp:{}", p.group.port() + 1));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_sdp_is_exact() {
        let text = zone_sdp(&SdpParams {
            session_id: 42,
            session_version: 7,
            origin: Ipv4Addr::new(127, 0, 0, 1),
            session_name: "loa zone thon-1".into(),
            group: "239.255.77.1:5004".parse().unwrap(),
            ttl: 1,
            payload_type: 96,
            stereo: false,
            fec: true,
            ptime_ms: 20,
            max_average_bitrate: Some(32_000),
        });
        assert_eq!(
            text,
            "v=0\r\n\
             o=- 42 7 IN IP4 127.0.0.1\r\n\
             s=loa zone thon-1\r\n\
             c=IN IP4 239.255.77.1/1\r\n\
             t=0 0\r\n\
             a=tool:loa\r\n\
             a=type:broadcast\r\n\
             a=recvonly\r\n\
             m=audio 5004 RTP/AVP 96\r\n\
             a=rtpmap:96 opus/48000/2\r\n\
             a=fmtp:96 sprop-stereo=0;useinbandfec=1;maxaveragebitrate=32000\r\n\
             a=ptime:20\r\n\
             a=rtcp:5005\r\n"
        );
    }

    #[test]
    fn stereo_without_fec_says_so() {
        let text = zone_sdp(&SdpParams {
            session_id: 1,
            session_version: 1,
            origin: Ipv4Addr::LOCALHOST,
            session_name: "z".into(),
            group: "239.1.2.3:6000".parse().unwrap(),
            ttl: 4,
            payload_type: 101,
            stereo: true,
            fec: false,
            ptime_ms: 40,
            max_average_bitrate: None,
        });
        assert!(text.contains("c=IN IP4 239.1.2.3/4\r\n"));
        assert!(text.contains("a=fmtp:101 sprop-stereo=1;useinbandfec=0\r\n"));
        assert!(text.contains("a=ptime:40\r\n"));
    }
}
