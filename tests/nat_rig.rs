//! The carrier-NAT rig (tests/common/nat.rs) does what the speaker-session
//! tests rely on, shown with real sockets: a speaker behind it reaches loa's
//! host from the NAT's public address and gets replies there; loa's host
//! cannot reach the speaker on its own; mappings expire after the short
//! timeout unless traffic keeps them; a conntrack flush moves the speaker to
//! a new public port; blocked UDP stops UDP but not TCP; nothing outlives
//! the rig.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use common::nat::{NatOptions, NatRig, ATTACKER_ADDR, LOA_ADDR, NAT_PUBLIC, SPEAKER_ADDR};
use common::wait_until;

const LOA_PORT: u16 = 5004;
const SPEAKER_PORT: u16 = 40000;
/// Long enough for a datagram across three namespaces on a loaded machine;
/// an absence is judged after this long.
const ARRIVAL: Duration = Duration::from_secs(1);

fn loa_at() -> SocketAddrV4 {
    SocketAddrV4::new(LOA_ADDR, LOA_PORT)
}

/// The next datagram on `socket` within `within`, with its source.
fn recv(socket: &UdpSocket, within: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 1500];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        socket.set_read_timeout(Some(left)).unwrap();
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => return Some((buf[..n].to_vec(), from)),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return None,
            // A socket with a receive timeout is never restarted after a
            // signal handler ran (signal(7)); seen when all the tests run
            // at once.
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => panic!("recv_from failed: {e}"),
        }
    }
}

/// Sends `payload` from the speaker to loa and returns the address loa saw it from.
fn speaker_to_loa(speaker: &UdpSocket, loa: &UdpSocket, payload: &[u8]) -> SocketAddr {
    speaker.send_to(payload, loa_at()).unwrap();
    let (got, from) = recv(loa, ARRIVAL).unwrap_or_else(|| panic!("{payload:?} from the speaker never reached loa's host"));
    assert_eq!(got, payload);
    from
}

/// Whether a reply from loa to `to` reaches the speaker.
fn reply_arrives(loa: &UdpSocket, speaker: &UdpSocket, to: SocketAddr, payload: &[u8]) -> bool {
    loa.send_to(payload, to).unwrap();
    match recv(speaker, ARRIVAL) {
        Some((got, from)) => {
            assert_eq!((got.as_slice(), from), (payload, SocketAddr::V4(loa_at())), "the speaker got something else");
            true
        }
        None => false,
    }
}

#[test]
fn loa_sees_the_speaker_at_the_nat_public_address_and_its_reply_gets_back() {
    let rig = NatRig::new();
    let loa = rig.loa.udp(LOA_PORT);
    let speaker = rig.speaker.udp(SPEAKER_PORT);

    let from = speaker_to_loa(&speaker, &loa, b"keepalive");
    assert_eq!(from.ip(), NAT_PUBLIC, "loa's host must see the NAT's public address, not {SPEAKER_ADDR}");

    let mapping = rig.mapping(SPEAKER_PORT, loa_at()).expect("the NAT holds a mapping for the speaker");
    assert_eq!(SocketAddr::V4(mapping.public), from, "the mapping conntrack shows is the address loa saw");
    assert_eq!(mapping.private, SocketAddrV4::new(SPEAKER_ADDR, SPEAKER_PORT));

    assert!(reply_arrives(&loa, &speaker, from, b"audio"), "loa's reply to {from} did not reach the speaker");
}

#[test]
fn nothing_on_the_public_side_reaches_the_speaker_unsolicited() {
    let rig = NatRig::with(NatOptions { attacker: true, ..NatOptions::default() });
    let speaker = rig.speaker.udp(SPEAKER_PORT);
    let to_speaker = SocketAddrV4::new(SPEAKER_ADDR, SPEAKER_PORT);

    // loa's host has no route to the carrier's range at all.
    let loa = rig.loa.udp(LOA_PORT);
    let err = loa.send_to(b"direct", to_speaker).expect_err("loa's host must have no route to 100.64.0.0/10");
    assert_eq!(err.kind(), ErrorKind::NetworkUnreachable, "{err}");

    // Even a host on the LAN that routes the carrier's range through the
    // NAT box gets nothing in: the NAT only lets replies in.
    let attacker = rig.attacker.as_ref().unwrap();
    attacker.run("ip", &["route", "add", "100.64.0.0/10", "via", &NAT_PUBLIC.to_string()]);
    let attacker_socket = attacker.udp(LOA_PORT);
    attacker_socket.send_to(b"routed", to_speaker).unwrap();
    assert_eq!(recv(&speaker, ARRIVAL), None, "a datagram routed through the NAT reached the speaker");

    // Nor does knowing the speaker's public port help a host other than the
    // one the speaker talks to (the NAT filters by remote address and port).
    let public = speaker_to_loa(&speaker, &loa, b"keepalive");
    attacker_socket.send_to(b"injected", public).unwrap();
    assert_eq!(recv(&speaker, ARRIVAL), None, "the attacker's datagram to the speaker's public port {public} got in");
    assert_eq!(attacker.addr, ATTACKER_ADDR);
}

#[test]
fn a_reply_after_the_udp_timeout_no_longer_arrives() {
    let rig = NatRig::new();
    let loa = rig.loa.udp(LOA_PORT);
    let speaker = rig.speaker.udp(SPEAKER_PORT);
    let public = speaker_to_loa(&speaker, &loa, b"keepalive");
    assert!(reply_arrives(&loa, &speaker, public, b"audio"));
    let quiet_since = Instant::now();

    // The exchange lasted under 2 s, so conntrack gives it udp_timeout.
    let timeout = rig.options.udp_timeout;
    wait_until("the NAT to forget the idle mapping", timeout * 4, || match rig.mapping(SPEAKER_PORT, loa_at()) {
        Some(mapping) => Err(mapping),
        None => Ok(()),
    });
    let quiet = quiet_since.elapsed();
    assert!(
        quiet + Duration::from_secs(1) >= timeout && quiet <= timeout + Duration::from_secs(5),
        "the mapping ended after {quiet:?} of silence; the rig set {timeout:?}"
    );
    assert!(!reply_arrives(&loa, &speaker, public, b"too late"), "a reply to {public} got in after the mapping ended");
}

#[test]
fn traffic_more_often_than_the_timeout_keeps_the_mapping() {
    let rig = NatRig::new();
    let loa = rig.loa.udp(LOA_PORT);
    let speaker = rig.speaker.udp(SPEAKER_PORT);
    let public = speaker_to_loa(&speaker, &loa, b"keepalive");
    assert!(reply_arrives(&loa, &speaker, public, b"audio"));

    // Keepalives at half the (short) timeout, for well past both timeouts.
    let every = rig.options.udp_timeout / 2;
    let until = Instant::now() + rig.options.udp_stream_timeout + rig.options.udp_timeout;
    while Instant::now() < until {
        std::thread::sleep(every);
        assert_eq!(speaker_to_loa(&speaker, &loa, b"keepalive"), public, "the public port moved under keepalives");
    }
    // Only the speaker spoke for the last stretch; loa still gets through.
    assert!(reply_arrives(&loa, &speaker, public, b"audio"), "the kept mapping let no reply in");
}

#[test]
fn a_conntrack_flush_gives_the_next_datagram_a_new_public_port() {
    let rig = NatRig::new();
    let loa = rig.loa.udp(LOA_PORT);
    let speaker = rig.speaker.udp(SPEAKER_PORT);
    let before = speaker_to_loa(&speaker, &loa, b"keepalive");
    assert!(reply_arrives(&loa, &speaker, before, b"audio"));

    rig.flush_conntrack();
    assert_eq!(rig.mapping(SPEAKER_PORT, loa_at()), None, "the flush left the mapping");

    // The NAT picks the new port at random (1 chance in ~64,000 of the old
    // one): a plain masquerade would keep the speaker's own port, and the
    // daemon would never see a rebinding.
    let after = speaker_to_loa(&speaker, &loa, b"keepalive");
    assert_eq!(after.ip(), NAT_PUBLIC);
    assert_ne!(after.port(), before.port(), "the speaker came back on the same public port");
    assert!(reply_arrives(&loa, &speaker, after, b"audio"), "a reply to the new port {after} did not get in");
    assert!(!reply_arrives(&loa, &speaker, before, b"stale"), "a reply to the flushed port {before} got in");
}

#[test]
fn blocked_udp_stops_udp_but_not_tcp() {
    let rig = NatRig::new();
    let loa = rig.loa.udp(LOA_PORT);
    let speaker = rig.speaker.udp(SPEAKER_PORT);
    let listener = rig.loa.tcp_listen(LOA_PORT);
    let public = speaker_to_loa(&speaker, &loa, b"keepalive");

    rig.block_udp();
    speaker.send_to(b"keepalive", loa_at()).unwrap();
    assert_eq!(recv(&loa, ARRIVAL), None, "UDP passed the blocked NAT");
    assert!(!reply_arrives(&loa, &speaker, public, b"audio"), "UDP got back in through the mapping made before the block");
    let fresh = rig.speaker.udp(SPEAKER_PORT + 1);
    fresh.send_to(b"keepalive", loa_at()).unwrap();
    assert_eq!(recv(&loa, ARRIVAL), None, "UDP on a new mapping passed the blocked NAT");

    let mut stream = rig.speaker.tcp_connect(SocketAddr::V4(loa_at()), ARRIVAL).expect("TCP must pass the blocked NAT");
    stream.write_all(b"hello").unwrap();
    let (mut accepted, peer) = listener.accept().unwrap();
    assert_eq!(peer.ip(), NAT_PUBLIC, "the TCP connection must come from the NAT's public address too");
    let mut got = [0u8; 5];
    accepted.set_read_timeout(Some(ARRIVAL)).unwrap();
    accepted.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hello");

    // The mapping outlived the block: the same public port, both ways.
    rig.unblock_udp();
    assert_eq!(speaker_to_loa(&speaker, &loa, b"keepalive"), public, "unblocking moved the public port");
    assert!(reply_arrives(&loa, &speaker, public, b"audio"), "UDP did not come back after unblocking");
}

#[test]
fn two_rigs_at_once_do_not_meet() {
    let (one, two) = (NatRig::new(), NatRig::new());
    let sockets = [&one, &two].map(|rig| (rig.loa.udp(LOA_PORT), rig.speaker.udp(SPEAKER_PORT)));
    sockets[0].1.send_to(b"one", loa_at()).unwrap();
    sockets[1].1.send_to(b"two", loa_at()).unwrap();
    assert_eq!(recv(&sockets[0].0, ARRIVAL).map(|(got, _)| got), Some(b"one".to_vec()));
    assert_eq!(recv(&sockets[1].0, ARRIVAL).map(|(got, _)| got), Some(b"two".to_vec()));
    assert_eq!(recv(&sockets[0].0, Duration::from_millis(200)), None, "rig one heard rig two");
}

fn namespaces() -> String {
    let out = std::process::Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_namespace_goes_with_the_rig_even_after_a_panic() {
    let rig = NatRig::with(NatOptions { attacker: true, ..NatOptions::default() });
    let names: Vec<String> = [&rig.loa, &rig.nat, &rig.speaker, rig.attacker.as_ref().unwrap()]
        .iter()
        .map(|host| host.netns.clone())
        .collect();
    let listed = namespaces();
    assert!(names.iter().all(|name| listed.contains(name.as_str())), "{names:?} not all in {listed}");
    drop(rig);
    let listed = namespaces();
    assert!(names.iter().all(|name| !listed.contains(name.as_str())), "{listed} still holds some of {names:?}");

    let mut name = String::new();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let rig = NatRig::new();
        name = rig.nat.netns.clone();
        panic!("a deliberate panic while a rig is up (its namespaces must still go)");
    }));
    assert!(panicked.is_err());
    assert!(!name.is_empty() && !namespaces().contains(name.as_str()), "{name} outlived a panic");
}

#[test]
fn loa_serve_runs_in_loa_host_and_the_cli_reaches_it_from_outside() {
    use std::os::unix::fs::MetadataExt;
    let rig = NatRig::new();
    let dir = tempfile::tempdir().unwrap();
    let (zone, _, _) = common::daemon::zone_toml("thon-1");
    let config = format!("{}{zone}", common::daemon::base_config(dir.path()));
    // Declared after the rig, so it stops first: a process inside keeps a
    // namespace alive after `ip netns del`.
    let daemon = common::daemon::Daemon::start_via(dir.path(), &config, &rig.loa.prefix());

    let pid = daemon.child.as_ref().unwrap().id();
    let inode = |path: &str| std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}")).ino();
    assert_eq!(
        inode(&format!("/proc/{pid}/ns/net")),
        inode(&format!("/run/netns/{}", rig.loa.netns)),
        "`loa serve` (pid {pid}) is not in loa's host"
    );
    assert_eq!(daemon.json(&["status"])["zones"].as_array().map(Vec::len), Some(1));
}
