//! Speakers that join loa themselves (issue 15): the daemon's identity
//! (`identity`), enrolment and the credential file a speaker carries
//! (`credential`), the store side of enrolment and revocation
//! (`registry`), and the join protocol's framing, messages and admission
//! rule (`join`), the sessions' unicast bindings (`bindings`), and what is
//! needed of the zone key ring (`keys`).
//!
//! Owns the certificates and their pins, and the wording of refusals. The
//! TLS shell and the SQL live elsewhere (`daemon/tasks/speakers`,
//! `store/speakers`); nothing here opens a socket.
//!
//! Must not touch: zone keys (they come from the key ring), the pacer.

pub mod bindings;
pub mod credential;
pub mod handshakes;
pub mod identity;
pub mod join;
pub mod keys;
pub mod refusals;
pub mod registry;
pub mod tls;


use std::path::PathBuf;

pub use credential::Credential;
pub use identity::{Enrolled, Identity, Pin};

/// What went wrong with an identity or a credential, said for an operator.
#[derive(Debug, thiserror::Error)]
pub enum SpeakersError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path} is readable by others (mode {mode:o}); it holds a private key, so make it 0600")]
    Exposed { path: PathBuf, mode: u32 },
    #[error("cannot make a certificate: {0}")]
    Generate(String),
    #[error("{what} is not a valid PEM certificate or key: {detail}")]
    BadPem { what: String, detail: String },
    #[error("the credential file is not valid: {0}")]
    BadCredential(String),
}

/// Speaker names: what `config::name_ok` allows for other names, so they
/// can go in a file name, a log line and a table without quoting.
pub fn check_name(name: &str) -> Result<(), String> {
    if crate::config::name_ok(name) {
        Ok(())
    } else {
        Err(format!("speaker name \"{name}\" may only use letters A–Z, a–z, digits 0–9, '-' and '_'"))
    }
}
