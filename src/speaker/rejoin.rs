//! When `loa speaker --join` tries loa again after a session ended or a
//! join failed, and when it stops instead (sans-IO: time and the jitter's
//! seed are inputs).
//!
//! Decisions:
//! - What a rejoin can fix is retried for ever: a box in a field must play
//!   for years, through 4G outages, carrier NATs dropping the TCP mapping
//!   and loa restarts. The delay starts at 1 s and doubles to 60 s, each
//!   drawn ±20 % so that the speakers a loa restart cut off at the same
//!   instant drift apart; loa's limit of 8 unauthenticated connections per
//!   address (speakers/handshakes) refuses the crowd behind one carrier NAT,
//!   and each refusal doubles that speaker's delay, spreading them further.
//! - A session that lasted `STABLE` wipes the record: the next loss is
//!   retried after 1 s again. A short one does not (a loa that welcomes and
//!   drops at once is not hammered).
//! - What a rejoin cannot fix stops the speaker with its own exit status:
//!   loa refusing the credential (unknown, revoked), loa's identity not the
//!   one the credential pins (someone else may be answering), a credential
//!   file that cannot be read or parsed. A revoked speaker thus stays out
//!   and costs loa nothing; enrolling it again needs a new credential and
//!   a restart anyway.
//! - loa failing to look enrolments up (its store, or loa shutting down) is
//!   a loa that is away: retried as a lost session. Another box joining
//!   with this credential, or a refusal in words this speaker does not
//!   know, is retried at the cap only: such a pair of twins then takes
//!   the session from each other once a minute, not in a loop.
//!
//! Must not touch: sockets, threads (the shell in `mod` makes the attempts).

use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::SpeakerError;

pub const FIRST_DELAY: Duration = Duration::from_secs(1);
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// Each delay is drawn within this share either side of its nominal value.
pub const JITTER: f64 = 0.2;
/// A session this long was a success: the backoff starts over.
pub const STABLE: Duration = Duration::from_secs(60);

/// Why a speaker stops rather than rejoin; each has its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// loa refused the credential: not enrolled, revoked, or a join
    /// protocol this loa does not speak.
    Refused,
    /// loa's certificate is not the one the credential pins.
    WrongDaemon,
    /// The credential file cannot be read or is not a credential.
    Credential,
}

impl Stop {
    /// The process's exit status (documented in `loa speaker --help` and
    /// the README); 1 stays "could not run" (arguments, output, sockets).
    pub fn exit_status(self) -> u8 {
        match self {
            Stop::Refused => 3,
            Stop::WrongDaemon => 4,
            Stop::Credential => 5,
        }
    }
}

/// What ended a session or failed a join, as the rule sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The connection broke, loa is away, restarting, or busy: retry soon.
    Lost,
    /// loa refused in words that may pass, or a twin took the session:
    /// retry at the cap.
    Held,
    Final(Stop),
}

/// What the speaker does next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    RetryIn(Duration),
    Stop(Stop),
}

/// What `error` (from a join or a session's end) means for rejoining.
/// Errors that are not the session's (output, decoder, sockets) are not
/// asked about; they end the speaker as before.
pub fn cause(error: &SpeakerError) -> Cause {
    match error {
        SpeakerError::Credential(_) => Cause::Final(Stop::Credential),
        SpeakerError::WrongDaemon(_) => Cause::Final(Stop::WrongDaemon),
        SpeakerError::Refused(reason) if refusal_is_final(reason) => Cause::Final(Stop::Refused),
        SpeakerError::Refused(reason) if reason.contains("cannot check enrolments") || reason.contains("shutting down") => Cause::Lost,
        SpeakerError::Refused(_) => Cause::Held,
        SpeakerError::JoinFailed(reason) if reason.contains("joined again from another connection") => Cause::Held,
        _ => Cause::Lost,
    }
}

/// Whether loa's words refuse this credential for good: the refusals of
/// `crate::speakers::join::admit`, the revocation's `bye`, a protocol
/// version it does not speak. loa's protocol carries words only; the unit
/// tests pin these against loa's own messages.
pub fn refusal_is_final(reason: &str) -> bool {
    ["not enrolled", "revoked", "join protocol version"].iter().any(|w| reason.contains(w))
}

/// What the reader thread's words at a session's end mean: loa refusing
/// this speaker for good (the revocation's `bye`: exit status 3), or a
/// session to rejoin.
pub fn session_end(reason: String) -> SpeakerError {
    let words = reason.strip_prefix("loa ended the session: ").unwrap_or(&reason);
    match refusal_is_final(words) {
        true => SpeakerError::Refused(words.to_string()),
        false => SpeakerError::JoinFailed(reason),
    }
}

/// The rule: one per speaker, for its whole life.
#[derive(Debug)]
pub struct Rejoin {
    /// Failures since the last stable session.
    failures: u32,
    /// When the current session began.
    since: Option<Instant>,
    /// When the next attempt is due; None while joined or attempting.
    due: Option<Instant>,
    rng: SmallRng,
}

impl Rejoin {
    /// The first attempt is due at `now`.
    pub fn new(now: Instant, seed: u64) -> Rejoin {
        Rejoin { failures: 0, since: None, due: Some(now), rng: SmallRng::seed_from_u64(seed) }
    }

    pub fn joined(&mut self, now: Instant) {
        self.since = Some(now);
        self.due = None;
    }

    /// A join failed or the session ended at `now`, for `cause`.
    pub fn ended(&mut self, now: Instant, cause: Cause) -> Next {
        if let Some(since) = self.since.take() {
            if now.saturating_duration_since(since) >= STABLE {
                self.failures = 0;
            }
        }
        let nominal = match cause {
            Cause::Final(stop) => {
                self.due = None;
                return Next::Stop(stop);
            }
            Cause::Held => MAX_DELAY,
            Cause::Lost => FIRST_DELAY.saturating_mul(1 << self.failures.min(16)).min(MAX_DELAY),
        };
        self.failures = self.failures.saturating_add(1);
        let delay = nominal.mul_f64(self.rng.random_range(1.0 - JITTER..=1.0 + JITTER));
        self.due = Some(now + delay);
        Next::RetryIn(delay)
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.due
    }

    /// Whether an attempt is due now (then it is under way: not due again
    /// until `ended` says when).
    pub fn poll(&mut self, now: Instant) -> bool {
        match self.due {
            Some(due) if due <= now => {
                self.due = None;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
#[path = "rejoin_tests.rs"]
mod tests;
