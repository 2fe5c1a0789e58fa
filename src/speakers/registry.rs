//! Enrolment, listing and revocation over the store: the speakers task's
//! blocking half. Checks that need the configuration (known zones, a
//! listen address) are the daemon core's; this holds what needs the
//! identity's key and the speaker rows.

use std::net::SocketAddr;
use std::path::Path;

use jiff::Timestamp;

use super::{Credential, Identity};
use crate::proto::speakers::{SpeakerAdded, SpeakerInfo, SpeakerList, SpeakerRevoked, SpeakerState};
use crate::store::{SpeakerRecord, Store};

/// Why a call did not happen: the operator's to fix, or loa's.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Failed(String),
}

pub struct Registry {
    /// Why there is none (a key file readable by others, a bad PEM): every
    /// enrolment is refused with that reason until it is fixed.
    identity: Result<Identity, String>,
    state_dir: std::path::PathBuf,
}

impl Registry {
    /// Opens the store and reads (or makes) the daemon's identity.
    pub fn open(state_dir: &Path) -> Result<Registry, String> {
        let identity = Identity::load_or_create(state_dir).map_err(|e| e.to_string());
        match &identity {
            Ok(identity) => tracing::info!("speakers pin this daemon as {}", identity.pin()),
            Err(e) => tracing::error!("no speaker can enrol or join: {e}"),
        }
        Ok(Registry { identity, state_dir: state_dir.to_path_buf() })
    }

    /// Runs `f` on a connection of its own to the store, closed after:
    /// one opened while the disk was read-only must not outlive a remount
    /// (held open, it kept the engine's own store from catching up; seen in
    /// tests/faults_store.rs). Opening is cheap beside the TLS handshake
    /// that precedes every join.
    fn with_store<T>(&mut self, f: impl FnOnce(&mut Store) -> Result<T, crate::store::StoreError>) -> Result<T, RegistryError> {
        let mut store = Store::open(&self.state_dir).map_err(failed)?;
        f(&mut store).map_err(failed)
    }

    pub fn identity(&self) -> Result<&Identity, RegistryError> {
        self.identity.as_ref().map_err(|e| RegistryError::Failed(e.clone()))
    }

    /// Enrols `name` for `zones`: a new key pair and certificate, the row
    /// and its audit, and the credential file it needs to join `listen`.
    pub fn add(&mut self, by: Option<u32>, name: &str, zones: Vec<String>, listen: SocketAddr, now: Timestamp) -> Result<SpeakerAdded, RegistryError> {
        super::check_name(name).map_err(RegistryError::Refused)?;
        if self.with_store(|s| s.live_speaker(name))?.is_some() {
            return Err(RegistryError::Refused(format!(
                "speaker \"{name}\" is already enrolled; revoke it first (loa speakers revoke {name}) to make it a new credential"
            )));
        }
        let identity = self.identity()?;
        let enrolled = identity.enrol(name).map_err(failed)?;
        let credential = Credential {
            speaker: name.to_string(),
            daemon: listen,
            daemon_pin: identity.pin().to_string(),
            zones: zones.clone(),
            certificate: enrolled.cert_pem,
            private_key: enrolled.key_pem,
        };
        let record = SpeakerRecord {
            name: name.to_string(),
            zones: zones.clone(),
            pin: enrolled.pin.to_string(),
            enrolled_by: by,
            enrolled_at: now,
            revoked_by: None,
            revoked_at: None,
        };
        self.with_store(|s| s.enrol_speaker(&record))?;
        tracing::info!(uid = by, "speakers.add {name}: zones {}, pin {}", zones.join(","), record.pin);
        Ok(SpeakerAdded { name: name.to_string(), zones, pin: record.pin, credential: credential.to_toml() })
    }

    /// Who a certificate that completed the handshake belongs to, and
    /// that speaker's zones.
    pub fn enrolment(&mut self, pin: &super::Pin) -> Result<(super::join::Enrolment, Vec<String>), RegistryError> {
        use super::join::Enrolment;
        Ok(match self.with_store(|s| s.speaker_by_pin(&pin.to_string()))? {
            None => (Enrolment::Unknown, Vec::new()),
            Some(SpeakerRecord { name, revoked_at: Some(at), .. }) => (Enrolment::Revoked { name, at }, Vec::new()),
            Some(SpeakerRecord { name, zones, .. }) => (Enrolment::Live { name }, zones),
        })
    }

    /// A join, a refusal or a departure, with the peer's address.
    pub fn event(&mut self, event: &crate::store::SpeakerEvent) -> Result<(), RegistryError> {
        self.with_store(|s| s.speaker_event(event))
    }

    /// Every enrolment as the store holds it: live ones offline, with no
    /// transport or address; the speakers task fills in those in session.
    pub fn list(&mut self) -> Result<SpeakerList, RegistryError> {
        let speakers = self.with_store(|s| s.speakers())?.into_iter().map(info).collect();
        Ok(SpeakerList { speakers })
    }

    /// Revokes `name`: its credential no longer joins from now on.
    pub fn revoke(&mut self, by: Option<u32>, name: &str, now: Timestamp) -> Result<SpeakerRevoked, RegistryError> {
        match self.with_store(|s| s.revoke_speaker(name, by, now))? {
            Some(record) => {
                tracing::info!(uid = by, "speakers.revoke {name}: pin {}", record.pin);
                // The caller closes the session and re-keys these zones.
                Ok(SpeakerRevoked { name: name.to_string(), session_closed: false, zones_rekeyed: record.zones })
            }
            None => Err(RegistryError::Refused(format!("no enrolled speaker is called \"{name}\"; see loa speakers list"))),
        }
    }
}

fn info(record: SpeakerRecord) -> SpeakerInfo {
    SpeakerInfo {
        state: if record.revoked_at.is_some() { SpeakerState::Revoked } else { SpeakerState::Offline },
        name: record.name,
        zones: record.zones,
        transport: None,
        address: None,
        last_keepalive: None,
        pin: record.pin,
        enrolled_at: record.enrolled_at,
        enrolled_by: record.enrolled_by,
        revoked_at: record.revoked_at,
        revoked_by: record.revoked_by,
    }
}

fn failed(e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Failed(e.to_string())
}
