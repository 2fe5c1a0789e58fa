//! SDES key transport: the `a=crypto` SDP attribute (RFC 4568 §4, §6,
//! RFC 7714 §12) and the GStreamer `srtpdec` caps fields that carry the
//! same keys. Both contain the key, so their writers are named `expose_*`.

use std::fmt::Write as _;

use super::key::{KeyError, KeyParam, Suite};

/// One `a=crypto:TAG SUITE KEY-PARAMS` line.
#[derive(Debug, Clone)]
pub struct CryptoAttribute {
    /// Decimal tag, 1 to 9 digits (RFC 4568 §4), unique within the media
    /// description; loa writes 1.
    pub tag: u32,
    pub suite: Suite,
    /// One key, or several each with an MKI of the same length (RFC 4568
    /// §6.1: a receiver must know which key each packet used).
    pub keys: Vec<KeyParam>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoAttributeError {
    #[error("not an a=crypto attribute")]
    NotCrypto,
    #[error("crypto tag {0:?} is not a decimal number of 1 to 9 digits")]
    BadTag(String),
    #[error("crypto suite {0:?} is not supported (loa knows AES_CM_128_HMAC_SHA1_80 and AEAD_AES_128_GCM)")]
    UnknownSuite(String),
    #[error("the a=crypto attribute has no key parameter")]
    NoKey,
    #[error("session parameter {0:?} is not supported")]
    SessionParameter(String),
    #[error("several keys need an MKI each, all of one length")]
    MkiMismatch,
    #[error("{0}")]
    Key(#[from] KeyError),
}

impl CryptoAttribute {
    /// Parses `a=crypto:…` (or the value after `a=`). Session parameters
    /// (KDR, UNENCRYPTED_SRTP, …) are refused rather than ignored: each
    /// changes the transform, and RFC 4568 §6.3 has a receiver that does not
    /// understand one reject the line.
    pub fn parse(line: &str) -> Result<CryptoAttribute, CryptoAttributeError> {
        let line = line.trim_end_matches(['\r', '\n']);
        let line = line.strip_prefix("a=").unwrap_or(line);
        let value = line
            .strip_prefix("crypto:")
            .ok_or(CryptoAttributeError::NotCrypto)?;
        let mut fields = value.split_ascii_whitespace();
        let tag_text = fields.next().unwrap_or("");
        if tag_text.is_empty()
            || tag_text.len() > 9
            || !tag_text.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(CryptoAttributeError::BadTag(tag_text.to_string()));
        }
        let tag = tag_text
            .parse()
            .map_err(|_| CryptoAttributeError::BadTag(tag_text.to_string()))?;
        let suite_text = fields.next().ok_or(CryptoAttributeError::NoKey)?;
        let suite = Suite::from_sdp_name(suite_text)
            .ok_or_else(|| CryptoAttributeError::UnknownSuite(suite_text.to_string()))?;
        let key_params = fields.next().ok_or(CryptoAttributeError::NoKey)?;
        if let Some(session_param) = fields.next() {
            return Err(CryptoAttributeError::SessionParameter(
                session_param.to_string(),
            ));
        }
        let keys = key_params
            .split(';')
            .map(|p| KeyParam::parse(suite, p))
            .collect::<Result<Vec<_>, _>>()?;
        let attribute = CryptoAttribute { tag, suite, keys };
        attribute.check_mkis()?;
        Ok(attribute)
    }

    fn check_mkis(&self) -> Result<(), CryptoAttributeError> {
        let first = self.keys.first().ok_or(CryptoAttributeError::NoKey)?.mki;
        let consistent = self
            .keys
            .iter()
            .all(|k| k.mki.map(|m| m.byte_len()) == first.map(|m| m.byte_len()));
        if !consistent || (self.keys.len() > 1 && first.is_none()) {
            return Err(CryptoAttributeError::MkiMismatch);
        }
        Ok(())
    }

    /// The full `a=crypto:…` line, without line end. Contains the keys.
    pub fn expose_sdp_line(&self) -> String {
        let keys: Vec<String> = self.keys.iter().map(KeyParam::expose_sdp).collect();
        format!("a=crypto:{} {} {}", self.tag, self.suite, keys.join(";"))
    }

    /// The SRTP fields of GStreamer's `application/x-srtp` caps for these
    /// keys: `srtp-key`, the four cipher/auth fields and, with MKIs,
    /// `mki`, `srtp-key2`/`mki2`, … (srtpdec takes up to 15 more). The
    /// caller adds `payload`, `ssrc`, `clock-rate`, `encoding-name` and, for
    /// a receiver joining late, `roc`. Contains the keys.
    pub fn expose_gst_caps_fields(&self) -> String {
        let suite = self.suite;
        let mut s = String::new();
        for (i, key) in self.keys.iter().enumerate() {
            let suffix = if i == 0 {
                String::new()
            } else {
                (i + 1).to_string()
            };
            if i > 0 {
                s.push_str(", ");
            }
            let _ = write!(s, "srtp-key{suffix}=(buffer){}", key.key.expose_hex());
            if let Some(mki) = key.mki {
                let hex: String = mki.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
                let _ = write!(s, ", mki{suffix}=(buffer){hex}");
            }
        }
        let _ = write!(
            s,
            ", srtp-cipher=(string){c}, srtp-auth=(string){a}, srtcp-cipher=(string){c}, srtcp-auth=(string){a}",
            c = suite.gst_cipher(),
            a = suite.gst_auth()
        );
        s
    }
}
