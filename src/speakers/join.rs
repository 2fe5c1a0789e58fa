//! The join protocol inside the TLS connection (sans-IO): RFC 4571
//! framing (a 2-byte big-endian length before each payload), and what a
//! payload is — a JSON control message when it starts with `{`, an
//! SRTP/SRTCP packet when it starts with RTP version 2 (0x80–0xBF), for
//! the fallback where UDP does not get through. Anything else ends the
//! connection with a reason.
//!
//! Also the admission rule after the handshake: which certificates join
//! and, for those that do not, the plain words they are refused with.

use serde::{Deserialize, Serialize};

use crate::proto::speakers::SpeakerTransport;

/// The protocol version this loa speaks.
pub const VERSION: u32 = 1;
/// Control messages are small (a welcome with a few zones is ~1 KiB); a
/// bigger one is a peer misbehaving, not a bigger welcome.
pub const MAX_CONTROL: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    #[error("an empty frame")]
    EmptyFrame,
    #[error("a frame of {0} bytes; at most 65535 fit the 2-byte length")]
    TooLong(usize),
    #[error("a control message of {0} bytes; at most 16384 are allowed")]
    ControlTooLong(usize),
    #[error("a frame starting with byte 0x{0:02x}, neither a control message nor an RTP packet")]
    UnknownPayload(u8),
    #[error("a control message that is not valid: {0}")]
    BadControl(String),
}

/// One key of a zone's ring: its MKI and the SRTP master key and salt
/// (base64, RFC 4568 `inline:` order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyGrant {
    pub mki: u32,
    pub key: String,
    /// The key packets carry now; the other is next.
    pub current: bool,
}

/// The speaker's own key for its SRTCP receiver reports (its keepalives).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Uplink {
    pub ssrc: u32,
    pub key: String,
}

/// A zone as a joined speaker receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneGrant {
    pub name: String,
    pub ssrc: u32,
    pub pt: u8,
    pub channels: u8,
    /// `AES_CM_128_HMAC_SHA1_80` or `AEAD_AES_128_GCM`.
    pub suite: String,
    /// The multicast group, when the speaker said it can receive it
    /// (`transport` is then `multicast` and no unicast copy is sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<std::net::SocketAddrV4>,
    pub transport: SpeakerTransport,
    pub keys: Vec<KeyGrant>,
    pub uplink: Uplink,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Welcome {
    pub speaker: String,
    /// How often to send a keepalive (an SRTCP RR), in milliseconds.
    pub keepalive_ms: u64,
    /// The UDP port for unicast SRTP/SRTCP (the join port's number).
    pub udp_port: u16,
    pub zones: Vec<ZoneGrant>,
}

/// The control messages, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Message {
    /// Speaker → loa, first: what it can receive.
    Hello { version: u32, multicast: bool, udp: bool },
    /// loa → speaker: its zones, keys and transports.
    Welcome(Welcome),
    /// loa → speaker: a zone's ring changed (a next key, before the switch).
    Keys { zone: String, keys: Vec<KeyGrant> },
    /// loa → speaker: a zone now arrives another way.
    Transport { zone: String, transport: SpeakerTransport },
    /// loa → speaker: a zone granted anew or changed by a reload (a new
    /// SSRC and keys, another group); it replaces any grant of that name.
    Zone(ZoneGrant),
    /// loa → speaker: a zone it no longer gets (removed by a reload, or
    /// now plain RTP, which joined speakers never play).
    ZoneGone { zone: String, reason: String },
    /// Speaker → loa: it holds these keys of `zone` now (after `keys`), so
    /// a revocation's switch need not wait out its hand-out time.
    KeysAck { zone: String, mkis: Vec<u32> },
    /// Speaker → loa: whether loa's UDP reaches it, judged by loa's
    /// answers to its keepalives ([`answer_ssrc`]). `false` puts its audio
    /// inside TLS, and UDP keepalives no longer win unicast back; `true`
    /// (answers came again) lets them.
    Downstream { udp: bool },
    /// loa → speaker: not admitted; the connection closes after this.
    Refused { reason: String },
    /// Either side: the session ends.
    Bye { reason: String },
}

/// The SSRC of loa's answers to a session's UDP keepalives: one small
/// SRTCP receiver report on the keepalive's own 5-tuple, sealed under the
/// session's uplink key, which proves to the speaker that loa's UDP reaches
/// it. Never the uplink SSRC itself, so the two directions under one key
/// never share a keystream (RFC 3711 §9.1: the SSRC is in the IV) and a
/// keepalive reflected back at the speaker is no answer.
pub fn answer_ssrc(uplink_ssrc: u32) -> u32 {
    !uplink_ssrc
}

/// What one frame carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload<'a> {
    Control(Message),
    /// An SRTP or SRTCP packet (TLS fallback), still protected.
    Media(&'a [u8]),
}

/// Reads one frame's payload.
pub fn parse(payload: &[u8]) -> Result<Payload<'_>, JoinError> {
    match payload.first() {
        None => Err(JoinError::EmptyFrame),
        Some(b'{') if payload.len() > MAX_CONTROL => Err(JoinError::ControlTooLong(payload.len())),
        Some(b'{') => serde_json::from_slice(payload).map(Payload::Control).map_err(|e| JoinError::BadControl(e.to_string())),
        Some(0x80..=0xbf) => Ok(Payload::Media(payload)),
        Some(&other) => Err(JoinError::UnknownPayload(other)),
    }
}

/// `payload` with its RFC 4571 length in front.
pub fn frame(payload: &[u8]) -> Result<Vec<u8>, JoinError> {
    let len = u16::try_from(payload.len()).map_err(|_| JoinError::TooLong(payload.len()))?;
    if len == 0 {
        return Err(JoinError::EmptyFrame);
    }
    let mut out = Vec::with_capacity(2 + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// A control message, framed.
pub fn frame_message(message: &Message) -> Vec<u8> {
    let json = serde_json::to_vec(message).expect("control messages serialize");
    frame(&json).expect("control messages are far below 64 KiB")
}

/// Splits a byte stream into RFC 4571 frames, whatever the reads' sizes.
#[derive(Debug, Default)]
pub struct Deframer {
    buf: Vec<u8>,
}

impl Deframer {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame's payload, if one has arrived.
    pub fn next_frame(&mut self) -> Option<Result<Vec<u8>, JoinError>> {
        let len = usize::from(u16::from_be_bytes([*self.buf.first()?, *self.buf.get(1)?]));
        if len == 0 {
            self.buf.drain(..2);
            return Some(Err(JoinError::EmptyFrame));
        }
        if self.buf.len() < 2 + len {
            return None;
        }
        let payload = self.buf[2..2 + len].to_vec();
        self.buf.drain(..2 + len);
        Some(Ok(payload))
    }

    /// Bytes held that are not yet a whole frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// What the store says of a certificate that completed the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enrolment {
    Unknown,
    Revoked { name: String, at: jiff::Timestamp },
    Live { name: String },
}

/// Whether a speaker joins: its name, or why not in words it can log and
/// an operator can act on.
pub fn admit(enrolment: &Enrolment) -> Result<&str, String> {
    match enrolment {
        Enrolment::Live { name } => Ok(name),
        Enrolment::Unknown => Err("this credential is not enrolled with this loa; ask the operator for one (loa speakers add NAME --zones …)".into()),
        Enrolment::Revoked { name, at } => {
            Err(format!("speaker \"{name}\" was revoked at {at}; ask the operator to enrol it again"))
        }
    }
}

#[cfg(test)]
#[path = "join_tests.rs"]
mod tests;
