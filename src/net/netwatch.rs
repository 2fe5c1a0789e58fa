//! Sending-interface health: decides, from the pacer's send results and a
//! once-a-second check that the interface address is still on this machine,
//! whether the daemon can send, what to tell the operator (once, then
//! rate-limited), when to build a new sender socket and when the RTCP
//! listeners should join their groups again. Sans-IO: the engine feeds it
//! instants and results and carries out its actions.
//!
//! Must not touch: sockets, the pacer's timing, the log (it returns text).

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// How often a still-failing interface is mentioned again in the log.
pub const REPEAT_EVERY: Duration = Duration::from_secs(60);

/// Least time between two attempts to build a sender socket.
pub const REBUILD_EVERY: Duration = Duration::from_secs(1);

/// How long the pacer may keep failing with the address back before its
/// socket is replaced (it usually recovers by itself at once; a new socket
/// would change the RTP source port receivers see).
pub const REBUILD_AFTER: Duration = Duration::from_secs(1);

/// Errors that say nothing about the interface: the send buffer was full
/// for a moment. Those packets are lost but the network is not "down".
pub fn is_transient(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EAGAIN | libc::ENOBUFS | libc::EINTR))
        || err.kind() == io::ErrorKind::WouldBlock
}

/// True when an error from binding a socket (or IP_MULTICAST_IF / joining a
/// group) means the interface address is not on this machine.
pub fn address_missing(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EADDRNOTAVAIL | libc::ENODEV))
}

/// Plain words for a failed send (`errno`), for the operator.
pub fn describe_send_error(errno: Option<i32>, target: SocketAddr) -> String {
    match errno {
        Some(libc::EADDRNOTAVAIL) | Some(libc::EINVAL) => "the address is no longer on this machine".into(),
        Some(libc::ENETUNREACH) => format!("no route to {target} from this interface"),
        Some(libc::EHOSTUNREACH) => format!("host {target} is unreachable"),
        Some(libc::ENETDOWN) => "the network interface is down".into(),
        Some(libc::ENODEV) | Some(libc::ENXIO) => "the network interface has gone away".into(),
        Some(libc::EPERM) | Some(libc::EACCES) => format!("sending to {target} is refused (firewall?)"),
        Some(code) => format!("{} (sending to {target})", io::Error::from_raw_os_error(code)),
        None => "there is no sending socket yet".into(),
    }
}

/// Seconds with one decimal, as the log and status show them.
fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[derive(Debug, Clone, PartialEq)]
pub enum NetAction {
    /// Tell the operator something bad (warn level).
    Warn(String),
    /// Tell the operator it is fine again (info level).
    Info(String),
    /// Build a sender socket and hand it to the pacer.
    BuildSocket,
    /// Restart the RTCP listeners so they join their groups again.
    Rejoin,
}

/// Why sending does not work right now.
#[derive(Debug, Clone, PartialEq)]
struct Down {
    since: Instant,
    reason: String,
    /// `not_sent_total` when it went down.
    not_sent_before: u64,
    last_log: Instant,
}

#[derive(Debug)]
pub struct NetWatch {
    interface: Ipv4Addr,
    /// The last check found the address on this machine.
    address_present: bool,
    /// When the address was last seen coming back.
    address_back: Option<Instant>,
    /// The pacer's current failure, in plain words.
    pacer_failing: Option<String>,
    /// The pacer has no socket (the address was missing at start).
    need_socket: bool,
    last_build: Option<Instant>,
    down: Option<Down>,
    /// RTP packets not sent, per zone index, cumulative.
    not_sent: BTreeMap<usize, u64>,
    actions: Vec<NetAction>,
}

impl NetWatch {
    /// `socket_ok`: the sender socket was built at start.
    pub fn new(interface: Ipv4Addr, socket_ok: bool, now: Instant) -> NetWatch {
        let mut watch = NetWatch {
            interface,
            address_present: socket_ok,
            address_back: None,
            pacer_failing: None,
            need_socket: !socket_ok,
            last_build: None,
            down: None,
            not_sent: BTreeMap::new(),
            actions: Vec::new(),
        };
        if !socket_ok {
            watch.go_down(
                now,
                "the address is not on this machine yet".into(),
                format!("interface {interface} is not on this machine yet; retrying every second"),
            );
        }
        watch
    }

    pub fn not_sent_total(&self) -> u64 {
        self.not_sent.values().sum()
    }

    pub fn not_sent(&self, zone: usize) -> u64 {
        self.not_sent.get(&zone).copied().unwrap_or(0)
    }

    pub fn is_down(&self) -> bool {
        self.down.is_some()
    }

    /// Result of the once-a-second check that the address is here
    /// (`Err` carries the bind error).
    pub fn handle_probe(&mut self, now: Instant, result: Result<(), io::Error>) {
        match result {
            Ok(()) => {
                if !self.address_present {
                    self.address_present = true;
                    self.address_back = Some(now);
                }
            }
            Err(err) => {
                self.address_present = false;
                self.address_back = None;
                let reason = if address_missing(&err) {
                    "the address is no longer on this machine".to_string()
                } else {
                    format!("cannot use the address: {err}")
                };
                if self.down.is_none() {
                    let text = format!("cannot send on interface {}: {reason}; retrying", self.interface);
                    self.go_down(now, reason, text);
                } else if let Some(down) = &mut self.down {
                    // The address check names the cause better than the
                    // send error (a missing source address is ENETUNREACH).
                    down.reason = reason;
                }
            }
        }
        self.update(now);
    }

    /// The pacer's sends began failing; `address_present` is a check made
    /// right then, so the first log line names the real cause.
    pub fn handle_send_failing(
        &mut self,
        now: Instant,
        errno: Option<i32>,
        target: SocketAddr,
        address: Result<(), io::Error>,
    ) {
        let reason = match &address {
            Err(err) if address_missing(err) => "the address is no longer on this machine".to_string(),
            _ => describe_send_error(errno, target),
        };
        if address.is_err() {
            self.address_present = false;
            self.address_back = None;
        }
        self.pacer_failing = Some(reason.clone());
        if self.down.is_none() {
            let text = format!("cannot send on interface {}: {reason}; retrying", self.interface);
            self.go_down(now, reason, text);
        }
    }

    /// Cumulative RTP packets not sent, per zone index.
    pub fn handle_not_sent(&mut self, counts: &[(usize, u64)]) {
        for &(zone, n) in counts {
            let entry = self.not_sent.entry(zone).or_default();
            *entry = (*entry).max(n);
        }
    }

    /// The pacer's sends work again: the address is certainly back.
    pub fn handle_sending(&mut self, now: Instant, counts: &[(usize, u64)]) {
        self.handle_not_sent(counts);
        self.pacer_failing = None;
        if !self.address_present {
            self.address_present = true;
            self.address_back = Some(now);
        }
        self.update(now);
    }

    /// The pacer stopped failing because it has nothing to send: the
    /// address check alone decides from now on.
    pub fn handle_send_idle(&mut self, now: Instant) {
        self.pacer_failing = None;
        self.update(now);
    }

    /// A new socket went to the pacer.
    pub fn handle_socket_built(&mut self, now: Instant) {
        self.need_socket = false;
        self.last_build = Some(now);
        self.update(now);
    }

    /// Building a socket failed (the address went again, or worse).
    pub fn handle_socket_failed(&mut self, now: Instant) {
        self.last_build = Some(now);
    }

    /// Once a second: rate-limited repeats and socket rebuilds.
    pub fn handle_tick(&mut self, now: Instant) {
        self.update(now);
        let total = self.not_sent_total();
        if let Some(down) = &mut self.down {
            if now.duration_since(down.last_log) >= REPEAT_EVERY {
                down.last_log = now;
                self.actions.push(NetAction::Warn(format!(
                    "still cannot send on interface {}: {} (for {}, {} packets not sent); retrying",
                    self.interface,
                    down.reason,
                    secs(now.duration_since(down.since)),
                    total - down.not_sent_before
                )));
            }
        }
        let rebuild_due = self.last_build.is_none_or(|t| now.duration_since(t) >= REBUILD_EVERY);
        let stuck = self.pacer_failing.is_some()
            && self
                .address_back
                .is_some_and(|t| now.duration_since(t) >= REBUILD_AFTER);
        if self.address_present && (self.need_socket || stuck) && rebuild_due {
            self.last_build = Some(now);
            if stuck {
                // Once per return of the address: if a fresh socket does
                // not help either (a missing route), rebuilding every
                // second would only change the source port.
                self.address_back = None;
            }
            self.actions.push(NetAction::BuildSocket);
        }
    }

    pub fn poll_action(&mut self) -> Option<NetAction> {
        if self.actions.is_empty() {
            None
        } else {
            Some(self.actions.remove(0))
        }
    }

    fn go_down(&mut self, now: Instant, reason: String, text: String) {
        self.down = Some(Down {
            since: now,
            reason,
            not_sent_before: self.not_sent_total(),
            last_log: now,
        });
        self.actions.push(NetAction::Warn(text));
    }

    /// Up again once the address is here, the pacer has a socket and its
    /// sends are not failing.
    fn update(&mut self, now: Instant) {
        if !(self.address_present && !self.need_socket && self.pacer_failing.is_none()) {
            return;
        }
        if let Some(down) = self.down.take() {
            let not_sent = self.not_sent_total() - down.not_sent_before;
            self.actions.push(NetAction::Info(format!(
                "sending on {} again after {}, {not_sent} packets not sent",
                self.interface,
                secs(now.duration_since(down.since))
            )));
            self.actions.push(NetAction::Rejoin);
        }
    }

    /// The `network` object of `loa status`: `since` is the wall-clock
    /// text of when it went down, computed by the caller from `down_for`.
    pub fn status(&self, now: Instant) -> NetStatus {
        match &self.down {
            None => NetStatus {
                interface: self.interface,
                error: None,
                down_for: None,
                not_sent: 0,
                not_sent_total: self.not_sent_total(),
            },
            Some(down) => NetStatus {
                interface: self.interface,
                error: Some(down.reason.clone()),
                down_for: Some(now.saturating_duration_since(down.since)),
                not_sent: self.not_sent_total() - down.not_sent_before,
                not_sent_total: self.not_sent_total(),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NetStatus {
    pub interface: Ipv4Addr,
    pub error: Option<String>,
    pub down_for: Option<Duration>,
    /// RTP packets not sent since it went down.
    pub not_sent: u64,
    /// RTP packets not sent since the daemon started.
    pub not_sent_total: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const IFACE: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);

    fn target() -> SocketAddr {
        "239.255.77.1:5004".parse().unwrap()
    }

    fn gone() -> io::Error {
        io::Error::from_raw_os_error(libc::EADDRNOTAVAIL)
    }

    fn drain(w: &mut NetWatch) -> Vec<NetAction> {
        std::iter::from_fn(|| w.poll_action()).collect()
    }

    #[test]
    fn a_full_send_buffer_is_not_an_interface_fault() {
        assert!(is_transient(&io::Error::from_raw_os_error(libc::EAGAIN)));
        assert!(is_transient(&io::Error::from_raw_os_error(libc::ENOBUFS)));
        assert!(!is_transient(&io::Error::from_raw_os_error(libc::ENETUNREACH)));
        assert!(!is_transient(&io::Error::from_raw_os_error(libc::EADDRNOTAVAIL)));
    }

    #[test]
    fn send_errors_are_described_in_plain_words() {
        assert_eq!(
            describe_send_error(Some(libc::EADDRNOTAVAIL), target()),
            "the address is no longer on this machine"
        );
        assert_eq!(
            describe_send_error(Some(libc::ENETUNREACH), target()),
            "no route to 239.255.77.1:5004 from this interface"
        );
        assert_eq!(
            describe_send_error(Some(libc::ENETDOWN), target()),
            "the network interface is down"
        );
        assert!(describe_send_error(Some(libc::EMSGSIZE), target()).contains("239.255.77.1:5004"));
    }

    #[test]
    fn a_vanished_address_is_logged_once_with_its_cause_and_recovery_with_the_loss() {
        let t0 = Instant::now();
        let mut w = NetWatch::new(IFACE, true, t0);
        assert!(drain(&mut w).is_empty());
        // The kernel says ENETUNREACH; the address check says why.
        w.handle_send_failing(t0, Some(libc::ENETUNREACH), target(), Err(gone()));
        assert_eq!(
            drain(&mut w),
            [NetAction::Warn(
                "cannot send on interface 10.200.0.1: the address is no longer on this machine; retrying".into()
            )]
        );
        w.handle_not_sent(&[(0, 50)]);
        // Further failures and checks within the minute say nothing.
        w.handle_send_failing(
            t0 + Duration::from_secs(1),
            Some(libc::ENETUNREACH),
            target(),
            Err(gone()),
        );
        w.handle_probe(t0 + Duration::from_secs(1), Err(gone()));
        w.handle_tick(t0 + Duration::from_secs(2));
        assert!(drain(&mut w).is_empty());
        let status = w.status(t0 + Duration::from_secs(2));
        assert_eq!(
            status.error.as_deref(),
            Some("the address is no longer on this machine")
        );
        assert_eq!(status.not_sent, 50);
        w.handle_sending(t0 + Duration::from_millis(12_400), &[(0, 620)]);
        assert_eq!(
            drain(&mut w),
            [
                NetAction::Info("sending on 10.200.0.1 again after 12.4 s, 620 packets not sent".into()),
                NetAction::Rejoin
            ]
        );
        assert_eq!(w.status(t0 + Duration::from_secs(13)).error, None);
        assert_eq!(w.not_sent(0), 620);
    }

    #[test]
    fn a_long_outage_is_repeated_once_a_minute_not_per_packet() {
        let t0 = Instant::now();
        let mut w = NetWatch::new(IFACE, true, t0);
        w.handle_send_failing(t0, Some(libc::ENETDOWN), target(), Ok(()));
        drain(&mut w);
        let mut warnings = 0;
        for s in 1..=150 {
            w.handle_tick(t0 + Duration::from_secs(s));
            warnings += drain(&mut w).iter().filter(|a| matches!(a, NetAction::Warn(_))).count();
        }
        assert_eq!(warnings, 2, "at 60 s and 120 s");
    }

    #[test]
    fn missing_at_start_waits_then_builds_the_socket_once_the_address_is_here() {
        let t0 = Instant::now();
        let mut w = NetWatch::new(IFACE, false, t0);
        assert_eq!(
            drain(&mut w),
            [NetAction::Warn(
                "interface 10.200.0.1 is not on this machine yet; retrying every second".into()
            )]
        );
        w.handle_probe(t0 + Duration::from_secs(1), Err(gone()));
        w.handle_tick(t0 + Duration::from_secs(1));
        assert!(drain(&mut w).is_empty(), "no socket without the address");
        w.handle_probe(t0 + Duration::from_secs(2), Ok(()));
        w.handle_tick(t0 + Duration::from_secs(2));
        assert_eq!(drain(&mut w), [NetAction::BuildSocket]);
        assert!(w.is_down(), "down until the socket is in the pacer");
        w.handle_socket_built(t0 + Duration::from_secs(2));
        let actions = drain(&mut w);
        assert!(matches!(&actions[0], NetAction::Info(t) if t.starts_with("sending on 10.200.0.1 again after 2.0 s")));
        assert_eq!(actions[1], NetAction::Rejoin);
    }

    #[test]
    fn a_socket_that_does_not_recover_is_replaced_once_after_the_address_returns() {
        let t0 = Instant::now();
        let mut w = NetWatch::new(IFACE, true, t0);
        w.handle_send_failing(t0, Some(libc::ENODEV), target(), Err(gone()));
        drain(&mut w);
        w.handle_probe(t0 + Duration::from_secs(3), Ok(()));
        w.handle_tick(t0 + Duration::from_secs(3));
        assert!(drain(&mut w).is_empty(), "give the old socket a moment first");
        w.handle_tick(t0 + Duration::from_millis(4_000));
        assert_eq!(drain(&mut w), [NetAction::BuildSocket]);
        w.handle_socket_built(t0 + Duration::from_millis(4_000));
        w.handle_tick(t0 + Duration::from_millis(4_500));
        assert!(drain(&mut w).is_empty());
        w.handle_tick(t0 + Duration::from_millis(9_000));
        assert!(drain(&mut w).is_empty(), "a new socket did not help: no rebuild loop");
        // The address goes and comes again: one more try.
        w.handle_probe(t0 + Duration::from_secs(10), Err(gone()));
        w.handle_probe(t0 + Duration::from_secs(11), Ok(()));
        w.handle_tick(t0 + Duration::from_secs(12));
        assert_eq!(drain(&mut w), [NetAction::BuildSocket]);
    }

    #[test]
    fn a_broadcast_that_ends_during_the_outage_does_not_keep_it_down_forever() {
        let t0 = Instant::now();
        let mut w = NetWatch::new(IFACE, true, t0);
        w.handle_send_failing(t0, Some(libc::ENETUNREACH), target(), Err(gone()));
        w.handle_send_idle(t0 + Duration::from_secs(3));
        assert!(w.is_down(), "the address is still missing");
        drain(&mut w);
        w.handle_probe(t0 + Duration::from_secs(5), Ok(()));
        assert!(!w.is_down());
        assert!(matches!(&drain(&mut w)[0], NetAction::Info(t) if t.contains("again after 5.0 s")));
    }

    #[test]
    fn the_address_check_alone_marks_an_idle_daemon_down_and_up() {
        let t0 = Instant::now();
        let mut w = NetWatch::new(IFACE, true, t0);
        w.handle_probe(t0, Err(gone()));
        assert!(w.is_down());
        drain(&mut w);
        w.handle_probe(t0 + Duration::from_secs(5), Ok(()));
        let actions = drain(&mut w);
        assert_eq!(
            actions[0],
            NetAction::Info("sending on 10.200.0.1 again after 5.0 s, 0 packets not sent".into())
        );
    }
}
