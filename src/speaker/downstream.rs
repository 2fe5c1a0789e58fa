//! Whether loa's UDP reaches this joined speaker (sans-IO; made-up time in
//! the tests), and when to ask loa over TLS for the audio inside the
//! connection or back by unicast.
//!
//! loa judges UDP by what reaches it: a keepalive that authenticates makes
//! it send unicast to the keepalive's address. A network that lets the
//! speaker's UDP out but not loa's back in (a firewall that drops inbound
//! UDP even on the mapping, a NAT that maps the keepalives but not the
//! replies) fools that rule for good. So loa answers every authenticated
//! UDP keepalive with one small SRTCP packet sealed under the session's
//! uplink key (`speakers::join::answer_ssrc`), and the speaker, which alone
//! sees what arrives, decides:
//!
//! - A UDP keepalive not answered within `ANSWER_WITHIN` while the audio is
//!   meant to come by UDP: ask for TLS (`downstream`, `udp: false`). Until
//!   then it is sent again every `PROBE_EVERY`, so one lost datagram either
//!   way is not mistaken for a broken path (ICE consent freshness, RFC 7675,
//!   has the same shape on a longer clock).
//! - Audio playing by UDP that stops for `GAP` (or none within `GAP` of
//!   loa saying the audio comes by UDP) sends a keepalive at once
//!   instead of waiting for the next period: a path that breaks mid-stream
//!   is found in `GAP + ANSWER_WITHIN`, not a keepalive period later. A
//!   zone that merely went idle costs one keepalive, answered.
//! - Verified audio while unicast counts as an answer: a path that carries
//!   the zone works, whatever became of one small answer.
//! - Inside TLS because it asked, the keepalives go on by UDP too. One
//!   that is answered is followed by another at once, and when `STEADY` in
//!   a row are answered, unicast is asked for again (`udp: true`): back
//!   within a keepalive period and a round trip of UDP working again, but
//!   not on one datagram that slipped through a path that mostly fails.
//!
//! Only answers that verified (the shell checks the auth tag, the answer
//! SSRC and the replay window) and came by UDP are passed in; nothing
//! unauthenticated counts as proof.
//!
//! Must not touch: sockets, keys, the clock (`now` comes in).

use std::time::{Duration, Instant};

/// How long a UDP keepalive may wait for loa's answer. Many round trips
/// even on a loaded 4G link; a false alarm costs a few keepalive periods
/// inside TLS, not audio.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(1);
/// While an answer is awaited, the keepalive is sent again this often.
pub const PROBE_EVERY: Duration = Duration::from_millis(250);
/// Audio playing by UDP that stops this long gets a keepalive at once:
/// ten packets of 20 ms, far beyond the jitter of a working path.
pub const GAP: Duration = Duration::from_millis(200);
/// Keepalives answered in a row, inside TLS, before asking for UDP again
/// (the first answered one is followed by a probe at once).
pub const STEADY: u32 = 2;

/// What the shell is to do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send a keepalive by UDP now (its answer is awaited).
    Probe,
    /// Tell loa over TLS whether its UDP reaches this speaker.
    Ask { udp: bool },
}

/// The rule's state for one joined session.
#[derive(Debug, Clone)]
pub struct Downstream {
    /// loa said the audio comes inside TLS.
    via_tls: bool,
    /// We told loa its UDP does not reach us, and have not taken it back.
    said_down: bool,
    /// The first UDP keepalive still unanswered, and the latest one sent.
    waiting: Option<(Instant, Instant)>,
    /// Keepalives answered in a row since the last that was not, and when
    /// the latest answer came.
    answered_in_row: u32,
    last_answer: Option<Instant>,
    /// The last verified audio, and whether its gap was probed already.
    last_audio: Option<Instant>,
    gap_probed: bool,
}

impl Downstream {
    /// A session whose welcome said the audio comes inside TLS (`via_tls`)
    /// or by UDP.
    pub fn new(via_tls: bool) -> Downstream {
        Downstream { via_tls, said_down: false, waiting: None, answered_in_row: 0, last_answer: None, last_audio: None, gap_probed: false }
    }

    /// Whether we asked for TLS and have not taken it back.
    #[cfg(test)]
    pub fn said_down(&self) -> bool {
        self.said_down
    }

    /// A keepalive left by UDP.
    pub fn keepalive_sent(&mut self, now: Instant) {
        let first = self.waiting.map_or(now, |(first, _)| first);
        self.waiting = Some((first, now));
    }

    /// A verified answer from loa arrived by UDP: every keepalive sent so
    /// far is answered.
    pub fn answered(&mut self, now: Instant) {
        if self.waiting.take().is_some() {
            self.answered_in_row += 1;
            self.last_answer = Some(now);
        }
    }

    /// A verified packet of one of the zones arrived.
    pub fn audio(&mut self, now: Instant) {
        self.last_audio = Some(now);
        self.gap_probed = false;
        // By unicast loa sends the zones by UDP only; inside TLS the audio
        // says nothing of UDP.
        if !self.via_tls {
            self.waiting = None;
        }
    }

    /// loa said the audio now comes inside TLS (`true`) or by UDP. Moved
    /// to UDP, the audio is expected from `now` on as if it had just been
    /// heard: none within `GAP` (loa moved it on its own, say, on UDP
    /// that gets in but not out) and a keepalive goes at once.
    pub fn transport(&mut self, tls: bool, now: Instant) {
        if tls == self.via_tls {
            return;
        }
        self.via_tls = tls;
        self.waiting = None;
        self.answered_in_row = 0;
        self.last_audio = (!tls).then_some(now);
        self.gap_probed = false;
        if !tls {
            self.said_down = false;
        }
    }

    /// When `poll` may next have something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let waiting = self.waiting.map(|(first, last)| match self.watching() {
            true => (first + ANSWER_WITHIN).min(last + PROBE_EVERY),
            false => first + ANSWER_WITHIN,
        });
        let gap = self.last_audio.filter(|_| self.watching() && self.waiting.is_none() && !self.gap_probed).map(|last| last + GAP);
        let back = self.last_answer.filter(|_| self.ask_back() || self.confirm());
        [waiting, gap, back].into_iter().flatten().min()
    }

    /// What to do at `now`, if anything; call until it says None.
    pub fn poll(&mut self, now: Instant) -> Option<Action> {
        if let Some((first, last)) = self.waiting {
            if now >= first + ANSWER_WITHIN {
                self.waiting = None;
                self.answered_in_row = 0;
                if self.watching() {
                    self.said_down = true;
                    return Some(Action::Ask { udp: false });
                }
            } else if self.watching() && now >= last + PROBE_EVERY {
                self.keepalive_sent(now);
                return Some(Action::Probe);
            }
        }
        if self.ask_back() {
            self.said_down = false;
            self.answered_in_row = 0;
            return Some(Action::Ask { udp: true });
        }
        if self.confirm() {
            self.keepalive_sent(now);
            return Some(Action::Probe);
        }
        let gap = self.last_audio.is_some_and(|last| now >= last + GAP);
        if self.watching() && self.waiting.is_none() && gap && !self.gap_probed {
            self.gap_probed = true;
            self.keepalive_sent(now);
            return Some(Action::Probe);
        }
        None
    }

    /// Inside TLS because we asked, and UDP has answered steadily since.
    fn ask_back(&self) -> bool {
        self.via_tls && self.said_down && self.answered_in_row >= STEADY
    }

    /// Inside TLS because we asked, UDP answered, and no keepalive is out:
    /// one more at once, to be sure.
    fn confirm(&self) -> bool {
        self.via_tls && self.said_down && (1..STEADY).contains(&self.answered_in_row) && self.waiting.is_none()
    }

    /// The audio is meant to come by UDP and we have not asked otherwise:
    /// a missing answer is news.
    fn watching(&self) -> bool {
        !self.via_tls && !self.said_down
    }
}

#[cfg(test)]
#[path = "downstream_tests.rs"]
mod tests;
