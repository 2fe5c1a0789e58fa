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
        let credential: Credential = toml::from_str(text).map_err(|e| SpeakersError::BadCredential(e.message().to_string()))?;
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
