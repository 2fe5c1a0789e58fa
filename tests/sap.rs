//! SAP (RFC 2974) end to end: the real daemon announces each zone's SDP on
//! 224.2.127.254:9875 over loopback multicast in the private namespace; a
//! plain UDP listener receives the packets, checks the header bytes by
//! hand, reads them with loa's parser and compares the SDP with `loa sdp`.
//!
//! No GStreamer SAP element exists on this machine (`gst-inspect-1.0 | grep
//! -i sap` lists only a typefinder), so no third-party listener is used.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::{Arc, Mutex};
use std::os::fd::AsRawFd;
use std::time::Duration;

use common::daemon::{base_config, zone_toml, Daemon};
use common::{loa, poll_until, require_netns};
use loa::net::sap::{self, Kind};

const SAP_GROUP: Ipv4Addr = Ipv4Addr::new(224, 2, 127, 254);
const SAP_PORT: u16 = 9875;

struct Heard {
    /// When the kernel received it (SO_TIMESTAMPNS, wall clock): the gap
    /// between two of them is the sender's, not this thread's wake-ups.
    at: Duration,
    bytes: Vec<u8>,
}

/// Every SAP packet on 224.2.127.254:9875 joined on loopback, with the
/// kernel's receive time.
struct SapListener {
    heard: Arc<Mutex<Vec<Heard>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl SapListener {
    fn start() -> SapListener {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        socket.set_reuse_address(true).unwrap();
        socket.set_reuse_port(true).unwrap();
        socket
            .bind(&SocketAddrV4::new(SAP_GROUP, SAP_PORT).into())
            .unwrap();
        socket
            .join_multicast_v4(&SAP_GROUP, &Ipv4Addr::LOCALHOST)
            .unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let on: libc::c_int = 1;
        // SAFETY: a valid socket and a c_int option value of the given size.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "SO_TIMESTAMPNS: {}", std::io::Error::last_os_error());
        let socket: UdpSocket = socket.into();
        let heard = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (h, s) = (heard.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some((n, at)) = recv_stamped(&socket, &mut buf) {
                    h.lock().unwrap().push(Heard {
                        at,
                        bytes: buf[..n].to_vec(),
                    });
                }
            }
        });
        SapListener { heard, stop }
    }

    /// Packets about `group` (its c= line), waiting up to `timeout` until
    /// `enough` says the list is complete; what was heard by then if it
    /// never is (the caller's asserts judge it, and an absence is awaited
    /// to its end).
    fn wait_for(
        &self,
        group: &str,
        timeout: Duration,
        enough: impl Fn(&[(Duration, Vec<u8>)]) -> bool,
    ) -> Vec<(Duration, Vec<u8>)> {
        let needle = format!("c=IN IP4 {group}/");
        let heard = poll_until(timeout, || {
            let mine: Vec<(Duration, Vec<u8>)> = self
                .heard
                .lock()
                .unwrap()
                .iter()
                .filter(|h| String::from_utf8_lossy(&h.bytes).contains(&needle))
                .map(|h| (h.at, h.bytes.clone()))
                .collect();
            if enough(&mine) {
                Ok(mine)
            } else {
                Err(mine)
            }
        });
        heard.unwrap_or_else(|mine| mine)
    }
}

impl Drop for SapListener {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One datagram and its kernel receive time (the SCM_TIMESTAMPNS control
/// message), or None on timeout or error.
fn recv_stamped(socket: &UdpSocket, buf: &mut [u8]) -> Option<(usize, Duration)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for one cmsg header and a timespec, aligned for cmsghdr.
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; all-zero is a valid empty value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control);
    // SAFETY: msg points at a live iovec over `buf` and at `control`.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return None;
    }
    // SAFETY: walking the control messages the kernel wrote into `control`.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        let header = unsafe { &*cmsg };
        if header.cmsg_level == libc::SOL_SOCKET && header.cmsg_type == libc::SCM_TIMESTAMPNS {
            let ts: libc::timespec = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
            return Some((n as usize, Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)));
        }
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    panic!("a datagram without its SO_TIMESTAMPNS receive time");
}

fn kinds(packets: &[(Duration, Vec<u8>)], kind: Kind) -> Vec<(Duration, Vec<u8>)> {
    packets
        .iter()
        .filter(|(_, b)| sap::parse(b).map(|p| p.kind) == Ok(kind))
        .cloned()
        .collect()
}

/// Checks a packet's header bytes without loa's parser (RFC 2974 §3).
fn check_header(bytes: &[u8], deletion: bool) -> u16 {
    assert!(bytes.len() > 24, "too short: {bytes:?}");
    // V=1 (001), A=0, R=0, T, E=0, C=0.
    assert_eq!(bytes[0], if deletion { 0b0010_0100 } else { 0b0010_0000 });
    assert_eq!(bytes[1], 0, "no authentication data");
    let hash = u16::from_be_bytes([bytes[2], bytes[3]]);
    assert_ne!(hash, 0, "message id hash is set");
    assert_eq!(
        &bytes[4..8],
        &[127, 0, 0, 1],
        "origin is the interface address"
    );
    assert_eq!(&bytes[8..24], b"application/sdp\0");
    assert!(bytes[24..].starts_with(b"v=0\r\n"));
    hash
}

/// How far the daemon's timer may move a send on a busy machine.
const SCHEDULING_SLACK: Duration = Duration::from_millis(25);

#[test]
fn zones_are_announced_every_interval_and_deleted_on_stop() {
    require_netns();
    let listener = SapListener::start();
    let dir = tempfile::tempdir().unwrap();
    let (zone_a, group_a, port_a) = zone_toml("thon-a");
    let (zone_b, group_b, port_b) = zone_toml("thon-b");
    let config = format!(
        "{}[sap]\nenabled = true\ninterval = \"2s\"\n{zone_a}{zone_b}",
        base_config(dir.path())
    );
    let mut daemon = Daemon::start(dir.path(), &config);
    let config_path = daemon.config.to_str().unwrap().to_string();

    let sdp = |name: &str| {
        let out = loa(&["sdp", "--config", &config_path, "--zone", name]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let sdps = [sdp("thon-a"), sdp("thon-b")];
    // RFC 2974 §3.1: the interval is the configured 2 s unless the
    // announcements would exceed 4 kbit/s (header 8 bytes, the payload
    // type and its NUL, the SDP); each send is offset by a random ±1/3.
    let bits: usize = sdps.iter().map(|s| 8 * (8 + "application/sdp".len() + 1 + s.len())).sum();
    let base = Duration::from_secs(2).max(Duration::from_millis(bits as u64 * 1000 / 4000));
    let (shortest, longest) = (base * 2 / 3, base * 4 / 3);
    let mut hashes = Vec::new();
    for ((name, group, port), expected) in [("thon-a", &group_a, port_a), ("thon-b", &group_b, port_b)].into_iter().zip(sdps) {
        let heard = listener.wait_for(group, Duration::from_secs(8), |p| p.len() >= 2);
        let announced = kinds(&heard, Kind::Announce);
        assert!(
            announced.len() >= 2,
            "two announcements of {name} within 8 s, heard {}\n{}",
            heard.len(),
            daemon.log_text()
        );
        let hash = check_header(&announced[0].1, false);
        let p = sap::parse(&announced[0].1).unwrap();
        assert_eq!(
            (p.kind, p.hash, p.payload_type),
            (Kind::Announce, hash, Some("application/sdp"))
        );
        assert_eq!(p.origin, std::net::IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(p.payload, expected, "the SAP payload is `loa sdp`'s text");
        assert!(p.payload.contains(&format!("c=IN IP4 {group}/1\r\n")));
        assert!(p
            .payload
            .contains(&format!("m=audio {port} RTP/AVP 96\r\n")));
        // The second one comes base ± 1/3 later. The daemon schedules it
        // from the moment it sent the first, so only its timer's lateness
        // (or a delay between deciding and sending the first) moves it.
        let gap = announced[1].0 - announced[0].0;
        eprintln!(
            "{name}: {} bytes, hash {hash:#06x}, second announcement after {gap:?} (interval {base:?})",
            announced[0].1.len()
        );
        assert!(
            gap + SCHEDULING_SLACK >= shortest && gap <= longest + SCHEDULING_SLACK,
            "{name}: second announcement after {gap:?}, expected {base:?} ± 1/3 ({shortest:?}–{longest:?}) \
             within {SCHEDULING_SLACK:?} of timer lateness"
        );
        assert_eq!(
            check_header(&announced[1].1, false),
            hash,
            "same SDP, same hash"
        );
        hashes.push((group.clone(), hash, expected));
    }
    assert_ne!(hashes[0].1, hashes[1].1, "each zone has its own hash");

    let status = daemon.json(&["status"]);
    assert_eq!(status["sap"]["enabled"], true, "{status}");
    assert_eq!(status["sap"]["address"], "224.2.127.254:9875");
    assert!(status["sap"]["last_sent"].is_string(), "{status}");
    assert!(status["sap"]["error"].is_null(), "{status}");

    assert!(daemon.stop(), "clean exit:\n{}", daemon.log_text());
    for (group, hash, sdp) in hashes {
        let heard = listener.wait_for(&group, Duration::from_secs(3), |p| {
            !kinds(p, Kind::Delete).is_empty()
        });
        let deleted = kinds(&heard, Kind::Delete);
        assert_eq!(
            deleted.len(),
            1,
            "one deletion for {group}:\n{}",
            daemon.log_text()
        );
        assert_eq!(
            check_header(&deleted[0].1, true),
            hash,
            "the deletion names the announcement"
        );
        assert_eq!(sap::parse(&deleted[0].1).unwrap().payload, sdp);
    }
}

#[test]
fn a_reload_deletes_a_retired_zone_and_announces_a_new_one() {
    require_netns();
    let listener = SapListener::start();
    let dir = tempfile::tempdir().unwrap();
    let (zone_a, group_a, _) = zone_toml("cu");
    let (zone_b, group_b, _) = zone_toml("moi");
    let base = format!(
        "{}[sap]\nenabled = true\ninterval = \"30s\"\n",
        base_config(dir.path())
    );
    let daemon = Daemon::start(dir.path(), &format!("{base}{zone_a}"));
    let heard = listener.wait_for(&group_a, Duration::from_secs(5), |p| !p.is_empty());
    assert_eq!(kinds(&heard, Kind::Announce).len(), 1, "announced at start");

    std::fs::write(&daemon.config, format!("{base}{zone_b}")).unwrap();
    let out = daemon.loa(&["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let heard = listener.wait_for(&group_a, Duration::from_secs(5), |p| {
        !kinds(p, Kind::Delete).is_empty()
    });
    assert_eq!(
        kinds(&heard, Kind::Delete).len(),
        1,
        "retired zone deleted:\n{}",
        daemon.log_text()
    );
    let heard = listener.wait_for(&group_b, Duration::from_secs(5), |p| !p.is_empty());
    assert_eq!(
        kinds(&heard, Kind::Announce).len(),
        1,
        "new zone announced at once"
    );

    // Turning SAP off deletes what is announced.
    std::fs::write(
        &daemon.config,
        format!("{}{zone_b}", base_config(dir.path())),
    )
    .unwrap();
    assert!(daemon.loa(&["reload"]).status.success());
    let heard = listener.wait_for(&group_b, Duration::from_secs(5), |p| {
        !kinds(p, Kind::Delete).is_empty()
    });
    assert_eq!(kinds(&heard, Kind::Delete).len(), 1, "disabled: deleted");
    assert_eq!(daemon.json(&["status"])["sap"]["enabled"], false);
}

#[test]
fn nothing_is_announced_unless_enabled() {
    require_netns();
    let listener = SapListener::start();
    let dir = tempfile::tempdir().unwrap();
    let (zone, group, _) = zone_toml("tat");
    let daemon = Daemon::start(dir.path(), &format!("{}{zone}", base_config(dir.path())));
    // SAP would announce at start; give it a second and a half. Real
    // time, not a condition: nothing may be heard in it.
    let heard = listener.wait_for(&group, Duration::from_millis(1500), |p| !p.is_empty());
    assert!(heard.is_empty(), "SAP is opt-in");
    assert_eq!(daemon.json(&["status"])["sap"]["enabled"], false);
}
