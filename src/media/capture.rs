//! Reading PCM from an ALSA capture device, for `loa live`.
//!
//! Owns: naming capture devices (`list_devices`), opening one with low-latency
//! hardware parameters (interleaved S16_LE, periods of about 10 ms, a buffer of
//! about 4 periods), reading frames, and recovering from overruns. It must not
//! touch encoding, pacing or the network: the caller turns frames into
//! packets, and pacing follows the sound card's clock, which is the reason a
//! read blocks.
//!
//! Built without the `alsa` cargo feature, the same API exists and every
//! constructor answers [`CaptureError::Unsupported`], so the CLI needs no
//! `cfg` of its own.

use std::time::{Duration, Instant};

/// A PCM device that can record, by the name `loa live --device` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// ALSA name: `default`, `hw:CARD=PCH,DEV=0`, `plughw:…`, or one defined
    /// in asoundrc.
    pub name: String,
    /// ALSA's description, its lines joined with ", " (may be empty).
    pub description: String,
}

/// Why capture could not start or go on, by what the user can do about it.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("this loa was built without ALSA support")]
    Unsupported,
    #[error("no capture device named \"{device}\" (loa live --list-devices lists them)")]
    NoSuchDevice { device: String },
    #[error("capture device \"{device}\" is busy (another program is recording from it)")]
    Busy { device: String },
    #[error(
        "permission denied opening capture device \"{device}\" \
         (is the user in the audio group?)"
    )]
    PermissionDenied { device: String },
    #[error(
        "capture device \"{device}\" cannot record {} at {rate} Hz: {reason}",
        channel_count(*channels)
    )]
    CannotRecord {
        device: String,
        channels: u16,
        rate: u32,
        reason: String,
    },
    #[error("capture device \"{device}\" was disconnected")]
    Disconnected { device: String },
    #[error("capture buffer of {len} samples is shorter than one frame of {channels} channels")]
    BufferTooSmall { len: usize, channels: u16 },
    #[error("capture device \"{device}\": {action} failed: {reason}")]
    Device {
        device: String,
        action: &'static str,
        reason: String,
    },
    #[error("listing capture devices failed: {reason}")]
    List { reason: String },
}

/// "1 channel", "2 channels".
fn channel_count(channels: u16) -> String {
    match channels {
        1 => "1 channel".to_string(),
        n => format!("{n} channels"),
    }
}

/// Capture-capable PCM devices (ALSA hints with IOID Input or no IOID),
/// `default` first if present.
pub fn list_devices() -> Result<Vec<Device>, CaptureError> {
    #[cfg(feature = "alsa")]
    {
        alsa_impl::list_devices()
    }
    #[cfg(not(feature = "alsa"))]
    {
        Err(CaptureError::Unsupported)
    }
}

/// An open capture device. Dropping it closes the device.
pub struct Capture {
    rate: u32,
    channels: u16,
    overruns: u64,
    #[cfg(feature = "alsa")]
    alsa: alsa_impl::Open,
}

// The daemon reads on a thread of its own: Capture must move there.
const _: fn() = || {
    fn moves_to_a_thread<T: Send>() {}
    moves_to_a_thread::<Capture>();
};

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("rate", &self.rate)
            .field("channels", &self.channels)
            .field("overruns", &self.overruns)
            .finish_non_exhaustive()
    }
}

impl Capture {
    /// Opens `name` for capture, interleaved S16_LE, asking for `rate` Hz and
    /// `channels`; low latency: period about 10 ms, buffer about 4 periods.
    /// Takes what the device gives if it cannot do the rate (or channel
    /// count) exactly: `rate()`/`channels()` report the real values.
    pub fn open(name: &str, rate: u32, channels: u16) -> Result<Capture, CaptureError> {
        if rate == 0 || channels == 0 {
            return Err(CaptureError::CannotRecord {
                device: name.to_string(),
                channels,
                rate,
                reason: "the rate and the channel count must be above 0".to_string(),
            });
        }
        #[cfg(feature = "alsa")]
        {
            let (alsa, rate, channels) = alsa_impl::Open::new(name, rate, channels)?;
            Ok(Capture {
                rate,
                channels,
                overruns: 0,
                alsa,
            })
        }
        #[cfg(not(feature = "alsa"))]
        {
            Err(CaptureError::Unsupported)
        }
    }

    /// Frames per second the device really records at.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Channels the device really records; samples in `read`'s buffer are
    /// interleaved in this count.
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Blocks until some frames are there; fills `buf` (interleaved i16) and
    /// returns the number of FRAMES read. Ok(0) never means end (a capture
    /// device does not end). At most one period (about 10 ms) is read per
    /// call whatever `buf`'s length, so a large buffer adds no latency.
    ///
    /// An overrun (the caller read too late and the device's buffer
    /// overflowed) is recovered, counted in `overruns()`, and logged at most
    /// once per second ("capture overrun: N ms of input lost"); it is not an
    /// error.
    pub fn read(&mut self, buf: &mut [i16]) -> Result<usize, CaptureError> {
        if buf.len() < usize::from(self.channels) {
            return Err(CaptureError::BufferTooSmall {
                len: buf.len(),
                channels: self.channels,
            });
        }
        #[cfg(feature = "alsa")]
        {
            self.alsa
                .read(buf, usize::from(self.channels), &mut self.overruns)
        }
        #[cfg(not(feature = "alsa"))]
        {
            Err(CaptureError::Unsupported)
        }
    }

    /// Overruns recovered since `open`.
    pub fn overruns(&self) -> u64 {
        self.overruns
    }
}

/// Decides when an overrun is logged: at most one line a second, carrying
/// everything lost since the last line, so a machine that cannot keep up gets
/// a steady trickle of warnings instead of a hundred a second. Time is an
/// argument so the rule is tested without a sound card.
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "alsa"), allow(dead_code))]
struct OverrunLog {
    last_logged: Option<Instant>,
    pending: u64,
    pending_lost: Duration,
}

/// One log line's worth of overruns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "alsa"), allow(dead_code))]
struct OverrunReport {
    overruns: u64,
    lost: Duration,
}

#[cfg_attr(not(feature = "alsa"), allow(dead_code))]
impl OverrunLog {
    const INTERVAL: Duration = Duration::from_secs(1);

    /// An overrun that lost `lost` of input happened at `now`.
    fn handle_overrun(&mut self, now: Instant, lost: Duration) -> Option<OverrunReport> {
        self.pending += 1;
        self.pending_lost += lost;
        self.poll(now)
    }

    /// Whether overruns not yet logged are due for their line at `now`.
    fn poll(&mut self, now: Instant) -> Option<OverrunReport> {
        if self.pending == 0 {
            return None;
        }
        if let Some(last) = self.last_logged {
            if now.saturating_duration_since(last) < Self::INTERVAL {
                return None;
            }
        }
        self.last_logged = Some(now);
        let report = OverrunReport {
            overruns: self.pending,
            lost: self.pending_lost,
        };
        self.pending = 0;
        self.pending_lost = Duration::ZERO;
        Some(report)
    }

    fn has_pending(&self) -> bool {
        self.pending > 0
    }
}

#[cfg(feature = "alsa")]
mod alsa_impl {
    use super::{CaptureError, Device, OverrunLog, OverrunReport};
    use alsa::device_name::HintIter;
    use alsa::pcm::{Access, Format, Frames, HwParams, PCM};
    use alsa::{Direction, ValueOr};
    use std::time::{Duration, Instant};

    pub(super) fn list_devices() -> Result<Vec<Device>, CaptureError> {
        let hints = HintIter::new_str(None, "pcm").map_err(|e| CaptureError::List {
            reason: errno_text(e.errno()),
        })?;
        let mut devices: Vec<Device> = Vec::new();
        for hint in hints {
            if hint.direction == Some(Direction::Playback) {
                continue;
            }
            let Some(name) = hint.name else { continue };
            if devices.iter().any(|d| d.name == name) {
                continue;
            }
            // ALSA descriptions are two lines ("card, device\nwhat it is").
            let description = hint
                .desc
                .unwrap_or_default()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(", ");
            devices.push(Device { name, description });
        }
        // Stable: `default` moves to the front, the rest keep ALSA's order.
        devices.sort_by_key(|d| d.name != "default");
        Ok(devices)
    }

    pub(super) struct Open {
        device: String,
        pcm: PCM,
        period_frames: usize,
        buffer_frames: usize,
        rate: u32,
        log: OverrunLog,
    }

    impl Open {
        pub(super) fn new(
            name: &str,
            rate: u32,
            channels: u16,
        ) -> Result<(Open, u32, u16), CaptureError> {
            let pcm = PCM::new(name, Direction::Capture, false)
                .map_err(|e| open_error(name, e.errno()))?;
            let cannot = |reason: String| CaptureError::CannotRecord {
                device: name.to_string(),
                channels,
                rate,
                reason,
            };
            let alsa_cannot = |e: alsa::Error| match e.errno() {
                libc::ENODEV => CaptureError::Disconnected {
                    device: name.to_string(),
                },
                errno => cannot(errno_text(errno)),
            };
            // HwParams borrows the PCM: read back what the device chose before
            // the PCM moves into `Open`.
            let (got_rate, got_channels, period_frames, buffer_frames) = {
                let hwp = HwParams::any(&pcm).map_err(alsa_cannot)?;
                hwp.set_access(Access::RWInterleaved)
                    .map_err(|_| cannot("it offers no interleaved read access".to_string()))?;
                hwp.set_format(Format::S16LE).map_err(|_| {
                    cannot(
                        "it cannot give 16-bit samples (S16_LE); its plughw: or plug \
                         device converts"
                            .to_string(),
                    )
                })?;
                hwp.set_channels_near(u32::from(channels))
                    .map_err(alsa_cannot)?;
                let got_rate = hwp
                    .set_rate_near(rate, ValueOr::Nearest)
                    .map_err(alsa_cannot)?;
                // 10 ms periods keep the added latency small; 4 of them in the
                // buffer leave ~30 ms for the caller to be late before an overrun.
                let period = Frames::from(got_rate / 100).max(1);
                let period = hwp
                    .set_period_size_near(period, ValueOr::Nearest)
                    .map_err(alsa_cannot)?;
                hwp.set_buffer_size_near(period * 4).map_err(alsa_cannot)?;
                pcm.hw_params(&hwp).map_err(alsa_cannot)?;
                let current = pcm.hw_params_current().map_err(alsa_cannot)?;
                (
                    current.get_rate().map_err(alsa_cannot)?,
                    current.get_channels().map_err(alsa_cannot)?,
                    current.get_period_size().map_err(alsa_cannot)?,
                    current.get_buffer_size().map_err(alsa_cannot)?,
                )
            };
            let period_frames = usize::try_from(period_frames).unwrap_or(1).max(1);
            let buffer_frames = usize::try_from(buffer_frames).unwrap_or(0);
            let got_channels = u16::try_from(got_channels)
                .map_err(|_| cannot(format!("it records {got_channels} channels")))?;
            tracing::debug!(
                device = name,
                rate = got_rate,
                channels = got_channels,
                period_frames,
                buffer_frames,
                "capture device open"
            );
            Ok((
                Open {
                    device: name.to_string(),
                    pcm,
                    period_frames,
                    buffer_frames,
                    rate: got_rate,
                    log: OverrunLog::default(),
                },
                got_rate,
                got_channels,
            ))
        }

        pub(super) fn read(
            &mut self,
            buf: &mut [i16],
            channels: usize,
            overruns: &mut u64,
        ) -> Result<usize, CaptureError> {
            // A blocking readi waits for every frame asked for: asking for one
            // period at most returns as soon as ~10 ms are there.
            let frames = (buf.len() / channels).min(self.period_frames);
            let buf = &mut buf[..frames * channels];
            loop {
                let result = {
                    let io = self.pcm.io_i16().map_err(|e| self.error("reading", e))?;
                    io.readi(buf)
                };
                match result {
                    Ok(0) => continue,
                    Ok(n) => {
                        if self.log.has_pending() {
                            if let Some(report) = self.log.poll(Instant::now()) {
                                self.warn(report, *overruns);
                            }
                        }
                        return Ok(n);
                    }
                    Err(e) => match e.errno() {
                        libc::EPIPE => {
                            let lost = self.lost_in_overrun();
                            self.pcm
                                .prepare()
                                .map_err(|e| self.error("recovering from an overrun", e))?;
                            *overruns += 1;
                            if let Some(report) = self.log.handle_overrun(Instant::now(), lost) {
                                self.warn(report, *overruns);
                            }
                        }
                        libc::ESTRPIPE => {
                            tracing::warn!(
                                device = %self.device,
                                "capture device was suspended; resuming"
                            );
                            self.pcm
                                .try_recover(e, true)
                                .map_err(|e| self.error("resuming after a suspend", e))?;
                        }
                        libc::EINTR | libc::EAGAIN => continue,
                        _ => return Err(self.error("reading", e)),
                    },
                }
            }
        }

        /// Input lost by the overrun that just happened: the buffer, which
        /// `prepare` throws away, plus the time since the buffer filled
        /// (ALSA's trigger timestamp of the xrun), if the device reports it.
        fn lost_in_overrun(&self) -> Duration {
            let buffered =
                Duration::from_secs_f64(self.buffer_frames as f64 / f64::from(self.rate));
            let since = self
                .pcm
                .status()
                .ok()
                .and_then(|s| {
                    let trigger = s.get_trigger_htstamp();
                    let now = s.get_htstamp();
                    if trigger.tv_sec == 0 && trigger.tv_nsec == 0 {
                        return None;
                    }
                    let to_ns = |t: libc::timespec| {
                        i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec)
                    };
                    let ns = to_ns(now) - to_ns(trigger);
                    u64::try_from(ns).ok().map(Duration::from_nanos)
                })
                .unwrap_or_default();
            buffered + since
        }

        fn warn(&self, report: OverrunReport, total: u64) {
            tracing::warn!(
                device = %self.device,
                overruns = report.overruns,
                total_overruns = total,
                "capture overrun: {} ms of input lost",
                report.lost.as_millis()
            );
        }

        fn error(&self, action: &'static str, e: alsa::Error) -> CaptureError {
            match e.errno() {
                libc::ENODEV => CaptureError::Disconnected {
                    device: self.device.clone(),
                },
                errno => CaptureError::Device {
                    device: self.device.clone(),
                    action,
                    reason: errno_text(errno),
                },
            }
        }
    }

    /// snd_pcm_open's errno in the user's words.
    fn open_error(device: &str, errno: i32) -> CaptureError {
        let device = device.to_string();
        match errno {
            // ENOENT: no such definition, or no /dev/snd node; ENODEV/ENXIO:
            // the card or device number is not there; EINVAL: a card number
            // ALSA cannot have ("hw:99"), or a playback-only plugin (dmix)
            // refusing a capture stream — none of them is a capture device.
            libc::ENOENT | libc::ENODEV | libc::ENXIO | libc::EINVAL => {
                CaptureError::NoSuchDevice { device }
            }
            libc::EBUSY => CaptureError::Busy { device },
            libc::EACCES | libc::EPERM => CaptureError::PermissionDenied { device },
            errno => CaptureError::Device {
                device,
                action: "opening for capture",
                reason: errno_text(errno),
            },
        }
    }

    /// "Device or resource busy", without std's " (os error 16)".
    fn errno_text(errno: i32) -> String {
        let text = std::io::Error::from_raw_os_error(errno).to_string();
        match text.find(" (os error") {
            Some(i) => text[..i].to_string(),
            None => text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overruns_are_logged_at_most_once_a_second_with_everything_lost_since() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut log = OverrunLog::default();
        // The first overrun is logged at once.
        assert_eq!(
            log.handle_overrun(t0, ms(40)),
            Some(OverrunReport {
                overruns: 1,
                lost: ms(40)
            })
        );
        // Two more within the second wait for the next line…
        assert_eq!(log.handle_overrun(t0 + ms(300), ms(45)), None);
        assert_eq!(log.handle_overrun(t0 + ms(600), ms(50)), None);
        assert_eq!(log.poll(t0 + ms(999)), None);
        // …which carries both once a second has passed, even with no new overrun.
        assert_eq!(
            log.poll(t0 + ms(1000)),
            Some(OverrunReport {
                overruns: 2,
                lost: ms(95)
            })
        );
        assert!(!log.has_pending());
        assert_eq!(log.poll(t0 + ms(5000)), None);
        // After a quiet spell the next overrun is logged at once again.
        assert_eq!(
            log.handle_overrun(t0 + ms(5000), ms(40)),
            Some(OverrunReport {
                overruns: 1,
                lost: ms(40)
            })
        );
    }
}

#[cfg(all(test, not(feature = "alsa")))]
mod without_alsa_tests {
    use super::*;

    #[test]
    fn built_without_alsa_listing_and_opening_say_so() {
        let err = list_devices().unwrap_err();
        assert_eq!(err.to_string(), "this loa was built without ALSA support");
        let err = Capture::open("default", 48_000, 1).unwrap_err();
        assert!(matches!(err, CaptureError::Unsupported), "{err:?}");
    }
}

/// Capture through alsa-lib itself, fed by its `file` plugin from a raw file
/// (no sound card needed). One test function only: alsa-lib reads its
/// configuration once per process, so ALSA_CONFIG_PATH must be set before the
/// first ALSA call, and no other test in this binary may call ALSA.
#[cfg(all(test, feature = "alsa"))]
mod alsa_tests {
    use super::*;

    #[test]
    fn file_plugin_feeds_capture_and_bad_names_get_plain_errors() {
        let dir = tempfile::tempdir().unwrap();
        let rate = 48_000u32;
        let tone: Vec<i16> = (0..rate)
            .map(|n| {
                let t = f64::from(n) / f64::from(rate);
                (16_000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()).round() as i16
            })
            .collect();
        let infile = dir.path().join("in.raw");
        let bytes: Vec<u8> = tone.iter().flat_map(|s| s.to_le_bytes()).collect();
        std::fs::write(&infile, bytes).unwrap();
        let outfile = dir.path().join("out.raw");
        let conf = dir.path().join("loatest.conf");
        std::fs::write(
            &conf,
            format!(
                "pcm.loatest {{\n  type file\n  slave.pcm {{ type null }}\n  file \"{}\"\n  \
                 infile \"{}\"\n  format \"raw\"\n  \
                 hint {{ show on description \"loa test tone\" }}\n}}\n\
                 # mu-law to linear: its client side takes only MU_LAW, never S16_LE.\n\
                 pcm.loamulaw {{ type mulaw slave {{ pcm {{ type null }} format S16_LE }} }}\n",
                outfile.display(),
                infile.display()
            ),
        )
        .unwrap();
        // The system's alsa.conf first (so `default`, `null`, cards… exist as
        // on a real box), then ours.
        let system = std::path::Path::new("/usr/share/alsa/alsa.conf");
        let path = if system.exists() {
            format!("{}:{}", system.display(), conf.display())
        } else {
            conf.display().to_string()
        };
        std::env::set_var("ALSA_CONFIG_PATH", path);

        // Listed: ours (it has a hint), once; `default` first when the box has it.
        let devices = list_devices().unwrap();
        let ours: Vec<_> = devices.iter().filter(|d| d.name == "loatest").collect();
        assert_eq!(
            ours,
            [&Device {
                name: "loatest".to_string(),
                description: "loa test tone".to_string()
            }],
            "{devices:?}"
        );
        if let Some(i) = devices.iter().position(|d| d.name == "default") {
            assert_eq!(i, 0, "{devices:?}");
        }

        // The tone comes back sample for sample, from the first one, at the
        // rate and channel count asked for, in reads of about 10 ms.
        let mut capture = Capture::open("loatest", rate, 1).unwrap();
        assert_eq!((capture.rate(), capture.channels()), (rate, 1));
        let mut got = Vec::new();
        let mut buf = vec![0i16; 4800];
        while got.len() < tone.len() / 2 {
            let n = capture.read(&mut buf).unwrap();
            assert!(n > 0 && n <= rate as usize / 50, "read {n} frames at once");
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got[..], tone[..got.len()]);
        assert_eq!(capture.overruns(), 0);
        assert!(matches!(
            capture.read(&mut []),
            Err(CaptureError::BufferTooSmall {
                len: 0,
                channels: 1
            })
        ));
        drop(capture);

        // Stereo: read() counts frames, the buffer holds interleaved samples
        // (the plugin reads the same file as L R L R …, from its start again).
        let mut capture = Capture::open("loatest", rate, 2).unwrap();
        assert_eq!(capture.channels(), 2);
        let mut got = Vec::new();
        while got.len() < tone.len() / 2 {
            let n = capture.read(&mut buf).unwrap();
            assert!(n > 0 && n <= rate as usize / 50, "read {n} frames at once");
            got.extend_from_slice(&buf[..2 * n]);
        }
        assert_eq!(got[..], tone[..got.len()]);
        drop(capture);

        // A device that cannot give 16-bit samples says so, with the fix.
        let err = Capture::open("loamulaw", rate, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "capture device \"loamulaw\" cannot record 1 channel at 48000 Hz: it cannot give \
             16-bit samples (S16_LE); its plughw: or plug device converts"
        );

        // A name ALSA does not know, and card numbers no box can have, read
        // as "no such device" with the way to find the right name.
        for name in ["loa-no-such-device", "hw:99", "plughw:99,0"] {
            let err = Capture::open(name, rate, 1).unwrap_err();
            assert!(
                matches!(err, CaptureError::NoSuchDevice { .. }),
                "{name}: {err:?}"
            );
            assert_eq!(
                err.to_string(),
                format!("no capture device named \"{name}\" (loa live --list-devices lists them)")
            );
        }
        let err = Capture::open("loatest", rate, 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "capture device \"loatest\" cannot record 0 channels at 48000 Hz: \
             the rate and the channel count must be above 0"
        );
    }
}
