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
use crate::media::{MediaError, Source};
use crate::media::opus::{Framer, OpusEncoder, OpusError, Payload};

mod background;
mod live;
mod prepare;

use prepare::{Prepared, Preparer, YIELDING_NICE};

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
    /// A live or emergency program: the preparation of programs that are
    /// not urgent yields the CPU to it (nice 10 before their first frame;
    /// see `prepare`), its own never does.
    pub urgent: bool,
    /// The PCM stream the item [`crate::live::LIVE_ITEM`] plays (`loa live`).
    pub live: Option<LiveInput>,
    /// Where to begin instead of the first frame of the first item. None:
    /// from the start.
    pub start: Option<StartPoint>,
}

/// A frame of a program to begin at: a branch of a program that was cut on
/// some of its zones resumes there from the frame they did not hear, while
/// the program goes on elsewhere. The branch's frames carry the `item` and
/// `position` the full run's frames carry, and its PCM is theirs (see
/// `Source::open_at`), so history and levels line up.
#[derive(Debug, Clone, PartialEq)]
pub struct StartPoint {
    /// The item number as frames carry it: the index in `items` (a chime
    /// the engine inserted is item 0), counting up across passes of a
    /// looped program. Earlier items are passed over without events.
    pub item: usize,
    /// Position in that item: a multiple of the frame duration (rounded
    /// down to one otherwise). At or past the item's end, the program
    /// begins with the next item. Ignored for the live item.
    pub position: Duration,
    /// The item's content hash and gain as the cut run reported them in
    /// [`ProgramEvent::ItemStarted`]: reused, so the branch plays at the
    /// level the other zones hear (a long file's first play gets its gain
    /// from its first part, and the whole-file figure that lands in the
    /// cache later would differ) without reading the file again while an
    /// emergency plays. None: hashed and measured as for a full play.
    pub resumed: Option<ResumedItem>,
}

/// What a cut run knew of the item a [`StartPoint`] resumes.
#[derive(Debug, Clone, PartialEq)]
pub struct ResumedItem {
    /// None: not hashed yet; the branch reports the open file for hashing.
    pub sha256: Option<String>,
    /// None: the item played without loudness gain.
    pub gain_db: Option<f64>,
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
        event_tx: Arc::new(event_tx),
        cancel: cancel.clone(),
        sent: 0,
        prefill: spec.prefill_frames.clamp(1, spec.queue_frames.max(1)),
        ready_sent: false,
        loudness: spec.loudness,
        first_play_limit: spec.first_play_limit,
        urgent: spec.urgent,
        scratch: Vec::new(),
        live: spec.live,
    };
    let join = std::thread::Builder::new()
        .name("loa-encode".into())
        .spawn(move || worker.run(spec.items, spec.audio, spec.looped, spec.start, encoder))?;
    Ok(ProgramHandle {
        frames,
        events,
        cancel,
        join: Some(join),
    })
}

struct Worker {
    // `std::sync::mpsc::sync_channel` is a bounded lock-free array queue
    // (crossbeam's design, in std since 1.67): the pacer's `try_recv` never
    // waits on this thread, while `send` here blocks when the lookahead is full.
    frame_tx: SyncSender<Frame>,
    /// The only strong handle on the events' sender: when the worker ends,
    /// the channel closes (and the daemon's forwarder with it) even while
    /// a queued whole-file measurement holds a weak one (`prepare`).
    event_tx: Arc<Sender<ProgramEvent>>,
    cancel: Arc<AtomicBool>,
    sent: usize,
    prefill: usize,
    ready_sent: bool,
    loudness: Option<loudness::Cache>,
    first_play_limit: Duration,
    urgent: bool,
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
    fn run(mut self, items: Vec<PathBuf>, audio: Audio, looped: bool, start: Option<StartPoint>, mut encoder: OpusEncoder) {
        let (mut played, mut skipped) = (0, 0);
        let channels = audio.channels.count();
        let count = items.len();
        let frame_samples = encoder.frame_samples() as u64;
        let first_item = start.as_ref().map_or(0, |s| s.item);
        // The start point's frame on the frame grid, and what the cut run
        // knew of its item.
        let mut resume = start.map(|s| {
            let frame = (s.position.as_nanos() * 48_000 / 1_000_000_000) as u64 / frame_samples;
            (frame as u32, s.resumed)
        });
        // A looped program whose whole pass failed would spin on the same
        // broken files forever; it ends instead. A pass begun part-way (at
        // a start point) does not count: its first items were not tried.
        let mut played_in_pass = 0;
        let mut whole_pass = first_item % count.max(1) == 0;
        for item in first_item.. {
            if count == 0 || (!looped && item >= count) {
                break;
            }
            if item > first_item && item % count == 0 {
                if played_in_pass == 0 && whole_pass {
                    break;
                }
                played_in_pass = 0;
                whole_pass = true;
            }
            if self.cancelled() {
                break;
            }
            let path = items[item % count].clone();
            let (first_frame, resumed) = match resume.take() {
                Some((frame, resumed)) => (frame, resumed),
                None => (0, None),
            };
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
            let frame_duration = Duration::from_micros(frame_samples * 1_000_000 / 48_000);
            let preparer = Preparer {
                audio: &audio,
                cache: self.loudness.as_ref(),
                events: &self.event_tx,
                first_play_limit: self.first_play_limit,
            };
            let prepare = || preparer.item(&path, frame_duration * first_frame, resumed);
            // Before its first frame a program that is not urgent gets
            // ready without holding an urgent one back (see `prepare`).
            let prepared = if self.urgent || self.sent > 0 { prepare() } else { prepare::at_nice(YIELDING_NICE, prepare) };
            let Prepared { mut source, sha256, gain_db } = match prepared {
                Ok(Some(prepared)) => prepared,
                // The start point is at or past the item's end: the cut
                // zones heard all of it.
                Ok(None) => continue,
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
            let (encoded, stop) = self.encode_item(item, first_frame, source, channels, factor, &mut encoder);
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

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    fn mark_ready(&mut self) {
        if !self.ready_sent {
            self.ready_sent = true;
            let _ = self.event_tx.send(ProgramEvent::Ready);
        }
    }

    /// Encodes one item into frames, the first one being the item's frame
    /// number `first_frame`. Returns the item's duration up to the end of
    /// what was queued.
    fn encode_item(
        &mut self,
        item: usize,
        first_frame: u32,
        mut source: Source,
        channels: usize,
        factor: f32,
        encoder: &mut OpusEncoder,
    ) -> (Duration, Option<Stop>) {
        let frame_len = encoder.frame_samples() * channels;
        let frame_duration = Duration::from_micros(encoder.frame_samples() as u64 * 1_000_000 / 48_000);
        let mut framer = Framer::new(frame_len);
        let mut frames_done: u32 = first_frame;
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

#[cfg(test)]
mod tests;
