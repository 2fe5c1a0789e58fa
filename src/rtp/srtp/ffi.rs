//! The few libsrtp2 (Cisco, ≥ 2.3; Debian ships 2.5) declarations loa uses,
//! written out by hand from `<srtp2/srtp.h>` instead of generated: no
//! maintained `-sys` crate exists (srtp2-sys bundles a 2019 libsrtp and an
//! old bindgen), and a dozen functions do not justify libclang at build
//! time. `tests.rs` checks the struct layouts against what libsrtp itself
//! writes into them, and the known-answer tests check the rest.
//!
//! Nothing here is safe to call directly; `context.rs` is the only user.

#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_int, c_uint, c_ulong, c_void};

/// `srtp_err_status_t`: a C enum, so an `int` on every platform loa runs on.
pub(super) type srtp_err_status_t = c_int;

pub(super) const ERR_OK: srtp_err_status_t = 0;
pub(super) const ERR_BAD_PARAM: srtp_err_status_t = 2;
pub(super) const ERR_ALLOC_FAIL: srtp_err_status_t = 3;
pub(super) const ERR_AUTH_FAIL: srtp_err_status_t = 7;
pub(super) const ERR_CIPHER_FAIL: srtp_err_status_t = 8;
pub(super) const ERR_REPLAY_FAIL: srtp_err_status_t = 9;
pub(super) const ERR_REPLAY_OLD: srtp_err_status_t = 10;
pub(super) const ERR_NO_CTX: srtp_err_status_t = 13;
pub(super) const ERR_KEY_EXPIRED: srtp_err_status_t = 15;
pub(super) const ERR_PARSE_ERR: srtp_err_status_t = 21;
pub(super) const ERR_BAD_MKI: srtp_err_status_t = 25;

/// `srtp_ssrc_type_t::ssrc_specific`.
pub(super) const SSRC_SPECIFIC: c_int = 1;

/// `SRTP_MAX_NUM_MASTER_KEYS`: how many MKIs one stream can hold.
pub(super) const MAX_MASTER_KEYS: usize = 16;

/// Opaque `srtp_ctx_t`.
#[repr(C)]
pub(super) struct srtp_ctx_t {
    _private: [u8; 0],
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(super) struct srtp_crypto_policy_t {
    pub cipher_type: u32,
    pub cipher_key_len: c_int,
    pub auth_type: u32,
    pub auth_key_len: c_int,
    pub auth_tag_len: c_int,
    /// `srtp_sec_serv_t`, a C enum.
    pub sec_serv: c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct srtp_ssrc_t {
    /// `srtp_ssrc_type_t`, a C enum.
    pub type_: c_int,
    pub value: c_uint,
}

#[repr(C)]
pub(super) struct srtp_master_key_t {
    pub key: *mut u8,
    pub mki_id: *mut u8,
    pub mki_size: c_uint,
}

#[repr(C)]
pub(super) struct srtp_policy_t {
    pub ssrc: srtp_ssrc_t,
    pub rtp: srtp_crypto_policy_t,
    pub rtcp: srtp_crypto_policy_t,
    /// The single master key (key ‖ salt) when `keys` is null.
    pub key: *mut u8,
    /// With MKIs: an array of `num_master_keys` pointers.
    pub keys: *mut *mut srtp_master_key_t,
    pub num_master_keys: c_ulong,
    pub deprecated_ekt: *mut c_void,
    /// Replay window in packets; 0 means libsrtp's default of 128.
    pub window_size: c_ulong,
    pub allow_repeat_tx: c_int,
    pub enc_xtn_hdr: *mut c_int,
    pub enc_xtn_hdr_count: c_int,
    pub next: *mut srtp_policy_t,
}

#[link(name = "srtp2")]
extern "C" {
    pub(super) fn srtp_init() -> srtp_err_status_t;
    pub(super) fn srtp_get_version() -> c_uint;
    pub(super) fn srtp_get_version_string() -> *const c_char;

    pub(super) fn srtp_create(
        session: *mut *mut srtp_ctx_t,
        policy: *const srtp_policy_t,
    ) -> srtp_err_status_t;
    pub(super) fn srtp_dealloc(session: *mut srtp_ctx_t) -> srtp_err_status_t;
    pub(super) fn srtp_update_stream(
        session: *mut srtp_ctx_t,
        policy: *const srtp_policy_t,
    ) -> srtp_err_status_t;

    pub(super) fn srtp_crypto_policy_set_rtp_default(p: *mut srtp_crypto_policy_t);
    pub(super) fn srtp_crypto_policy_set_aes_gcm_128_16_auth(p: *mut srtp_crypto_policy_t);

    pub(super) fn srtp_protect_mki(
        session: *mut srtp_ctx_t,
        rtp_hdr: *mut c_void,
        pkt_octet_len: *mut c_int,
        use_mki: c_uint,
        mki_index: c_uint,
    ) -> srtp_err_status_t;
    pub(super) fn srtp_unprotect_mki(
        session: *mut srtp_ctx_t,
        srtp_hdr: *mut c_void,
        len_ptr: *mut c_int,
        use_mki: c_uint,
    ) -> srtp_err_status_t;
    pub(super) fn srtp_protect_rtcp_mki(
        session: *mut srtp_ctx_t,
        rtcp_hdr: *mut c_void,
        pkt_octet_len: *mut c_int,
        use_mki: c_uint,
        mki_index: c_uint,
    ) -> srtp_err_status_t;
    pub(super) fn srtp_unprotect_rtcp_mki(
        session: *mut srtp_ctx_t,
        srtcp_hdr: *mut c_void,
        pkt_octet_len: *mut c_int,
        use_mki: c_uint,
    ) -> srtp_err_status_t;

    #[cfg(test)]
    pub(super) fn srtp_get_protect_trailer_length(
        session: *mut srtp_ctx_t,
        use_mki: u32,
        mki_index: u32,
        length: *mut u32,
    ) -> srtp_err_status_t;
    #[cfg(test)]
    pub(super) fn srtp_get_protect_rtcp_trailer_length(
        session: *mut srtp_ctx_t,
        use_mki: u32,
        mki_index: u32,
        length: *mut u32,
    ) -> srtp_err_status_t;

    pub(super) fn srtp_set_stream_roc(
        session: *mut srtp_ctx_t,
        ssrc: u32,
        roc: u32,
    ) -> srtp_err_status_t;
}

/// The raw AES-CM cipher, for the RFC 3711 Appendix B.2 keystream test only.
/// `srtp_crypto_kernel_alloc_cipher` is exported by libsrtp2 but declared in
/// a header Debian does not install; its signature has not changed in 2.x.
#[cfg(test)]
pub(super) mod raw_cipher {
    use super::*;

    /// `SRTP_AES_ICM_128` from `<srtp2/crypto_types.h>`.
    pub const AES_ICM_128: u32 = 1;
    /// `srtp_direction_encrypt`.
    pub const DIRECTION_ENCRYPT: c_int = 0;

    #[repr(C)]
    pub struct srtp_cipher_t {
        _private: [u8; 0],
    }

    #[link(name = "srtp2")]
    extern "C" {
        pub fn srtp_crypto_kernel_alloc_cipher(
            id: u32,
            cipher: *mut *mut srtp_cipher_t,
            key_len: c_int,
            tag_len: c_int,
        ) -> srtp_err_status_t;
        pub fn srtp_cipher_init(cipher: *mut srtp_cipher_t, key: *const u8) -> srtp_err_status_t;
        pub fn srtp_cipher_set_iv(
            cipher: *mut srtp_cipher_t,
            iv: *mut u8,
            direction: c_int,
        ) -> srtp_err_status_t;
        pub fn srtp_cipher_output(
            cipher: *mut srtp_cipher_t,
            buffer: *mut u8,
            num_octets_to_output: *mut u32,
        ) -> srtp_err_status_t;
        pub fn srtp_cipher_dealloc(cipher: *mut srtp_cipher_t) -> srtp_err_status_t;
    }
}
