//! systemd notification (Type=notify): READY once the control socket
//! answers, WATCHDOG while the pacer ticks, RELOADING/STOPPING around
//! reloads and shutdown. Outside systemd (no NOTIFY_SOCKET) every call is a
//! no-op, so `loa serve` in a terminal behaves the same.

use std::time::Duration;

use sd_notify::NotifyState;

fn send(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::debug!("cannot notify systemd: {e}");
    }
}

pub fn ready() {
    send(&[NotifyState::Ready, NotifyState::Status("on air")]);
}

pub fn reloading() {
    send(&[NotifyState::Reloading]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// Ticks at half the unit's WatchdogSec (systemd's advice), or never when
/// the watchdog is off.
pub struct Watchdog {
    interval: Option<tokio::time::Interval>,
}

impl Watchdog {
    pub fn from_env() -> Watchdog {
        let mut usec = 0;
        let interval = sd_notify::watchdog_enabled(false, &mut usec)
            .then(|| tokio::time::interval(Duration::from_micros(usec / 2).max(Duration::from_millis(100))));
        Watchdog { interval }
    }

    pub async fn tick(&mut self) {
        match &mut self.interval {
            Some(interval) => {
                interval.tick().await;
            }
            None => std::future::pending().await,
        }
    }
}
