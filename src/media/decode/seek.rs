//! Starting a source part-way through its item (`Source::open_at`), so a
//! zone cut by an emergency hears the rest of an item from the frame it
//! missed while the program went on elsewhere.
//!
//! Sample-exact by construction: the output from the start point is the
//! output a decode from 0 hands out there. Three steps make it so:
//! - the decoder is seeked (symphonia's accurate mode lands at or before the
//!   target), then decoded samples are dropped up to the exact timestamp;
//!   lossy codecs decode `LOSSY_PREROLL_FRAMES` more before it, so their
//!   inter-packet state (overlap, filterbank) is the one a full decode has;
//! - resampled sources start on the resampler's block grid
//!   (`resample::Grid`) one block before the target, and drop the output
//!   up to it, so the FFT blocks are the ones a full decode computes;
//! - anything that cannot seek exactly (timestamps that are not frames, an
//!   unknown rate, a reader that refuses) decodes from the start and drops
//!   the output up to the target: slower, never wrong.

use std::time::Duration;

use symphonia::core::errors::{Error as SymError, SeekErrorKind};
use symphonia::core::formats::{SeekMode, SeekTo};
use symphonia::core::units::Timestamp;

use super::{MediaError, Source, State, LOSSY_PREROLL_FRAMES};
use crate::config::Channels;
use crate::media::resample::Resampler48k;
use crate::media::OUTPUT_RATE;

/// How a start point is reached.
enum Plan {
    /// Seek the reader to `seek_frame` (source frames from the first
    /// sample), keep decoded samples from `first_frame`, then drop
    /// `skip_output` frames of 48 kHz output.
    Seek {
        seek_frame: u64,
        first_frame: u64,
        skip_output: u64,
        /// The fresh resampler a resampled source needs.
        resampler: Option<Box<Resampler48k>>,
    },
    /// Decode from the start and drop the output before the target.
    Discard,
}

impl Source {
    /// Opens `path` so its output starts at `position` of the item, exactly
    /// where a decode from the start would be then (positions are rounded
    /// to a 48 kHz sample). `Ok(None)`: the item ends at or before
    /// `position`. A file that fails to open fails here as in `open`.
    pub fn open_at(path: &std::path::Path, target: Channels, position: Duration) -> Result<Option<Source>, MediaError> {
        let mut source = Source::open(path, target)?;
        let frame = (position.as_nanos() * u128::from(OUTPUT_RATE) / 1_000_000_000) as u64;
        if frame == 0 {
            return Ok(Some(source));
        }
        let has_audio = source.start_at(frame)?;
        Ok(has_audio.then_some(source))
    }

    /// Positions a source fresh from `open` at output frame `frame`.
    /// Returns false when the item ends before it.
    fn start_at(&mut self, frame: u64) -> Result<bool, MediaError> {
        match self.plan(frame) {
            Plan::Seek { seek_frame, first_frame, skip_output, resampler } => {
                let origin = self.origin_ts.unwrap_or(0);
                let to = SeekTo::Timestamp {
                    ts: Timestamp::from(origin + seek_frame as i64),
                    track_id: self.track_id,
                };
                match self.format.seek(SeekMode::Accurate, to) {
                    Ok(_) => {}
                    Err(SymError::SeekError(SeekErrorKind::OutOfRange)) => {
                        self.out.clear();
                        self.primed = false;
                        self.state = State::Done;
                        return Ok(false);
                    }
                    Err(e) => {
                        tracing::debug!(file = %self.path.display(), "cannot seek ({e}); decoding from the start instead");
                        self.reopen()?;
                        return self.discard_to(frame);
                    }
                }
                self.decoder.reset();
                // A fresh resampler starts on the grid (its first block is
                // among the output dropped).
                self.resampler = resampler.map(|r| *r);
                self.out.clear();
                self.primed = false;
                self.state = State::Decoding;
                self.bad_packets = 0;
                self.skip_before_ts = Some(origin + first_frame as i64);
                self.skip_output = skip_output;
                self.decoded_frames = first_frame;
                self.produced_frames = frame;
                self.settle()
            }
            Plan::Discard => self.discard_to(frame),
        }
    }

    fn plan(&self, frame: u64) -> Plan {
        let Some(rate) = self.source_rate.filter(|_| self.frame_timestamps && self.state == State::Decoding) else {
            return Plan::Discard;
        };
        let (first_frame, skip_output, resampler) = if rate == OUTPUT_RATE {
            (frame, 0, None)
        } else {
            let Ok(resampler) = Resampler48k::new(rate, self.target.count()) else {
                return Plan::Discard;
            };
            let grid = resampler.grid();
            let (block_in, block_out) = (grid.block_in as u64, grid.block_out as u64);
            // The block holding output `frame` is the second this resampler
            // computes: its first (missing the previous block's overlap)
            // is dropped, as is its delay.
            let Some(block) = ((frame + grid.delay as u64) / block_out).checked_sub(1) else {
                return Plan::Discard;
            };
            (block * block_in, frame - block * block_out, Some(Box::new(resampler)))
        };
        let preroll = if self.lossless { 0 } else { LOSSY_PREROLL_FRAMES };
        match first_frame.checked_sub(preroll) {
            // Close to the start: decoding from there costs no more.
            None | Some(0) => Plan::Discard,
            Some(seek_frame) => Plan::Seek { seek_frame, first_frame, skip_output, resampler },
        }
    }

    /// Decodes on from where the source is (its start) and drops the output
    /// before `frame`.
    fn discard_to(&mut self, frame: u64) -> Result<bool, MediaError> {
        self.skip_output = frame.saturating_sub(self.produced_frames);
        self.produced_frames = frame;
        self.settle()
    }

    /// Decodes until output is ready to hand out (what is already in `out`
    /// first), as `open` does; false when the input ends first.
    fn settle(&mut self) -> Result<bool, MediaError> {
        self.drop_skipped_output();
        while self.out.is_empty() && self.state == State::Decoding {
            self.decode_more()?;
        }
        self.primed = !self.out.is_empty();
        Ok(self.primed)
    }

    /// Opens the file again from its start (after a seek failed half-way),
    /// keeping the first open file for the hash.
    fn reopen(&mut self) -> Result<(), MediaError> {
        let hash_handle = self.hash_handle.take();
        let mut fresh = Source::open(&self.path, self.target)?;
        if hash_handle.is_some() {
            fresh.hash_handle = hash_handle;
        }
        *self = fresh;
        Ok(())
    }
}
