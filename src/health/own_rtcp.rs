//! Reports that carry one of our own SSRCs (sans-IO): never a participant
//! (RFC 3550 §8.2).
//!
//! Multicast loop is on, so every SR (zone playing) and RR (zone idle) the
//! daemon sends comes back to its own RTCP listener, from the interface
//! address. From that address a report with one of our zones' SSRCs is our
//! own loop-back: counted, nothing else. From any other address someone
//! sends with our SSRC — a forged report or a collision — which the shell
//! logs once per address as a security warning, and which never becomes an
//! endpoint either, so a forger cannot add rows to `loa endpoints` in our
//! name. §8.2 would have us send BYE and take a new SSRC; we keep ours, so
//! unauthenticated RTCP cannot make a zone's speakers resynchronise at will
//! (see ARCHITECTURE.md).
//!
//! Must not touch: endpoint entries; the monitor asks this only about
//! reports whose sender SSRC is ours, and those go no further.

use std::collections::HashSet;
use std::net::IpAddr;

use super::monitor::MAX_UNREGISTERED;

/// What [`super::HealthMonitor::handle_report`] made of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportOrigin {
    /// A speaker, listed or not: its entry was updated.
    Endpoint,
    /// A stranger while [`MAX_UNREGISTERED`] entries exist: counted only.
    DroppedStranger,
    /// Our own report, looped back from our own interface address.
    OwnLoopback,
    /// One of our SSRCs from another address. `first` is true the first
    /// time this address does it (at most [`MAX_UNREGISTERED`] addresses
    /// are remembered, so spoofed sources cannot grow memory; after that
    /// every one counts as not first).
    OurSsrcFromElsewhere { first: bool },
}

/// Where our own RTCP comes from, and what came back with our SSRCs.
#[derive(Debug, Default)]
pub(crate) struct OwnRtcp {
    /// The address our RTCP leaves from (`[network] interface`).
    address: Option<IpAddr>,
    /// Our own reports heard back.
    loopbacks: u64,
    /// Other addresses seen sending with one of our SSRCs.
    ssrc_users: HashSet<IpAddr>,
}

impl OwnRtcp {
    pub(crate) fn set_address(&mut self, address: IpAddr) {
        self.address = Some(address);
    }

    pub(crate) fn loopbacks(&self) -> u64 {
        self.loopbacks
    }

    /// A report whose sender SSRC is one of ours arrived from `from`.
    /// Without a known address every such report is taken for our own.
    pub(crate) fn heard(&mut self, from: IpAddr) -> ReportOrigin {
        if self.address.is_none_or(|own| own == from) {
            self.loopbacks += 1;
            return ReportOrigin::OwnLoopback;
        }
        let first = self.ssrc_users.len() < MAX_UNREGISTERED && self.ssrc_users.insert(from);
        ReportOrigin::OurSsrcFromElsewhere { first }
    }
}
