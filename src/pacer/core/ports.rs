//! The pacer core's two ports: where frames come from and where datagrams
//! go. The daemon's are a worker's queue and the socket; tests' are made up.

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, TryRecvError};

use crate::program::Frame;

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
}

impl<F: FnMut(&[u8], SocketAddr) -> io::Result<()>> Transmit for F {
    fn send_to(&mut self, packet: &[u8], target: SocketAddr) -> io::Result<()> {
        self(packet, target)
    }
}
