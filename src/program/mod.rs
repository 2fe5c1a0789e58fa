//! Programs: owns turning an ordered list of media items into one stream of
//! encoded Opus frames, on a blocking worker thread, into a bounded queue the
//! pacer reads without waiting.
//!
//! One program is encoded once, whatever number of zones play it (the pacer
//! fans each frame out). Item boundaries are frame-aligned: the last partial
//! frame of an item is padded with silence, so every item starts on a fresh
//! frame (positions and history stay exact) and the stream stays continuous.
//!
//! Must not touch: sockets, RTP state, clocks (the pacer owns time).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::Audio;
use crate::media::loudness::{self, Measured};
use crate::live::LiveInput;
use crate::media::{MediaError, PcmConverter, Source};
use crate::media::opus::{Framer, OpusEncoder, OpusError, Payload};

/// One encoded frame, tagged with where it came from.
#[derive(Debug)]
pub struct Frame {
    pub payload: Payload,
    /// Index of the item in the program's item list.
    pub item: usize,
    /// Position of the frame's first sample within its item.
    pub position: Duration,
}

/// What happens to a program's items, in order, from the worker's side.
/// Sent on an unbounded channel: the worker must never block on a slow reader.
#[derive(Debug)]
pub enum ProgramEvent {
    /// The item opened and its first frame is queued.
    ItemStarted {
        item: usize,
        path: PathBuf,
        duration: Option<Duration>,
        /// The opened file, for the content hash (positional reads only:
        /// it shares the decoder's offset). None: hash by path.
        content: Option<std::fs::File>,
        /// The content hash when the worker already computed it (loudness
        /// lookup); then `content` need not be hashed again.
        sha256: Option<String>,
        /// Loudness gain applied to the whole item, dB (None: not normalised).
        gain_db: Option<f64>,
    },
    /// An item's loudness was measured (a cache miss): to be persisted.
    Measured {
        sha256: String,
        path: PathBuf,
        measured: Measured,
    },
    /// The item could not be played at all; nothing of it was queued.
    ItemSkipped {
        item: usize,
        path: PathBuf,
        error: ItemError,
    },
    /// All of the item's frames are queued. `error` is set when decoding
    /// stopped early (e.g. a truncated file): what was decoded still plays.
    ItemEncoded {
        item: usize,
        path: PathBuf,
        encoded: Duration,
        error: Option<ItemError>,
        /// SHA-256 of what a live item played (the PCM bytes as the client
        /// sent them, less any dropped backlog); None for files.
        sha256: Option<String>,
    },
    /// The queue holds the prefill (or the program ended before it did):
    /// the pacer may start taking frames without an immediate underrun.
    Ready,
    /// Every item was handled; the frame queue closes after the last frame.
    Finished { played: usize, skipped: usize },
}

#[derive(Debug, thiserror::Error)]
pub enum ItemError {
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error("opus encoder failed: {0}")]
    Encode(#[from] OpusError),
    #[error("live input: {0}")]
    Live(String),
}

/// Handle to a running program worker.
pub struct ProgramHandle {
    /// Frames in play order. Closed (disconnected) after the last frame.
    pub frames: Receiver<Frame>,
    pub events: Receiver<ProgramEvent>,
    cancel: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
}

impl ProgramHandle {
    /// Asks the worker to stop after its current frame.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Waits for the worker thread to end.
    pub fn join(self) {
        self.into_parts().2.join();
    }

    /// Splits the handle so the frame queue can go to the pacer while the
    /// caller keeps the events and control.
    pub fn into_parts(self) -> (Receiver<Frame>, Receiver<ProgramEvent>, ProgramControl) {
        let control = ProgramControl {
            cancel: self.cancel,
            join: self.join,
        };
        (self.frames, self.events, control)
    }
}

/// Stops and joins a program worker.
pub struct ProgramControl {
    cancel: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
}

impl ProgramControl {
    /// Asks the worker to stop after its current frame.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Waits for the worker thread to end. A worker blocked on a full queue
    /// wakes when the queue's receiver is dropped.
    pub fn join(mut self) {
        if let Some(join) = self.join.take() {
            let _ = join.join();
        }
    }
}

pub struct ProgramSpec {
    pub items: Vec<PathBuf>,
    pub audio: Audio,
    /// Frames the queue holds: the encode lookahead (DESIGN: ~1 s).
    pub queue_frames: usize,
    /// Frames queued before `Ready` (at most `queue_frames`). Small for a
    /// quick start (an emergency must be on air within 100 ms); the worker
    /// keeps filling the lookahead while the first frames play.
    pub prefill_frames: usize,
    /// Start again from the first item after the last, until cancelled.
    /// Item numbers keep counting up across passes (`item % items.len()` is
    /// the index in `items`).
    pub looped: bool,
    /// Loudness measurements by content hash; None: no normalisation
    /// whatever `audio.loudness` says.
    pub loudness: Option<loudness::Cache>,
    /// How much of a file the cache does not know is measured before its
    /// first frame (the rest beside playback). Short for emergencies: the
    /// measuring delays going on air.
    pub first_play_limit: Duration,
    /// The PCM stream the item [`crate::live::LIVE_ITEM`] plays (`loa live`).
    pub live: Option<LiveInput>,
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot create the opus encoder: {0}")]
    Encoder(#[from] OpusError),
    #[error("cannot start the encoder thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Starts the worker thread for `spec`.
pub fn spawn(spec: ProgramSpec) -> Result<ProgramHandle, SpawnError> {
    let encoder = OpusEncoder::new(&spec.audio)?;
    let (frame_tx, frames) = mpsc::sync_channel(spec.queue_frames.max(1));
    let (event_tx, events) = mpsc::channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let worker = Worker {
        frame_tx,
        event_tx,
        cancel: cancel.clone(),
        sent: 0,
        prefill: spec.prefill_frames.clamp(1, spec.queue_frames.max(1)),
        ready_sent: false,
        loudness: spec.loudness,
        first_play_limit: spec.first_play_limit,
        scratch: Vec::new(),
        live: spec.live,
    };
    let join = std::thread::Builder::new()
        .name("loa-encode".into())
        .spawn(move || worker.run(spec.items, spec.audio, spec.looped, encoder))?;
    Ok(ProgramHandle {
        frames,
        events,
        cancel,
        join: Some(join),
    })
}

fn remember(
    cache: &loudness::Cache,
    events: &Sender<ProgramEvent>,
    path: &std::path::Path,
    sha256: &str,
    measured: Measured,
) {
    tracing::info!(
        file = %path.display(),
        "measured loudness: {:.1} LUFS, true peak {:.1} dBTP",
        measured.integrated_lufs,
        measured.true_peak_dbtp
    );
    cache.insert(sha256.to_string(), measured);
    let _ = events.send(ProgramEvent::Measured {
        sha256: sha256.to_string(),
        path: path.to_path_buf(),
        measured,
    });
}

struct Worker {
    // `std::sync::mpsc::sync_channel` is a bounded lock-free array queue
    // (crossbeam's design, in std since 1.67): the pacer's `try_recv` never
    // waits on this thread, while `send` here blocks when the lookahead is full.
    frame_tx: SyncSender<Frame>,
    event_tx: Sender<ProgramEvent>,
    cancel: Arc<AtomicBool>,
    sent: usize,
    prefill: usize,
    ready_sent: bool,
    loudness: Option<loudness::Cache>,
    first_play_limit: Duration,
    /// Gain-scaled copy of the frame being encoded.
    scratch: Vec<f32>,
    live: Option<LiveInput>,
}

/// Why an item's frame loop ended early.
enum Stop {
    /// Cancelled, or the pacer dropped the queue: the whole program ends.
    Program,
    Item(ItemError),
}

impl Worker {
    fn run(mut self, items: Vec<PathBuf>, audio: Audio, looped: bool, mut encoder: OpusEncoder) {
        let (mut played, mut skipped) = (0, 0);
        let channels = audio.channels.count();
        let count = items.len();
        // A looped program whose whole pass failed would spin on the same
        // broken files forever; it ends instead.
        let passes = if looped && count > 0 { usize::MAX } else { 1 };
        let mut played_in_pass = 0;
        let plays = (0..passes).flat_map(|_| items.iter().cloned());
        for (item, path) in plays.enumerate() {
            if item > 0 && item % count == 0 {
                if played_in_pass == 0 {
                    break;
                }
                played_in_pass = 0;
            }
            if self.cancelled() {
                break;
            }
            if crate::live::is_live_item(&path) {
                let Some(input) = self.live.take() else {
                    skipped += 1;
                    let error = ItemError::Live("the input has already ended (a live program does not loop)".into());
                    let _ = self.event_tx.send(ProgramEvent::ItemSkipped { item, path, error });
                    continue;
                };
                played += 1;
                played_in_pass += 1;
                let _ = self.event_tx.send(ProgramEvent::ItemStarted {
                    item,
                    path: path.clone(),
                    duration: None,
                    content: None,
                    sha256: None,
                    gain_db: None,
                });
                let (encoded, stop, sha256) = self.encode_live(item, input, &audio, &mut encoder);
                if let Some(Stop::Program) = stop {
                    break;
                }
                let error = match stop {
                    Some(Stop::Item(error)) => Some(error),
                    _ => None,
                };
                let _ = self.event_tx.send(ProgramEvent::ItemEncoded { item, path, encoded, error, sha256 });
                continue;
            }
            let mut source = match Source::open(&path, audio.channels) {
                Ok(source) => source,
                Err(err) => {
                    skipped += 1;
                    let _ = self.event_tx.send(ProgramEvent::ItemSkipped {
                        item,
                        path,
                        error: err.into(),
                    });
                    continue;
                }
            };
            let (sha256, gain_db) = self.item_gain(&path, &source, &audio);
            let _ = self.event_tx.send(ProgramEvent::ItemStarted {
                item,
                path: path.clone(),
                duration: source.duration(),
                content: source.take_hash_handle(),
                sha256,
                gain_db,
            });
            played += 1;
            played_in_pass += 1;
            let factor = gain_db.map_or(1.0, loudness::factor);
            let (encoded, stop) = self.encode_item(item, source, channels, factor, &mut encoder);
            match stop {
                Some(Stop::Program) => break,
                Some(Stop::Item(error)) => {
                    let _ = self.event_tx.send(ProgramEvent::ItemEncoded {
                        item,
                        path,
                        encoded,
                        error: Some(error),
                        sha256: None,
                    });
                }
                None => {
                    let _ = self.event_tx.send(ProgramEvent::ItemEncoded {
                        item,
                        path,
                        encoded,
                        error: None,
                        sha256: None,
                    });
                }
            }
        }
        self.mark_ready();
        let _ = self
            .event_tx
            .send(ProgramEvent::Finished { played, skipped });
        // Dropping `frame_tx` closes the queue: the pacer sees the end after
        // the last frame.
    }

    /// The item's content hash and loudness gain, measuring the file on a
    /// cache miss (the whole file is decoded once, ~100× real time, before
    /// its first frame). A file that cannot be hashed or measured plays
    /// unchanged: normalisation never stops a broadcast.
    fn item_gain(
        &self,
        path: &std::path::Path,
        source: &Source,
        audio: &Audio,
    ) -> (Option<String>, Option<f64>) {
        let Some(cache) = self.loudness.as_ref().filter(|_| audio.loudness.normalize) else {
            return (None, None);
        };
        let hashed = match source.hash_handle() {
            Some(file) => crate::media::hash::sha256_open(file),
            None => crate::media::hash::sha256_file(path),
        };
        let sha256 = match hashed {
            Ok(sha256) => sha256,
            Err(e) => {
                tracing::warn!(file = %path.display(), "cannot hash, playing without loudness gain: {e}");
                return (None, None);
            }
        };
        let measured = match cache.get(&sha256) {
            Some(measured) => measured,
            None => match loudness::measure(path, audio.channels, Some(self.first_play_limit))
            {
                Ok((measured, true)) => {
                    self.remember(cache, path, &sha256, measured);
                    measured
                }
                Ok((first, false)) => {
                    // A long new file: its first part sets this play's gain,
                    // so the first frame is not held back; the whole file is
                    // measured beside playback for every later play.
                    tracing::info!(
                        file = %path.display(),
                        "first-play loudness from the first {} s: {:.1} LUFS; measuring the whole file",
                        self.first_play_limit.as_secs(),
                        first.integrated_lufs
                    );
                    self.measure_beside(
                        cache.clone(),
                        path.to_path_buf(),
                        sha256.clone(),
                        audio.channels,
                    );
                    first
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), "cannot measure loudness, playing unchanged: {e}");
                    return (Some(sha256), None);
                }
            },
        };
        (
            Some(sha256),
            Some(loudness::gain_db(&measured, &audio.loudness)),
        )
    }

    /// Caches a whole-file measurement and reports it for the store.
    fn remember(
        &self,
        cache: &loudness::Cache,
        path: &std::path::Path,
        sha256: &str,
        measured: Measured,
    ) {
        remember(cache, &self.event_tx, path, sha256, measured);
    }

    /// Measures the whole file on its own thread (a long file on its first
    /// play); the result goes to the cache and the store, not to this play.
    fn measure_beside(
        &self,
        cache: loudness::Cache,
        path: PathBuf,
        sha256: String,
        channels: crate::config::Channels,
    ) {
        let events = self.event_tx.clone();
        let spawned = std::thread::Builder::new()
            .name("loa-loudness".into())
            .spawn(move || match loudness::measure(&path, channels, None) {
                Ok((measured, _)) => remember(&cache, &events, &path, &sha256, measured),
                Err(e) => tracing::warn!(file = %path.display(), "cannot measure loudness: {e}"),
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the loudness thread: {e}");
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    fn mark_ready(&mut self) {
        if !self.ready_sent {
            self.ready_sent = true;
            let _ = self.event_tx.send(ProgramEvent::Ready);
        }
    }

    /// Encodes one item into frames. Returns the duration queued.
    fn encode_item(
        &mut self,
        item: usize,
        mut source: Source,
        channels: usize,
        factor: f32,
        encoder: &mut OpusEncoder,
    ) -> (Duration, Option<Stop>) {
        let frame_len = encoder.frame_samples() * channels;
        let frame_duration = Duration::from_micros(encoder.frame_samples() as u64 * 1_000_000 / 48_000);
        let mut framer = Framer::new(frame_len);
        let mut frames_done: u32 = 0;
        let mut emit = |worker: &mut Worker, pcm: &[f32], frames_done: &mut u32| {
            worker.emit(item, frame_duration * *frames_done, pcm, factor, encoder)?;
            *frames_done += 1;
            Ok(())
        };
        let mut stop = None;
        loop {
            let chunk = match source.next_chunk() {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(err) => {
                    stop = Some(Stop::Item(err.into()));
                    break;
                }
            };
            if let Err(stop) = framer.push(chunk, |pcm| emit(self, pcm, &mut frames_done)) {
                return (frame_duration * frames_done, Some(stop));
            }
        }
        // The last partial frame is padded with silence so the next item
        // starts on a frame boundary.
        if let Err(stop) = framer.finish(|pcm| emit(self, pcm, &mut frames_done)) {
            return (frame_duration * frames_done, Some(stop));
        }
        (frame_duration * frames_done, stop)
    }

    /// Plays the live input: reads PCM from the client's connection as it
    /// comes, converts, levels and encodes it frame by frame, until the
    /// client ends the stream (end of input, Ctrl-C) or the program is
    /// stopped. Returns what was queued, why it stopped early, and the
    /// SHA-256 of the PCM bytes played.
    fn encode_live(
        &mut self,
        item: usize,
        input: LiveInput,
        audio: &Audio,
        encoder: &mut OpusEncoder,
    ) -> (Duration, Option<Stop>, Option<String>) {
        use crate::live::reader::{Input, LiveReader};

        let failed = |e: String| (Duration::ZERO, Some(Stop::Item(ItemError::Live(e))), None);
        let mut converter = match PcmConverter::new(input.format, audio.channels) {
            Ok(c) => c,
            Err(e) => return failed(e.to_string()),
        };
        let mut reader = match LiveReader::new(input) {
            Ok(r) => r,
            Err(e) => return failed(e.to_string()),
        };
        let channels = audio.channels.count();
        let mut leveller = audio.loudness.normalize.then(|| {
            crate::media::leveller::Leveller::new(channels, audio.loudness.target_lufs, audio.loudness.true_peak_max_dbtp)
        });
        let frame_duration = Duration::from_micros(encoder.frame_samples() as u64 * 1_000_000 / 48_000);
        let mut framer = Framer::new(encoder.frame_samples() * channels);
        // After a chime, what was said while it played is old: the
        // operator waited for it, and playing it would delay everything
        // after. Without a chime, the first words count.
        if item > 0 {
            let ms = reader.drop_received();
            if ms > 0 {
                tracing::info!("live input: {ms} ms said during the chime not played");
            }
        }
        // Frames come only as the client sends, and it sends once it hears
        // the program took its zones: ready now, not after a prefill.
        self.mark_ready();
        reader.notify("live.on_air", serde_json::json!({ "format": reader.format().to_string() }));
        let mut standing = crate::live::StandingFrame::default();
        let mut frames_done: u32 = 0;
        let mut emit = |worker: &mut Worker, pcm: &[f32], frames_done: &mut u32| {
            if worker.emit_live(item, frame_duration * *frames_done, pcm, encoder, &mut standing)? {
                *frames_done += 1;
            }
            Ok(())
        };
        // Levels a converted block and frames it.
        let mut play = |worker: &mut Worker, pcm: &[f32], frames_done: &mut u32| {
            let mut block = std::mem::take(&mut worker.scratch);
            block.clear();
            block.extend_from_slice(pcm);
            if let Some(leveller) = leveller.as_mut() {
                leveller.process(&mut block);
            }
            let pushed = framer.push(&block, |pcm| emit(worker, pcm, frames_done));
            worker.scratch = block;
            pushed
        };
        let mut stop = None;
        loop {
            if self.cancelled() {
                return (frame_duration * frames_done, Some(Stop::Program), None);
            }
            let pcm = match reader.read() {
                Ok(Input::Idle) => continue,
                Ok(Input::End) => break,
                Ok(Input::Data(bytes)) => converter.push(bytes).map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            let pushed = match pcm {
                Ok(pcm) => play(self, pcm, &mut frames_done),
                Err(e) => {
                    stop = Some(Stop::Item(ItemError::Live(e)));
                    break;
                }
            };
            if let Err(stop) = pushed {
                return (frame_duration * frames_done, Some(stop), None);
            }
        }
        let sha256 = reader.finish();
        let tail = converter.finish().map(<[f32]>::to_vec).unwrap_or_default();
        let flushed = play(self, &tail, &mut frames_done).and_then(|()| framer.finish(|pcm| emit(self, pcm, &mut frames_done)));
        match flushed {
            Err(stop) => (frame_duration * frames_done, Some(stop), Some(sha256)),
            Ok(()) => (frame_duration * frames_done, stop, Some(sha256)),
        }
    }

    /// `emit` for live input: a frame that finds its predecessor still
    /// queued for a whole window is dropped instead of adding a frame of
    /// delay for good (`crate::live::StandingFrame`). True: sent.
    fn emit_live(
        &mut self,
        item: usize,
        position: Duration,
        pcm: &[f32],
        encoder: &mut OpusEncoder,
        standing: &mut crate::live::StandingFrame,
    ) -> Result<bool, Stop> {
        let frame = self.encode(item, position, pcm, encoder)?;
        match self.frame_tx.try_send(frame) {
            Ok(()) => {
                standing.observe(std::time::Instant::now(), false);
            }
            Err(mpsc::TrySendError::Full(frame)) => {
                if standing.observe(std::time::Instant::now(), true) {
                    tracing::debug!("live input: a frame of standing delay dropped");
                    return Ok(false);
                }
                self.frame_tx.send(frame).map_err(|_| Stop::Program)?;
            }
            Err(mpsc::TrySendError::Disconnected(_)) => return Err(Stop::Program),
        }
        self.queued();
        Ok(true)
    }

    fn emit(
        &mut self,
        item: usize,
        position: Duration,
        pcm: &[f32],
        factor: f32,
        encoder: &mut OpusEncoder,
    ) -> Result<(), Stop> {
        let pcm = if factor == 1.0 {
            pcm
        } else {
            // One constant gain for the whole item (no pumping); the true
            // peak limit in the gain rule keeps it from clipping.
            self.scratch.clear();
            self.scratch.extend(pcm.iter().map(|s| s * factor));
            &self.scratch
        };
        let frame = self.encode(item, position, pcm, encoder)?;
        self.frame_tx.send(frame).map_err(|_| Stop::Program)?;
        self.queued();
        Ok(())
    }

    /// One frame encoded, unless the program was cancelled.
    fn encode(&self, item: usize, position: Duration, pcm: &[f32], encoder: &mut OpusEncoder) -> Result<Frame, Stop> {
        if self.cancelled() {
            return Err(Stop::Program);
        }
        let payload = Payload::encode(encoder, pcm).map_err(|e| Stop::Item(e.into()))?;
        Ok(Frame { payload, item, position })
    }

    /// A frame went into the queue: the prefill may be complete.
    fn queued(&mut self) {
        self.sent += 1;
        if self.sent >= self.prefill {
            self.mark_ready();
        }
    }
}
