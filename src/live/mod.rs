//! Live input, daemon side: owns the connection a `loa live` client streams
//! raw PCM on after its `live.start` request — how far the input may run
//! ahead before old audio is dropped, and the notification lines sent back
//! on the same connection. Turning the bytes into samples is
//! `media::pcm`; reading them is the program worker's live item.
//!
//! Latency policy. The pacer takes one frame per tick, on the system clock.
//! A live source runs on its own clock (a sound card's crystal, or a paused
//! program that let the input pile up): whatever it delivers beyond what
//! the pacer has taken waits in the socket, and every waiting millisecond
//! is a millisecond of delay on the street. When more than
//! [`BACKLOG_HIGH_MS`] waits, the worker drops the oldest part and keeps
//! [`BACKLOG_KEEP_MS`]: one audible skip instead of a delay that grows.
//! Smaller creep (a late piece of input costs the pacer a tick, and from
//! then on everything waits a frame longer) is caught by [`Backlog`]: the
//! least that waited over [`WINDOW`] is delay no jitter needed, and is
//! dropped once it exceeds [`SLACK_MS`] — the way a jitter buffer adapts.

pub mod reader;

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::media::PcmFormat;

/// The item path that stands for the live input in a program's item list
/// (history shows the program's label instead).
pub const LIVE_ITEM: &str = "<live input>";

/// Input waiting beyond this is dropped (see the module doc).
pub const BACKLOG_HIGH_MS: u64 = 250;
/// What is kept when dropping: about two frames, so the next ticks do not
/// underrun.
pub const BACKLOG_KEEP_MS: u64 = 40;

/// How long the least waiting input is watched before it is judged.
pub const WINDOW: std::time::Duration = std::time::Duration::from_secs(2);
/// Least waiting input (over a window) tolerated; above it, all but
/// [`FLOOR_MS`] of that least is dropped.
pub const SLACK_MS: u64 = 30;
pub const FLOOR_MS: u64 = 10;

/// The backlog rule over time (sans-IO: the caller reports what waits, and
/// when; it answers how many bytes to drop now).
#[derive(Debug, Default)]
pub struct Backlog {
    window_start: Option<std::time::Instant>,
    least: usize,
}

impl Backlog {
    pub fn observe(
        &mut self,
        now: std::time::Instant,
        pending: usize,
        format: &PcmFormat,
    ) -> usize {
        let burst = excess(pending, format);
        if burst > 0 {
            self.window_start = None;
            return burst;
        }
        let start = *self.window_start.get_or_insert(now);
        if now == start {
            self.least = pending;
        }
        self.least = self.least.min(pending);
        if now.duration_since(start) < WINDOW {
            return 0;
        }
        self.window_start = None;
        if self.least <= format.bytes_for_ms(SLACK_MS) {
            return 0;
        }
        let drop = self.least - format.bytes_for_ms(FLOOR_MS);
        drop / format.frame_bytes() * format.frame_bytes()
    }
}

/// The other place delay creeps in: the program's queue. A frame that
/// finds the queue still holding its predecessor waits a frame longer than
/// needed; when that is so for every frame over [`WINDOW`], one frame is
/// dropped. (With input on time the queue is empty when a frame is ready;
/// bursts of input make some frames wait, but not all of them.)
#[derive(Debug, Default)]
pub struct StandingFrame {
    window_start: Option<std::time::Instant>,
    all_waited: bool,
}

impl StandingFrame {
    /// A frame is ready at `now`; `queue_full`: its predecessor is still
    /// queued. True: drop this frame.
    pub fn observe(&mut self, now: std::time::Instant, queue_full: bool) -> bool {
        let start = *self.window_start.get_or_insert(now);
        if now == start {
            self.all_waited = true;
        }
        self.all_waited &= queue_full;
        if now.duration_since(start) < WINDOW {
            return false;
        }
        self.window_start = None;
        self.all_waited
    }
}

pub fn live_item() -> PathBuf {
    PathBuf::from(LIVE_ITEM)
}

pub fn is_live_item(path: &Path) -> bool {
    path.as_os_str() == LIVE_ITEM
}

/// A client's PCM stream, handed from the control server to the program.
#[derive(Debug)]
pub struct LiveInput {
    /// The connection, after the `live.start` line: PCM to the end.
    pub stream: UnixStream,
    /// PCM bytes the control server had already read past the request line.
    pub leftover: Vec<u8>,
    pub format: PcmFormat,
}

/// Bytes of waiting input to drop now: none while the backlog is within
/// [`BACKLOG_HIGH_MS`], else all but the newest [`BACKLOG_KEEP_MS`], in
/// whole sample frames.
pub fn excess(pending: usize, format: &PcmFormat) -> usize {
    if pending <= format.bytes_for_ms(BACKLOG_HIGH_MS) {
        return 0;
    }
    let drop = pending - format.bytes_for_ms(BACKLOG_KEEP_MS);
    drop / format.frame_bytes() * format.frame_bytes()
}

/// Bytes received on `stream` and not read yet (FIONREAD).
pub fn pending(stream: &UnixStream) -> io::Result<usize> {
    let mut count: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which is valid
    // for the duration of the call.
    let rc = unsafe { libc::ioctl(stream.as_raw_fd(), libc::FIONREAD, &mut count) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(count.max(0) as usize)
}

/// Sends one JSON-RPC notification line to the client without ever
/// waiting: the stream is blocking (the worker reads it), so the write is
/// flagged MSG_DONTWAIT. A client that does not read loses the line; it
/// still sees the connection close at the end.
pub fn notify(stream: &UnixStream, method: &str, params: Value) {
    let mut line = crate::proto::rpc::notification(method, params);
    line.push('\n');
    send_now(stream, line.as_bytes());
}

/// Sends `bytes` if the socket takes them right now (see [`notify`]).
pub fn send_now(stream: &UnixStream, bytes: &[u8]) {
    let sock = socket2::SockRef::from(stream);
    if let Err(e) = sock.send_with_flags(bytes, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) {
        tracing::debug!("cannot tell the live client: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::PcmEncoding;
    use std::io::{Read, Write};

    fn mono16k() -> PcmFormat {
        PcmFormat {
            encoding: PcmEncoding::S16le,
            rate: 16_000,
            channels: 1,
        }
    }

    #[test]
    fn backlog_is_dropped_only_above_the_high_mark_down_to_the_kept_part() {
        let f = mono16k();
        assert_eq!(excess(0, &f), 0);
        assert_eq!(excess(f.bytes_for_ms(BACKLOG_HIGH_MS), &f), 0);
        let pending = f.bytes_for_ms(BACKLOG_HIGH_MS) + 3; // odd: a split sample
        let drop = excess(pending, &f);
        assert_eq!(drop % f.frame_bytes(), 0);
        let kept = pending - drop;
        assert!(
            kept >= f.bytes_for_ms(BACKLOG_KEEP_MS)
                && kept < f.bytes_for_ms(BACKLOG_KEEP_MS) + 2 * f.frame_bytes()
        );
        let stereo32 = PcmFormat {
            encoding: PcmEncoding::F32le,
            rate: 48_000,
            channels: 2,
        };
        let drop = excess(stereo32.bytes_for_ms(1000), &stereo32);
        assert_eq!(drop, stereo32.bytes_for_ms(1000 - BACKLOG_KEEP_MS));
    }

    #[test]
    fn a_steady_excess_is_dropped_after_a_window_but_jitter_is_not() {
        let f = mono16k();
        let t0 = std::time::Instant::now();
        let at = |ms: u64| t0 + std::time::Duration::from_millis(ms);
        let mut b = Backlog::default();
        // Jitter: what waits swings 0..60 ms, touching near zero: kept.
        for n in 0..500u64 {
            let pending = f.bytes_for_ms((n * 7) % 60);
            assert_eq!(b.observe(at(n * 10), pending, &f), 0, "at {} ms", n * 10);
        }
        // A frame more waits from now on (never under 45 ms): once the
        // window closes, all but 10 ms of the least is dropped, once.
        let mut b = Backlog::default();
        let mut dropped = Vec::new();
        for n in 0..250u64 {
            let pending = f.bytes_for_ms(45 + (n * 7) % 30);
            let d = b.observe(at(n * 10), pending, &f);
            if d > 0 {
                dropped.push((n * 10, f.ms_of(d)));
            }
        }
        assert_eq!(dropped, [(2000, 35)]);
        // A burst over the high mark goes at once, whatever the window.
        let mut b = Backlog::default();
        assert_eq!(b.observe(at(0), f.bytes_for_ms(20), &f), 0);
        let d = b.observe(at(10), f.bytes_for_ms(400), &f);
        assert_eq!(f.ms_of(d), 400 - BACKLOG_KEEP_MS);
    }

    #[test]
    fn a_frame_is_dropped_only_when_every_frame_of_a_window_waited() {
        let t0 = std::time::Instant::now();
        let at = |ms: u64| t0 + std::time::Duration::from_millis(ms);
        let mut s = StandingFrame::default();
        // Bursty input: every fourth frame finds the queue empty: nothing.
        for n in 0..400u64 {
            assert!(!s.observe(at(n * 20), n % 4 != 0));
        }
        // A standing extra frame: dropped once per window.
        let drops: Vec<u64> = (400..700u64)
            .filter(|n| s.observe(at(n * 20), true))
            .map(|n| n * 20)
            .collect();
        assert_eq!(drops.len(), 2, "{drops:?}");
        assert!(drops[1] - drops[0] >= WINDOW.as_millis() as u64);
    }

    #[test]
    fn pending_counts_unread_bytes_and_notify_never_blocks() {
        let (a, mut b) = UnixStream::pair().unwrap();
        b.write_all(&[0u8; 1234]).unwrap();
        assert_eq!(pending(&a).unwrap(), 1234);
        // Fill b's receive side until the socket is full: notify must return.
        a.set_nonblocking(true).unwrap();
        while (&a).write(&[0u8; 65536]).is_ok() {}
        a.set_nonblocking(false).unwrap();
        notify(&a, "live.on_air", serde_json::json!({}));
        // A reader that drains sees only whole zero blocks (the line was lost).
        let mut buf = vec![0u8; 4096];
        b.set_nonblocking(true).unwrap();
        let n = b.read(&mut buf).unwrap();
        assert!(buf[..n].iter().all(|&x| x == 0));
    }

    #[test]
    fn the_live_item_marker_is_recognised() {
        assert!(is_live_item(&live_item()));
        assert!(!is_live_item(Path::new("/srv/audio/live.mp3")));
    }
}
