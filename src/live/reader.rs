//! Reading a live client's PCM on the program worker's thread: whatever has
//! arrived, in reads of about 10 ms, with the backlog rules of
//! [`super::Backlog`] applied before each read, and the SHA-256 of every
//! byte read (for history). Must not touch: samples, encoding, the queue.

use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::{Backlog, LiveInput};
use crate::media::PcmFormat;

/// How often a blocked read wakes up so the worker can notice `cancel`.
const POLL: Duration = Duration::from_millis(50);

/// What one [`LiveReader::read`] found.
pub enum Input<'a> {
    Data(&'a [u8]),
    /// Nothing came within the poll interval.
    Idle,
    /// The client ended the stream (end of input, Ctrl-C, or it vanished).
    End,
}

pub struct LiveReader {
    stream: UnixStream,
    format: PcmFormat,
    /// Bytes the control server had read past the request line.
    leftover: Vec<u8>,
    buf: Vec<u8>,
    backlog: Backlog,
    hasher: Sha256,
    dropped_ms: u64,
    last_warning: Option<Instant>,
}

impl LiveReader {
    pub fn new(input: LiveInput) -> io::Result<LiveReader> {
        input.stream.set_read_timeout(Some(POLL))?;
        Ok(LiveReader {
            buf: vec![
                0u8;
                input
                    .format
                    .bytes_for_ms(10)
                    .max(input.format.frame_bytes())
            ],
            stream: input.stream,
            format: input.format,
            leftover: input.leftover,
            backlog: Backlog::default(),
            hasher: Sha256::new(),
            dropped_ms: 0,
            last_warning: None,
        })
    }

    pub fn format(&self) -> PcmFormat {
        self.format
    }

    /// Drops everything received so far (said while a chime played);
    /// returns how many milliseconds that was.
    pub fn drop_received(&mut self) -> u64 {
        let waiting = super::pending(&self.stream).unwrap_or(0);
        self.format.ms_of(std::mem::take(&mut self.leftover).len()) + self.discard(waiting)
    }

    /// Sends the client a notification line (never waits).
    pub fn notify(&self, method: &str, params: serde_json::Value) {
        super::notify(&self.stream, method, params);
    }

    /// The next bytes of input, after applying the backlog rules.
    pub fn read(&mut self) -> Result<Input<'_>, String> {
        if !self.leftover.is_empty() {
            let n = self.leftover.len().min(self.buf.len());
            self.buf[..n].copy_from_slice(&self.leftover[..n]);
            self.leftover.drain(..n);
            self.hasher.update(&self.buf[..n]);
            return Ok(Input::Data(&self.buf[..n]));
        }
        let waiting = super::pending(&self.stream).unwrap_or(0);
        let excess = self.backlog.observe(Instant::now(), waiting, &self.format);
        if excess > 0 {
            let ms = self.discard(excess);
            self.dropped_ms += ms;
            if ms < 100 {
                // Delay creep trimmed by a frame or two: routine.
                tracing::debug!("live input: {ms} ms of standing delay dropped");
            } else if self
                .last_warning
                .is_none_or(|t| t.elapsed() > Duration::from_secs(10))
            {
                self.last_warning = Some(Instant::now());
                tracing::warn!(
                    "live input {ms} ms ahead of the air; dropped to keep the delay short ({} ms dropped so far)",
                    self.dropped_ms
                );
            }
        }
        match (&self.stream).read(&mut self.buf) {
            Ok(0) => Ok(Input::End),
            Ok(n) => {
                self.hasher.update(&self.buf[..n]);
                Ok(Input::Data(&self.buf[..n]))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(Input::Idle)
            }
            // The client vanished mid-stream (crash, kill -9): the live
            // broadcast ends as if the input ended.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(Input::End),
            Err(e) => Err(format!("cannot read the input: {e}")),
        }
    }

    /// The SHA-256 of everything read (dropped backlog excluded).
    pub fn finish(self) -> String {
        if self.dropped_ms > 0 {
            tracing::info!(
                "live input ended; {} ms of backlog were dropped in all",
                self.dropped_ms
            );
        }
        format!("{:x}", self.hasher.finalize())
    }

    /// Reads and throws away `bytes` already waiting (never waits for
    /// more); returns how many milliseconds of input that was.
    fn discard(&mut self, bytes: usize) -> u64 {
        let mut left = bytes;
        let mut scratch = [0u8; 8192];
        while left > 0 {
            match (&self.stream).read(&mut scratch[..left.min(8192)]) {
                Ok(0) | Err(_) => break,
                Ok(n) => left -= n,
            }
        }
        self.format.ms_of(bytes - left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::PcmEncoding;
    use std::io::Write;

    fn reader(leftover: &[u8]) -> (LiveReader, UnixStream) {
        let (daemon, client) = UnixStream::pair().unwrap();
        let format = PcmFormat {
            encoding: PcmEncoding::S16le,
            rate: 16_000,
            channels: 1,
        };
        let input = LiveInput {
            stream: daemon,
            leftover: leftover.to_vec(),
            format,
        };
        (LiveReader::new(input).unwrap(), client)
    }

    fn data(r: &mut LiveReader) -> Vec<u8> {
        match r.read().unwrap() {
            Input::Data(d) => d.to_vec(),
            Input::Idle => panic!("idle"),
            Input::End => panic!("end"),
        }
    }

    #[test]
    fn leftover_comes_first_then_the_socket_then_the_end_and_all_is_hashed() {
        let (mut r, mut client) = reader(&[1, 2, 3]);
        client.write_all(&[4, 5]).unwrap();
        assert_eq!(data(&mut r), [1, 2, 3]);
        assert_eq!(data(&mut r), [4, 5]);
        assert!(
            matches!(r.read().unwrap(), Input::Idle),
            "nothing within the poll interval"
        );
        drop(client);
        assert!(matches!(r.read().unwrap(), Input::End));
        assert_eq!(r.finish(), format!("{:x}", Sha256::digest([1, 2, 3, 4, 5])));
    }

    #[test]
    fn what_was_received_before_can_be_dropped_and_is_not_hashed() {
        let (mut r, mut client) = reader(&[9; 64]);
        client.write_all(&[7; 3_200]).unwrap(); // 100 ms
        assert_eq!(r.drop_received(), 102);
        client.write_all(&[1, 2]).unwrap();
        assert_eq!(data(&mut r), [1, 2]);
        drop(client);
        assert!(matches!(r.read().unwrap(), Input::End));
        assert_eq!(r.finish(), format!("{:x}", Sha256::digest([1, 2])));
    }

    #[test]
    fn a_burst_beyond_the_high_mark_is_cut_to_the_newest_part() {
        let (mut r, mut client) = reader(&[]);
        client.write_all(&vec![0u8; 32 * 500]).unwrap(); // 500 ms waiting
        let first = data(&mut r);
        assert_eq!(first.len(), 320, "one 10 ms read");
        // 40 ms were kept: 320 bytes read, 960 left.
        assert_eq!(super::super::pending(&r.stream).unwrap(), 32 * 40 - 320);
    }
}
