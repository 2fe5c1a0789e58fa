//! The credential file a speaker carries (TOML): who it is, where the
//! daemon listens, the daemon's pin, and the speaker's own certificate and
//! private key. Whoever holds the file can join as that speaker, so it is
//! written with mode 0600 and revoked by name when lost.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::identity::{cert_der, Pin};
use super::SpeakersError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// The speaker's name, as enrolled.
    pub speaker: String,
    /// Where the daemon takes joins (TLS over TCP) and unicast SRTP (UDP).
    pub daemon: SocketAddr,
    /// SHA-256 of the daemon's SubjectPublicKeyInfo; the speaker trusts no
    /// other server.
    pub daemon_pin: String,
    /// The zones it was enrolled for (for the operator; the daemon decides).
    pub zones: Vec<String>,
    pub certificate: String,
    pub private_key: String,
}

impl Credential {
    /// Reads a credential file, checking what a speaker needs before it
    /// dials: a pin that parses, a certificate, and a key that belongs to
    /// that certificate.
    pub fn parse(text: &str) -> Result<Credential, SpeakersError> {
        let credential: Credential = toml::from_str(text).map_err(|e| SpeakersError::BadCredential(toml_reason(text, &e)))?;
        credential.check()?;
        Ok(credential)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a credential serializes")
    }

    pub fn daemon_pin(&self) -> Result<Pin, SpeakersError> {
        self.daemon_pin.parse().map_err(SpeakersError::BadCredential)
    }

    /// The pin the daemon knows this speaker by.
    pub fn pin(&self) -> Result<Pin, SpeakersError> {
        let der = cert_der(&self.certificate, "the credential's certificate")?;
        Pin::of_cert(&der).map_err(SpeakersError::BadCredential)
    }

    fn check(&self) -> Result<(), SpeakersError> {
        super::check_name(&self.speaker).map_err(SpeakersError::BadCredential)?;
        self.daemon_pin()?;
        let pin = self.pin()?;
        let key = rcgen::KeyPair::from_pem(&self.private_key)
            .map_err(|e| SpeakersError::BadCredential(format!("private_key is not a private key: {e}")))?;
        let key_pin = Pin(Sha256::digest(rcgen::PublicKeyData::subject_public_key_info(&key)).into());
        if key_pin != pin {
            return Err(SpeakersError::BadCredential("private_key does not belong to certificate".into()));
        }
        Ok(())
    }
}

/// What a speaker's operator does about a file that is not a credential.
const MADE_BY: &str = "give the file `loa speakers add NAME --zones Z --out FILE` wrote, unchanged";

/// A file that does not read as a credential, said for the person who
/// gave it: where in the file, what is wrong, and which file is wanted.
/// loa's own config (the file most at hand) is named as such, since its
/// `[daemon]` table otherwise reads as "expected socket address".
fn toml_reason(text: &str, e: &toml::de::Error) -> String {
    let table = text.parse::<toml::Table>().ok();
    if table.is_some_and(|t| t.contains_key("network") || t.contains_key("zone")) {
        return format!("it is a loa config file, not a speaker credential; {MADE_BY}");
    }
    // A missing field spans the whole table, from the file's first byte:
    // "line 1" would point at nothing.
    match e.span().filter(|span| span.start > 0) {
        Some(span) => format!("line {}: {}; {MADE_BY}", line_of(text, span.start), e.message()),
        None => format!("{}; {MADE_BY}", e.message()),
    }
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_credential_says_the_line_and_which_file_is_wanted() {
        // An address without its quotes, on the second line.
        let err = Credential::parse("speaker = \"a\"\ndaemon = 192.0.2.1:5300\nzones = []\n").unwrap_err().to_string();
        assert!(err.starts_with("the credential file is not valid: line 2: "), "{err}");
        assert!(err.ends_with(MADE_BY), "{err}");
        let err = Credential::parse("speaker = \"a\"\n").unwrap_err().to_string();
        assert_eq!(err, format!("the credential file is not valid: missing field `daemon`; {MADE_BY}"));
    }

    #[test]
    fn loas_own_config_given_as_a_credential_is_named_as_such() {
        let config = "[network]\ninterface = \"127.0.0.1\"\n[daemon]\nsocket = \"/run/loa/loa.sock\"\n[[zone]]\nname = \"thon-1\"\n";
        let err = Credential::parse(config).unwrap_err().to_string();
        assert_eq!(err, format!("the credential file is not valid: it is a loa config file, not a speaker credential; {MADE_BY}"));
    }
}
