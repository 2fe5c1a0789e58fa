//! Decoding with symphonia, one packet at a time, into 48 kHz interleaved
//! `f32` in the configured channel count.
//!
//! Errors follow what the caller does with them: anything that stops a file
//! from starting is returned by `open` (the item is skipped); a damaged
//! packet in the middle is skipped with a warning (decoding continues after
//! the damage); a file that ends early is reported once after the audio that
//! was there (librespot's and Symphonia's own players do the same).

use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use super::mix::{interleave, mix_planar};
use super::resample::Resampler48k;
use super::OUTPUT_RATE;
use crate::config::Channels;

mod seek;

/// Why a file cannot be played (or stopped early), in words an operator
/// understands. The path is a field; messages do not repeat it because the
/// caller prints `path: message`.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("file not found")]
    NotFound { path: PathBuf },
    #[error("permission denied: the user loa runs as cannot read this file (check its owner and mode)")]
    PermissionDenied { path: PathBuf },
    #[error("cannot read file: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("file is empty")]
    Empty { path: PathBuf },
    #[error("not a recognised audio format")]
    NotAudio { path: PathBuf },
    #[error("no audio track in the file")]
    NoAudioTrack { path: PathBuf },
    #[error("the file holds no audio (0 samples)")]
    NoSamples { path: PathBuf },
    #[error("unsupported codec {codec}")]
    UnsupportedCodec { path: PathBuf, codec: String },
    #[error("corrupt audio data ({detail})")]
    Corrupt { path: PathBuf, detail: String },
    #[error("file ends unexpectedly (truncated)")]
    Truncated { path: PathBuf },
    #[error("sample rate {rate} Hz is not supported (8000–192000)")]
    UnsupportedRate { path: PathBuf, rate: u32 },
}

/// Consecutive undecodable packets after which a file counts as corrupt
/// rather than damaged in places.
const MAX_CONSECUTIVE_BAD_PACKETS: u32 = 100;

/// Packets `open` may try before it gives up finding decodable audio.
const OPEN_PROBE_PACKETS: u32 = 50;

/// Source frames decoded and dropped before a start point in a lossy file
/// (`open_at`): a lossy decoder carries state from one packet into the next
/// (MDCT overlap, the MP3 synthesis filterbank), so after a seek its first
/// packets differ from a decode from the start. 8192 frames cover two of the
/// longest Vorbis blocks and several MP3/AAC frames, at ~1 ms of decoding.
/// Lossless frames (PCM, FLAC, ALAC) decode independently: no preroll.
const LOSSY_PREROLL_FRAMES: u64 = 8192;

pub struct Source {
    path: PathBuf,
    format: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    target: Channels,
    resampler: Option<Resampler48k>,
    /// Decoded source-rate samples, source channel layout, one plane per
    /// channel (as the decoder holds them).
    decoded: Vec<Vec<f32>>,
    /// Mixed to the target layout, source rate, planar.
    mixed: Vec<Vec<f32>>,
    /// Ready output (48 kHz, target layout) handed out by `next_chunk`.
    out: Vec<f32>,
    /// Output prepared by `open` that `next_chunk` must hand out first.
    primed: bool,
    duration: Option<Duration>,
    expected_frames: Option<u64>,
    /// Fraction of `expected_frames` that may be missing at the end without
    /// calling the file truncated.
    shortfall_tolerance: f64,
    decoded_frames: u64,
    /// Output frames handed out so far, plus where `open_at` started.
    produced_frames: u64,
    bad_packets: u32,
    /// Damaged packets skipped over the whole file.
    skipped_packets: u32,
    state: State,
    /// A second handle on the opened file for the content hash, so the hash
    /// is of what plays even if the path is deleted or replaced meanwhile.
    hash_handle: Option<File>,
    /// Source sample rate from the codec parameters (None: unknown).
    source_rate: Option<u32>,
    /// Whether timestamps count source frames (time base 1/rate), which
    /// seeking to an exact frame needs.
    frame_timestamps: bool,
    lossless: bool,
    /// Timestamp of the first sample a decode from the start hands out:
    /// output frame `i` of the source rate is at `origin_ts + i`.
    origin_ts: Option<i64>,
    /// After a seek: decoded samples before this timestamp are dropped.
    skip_before_ts: Option<i64>,
    /// Output frames (48 kHz) still to drop before handing out audio.
    skip_output: u64,
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Decoding,
    /// Input ended; the truncation check (if any) is still to report.
    Flushed { truncated: bool },
    Done,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source").field("path", &self.path).field("duration", &self.duration).finish()
    }
}

impl Source {
    /// Opens, probes and decodes the first audio, so files that are missing,
    /// empty, not audio or corrupt from the start fail here.
    pub fn open(path: &Path, target: Channels) -> Result<Source, MediaError> {
        let p = || path.to_path_buf();
        let file = File::open(path).map_err(|e| io_error(path, &e))?;
        let len = file.metadata().map_err(|e| io_error(path, &e))?.len();
        if len == 0 {
            return Err(MediaError::Empty { path: p() });
        }
        // Shares the open file (not the path); `try_clone` shares the read
        // offset too, so the hash must read it positionally (`sha256_open`).
        let hash_handle = file.try_clone().ok();
        let mss = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let format = symphonia::default::get_probe()
            .probe(&hint, mss, FormatOptions::default(), MetadataOptions::default())
            .map_err(|e| match e {
                SymError::IoError(ref io) if io.kind() != ErrorKind::UnexpectedEof => io_error(path, io),
                _ => MediaError::NotAudio { path: p() },
            })?;
        let track = format
            .default_track(TrackType::Audio)
            .ok_or_else(|| MediaError::NoAudioTrack { path: p() })?;
        let track_id = track.id;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|c| c.audio())
            .ok_or_else(|| MediaError::NoAudioTrack { path: p() })?
            .clone();
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(&params, &AudioDecoderOptions::default())
            .map_err(|e| MediaError::UnsupportedCodec {
                path: p(),
                codec: match e {
                    // The codec is known but this variant is not (e.g. AAC
                    // with more than two channels): say which part.
                    SymError::Unsupported(what) if !what.contains("unsupported audio codec") => format!("{} ({what})", codec_name(&params.codec.to_string())),
                    _ => codec_name(&params.codec.to_string()),
                },
            })?;
        // Lossless headers state the exact length; lossy readers take it from
        // a Xing/LAME header or estimate it from the file size, so only a
        // large shortfall there means the file was cut.
        let expected_frames = track.num_frames;
        let shortfall_tolerance = if is_lossless(&params.codec.to_string()) { 0.02 } else { 0.10 };
        let duration = match (track.num_frames, params.sample_rate) {
            (Some(frames), Some(rate)) if rate > 0 => Some(Duration::from_secs_f64(frames as f64 / rate as f64)),
            _ => None,
        };
        let source_rate = params.sample_rate.filter(|&r| r > 0);
        let frame_timestamps = match (track.time_base, source_rate) {
            (Some(tb), Some(rate)) => tb.numer.get() == 1 && tb.denom.get() == rate,
            _ => false,
        };
        let lossless = is_lossless(&params.codec.to_string());
        let mut source = Source {
            path: p(),
            format,
            decoder,
            track_id,
            target,
            resampler: None,
            decoded: Vec::new(),
            mixed: Vec::new(),
            out: Vec::new(),
            primed: false,
            duration,
            expected_frames,
            shortfall_tolerance,
            decoded_frames: 0,
            produced_frames: 0,
            bad_packets: 0,
            skipped_packets: 0,
            state: State::Decoding,
            hash_handle,
            source_rate,
            frame_timestamps,
            lossless,
            origin_ts: None,
            skip_before_ts: None,
            skip_output: 0,
        };
        source.prime()?;
        Ok(source)
    }

    /// Decodes until the first audio comes out, so `open` fails for files
    /// that have no decodable audio at all.
    fn prime(&mut self) -> Result<(), MediaError> {
        for _ in 0..OPEN_PROBE_PACKETS * 4 {
            let more = self.decode_more()?;
            if !self.out.is_empty() {
                self.primed = true;
                return Ok(());
            }
            if !more {
                // Nothing came out and nothing was damaged: a valid file
                // with no samples (a header-only WAV), not a corrupt one.
                return Err(if self.bad_packets == 0 {
                    MediaError::NoSamples {
                        path: self.path.clone(),
                    }
                } else {
                    self.corrupt("no decodable audio")
                });
            }
        }
        Err(self.corrupt("no audio in the first packets"))
    }

    fn corrupt(&self, detail: &str) -> MediaError {
        MediaError::Corrupt {
            path: self.path.clone(),
            detail: detail.into(),
        }
    }

    /// Total duration if the container knows it.
    pub fn duration(&self) -> Option<Duration> {
        self.duration
    }

    /// Position of the next output sample in the item (output handed out
    /// so far, from where `open_at` started).
    pub fn position(&self) -> Duration {
        Duration::from_secs_f64(self.produced_frames as f64 / OUTPUT_RATE as f64)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The opened file for hashing (once; read it only with positional
    /// reads, as `media::hash::sha256_open` does). None if the descriptor
    /// could not be duplicated; the caller then hashes by path.
    pub fn hash_handle(&self) -> Option<&File> {
        self.hash_handle.as_ref()
    }

    /// Takes the hash handle (see `hash_handle`).
    pub fn take_hash_handle(&mut self) -> Option<File> {
        self.hash_handle.take()
    }

    /// Next chunk of 48 kHz interleaved samples in the target channel count;
    /// `Ok(None)` at the end. An error after audio was produced (truncated
    /// file, damage beyond repair) is returned once; then the source ends.
    pub fn next_chunk(&mut self) -> Result<Option<&[f32]>, MediaError> {
        if self.primed {
            self.primed = false;
            return Ok(Some(self.hand_out()));
        }
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Flushed { truncated } => {
                    self.state = State::Done;
                    if truncated {
                        return Err(MediaError::Truncated { path: self.path.clone() });
                    }
                    return Ok(None);
                }
                State::Decoding => {}
            }
            match self.decode_more() {
                Ok(_) if !self.out.is_empty() => return Ok(Some(self.hand_out())),
                Ok(_) => continue,
                Err(e) => {
                    self.state = State::Done;
                    return Err(e);
                }
            }
        }
    }

    fn hand_out(&mut self) -> &[f32] {
        self.produced_frames += (self.out.len() / self.target.count()) as u64;
        // `out` is cleared at the start of the next decode, so the slice
        // stays valid for the caller until then.
        &self.out
    }

    /// `decode_next`, less the output a start point still skips.
    fn decode_more(&mut self) -> Result<bool, MediaError> {
        let more = self.decode_next()?;
        self.drop_skipped_output();
        Ok(more)
    }

    fn drop_skipped_output(&mut self) {
        if self.skip_output == 0 {
            return;
        }
        let channels = self.target.count();
        let frames = ((self.out.len() / channels) as u64).min(self.skip_output);
        self.out.drain(..frames as usize * channels);
        self.skip_output -= frames;
    }

    /// Reads and decodes one packet into `self.out` (possibly empty).
    /// Returns false once the input has ended (after flushing).
    fn decode_next(&mut self) -> Result<bool, MediaError> {
        self.out.clear();
        let packet = match self.format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) | Err(SymError::ResetRequired) => return self.end_of_input(false),
            Err(SymError::IoError(e)) if e.kind() == ErrorKind::UnexpectedEof => return self.end_of_input(true),
            Err(SymError::IoError(e)) => return Err(io_error(&self.path, &e)),
            Err(SymError::DecodeError(detail)) => {
                // A damaged container page: count it and resynchronise.
                return self.bad_packet(detail).map(|_| true);
            }
            Err(e) => return Err(self.corrupt(&e.to_string())),
        };
        if packet.track_id != self.track_id {
            return Ok(true);
        }
        match self.decoder.decode(&packet) {
            Ok(audio) => {
                self.bad_packets = 0;
                let rate = audio.spec().rate();
                let frames = audio.frames();
                if audio.num_planes() == 0 || frames == 0 {
                    return Ok(true);
                }
                audio.copy_to_vecs_planar(&mut self.decoded);
                // Encoder delay and padding (gapless info from LAME headers,
                // MP4 edit lists): the reader marks them on the packet, in
                // the audio track's time base of one tick per frame.
                let mut start = (packet.trim_start.get() as usize).min(frames);
                let end = frames - (packet.trim_end.get() as usize).min(frames - start);
                let pts = packet.pts.get();
                if self.origin_ts.is_none() && end > start {
                    self.origin_ts = Some(pts + start as i64);
                }
                if let Some(first) = self.skip_before_ts {
                    // Preroll after a seek: decoded for the decoder's state,
                    // not played.
                    let first_index = first.saturating_sub(pts);
                    if first_index >= end as i64 {
                        return Ok(true);
                    }
                    start = start.max(first_index.max(0) as usize);
                    self.skip_before_ts = None;
                }
                if start > 0 || end < frames {
                    for plane in &mut self.decoded {
                        plane.truncate(end);
                        plane.drain(..start);
                    }
                }
                self.decoded_frames += (end - start) as u64;
                if end == start {
                    return Ok(true);
                }
                self.convert_rate(rate)?;
                Ok(true)
            }
            Err(SymError::DecodeError(detail)) => self.bad_packet(detail).map(|_| true),
            Err(SymError::IoError(e)) if e.kind() == ErrorKind::UnexpectedEof => self.end_of_input(true),
            Err(e) => Err(self.corrupt(&e.to_string())),
        }
    }

    fn bad_packet(&mut self, detail: &str) -> Result<(), MediaError> {
        self.bad_packets += 1;
        self.skipped_packets += 1;
        if self.bad_packets >= MAX_CONSECUTIVE_BAD_PACKETS {
            return Err(self.corrupt(detail));
        }
        tracing::warn!(file = %self.path.display(), "skipping a damaged packet: {detail}");
        Ok(())
    }

    /// Mixes `decoded` (source rate and layout, planar) to the target
    /// layout and resamples it into `out` (48 kHz, interleaved).
    fn convert_rate(&mut self, rate: u32) -> Result<(), MediaError> {
        // Same layout: resample straight from the decoded planes.
        let same_layout = self.decoded.len() == self.target.count();
        if !same_layout {
            mix_planar(&self.decoded, self.target, &mut self.mixed);
        }
        let planes = if same_layout { &self.decoded } else { &self.mixed };
        if rate == OUTPUT_RATE && self.resampler.is_none() {
            interleave(planes, 0..planes[0].len(), &mut self.out);
            return Ok(());
        }
        if !(8_000..=192_000).contains(&rate) {
            return Err(MediaError::UnsupportedRate {
                path: self.path.clone(),
                rate,
            });
        }
        if self.resampler.is_none() {
            let resampler = Resampler48k::new(rate, self.target.count()).map_err(|e| self.corrupt(&e.to_string()))?;
            self.resampler = Some(resampler);
        }
        let resampler = self.resampler.as_mut().expect("just set");
        resampler
            .push(planes, &mut self.out)
            .map_err(|e| MediaError::Corrupt {
                path: self.path.clone(),
                detail: e.to_string(),
            })
    }

    /// Input is over: flush the resampler and decide whether the file was
    /// cut short (an I/O end-of-file mid-packet, or fewer frames than the
    /// header promised).
    fn end_of_input(&mut self, eof_error: bool) -> Result<bool, MediaError> {
        if let Some(resampler) = self.resampler.as_mut() {
            resampler.finish(&mut self.out).map_err(|e| MediaError::Corrupt {
                path: self.path.clone(),
                detail: e.to_string(),
            })?;
        }
        // A header that promised more than came out means the file was cut,
        // unless damaged packets we skipped explain the difference.
        let short = self.skipped_packets == 0
            && self
                .expected_frames
                .is_some_and(|expected| (self.decoded_frames as f64) < expected as f64 * (1.0 - self.shortfall_tolerance));
        self.state = State::Flushed {
            truncated: eof_error || short,
        };
        Ok(false)
    }
}

/// Symphonia's codec ids print as hex: well-known ids in ranges by family
/// (PCM 0x100–0x1ff, lossy 0x1000–0x1fff, lossless 0x2000–0x2fff), others as
/// a FourCC with the top bit set.
fn codec_id(display: &str) -> u32 {
    u32::from_str_radix(display.trim_start_matches("0x"), 16).unwrap_or(0)
}

fn is_lossless(display: &str) -> bool {
    let id = codec_id(display);
    (0x100..0x200).contains(&id) || (0x2000..0x3000).contains(&id)
}

/// The codec's common name for messages.
fn codec_name(display: &str) -> String {
    const NAMES: &[(u32, &str)] = &[
        (0x1000, "Vorbis"), (0x1001, "Opus"), (0x1002, "Speex"), (0x1003, "Musepack"),
        (0x1004, "MP1"), (0x1005, "MP2"), (0x1006, "MP3"), (0x1007, "AAC"), (0x1008, "AC-3"),
        (0x1009, "E-AC-3"), (0x100a, "AC-4"), (0x100b, "DTS"), (0x1010, "WMA"),
        (0x2000, "FLAC"), (0x2001, "WavPack"), (0x2002, "Monkey's Audio"), (0x2003, "ALAC"),
        (0x2004, "TTA"), (0x2006, "TrueHD"),
    ];
    let id = codec_id(display);
    if let Some((_, name)) = NAMES.iter().find(|(n, _)| *n == id) {
        return (*name).to_string();
    }
    if id & 0x8000_0000 != 0 {
        let cc = (id & 0x7FFF_FFFF).to_be_bytes();
        if cc.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            return String::from_utf8_lossy(&cc).trim().to_string();
        }
    }
    format!("(symphonia id {display})")
}

fn io_error(path: &Path, e: &std::io::Error) -> MediaError {
    let path = path.to_path_buf();
    match e.kind() {
        ErrorKind::NotFound => MediaError::NotFound { path },
        ErrorKind::PermissionDenied => MediaError::PermissionDenied { path },
        _ => MediaError::Io {
            path,
            reason: e.to_string().to_lowercase(),
        },
    }
}
