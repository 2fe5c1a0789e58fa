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
use std::time::{Duration, Instant};

use common::daemon::{base_config, zone_toml, Daemon};
use common::{loa, poll_until, require_netns};
use loa::net::sap::{self, Kind};

const SAP_GROUP: Ipv4Addr = Ipv4Addr::new(224, 2, 127, 254);
const SAP_PORT: u16 = 9875;

struct Heard {
    at: Instant,
    bytes: Vec<u8>,
}

/// Every SAP packet on 224.2.127.254:9875 joined on loopback, with its
/// arrival time.
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
        let socket: UdpSocket = socket.into();
        let heard = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (h, s) = (heard.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buf) {
                    h.lock().unwrap().push(Heard {
                        at: Instant::now(),
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
        enough: impl Fn(&[(Instant, Vec<u8>)]) -> bool,
    ) -> Vec<(Instant, Vec<u8>)> {
        let needle = format!("c=IN IP4 {group}/");
        let heard = poll_until(timeout, || {
            let mine: Vec<(Instant, Vec<u8>)> = self
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

fn kinds(packets: &[(Instant, Vec<u8>)], kind: Kind) -> Vec<(Instant, Vec<u8>)> {
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

    let mut hashes = Vec::new();
    for (name, group, port) in [("thon-a", &group_a, port_a), ("thon-b", &group_b, port_b)] {
        let expected = loa(&["sdp", "--config", &config_path, "--zone", name]);
        assert!(expected.status.success());
        let expected = String::from_utf8(expected.stdout).unwrap();
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
        // The second one comes 2 s ± 1/3 later (slack for scheduling).
        let gap = announced[1].0 - announced[0].0;
        eprintln!(
            "{name}: {} bytes, hash {hash:#06x}, second announcement after {gap:?}",
            announced[0].1.len()
        );
        assert!(
            gap >= Duration::from_millis(1250) && gap <= Duration::from_millis(2900),
            "{name}: second announcement after {gap:?}, expected 1.33–2.67 s"
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
