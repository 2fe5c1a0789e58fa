//! Known answers: RFC 3711 Appendix B.2 (AES-CM keystream) and B.3 (key
//! derivation), libsrtp's reference packets for both suites (its
//! `srtp_driver`, the same bytes for RTP and RTCP), ffmpeg's reference
//! SRTP/SRTCP packets (an independent implementation, through our
//! `inline:` decoding), and the FFI struct layouts.

use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::ffi;
use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// AES-128-CM keystream from libsrtp's raw cipher: `key_salt` is the
/// session key ‖ session salt, `iv` is XORed onto salt ‖ 0000 as in
/// RFC 3711 §4.1.1.
fn keystream(key_salt: &[u8], iv: [u8; 16], len: usize) -> Vec<u8> {
    use ffi::raw_cipher::*;
    let _ = SrtpSender::new(
        1,
        MasterKey::from_bytes(Suite::AesCm128HmacSha1_80, &[0; 30]).unwrap(),
        None,
    );
    let mut cipher = std::ptr::null_mut();
    let mut iv = iv;
    let mut out = vec![0u8; len];
    let mut out_len = len as u32;
    // SAFETY: test-only use of libsrtp's cipher API with buffers of the
    // stated sizes; the library was initialised by the sender above.
    unsafe {
        assert_eq!(
            srtp_crypto_kernel_alloc_cipher(AES_ICM_128, &mut cipher, 30, 0),
            0
        );
        assert_eq!(srtp_cipher_init(cipher, key_salt.as_ptr()), 0);
        assert_eq!(
            srtp_cipher_set_iv(cipher, iv.as_mut_ptr(), DIRECTION_ENCRYPT),
            0
        );
        assert_eq!(
            srtp_cipher_output(cipher, out.as_mut_ptr(), &mut out_len),
            0
        );
        srtp_cipher_dealloc(cipher);
    }
    out
}

#[test]
fn rfc3711_b2_aes_cm_keystream() {
    let session_key_salt = hex("2B7E151628AED2A6ABF7158809CF4F3C F0F1F2F3F4F5F6F7F8F9FAFBFCFD");
    let start = keystream(&session_key_salt, [0; 16], 48);
    assert_eq!(
        start,
        hex("E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB 41E95B3BB0A2E8DD477901E4FCA894C0")
    );
    let mut iv = [0u8; 16];
    iv[14..].copy_from_slice(&[0xfe, 0xff]);
    assert_eq!(
        keystream(&session_key_salt, iv, 48),
        hex("EC8CDF7398607CB0F2D21675EA9EA1E4 362B7C3C6773516318A077D7FC5073AE 6A2CC3787889374FBEB4C81B17BA6C44")
    );
}

/// RFC 3711 B.3's master key and salt, which libsrtp's reference packet
/// also uses.
const B3_MASTER: &str = "E1F97A0D3E018BE0D64FA32C06DE4139 0EC675AD498AFEEBB6960B3AABE6";
const LIBSRTP_PLAIN_RTP: &str = "800f1234 decafbad cafebabe abababab abababab abababab abababab";
const LIBSRTP_SRTP: &str =
    "800f1234 decafbad cafebabe 4e55dc4c e79978d8 8ca4d215 949d2402 b78d6acc 99ea179b 8dbb";
const LIBSRTP_PLAIN_RTCP: &str = "81c8000b cafebabe abababab abababab abababab abababab";
const LIBSRTP_SRTCP: &str =
    "81c8000b cafebabe 7128035b e487b9bd bef89041 f977a5a8 80000001 993e08cd 54d6c123 0798";

#[test]
fn rfc3711_b3_derived_session_keys_are_the_ones_protect_uses() {
    // B.3: the session keys derived from the master key and salt.
    let cipher_key = hex("C61E7A93744F39EE10734AFE3FF7A087");
    let cipher_salt = hex("30CBBC08863D8C85D49DB34A9AE1");
    let auth_key = hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4");

    let key = MasterKey::from_bytes(Suite::AesCm128HmacSha1_80, &hex(B3_MASTER)).unwrap();
    let mut tx = SrtpSender::new(0xcafe_babe, key, None).unwrap();
    let mut packet = hex(LIBSRTP_PLAIN_RTP);
    tx.protect_rtp(&mut packet).unwrap();

    // The payload is the plaintext XOR the keystream of the B.3 cipher key
    // and salt at IV = SSRC · 2^64 XOR index · 2^16 (RFC 3711 §4.1.1).
    let mut iv = [0u8; 16];
    iv[4..8].copy_from_slice(&0xcafe_babe_u32.to_be_bytes());
    iv[8..16].copy_from_slice(&(0x1234_u64 << 16).to_be_bytes());
    let stream = keystream(&[cipher_key, cipher_salt].concat(), iv, 16);
    let expected: Vec<u8> = stream.iter().map(|k| k ^ 0xab).collect();
    assert_eq!(packet[12..28], expected[..]);

    // The tag is HMAC-SHA1 with the B.3 auth key over header ‖ payload ‖
    // ROC, cut to 80 bits (RFC 3711 §4.2).
    let mut mac = Hmac::<Sha1>::new_from_slice(&auth_key).unwrap();
    mac.update(&packet[..28]);
    mac.update(&0u32.to_be_bytes());
    assert_eq!(packet[28..], mac.finalize().into_bytes()[..10]);
}

#[test]
fn libsrtp_reference_packets_for_aes_cm_128_hmac_sha1_80() {
    let key = MasterKey::from_bytes(Suite::AesCm128HmacSha1_80, &hex(B3_MASTER)).unwrap();
    let mut tx = SrtpSender::new(0xcafe_babe, key.clone(), None).unwrap();
    let mut rx = SrtpReceiver::new(0xcafe_babe, key, None, DEFAULT_REPLAY_WINDOW).unwrap();

    let mut packet = hex(LIBSRTP_PLAIN_RTP);
    tx.protect_rtp(&mut packet).unwrap();
    assert_eq!(packet, hex(LIBSRTP_SRTP));
    let mut report = hex(LIBSRTP_PLAIN_RTCP);
    tx.protect_rtcp(&mut report).unwrap();
    assert_eq!(report, hex(LIBSRTP_SRTCP));

    let len = rx.unprotect_rtp(&mut packet).unwrap();
    assert_eq!(packet[..len], hex(LIBSRTP_PLAIN_RTP)[..]);
    let len = rx.unprotect_rtcp(&mut report).unwrap();
    assert_eq!(report[..len], hex(LIBSRTP_PLAIN_RTCP)[..]);
}

#[test]
fn libsrtp_reference_packets_for_aead_aes_128_gcm() {
    let key_salt = hex("000102030405060708090a0b0c0d0e0f a0a1a2a3a4a5a6a7a8a9aaab");
    let key = MasterKey::from_bytes(Suite::AeadAes128Gcm, &key_salt).unwrap();
    let mut tx = SrtpSender::new(0xcafe_babe, key.clone(), None).unwrap();
    let mut rx = SrtpReceiver::new(0xcafe_babe, key, None, DEFAULT_REPLAY_WINDOW).unwrap();
    let srtp = hex(
        "800f1234 decafbad cafebabe c5002ede 04cfdd2e b91159e0 880aa06e d2976826 f796b201 df3131a1 27e8a392",
    );
    let srtcp = hex(
        "81c8000b cafebabe c98b8b5d f0392a55 852b6c21 ac8e7025 c52c6fbe a2b3b446 ea31123b a88ce61e 80000001",
    );

    let mut packet = hex(LIBSRTP_PLAIN_RTP);
    tx.protect_rtp(&mut packet).unwrap();
    assert_eq!(packet, srtp);
    let mut report = hex(LIBSRTP_PLAIN_RTCP);
    tx.protect_rtcp(&mut report).unwrap();
    assert_eq!(report, srtcp, "RFC 7714 §9: tag, then E bit and index");

    let len = rx.unprotect_rtp(&mut packet).unwrap();
    assert_eq!(packet[..len], hex(LIBSRTP_PLAIN_RTP)[..]);
    let len = rx.unprotect_rtcp(&mut report).unwrap();
    assert_eq!(report[..len], hex(LIBSRTP_PLAIN_RTCP)[..]);
}

#[test]
fn ffmpeg_reference_packets_decrypt_from_their_inline_key() {
    // libavformat/srtp.c's self-test and tests/ref/fate/srtp.
    let attribute = CryptoAttribute::parse(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn",
    )
    .unwrap();
    let key = attribute.keys[0].key.clone();
    let mut rx = SrtpReceiver::new(0x1234_5678, key, None, DEFAULT_REPLAY_WINDOW).unwrap();

    let mut packet = hex("80e01234 12345678 12345678 626976cac5 a1ac1bb4a01cd5492899");
    let len = rx.unprotect_rtp(&mut packet).unwrap();
    assert_eq!(packet[..len], hex("80e0123412345678123456780102030405")[..]);

    let mut report = hex(
        "81c90007 12345678 8aacdca5 4cf678a6 628f24da 6c093fa9 287ab57f 1f0fc935 80000003 e93bc05c0c069fabc0de",
    );
    let len = rx.unprotect_rtcp(&mut report).unwrap();
    assert_eq!(
        report[..len],
        hex("81c90007123456788765432100000000000012340000069ec73069ba000001fd")[..]
    );
}

#[test]
fn the_crypto_policy_layout_matches_what_libsrtp_writes() {
    let _ = SrtpSender::new(
        1,
        MasterKey::from_bytes(Suite::AesCm128HmacSha1_80, &[0; 30]).unwrap(),
        None,
    );
    let mut cm = ffi::srtp_crypto_policy_t::default();
    let mut gcm = ffi::srtp_crypto_policy_t::default();
    // SAFETY: each setter writes the struct it is given.
    unsafe {
        ffi::srtp_crypto_policy_set_rtp_default(&mut cm);
        ffi::srtp_crypto_policy_set_aes_gcm_128_16_auth(&mut gcm);
    }
    // SRTP_AES_ICM_128, 16+14 bytes, SRTP_HMAC_SHA1, 20-byte key, 10-byte
    // tag, confidentiality and authentication.
    assert_eq!(
        cm,
        ffi::srtp_crypto_policy_t {
            cipher_type: 1,
            cipher_key_len: 30,
            auth_type: 3,
            auth_key_len: 20,
            auth_tag_len: 10,
            sec_serv: 3
        }
    );
    // SRTP_AES_GCM_128, 16+12 bytes, SRTP_NULL_AUTH, 16-byte tag.
    assert_eq!(
        gcm,
        ffi::srtp_crypto_policy_t {
            cipher_type: 6,
            cipher_key_len: 28,
            auth_type: 0,
            auth_key_len: 0,
            auth_tag_len: 16,
            sec_serv: 3
        }
    );
}

/// The hand-written structs against the C compiler's view of the installed
/// header: every offset and size loa relies on.
#[test]
fn the_policy_structs_match_the_installed_header() {
    use ffi::{srtp_master_key_t as K, srtp_policy_t as P};
    use std::mem::{offset_of, size_of};
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("layout.c");
    std::fs::write(
        &source,
        r#"#include <stddef.h>
#include <stdio.h>
#include <srtp2/srtp.h>
#define F(t, f) printf("%zu ", offsetof(t, f))
int main(void) {
    printf("%zu %zu ", sizeof(srtp_policy_t), sizeof(srtp_master_key_t));
    F(srtp_policy_t, ssrc); F(srtp_policy_t, rtp); F(srtp_policy_t, rtcp); F(srtp_policy_t, key);
    F(srtp_policy_t, keys); F(srtp_policy_t, num_master_keys); F(srtp_policy_t, deprecated_ekt);
    F(srtp_policy_t, window_size); F(srtp_policy_t, allow_repeat_tx); F(srtp_policy_t, enc_xtn_hdr);
    F(srtp_policy_t, enc_xtn_hdr_count); F(srtp_policy_t, next);
    F(srtp_master_key_t, key); F(srtp_master_key_t, mki_id); F(srtp_master_key_t, mki_size);
    printf("%zu", sizeof(srtp_crypto_policy_t));
    return 0;
}
"#,
    )
    .unwrap();
    let exe = dir.path().join("layout");
    let cc = std::process::Command::new("cc")
        .arg(&source)
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("cc runs");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let out = std::process::Command::new(&exe).output().unwrap();
    let c: Vec<usize> = String::from_utf8(out.stdout)
        .unwrap()
        .split(' ')
        .map(|n| n.parse().unwrap())
        .collect();
    let rust = vec![
        size_of::<P>(),
        size_of::<K>(),
        offset_of!(P, ssrc),
        offset_of!(P, rtp),
        offset_of!(P, rtcp),
        offset_of!(P, key),
        offset_of!(P, keys),
        offset_of!(P, num_master_keys),
        offset_of!(P, deprecated_ekt),
        offset_of!(P, window_size),
        offset_of!(P, allow_repeat_tx),
        offset_of!(P, enc_xtn_hdr),
        offset_of!(P, enc_xtn_hdr_count),
        offset_of!(P, next),
        offset_of!(K, key),
        offset_of!(K, mki_id),
        offset_of!(K, mki_size),
        size_of::<ffi::srtp_crypto_policy_t>(),
    ];
    assert_eq!(rust, c);
}
