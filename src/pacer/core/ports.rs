//! The pacer core's two ports: where frames come from and where datagrams
//! go. The daemon's are a worker's queue and the socket; tests' are made up.

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, TryRecvError};

use crate::program::Frame;
use crate::proto::ids::ZoneId;

use super::{Outputs, PacerEvent};

/// What taking a program's next frame found.
// The frame travels inline on purpose: boxing it would allocate per frame.
#[allow(clippy::large_enum_variant)]
pub enum Taken {
    Frame(Frame),
    /// None ready yet: an underrun if the program plays.
    Empty,
    /// The queue closed after its last frame.
    Ended,
}

/// Where a program's frames come from: its worker's queue in the daemon,
/// made-up frames in tests. `take` must not block.
pub trait FrameSource {
    fn take_frame(&mut self) -> Taken;
}

impl FrameSource for Receiver<Frame> {
    fn take_frame(&mut self) -> Taken {
        match self.try_recv() {
            Ok(frame) => Taken::Frame(frame),
            Err(TryRecvError::Empty) => Taken::Empty,
            Err(TryRecvError::Disconnected) => Taken::Ended,
        }
    }
}

/// Where datagrams go: the non-blocking socket, or a fake in tests. A
/// failure is counted, never retried: the next tick is due one frame later
/// whatever happens, so an error cannot stall or spin the pacer.
pub trait Transmit {
    fn send_to(&mut self, packet: &[u8], target: SocketAddr) -> io::Result<()>;

    /// To a joined speaker: from the speakers port when there is one (the
    /// speaker's NAT lets in only what comes from the port its keepalives
    /// went to).
    fn send_to_speaker(&mut self, packet: &[u8], target: SocketAddr) -> io::Result<()> {
        self.send_to(packet, target)
    }

    /// To a zone's whole list of joined speakers; how many went. The
    /// socket shell batches them (`sendmmsg`); by default one by one.
    fn send_to_speakers(&mut self, packet: &[u8], targets: &[SocketAddr]) -> usize {
        targets.iter().filter(|&&target| self.send_to_speaker(packet, target).is_ok()).count()
    }
}

impl<F: FnMut(&[u8], SocketAddr) -> io::Result<()>> Transmit for F {
    fn send_to(&mut self, packet: &[u8], target: SocketAddr) -> io::Result<()> {
        self(packet, target)
    }
}

/// A transient send error (full send buffer) is reported on the first and
/// then every this many: a missing route must not flood the log at 50 Hz.
const SEND_ERROR_EVERY: u64 = 1000;

pub(super) fn send_rtcp_to<T: Transmit>(targets: &[SocketAddr], packet: &[u8], zone: ZoneId, tx: &mut T, out: &mut Outputs) {
    for &target in targets {
        if transmit(tx, packet, target, zone, out) {
            out.stats.rtcp_packets += 1;
        }
    }
}

/// One datagram: a full buffer is counted (and reported now and then), an
/// interface error goes to the send watch.
pub(super) fn transmit<T: Transmit>(tx: &mut T, packet: &[u8], target: SocketAddr, zone: ZoneId, out: &mut Outputs) -> bool {
    match tx.send_to(packet, target) {
        Ok(()) => {
            out.watch.sent();
            true
        }
        Err(err) if crate::net::netwatch::is_transient(&err) => {
            out.stats.send_errors += 1;
            let errors = out.stats.send_errors;
            if errors == 1 || errors % SEND_ERROR_EVERY == 0 {
                out.emit(PacerEvent::SendError { zone, target, errno: err.raw_os_error(), errors });
            }
            false
        }
        Err(err) => {
            out.stats.send_errors += 1;
            out.watch.fault(err.raw_os_error(), target);
            false
        }
    }
}

