//! Both ends' configurations meet in memory (no sockets): a handshake is
//! driven by moving bytes between a client and a server connection.

use std::sync::Arc;

use rustls::{ClientConnection, ServerConnection};

use super::*;

fn credential(identity: &Identity, name: &str) -> Credential {
    let enrolled = identity.enrol(name).unwrap();
    Credential {
        speaker: name.into(),
        daemon: "127.0.0.1:53000".parse().unwrap(),
        daemon_pin: identity.pin().to_string(),
        zones: vec!["thon-1".into()],
        certificate: enrolled.cert_pem,
        private_key: enrolled.key_pem,
    }
}

/// Moves TLS records both ways until neither side has anything to say.
fn handshake(client: &mut ClientConnection, server: &mut ServerConnection) -> Result<(), String> {
    for _ in 0..20 {
        let mut buf = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buf).unwrap();
        }
        if !buf.is_empty() {
            server.read_tls(&mut buf.as_slice()).unwrap();
            server.process_new_packets().map_err(|e| format!("server: {e}"))?;
        }
        let mut back = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut back).unwrap();
        }
        if !back.is_empty() {
            client.read_tls(&mut back.as_slice()).unwrap();
            client.process_new_packets().map_err(|e| format!("client: {e}"))?;
        }
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
    }
    Err("the handshake did not finish".into())
}

fn connect(identity: &Identity, credential: &Credential) -> (Result<(), String>, ServerConnection) {
    let server_config = Arc::new(server_config(identity).unwrap());
    let client_config = Arc::new(client_config(credential).unwrap());
    let name = ServerName::IpAddress(credential.daemon.ip().into());
    let mut client = ClientConnection::new(client_config, name).unwrap();
    let mut server = ServerConnection::new(server_config).unwrap();
    (handshake(&mut client, &mut server), server)
}

#[test]
fn a_speaker_with_its_credential_completes_tls13_and_the_daemon_learns_its_pin() {
    let identity = Identity::generate().unwrap();
    let credential = credential(&identity, "xa-dong");
    let (result, server) = connect(&identity, &credential);
    result.unwrap();
    assert_eq!(server.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
    assert_eq!(peer_pin(server.peer_certificates()), Some(credential.pin().unwrap()));
}

#[test]
fn a_speaker_refuses_a_daemon_that_is_not_the_one_its_credential_pins() {
    let real = Identity::generate().unwrap();
    let impostor = Identity::generate().unwrap();
    let credential = credential(&real, "xa-dong");
    let (result, _) = connect(&impostor, &credential);
    let err = result.unwrap_err();
    assert!(err.starts_with("client:") && err.contains("not the loa that enrolled this speaker"), "{err}");
}

#[test]
fn a_certificate_made_by_anyone_passes_the_handshake_but_names_its_own_pin() {
    // Enrolment is judged after the handshake: a stranger's certificate
    // gets through TLS, and its pin is what the store is asked about.
    let identity = Identity::generate().unwrap();
    let stranger = Identity::generate().unwrap();
    let mut forged = credential(&stranger, "xa-dong");
    forged.daemon_pin = identity.pin().to_string();
    let (result, server) = connect(&identity, &forged);
    result.unwrap();
    assert_eq!(peer_pin(server.peer_certificates()), Some(forged.pin().unwrap()));
    assert_ne!(peer_pin(server.peer_certificates()), Some(credential(&identity, "x").pin().unwrap()));
}

#[test]
fn a_certificate_whose_key_is_not_the_signers_fails_the_handshake() {
    // The speaker presents a real enrolled certificate with another key:
    // the handshake signature does not verify, so the daemon ends it.
    let identity = Identity::generate().unwrap();
    let mut stolen = credential(&identity, "xa-dong");
    stolen.private_key = credential(&identity, "other").private_key;
    // rustls checks the pair when the config is built; build it unchecked
    // through the low-level builder so the server's verifier is what fails.
    let cert = CertificateDer::from(super::super::identity::cert_der(&stolen.certificate, "c").unwrap());
    let key = key_der(&stolen.private_key, "k").unwrap();
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).unwrap();
    let certified = Arc::new(rustls::sign::CertifiedKey::new(vec![cert], signer));
    #[derive(Debug)]
    struct Fixed(Arc<rustls::sign::CertifiedKey>);
    impl rustls::client::ResolvesClientCert for Fixed {
        fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<rustls::sign::CertifiedKey>> {
            Some(self.0.clone())
        }
        fn has_certs(&self) -> bool {
            true
        }
    }
    let client_config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned { pin: identity.pin(), algorithms: algorithms() }))
        .with_client_cert_resolver(Arc::new(Fixed(certified)));
    let mut client = ClientConnection::new(Arc::new(client_config), ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into())).unwrap();
    let mut server = ServerConnection::new(Arc::new(server_config(&identity).unwrap())).unwrap();
    let err = handshake(&mut client, &mut server).unwrap_err();
    assert!(err.starts_with("server:"), "{err}");
}
