//! Jitter buffer and playout clock of the speaker (sans-IO): orders RTP
//! packets by sequence number and hands out exactly one frame per tick of a
//! fixed output clock — the packet due now, a loss (with the next packet for
//! FEC when it is here), or idle when the sender is silent.
//!
//! Owns: reordering, duplicates, late drops, the 16-bit sequence and 32-bit
//! timestamp wrap, SSRC changes and talkspurt re-anchoring, the buffer cap.
//! Must not touch: sockets, clocks (`arrival`/`now` are arguments), Opus
//! bytes (payloads are opaque here).
//!
//! Decisions:
//! - The output clock ticks every frame from `first arrival + target`, for
//!   the life of the speaker, so what it writes follows wall-clock time: a
//!   silent sender becomes silence, not a shorter file.
//! - Each tick plays one RTP timestamp slot. A packet is due when its
//!   timestamp falls in the slot; a missing sequence number is declared lost
//!   when the slot its timestamp must have had (estimated back from the next
//!   packet) comes up. The sender's timestamp follows its wall clock (RFC
//!   3550 §5.1), so an idle gap is a timestamp jump and plays as idle slots.
//! - A new SSRC replaces the current source only after two packets in
//!   sequence (the probation idea of RFC 3550 A.1), so one stray datagram
//!   cannot reset playback.
//! - A marker bit after an idle stretch starts a talkspurt (RFC 3551 §4.1):
//!   the playout delay is re-measured from its arrival, which also absorbs
//!   any drift between the sender's clock and ours that built up.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::rtp::CLOCK_RATE;

/// Default frame: 20 ms at 48 kHz, until the caller says otherwise.
const DEFAULT_FRAME_SAMPLES: u32 = 960;

/// What one tick of the output clock plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// The packet due in this slot.
    Packet(Vec<u8>),
    /// The packet for this slot never came (or came too late). `next` is the
    /// packet of the following sequence number when it is already buffered,
    /// so the decoder can recover this frame from its in-band FEC.
    Lost { next: Option<Vec<u8>> },
    /// Nothing to play: before the first packet is due, or the sender is
    /// idle.
    Idle,
}

/// What `push` did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    Buffered,
    /// Its slot has already been played.
    Late,
    Duplicate,
    /// From an SSRC that is not (yet) the current source.
    Probation,
    /// Buffered, but the buffer was full and its oldest packet was dropped.
    Overflow,
}

/// Counters the stats line reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterCounters {
    pub late: u64,
    pub duplicates: u64,
    pub overflow: u64,
    pub ssrc_changes: u64,
}

#[derive(Debug)]
struct Buffered {
    /// Extended RTP timestamp.
    timestamp: i64,
    payload: Vec<u8>,
}

/// Where playout stands in the source's sequence and timestamp space.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    next_seq: i64,
    /// Extended RTP timestamp of the slot the next tick plays.
    slot: i64,
}

#[derive(Debug)]
struct Source {
    ssrc: u32,
    /// Highest extended sequence number and its timestamp, the references
    /// for extending the next 16-bit seq and 32-bit timestamp.
    highest_seq: i64,
    highest_ts: i64,
    packets: BTreeMap<i64, Buffered>,
    /// `None` until the first tick at or after `play_from`.
    cursor: Option<Cursor>,
    play_from: Instant,
    /// Whether the last tick played nothing (idle slot).
    idle: bool,
}

impl Source {
    fn new(ssrc: u32, seq: u16, timestamp: u32, play_from: Instant) -> Source {
        Source {
            ssrc,
            highest_seq: i64::from(seq),
            highest_ts: i64::from(timestamp),
            packets: BTreeMap::new(),
            cursor: None,
            play_from,
            idle: true,
        }
    }

    /// Extends a 16-bit sequence number to the one closest to the highest
    /// seen (RFC 3550 A.1 keeps a cycle count for the same reason).
    fn extend_seq(&self, seq: u16) -> i64 {
        let delta = seq.wrapping_sub(self.highest_seq as u16) as i16;
        self.highest_seq + i64::from(delta)
    }

    fn extend_ts(&self, timestamp: u32) -> i64 {
        let delta = timestamp.wrapping_sub(self.highest_ts as u32) as i32;
        self.highest_ts + i64::from(delta)
    }
}

/// A packet of a would-be new source, held while it is on probation.
#[derive(Debug)]
struct Candidate {
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    payload: Vec<u8>,
}

#[derive(Debug)]
pub struct JitterBuffer {
    target: Duration,
    frame_samples: u32,
    /// Cap on buffered packets, so memory stays bounded whatever arrives.
    max_packets: usize,
    next_tick: Option<Instant>,
    source: Option<Source>,
    candidate: Option<Candidate>,
    counters: JitterCounters,
}

/// How much audio the buffer may hold.
const MAX_BUFFERED: Duration = Duration::from_secs(2);

/// A late packet further behind than this while the buffer is idle means
/// the clocks drifted (or the sender restarted its timeline), not jitter.
const RESYNC_BEHIND: Duration = Duration::from_secs(1);

impl JitterBuffer {
    /// `target`: the playout delay after the first packet of a source or
    /// talkspurt arrives.
    pub fn new(target: Duration) -> JitterBuffer {
        let mut buffer = JitterBuffer {
            target,
            frame_samples: DEFAULT_FRAME_SAMPLES,
            max_packets: 0,
            next_tick: None,
            source: None,
            candidate: None,
            counters: JitterCounters::default(),
        };
        buffer.set_frame_samples(DEFAULT_FRAME_SAMPLES);
        buffer
    }

    /// Samples per frame at 48 kHz (the stream's frame duration), learnt by
    /// the caller from the first packet.
    pub fn set_frame_samples(&mut self, frame_samples: u32) {
        self.frame_samples = frame_samples.clamp(120, 5760);
        let frame = self.frame_duration();
        self.max_packets = (MAX_BUFFERED.as_nanos() / frame.as_nanos()).max(1) as usize;
    }

    pub fn frame_duration(&self) -> Duration {
        Duration::from_nanos(u64::from(self.frame_samples) * 1_000_000_000 / u64::from(CLOCK_RATE))
    }

    pub fn counters(&self) -> JitterCounters {
        self.counters
    }

    /// The SSRC being played, once a source is established.
    pub fn ssrc(&self) -> Option<u32> {
        self.source.as_ref().map(|s| s.ssrc)
    }

    /// When the next tick is due: call `pop` then.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_tick
    }

    pub fn push(
        &mut self,
        arrival: Instant,
        seq: u16,
        timestamp: u32,
        marker: bool,
        ssrc: u32,
        payload: &[u8],
    ) -> Arrival {
        if self.next_tick.is_none() {
            self.next_tick = Some(arrival + self.target);
        }
        match &self.source {
            Some(source) if source.ssrc == ssrc => {}
            Some(_) => return self.probation(arrival, seq, timestamp, ssrc, payload),
            None => {
                self.source = Some(Source::new(ssrc, seq, timestamp, arrival + self.target));
            }
        }
        let frame = i64::from(self.frame_samples);
        let target = self.target;
        let max_packets = self.max_packets;
        let source = self.source.as_mut().expect("source set above");
        let ext_seq = source.extend_seq(seq);
        let ext_ts = source.extend_ts(timestamp);

        if let Some(cursor) = source.cursor {
            let quiet = source.idle && source.packets.is_empty();
            let behind = cursor.slot - ext_ts;
            let ahead = ext_ts - cursor.slot;
            let far = |d: Duration| (d.as_nanos() * u128::from(CLOCK_RATE) / 1_000_000_000) as i64;
            // A talkspurt, or a timeline that moved while nothing played:
            // measure the playout delay afresh from this packet.
            if quiet && (marker || behind > far(RESYNC_BEHIND) || ahead > far(MAX_BUFFERED)) {
                source.cursor = None;
                source.play_from = arrival + target;
            } else if source.packets.contains_key(&ext_seq) {
                self.counters.duplicates += 1;
                return Arrival::Duplicate;
            } else if ext_seq < cursor.next_seq || ext_ts < cursor.slot - frame / 2 {
                self.counters.late += 1;
                return Arrival::Late;
            }
        } else if source.packets.contains_key(&ext_seq) {
            self.counters.duplicates += 1;
            return Arrival::Duplicate;
        }

        if ext_seq > source.highest_seq {
            source.highest_seq = ext_seq;
            source.highest_ts = ext_ts;
        }
        source.packets.insert(
            ext_seq,
            Buffered {
                timestamp: ext_ts,
                payload: payload.to_vec(),
            },
        );
        if source.packets.len() > max_packets {
            source.packets.pop_first();
            self.counters.overflow += 1;
            return Arrival::Overflow;
        }
        Arrival::Buffered
    }

    /// A packet from another SSRC: the second in sequence replaces the
    /// current source (the sender restarted, or another one took over).
    fn probation(
        &mut self,
        arrival: Instant,
        seq: u16,
        timestamp: u32,
        ssrc: u32,
        payload: &[u8],
    ) -> Arrival {
        let confirmed = matches!(
            &self.candidate,
            Some(c) if c.ssrc == ssrc && c.seq.wrapping_add(1) == seq
        );
        if !confirmed {
            self.candidate = Some(Candidate {
                ssrc,
                seq,
                timestamp,
                payload: payload.to_vec(),
            });
            return Arrival::Probation;
        }
        let first = self.candidate.take().expect("confirmed candidate");
        self.counters.ssrc_changes += 1;
        self.source = Some(Source::new(
            ssrc,
            first.seq,
            first.timestamp,
            arrival + self.target,
        ));
        self.push(
            arrival,
            first.seq,
            first.timestamp,
            true,
            ssrc,
            &first.payload,
        );
        self.push(arrival, seq, timestamp, false, ssrc, payload)
    }

    /// One frame per tick of the output clock; `None` until the next tick
    /// is due. A caller that fell behind gets the missed ticks one by one.
    pub fn pop(&mut self, now: Instant) -> Option<Playout> {
        let tick = self.next_tick?;
        if now < tick {
            return None;
        }
        self.next_tick = Some(tick + self.frame_duration());
        let frame = i64::from(self.frame_samples);
        let source = match self.source.as_mut() {
            Some(source) if tick >= source.play_from => source,
            _ => return Some(Playout::Idle),
        };
        let mut cursor = match source.cursor {
            Some(cursor) => cursor,
            None => match source.packets.first_key_value() {
                Some((&seq, p)) => Cursor {
                    next_seq: seq,
                    slot: p.timestamp,
                },
                None => return Some(Playout::Idle),
            },
        };
        let (out, late) = play_slot(&mut source.packets, &mut cursor, frame);
        source.cursor = Some(cursor);
        source.idle = out == Playout::Idle;
        self.counters.late += late;
        Some(out)
    }
}

/// Plays the slot at `cursor.slot` and advances the cursor by one frame.
/// Returns what to play and how many buffered packets turned out late.
fn play_slot(
    packets: &mut BTreeMap<i64, Buffered>,
    cursor: &mut Cursor,
    frame: i64,
) -> (Playout, u64) {
    let early_edge = cursor.slot - frame / 2;
    let late_edge = cursor.slot + frame / 2;
    let mut late = 0;
    // Packets behind the slot cannot play any more.
    while let Some(entry) = packets.first_entry() {
        if *entry.key() < cursor.next_seq || entry.get().timestamp < early_edge {
            entry.remove();
            late += 1;
        } else {
            break;
        }
    }
    let Some((&seq, first)) = packets.first_key_value() else {
        cursor.slot += frame;
        return (Playout::Idle, late);
    };
    if seq == cursor.next_seq {
        if first.timestamp < late_edge {
            let p = packets.remove(&seq).expect("first key");
            cursor.next_seq += 1;
            // Re-grid on the packet: a talkspurt need not start on our grid.
            cursor.slot = p.timestamp + frame;
            return (Playout::Packet(p.payload), late);
        }
        cursor.slot += frame;
        return (Playout::Idle, late);
    }
    // `cursor.next_seq` is missing. Packets are a frame apart within a
    // talkspurt, so its slot is estimated back from the next one here.
    let missing = seq - cursor.next_seq;
    let slots_left = ((first.timestamp - early_edge) / frame).max(0);
    if missing > slots_left {
        // Some missing packets' slots already went by as idle: skip them.
        cursor.next_seq = seq - slots_left;
    }
    let estimate = first.timestamp - (seq - cursor.next_seq) * frame;
    if estimate >= late_edge {
        cursor.slot += frame;
        return (Playout::Idle, late);
    }
    cursor.next_seq += 1;
    cursor.slot += frame;
    let next = (seq == cursor.next_seq).then(|| first.payload.clone());
    (Playout::Lost { next }, late)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSRC: u32 = 0xDEAD_BEEF;
    const TARGET: Duration = Duration::from_millis(60);
    const FRAME: Duration = Duration::from_millis(20);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Payload naming its sequence number, so outputs are easy to check.
    fn payload(seq: u16) -> Vec<u8> {
        seq.to_be_bytes().to_vec()
    }

    /// Pushes packet `seq` of a stream whose seq `base_seq` had timestamp
    /// `base_ts`, arriving at `at`.
    fn push(b: &mut JitterBuffer, at: Instant, seq: u16, ts: u32) -> Arrival {
        b.push(at, seq, ts, false, SSRC, &payload(seq))
    }

    /// Pops every tick up to `until`.
    fn drain(b: &mut JitterBuffer, until: Instant) -> Vec<Playout> {
        std::iter::from_fn(|| b.pop(until)).collect()
    }

    fn packets(seqs: &[u16]) -> Vec<Playout> {
        seqs.iter().map(|&s| Playout::Packet(payload(s))).collect()
    }

    #[test]
    fn nothing_plays_before_the_target_delay_after_the_first_packet() {
        let t0 = Instant::now();
        let mut b = JitterBuffer::new(TARGET);
        assert_eq!(b.pop(t0), None, "no clock before any packet");
        push(&mut b, t0, 10, 1000);
        assert_eq!(b.poll_timeout(), Some(t0 + TARGET));
        assert_eq!(b.pop(t0 + ms(59)), None);
        assert_eq!(b.pop(t0 + TARGET), Some(Playout::Packet(payload(10))));
        assert_eq!(b.poll_timeout(), Some(t0 + TARGET + FRAME));
    }

    #[test]
    fn reordered_packets_play_in_sequence_order() {
        let t0 = Instant::now();
        let mut b = JitterBuffer::new(TARGET);
        for (i, seq) in [100u16, 102, 101, 104, 103].into_iter().enumerate() {
            let ts = 5000 + u32::from(seq - 100) * 960;
            assert_eq!(
                push(&mut b, t0 + ms(i as u64 * 5), seq, ts),
                Arrival::Buffered
            );
        }
        let out = drain(&mut b, t0 + TARGET + 4 * FRAME);
        assert_eq!(out, packets(&[100, 101, 102, 103, 104]));
    }

    #[test]
    fn a_duplicate_is_counted_and_played_once() {
        let t0 = Instant::now();
        let mut b = JitterBuffer::new(TARGET);
        push(&mut b, t0, 1, 0);
        assert_eq!(push(&mut b, t0 + ms(1), 1, 0), Arrival::Duplicate);
        push(&mut b, t0 + ms(2), 2, 960);
        assert_eq!(drain(&mut b, t0 + TARGET + FRAME), packets(&[1, 2]));
        assert_eq!(b.counters().duplicates, 1);
    }

    #[test]
    fn a_packet_behind_the_playout_point_is_dropped_as_late() {
        let t0 = Instant::now();
        let mut b = JitterBuffer::new(TARGET);
        push(&mut b, t0, 1, 0);
        push(&mut b, t0 + ms(40), 3, 1920);
        let out = drain(&mut b, t0 + TARGET + FRAME);
        assert_eq!(out[0], Playout::Packet(payload(1)));
        assert_eq!(
            out[1],
            Playout::Lost {
                next: Some(payload(3))
            },
            "2 lost, 3 is here for FEC"
        );
        assert_eq!(push(&mut b, t0 + ms(85), 2, 960), Arrival::Late);
        assert_eq!(b.counters().late, 1);
        assert_eq!(drain(&mut b, t0 + TARGET + 2 * FRAME), packets(&[3]));
    }

    #[test]
    fn a_loss_with_the_next_packet_buffered_offers_it_for_fec() {
        let t0 = Instant::now();
        let mut b = JitterBuffer::new(TARGET);
        for seq in [0u16, 2, 3] {
            push(
                &mut b,
                t0 + ms(u64::from(seq) * 20),
                seq,
                u32::from(seq) * 960,
            );
        }
        let out = drain(&mut b, t0 + TARGET + 3 * FRAME);
        assert_eq!(
            out,
            vec![
                Playout::Packet(payload(0)),
                Playout::Lost {
                    next: Some(payload(2))
                },
                Playout::Packet(payload(2)),
                Playout::Packet(payload(3)),
            ]
        );
    }

    #[test]
    fn a_burst_loss_conceals_all_but_the_last_without_fec() {
        let t0 = Instant::now();
        let mut b = JitterBuffer::new(ms(100));
        push(&mut b, t0, 0, 0);
        push(&mut b, t0 + ms(80), 4, 4 * 960);
        let out = drain(&mut b, t0 + ms(100) + 4 * FRAME);
        assert_eq!(
            out,
            vec![
                Playout::Packet(payload(0)),
                Playout::Lost { next: None },
                Playout::Lost { next: None },
                Playout::Lost {
                    next: Some(payload(4))
                },
                Playout::Packet(payload(4)),
            ]
        );
    }

    #[test]
    fn sequence_numbers_wrap_at_65536() {
        let t0 = Instant::now();
        let mut b = JitterBuffer::new(TARGET);
        let seqs = [65534u16, 65535, 0, 1];
        for (i, &seq) in seqs.iter().enumerate() {
            let ts = (i as u32) * 960;
            assert_eq!(push(&mut b, t0 + ms(i as u64), seq, ts), Arrival::Buffered);
        }
        assert_eq!(drain(&mut b, t0 + TARGET + 3 * FRAME), packets(&seqs));
    }

    #[test]
    fn timestamps_wrap_at_2_pow_32() {
        let t0 = Instant::now();
        let mut b = JitterBuffer::new(TARGET);
        let start = u32::MAX - 959;
        for i in 0..3u16 {
            push(&mut b, t0, 7 + i, start.wrapping_add(u32::from(i) * 960));
        }
        assert_eq!(drain(&mut b, t0 + TARGET + 2 * FRAME), packets(&[7, 8, 9]));
    }

    #[test]
    fn a_timestamp_gap_plays_as_idle_slots() {
        // The sender was idle for 60 ms: seq continues, the timestamp jumps
        // by four frames instead of one.
        let t0 = Instant::now();
        let mut b = JitterBuffer::new(TARGET);
        push(&mut b, t0, 1, 0);
        push(&mut b, t0 + ms(20), 2, 960);
        push(&mut b, t0 + ms(100), 3, 5 * 960);
        let out = drain(&mut b, t0 + TARGET + 5 * FRAME);
        assert_eq!(
            out,
            vec![
                Playout::Packet(payload(1)),
                Playout::Packet(payload(2)),
                Playout::Idle,
                Playout::Idle,
                Playout::Idle,
                Playout::Packet(payload(3)),
            ]
        );
    }

    #[test]
    fn an_empty_buffer_plays_idle_and_the_clock_keeps_ticking() {
        let t0 = Instant::now();
        let mut b = JitterBuffer::new(TARGET);
        push(&mut b, t0, 1, 0);
        let out = drain(&mut b, t0 + TARGET + 9 * FRAME);
        assert_eq!(out.len(), 10, "one frame per tick, wall-clock timeline");
        assert_eq!(out[0], Playout::Packet(payload(1)));
        assert!(out[1..].iter().all(|p| *p == Playout::Idle));
    }

    #[test]
    fn a_marker_after_idle_restarts_playout_after_the_target_delay() {
        let t0 = Instant::now();
        let mut b = JitterBuffer::new(TARGET);
        push(&mut b, t0, 1, 0);
        drain(&mut b, t0 + ms(500));
        // A talkspurt whose timestamp says "now" on a sender clock that ran
        // 300 ms behind ours: it plays `TARGET` after it arrives anyway.
        let t1 = t0 + ms(1000);
        b.push(t1, 2, 48_000 * 7 / 10, true, SSRC, &payload(2));
        let out = drain(&mut b, t1 + TARGET - ms(1));
        assert!(out.iter().all(|p| *p == Playout::Idle), "{out:?}");
        let out = drain(&mut b, t1 + TARGET);
        assert_eq!(out, packets(&[2]));
    }

    #[test]
    fn a_new_ssrc_takes_over_after_two_packets_in_sequence() {
        let t0 = Instant::now();
        let mut b = JitterBuffer::new(TARGET);
        push(&mut b, t0, 1, 0);
        drain(&mut b, t0 + TARGET);
        let other = 0x0102_0304;
        let t1 = t0 + ms(200);
        assert_eq!(b.push(t1, 900, 77, true, other, b"a"), Arrival::Probation);
        assert_eq!(b.ssrc(), Some(SSRC), "one stray datagram changes nothing");
        assert_eq!(
            b.push(t1 + ms(20), 901, 77 + 960, false, other, b"b"),
            Arrival::Buffered
        );
        assert_eq!(b.ssrc(), Some(other));
        assert_eq!(b.counters().ssrc_changes, 1);
        let out = drain(&mut b, t1 + ms(20) + TARGET + FRAME);
        let played: Vec<_> = out.into_iter().filter(|p| *p != Playout::Idle).collect();
        assert_eq!(
            played,
            vec![
                Playout::Packet(b"a".to_vec()),
                Playout::Packet(b"b".to_vec())
            ]
        );
    }

    #[test]
    fn a_packet_before_the_first_one_still_plays_if_it_comes_in_time() {
        let t0 = Instant::now();
        let mut b = JitterBuffer::new(TARGET);
        push(&mut b, t0, 11, 960);
        assert_eq!(push(&mut b, t0 + ms(5), 10, 0), Arrival::Buffered);
        assert_eq!(drain(&mut b, t0 + TARGET + FRAME), packets(&[10, 11]));
    }

    #[test]
    fn memory_is_bounded_by_two_seconds_of_packets() {
        let t0 = Instant::now();
        let mut b = JitterBuffer::new(TARGET);
        for seq in 0..150u16 {
            push(&mut b, t0, seq, u32::from(seq) * 960);
        }
        assert_eq!(b.counters().overflow, 50);
        let out = drain(&mut b, t0 + TARGET);
        assert_eq!(out, packets(&[50]), "the oldest were dropped");
    }

    #[test]
    fn a_longer_frame_duration_slows_the_clock() {
        let t0 = Instant::now();
        let mut b = JitterBuffer::new(TARGET);
        b.set_frame_samples(2880);
        push(&mut b, t0, 1, 0);
        push(&mut b, t0, 2, 2880);
        assert_eq!(drain(&mut b, t0 + TARGET + ms(59)), packets(&[1]));
        assert_eq!(drain(&mut b, t0 + TARGET + ms(60)), packets(&[2]));
    }
}
