//! The daemon's identity: an ECDSA P-256 key and self-signed certificate
//! kept in `state_dir/speakers/` (mode 0600), made once on first use.
//! Speakers pin the SHA-256 of its SubjectPublicKeyInfo rather than trust
//! a CA: a commune has no PKI, and a pin survives a re-issued certificate
//! with the same key.
//!
//! Enrolment makes each speaker its own key pair and a certificate issued
//! by this identity; loa recognises a speaker by the pin of that
//! certificate's key, looked up in the store after the TLS handshake.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rcgen::{PublicKeyData, CertificateParams, DistinguishedName, DnType, Issuer, KeyPair, PKCS_ECDSA_P256_SHA256};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};

use super::SpeakersError;

const DIR: &str = "speakers";
const CERT_FILE: &str = "identity.crt";
const KEY_FILE: &str = "identity.key";
/// The name in the daemon's certificate; speakers check the pin, not it.
const DAEMON_NAME: &str = "loa daemon";

/// SHA-256 of a certificate's SubjectPublicKeyInfo, written
/// `sha256:<64 hex digits>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pin(pub [u8; 32]);

impl Pin {
    /// The pin of a DER certificate's key.
    pub fn of_cert(der: &[u8]) -> Result<Pin, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
        Ok(Pin(Sha256::digest(cert.tbs_certificate.subject_pki.raw).into()))
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Pin {
    type Err = String;

    fn from_str(s: &str) -> Result<Pin, String> {
        let bad = || format!("pin \"{s}\" is not sha256: followed by 64 hex digits");
        let hex = s.strip_prefix("sha256:").ok_or_else(bad)?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut pin = [0u8; 32];
        for (i, byte) in pin.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(Pin(pin))
    }
}

/// The daemon's key and certificate.
pub struct Identity {
    cert_pem: String,
    key_pem: String,
    cert_der: Vec<u8>,
    pin: Pin,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity").field("pin", &self.pin).finish_non_exhaustive()
    }
}

/// A speaker just enrolled: its certificate and key (PEM) and the pin loa
/// will know it by.
pub struct Enrolled {
    pub cert_pem: String,
    pub key_pem: String,
    pub pin: Pin,
}

impl Identity {
    /// A new identity (ECDSA P-256, self-signed).
    pub fn generate() -> Result<Identity, SpeakersError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generate)?;
        let cert = daemon_params().self_signed(&key).map_err(generate)?;
        Identity::from_pem(cert.pem(), key.serialize_pem(), "the new identity")
    }

    /// Reads `state_dir/speakers/identity.{crt,key}`, making them first if
    /// neither exists. A key file others can read is refused: whoever reads
    /// it can pose as this daemon to every speaker.
    pub fn load_or_create(state_dir: &Path) -> Result<Identity, SpeakersError> {
        let dir = state_dir.join(DIR);
        let (cert_path, key_path) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
        if !cert_path.exists() && !key_path.exists() {
            let identity = Identity::generate()?;
            fs::create_dir_all(&dir).map_err(|source| SpeakersError::Write { path: dir.clone(), source })?;
            write_private(&key_path, identity.key_pem.as_bytes())?;
            write_private(&cert_path, identity.cert_pem.as_bytes())?;
            tracing::info!("made the daemon's speaker identity {} in {}", identity.pin, dir.display());
            return Ok(identity);
        }
        let mode = fs::metadata(&key_path).map_err(|source| SpeakersError::Read { path: key_path.clone(), source })?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(SpeakersError::Exposed { path: key_path, mode: mode & 0o777 });
        }
        let read = |path: &PathBuf| fs::read_to_string(path).map_err(|source| SpeakersError::Read { path: path.clone(), source });
        Identity::from_pem(read(&cert_path)?, read(&key_path)?, &cert_path.display().to_string())
    }

    fn from_pem(cert_pem: String, key_pem: String, what: &str) -> Result<Identity, SpeakersError> {
        let cert_der = cert_der(&cert_pem, what)?;
        let pin = Pin::of_cert(&cert_der).map_err(|detail| SpeakersError::BadPem { what: what.into(), detail })?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| SpeakersError::BadPem { what: format!("the key of {what}"), detail: e.to_string() })?;
        if Pin(Sha256::digest(key.subject_public_key_info()).into()) != pin {
            return Err(SpeakersError::BadPem { what: what.into(), detail: "the key does not belong to the certificate".into() });
        }
        Ok(Identity { cert_pem, key_pem, cert_der, pin })
    }

    pub fn pin(&self) -> Pin {
        self.pin
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// A key pair and certificate for speaker `name`, issued by this
    /// identity. The name goes in the certificate for people reading it;
    /// loa itself goes by the pin.
    pub fn enrol(&self, name: &str) -> Result<Enrolled, SpeakersError> {
        let own = KeyPair::from_pem(&self.key_pem).map_err(generate)?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, own).map_err(generate)?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generate)?;
        let mut params = CertificateParams::new(vec![]).map_err(generate)?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, format!("loa speaker {name}"));
        let cert = params.signed_by(&key, &issuer).map_err(generate)?;
        let pin = Pin::of_cert(cert.der()).map_err(SpeakersError::Generate)?;
        Ok(Enrolled { cert_pem: cert.pem(), key_pem: key.serialize_pem(), pin })
    }
}

fn daemon_params() -> CertificateParams {
    let mut params = CertificateParams::new(vec![]).expect("no names to check");
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, DAEMON_NAME);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
}

fn generate(e: rcgen::Error) -> SpeakersError {
    SpeakersError::Generate(e.to_string())
}

/// The DER of the first certificate in `pem`.
pub fn cert_der(pem: &str, what: &str) -> Result<Vec<u8>, SpeakersError> {
    let bad = |detail: String| SpeakersError::BadPem { what: what.into(), detail };
    CertificateDer::from_pem_slice(pem.as_bytes()).map(|der| der.to_vec()).map_err(|e| bad(e.to_string()))
}

/// Writes `bytes` to `path` with mode 0600 from the first byte on (never
/// world-readable, not even for a moment), replacing it whole.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), SpeakersError> {
    let tmp = path.with_extension("tmp");
    let err = |source| SpeakersError::Write { path: path.to_path_buf(), source };
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(err)?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
#[path = "identity_tests.rs"]
mod tests;
