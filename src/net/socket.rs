//! Sockets: owns creating the UDP sockets RTP and RTCP leave from, with the
//! multicast interface, TTL and DSCP the config asks for.
//!
//! Must not touch: packet contents, pacing decisions.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

use crate::config::Network;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot create a UDP socket: {0}")]
    Socket(#[source] io::Error),
    #[error("cannot use interface {interface} for multicast: {source} (is the address configured on this machine?)")]
    Interface {
        interface: Ipv4Addr,
        #[source]
        source: io::Error,
    },
    #[error("cannot set {option} on the sending socket: {source}")]
    Option {
        option: &'static str,
        #[source]
        source: io::Error,
    },
}

/// Kernel send buffer for the sender socket. The pacer never blocks on
/// `sendto` (the socket is non-blocking); this is sized so a burst for many
/// zones and endpoints in one tick fits without EAGAIN.
const SEND_BUFFER_BYTES: usize = 1 << 20;

/// A non-blocking UDP socket bound to the configured interface address,
/// with IP_MULTICAST_IF set to it, so multicast never follows a route the
/// operator did not choose (DESIGN: "no default route guess").
pub fn sender_socket(network: &Network) -> Result<UdpSocket, NetError> {
    let socket =
        Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(NetError::Socket)?;
    let opt = |option: &'static str| move |source| NetError::Option { option, source };
    socket
        .bind(&SocketAddrV4::new(network.interface, 0).into())
        .map_err(|source| NetError::Interface {
            interface: network.interface,
            source,
        })?;
    socket
        .set_multicast_if_v4(&network.interface)
        .map_err(|source| NetError::Interface {
            interface: network.interface,
            source,
        })?;
    socket
        .set_multicast_ttl_v4(u32::from(network.ttl))
        .map_err(opt("IP_MULTICAST_TTL"))?;
    // Receivers on the same host (a monitoring speaker, the tests) must hear
    // the zone too.
    socket
        .set_multicast_loop_v4(true)
        .map_err(opt("IP_MULTICAST_LOOP"))?;
    // DSCP sits in the upper six bits of the TOS byte (RFC 2474).
    socket
        .set_tos_v4(u32::from(network.dscp) << 2)
        .map_err(opt("IP_TOS"))?;
    // Best effort: an unprivileged process may get less than it asks for.
    let _ = socket.set_send_buffer_size(SEND_BUFFER_BYTES);
    socket.set_nonblocking(true).map_err(opt("O_NONBLOCK"))?;
    Ok(socket.into())
}

/// The RTCP address paired with an RTP address (RFC 3550 §11: port + 1).
pub fn rtcp_addr(rtp: SocketAddr) -> SocketAddr {
    let mut addr = rtp;
    addr.set_port(rtp.port().wrapping_add(1));
    addr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtcp_is_on_the_next_port() {
        let rtp: SocketAddr = "239.255.77.1:5004".parse().unwrap();
        assert_eq!(rtcp_addr(rtp), "239.255.77.1:5005".parse().unwrap());
    }

    #[test]
    fn sender_socket_binds_to_the_interface_and_is_nonblocking() {
        let network = Network {
            interface: Ipv4Addr::LOCALHOST,
            ttl: 1,
            dscp: 46,
        };
        let socket = sender_socket(&network).unwrap();
        let local = socket.local_addr().unwrap();
        assert_eq!(local.ip(), Ipv4Addr::LOCALHOST);
        let sock = socket2::SockRef::from(&socket);
        assert_eq!(sock.multicast_ttl_v4().unwrap(), 1);
        assert_eq!(sock.tos_v4().unwrap(), 46 << 2);
        assert_eq!(sock.multicast_if_v4().unwrap(), Ipv4Addr::LOCALHOST);
    }

    #[test]
    fn an_address_not_on_this_machine_is_refused_with_a_clear_error() {
        let network = Network {
            // TEST-NET-3 (RFC 5737): never assigned to a real interface.
            interface: Ipv4Addr::new(203, 0, 113, 7),
            ttl: 1,
            dscp: 46,
        };
        let err = sender_socket(&network).unwrap_err();
        assert!(
            err.to_string().contains("203.0.113.7"),
            "message names the interface: {err}"
        );
    }
}
