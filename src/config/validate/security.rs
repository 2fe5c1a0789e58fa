//! `[security]` and each zone's `security`: SRTP unless a zone says
//! `"none"`, the suite and how long a zone key lives.

use toml::Spanned;

use super::Validator;
use crate::config::raw::RawSecurity;
use crate::config::{Security, SrtpSuite, ZoneSecurity, MIN_ROTATE};

impl Validator<'_> {
    pub(super) fn security(&mut self, raw: Option<&RawSecurity>) -> Security {
        let mut security = Security::default();
        let Some(raw) = raw else {
            return security;
        };
        if let Some(at) = &raw.suite {
            match at.get_ref().as_str() {
                "AES_CM_128_HMAC_SHA1_80" => security.suite = SrtpSuite::AesCm128HmacSha1_80,
                "AEAD_AES_128_GCM" => security.suite = SrtpSuite::AeadAes128Gcm,
                other => self.error(
                    at,
                    format!(
                        "suite \"{other}\" is not one loa offers; use \"AES_CM_128_HMAC_SHA1_80\" (default) or \"AEAD_AES_128_GCM\""
                    ),
                ),
            }
        }
        if let Some(at) = &raw.rotate {
            if let Some(d) = self.positive_duration(at, "rotate") {
                if d < MIN_ROTATE {
                    self.error(
                        at,
                        format!(
                            "rotate \"{}\" is too short; a zone key must live at least \"5s\" (default \"24h\")",
                            at.get_ref()
                        ),
                    );
                } else {
                    security.rotate = d;
                }
            }
        }
        security
    }

    pub(super) fn zone_security(&mut self, raw: Option<&Spanned<String>>) -> ZoneSecurity {
        let Some(at) = raw else {
            return ZoneSecurity::Srtp;
        };
        match at.get_ref().as_str() {
            "srtp" => ZoneSecurity::Srtp,
            "none" => ZoneSecurity::None,
            other => {
                self.error(
                    at,
                    format!(
                        "security \"{other}\" is not valid; use \"srtp\" (default) or \"none\" (plain RTP, for speakers that cannot do SRTP)"
                    ),
                );
                ZoneSecurity::Srtp
            }
        }
    }
}
