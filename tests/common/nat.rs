//! A carrier-NAT rig for one test: several "hosts", each a network namespace,
//! joined only to each other by veth pairs (never to a real interface), on
//! documentation and carrier-grade-NAT ranges only.
//!
//! ```text
//!   loa host 203.0.113.10 ─┐
//!   attacker 203.0.113.66 ─┤ lan (a bridge in a namespace of its own)
//!   NAT pub  203.0.113.1  ─┘
//!   NAT priv 100.64.0.1 ──── speaker 100.64.0.2 (default route via the NAT)
//! ```
//!
//! The NAT box masquerades what leaves its public side with a random port
//! (`random,fully-random`), so a flushed mapping comes back on a new public
//! port, as a 4G box's does when the carrier drops it; it drops what arrives
//! unsolicited from the public side, as a carrier NAT does; its UDP conntrack
//! timeouts are short (per-namespace sysctls), so a test sees mappings expire
//! in seconds. loa's host has no route to 100.64.0.0/10 at all.
//!
//! Controls: `flush_conntrack` (rebinding), `block_udp`/`unblock_udp` (the
//! TLS fallback), `block_udp_inward`/`unblock_udp_inward` (the speaker's UDP
//! gets out, nothing comes back in), `udp_mappings` (what the NAT holds now).
//!
//! Tests build it as root inside scripts/netns.sh (nested namespaces made
//! with `ip netns`, whose bind mounts stay in that script's private mount
//! namespace). Names carry the pid and a counter, so rigs of tests running in
//! parallel never meet. Every namespace is deleted when the rig drops,
//! including after a panic half-way through building it; processes a test
//! started inside must be stopped before (a namespace lives as long as a
//! process in it).
//!
//! Code runs inside a host in two ways: `Host::command` (a process under
//! `ip netns exec`, which execs, so the child's pid is the program's) and
//! `Host::enter` (a closure on a thread moved into the namespace with
//! setns(2); sockets it makes stay in that namespace).

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// loa's host, on the public LAN.
pub const LOA_ADDR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
/// The NAT box's public side: the address every speaker behind it appears from.
pub const NAT_PUBLIC: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
/// The NAT box's private side, the speaker's default gateway.
pub const NAT_PRIVATE: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
/// The speaker's own address, which loa must never need (nor reach).
pub const SPEAKER_ADDR: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 2);
/// A hostile host on loa's LAN.
pub const ATTACKER_ADDR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 66);

/// How the rig is built.
#[derive(Clone, Debug)]
pub struct NatOptions {
    /// `nf_conntrack_udp_timeout`: a mapping that saw no reply, or whose
    /// exchange lasted under 2 s, ends after this long without traffic.
    pub udp_timeout: Duration,
    /// `nf_conntrack_udp_timeout_stream`: a mapping with traffic both ways
    /// for over 2 s (a stream) ends after this long without traffic.
    pub udp_stream_timeout: Duration,
    /// Whether to put an attacker host on loa's LAN.
    pub attacker: bool,
}

impl Default for NatOptions {
    fn default() -> NatOptions {
        NatOptions {
            udp_timeout: Duration::from_secs(5),
            udp_stream_timeout: Duration::from_secs(10),
            attacker: false,
        }
    }
}

/// One host of the rig: a network namespace and its address.
#[derive(Clone, Debug)]
pub struct Host {
    /// The namespace's name for `ip netns`.
    pub netns: String,
    pub addr: Ipv4Addr,
}

impl Host {
    /// `program` to be run inside this host (`ip netns exec NETNS program`).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.netns, program]);
        command
    }

    /// The words to put before a program to run it inside this host, for
    /// helpers that take a prefix (`Daemon::start_via`).
    pub fn prefix(&self) -> [&str; 4] {
        ["ip", "netns", "exec", &self.netns]
    }

    /// Runs `program args` inside this host; panics with what it said if it fails.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self.command(program).args(args).stdin(Stdio::null()).output();
        checked(&format!("{program} {} (in {})", args.join(" "), self.netns), out)
    }

    /// Runs `f` on a thread inside this host's network namespace and returns
    /// what it returns. Sockets made there keep the namespace for life.
    pub fn enter<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.netns);
        std::thread::spawn(move || {
            let ns = File::open(&path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
            // SAFETY: setns only reads the descriptor, which lives until the
            // call returns; it moves this thread alone (CLONE_NEWNET is per
            // thread), and the thread ends after `f`.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "cannot enter network namespace {path}: {}", io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// A UDP socket bound inside this host on its address (port 0: any).
    pub fn udp(&self, port: u16) -> UdpSocket {
        let at = SocketAddrV4::new(self.addr, port);
        self.enter(move || UdpSocket::bind(at)).unwrap_or_else(|e| panic!("cannot bind UDP {at}: {e}"))
    }

    /// A TCP listener inside this host on its address (port 0: any).
    pub fn tcp_listen(&self, port: u16) -> TcpListener {
        let at = SocketAddrV4::new(self.addr, port);
        self.enter(move || TcpListener::bind(at)).unwrap_or_else(|e| panic!("cannot listen on TCP {at}: {e}"))
    }

    /// A TCP connection from inside this host to `to`.
    pub fn tcp_connect(&self, to: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        self.enter(move || TcpStream::connect_timeout(&to, timeout))
    }
}

/// One UDP mapping the NAT holds, as `conntrack -L` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpMapping {
    /// The speaker's own address and port (the original source).
    pub private: SocketAddrV4,
    /// Where the speaker sent to (the original destination).
    pub remote: SocketAddrV4,
    /// The address and port the remote sees and replies to.
    pub public: SocketAddrV4,
    /// Seconds left before the mapping ends without traffic.
    pub expires_secs: u32,
}

/// The rig. Dropping it deletes every namespace it made.
pub struct NatRig {
    pub loa: Host,
    pub nat: Host,
    pub speaker: Host,
    pub attacker: Option<Host>,
    pub options: NatOptions,
    /// Namespaces made so far, deleted on drop (also after a failed build).
    made: Vec<String>,
}

/// Tells rigs of one test process apart.
static RIGS: AtomicU32 = AtomicU32::new(0);

impl NatRig {
    /// A rig with the default options (5 s / 10 s UDP timeouts, no attacker).
    pub fn new() -> NatRig {
        NatRig::with(NatOptions::default())
    }

    pub fn with(options: NatOptions) -> NatRig {
        super::require_netns();
        preflight();
        let tag = format!("nat{}-{}", std::process::id(), RIGS.fetch_add(1, Ordering::Relaxed));
        let host = |role: &str, addr| Host { netns: format!("{tag}-{role}"), addr };
        let mut rig = NatRig {
            loa: host("loa", LOA_ADDR),
            nat: host("nat", NAT_PUBLIC),
            speaker: host("spk", SPEAKER_ADDR),
            attacker: options.attacker.then(|| host("att", ATTACKER_ADDR)),
            options,
            made: Vec::new(),
        };
        rig.build(&format!("{tag}-lan"));
        rig
    }

    fn build(&mut self, lan: &str) {
        let mut hosts = vec![self.loa.netns.clone(), self.nat.netns.clone(), self.speaker.netns.clone()];
        hosts.extend(self.attacker.iter().map(|h| h.netns.clone()));
        for netns in hosts.iter().chain([&lan.to_string()]) {
            checked(&format!("ip netns add {netns}"), Command::new("ip").args(["netns", "add", netns]).output());
            self.made.push(netns.clone());
            ip(&["-n", netns, "link", "set", "lo", "up"]);
        }

        // The LAN: a bridge in a namespace of its own, so each host has one
        // plain interface, as on a real switch. Snooping off: it floods
        // multicast like the unmanaged switch of a commune office.
        ip(&["-n", lan, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"]);
        ip(&["-n", lan, "link", "set", "br0", "up"]);
        let mut lan_side = vec![(&self.loa, "eth0"), (&self.nat, "pub")];
        lan_side.extend(self.attacker.as_ref().map(|h| (h, "eth0")));
        for (n, (host, ifname)) in lan_side.into_iter().enumerate() {
            let port = format!("p{n}");
            veth(&host.netns, ifname, lan, &port);
            ip(&["-n", lan, "link", "set", &port, "master", "br0", "up"]);
            address(&host.netns, ifname, &format!("{}/24", host.addr));
        }

        // The carrier's side: the speaker alone behind the NAT.
        veth(&self.speaker.netns, "eth0", &self.nat.netns, "priv");
        address(&self.nat.netns, "priv", &format!("{NAT_PRIVATE}/10"));
        address(&self.speaker.netns, "eth0", &format!("{SPEAKER_ADDR}/10"));
        ip(&["-n", &self.speaker.netns, "route", "add", "default", "via", &NAT_PRIVATE.to_string()]);

        // loa's daemon sends its zones' multicast on loopback in tests, as
        // in scripts/netns.sh.
        ip(&["-n", &self.loa.netns, "link", "set", "lo", "multicast", "on"]);
        ip(&["-n", &self.loa.netns, "route", "add", "224.0.0.0/4", "dev", "lo"]);

        self.nat.run("sysctl", &["-q", "-w", "net.ipv4.ip_forward=1"]);
        self.load_nft(NAT_RULES);
        self.set_timeouts();
    }

    /// Loads an nft ruleset into the NAT box.
    fn load_nft(&self, rules: &str) {
        nft(&self.nat, rules).unwrap_or_else(|said| {
            panic!(
                "the NAT box's nftables rules did not load: {said}\n\
                 the kernel needs nf_tables with NAT and masquerade (nft_nat, nft_masq, nf_conntrack)"
            )
        });
    }

    fn set_timeouts(&self) {
        let settings = [
            ("net.netfilter.nf_conntrack_udp_timeout", self.options.udp_timeout),
            ("net.netfilter.nf_conntrack_udp_timeout_stream", self.options.udp_stream_timeout),
        ];
        for (key, value) in settings {
            let setting = format!("{key}={}", value.as_secs().max(1));
            let out = self.nat.command("sysctl").args(["-q", "-w", &setting]).output();
            match out {
                Ok(out) if out.status.success() => {}
                other => panic!(
                    "cannot set {setting} in the NAT box ({}): the kernel's connection tracking \
                     (nf_conntrack) is missing; load it with `modprobe nf_conntrack`",
                    said(&other)
                ),
            }
        }
    }

    /// Forgets every mapping, as a carrier does when it drops a 4G box's
    /// session: the speaker's next datagram gets a new public port.
    pub fn flush_conntrack(&self) {
        // conntrack says "N flow entries have been deleted" on stderr and
        // fails when there were none; only a missing tool is an error.
        let out = self.nat.command("conntrack").arg("-F").stdin(Stdio::null()).output();
        let out = out.unwrap_or_else(|e| panic!("cannot run conntrack: {e} (install conntrack)"));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || said.contains("0 flow entries"),
            "conntrack -F in {} failed: {said}",
            self.nat.netns
        );
    }

    /// Drops every UDP datagram the NAT would forward, either way, while TCP
    /// still passes: a network that lets only the TLS connection through.
    pub fn block_udp(&self) {
        // Mappings stay (the carrier's filter drops what they would pass),
        // so unblocking mid-stream is not also a rebinding.
        nft(&self.nat, BLOCK_UDP).unwrap_or_else(|said| panic!("cannot block UDP in the NAT box: {said}"));
    }

    /// Lets UDP through again.
    pub fn unblock_udp(&self) {
        self.nat.run("nft", &["delete", "table", "inet", "loa_block"]);
    }

    /// Drops every UDP datagram the NAT would forward to the speaker,
    /// replies on its own mappings included, while the speaker's UDP still
    /// gets out (and TCP passes both ways): its keepalives reach loa and
    /// authenticate, loa's unicast never arrives.
    pub fn block_udp_inward(&self) {
        nft(&self.nat, BLOCK_UDP_INWARD).unwrap_or_else(|said| panic!("cannot block inward UDP in the NAT box: {said}"));
    }

    /// Lets UDP towards the speaker through again.
    pub fn unblock_udp_inward(&self) {
        self.nat.run("nft", &["delete", "table", "inet", "loa_block_inward"]);
    }

    /// The UDP mappings the NAT holds now.
    pub fn udp_mappings(&self) -> Vec<UdpMapping> {
        let out = self.nat.command("conntrack").args(["-L", "-p", "udp"]).stdin(Stdio::null()).output();
        let text = checked(&format!("conntrack -L in {}", self.nat.netns), out);
        text.lines().filter_map(parse_mapping).filter(|m| *m.private.ip() != NAT_PUBLIC).collect()
    }

    /// The mapping for the speaker's datagrams from `private_port` to `remote`.
    pub fn mapping(&self, private_port: u16, remote: SocketAddrV4) -> Option<UdpMapping> {
        self.udp_mappings().into_iter().find(|m| m.private.port() == private_port && m.remote == remote)
    }
}

impl Drop for NatRig {
    fn drop(&mut self) {
        for netns in self.made.drain(..).rev() {
            match Command::new("ip").args(["netns", "del", &netns]).output() {
                Ok(out) if out.status.success() => {}
                other => eprintln!("could not delete network namespace {netns}: {}", said(&other)),
            }
        }
    }
}

/// Masquerade with a random port on the public side; nothing unsolicited
/// from the public side gets in.
const NAT_RULES: &str = "
table ip loa_nat {
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    oifname \"pub\" masquerade random,fully-random
  }
}
table inet loa_carrier {
  chain forward {
    type filter hook forward priority 0; policy accept;
    ct state established,related accept
    iifname \"pub\" drop
  }
}
";

/// Runs before the carrier's filter, so blocked means blocked both ways.
const BLOCK_UDP: &str = "
table inet loa_block {
  chain forward {
    type filter hook forward priority -10; policy accept;
    meta l4proto udp drop
  }
}
";

/// Runs before the carrier's filter (which accepts established replies),
/// so replies on the speaker's mappings are dropped too.
const BLOCK_UDP_INWARD: &str = "
table inet loa_block_inward {
  chain forward {
    type filter hook forward priority -10; policy accept;
    oifname \"priv\" meta l4proto udp drop
  }
}
";

/// Fails early, with what to install, if a tool the rig runs is missing.
fn preflight() {
    let tools = [
        ("ip", "-V", "iproute2"),
        ("nft", "--version", "nftables"),
        ("conntrack", "--version", "conntrack"),
        ("sysctl", "--version", "procps"),
    ];
    for (tool, flag, package) in tools {
        let ran = Command::new(tool).arg(flag).stdout(Stdio::null()).stderr(Stdio::null()).status();
        if ran.is_err() {
            panic!("the NAT rig needs `{tool}`: install the Debian package {package} (scripts/deps.sh lists it)");
        }
    }
}

/// Makes a veth pair with one end in each namespace.
fn veth(a_netns: &str, a_ifname: &str, b_netns: &str, b_ifname: &str) {
    ip(&["link", "add", a_ifname, "netns", a_netns, "type", "veth", "peer", "name", b_ifname, "netns", b_netns]);
    ip(&["-n", a_netns, "link", "set", a_ifname, "up"]);
    ip(&["-n", b_netns, "link", "set", b_ifname, "up"]);
}

fn address(netns: &str, ifname: &str, cidr: &str) {
    ip(&["-n", netns, "addr", "add", cidr, "dev", ifname]);
}

fn ip(args: &[&str]) {
    checked(&format!("ip {}", args.join(" ")), Command::new("ip").args(args).stdin(Stdio::null()).output());
}

/// Loads `rules` with `nft -f -` inside `host`; `Err` holds what nft said.
fn nft(host: &Host, rules: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = host
        .command("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft: {e} (install nftables)"))?;
    child.stdin.take().unwrap().write_all(rules.as_bytes()).map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// stdout of a command that must succeed; otherwise panics naming it.
fn checked(what: &str, out: io::Result<Output>) -> String {
    match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        other => panic!("{what} failed: {}", said(&other)),
    }
}

/// What a finished command said, for an error message.
fn said(out: &io::Result<Output>) -> String {
    match out {
        Ok(out) => format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()),
        Err(e) => e.to_string(),
    }
}

/// One line of `conntrack -L -p udp`, e.g.
/// `udp 17 4 src=100.64.0.2 dst=203.0.113.10 sport=40000 dport=5000 src=203.0.113.10
/// dst=203.0.113.1 sport=5000 dport=61234 [ASSURED] mark=0 use=1`:
/// the first src/dst/sport/dport are the original direction, the second the reply's.
pub fn parse_mapping(line: &str) -> Option<UdpMapping> {
    let mut words = line.split_whitespace();
    if words.next()? != "udp" {
        return None;
    }
    words.next()?;
    let expires_secs = words.next()?.parse().ok()?;
    let field = |key: &str, nth: usize| -> Option<&str> {
        line.split_whitespace().filter_map(|w| w.strip_prefix(key)).nth(nth)
    };
    let at = |nth: usize, addr: &str, port: &str| -> Option<SocketAddrV4> {
        Some(SocketAddrV4::new(field(addr, nth)?.parse().ok()?, field(port, nth)?.parse().ok()?))
    };
    Some(UdpMapping {
        private: at(0, "src=", "sport=")?,
        remote: at(0, "dst=", "dport=")?,
        public: at(1, "dst=", "dport=")?,
        expires_secs,
    })
}
