//! The sender and receiver crypto contexts over libsrtp2: one per zone and
//! direction, one SSRC each (DESIGN.md: one zone = one SSRC).
//!
//! Packets are protected and unprotected in place. `protect_*` grows the
//! caller's `Vec` by the trailer, which allocates nothing once the pacer's
//! reused buffer has the capacity (`SrtpSender::rtp_trailer_len`). libsrtp2
//! itself, as Debian builds it (NSS backend), creates an NSS cipher context
//! per packet; `examples/srtp_cost.rs` measures what that costs.
//!
//! Key rotation is by MKI (RFC 3711 §3.1, §8.1): both ends hold up to 16
//! keys per stream, the sender names the key of each packet, and the
//! switch happens at whichever packet the sender chooses, with no
//! coordination. A context without MKI holds exactly one key.

use std::os::raw::{c_int, c_uint};
use std::ptr::{self, NonNull};
use std::sync::OnceLock;

use zeroize::Zeroize;

use super::ffi;
use super::key::{MasterKey, Mki, Suite};

/// Setting a context up, or changing its keys, failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    #[error("libsrtp2 {0} is too old: loa needs 2.3 or later")]
    LibraryTooOld(String),
    #[error("libsrtp2 failed to start (status {0})")]
    LibraryInit(i32),
    #[error("a {got} key cannot join a {expected} context")]
    SuiteMismatch { expected: Suite, got: Suite },
    #[error("a context without MKI holds exactly one key: rotation needs MKIs")]
    NeedsMki,
    #[error("a context with MKIs changes keys by adding the next and using it, not by replacing its key")]
    NamedByMki,
    #[error("a running stream cannot start or stop carrying an MKI; the zone must be sent anew")]
    MkiChoiceChanged,
    #[error(
        "all MKIs of a stream have one length: this one has {got} bytes, the others {expected}"
    )]
    MkiLengthMismatch { expected: u8, got: u8 },
    #[error("MKI {0} is already installed")]
    DuplicateMki(Mki),
    #[error("no key with MKI {0} is installed")]
    NoSuchMki(Mki),
    #[error("a stream holds at most 16 keys")]
    TooManyKeys,
    #[error("the key in use (MKI {0}) cannot be removed; switch to another first")]
    RemovingActiveKey(Mki),
    #[error("replay window of {0} packets is outside 64 to 32767")]
    ReplayWindow(u32),
    #[error(
        "the receiver has already accepted packets; an expected index only helps before the first"
    )]
    AlreadySynchronised,
    #[error("libsrtp2 refused the configuration (status {0})")]
    Library(i32),
}

/// Protecting an outgoing packet failed; the packet must not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtectError {
    #[error("not an RTP packet: {0}")]
    NotRtp(&'static str),
    #[error("not an RTCP packet: {0}")]
    NotRtcp(&'static str),
    #[error("the packet has SSRC {got:#010x} but this context protects {expected:#010x}")]
    WrongSsrc { expected: u32, got: u32 },
    /// RFC 3711 §9.1: an index protected twice with different contents
    /// leaks both plaintexts (AES-CM) or the authentication key (GCM).
    #[error(
        "sequence number {seq} does not come after {last}: a packet index is never protected twice"
    )]
    IndexNotAdvancing { seq: u16, last: u16 },
    #[error("the master key has protected as many packets as it may (RFC 3711 §9.2): rotate it")]
    KeyExhausted,
    #[error("a packet of {0} bytes is too long to protect")]
    TooLong(usize),
    #[error("libsrtp2 failed to protect the packet (status {0})")]
    Library(i32),
}

/// Why a received packet was rejected. Each is counted by the speaker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnprotectError {
    #[error("authentication failed: wrong key, or the packet was altered")]
    BadAuth,
    #[error("packet index {index} was already received or is too old")]
    Replay { index: u64 },
    #[error("packet from unknown SSRC {ssrc:#010x}")]
    UnknownSsrc { ssrc: u32 },
    #[error("the packet names master key {mki}, which this receiver does not hold")]
    UnknownKey { mki: u32 },
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    #[error("the master key has reached its packet limit (RFC 3711 §9.2)")]
    KeyExhausted,
    #[error("libsrtp2 failed to unprotect the packet (status {0})")]
    Library(i32),
}

impl UnprotectError {
    /// A stable short name per reason, for counters and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            UnprotectError::BadAuth => "bad_auth",
            UnprotectError::Replay { .. } => "replay",
            UnprotectError::UnknownSsrc { .. } => "unknown_ssrc",
            UnprotectError::UnknownKey { .. } => "unknown_key",
            UnprotectError::Malformed(_) => "malformed",
            UnprotectError::KeyExhausted => "key_exhausted",
            UnprotectError::Library(_) => "library",
        }
    }
}

/// RFC 5761 §4: on a port shared by RTP and RTCP, the second byte tells
/// them apart (RTCP packet types 192–223 = RTP payload types 64–95 with
/// the marker set, which RTP never uses).
pub fn is_rtcp(packet: &[u8]) -> bool {
    packet.len() >= 2 && (192..=223).contains(&packet[1])
}

/// libsrtp2's own estimate of a packet index from its sequence number and
/// the highest index seen (RFC 3711 §3.3.1 and Appendix A, as
/// `srtp_index_guess` does it, including its "ROC 0 until past half the
/// sequence space" start), so our bookkeeping agrees with the library's.
pub(crate) fn estimate_index(reference: u64, seq: u16) -> u64 {
    const MEDIAN: i64 = 1 << 15;
    if reference <= MEDIAN as u64 {
        return u64::from(seq);
    }
    let local_roc = reference >> 16;
    let local_seq = (reference & 0xffff) as i64;
    let s = i64::from(seq);
    let roc = if local_seq < MEDIAN {
        if s - local_seq > MEDIAN {
            local_roc.saturating_sub(1)
        } else {
            local_roc
        }
    } else if local_seq - MEDIAN > s {
        local_roc + 1
    } else {
        local_roc
    };
    (roc << 16) | u64::from(seq)
}

/// libsrtp2 must be initialised once per process and be recent enough to
/// have MKI and the bounds checks of 2.3.
fn library() -> Result<(), SetupError> {
    static INIT: OnceLock<Result<(), SetupError>> = OnceLock::new();
    INIT.get_or_init(|| {
        // SAFETY: no arguments; returns a static string / number.
        let version = unsafe { ffi::srtp_get_version() };
        if version < 0x0203_0000 {
            // SAFETY: libsrtp returns a pointer to a static C string.
            let text = unsafe { std::ffi::CStr::from_ptr(ffi::srtp_get_version_string()) };
            return Err(SetupError::LibraryTooOld(
                text.to_string_lossy().into_owned(),
            ));
        }
        // SAFETY: called once, before any other libsrtp call.
        match unsafe { ffi::srtp_init() } {
            ffi::ERR_OK => Ok(()),
            status => Err(SetupError::LibraryInit(status)),
        }
    })
    .clone()
}

/// The keys of one stream, in libsrtp's order (the MKI index is the
/// position here).
#[derive(Clone)]
pub(super) struct Keys {
    pub(super) suite: Suite,
    pub(super) entries: Vec<(Option<Mki>, MasterKey)>,
}

impl Keys {
    pub(super) fn uses_mki(&self) -> bool {
        self.entries[0].0.is_some()
    }

    pub(super) fn mki_len(&self) -> usize {
        self.entries[0].0.map_or(0, |m| usize::from(m.byte_len()))
    }

    pub(super) fn rtp_trailer(&self) -> usize {
        self.suite.tag_len() + self.mki_len()
    }

    /// The SRTCP trailer adds the E bit and 31-bit index (RFC 3711 §3.4).
    pub(super) fn rtcp_trailer(&self) -> usize {
        4 + self.rtp_trailer()
    }

    pub(super) fn position(&self, mki: Mki) -> Result<usize, SetupError> {
        self.entries
            .iter()
            .position(|(m, _)| *m == Some(mki))
            .ok_or(SetupError::NoSuchMki(mki))
    }

    pub(super) fn with_added(&self, key: MasterKey, mki: Mki) -> Result<Keys, SetupError> {
        if key.suite() != self.suite {
            return Err(SetupError::SuiteMismatch {
                expected: self.suite,
                got: key.suite(),
            });
        }
        let Some(first) = self.entries[0].0 else {
            return Err(SetupError::NeedsMki);
        };
        if first.byte_len() != mki.byte_len() {
            return Err(SetupError::MkiLengthMismatch {
                expected: first.byte_len(),
                got: mki.byte_len(),
            });
        }
        if self.entries.iter().any(|(m, _)| *m == Some(mki)) {
            return Err(SetupError::DuplicateMki(mki));
        }
        if self.entries.len() == ffi::MAX_MASTER_KEYS {
            return Err(SetupError::TooManyKeys);
        }
        let mut next = self.clone();
        next.entries.push((Some(mki), key));
        Ok(next)
    }

    /// Builds the libsrtp policy and hands it to `f` while the buffers it
    /// points into live; the copies of the keys are zeroed afterwards.
    fn with_policy<T>(
        &self,
        ssrc: u32,
        window: u32,
        f: impl FnOnce(&ffi::srtp_policy_t) -> T,
    ) -> T {
        let mut key_bytes: Vec<[u8; 30]> = self
            .entries
            .iter()
            .map(|(_, k)| {
                let mut b = [0u8; 30];
                b[..k.expose_bytes().len()].copy_from_slice(k.expose_bytes());
                b
            })
            .collect();
        let mut mki_bytes: Vec<[u8; 4]> = self
            .entries
            .iter()
            .map(|(m, _)| {
                let mut b = [0u8; 4];
                if let Some(m) = m {
                    b[..usize::from(m.byte_len())].copy_from_slice(&m.to_bytes());
                }
                b
            })
            .collect();
        let mut masters: Vec<ffi::srtp_master_key_t> = key_bytes
            .iter_mut()
            .zip(mki_bytes.iter_mut())
            .map(|(k, m)| ffi::srtp_master_key_t {
                key: k.as_mut_ptr(),
                mki_id: m.as_mut_ptr(),
                mki_size: self.mki_len() as c_uint,
            })
            .collect();
        let mut master_ptrs: Vec<*mut ffi::srtp_master_key_t> =
            masters.iter_mut().map(|m| m as *mut _).collect();

        let mut crypto = ffi::srtp_crypto_policy_t::default();
        // SAFETY: each setter only writes the struct it is given.
        unsafe {
            match self.suite {
                Suite::AesCm128HmacSha1_80 => ffi::srtp_crypto_policy_set_rtp_default(&mut crypto),
                Suite::AeadAes128Gcm => {
                    ffi::srtp_crypto_policy_set_aes_gcm_128_16_auth(&mut crypto)
                }
            }
        }
        let (key, keys, num_master_keys) = if self.uses_mki() {
            (
                ptr::null_mut(),
                master_ptrs.as_mut_ptr(),
                master_ptrs.len() as _,
            )
        } else {
            (key_bytes[0].as_mut_ptr(), ptr::null_mut(), 0)
        };
        let policy = ffi::srtp_policy_t {
            ssrc: ffi::srtp_ssrc_t {
                type_: ffi::SSRC_SPECIFIC,
                value: ssrc,
            },
            rtp: crypto,
            // RFC 3711 §3.4: SRTCP is always authenticated; same suite as RTP.
            rtcp: crypto,
            key,
            keys,
            num_master_keys,
            deprecated_ekt: ptr::null_mut(),
            window_size: window as _,
            // Never: a repeated index is refused (see ProtectError).
            allow_repeat_tx: 0,
            enc_xtn_hdr: ptr::null_mut(),
            enc_xtn_hdr_count: 0,
            next: ptr::null_mut(),
        };
        let out = f(&policy);
        key_bytes.zeroize();
        out
    }
}

/// An owned libsrtp session holding one stream.
pub(super) struct Session(NonNull<ffi::srtp_ctx_t>);

// SAFETY: a libsrtp session has no thread affinity; `&mut self` on every
// call that uses it serialises access.
unsafe impl Send for Session {}

impl Session {
    pub(super) fn new(ssrc: u32, keys: &Keys, window: u32) -> Result<Session, SetupError> {
        library()?;
        let mut raw = ptr::null_mut();
        // SAFETY: the policy and what it points to outlive the call; libsrtp
        // copies what it keeps.
        let status = keys.with_policy(ssrc, window, |p| unsafe { ffi::srtp_create(&mut raw, p) });
        match (status, NonNull::new(raw)) {
            (ffi::ERR_OK, Some(ptr)) => Ok(Session(ptr)),
            (ffi::ERR_OK, None) => Err(SetupError::Library(ffi::ERR_ALLOC_FAIL)),
            (status, _) => Err(SetupError::Library(status)),
        }
    }

    pub(super) fn ptr(&self) -> *mut ffi::srtp_ctx_t {
        self.0.as_ptr()
    }

    /// Replaces the stream's keys. libsrtp keeps the RTP index (so the ROC)
    /// and the SRTCP replay state, but resets the RTP replay window.
    pub(super) fn update(&mut self, ssrc: u32, keys: &Keys, window: u32) -> Result<(), SetupError> {
        // SAFETY: as in `new`; the session is valid while `self` lives.
        let status = keys.with_policy(ssrc, window, |p| unsafe {
            ffi::srtp_update_stream(self.ptr(), p)
        });
        match status {
            ffi::ERR_OK => Ok(()),
            status => Err(SetupError::Library(status)),
        }
    }

    pub(super) fn set_roc(&mut self, ssrc: u32, roc: u32) -> Result<(), SetupError> {
        // SAFETY: SSRC in host order here (srtp.h); the session is valid.
        match unsafe { ffi::srtp_set_stream_roc(self.ptr(), ssrc, roc) } {
            ffi::ERR_OK => Ok(()),
            status => Err(SetupError::Library(status)),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: created by srtp_create, freed once; libsrtp zeroes the
        // session keys it derived.
        unsafe { ffi::srtp_dealloc(self.ptr()) };
    }
}

pub(super) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

pub(super) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Length of the RTP header (fixed part, CSRCs, extension), checked
/// against the packet so libsrtp never reads past it.
pub(super) fn rtp_header_len(p: &[u8]) -> Result<usize, &'static str> {
    if p.len() < 12 {
        return Err("shorter than the 12-byte RTP header");
    }
    if p[0] >> 6 != 2 {
        return Err("RTP version is not 2");
    }
    let mut n = 12 + 4 * usize::from(p[0] & 0x0f);
    if p.len() < n {
        return Err("shorter than its CSRC list");
    }
    if p[0] & 0x10 != 0 {
        if p.len() < n + 4 {
            return Err("shorter than its header extension");
        }
        n += 4 + 4 * usize::from(be16(p, n + 2));
        if p.len() < n {
            return Err("shorter than its header extension");
        }
    }
    Ok(n)
}

pub(super) fn rtcp_check(p: &[u8]) -> Result<(), &'static str> {
    if p.len() < 8 {
        return Err("shorter than the 8-byte RTCP header");
    }
    if p[0] >> 6 != 2 {
        return Err("RTCP version is not 2");
    }
    Ok(())
}

/// Protects one zone's outgoing RTP and RTCP.
pub struct SrtpSender {
    session: Session,
    ssrc: u32,
    keys: Keys,
    active: usize,
    last_index: Option<u64>,
}

impl std::fmt::Debug for SrtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpSender")
            .field("ssrc", &self.ssrc)
            .field("suite", &self.keys.suite)
            .field("active_mki", &self.active_mki())
            .field("last_index", &self.last_index)
            .finish_non_exhaustive()
    }
}

impl SrtpSender {
    /// A sender for `ssrc` with its first key. With `mki`, every packet
    /// carries it and later keys can be added; without, this key is the
    /// only one for the context's life.
    pub fn new(ssrc: u32, key: MasterKey, mki: Option<Mki>) -> Result<SrtpSender, SetupError> {
        let keys = Keys {
            suite: key.suite(),
            entries: vec![(mki, key)],
        };
        let session = Session::new(ssrc, &keys, 0)?;
        Ok(SrtpSender {
            session,
            ssrc,
            keys,
            active: 0,
            last_index: None,
        })
    }

    pub fn suite(&self) -> Suite {
        self.keys.suite
    }

    /// Bytes `protect_rtp` appends (tag, MKI): reserve them in the reused
    /// packet buffer and protect allocates nothing.
    pub fn rtp_trailer_len(&self) -> usize {
        self.keys.rtp_trailer()
    }

    /// Bytes `protect_rtcp` appends (E bit + index, tag, MKI).
    pub fn rtcp_trailer_len(&self) -> usize {
        self.keys.rtcp_trailer()
    }

    /// Index (ROC × 65536 + seq) of the last protected RTP packet: what a
    /// receiver joining now needs (`SrtpReceiver::expect_index`), since no
    /// SDP or caps field carries the ROC for multicast late joiners.
    pub fn last_index(&self) -> Option<u64> {
        self.last_index
    }

    pub fn active_mki(&self) -> Option<Mki> {
        self.keys.entries[self.active].0
    }

    /// Protects a complete RTP packet in place: the payload is encrypted
    /// and the trailer appended. On error the packet is unchanged and must
    /// not be sent.
    pub fn protect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), ProtectError> {
        rtp_header_len(packet).map_err(ProtectError::NotRtp)?;
        let ssrc = be32(packet, 8);
        if ssrc != self.ssrc {
            return Err(ProtectError::WrongSsrc {
                expected: self.ssrc,
                got: ssrc,
            });
        }
        let seq = be16(packet, 2);
        let index = match self.last_index {
            None => u64::from(seq),
            Some(last) => {
                let index = estimate_index(last, seq);
                if index <= last {
                    return Err(ProtectError::IndexNotAdvancing {
                        seq,
                        last: last as u16,
                    });
                }
                index
            }
        };
        let trailer = self.keys.rtp_trailer();
        self.protect(packet, trailer, ffi::srtp_protect_mki)?;
        self.last_index = Some(index);
        Ok(())
    }

    /// Protects a complete RTCP compound packet in place (SRTCP, RFC 3711
    /// §3.4: encrypted after the first 8 bytes, E bit + index + tag added).
    pub fn protect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), ProtectError> {
        rtcp_check(packet).map_err(ProtectError::NotRtcp)?;
        let ssrc = be32(packet, 4);
        if ssrc != self.ssrc {
            return Err(ProtectError::WrongSsrc {
                expected: self.ssrc,
                got: ssrc,
            });
        }
        let trailer = self.keys.rtcp_trailer();
        self.protect(packet, trailer, ffi::srtp_protect_rtcp_mki)
    }

    fn protect(
        &mut self,
        packet: &mut Vec<u8>,
        trailer: usize,
        call: unsafe extern "C" fn(
            *mut ffi::srtp_ctx_t,
            *mut std::ffi::c_void,
            *mut c_int,
            c_uint,
            c_uint,
        ) -> ffi::srtp_err_status_t,
    ) -> Result<(), ProtectError> {
        let mut len = c_int::try_from(packet.len() + trailer)
            .map_err(|_| ProtectError::TooLong(packet.len()))?;
        len -= trailer as c_int;
        // No allocation when the caller's buffer already has the room.
        packet.reserve(trailer);
        // SAFETY: the buffer holds `len` initialised bytes and `trailer`
        // more of capacity, all libsrtp writes (tag + MKI [+ SRTCP index]).
        let status = unsafe {
            call(
                self.session.ptr(),
                packet.as_mut_ptr().cast(),
                &mut len,
                c_uint::from(self.keys.uses_mki()),
                self.active as c_uint,
            )
        };
        match status {
            ffi::ERR_OK => {
                let new_len = len as usize;
                assert!(
                    new_len <= packet.len() + trailer,
                    "libsrtp wrote past the trailer"
                );
                // SAFETY: libsrtp initialised bytes up to `new_len`, within capacity.
                unsafe { packet.set_len(new_len) };
                Ok(())
            }
            ffi::ERR_KEY_EXPIRED => Err(ProtectError::KeyExhausted),
            ffi::ERR_REPLAY_FAIL | ffi::ERR_REPLAY_OLD => {
                let seq = be16(packet, 2);
                Err(ProtectError::IndexNotAdvancing {
                    seq,
                    last: self.last_index.unwrap_or(0) as u16,
                })
            }
            status => Err(ProtectError::Library(status)),
        }
    }

    /// Hands the next key to the context before the switch (RFC 3711 §8.1).
    /// Packets keep using the active key until `use_key`.
    pub fn add_key(&mut self, key: MasterKey, mki: Mki) -> Result<(), SetupError> {
        let next = self.keys.with_added(key, mki)?;
        self.session.update(self.ssrc, &next, 0)?;
        self.keys = next;
        Ok(())
    }

    /// From the next packet on, protect with this key. O(1): safe to call
    /// between two packets on the pacer thread.
    pub fn use_key(&mut self, mki: Mki) -> Result<(), SetupError> {
        self.active = self.keys.position(mki)?;
        Ok(())
    }

    /// A context without MKI changes key by replacing its one key, from
    /// the next packet on. Its packets name no key, so every receiver must
    /// hold this one by then (RFC 3711 §8.1 leaves how to key management);
    /// one that does not fails every packet after the change. The index
    /// (so the ROC) goes on: a new key never meets an index the old one
    /// used, and the old one never protects again. Allocates (libsrtp
    /// rebuilds the stream), like `add_key`.
    pub fn replace_key(&mut self, key: MasterKey) -> Result<(), SetupError> {
        if self.keys.uses_mki() {
            return Err(SetupError::NamedByMki);
        }
        if key.suite() != self.keys.suite {
            return Err(SetupError::SuiteMismatch {
                expected: self.keys.suite,
                got: key.suite(),
            });
        }
        let next = Keys {
            suite: self.keys.suite,
            entries: vec![(None, key)],
        };
        self.session.update(self.ssrc, &next, 0)?;
        self.keys = next;
        Ok(())
    }

    /// Forgets a retired key (revocation, or the day after a rotation).
    pub fn remove_key(&mut self, mki: Mki) -> Result<(), SetupError> {
        let position = self.keys.position(mki)?;
        if position == self.active {
            return Err(SetupError::RemovingActiveKey(mki));
        }
        let mut next = self.keys.clone();
        next.entries.remove(position);
        self.session.update(self.ssrc, &next, 0)?;
        self.keys = next;
        if position < self.active {
            self.active -= 1;
        }
        Ok(())
    }
}

#[cfg(test)]
impl SrtpSender {
    /// What libsrtp says the RTP and RTCP trailers of the active key are.
    pub(super) fn libsrtp_trailer_lengths(&self) -> (usize, usize) {
        let (mut rtp, mut rtcp) = (0u32, 0u32);
        let use_mki = u32::from(self.keys.uses_mki());
        // SAFETY: the session is valid; outputs are plain integers.
        unsafe {
            assert_eq!(
                ffi::srtp_get_protect_trailer_length(
                    self.session.ptr(),
                    use_mki,
                    self.active as u32,
                    &mut rtp
                ),
                0
            );
            assert_eq!(
                ffi::srtp_get_protect_rtcp_trailer_length(
                    self.session.ptr(),
                    use_mki,
                    self.active as u32,
                    &mut rtcp
                ),
                0
            );
        }
        (rtp as usize, rtcp as usize)
    }
}
