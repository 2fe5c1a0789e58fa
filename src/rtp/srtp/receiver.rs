//! The receiving crypto context: verifies every packet (tag, replay
//! window, SSRC, MKI) and decrypts it in place. Used by the reference
//! speaker; one per zone.

use std::os::raw::{c_int, c_uint};

use super::context::{
    be16, be32, estimate_index, rtcp_check, rtp_header_len, Keys, Session, SetupError,
    UnprotectError,
};
use super::ffi;
use super::key::{MasterKey, Mki, Suite};

/// libsrtp's default RTP replay window (packets), also GStreamer's.
pub const DEFAULT_REPLAY_WINDOW: u32 = 128;

/// Verifies and decrypts one zone's SRTP and SRTCP.
pub struct SrtpReceiver {
    session: Session,
    ssrc: u32,
    keys: Keys,
    window: u32,
    /// Highest authentic RTP index; `None` until the first one.
    highest: Option<u64>,
    /// Where the sender was when we joined (`expect_index`).
    join_hint: Option<u64>,
    /// The ROC last handed to libsrtp while joining (0: none).
    roc_set: u32,
    /// After a key change libsrtp forgets its replay window but not the
    /// index; until the window has moved past this index, anything at or
    /// below it is refused here instead.
    replay_floor: Option<u64>,
}

impl std::fmt::Debug for SrtpReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpReceiver")
            .field("ssrc", &self.ssrc)
            .field("suite", &self.keys.suite)
            .field(
                "mkis",
                &self
                    .keys
                    .entries
                    .iter()
                    .map(|(m, _)| *m)
                    .collect::<Vec<_>>(),
            )
            .field("highest", &self.highest)
            .finish_non_exhaustive()
    }
}

impl SrtpReceiver {
    /// A receiver for the stream `ssrc`. `replay_window` is in packets,
    /// 64 to 32767 (`DEFAULT_REPLAY_WINDOW` unless the network reorders
    /// more than 2.5 s of 20 ms packets).
    pub fn new(
        ssrc: u32,
        key: MasterKey,
        mki: Option<Mki>,
        replay_window: u32,
    ) -> Result<SrtpReceiver, SetupError> {
        if !(64..0x8000).contains(&replay_window) {
            return Err(SetupError::ReplayWindow(replay_window));
        }
        let keys = Keys {
            suite: key.suite(),
            entries: vec![(mki, key)],
        };
        let session = Session::new(ssrc, &keys, replay_window)?;
        Ok(SrtpReceiver {
            session,
            ssrc,
            keys,
            window: replay_window,
            highest: None,
            join_hint: None,
            roc_set: 0,
            replay_floor: None,
        })
    }

    pub fn suite(&self) -> Suite {
        self.keys.suite
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Highest authentic RTP packet index so far.
    pub fn highest_index(&self) -> Option<u64> {
        self.highest
    }

    /// A receiver joining a stream that has already wrapped its sequence
    /// number must know the rollover counter (RFC 3711 §3.3.1): given the
    /// sender's index at about the time of joining (`SrtpSender::last_index`,
    /// passed over the speaker channel), the first packet's index is taken
    /// as the one nearest to it. Without it the receiver assumes ROC 0,
    /// like ffmpeg and a GStreamer caps without `roc`.
    pub fn expect_index(&mut self, index: u64) -> Result<(), SetupError> {
        if self.highest.is_some() {
            return Err(SetupError::AlreadySynchronised);
        }
        self.join_hint = Some(index);
        Ok(())
    }

    /// Verifies and decrypts an SRTP packet in place; returns the length of
    /// the plain RTP packet at the start of `packet`. On error the contents
    /// of `packet` are unspecified and it must be dropped. libsrtp reads the
    /// header as 32-bit words: `packet` should start 4-byte aligned.
    pub fn unprotect_rtp(&mut self, packet: &mut [u8]) -> Result<usize, UnprotectError> {
        let header = rtp_header_len(packet).map_err(UnprotectError::Malformed)?;
        if packet.len() < header + self.keys.rtp_trailer() {
            return Err(UnprotectError::Malformed(
                "shorter than its header and authentication tag",
            ));
        }
        let ssrc = be32(packet, 8);
        if ssrc != self.ssrc {
            return Err(UnprotectError::UnknownSsrc { ssrc });
        }
        let seq = be16(packet, 2);
        let index = match (self.highest, self.join_hint) {
            (Some(reference), _) | (None, Some(reference)) => estimate_index(reference, seq),
            (None, None) => u64::from(seq),
        };
        if self.replay_floor.is_some_and(|floor| index <= floor) {
            return Err(UnprotectError::Replay { index });
        }
        if self.highest.is_none() && self.join_hint.is_some() {
            self.prepare_join(index)?;
        }
        let len =
            self.unprotect(packet, ffi::srtp_unprotect_mki)
                .map_err(|status| match status {
                    ffi::ERR_REPLAY_FAIL | ffi::ERR_REPLAY_OLD => UnprotectError::Replay { index },
                    status => self.error(status, packet),
                })?;
        self.highest = Some(self.highest.map_or(index, |h| h.max(index)));
        if self
            .replay_floor
            .is_some_and(|floor| index > floor + u64::from(self.window))
        {
            // libsrtp's own window now refuses everything at or below it.
            self.replay_floor = None;
        }
        Ok(len)
    }

    /// Verifies and decrypts an SRTCP compound packet in place; returns the
    /// length of the plain RTCP at the start of `packet`.
    pub fn unprotect_rtcp(&mut self, packet: &mut [u8]) -> Result<usize, UnprotectError> {
        rtcp_check(packet).map_err(UnprotectError::Malformed)?;
        if packet.len() < 8 + self.keys.rtcp_trailer() {
            return Err(UnprotectError::Malformed(
                "shorter than its header, SRTCP index and tag",
            ));
        }
        let ssrc = be32(packet, 4);
        if ssrc != self.ssrc {
            return Err(UnprotectError::UnknownSsrc { ssrc });
        }
        let index_at = match self.keys.suite {
            // RFC 3711 §3.4: … E ‖ index ‖ MKI ‖ tag.
            Suite::AesCm128HmacSha1_80 => packet.len() - self.keys.rtp_trailer() - 4,
            // RFC 7714 §17 (and libsrtp): … tag ‖ E ‖ index ‖ MKI.
            Suite::AeadAes128Gcm => packet.len() - self.keys.mki_len() - 4,
        };
        let index = u64::from(be32(packet, index_at) & 0x7fff_ffff);
        self.unprotect(packet, ffi::srtp_unprotect_rtcp_mki)
            .map_err(|status| match status {
                ffi::ERR_REPLAY_FAIL | ffi::ERR_REPLAY_OLD => UnprotectError::Replay { index },
                status => self.error(status, packet),
            })
    }

    fn unprotect(
        &mut self,
        packet: &mut [u8],
        call: unsafe extern "C" fn(
            *mut ffi::srtp_ctx_t,
            *mut std::ffi::c_void,
            *mut c_int,
            c_uint,
        ) -> ffi::srtp_err_status_t,
    ) -> Result<usize, ffi::srtp_err_status_t> {
        // Packets come from UDP (≤ 64 KiB); anything longer is not ours.
        let mut len = c_int::try_from(packet.len()).map_err(|_| ffi::ERR_BAD_PARAM)?;
        // SAFETY: libsrtp reads and writes within `len` bytes of `packet`;
        // the header and trailer lengths were checked above.
        let status = unsafe {
            call(
                self.session.ptr(),
                packet.as_mut_ptr().cast(),
                &mut len,
                c_uint::from(self.keys.uses_mki()),
            )
        };
        match status {
            ffi::ERR_OK if (0..=packet.len() as c_int).contains(&len) => Ok(len as usize),
            ffi::ERR_OK => Err(ffi::ERR_BAD_PARAM),
            status => Err(status),
        }
    }

    fn error(&self, status: ffi::srtp_err_status_t, packet: &[u8]) -> UnprotectError {
        match status {
            // GCM reports a wrong tag from inside the cipher.
            ffi::ERR_AUTH_FAIL | ffi::ERR_CIPHER_FAIL => UnprotectError::BadAuth,
            ffi::ERR_NO_CTX => UnprotectError::UnknownSsrc { ssrc: self.ssrc },
            ffi::ERR_BAD_MKI => {
                let mki_len = self.keys.mki_len();
                // Where libsrtp puts the MKI, in SRTP and SRTCP alike: before
                // the tag for AES-CM (RFC 3711 §3.1, §3.4), last for GCM.
                let at = match self.keys.suite {
                    Suite::AesCm128HmacSha1_80 => {
                        packet.len() - self.keys.suite.tag_len() - mki_len
                    }
                    Suite::AeadAes128Gcm => packet.len() - mki_len,
                };
                let mki = packet[at..at + mki_len]
                    .iter()
                    .fold(0u32, |v, b| v << 8 | u32::from(*b));
                UnprotectError::UnknownKey { mki }
            }
            ffi::ERR_KEY_EXPIRED => UnprotectError::KeyExhausted,
            ffi::ERR_BAD_PARAM | ffi::ERR_PARSE_ERR => UnprotectError::Malformed(
                "libsrtp2 found the header inconsistent with the packet length",
            ),
            status => UnprotectError::Library(status),
        }
    }

    /// Before the first authentic packet of a late join, tells libsrtp the
    /// ROC of this packet. libsrtp (≥ 2.3) keeps it as a "pending ROC",
    /// uses it as is for each packet until one authenticates, then follows
    /// the stream from there; so a forged first packet costs nothing.
    fn prepare_join(&mut self, index: u64) -> Result<(), UnprotectError> {
        let roc = (index >> 16) as u32;
        if roc != self.roc_set {
            self.session.set_roc(self.ssrc, roc).map_err(|e| match e {
                SetupError::Library(status) => UnprotectError::Library(status),
                _ => UnprotectError::Library(ffi::ERR_BAD_PARAM),
            })?;
            self.roc_set = roc;
        }
        Ok(())
    }

    /// Takes the next key before the sender switches to it.
    pub fn add_key(&mut self, key: MasterKey, mki: Mki) -> Result<(), SetupError> {
        let next = self.keys.with_added(key, mki)?;
        self.update(next)
    }

    /// Forgets a retired or revoked key: its packets become `UnknownKey`.
    pub fn remove_key(&mut self, mki: Mki) -> Result<(), SetupError> {
        let position = self.keys.position(mki)?;
        if self.keys.entries.len() == 1 {
            return Err(SetupError::RemovingActiveKey(mki));
        }
        let mut next = self.keys.clone();
        next.entries.remove(position);
        self.update(next)
    }

    fn update(&mut self, next: Keys) -> Result<(), SetupError> {
        self.session.update(self.ssrc, &next, self.window)?;
        self.keys = next;
        self.replay_floor = self.highest.max(self.replay_floor);
        Ok(())
    }
}
