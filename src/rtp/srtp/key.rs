//! Crypto suites, master keys and MKIs, and the RFC 4568 `inline:` key
//! parameter that carries them in SDP.
//!
//! A master key is secret: it is zeroed when dropped and `Debug` never shows
//! it. The only ways to read it are the explicit `expose_*`/`to_inline`
//! calls, which the SDP writer, the GStreamer caps and the speaker channel
//! need.

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use zeroize::Zeroize;

/// The two SRTP crypto suites loa offers, named as in SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    /// RFC 4568 §6.2.1, RFC 3711's default transform: AES-128 counter mode,
    /// HMAC-SHA1 tag cut to 80 bits, on RTP and RTCP. What every receiver
    /// (ffmpeg, GStreamer, VLC) understands.
    AesCm128HmacSha1_80,
    /// RFC 7714: AES-128 in GCM, one AEAD pass with a 16-byte tag.
    AeadAes128Gcm,
}

impl Suite {
    pub const ALL: [Suite; 2] = [Suite::AesCm128HmacSha1_80, Suite::AeadAes128Gcm];

    /// The crypto-suite name of `a=crypto` (RFC 4568 §6.2, RFC 7714 §12).
    pub const fn sdp_name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
        }
    }

    pub fn from_sdp_name(name: &str) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| s.sdp_name() == name)
    }

    pub const fn key_len(self) -> usize {
        16
    }

    /// The master salt: 112 bits for AES-CM (RFC 3711 §8.2), 96 bits for
    /// GCM (RFC 7714 §12).
    pub const fn salt_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 14,
            Suite::AeadAes128Gcm => 12,
        }
    }

    /// Key ‖ salt, the bytes of the `inline:` parameter.
    pub const fn master_len(self) -> usize {
        self.key_len() + self.salt_len()
    }

    /// Authentication tag bytes after an SRTP (and SRTCP) packet.
    pub const fn tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AeadAes128Gcm => 16,
        }
    }

    /// GStreamer's `srtp-cipher`/`srtcp-cipher` caps value for this suite.
    pub const fn gst_cipher(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "aes-128-icm",
            Suite::AeadAes128Gcm => "aes-128-gcm",
        }
    }

    /// GStreamer's `srtp-auth`/`srtcp-auth`: GCM authenticates in the
    /// cipher, so its auth is `null`.
    pub const fn gst_auth(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "hmac-sha1-80",
            Suite::AeadAes128Gcm => "null",
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sdp_name())
    }
}

/// What is wrong with a key, an MKI or an `inline:` parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{suite} needs {expected} bytes of master key and salt, got {got}")]
    WrongLength {
        suite: Suite,
        expected: usize,
        got: usize,
    },
    #[error("the inline key is not valid base64")]
    NotBase64,
    #[error("key parameter {0:?} does not start with \"inline:\"")]
    NotInline(String),
    #[error("key lifetime {0:?} is neither a number nor a power of two like 2^31")]
    BadLifetime(String),
    #[error("MKI {0:?} is not VALUE:LENGTH in decimal")]
    BadMki(String),
    #[error("an MKI of {0} bytes is not supported (loa uses 1 to 4)")]
    MkiLength(u32),
    #[error("MKI value {value} does not fit in {len} byte(s)")]
    MkiValue { value: u64, len: u8 },
    #[error("unexpected {0:?} after the key, lifetime and MKI")]
    Extra(String),
}

/// Base64 that takes the GCM key-salt with or without its trailing `=`:
/// RFC 4568 asks for padding, not every writer adds it.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// An SRTP master key and salt for one suite. Zeroed on drop; `Debug`
/// shows the suite only.
#[derive(Clone)]
pub struct MasterKey {
    suite: Suite,
    /// Key ‖ salt; only the first `suite.master_len()` bytes are used.
    bytes: [u8; 30],
}

impl MasterKey {
    pub fn from_bytes(suite: Suite, key_and_salt: &[u8]) -> Result<MasterKey, KeyError> {
        if key_and_salt.len() != suite.master_len() {
            return Err(KeyError::WrongLength {
                suite,
                expected: suite.master_len(),
                got: key_and_salt.len(),
            });
        }
        let mut bytes = [0u8; 30];
        bytes[..key_and_salt.len()].copy_from_slice(key_and_salt);
        Ok(MasterKey { suite, bytes })
    }

    /// A fresh key from a cryptographic generator (the caller passes it, so
    /// a test can pin it; the daemon passes `rand::rng()`).
    pub fn generate<R: rand::CryptoRng + ?Sized>(suite: Suite, rng: &mut R) -> MasterKey {
        let mut bytes = [0u8; 30];
        rng.fill_bytes(&mut bytes[..suite.master_len()]);
        MasterKey { suite, bytes }
    }

    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Key ‖ salt. Secret: for SDP, caps and the speaker channel only.
    pub fn expose_bytes(&self) -> &[u8] {
        &self.bytes[..self.suite.master_len()]
    }

    /// Key ‖ salt in lowercase hex, as GStreamer's `srtp-key=(buffer)`.
    pub fn expose_hex(&self) -> String {
        self.expose_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The RFC 4568 §6.1 key-salt: base64 of key ‖ salt (40 characters for
    /// both suites; GCM's 28 bytes end in one `=`).
    pub fn to_inline(&self) -> String {
        STANDARD.encode(self.expose_bytes())
    }

    pub fn from_inline(suite: Suite, key_salt: &str) -> Result<MasterKey, KeyError> {
        let mut decoded = LENIENT.decode(key_salt).map_err(|_| KeyError::NotBase64)?;
        let key = MasterKey::from_bytes(suite, &decoded);
        decoded.zeroize();
        key
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("suite", &self.suite)
            .field("key", &format_args!("<secret>"))
            .finish()
    }
}

/// Master Key Identifier (RFC 3711 §3.1): a fixed-length field after the
/// payload naming which master key protected the packet, so the next key
/// can be handed out before the switch and the switch happens at a packet
/// boundary with no coordination. Written in SDP as `VALUE:LENGTH` with a
/// decimal value and a length in bytes (RFC 4568 §6.1); on the wire the
/// value is big-endian in LENGTH bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mki {
    value: u32,
    len: u8,
}

impl Mki {
    /// `len` is 1 to 4 bytes: RFC 4568 allows up to 128, but a daily
    /// rotation needs a handful of values and each byte costs every packet.
    pub fn new(value: u32, len: u8) -> Result<Mki, KeyError> {
        if !(1..=4).contains(&len) {
            return Err(KeyError::MkiLength(len.into()));
        }
        if len < 4 && value >> (8 * u32::from(len)) != 0 {
            return Err(KeyError::MkiValue {
                value: value.into(),
                len,
            });
        }
        Ok(Mki { value, len })
    }

    pub fn value(self) -> u32 {
        self.value
    }

    /// Bytes on the wire (1 to 4).
    pub fn byte_len(self) -> u8 {
        self.len
    }

    /// The bytes on the wire.
    pub fn to_bytes(self) -> Vec<u8> {
        self.value.to_be_bytes()[4 - usize::from(self.len)..].to_vec()
    }

    fn parse(text: &str) -> Result<Mki, KeyError> {
        let bad = || KeyError::BadMki(text.to_string());
        let (value, len) = text.split_once(':').ok_or_else(bad)?;
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let len: u32 = len.parse().map_err(|_| bad())?;
        let len = u8::try_from(len)
            .ok()
            .filter(|l| (1..=4).contains(l))
            .ok_or(KeyError::MkiLength(len))?;
        let value: u64 = value.parse().map_err(|_| bad())?;
        let value = u32::try_from(value).map_err(|_| KeyError::MkiValue { value, len })?;
        Mki::new(value, len)
    }
}

impl fmt::Display for Mki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.value, self.len)
    }
}

/// Master key lifetime in packets (RFC 4568 §6.1): informational for loa,
/// which rotates by schedule long before 2^31 packets, but parsed so an
/// SDP from elsewhere is understood and printed so receivers that enforce
/// it see a sane value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime(pub u64);

impl Lifetime {
    fn parse(text: &str) -> Result<Lifetime, KeyError> {
        let bad = || KeyError::BadLifetime(text.to_string());
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if let Some(exp) = text.strip_prefix("2^") {
            if !digits(exp) {
                return Err(bad());
            }
            let exp: u32 = exp.parse().map_err(|_| bad())?;
            return 1u64
                .checked_shl(exp)
                .filter(|_| exp < 64)
                .map(Lifetime)
                .ok_or_else(bad);
        }
        if !digits(text) {
            return Err(bad());
        }
        text.parse().map(Lifetime).map_err(|_| bad())
    }
}

impl fmt::Display for Lifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_power_of_two() {
            write!(f, "2^{}", self.0.trailing_zeros())
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// One `inline:` key parameter: `inline:KEY_SALT[|LIFETIME][|MKI:LEN]`.
#[derive(Debug, Clone)]
pub struct KeyParam {
    pub key: MasterKey,
    pub lifetime: Option<Lifetime>,
    pub mki: Option<Mki>,
}

impl KeyParam {
    pub fn parse(suite: Suite, text: &str) -> Result<KeyParam, KeyError> {
        let rest = text
            .strip_prefix("inline:")
            .ok_or_else(|| KeyError::NotInline(redact_key_param(text)))?;
        let mut parts = rest.split('|');
        let key = MasterKey::from_inline(suite, parts.next().unwrap_or(""))?;
        let mut lifetime = None;
        let mut mki = None;
        for part in parts {
            // The lifetime comes before the MKI; only the MKI has a colon.
            if part.contains(':') && mki.is_none() {
                mki = Some(Mki::parse(part)?);
            } else if lifetime.is_none() && mki.is_none() {
                lifetime = Some(Lifetime::parse(part)?);
            } else {
                return Err(KeyError::Extra(part.to_string()));
            }
        }
        Ok(KeyParam { key, lifetime, mki })
    }

    /// `inline:…` as it goes into `a=crypto`. Contains the key.
    pub fn expose_sdp(&self) -> String {
        let mut s = format!("inline:{}", self.key.to_inline());
        if let Some(lifetime) = self.lifetime {
            s.push_str(&format!("|{lifetime}"));
        }
        if let Some(mki) = self.mki {
            s.push_str(&format!("|{mki}"));
        }
        s
    }
}

/// A key parameter shown in an error without its key.
fn redact_key_param(text: &str) -> String {
    match text.split_once(':') {
        Some((method, _)) => format!("{method}:…"),
        None => "…".to_string(),
    }
}

impl From<crate::config::SrtpSuite> for Suite {
    fn from(suite: crate::config::SrtpSuite) -> Suite {
        match suite {
            crate::config::SrtpSuite::AesCm128HmacSha1_80 => Suite::AesCm128HmacSha1_80,
            crate::config::SrtpSuite::AeadAes128Gcm => Suite::AeadAes128Gcm,
        }
    }
}
