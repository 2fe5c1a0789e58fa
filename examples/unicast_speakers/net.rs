//! The sockets of many joined speakers in one thread: epoll over all of
//! them, each datagram read with the kernel's receive timestamp
//! (SO_TIMESTAMPNS, CLOCK_REALTIME), so the time a packet is stamped with
//! is when it reached the socket, not when this process got round to it —
//! a thousand sockets are served one after the other, and that queueing
//! is not the daemon's jitter.

use std::io;
use std::mem::MaybeUninit;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use loa::rtp::srtp::SrtpSender;
use rtcp_types::{Compound, ReceiverReport, RtcpPacketWriter as _, Sdes, SdesChunk, SdesItem};

/// SDES item type CNAME (RFC 3550 §6.5.1).
const SDES_CNAME: u8 = 1;

pub struct Poller {
    epoll: OwnedFd,
    events: Vec<libc::epoll_event>,
}

impl Poller {
    pub fn new() -> io::Result<Poller> {
        // SAFETY: epoll_create1 takes no pointers; a valid fd or -1 comes back.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just opened and is owned by nothing else.
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Poller { epoll, events: vec![libc::epoll_event { events: 0, u64: 0 }; 1024] })
    }

    /// Watches `socket` for datagrams; `key` comes back with its events.
    /// Each datagram comes with its receive time and the socket's count of
    /// datagrams dropped for want of room (SO_RXQ_OVFL), so a loss this
    /// process caused by reading too slowly is told apart from one on the
    /// way; 1 MB of receive buffer (half a second of a busy machine's
    /// scheduling delay at 50 packets a second would need far less).
    pub fn add(&self, socket: &UdpSocket, key: u64) -> io::Result<()> {
        socket.set_nonblocking(true)?;
        let fd = socket.as_raw_fd();
        setsockopt(fd, libc::SO_TIMESTAMPNS, 1)?;
        setsockopt(fd, libc::SO_RXQ_OVFL, 1)?;
        // FORCE needs CAP_NET_ADMIN (the bench's namespace has it); else
        // the kernel's rmem_max caps the request.
        setsockopt(fd, libc::SO_RCVBUFFORCE, 1 << 20).or_else(|_| setsockopt(fd, libc::SO_RCVBUF, 1 << 20))?;
        let mut event = libc::epoll_event { events: libc::EPOLLIN as u32, u64: key };
        // SAFETY: both fds are valid; event lives across the call.
        if unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, socket.as_raw_fd(), &mut event) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The keys of the sockets with datagrams waiting, after at most
    /// `timeout_ms`.
    pub fn wait(&mut self, timeout_ms: i32, ready: &mut Vec<u64>) -> io::Result<()> {
        ready.clear();
        // SAFETY: the buffer holds `len` events and outlives the call.
        let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), self.events.as_mut_ptr(), self.events.len() as i32, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted { Ok(()) } else { Err(e) };
        }
        ready.extend(self.events[..n as usize].iter().map(|e| e.u64));
        Ok(())
    }
}

fn setsockopt(fd: RawFd, option: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: a valid socket fd and a c_int option of the right size.
    let rc = unsafe {
        libc::setsockopt(fd, libc::SOL_SOCKET, option, (&value as *const libc::c_int).cast(), size_of::<libc::c_int>() as libc::socklen_t)
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// One datagram read: its length, kernel receive time (ns since the Unix
/// epoch) and the socket's running count of dropped datagrams.
pub struct Stamped {
    pub len: usize,
    pub at_ns: i64,
    pub socket_drops: u32,
}

/// One datagram, or None when nothing is waiting.
pub fn recv_stamped(fd: RawFd, buf: &mut [u8]) -> io::Result<Option<Stamped>> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // Room for one cmsg with a timespec, aligned as cmsghdr wants.
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; zeroed is a valid empty header.
    let mut msg: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control);
    // SAFETY: msg points at iov and control, both live for the call.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::WouldBlock { Ok(None) } else { Err(e) };
    }
    let mut stamp = None;
    let mut socket_drops = 0;
    // SAFETY: the CMSG_* walk stays inside msg_control as the kernel filled it.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                stamp = Some(ts.tv_sec * 1_000_000_000 + ts.tv_nsec);
            } else if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SO_RXQ_OVFL {
                socket_drops = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<u32>());
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    let stamp = stamp.ok_or_else(|| io::Error::other("a datagram came without its receive timestamp (SO_TIMESTAMPNS)"))?;
    Ok(Some(Stamped { len: n as usize, at_ns: stamp, socket_drops }))
}

/// A keepalive as `loa speaker --join` sends it: an RR from the speaker's
/// uplink SSRC with its CNAME, as SRTCP under the uplink key.
pub fn send_keepalive(socket: &UdpSocket, uplink: &mut SrtpSender, ssrc: u32, cname: &str, to: SocketAddr) -> Result<(), String> {
    let compound = Compound::builder()
        .add_packet(ReceiverReport::builder(ssrc))
        .add_packet(Sdes::builder().add_chunk(SdesChunk::builder(ssrc).add_item(SdesItem::builder(SDES_CNAME, cname))));
    let size = compound.calculate_size().map_err(|e| format!("cannot build a report: {e:?}"))?;
    let mut packet = vec![0u8; size];
    // The size was calculated above, so the write cannot run short.
    let written = compound.write_into_unchecked(&mut packet);
    packet.truncate(written);
    uplink.protect_rtcp(&mut packet).map_err(|e| format!("cannot protect a keepalive: {e}"))?;
    socket.send_to(&packet, to).map_err(|e| format!("cannot send a keepalive to {to}: {e}"))?;
    Ok(())
}
