//! A zone's state on the pacer thread: its RTP session, targets, who plays
//! there, the packet stamped for the next tick and its SRTP seal.

use std::net::SocketAddr;
use std::time::Instant;

use crate::proto::ids::ProgramId;
use crate::rtp::session::Session;

use super::super::seal::ZoneSeal;
use super::super::stats::PacerStats;
use super::super::ZoneSpec;
use super::spread::Spread;

/// Room in each zone's packet buffer: an RTP header and the largest payload.
pub(super) const PACKET_ROOM: usize = 1500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Standing {
    Active,
    /// Removed by a reload: says BYE at the next send, then nothing.
    Retiring,
    Retired,
}

pub(super) struct ZoneState {
    pub(super) session: Session,
    pub(super) rtp_targets: Vec<SocketAddr>,
    pub(super) rtcp_targets: Vec<SocketAddr>,
    /// Joined speakers' NAT addresses (issue 15), replaced whole by a command.
    pub(super) speaker_targets: Vec<SocketAddr>,
    /// Who plays here from the next stamped tick on.
    pub(super) program: Option<ProgramId>,
    /// Who this zone was stamped for at the last `end_tick`: when it differs
    /// from `program`, the zone left that program (`ZoneLeft`).
    pub(super) played: Option<ProgramId>,
    /// The program's first packet on this zone is still to be reported.
    pub(super) announce_first: bool,
    pub(super) standing: Standing,
    /// RTP packets stamped but not sent (the interface failed): their
    /// sequence numbers are given back, receivers see a pause.
    pub(super) not_sent: u64,
    /// This tick's RTP packet, stamped at the end of the previous tick.
    pub(super) packet: Vec<u8>,
    /// Whose frame `packet` holds, and its payload length; None: nothing
    /// to send this tick.
    pub(super) stamped: Option<(ProgramId, usize)>,
    /// SRTP zone: packets and reports are sealed once, before fan-out.
    pub(super) seal: Option<ZoneSeal>,
    /// The slices of this tick's packet still to go to joined speakers.
    pub(super) spread: Spread,
}

impl ZoneState {
    pub(super) fn new(spec: ZoneSpec, start: Instant) -> ZoneState {
        ZoneState {
            session: Session::new(spec.session, start),
            rtp_targets: spec.rtp_targets,
            rtcp_targets: spec.rtcp_targets,
            speaker_targets: Vec::new(),
            program: None,
            played: None,
            announce_first: false,
            standing: Standing::Active,
            not_sent: 0,
            packet: Vec::with_capacity(PACKET_ROOM),
            stamped: None,
            seal: spec.seal,
            spread: Spread::with_room(PACKET_ROOM),
        }
    }

    /// Stamps `payload` into `packet` and seals it on an SRTP zone; false
    /// when sealing failed (counted; the packet is not sent, and its
    /// sequence number stays spent, see `withdraw`).
    pub(super) fn stamp(&mut self, due: Instant, media: u64, frame_samples: u32, payload: &[u8], stats: &mut PacerStats) -> bool {
        self.session.handle_frame(due, media, frame_samples, payload, &mut self.packet);
        match self.seal.as_mut().map(|seal| seal.seal_rtp(&mut self.packet)) {
            Some(Err(_)) => {
                stats.seal_errors += 1;
                self.session.abandon_last(media, payload.len());
                false
            }
            _ => true,
        }
    }

    /// A stamped packet that will not be sent: plain RTP gives its sequence
    /// number back; a sealed packet's index can never be used again (RFC
    /// 3711 §9.1), so on an SRTP zone receivers see one lost packet.
    pub(super) fn withdraw(&mut self, media: u64, payload_len: usize) {
        match self.seal {
            None => self.session.withdraw_last(media, payload_len),
            Some(_) => self.session.abandon_last(media, payload_len),
        }
    }

    /// Seals the RTCP compound in `rtcp` on an SRTP zone; false if that
    /// failed (then it is not sent).
    pub(super) fn seal_rtcp(&mut self, rtcp: &mut Vec<u8>, stats: &mut PacerStats) -> bool {
        let sealed = self.seal.as_mut().is_none_or(|seal| seal.seal_rtcp(rtcp).is_ok());
        stats.seal_errors += u64::from(!sealed);
        sealed
    }

    pub(super) fn active(&self) -> bool {
        self.standing == Standing::Active
    }
}
