//! SDP (RFC 4566) describing one zone's Opus stream (RFC 7587 §7), the text
//! ffmpeg, GStreamer, VLC and vendor speakers open to receive a zone.
//!
//! Written by hand: the description is a dozen fixed lines, and the SDP
//! crates on crates.io are built for WebRTC offer/answer, not for a
//! broadcast session file.
//!
//! Owns: the text only. Must not touch: config, sockets, files.
//!
//! Decisions:
//! - `a=type:broadcast` + `a=recvonly` (RFC 4566 §6): this is a declarative
//!   description handed to receivers, not an offer, and §6 names recvonly
//!   as the default of a broadcast session. ffmpeg, GStreamer and VLC accept
//!   either direction; recvonly applies to media only, so receivers still
//!   send RTCP RRs (§6: "an RTP-based system in recvonly mode SHOULD still
//!   send RTCP packets").
//! - fmtp carries what RFC 7587 §7 lets a sender declare: `sprop-stereo`
//!   (what we send). `stereo=` is a receiver preference and is left out.
//!   `useinbandfec` tells receivers the stream carries in-band FEC so they
//!   should use it, and `maxaveragebitrate` is optional (§7.2 asks
//!   declarative SDP to state such values with care).
//! - `a=rtcp:<port+1>` (RFC 3605) names the RTCP port explicitly, the
//!   RFC 3550 §11 default; it is left out when the RTP port is 65535.
//! - The keyed SDP of an SRTP zone names the zone's SSRC with its CNAME
//!   (`a=ssrc:N cname:loa@IF`, RFC 5576 §4.1): GStreamer's `srtpdec` needs
//!   the SSRC in its caps, and it changes at every daemon start, so the
//!   SDP the daemon hands out carries it. A plain zone's SDP comes from the
//!   config alone, without the daemon, and so names no SSRC.

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
    pub protection: SdpProtection,
}

/// How the media line describes the zone's protection.
#[derive(Debug, Clone, PartialEq)]
pub enum SdpProtection {
    /// `RTP/AVP`: a `security = "none"` zone.
    Plain,
    /// `RTP/SAVP` without a key: what SAP announces for an SRTP zone, so
    /// listeners see the zone exists and is encrypted, and no key travels
    /// in the clear (receivers get it from `loa sdp` or by joining).
    SrtpKeyElsewhere,
    /// `RTP/SAVP` with these `a=crypto:…` lines (RFC 4568) and the
    /// zone's SSRC: `loa sdp`'s output, a secret.
    Srtp { crypto: Vec<String>, ssrc: u32 },
}

/// The zone's SDP with CRLF line endings (RFC 4566 §5).
pub fn zone_sdp(p: &SdpParams) -> String {
    let mut s = String::new();
    let mut line = |text: String| {
        s.push_str(&text);
        s.push_str("\r\n");
    };
    line("v=0".into());
    line(format!(
        "o=- {} {} IN IP4 {}",
        p.session_id, p.session_version, p.origin
    ));
    line(format!("s={}", session_name(&p.session_name)));
    line(format!("c=IN IP4 {}/{}", p.group.ip(), p.ttl));
    line("t=0 0".into());
    line(format!("a=tool:loa {}", env!("CARGO_PKG_VERSION")));
    // A broadcast: receivers only listen. RFC 4566 §6 makes recvonly the
    // default of type:broadcast, written from the receiver's view.
    line("a=type:broadcast".into());
    line("a=recvonly".into());
    let profile = match p.protection {
        SdpProtection::Plain => "RTP/AVP",
        SdpProtection::SrtpKeyElsewhere | SdpProtection::Srtp { .. } => "RTP/SAVP",
    };
    line(format!(
        "m=audio {} {profile} {}",
        p.group.port(),
        p.payload_type
    ));
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
    if let Some(rtcp_port) = p.group.port().checked_add(1) {
        line(format!("a=rtcp:{rtcp_port}"));
    }
    if let SdpProtection::Srtp { crypto, ssrc } = &p.protection {
        // The CNAME the daemon's own RTCP carries (rtp::session).
        line(format!("a=ssrc:{ssrc} cname:loa@{}", p.origin));
        for attribute in crypto {
            line(attribute.clone());
        }
    }
    s
}

/// RFC 4566 §5.3: the name is one line of text and never empty ("s= "
/// when there is nothing to say). Line breaks would start a new SDP line,
/// so control characters become spaces.
fn session_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.is_empty() {
        " ".into()
    } else {
        clean
    }
}

/// The SDP receivers open to play `zone` (RFC 4566, RFC 7587), from the
/// config: what SAP announces, and `loa sdp` prints for a plain zone. An
/// SRTP zone is `RTP/SAVP` without its key.
pub fn for_zone(config: &crate::config::Config, zone: &crate::config::Zone) -> String {
    let protection = match zone.security {
        crate::config::ZoneSecurity::None => SdpProtection::Plain,
        crate::config::ZoneSecurity::Srtp => SdpProtection::SrtpKeyElsewhere,
    };
    for_zone_with(config, zone, protection)
}

/// `for_zone` with the protection given: `loa sdp` passes the zone's
/// `a=crypto` lines.
pub fn for_zone_with(
    config: &crate::config::Config,
    zone: &crate::config::Zone,
    protection: SdpProtection,
) -> String {
    // Session id from the zone's group: stable across runs, so a receiver's
    // saved SDP stays valid (RFC 4566 §5.2 leaves the choice to the tool).
    let session_id = u64::from(u32::from(*zone.group.ip())) << 16 | u64::from(zone.group.port());
    zone_sdp(&SdpParams {
        session_id,
        session_version: 1,
        origin: config.network.interface,
        session_name: format!("loa zone {}", zone.name),
        group: zone.group,
        ttl: config.network.ttl,
        payload_type: config.audio.payload_type,
        stereo: config.audio.channels == crate::config::Channels::Stereo,
        fec: config.audio.fec,
        ptime_ms: config.audio.frame.millis(),
        max_average_bitrate: Some(config.audio.bitrate_bps),
        protection,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> SdpParams {
        SdpParams {
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
            protection: SdpProtection::Plain,
        }
    }

    #[test]
    fn an_srtp_zone_is_savp_with_its_crypto_lines_or_without_a_key() {
        let mut p = params();
        p.protection = SdpProtection::SrtpKeyElsewhere;
        let announced = zone_sdp(&p);
        assert!(announced.contains("\r\nm=audio 5004 RTP/SAVP 96\r\n"), "{announced}");
        assert!(!announced.contains("crypto"), "{announced}");
        p.protection = SdpProtection::Srtp {
            crypto: vec![
                "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA|1:4".into(),
                "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:BBBB|2:4".into(),
            ],
            ssrc: 0xdead_beef,
        };
        let secret = zone_sdp(&p);
        assert!(
            secret.ends_with(
                "a=rtcp:5005\r\na=ssrc:3735928559 cname:loa@127.0.0.1\r\n\
                 a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA|1:4\r\n\
                 a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:BBBB|2:4\r\n"
            ),
            "{secret}"
        );
    }

    #[test]
    fn zone_sdp_is_exact() {
        let expected = [
            "v=0",
            "o=- 42 7 IN IP4 127.0.0.1",
            "s=loa zone thon-1",
            "c=IN IP4 239.255.77.1/1",
            "t=0 0",
            concat!("a=tool:loa ", env!("CARGO_PKG_VERSION")),
            "a=type:broadcast",
            "a=recvonly",
            "m=audio 5004 RTP/AVP 96",
            "a=rtpmap:96 opus/48000/2",
            "a=fmtp:96 sprop-stereo=0;useinbandfec=1;maxaveragebitrate=32000",
            "a=ptime:20",
            "a=rtcp:5005",
            "",
        ]
        .join("\r\n");
        assert_eq!(zone_sdp(&params()), expected);
    }

    #[test]
    fn every_line_ends_in_crlf() {
        let text = zone_sdp(&params());
        assert!(text.ends_with("\r\n"));
        assert_eq!(text.matches('\n').count(), text.matches("\r\n").count());
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
            protection: SdpProtection::Plain,
        });
        assert!(text.contains("c=IN IP4 239.1.2.3/4\r\n"));
        assert!(
            text.contains("a=rtpmap:101 opus/48000/2\r\n"),
            "always /2 (RFC 7587 §7)"
        );
        assert!(text.contains("a=fmtp:101 sprop-stereo=1;useinbandfec=0\r\n"));
        assert!(text.contains("a=ptime:40\r\n"));
        assert!(
            !text.contains(";stereo=") && !text.contains(" stereo="),
            "no receiver-side stereo="
        );
    }

    #[test]
    fn a_session_name_cannot_inject_lines() {
        let mut p = params();
        p.session_name = "evil\r\na=sendrecv".into();
        let text = zone_sdp(&p);
        assert!(text.contains("s=evil  a=sendrecv\r\n"));
        assert!(!text.contains("\na=sendrecv"));
        p.session_name = String::new();
        assert!(zone_sdp(&p).contains("\r\ns= \r\n"));
    }

    #[test]
    fn rtcp_attribute_is_left_out_when_port_plus_one_does_not_exist() {
        let mut p = params();
        p.group.set_port(65_535);
        let text = zone_sdp(&p);
        assert!(text.contains("m=audio 65535 RTP/AVP 96\r\n"));
        assert!(!text.contains("a=rtcp:"));
    }
}
