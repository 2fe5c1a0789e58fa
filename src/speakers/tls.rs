//! The TLS of a join, both ends (rustls with the ring provider, TLS 1.3
//! only): the configurations, not the sockets.
//!
//! Neither end uses a certificate authority. The speaker pins the daemon
//! by the SHA-256 of its SubjectPublicKeyInfo, from its credential. The
//! daemon asks every speaker for a certificate and checks here only that
//! the peer holds its private key (the handshake signature); whether that
//! certificate is enrolled is asked of the store after the handshake, so a
//! refusal reaches the speaker as a `refused` message in plain words
//! instead of a bare TLS alert.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::identity::Pin;
use super::{Credential, Identity, SpeakersError};

// ring is the provider the build already has (rcgen uses it); its
// deprecation is about post-quantum key exchange, which needs aws-lc-rs.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    provider().signature_verification_algorithms
}

fn key_der(pem: &str, what: &str) -> Result<PrivateKeyDer<'static>, SpeakersError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| SpeakersError::BadPem { what: what.into(), detail: e.to_string() })
}

fn tls_error(e: rustls::Error) -> SpeakersError {
    SpeakersError::Generate(format!("TLS setup: {e}"))
}

/// Any certificate whose key signs the handshake: who it is, is decided
/// after the handshake (see the module doc).
#[derive(Debug)]
struct AnySpeaker {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnySpeaker {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(&self, end_entity: &CertificateDer<'_>, _: &[CertificateDer<'_>], _: UnixTime) -> Result<ClientCertVerified, rustls::Error> {
        // Parsed here so a certificate that is not one never reaches the
        // store lookup.
        Pin::of_cert(end_entity).map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The daemon's server configuration: its identity, a certificate required
/// of every speaker.
pub fn server_config(identity: &Identity) -> Result<rustls::ServerConfig, SpeakersError> {
    let cert = CertificateDer::from(identity.cert_der().to_vec());
    let key = key_der(identity.key_pem(), "the daemon's identity key")?;
    rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .with_client_cert_verifier(Arc::new(AnySpeaker { algorithms: algorithms() }))
        .with_single_cert(vec![cert], key)
        .map_err(tls_error)
}

/// The daemon whose identity has the credential's pin, and no other.
#[derive(Debug)]
struct Pinned {
    pin: Pin,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(&self, end_entity: &CertificateDer<'_>, _: &[CertificateDer<'_>], _: &ServerName<'_>, _: &[u8], _: UnixTime) -> Result<ServerCertVerified, rustls::Error> {
        let pin = Pin::of_cert(end_entity).map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
        if pin != self.pin {
            return Err(rustls::Error::General(format!(
                "the daemon's identity is {pin}, not {} as the credential pins; this is not the loa that enrolled this speaker",
                self.pin
            )));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The speaker's client configuration: the credential's certificate, and
/// only the pinned daemon trusted.
pub fn client_config(credential: &Credential) -> Result<rustls::ClientConfig, SpeakersError> {
    let cert = CertificateDer::from(super::identity::cert_der(&credential.certificate, "the credential's certificate")?);
    let key = key_der(&credential.private_key, "the credential's private key")?;
    rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned { pin: credential.daemon_pin()?, algorithms: algorithms() }))
        .with_client_auth_cert(vec![cert], key)
        .map_err(tls_error)
}

/// The pin of the peer's certificate after a handshake, if it sent one.
pub fn peer_pin(certificates: Option<&[CertificateDer<'_>]>) -> Option<Pin> {
    Pin::of_cert(certificates?.first()?).ok()
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
