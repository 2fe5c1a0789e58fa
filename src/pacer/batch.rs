//! One packet to many joined speakers with `sendmmsg`: a zone of 1000
//! speakers was 1000 `sendto` calls in a row on the SCHED_FIFO thread
//! (about 4 ms of every tick on loopback, examples/unicast_speakers), and
//! the speakers late in that loop saw its spread from tick to tick as
//! jitter. Batches of `BATCH` share one system call; the message headers
//! and addresses live on the stack, so nothing is allocated per packet.
//!
//! Must not touch: which speakers (the core's list), errors beyond a count.

use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::RawFd;

/// Messages per `sendmmsg` call (the kernel takes up to UIO_MAXIOV, 1024);
/// the core hands over slices of 32 (`core/spread.rs`).
const BATCH: usize = 64;

/// Writes `target` into `slot`; the length of the address written.
fn sockaddr(target: &SocketAddr, slot: &mut libc::sockaddr_in6) -> libc::socklen_t {
    match target {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(v4.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: a sockaddr_in (16 bytes, align 4) fits in the
            // sockaddr_in6 slot (28 bytes, align 4).
            unsafe { std::ptr::write((slot as *mut libc::sockaddr_in6).cast::<libc::sockaddr_in>(), sin) };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(v6) => {
            slot.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            slot.sin6_port = v6.port().to_be();
            slot.sin6_flowinfo = v6.flowinfo();
            slot.sin6_addr = libc::in6_addr { s6_addr: v6.ip().octets() };
            slot.sin6_scope_id = v6.scope_id();
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Sends `packet` to every target from `fd` (non-blocking); how many went.
/// A message the kernel refuses (full buffer, no route) is skipped and
/// not retried, as a failed `sendto` is.
pub fn send_to_all(fd: RawFd, packet: &[u8], targets: &[SocketAddr]) -> usize {
    targets.chunks(BATCH).map(|chunk| send_batch(fd, packet, chunk)).sum()
}

fn send_batch(fd: RawFd, packet: &[u8], targets: &[SocketAddr]) -> usize {
    // SAFETY: all-zero sockaddr_in6 and mmsghdr are valid empty values.
    let mut addrs: [libc::sockaddr_in6; BATCH] = unsafe { zeroed() };
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
    // The kernel only reads the payload (sendmmsg takes no const iovec).
    let mut iov = libc::iovec { iov_base: packet.as_ptr() as *mut libc::c_void, iov_len: packet.len() };
    for ((target, addr), msg) in targets.iter().zip(addrs.iter_mut()).zip(msgs.iter_mut()) {
        msg.msg_hdr.msg_namelen = sockaddr(target, addr);
        msg.msg_hdr.msg_name = (addr as *mut libc::sockaddr_in6).cast();
        msg.msg_hdr.msg_iov = &mut iov;
        msg.msg_hdr.msg_iovlen = 1;
    }
    let (mut done, mut sent) = (0, 0);
    while done < targets.len() {
        // SAFETY: msgs[done..len] point at addrs and iov, alive for the call.
        let n = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr().add(done), (targets.len() - done) as libc::c_uint, 0) };
        if n <= 0 {
            // The message at `done` failed: skip it, go on with the rest.
            done += 1;
        } else {
            sent += n as usize;
            done += n as usize;
        }
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    // Loopback only; `make test` runs the unit tests in the private
    // namespace (scripts/test.sh).
    #[test]
    fn every_target_of_several_batches_gets_the_packet_once() {
        let receivers: Vec<UdpSocket> = (0..BATCH + 6).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
        let targets: Vec<SocketAddr> = receivers.iter().map(|r| r.local_addr().unwrap()).collect();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(send_to_all(sender.as_raw_fd(), b"sealed", &targets), targets.len());
        for r in &receivers {
            r.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 16];
            let (n, from) = r.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (&b"sealed"[..], sender.local_addr().unwrap()));
            assert!(r.recv_from(&mut buf).is_err(), "sent once");
        }
    }

    #[test]
    fn a_refused_message_is_skipped_and_the_rest_still_go() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        // An IPv6 target from an IPv4 socket: the kernel refuses that one.
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        let targets = [a.local_addr().unwrap(), v6, b.local_addr().unwrap()];
        assert_eq!(send_to_all(sender.as_raw_fd(), b"x", &targets), 2);
        let mut buf = [0u8; 4];
        for r in [&a, &b] {
            r.set_nonblocking(true).unwrap();
            assert_eq!(r.recv_from(&mut buf).unwrap().0, 1);
        }
    }
}
