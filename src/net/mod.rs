//! The network edge of sending: the sender socket (socket2: interface,
//! TTL, DSCP, non-blocking), whether the interface can send (`netwatch`,
//! sans-IO) and SAP announcements (`sap`, sans-IO packets and timing).
//!
//! Must not touch: packet contents (RTP is `rtp`'s), the pacer's timing.

pub mod netwatch;
pub mod sap;
mod socket;

pub use socket::{rtcp_addr, sender_socket, NetError};
