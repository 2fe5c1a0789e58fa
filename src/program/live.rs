//! The live item on the worker (`loa live`): PCM from the client's
//! connection, levelled and encoded as it comes, into a queue of one frame.

use std::sync::mpsc;
use std::time::Duration;

use super::{ItemError, Stop, Worker};
use crate::config::Audio;
use crate::live::LiveInput;
use crate::media::opus::{Framer, OpusEncoder};
use crate::media::PcmConverter;

impl Worker {
    /// Plays the live input: reads PCM from the client's connection as it
    /// comes, converts, levels and encodes it frame by frame, until the
    /// client ends the stream (end of input, Ctrl-C) or the program is
    /// stopped. Returns what was queued, why it stopped early, and the
    /// SHA-256 of the PCM bytes played.
    pub(super) fn encode_live(
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
}
