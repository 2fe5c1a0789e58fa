//! Endpoint health end to end: the real daemon, real `loa speaker`
//! processes bound to their own loopback addresses (and a GStreamer rtpbin
//! receiver), RTCP over loopback multicast in the private namespace.

mod common;

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{base_config, zone_toml, Daemon};
use common::{require_netns, write_tones_wav, Lines, LOA};
use serde_json::Value;

struct Speaker(Child);

impl Speaker {
    fn start(group: &str, port: u16, bind: &str, extra: &[&str]) -> Speaker {
        let child = Command::new(LOA)
            .args(["speaker", "--group", &format!("{group}:{port}"), "--interface", "127.0.0.1", "--bind", bind])
            .args(["--out", "/dev/null", "--rtcp-interval", "1"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start loa speaker");
        Speaker(child)
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn endpoints(daemon: &Daemon) -> Vec<Value> {
    daemon.json(&["endpoints"])["endpoints"].as_array().unwrap().clone()
}

fn state_of(rows: &[Value], address: &str) -> String {
    rows.iter()
        .find(|r| r["address"] == address)
        .map(|r| r["state"].as_str().unwrap().to_string())
        .unwrap_or_else(|| "absent".into())
}

/// Waits until `check` holds on `loa endpoints`; returns how long it took.
fn wait_for(daemon: &Daemon, what: &str, timeout: Duration, check: impl Fn(&[Value]) -> bool) -> Duration {
    let start = Instant::now();
    daemon.wait_json(&["endpoints"], what, timeout, |e| e["endpoints"].as_array().is_some_and(|rows| check(rows)));
    start.elapsed()
}

fn inventory_zone(addresses: &[(&str, &str)]) -> (String, String, u16) {
    let (zone, group, port) = zone_toml("thon-1");
    let list: Vec<String> = addresses
        .iter()
        .map(|(name, address)| format!("{{ name = \"{name}\", address = \"{address}\" }}"))
        .collect();
    (format!("{zone}endpoints = [{}]\n", list.join(", ")), group, port)
}

fn playing_daemon(dir: &std::path::Path, zone: &str, health: &str) -> Daemon {
    std::fs::create_dir_all(dir.join("media")).unwrap();
    write_tones_wav(&dir.join("media/loop.wav"), 48_000, 1, &[(600.0, 2.0)]);
    let config = format!("{}{health}{zone}", base_config(dir)).replace("fec = true", "fec = true\nexpected_loss_pct = 10");
    let daemon = Daemon::start(dir, &config);
    assert!(daemon.loa(&["play", "--zones", "thon-1", "--loop", "loop.wav"]).status.success());
    daemon
}

#[test]
fn listed_speakers_are_online_an_unlisted_one_is_unregistered_a_lossy_one_degraded_a_dead_one_offline() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (zone, group, port) = inventory_zone(&[("cho", "127.0.0.2"), ("truong", "127.0.0.3"), ("dinh", "127.0.0.4")]);
    let health = "[health]\nreport_interval = \"1s\"\noffline_intervals = 3\n";
    let daemon = playing_daemon(dir.path(), &zone, health);
    // A subscriber sees every change as it happens.
    let mut watch = Command::new(LOA)
        .args(["endpoints", "--watch", "--json", "--socket"])
        .arg(&daemon.socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Its first line is the answer to the subscription: subscribed.
    let mut watched = Lines::new(watch.stdout.take().unwrap());
    watched.wait_line("endpoints", Duration::from_secs(10));
    let _cho = Speaker::start(&group, port, "127.0.0.2", &[]);
    let mut truong = Speaker::start(&group, port, "127.0.0.3", &[]);
    let _dinh = Speaker::start(&group, port, "127.0.0.4", &["--drop", "10", "--seed", "7"]);
    let _stranger = Speaker::start(&group, port, "127.0.0.9", &[]);

    wait_for(&daemon, "listed online, stranger unregistered, lossy degraded", Duration::from_secs(15), |rows| {
        state_of(rows, "127.0.0.2") == "online"
            && state_of(rows, "127.0.0.3") == "online"
            && state_of(rows, "127.0.0.4") == "degraded"
            && state_of(rows, "127.0.0.9") == "unregistered"
    });
    let rows = endpoints(&daemon);
    let dinh = rows.iter().find(|r| r["address"] == "127.0.0.4").unwrap();
    let loss = dinh["loss_pct"].as_f64().unwrap();
    assert!((4.0..=20.0).contains(&loss), "loss near 10 %: {dinh:#}");
    // RTT needs a Sender Report to have reached the speaker (≈5 s interval).
    wait_for(&daemon, "RTT from LSR/DLSR", Duration::from_secs(12), |rows| {
        rows.iter()
            .find(|r| r["address"] == "127.0.0.2")
            .and_then(|r| r["rtt_ms"].as_f64())
            .is_some_and(|rtt| (0.0..50.0).contains(&rtt))
    });
    let text = String::from_utf8(daemon.loa(&["endpoints"]).stdout).unwrap();
    assert!(text.contains("UNREGISTERED") && text.contains("cho"), "{text}");
    let status = daemon.json(&["status"]);
    assert_eq!(status["zones"][0]["endpoints"]["unregistered"], 1, "{status:#}");

    let _ = truong.0.kill();
    let _ = truong.0.wait();
    let took = wait_for(&daemon, "killed speaker offline", Duration::from_secs(8), |rows| {
        state_of(rows, "127.0.0.3") == "offline"
    });
    println!("offline detected {:.1} s after the kill (3 × 1 s report interval)", took.as_secs_f64());
    assert!(took <= Duration::from_secs(5), "offline after {took:?}");

    let _ = watch.kill();
    let _ = watch.wait();
    let watched = watched.rest();
    let changes: Vec<Value> = watched.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(
        changes.iter().any(|c| c["address"] == "127.0.0.3" && c["to"] == "offline"),
        "endpoints.subscribe pushed the offline transition: {watched}"
    );
    assert!(changes.iter().any(|c| c["address"] == "127.0.0.9" && c["to"] == "unregistered"), "{watched}");

    // Every transition is in SQLite.
    let store = loa::store::Store::open(&dir.path().join("state")).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    drop(store);
    let db = rusqlite_count(&dir.path().join("state/loa.db"));
    assert!(db >= 5, "health events stored: {db}");
}

fn rusqlite_count(path: &std::path::Path) -> i64 {
    let db = rusqlite::Connection::open(path).unwrap();
    db.query_row("select count(*) from health_events", [], |r| r.get(0)).unwrap()
}

#[test]
fn a_gstreamer_rtpbin_receiver_is_recognised_as_online() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (zone, group, port) = inventory_zone(&[("gst", "127.0.0.5")]);
    let daemon = playing_daemon(dir.path(), &zone, "");
    let caps = "application/x-rtp,media=audio,clock-rate=48000,encoding-name=OPUS,payload=96";
    let pipeline = format!(
        "rtpbin name=rb udpsrc address={group} port={port} multicast-iface=lo caps=\"{caps}\" ! rb.recv_rtp_sink_0 \
         rb. ! rtpopusdepay ! opusdec ! fakesink sync=false \
         udpsrc address={group} port={} multicast-iface=lo ! rb.recv_rtcp_sink_0 \
         rb.send_rtcp_src_0 ! udpsink host={group} port={} multicast-iface=lo bind-address=127.0.0.5 sync=false async=false",
        port + 1,
        port + 1
    );
    let mut gst = Command::new("sh")
        .args(["-c", &format!("exec gst-launch-1.0 -q {pipeline}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let took = wait_for(&daemon, "GStreamer receiver online", Duration::from_secs(20), |rows| {
        state_of(rows, "127.0.0.5") == "online"
    });
    println!("GStreamer rtpbin online after {:.1} s", took.as_secs_f64());
    let _ = gst.kill();
    let _ = gst.wait();
}

#[test]
fn hostile_rtcp_is_ignored_and_the_daemon_keeps_serving() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (zone, group, port) = inventory_zone(&[("cho", "127.0.0.2")]);
    let health = "[health]\nreport_interval = \"1s\"\n";
    let daemon = playing_daemon(dir.path(), &zone, health);
    let _cho = Speaker::start(&group, port, "127.0.0.2", &[]);
    wait_for(&daemon, "speaker online", Duration::from_secs(10), |rows| state_of(rows, "127.0.0.2") == "online");

    let attacker = UdpSocket::bind("127.0.0.66:0").unwrap();
    let target = format!("127.0.0.1:{}", port + 1);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut random = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    };
    let mut hostile: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x81],
        vec![0x81, 201, 0x00],                                     // truncated header
        vec![0x41, 201, 0x00, 0x01, 0, 0, 0, 1],                   // version 1
        vec![0x81, 201, 0xff, 0xff, 0, 0, 0, 1],                   // length far beyond the datagram
        vec![0x9f, 201, 0x00, 0x01, 0, 0, 0, 1],                   // 31 report blocks claimed, none present
        [vec![0x81, 200, 0x00, 0x06], vec![0; 24]].concat(),       // SR cut short
        [vec![0xa1, 201, 0x00, 0x07], vec![0xff; 28]].concat(),    // padding flag with absurd pad count
    ];
    for n in [4, 8, 28, 100, 1400] {
        for _ in 0..20 {
            hostile.push(random(n));
        }
    }
    for datagram in &hostile {
        attacker.send_to(datagram, &target).unwrap();
    }
    // Real time, not a condition: the speaker must stay online and the
    // warnings stay few all through it.
    std::thread::sleep(Duration::from_millis(1500));
    let rows = endpoints(&daemon);
    assert_eq!(state_of(&rows, "127.0.0.2"), "online", "{rows:#?}");
    assert!(daemon.loa(&["status"]).status.success());
    let log = daemon.log_text();
    assert!(log.contains("malformed RTCP"), "a warning names the bad datagrams:\n{log}");
    let warnings = log.matches("malformed RTCP").count();
    assert!(warnings <= 2, "warnings are rate-limited, got {warnings}");
}

#[test]
fn a_speaker_that_sends_no_rtcp_is_watched_by_a_tcp_probe() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.6:0").unwrap();
    let probe_port = listener.local_addr().unwrap().port();
    let (zone, _, _) = zone_toml("thon-1");
    let zone = format!(
        "{zone}endpoints = [{{ name = \"cong\", address = \"127.0.0.6\", probe = \"tcp:{probe_port}\", \
         probe_interval = \"500ms\", probe_timeout = \"300ms\" }}]\n"
    );
    let daemon = playing_daemon(dir.path(), &zone, "");
    wait_for(&daemon, "probed speaker online", Duration::from_secs(5), |rows| state_of(rows, "127.0.0.6") == "online");
    drop(listener);
    wait_for(&daemon, "probed speaker offline", Duration::from_secs(5), |rows| state_of(rows, "127.0.0.6") == "offline");
    let rows = endpoints(&daemon);
    assert!(daemon.log_text().contains("probe tcp"), "the log says why: {rows:#?}");
}

/// Issue 13: the daemon's own RTCP — SR while a zone plays, RR while
/// another is idle — loops back on the groups (multicast loop is on), and
/// RTCP from one of our own SSRCs is not a participant (RFC 3550 §8.2): no
/// endpoint for the daemon's address or CNAME, no SECURITY line, while a
/// real speaker on another loopback address is online.
#[test]
fn the_daemons_own_rtcp_looped_back_is_neither_an_endpoint_nor_a_security_warning() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (playing, group, port) = inventory_zone(&[("cho", "127.0.0.2")]);
    let (idle, idle_group, idle_port) = zone_toml("thon-2");
    let heard_playing = RtcpRecorder::start(&group, port + 1);
    let heard_idle = RtcpRecorder::start(&idle_group, idle_port + 1);
    let health = "[health]\nreport_interval = \"1s\"\n";
    let daemon = playing_daemon(dir.path(), &format!("{playing}{idle}"), health);
    let _cho = Speaker::start(&group, port, "127.0.0.2", &[]);

    // A few of the daemon's report intervals (≈5 s each): its own SR on
    // the playing zone and RR on the idle one are on the groups, from the
    // interface address 127.0.0.1.
    let start = Instant::now();
    let own = |r: &RtcpRecorder, packet_type: u8| {
        r.heard().iter().filter(|(from, pt, _)| from == "127.0.0.1" && *pt == packet_type).count()
    };
    while (own(&heard_playing, 200) < 2 || own(&heard_idle, 201) < 2) && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let (sr, rr) = (own(&heard_playing, 200), own(&heard_idle, 201));
    println!(
        "after {:.1} s: {sr} SR (playing zone) and {rr} RR (idle zone) of the daemon's own looped back",
        start.elapsed().as_secs_f64()
    );
    assert!(sr >= 2 && rr >= 2, "the daemon's RTCP did not loop back: {sr} SR, {rr} RR");
    // Give the health task time to have handled the last of them.
    std::thread::sleep(Duration::from_millis(500));

    let rows = endpoints(&daemon);
    assert_eq!(state_of(&rows, "127.0.0.2"), "online", "{rows:#?}");
    assert_eq!(state_of(&rows, "127.0.0.1"), "absent", "the daemon listed itself: {rows:#?}");
    assert!(
        rows.iter().all(|r| r["cname"] != "loa@127.0.0.1"),
        "the daemon's CNAME is listed: {rows:#?}"
    );
    let status = daemon.json(&["status"]);
    for zone in status["zones"].as_array().unwrap() {
        // A zone with no endpoint at all has no counts.
        let unregistered = zone["endpoints"]["unregistered"].as_u64().unwrap_or(0);
        assert_eq!(unregistered, 0, "{status:#}");
    }
    let log = daemon.log_text();
    assert!(!log.contains("SECURITY"), "the daemon warned about itself:\n{log}");
}

/// RTCP with the daemon's own SSRC from another address — a forged report,
/// or a collision — is not a participant either (RFC 3550 §8.2): no
/// endpoint in our name, and one SECURITY line naming the address however
/// many such reports it sends.
#[test]
fn a_report_in_the_daemons_name_from_another_address_is_one_security_warning_and_no_endpoint() {
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (zone, group, port) = inventory_zone(&[("cho", "127.0.0.2")]);
    let heard = RtcpRecorder::start(&group, port + 1);
    let health = "[health]\nreport_interval = \"1s\"\n";
    let daemon = playing_daemon(dir.path(), &zone, health);
    let _cho = Speaker::start(&group, port, "127.0.0.2", &[]);
    wait_for(&daemon, "speaker online", Duration::from_secs(10), |rows| state_of(rows, "127.0.0.2") == "online");
    // The daemon's SSRC on this zone, from its own Sender Report.
    let start = Instant::now();
    let ours = loop {
        let sr = heard.heard().into_iter().find(|(from, pt, _)| from == "127.0.0.1" && *pt == 200);
        if let Some((_, _, ssrc)) = sr {
            break ssrc;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "no Sender Report from the daemon");
        std::thread::sleep(Duration::from_millis(100));
    };

    // An RR without blocks and an SDES CNAME, as the daemon itself sends.
    let cname = b"loa@127.0.0.1";
    let mut sdes = [&ours.to_be_bytes()[..], &[1, cname.len() as u8], cname, &[0]].concat();
    sdes.resize(sdes.len().next_multiple_of(4), 0);
    let words = (sdes.len() / 4) as u16; // header word + chunk, minus one
    let forged = [&[0x80, 201, 0x00, 0x01][..], &ours.to_be_bytes(), &[0x81, 202], &words.to_be_bytes(), &sdes].concat();
    let forger = UdpSocket::bind("127.0.0.77:0").unwrap();
    for _ in 0..5 {
        forger.send_to(&forged, format!("127.0.0.1:{}", port + 1)).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));

    let rows = endpoints(&daemon);
    assert_eq!(state_of(&rows, "127.0.0.77"), "absent", "{rows:#?}");
    assert_eq!(state_of(&rows, "127.0.0.2"), "online", "{rows:#?}");
    let log = daemon.log_text();
    let warning = format!("SECURITY: RTCP from 127.0.0.77 carries SSRC {ours:08x}, which is ours on zone thon-1");
    assert_eq!(log.matches(&warning).count(), 1, "one warning for five forged reports:\n{log}");
    assert_eq!(log.matches("SECURITY").count(), 1, "nothing else is a security matter here:\n{log}");
}

/// Records the RTCP on a group's RTCP port as (source address, packet type
/// of the first packet, sender SSRC).
struct RtcpRecorder {
    heard: std::sync::Arc<std::sync::Mutex<Vec<(String, u8, u32)>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl RtcpRecorder {
    fn start(group: &str, port: u16) -> RtcpRecorder {
        use std::net::{Ipv4Addr, SocketAddrV4};
        use std::sync::atomic::Ordering;
        let group: Ipv4Addr = group.parse().unwrap();
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        socket.set_reuse_address(true).unwrap();
        socket.set_reuse_port(true).unwrap();
        socket.bind(&SocketAddrV4::new(group, port).into()).unwrap();
        socket.join_multicast_v4(&group, &Ipv4Addr::LOCALHOST).unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let socket: UdpSocket = socket.into();
        let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (h, s) = (heard.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
                if n >= 8 {
                    let ssrc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
                    h.lock().unwrap().push((from.ip().to_string(), buf[1], ssrc));
                }
            }
        });
        RtcpRecorder { heard, stop }
    }

    fn heard(&self) -> Vec<(String, u8, u32)> {
        self.heard.lock().unwrap().clone()
    }
}

impl Drop for RtcpRecorder {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn a_speaker_on_the_twenty_fifth_zone_of_a_port_is_heard() {
    // Linux lets one socket join 20 groups (net.ipv4.igmp_max_memberships);
    // 24 other zones on the same port come first, so this speaker's group
    // needs the port's second socket.
    require_netns();
    let dir = tempfile::tempdir().unwrap();
    let (zone, group, port) = inventory_zone(&[("cho", "127.0.0.2")]);
    let others: String = (1..=24)
        .map(|i| format!("[[zone]]\nname = \"khac-{i}\"\ngroup = \"239.254.1.{i}:{port}\"\nsecurity = \"none\"\n"))
        .collect();
    let daemon = playing_daemon(dir.path(), &format!("{others}{zone}"), "[health]\nreport_interval = \"1s\"\n");
    let _speaker = Speaker::start(&group, port, "127.0.0.2", &[]);
    wait_for(&daemon, "the 25th zone's speaker online", Duration::from_secs(20), |rows| {
        state_of(rows, "127.0.0.2") == "online"
    });
    assert!(!daemon.log_text().contains("cannot listen for RTCP reports"), "{}", daemon.log_text());
}
