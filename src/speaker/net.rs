//! The speaker's sockets and the threads that read them: RTP on the group
//! (and/or a unicast address), RTCP on the group's RTCP port, and the
//! socket its reports leave from.
//!
//! Owns: socket options and timestamping arrivals. Must not touch: packet
//! contents (datagrams go to the loop as bytes).
//!
//! Listening sockets set SO_REUSEADDR and SO_REUSEPORT: several speakers,
//! GStreamer or ffmpeg on one machine share the port, and each bound to the
//! group address (not the wildcard) hears only that group.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

/// How often a reading thread looks at the stop flag.
const READ_TIMEOUT: Duration = Duration::from_millis(100);
/// Datagrams waiting for the loop; beyond this they are dropped, so a
/// flood cannot grow memory.
const QUEUE_DATAGRAMS: usize = 1024;
const MAX_DATAGRAM: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Rtp,
    Rtcp,
}

#[derive(Debug)]
pub struct Datagram {
    pub channel: Channel,
    pub arrival: Instant,
    pub from: SocketAddr,
    pub data: Vec<u8>,
    /// It came to a socket joined to a multicast group (else unicast).
    pub multicast: bool,
}

/// A UDP socket listening on `addr`, joined to it on `interface` when it is
/// a multicast group.
pub fn listener(addr: SocketAddrV4, interface: Ipv4Addr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    if addr.ip().is_multicast() {
        socket.join_multicast_v4(addr.ip(), &interface)?;
    }
    socket.set_read_timeout(Some(READ_TIMEOUT))?;
    Ok(socket.into())
}

/// The socket reports leave from: bound to `bind` (its address is how the
/// daemon tells speakers apart), multicast out of `interface`, looped back
/// so a sender on the same host hears it, TTL 1.
pub fn report_socket(bind: Ipv4Addr, interface: Ipv4Addr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.bind(&SocketAddrV4::new(bind, 0).into())?;
    socket.set_multicast_if_v4(&interface)?;
    socket.set_multicast_loop_v4(true)?;
    socket.set_multicast_ttl_v4(1)?;
    Ok(socket.into())
}

/// The groups a joined speaker takes its zones from, each with its RTP
/// socket and its RTCP one (port + 1: the zone's Sender Reports). A group
/// no zone needs any more is left; its reader thread then hears nothing
/// and ends with the others.
pub struct Groups {
    interface: Ipv4Addr,
    joined: std::collections::HashMap<SocketAddrV4, Vec<UdpSocket>>,
}

impl Groups {
    pub fn new(interface: Ipv4Addr) -> Groups {
        Groups { interface, joined: Default::default() }
    }

    pub fn interface(&self) -> Ipv4Addr {
        self.interface
    }

    /// Joins the groups of `wanted` not joined yet and leaves the others;
    /// the group that could not be joined, and why.
    pub fn follow(&mut self, wanted: &[SocketAddrV4], readers: &mut Readers) -> Result<(), (SocketAddrV4, io::Error)> {
        let gone: Vec<SocketAddrV4> = self.joined.keys().filter(|g| !wanted.contains(g)).copied().collect();
        for group in gone {
            for socket in self.joined.remove(&group).unwrap_or_default() {
                let _ = socket2::SockRef::from(&socket).leave_multicast_v4(group.ip(), &self.interface);
            }
        }
        for &group in wanted {
            if self.joined.contains_key(&group) {
                continue;
            }
            let rtcp = SocketAddrV4::new(*group.ip(), group.port().wrapping_add(1));
            let mut sockets = Vec::new();
            for (addr, channel) in [(group, Channel::Rtp), (rtcp, Channel::Rtcp)] {
                let socket = listener(addr, self.interface).map_err(|e| (addr, e))?;
                sockets.push(socket.try_clone().map_err(|e| (addr, e))?);
                readers.spawn(socket, channel).map_err(|e| (addr, e))?;
            }
            self.joined.insert(group, sockets);
        }
        Ok(())
    }
}

/// Threads reading sockets into one queue, stopped and joined on drop.
pub struct Readers {
    done: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    sender: Option<SyncSender<Datagram>>,
}

impl Readers {
    pub fn new() -> (Readers, Receiver<Datagram>) {
        let (sender, receiver) = mpsc::sync_channel(QUEUE_DATAGRAMS);
        let readers = Readers {
            done: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
            sender: Some(sender),
        };
        (readers, receiver)
    }

    /// Another way into the loop's queue (the TLS fallback's reader).
    pub fn sender(&self) -> SyncSender<Datagram> {
        self.sender.clone().expect("readers not yet dropped")
    }

    pub fn spawn(&mut self, socket: UdpSocket, channel: Channel) -> io::Result<()> {
        let done = self.done.clone();
        let sender = self.sender.clone().expect("readers not yet dropped");
        // Listening sockets of a group are bound to its address.
        let multicast = socket.local_addr().is_ok_and(|a| a.ip().is_multicast());
        let name = match channel {
            Channel::Rtp => "speaker-rtp",
            Channel::Rtcp => "speaker-rtcp",
        };
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || read_loop(&socket, channel, multicast, &sender, &done))?;
        self.threads.push(thread);
        Ok(())
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        self.sender = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn read_loop(
    socket: &UdpSocket,
    channel: Channel,
    multicast: bool,
    sender: &SyncSender<Datagram>,
    done: &AtomicBool,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while !done.load(Ordering::Relaxed) {
        match socket.recv_from(&mut buf) {
            Ok((len, from)) => {
                let datagram = Datagram {
                    channel,
                    // Stamped here, not when the loop gets to it: the
                    // jitter estimate (RFC 3550 A.8) wants arrival time.
                    arrival: Instant::now(),
                    from,
                    data: buf[..len].to_vec(),
                    multicast,
                };
                match sender.try_send(datagram) {
                    Ok(()) | Err(TrySendError::Full(_)) => {}
                    Err(TrySendError::Disconnected(_)) => return,
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                tracing::warn!(error = %e, "speaker socket read failed");
                std::thread::sleep(READ_TIMEOUT);
            }
        }
    }
}
