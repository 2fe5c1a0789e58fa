//! The speaker's stats line: what it heard and played, what it refused.

use std::fmt;
use std::time::Duration;

use super::{Arrived, Rejected};

/// What the speaker heard and played, for the stats line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpeakerStats {
    /// RTP packets accepted from the played source(s).
    pub received: u64,
    /// Packets lost on the way (RFC 3550 A.3, over every source played).
    pub lost: u64,
    /// Lost frames rebuilt from the next packet's in-band FEC.
    pub recovered: u64,
    /// Lost frames concealed (PLC), including undecodable payloads.
    pub concealed: u64,
    /// Packets that arrived after their slot was played.
    pub late: u64,
    pub duplicates: u64,
    /// Datagrams that were not RTP for this stream (garbage, wrong version,
    /// wrong payload type, not Opus).
    pub ignored: u64,
    /// Packets discarded on purpose by `--drop`.
    pub dropped: u64,
    /// Frames written to the output, one per tick.
    pub frames: u64,
    /// Audio written to the output (per channel, at 48 kHz).
    pub played: Duration,
    /// Times the stream's SSRC changed.
    pub ssrc_changes: u64,
    /// RTCP Receiver Reports sent.
    pub reports: u64,
    /// Interarrival jitter of the current source.
    pub jitter: Duration,
    /// SSRC of the source played last.
    pub ssrc: Option<u32>,
    /// SRTP stream: datagrams that failed verification, by reason.
    pub rejected: Option<Rejected>,
    /// Joined: verified packets by the way they came.
    pub arrived: Option<Arrived>,
}

impl fmt::Display for SpeakerStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "received {}, lost {}, recovered by FEC {}, concealed {}, late {}, jitter {:.2} ms \
             (duplicates {}, ignored {}, dropped {}, {:.1} s played, {} reports)",
            self.received,
            self.lost,
            self.recovered,
            self.concealed,
            self.late,
            self.jitter.as_secs_f64() * 1e3,
            self.duplicates,
            self.ignored,
            self.dropped,
            self.played.as_secs_f64(),
            self.reports,
        )?;
        if let Some(r) = &self.rejected {
            write!(
                f,
                "; SRTP rejected {} (bad auth {}, replay {}, unknown SSRC {}, malformed {})",
                r.total(),
                r.bad_auth,
                r.replay,
                r.unknown_ssrc,
                r.malformed
            )?;
        }
        if let Some(a) = &self.arrived {
            write!(f, "; {a}")?;
        }
        Ok(())
    }
}
