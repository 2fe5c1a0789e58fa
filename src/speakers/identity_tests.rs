use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::speakers::Credential;

#[test]
fn pin_round_trips_through_its_text() {
    let pin = Pin([0xab; 32]);
    let text = pin.to_string();
    assert_eq!(text, format!("sha256:{}", "ab".repeat(32)));
    assert_eq!(text.parse::<Pin>().unwrap(), pin);
}

#[test]
fn pin_text_that_is_not_sha256_hex_is_refused_in_words() {
    for bad in ["", "sha256:", "md5:00", &format!("sha256:{}", "zz".repeat(32)), &format!("sha256:{}", "a".repeat(63))] {
        let err = bad.parse::<Pin>().unwrap_err();
        assert!(err.contains("64 hex digits"), "{bad}: {err}");
    }
}

#[test]
fn identity_is_made_once_with_private_files_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let first = Identity::load_or_create(dir.path()).unwrap();
    for file in [KEY_FILE, CERT_FILE] {
        let mode = fs::metadata(dir.path().join(DIR).join(file)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    let again = Identity::load_or_create(dir.path()).unwrap();
    assert_eq!(first.pin(), again.pin());
    assert_eq!(Pin::of_cert(again.cert_der()).unwrap(), again.pin());
}

#[test]
fn identity_key_readable_by_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    Identity::load_or_create(dir.path()).unwrap();
    let key = dir.path().join(DIR).join(KEY_FILE);
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let err = Identity::load_or_create(dir.path()).unwrap_err().to_string();
    assert!(err.contains("readable by others") && err.contains("0600"), "{err}");
}

#[test]
fn key_of_another_identity_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    Identity::load_or_create(dir.path()).unwrap();
    let other = Identity::generate().unwrap();
    write_private(&dir.path().join(DIR).join(KEY_FILE), other.key_pem().as_bytes()).unwrap();
    let err = Identity::load_or_create(dir.path()).unwrap_err().to_string();
    assert!(err.contains("does not belong"), "{err}");
}

#[test]
fn each_enrolment_has_its_own_key_and_a_credential_that_reads_back() {
    let identity = Identity::generate().unwrap();
    let a = identity.enrol("xa-dong").unwrap();
    let b = identity.enrol("xa-dong").unwrap();
    assert_ne!(a.pin, b.pin, "a re-enrolment must not reuse the key");
    assert_ne!(a.pin, identity.pin());
    let credential = Credential {
        speaker: "xa-dong".into(),
        daemon: "192.0.2.1:5004".parse().unwrap(),
        daemon_pin: identity.pin().to_string(),
        zones: vec!["thon-1".into()],
        certificate: a.cert_pem.clone(),
        private_key: a.key_pem.clone(),
    };
    let back = Credential::parse(&credential.to_toml()).unwrap();
    assert_eq!(back, credential);
    assert_eq!(back.pin().unwrap(), a.pin);
    assert_eq!(back.daemon_pin().unwrap(), identity.pin());
}

#[test]
fn credential_with_a_foreign_key_is_refused() {
    let identity = Identity::generate().unwrap();
    let a = identity.enrol("a").unwrap();
    let b = identity.enrol("b").unwrap();
    let credential = Credential {
        speaker: "a".into(),
        daemon: "192.0.2.1:5004".parse().unwrap(),
        daemon_pin: identity.pin().to_string(),
        zones: vec![],
        certificate: a.cert_pem,
        private_key: b.key_pem,
    };
    let err = Credential::parse(&credential.to_toml()).unwrap_err().to_string();
    assert!(err.contains("private_key does not belong to certificate"), "{err}");
}

#[test]
fn credential_garbage_is_refused_in_words() {
    let err = Credential::parse("speaker = 3").unwrap_err().to_string();
    assert!(err.starts_with("the credential file is not valid"), "{err}");
}
