//! Reading a session description (RFC 4566) for the speaker: just what a
//! receiver of one Opus stream needs — the group, port, payload type,
//! stereo flag and RTCP port. loa writes its own in `rtp::sdp`.
//!
//! Owns: the text → `SdpStream` mapping. Must not touch: files (the caller
//! reads them), sockets.
//!
//! Lenient on lines it does not need (any `o=`, `s=`, `t=`, other
//! attributes), strict on the ones it does: each error names its line.

use std::net::{Ipv4Addr, SocketAddrV4};

/// The stream a speaker plays, as an SDP describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpStream {
    pub group: SocketAddrV4,
    pub payload_type: u8,
    /// `sprop-stereo=1` in the fmtp line (RFC 7587 §7).
    pub stereo: bool,
    /// `a=rtcp:` (RFC 3605), else the RTP port + 1.
    pub rtcp_port: u16,
    /// `RTP/SAVP`: the first `a=crypto:` attribute (without `a=`), which
    /// holds the keys (RFC 4568).
    pub crypto: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("line {line}: {reason}: {text:?}")]
    Line {
        line: usize,
        text: String,
        reason: &'static str,
    },
    #[error("no audio stream (m=audio line)")]
    NoAudio,
    #[error("no connection address (c=IN IP4 line)")]
    NoConnection,
    #[error("payload type {0} is not opus/48000 (a=rtpmap line)")]
    NotOpus(u8),
    #[error("the stream is RTP/SAVP (SRTP) but the SDP has no a=crypto line with its key; `loa sdp --zone Z` prints one")]
    NoKey,
}

/// Parses SDP text; LF or CRLF line endings.
pub fn parse(text: &str) -> Result<SdpStream, SdpError> {
    let mut session_addr = None;
    let mut media_addr = None;
    let mut media: Option<(u16, u8, bool)> = None;
    let mut encoding: Option<String> = None;
    let mut stereo = false;
    let mut rtcp_port = None;
    let mut crypto: Option<String> = None;
    for (index, raw) in text.lines().enumerate() {
        let text = raw.trim_end_matches('\r');
        let bad = |reason| SdpError::Line {
            line: index + 1,
            text: text.to_string(),
            reason,
        };
        if text.is_empty() {
            continue;
        }
        let Some((kind, value)) = text.split_once('=') else {
            return Err(bad("not a `type=value` line"));
        };
        match kind {
            "c" => {
                let addr =
                    connection(value).ok_or_else(|| bad("expected `c=IN IP4 ADDRESS[/TTL]`"))?;
                if media.is_some() {
                    media_addr = Some(addr);
                } else {
                    session_addr = Some(addr);
                }
            }
            "m" if value.starts_with("audio ") => {
                if media.is_some() {
                    // One stream is all a speaker plays; later ones are
                    // ignored rather than refused.
                    break;
                }
                media = Some(
                    media_line(value).ok_or_else(|| bad("expected `m=audio PORT RTP/AVP PT` or RTP/SAVP"))?,
                );
            }
            "a" => {
                let Some((_, pt, _)) = media else { continue };
                if value.starts_with("crypto:") {
                    crypto.get_or_insert_with(|| value.to_string());
                } else if let Some(rest) = value.strip_prefix("rtpmap:") {
                    let (id, name) = rest
                        .split_once(' ')
                        .ok_or_else(|| bad("expected `a=rtpmap:PT NAME/RATE`"))?;
                    if id.trim().parse::<u8>().ok() == Some(pt) {
                        encoding = Some(name.trim().to_ascii_lowercase());
                    }
                } else if let Some(rest) = value.strip_prefix("fmtp:") {
                    let (id, params) = rest.split_once(' ').unwrap_or((rest, ""));
                    if id.trim().parse::<u8>().ok() == Some(pt) {
                        stereo = params.split(';').any(|p| {
                            let p: String = p.chars().filter(|c| !c.is_whitespace()).collect();
                            p == "sprop-stereo=1"
                        });
                    }
                } else if let Some(rest) = value.strip_prefix("rtcp:") {
                    let port = rest
                        .split_whitespace()
                        .next()
                        .and_then(|p| p.parse::<u16>().ok());
                    rtcp_port = Some(
                        port.filter(|&p| p != 0)
                            .ok_or_else(|| bad("expected `a=rtcp:PORT`"))?,
                    );
                }
            }
            _ => {}
        }
    }
    let (port, payload_type, secure) = media.ok_or(SdpError::NoAudio)?;
    if secure && crypto.is_none() {
        return Err(SdpError::NoKey);
    }
    let group = media_addr.or(session_addr).ok_or(SdpError::NoConnection)?;
    // Static payload types are never Opus; a dynamic one needs an rtpmap
    // naming opus/48000 (RFC 7587 §7).
    match &encoding {
        Some(name) if name.starts_with("opus/48000") => {}
        _ => return Err(SdpError::NotOpus(payload_type)),
    }
    Ok(SdpStream {
        group: SocketAddrV4::new(group, port),
        payload_type,
        stereo,
        rtcp_port: rtcp_port.unwrap_or(port.wrapping_add(1)),
        crypto: if secure { crypto } else { None },
    })
}

/// `IN IP4 239.255.0.1/16` → the address (TTL ignored).
fn connection(value: &str) -> Option<Ipv4Addr> {
    let mut fields = value.split_whitespace();
    if (fields.next()?, fields.next()?) != ("IN", "IP4") {
        return None;
    }
    fields.next()?.split('/').next()?.parse().ok()
}

/// `audio 5004 RTP/AVP 96` → (port, first payload type, whether SRTP:
/// `RTP/SAVP`).
fn media_line(value: &str) -> Option<(u16, u8, bool)> {
    let mut fields = value.split_whitespace().skip(1);
    let port: u16 = fields.next()?.split('/').next()?.parse().ok()?;
    let profile = fields.next()?;
    let secure = profile.starts_with("RTP/SAVP");
    if !(secure || profile.starts_with("RTP/AVP")) || port == 0 {
        return None;
    }
    let pt: u8 = fields.next()?.parse().ok()?;
    (pt <= 127).then_some((port, pt, secure))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::sdp::{zone_sdp, SdpParams};

    fn loa_sdp(stereo: bool) -> String {
        zone_sdp(&SdpParams {
            session_id: 1,
            session_version: 1,
            origin: Ipv4Addr::LOCALHOST,
            session_name: "Zone z".into(),
            group: "239.255.1.2:5004".parse().unwrap(),
            ttl: 1,
            payload_type: 97,
            stereo,
            fec: true,
            ptime_ms: 20,
            max_average_bitrate: None,
            protection: crate::rtp::sdp::SdpProtection::Plain,
        })
    }

    #[test]
    fn loas_own_sdp_reads_back() {
        let s = parse(&loa_sdp(false)).unwrap();
        assert_eq!(
            s,
            SdpStream {
                group: "239.255.1.2:5004".parse().unwrap(),
                payload_type: 97,
                stereo: false,
                rtcp_port: 5005,
                crypto: None,
            }
        );
        assert!(parse(&loa_sdp(true)).unwrap().stereo);
    }

    #[test]
    fn an_savp_stream_needs_its_a_crypto_line() {
        let text = "c=IN IP4 239.1.1.1\nm=audio 5004 RTP/SAVP 96\na=rtpmap:96 opus/48000/2\n";
        assert_eq!(parse(text), Err(SdpError::NoKey));
        let keyed = format!("{text}a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:KEY|1:4;inline:NEXT|2:4\n");
        assert_eq!(
            parse(&keyed).unwrap().crypto.as_deref(),
            Some("crypto:1 AES_CM_128_HMAC_SHA1_80 inline:KEY|1:4;inline:NEXT|2:4")
        );
        // A key on a plain stream is not used.
        let plain = keyed.replace("RTP/SAVP", "RTP/AVP");
        assert_eq!(parse(&plain).unwrap().crypto, None);
    }

    #[test]
    fn media_level_connection_and_rtcp_port_win() {
        let text = "v=0\nc=IN IP4 239.1.1.1/4\nm=audio 6000 RTP/AVP 100\nc=IN IP4 239.2.2.2\n\
                    a=rtpmap:100 OPUS/48000/2\na=fmtp:100 useinbandfec=1; sprop-stereo=1\na=rtcp:7000\n";
        let s = parse(text).unwrap();
        assert_eq!(s.group, "239.2.2.2:6000".parse().unwrap());
        assert_eq!((s.payload_type, s.stereo, s.rtcp_port), (100, true, 7000));
    }

    #[test]
    fn an_sdp_without_an_audio_stream_is_refused() {
        assert_eq!(parse("v=0\nc=IN IP4 239.1.1.1\n"), Err(SdpError::NoAudio));
        assert_eq!(
            parse("v=0\nc=IN IP4 239.1.1.1\n").unwrap_err().to_string(),
            "no audio stream (m=audio line)"
        );
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse("v=0\nc=IN IP6 ::1\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: expected `c=IN IP4 ADDRESS[/TTL]`: \"c=IN IP6 ::1\""
        );
        let err = parse("v=0\nm=audio x RTP/AVP 96\n").unwrap_err();
        assert!(err.to_string().starts_with("line 2: "), "{err}");
        let err = parse("v=0\r\nhello\r\n").unwrap_err();
        assert!(err.to_string().starts_with("line 2: not a"), "{err}");
    }

    #[test]
    fn a_stream_that_is_not_opus_is_refused() {
        let text = "c=IN IP4 239.1.1.1\nm=audio 5004 RTP/AVP 0\n";
        assert_eq!(parse(text), Err(SdpError::NotOpus(0)));
        let text = "c=IN IP4 239.1.1.1\nm=audio 5004 RTP/AVP 96\na=rtpmap:96 L16/48000/2\n";
        assert_eq!(parse(text), Err(SdpError::NotOpus(96)));
    }
}
