//! Opus decoding for the speaker: one call per playout tick, returning
//! exactly one frame of 48 kHz PCM — decoded, recovered from the next
//! packet's in-band FEC (RFC 6716 §2.1.7 LBRR), concealed (PLC), or silence.
//!
//! Owns: the decoder state and the frame size learnt from the stream. Must
//! not touch: sockets, clocks, output files.

use opus::{Channels, Decoder};

/// Longest Opus packet duration: 120 ms at 48 kHz (RFC 6716 §3.2.5).
const MAX_FRAME_SAMPLES: usize = 5760;

/// How a frame was produced, for the stats line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Produced {
    Decoded,
    /// Rebuilt from the next packet's FEC data.
    Recovered,
    /// Packet loss concealment: no FEC was available.
    Concealed,
    /// A payload the decoder refused; concealed instead.
    Corrupt,
    Silence,
}

#[derive(thiserror::Error, Debug)]
#[error("cannot create the opus decoder: {0}")]
pub struct DecoderError(#[source] opus::Error);

pub struct FrameDecoder {
    decoder: Decoder,
    channels: usize,
    /// Samples per channel of one frame; from the first decoded packet.
    frame_samples: usize,
    pcm: Vec<f32>,
}

impl FrameDecoder {
    pub fn new(channels: usize, frame_samples: usize) -> Result<FrameDecoder, DecoderError> {
        let layout = if channels == 2 {
            Channels::Stereo
        } else {
            Channels::Mono
        };
        Ok(FrameDecoder {
            decoder: Decoder::new(48_000, layout).map_err(DecoderError)?,
            channels: if channels == 2 { 2 } else { 1 },
            frame_samples,
            pcm: vec![0.0; MAX_FRAME_SAMPLES * 2],
        })
    }

    pub fn set_frame_samples(&mut self, frame_samples: usize) {
        self.frame_samples = frame_samples.clamp(120, MAX_FRAME_SAMPLES);
    }

    /// Decodes a packet; a payload the decoder refuses is concealed.
    pub fn packet(&mut self, payload: &[u8]) -> (Produced, &[f32]) {
        match self.decoder.decode_float(payload, &mut self.pcm, false) {
            Ok(n) if n > 0 => (Produced::Decoded, &self.pcm[..n * self.channels]),
            _ => {
                let (_, pcm) = self.conceal();
                (Produced::Corrupt, pcm)
            }
        }
    }

    /// Recovers a lost frame from the FEC data in `next` when it carries
    /// some, else conceals it. The output length asks libopus for exactly
    /// one frame, which is what FEC decoding needs.
    pub fn lost(&mut self, next: Option<&[u8]>) -> (Produced, &[f32]) {
        let Some(next) = next.filter(|p| has_lbrr(p)) else {
            return self.conceal();
        };
        let len = self.frame_samples * self.channels;
        match self.decoder.decode_float(next, &mut self.pcm[..len], true) {
            Ok(n) if n > 0 => (Produced::Recovered, &self.pcm[..n * self.channels]),
            _ => self.conceal(),
        }
    }

    fn conceal(&mut self) -> (Produced, &[f32]) {
        let len = self.frame_samples * self.channels;
        match self.decoder.decode_float(&[], &mut self.pcm[..len], false) {
            Ok(n) if n > 0 => (Produced::Concealed, &self.pcm[..n * self.channels]),
            _ => self.silence(),
        }
    }

    pub fn silence(&mut self) -> (Produced, &[f32]) {
        let len = self.frame_samples * self.channels;
        self.pcm[..len].fill(0.0);
        (Produced::Silence, &self.pcm[..len])
    }
}

/// Samples per channel in a packet at 48 kHz, or `None` if it is not Opus.
pub fn packet_samples(payload: &[u8]) -> Option<usize> {
    opus::packet::get_nb_samples(payload, 48_000)
        .ok()
        .filter(|&n| (120..=MAX_FRAME_SAMPLES).contains(&n))
}

/// Whether a packet carries LBRR (FEC) data for the previous frame, read as
/// libopus 1.5's `opus_packet_has_lbrr` does: only SILK and hybrid frames
/// carry it, and its flag follows the per-frame VAD flags in the first
/// byte of the first frame (RFC 6716 §4.2.3–4.2.4).
pub fn has_lbrr(packet: &[u8]) -> bool {
    let Some(&toc) = packet.first() else {
        return false;
    };
    // Config 16–31 is CELT-only (RFC 6716 §3.1).
    if toc & 0x80 != 0 {
        return false;
    }
    let Ok(parsed) = opus::packet::parse(packet) else {
        return false;
    };
    let Some(first) = parsed.frames.first().and_then(|f| f.first()) else {
        return false;
    };
    // SILK frames per Opus frame: one for 10/20 ms, two for 40, three for 60.
    let frame_samples = opus::packet::get_samples_per_frame(packet, 48_000).unwrap_or(960);
    let silk_frames = (frame_samples / 960).max(1) as u32;
    let stereo = toc & 0x04 != 0;
    let mid = (first >> (7 - silk_frames)) & 1 == 1;
    let side = stereo && (first >> (6 - 2 * silk_frames)) & 1 == 1;
    mid || side
}

#[cfg(test)]
mod tests {
    use super::*;
    use opus::{Application, Bitrate, Encoder};

    /// 20 ms frames of a 440 Hz tone through an encoder with FEC on.
    fn encoded(frames: usize, fec: bool) -> Vec<Vec<u8>> {
        let mut enc = Encoder::new(48_000, Channels::Mono, Application::Audio).unwrap();
        enc.set_bitrate(Bitrate::Bits(32_000)).unwrap();
        enc.set_inband_fec(fec).unwrap();
        enc.set_packet_loss_perc(10).unwrap();
        let mut out = Vec::new();
        for f in 0..frames {
            let pcm: Vec<f32> = (0..960)
                .map(|i| {
                    let t = (f * 960 + i) as f32 / 48_000.0;
                    (2.0 * std::f32::consts::PI * 440.0 * t).sin() * 0.5
                })
                .collect();
            let mut buf = vec![0u8; 1500];
            let n = enc.encode_float(&pcm, &mut buf).unwrap();
            buf.truncate(n);
            out.push(buf);
        }
        out
    }

    #[test]
    fn a_packet_decodes_to_one_frame() {
        let packets = encoded(3, true);
        assert_eq!(packet_samples(&packets[0]), Some(960));
        let mut d = FrameDecoder::new(1, 960).unwrap();
        let (how, pcm) = d.packet(&packets[0]);
        assert_eq!((how, pcm.len()), (Produced::Decoded, 960));
    }

    #[test]
    fn a_lost_frame_is_recovered_from_the_next_packets_fec() {
        let packets = encoded(20, true);
        assert!(
            packets[5..].iter().any(|p| has_lbrr(p)),
            "encoder with FEC writes LBRR"
        );
        let with_fec = packets.iter().rposition(|p| has_lbrr(p)).unwrap();
        let mut d = FrameDecoder::new(1, 960).unwrap();
        for p in &packets[..with_fec - 1] {
            d.packet(p);
        }
        let (how, pcm) = d.lost(Some(&packets[with_fec]));
        assert_eq!((how, pcm.len()), (Produced::Recovered, 960));
        assert!(pcm.iter().any(|&v| v.abs() > 0.05), "the tone comes back");
    }

    #[test]
    fn without_fec_a_lost_frame_is_concealed() {
        let packets = encoded(10, false);
        assert!(packets.iter().all(|p| !has_lbrr(p)));
        let mut d = FrameDecoder::new(1, 960).unwrap();
        for p in &packets[..5] {
            d.packet(p);
        }
        assert_eq!(d.lost(Some(&packets[6])).0, Produced::Concealed);
        let (how, pcm) = d.lost(None);
        assert_eq!((how, pcm.len()), (Produced::Concealed, 960));
    }

    #[test]
    fn garbage_is_concealed_not_fatal() {
        let mut d = FrameDecoder::new(2, 960).unwrap();
        let (how, pcm) = d.packet(&[0xFF, 0xFF, 0xFF]);
        assert_eq!(how, Produced::Corrupt);
        assert_eq!(pcm.len(), 1920);
        assert!(!has_lbrr(&[]));
        assert!(!has_lbrr(&[0x00]));
    }
}
