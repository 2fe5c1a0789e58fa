//! Opus encoder wrapper: owns the libopus settings loa uses — frame size,
//! bitrate, complexity, in-band FEC and expected loss — so the rest of the
//! code hands it exactly one frame of 48 kHz PCM and gets a payload back.
//!
//! Must not touch: RTP, sockets, decoding.

use opus::{Application, Bitrate, Channels as OpusChannels, Encoder};

use crate::config::{Audio, Channels};

/// Payload buffer size. One Opus frame is at most 1275 bytes (RFC 6716
/// §3.2.1); this also stays under a 1500-byte MTU with RTP/UDP/IP headers.
pub const MAX_PAYLOAD_BYTES: usize = 1_400;

/// One encoded Opus packet, held inline rather than in a `Vec`.
///
/// Packets are made on a program's worker thread and consumed by the
/// realtime pacer thread. A heap buffer would be freed by the pacer into the
/// worker's malloc arena, which takes that arena's lock; a worker preempted
/// while holding it (a busy machine) stalls the pacer — priority inversion,
/// measured as 5–22 ms late ticks while the machine compiled. Inline bytes
/// cross the preallocated frame channel by value and nothing is freed.
#[derive(Clone)]
pub struct Payload {
    len: u16,
    bytes: [u8; MAX_PAYLOAD_BYTES],
}

impl Payload {
    /// Encodes one frame of PCM into a new payload.
    pub fn encode(encoder: &mut OpusEncoder, pcm: &[f32]) -> Result<Payload, OpusError> {
        let mut payload = Payload {
            len: 0,
            bytes: [0; MAX_PAYLOAD_BYTES],
        };
        let len = encoder.encode(pcm, &mut payload.bytes)?;
        payload.len = len as u16;
        Ok(payload)
    }

    /// A payload holding a copy of `bytes` (already encoded Opus, or made-up
    /// bytes in tests); None if they do not fit.
    pub fn from_slice(bytes: &[u8]) -> Option<Payload> {
        let mut payload = Payload {
            len: u16::try_from(bytes.len()).ok().filter(|&n| usize::from(n) <= MAX_PAYLOAD_BYTES)?,
            bytes: [0; MAX_PAYLOAD_BYTES],
        };
        payload.bytes[..bytes.len()].copy_from_slice(bytes);
        Some(payload)
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Payload({} bytes)", self.len)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpusError {
    #[error("opus encoder setting {setting}: {source}")]
    Setting {
        setting: &'static str,
        #[source]
        source: opus::Error,
    },
    #[error("opus encode failed: {0}")]
    Encode(#[source] opus::Error),
}

pub struct OpusEncoder {
    encoder: Encoder,
    frame_samples: usize,
    channels: usize,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder")
            .field("frame_samples", &self.frame_samples)
            .field("channels", &self.channels)
            .finish()
    }
}

impl OpusEncoder {
    pub fn new(audio: &Audio) -> Result<OpusEncoder, OpusError> {
        let set = |setting: &'static str| move |source| OpusError::Setting { setting, source };
        let channels = match audio.channels {
            Channels::Mono => OpusChannels::Mono,
            Channels::Stereo => OpusChannels::Stereo,
        };
        // Application::Audio: loudspeakers play music and speech alike; VoIP
        // mode would favour intelligibility filters over fidelity.
        let mut encoder = Encoder::new(48_000, channels, Application::Audio).map_err(set("create"))?;
        encoder
            .set_bitrate(Bitrate::Bits(audio.bitrate_bps as i32))
            .map_err(set("bitrate"))?;
        encoder
            .set_complexity(i32::from(audio.complexity))
            .map_err(set("complexity"))?;
        // Constrained VBR keeps each packet near the nominal size, so a
        // loud passage cannot burst past what a thin 4G link was sized for.
        encoder.set_vbr(true).map_err(set("vbr"))?;
        encoder.set_vbr_constraint(true).map_err(set("vbr constraint"))?;
        encoder.set_inband_fec(audio.fec).map_err(set("inband fec"))?;
        encoder
            .set_packet_loss_perc(i32::from(audio.expected_loss_pct))
            .map_err(set("packet loss"))?;
        Ok(OpusEncoder {
            encoder,
            frame_samples: audio.frame.samples_48k(),
            channels: audio.channels.count(),
        })
    }

    /// Samples per channel in one frame (960 for 20 ms).
    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    /// Encodes exactly one frame of interleaved 48 kHz PCM into `out` and
    /// returns the payload length.
    pub fn encode(&mut self, pcm: &[f32], out: &mut [u8]) -> Result<usize, OpusError> {
        debug_assert_eq!(pcm.len(), self.frame_samples * self.channels, "exactly one frame");
        self.encoder.encode_float(pcm, out).map_err(OpusError::Encode)
    }
}

/// Cuts a stream of interleaved samples into exact encoder frames; the
/// last partial frame of an item is padded with silence.
#[derive(Debug)]
pub struct Framer {
    frame_len: usize,
    pcm: Vec<f32>,
}

impl Framer {
    /// `frame_len` = samples per channel × channels.
    pub fn new(frame_len: usize) -> Framer {
        Framer {
            frame_len,
            pcm: Vec::with_capacity(frame_len),
        }
    }

    /// Calls `frame` for each frame that `chunk` completes; the rest waits
    /// for the next chunk. Stops at the first error.
    pub fn push<E>(&mut self, mut chunk: &[f32], mut frame: impl FnMut(&[f32]) -> Result<(), E>) -> Result<(), E> {
        while !chunk.is_empty() {
            let take = (self.frame_len - self.pcm.len()).min(chunk.len());
            self.pcm.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if self.pcm.len() == self.frame_len {
                let result = frame(&self.pcm);
                self.pcm.clear();
                result?;
            }
        }
        Ok(())
    }

    /// Pads what is pending with silence and hands it out as a last frame
    /// (nothing if no sample is pending).
    pub fn finish<E>(&mut self, frame: impl FnOnce(&[f32]) -> Result<(), E>) -> Result<(), E> {
        if self.pcm.is_empty() {
            return Ok(());
        }
        self.pcm.resize(self.frame_len, 0.0);
        let result = frame(&self.pcm);
        self.pcm.clear();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FrameDuration;

    fn audio(frame: FrameDuration, channels: Channels) -> Audio {
        Audio {
            channels,
            frame,
            bitrate_bps: 32_000,
            complexity: 10,
            fec: true,
            expected_loss_pct: 10,
            payload_type: 96,
            loudness: Default::default(),
        }
    }

    #[test]
    fn framer_cuts_exact_frames_and_pads_the_last_one() {
        let mut framer = Framer::new(4);
        let mut frames: Vec<Vec<f32>> = Vec::new();
        for chunk in [&[1.0, 2.0, 3.0][..], &[4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]] {
            framer
                .push(chunk, |f| {
                    frames.push(f.to_vec());
                    Ok::<(), ()>(())
                })
                .unwrap();
        }
        framer.finish(|f| {
            frames.push(f.to_vec());
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(
            frames,
            [vec![1.0, 2.0, 3.0, 4.0], vec![5.0, 6.0, 7.0, 8.0], vec![9.0, 10.0, 0.0, 0.0]]
        );
        // Nothing pending: no extra frame.
        assert_eq!(framer.finish(|_| Err(())), Ok(()));
    }

    #[test]
    fn frame_samples_follow_the_frame_duration() {
        for (frame, samples) in [
            (FrameDuration::Ms10, 480),
            (FrameDuration::Ms20, 960),
            (FrameDuration::Ms40, 1920),
            (FrameDuration::Ms60, 2880),
        ] {
            let enc = OpusEncoder::new(&audio(frame, Channels::Mono)).unwrap();
            assert_eq!(enc.frame_samples(), samples);
        }
    }

    #[test]
    fn a_tone_survives_encode_and_decode() {
        let mut enc = OpusEncoder::new(&audio(FrameDuration::Ms20, Channels::Stereo)).unwrap();
        let mut dec = opus::Decoder::new(48_000, OpusChannels::Stereo).unwrap();
        let mut payload = [0u8; MAX_PAYLOAD_BYTES];
        let mut decoded = vec![0f32; 960 * 2];
        let mut out = Vec::new();
        for n in 0..50 {
            let pcm: Vec<f32> = (0..960)
                .flat_map(|i| {
                    let t = (n * 960 + i) as f32 / 48_000.0;
                    let v = 0.5 * (2.0 * std::f32::consts::PI * 1000.0 * t).sin();
                    [v, v]
                })
                .collect();
            let len = enc.encode(&pcm, &mut payload).unwrap();
            assert!(len > 0 && len < 400, "constrained VBR keeps 32 kbit/s frames small: {len}");
            let got = dec.decode_float(&payload[..len], &mut decoded, false).unwrap();
            assert_eq!(got, 960);
            out.extend(decoded.chunks(2).map(|c| c[0]));
        }
        // After the codec's start-up, the output is a 1 kHz tone: count
        // zero crossings over the last half second (1000 Hz → 1000 crossings).
        let tail = &out[24_000..];
        let crossings = tail.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
        assert!((980..=1020).contains(&crossings), "{crossings} crossings");
        let rms = (tail.iter().map(|v| v * v).sum::<f32>() / tail.len() as f32).sqrt();
        assert!((rms - 0.354).abs() < 0.06, "level kept: rms {rms}");
    }
}
