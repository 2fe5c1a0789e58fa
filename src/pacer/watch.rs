//! Whether sending works, judged per tick from the send results (sans-IO):
//! the engine is told once per change, never per packet.
//!
//! Must not touch: sockets, the log (the engine does the talking).

use std::net::SocketAddr;

/// A tick with an interface error is failing; one that sent something with
/// no such error is fine. A tick with both (one target unreachable) keeps it
/// failing, so a mixed state does not flap. A tick that tried nothing ends
/// "failing" without saying it works (`Idle`): the engine's address check
/// decides then.
#[derive(Debug, Default)]
pub(crate) struct SendWatch {
    pub(crate) failing: bool,
    /// This tick's first interface error.
    fault: Option<(Option<i32>, SocketAddr)>,
    /// This tick sent at least one datagram.
    sent: bool,
    /// Ticks in a row that tried nothing while failing.
    idle_ticks: u32,
}

/// Ticks with nothing to send before a failing pacer calls itself idle: a
/// single tick without a frame (an underrun) is not the end of a broadcast.
pub(crate) const IDLE_AFTER_TICKS: u32 = 50;

#[derive(Debug, PartialEq)]
pub(crate) enum Change {
    Failing { errno: Option<i32>, target: SocketAddr },
    Sending,
    Idle,
}

impl SendWatch {
    /// A datagram left.
    pub(crate) fn sent(&mut self) {
        self.sent = true;
    }

    /// A send failed for the interface's sake (not a full buffer); the
    /// tick's first such failure is the one reported.
    pub(crate) fn fault(&mut self, errno: Option<i32>, target: SocketAddr) {
        self.fault.get_or_insert((errno, target));
    }

    pub(crate) fn end_tick(&mut self) -> Option<Change> {
        let fault = self.fault.take();
        let sent = std::mem::take(&mut self.sent);
        match fault {
            Some((errno, target)) if !self.failing => {
                self.failing = true;
                self.idle_ticks = 0;
                Some(Change::Failing { errno, target })
            }
            Some(_) => {
                self.idle_ticks = 0;
                None
            }
            None if self.failing && sent => {
                self.failing = false;
                Some(Change::Sending)
            }
            None if self.failing => {
                self.idle_ticks += 1;
                if self.idle_ticks < IDLE_AFTER_TICKS {
                    return None;
                }
                self.failing = false;
                Some(Change::Idle)
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_watch_reports_each_change_once_and_a_mixed_tick_stays_failing() {
        let target: SocketAddr = "239.255.77.1:5004".parse().unwrap();
        let mut w = SendWatch::default();
        w.sent();
        assert_eq!(w.end_tick(), None, "fine stays fine");
        w.fault(Some(libc::ENETUNREACH), target);
        assert_eq!(w.end_tick(), Some(Change::Failing { errno: Some(libc::ENETUNREACH), target }));
        w.fault(Some(libc::ENETUNREACH), target);
        assert_eq!(w.end_tick(), None, "said once");
        w.fault(Some(libc::ENETUNREACH), target);
        w.sent();
        assert_eq!(w.end_tick(), None, "one target still fails");
        w.sent();
        assert_eq!(w.end_tick(), Some(Change::Sending));
        w.fault(Some(libc::ENETUNREACH), target);
        assert!(w.end_tick().is_some());
        for _ in 1..IDLE_AFTER_TICKS {
            assert_eq!(w.end_tick(), None, "an underrun is not the end of a broadcast");
        }
        assert_eq!(w.end_tick(), Some(Change::Idle), "nothing tried for a second: not failing, not proven working");
        assert_eq!(w.end_tick(), None);
    }
}
