//! The fallback's frames as the player gets them: RFC 4571 framed SRTP
//! inside the TLS connection, through the same gate as UDP datagrams.

use super::*;
use crate::speaker::gate::tests::rtp;
use crate::rtp::srtp::{CryptoAttribute, KeyParam, MasterKey, Mki, SrtpSender, Suite};
use crate::speaker::gate::{Gate, Rejected};

const ZONE_SSRC: u32 = 7;
const UPLINK_SSRC: u32 = 0x0bad_cafe;
const ANSWER_SSRC: u32 = !UPLINK_SSRC;

/// The zones granted, as the reader thread holds them.
fn suites() -> HashMap<String, Suite> {
    HashMap::from([("thon-1".to_string(), Suite::AesCm128HmacSha1_80)])
}

fn daemon() -> SocketAddr {
    "203.0.113.10:5300".parse().unwrap()
}

fn zone() -> (SrtpSender, Gate) {
    let suite = Suite::AesCm128HmacSha1_80;
    let key = MasterKey::generate(suite, &mut rand::rng());
    let mki = Mki::new(1, crate::keys::MKI_LEN).unwrap();
    let tx = SrtpSender::new(ZONE_SSRC, key.clone(), Some(mki)).unwrap();
    let gate = Gate::new(CryptoAttribute { tag: 1, suite, keys: vec![KeyParam { key, lifetime: None, mki: Some(mki) }] });
    (tx, gate)
}

fn sealed(tx: &mut SrtpSender, seq: u16) -> Vec<u8> {
    let mut p = rtp(ZONE_SSRC, seq);
    tx.protect_rtp(&mut p).unwrap();
    p
}

/// Every frame in `stream`, read in uneven pieces as TCP may deliver them,
/// routed as the reader thread does, then through the gate: the sequence
/// numbers that verified.
fn play(stream: &[u8], gate: &mut Gate) -> Result<Vec<u16>, String> {
    let mut deframer = Deframer::default();
    let mut played = Vec::new();
    let t = Instant::now();
    for piece in stream.chunks(7) {
        deframer.push(piece);
        while let Some(frame) = next_frame(&mut deframer) {
            match route(frame?, &mut suites(), daemon(), ANSWER_SSRC, t) {
                Some(Err(mut datagram)) => {
                    assert_eq!((datagram.channel, datagram.from), (Channel::Rtp, daemon()));
                    if let Some(len) = gate.open(&mut datagram.data, false, datagram.arrival) {
                        played.push(u16::from_be_bytes([datagram.data[2], datagram.data[3]]));
                        assert_eq!(len, 18);
                    }
                }
                other => panic!("not audio: {other:?}"),
            }
        }
    }
    Ok(played)
}

fn framed(packets: &[Vec<u8>]) -> Vec<u8> {
    packets.iter().flat_map(|p| join::frame(p).unwrap()).collect()
}

#[test]
fn srtp_inside_tls_goes_through_the_gate_like_a_datagram() {
    let (mut tx, mut gate) = zone();
    let packets: Vec<_> = (1..=5).map(|seq| sealed(&mut tx, seq)).collect();
    assert_eq!(play(&framed(&packets), &mut gate), Ok(vec![1, 2, 3, 4, 5]));
    assert_eq!(gate.rejected, Rejected::default());
}

#[test]
fn garbage_inside_tls_is_counted_as_rejected_and_the_stream_goes_on() {
    let (mut tx, mut gate) = zone();
    let (one, two, three) = (sealed(&mut tx, 1), sealed(&mut tx, 2), sealed(&mut tx, 3));
    let mut bad_tag = two.clone();
    let end = bad_tag.len() - 1;
    bad_tag[end] ^= 0x55;
    let mut noise = rtp(ZONE_SSRC, 9);
    noise.extend([0xa5; 40]);
    let stream = framed(&[
        one.clone(),
        noise,                       // RTP-looking bytes with the stream's SSRC, no valid tag
        rtp(ZONE_SSRC + 1, 1),       // plain RTP of another SSRC
        bad_tag,                     // a flipped tag
        two[..14].to_vec(),          // truncated
        one,                         // the same packet again (it also came by UDP)
        two,
        vec![0x80],                  // one byte
        three,
    ]);
    assert_eq!(play(&stream, &mut gate), Ok(vec![1, 2, 3]), "only the zone's packets, in order");
    assert_eq!(gate.rejected, Rejected { bad_auth: 2, replay: 1, unknown_ssrc: 1, malformed: 2 });
}

#[test]
fn a_frame_that_is_neither_audio_nor_a_message_ends_the_session_with_a_reason() {
    let (_, mut gate) = zone();
    let said = play(&join::frame(&[0x00, 1, 2]).unwrap(), &mut gate).unwrap_err();
    assert_eq!(said, "loa sent a frame starting with byte 0x00, neither a control message nor an RTP packet");
}

#[test]
fn transport_messages_for_a_granted_zone_switch_the_fallback() {
    let t = Instant::now();
    let message = |zone: &str, transport| Frame::Control(Message::Transport { zone: zone.into(), transport });
    let routed = |frame| match route(frame, &mut suites(), daemon(), ANSWER_SSRC, t) {
        Some(Ok(Control::Fallback(tls))) => Some(tls),
        None => None,
        other => panic!("{other:?}"),
    };
    assert_eq!(routed(message("thon-1", SpeakerTransport::Tls)), Some(true));
    assert_eq!(routed(message("thon-1", SpeakerTransport::Unicast)), Some(false));
    assert_eq!(routed(message("thon-2", SpeakerTransport::Tls)), None, "a zone not granted");
}

/// loa's side of a session's answers: an empty RR from the answer SSRC,
/// sealed under the uplink key.
fn answerer(key: &MasterKey) -> impl FnMut() -> Vec<u8> {
    let mut tx = SrtpSender::new(join::answer_ssrc(UPLINK_SSRC), key.clone(), None).unwrap();
    move || {
        let mut p = Vec::new();
        crate::rtp::rtcp::write_receiver_report(&mut p, ANSWER_SSRC, &[], "loa");
        tx.protect_rtcp(&mut p).unwrap();
        p
    }
}

fn check(key: &MasterKey) -> UdpCheck {
    let answers = SrtpReceiver::new(ANSWER_SSRC, key.clone(), None, DEFAULT_REPLAY_WINDOW).unwrap();
    UdpCheck { rule: Downstream::new(false), answer_ssrc: ANSWER_SSRC, answers, unsent: None }
}

#[test]
fn only_a_sealed_answer_of_the_session_counts_and_only_once() {
    let key = MasterKey::generate(Suite::AesCm128HmacSha1_80, &mut rand::rng());
    let mut answer = answerer(&key);
    let mut check = check(&key);
    let first = answer();
    assert!(check.verify(&first));
    assert!(!check.verify(&first), "a replayed answer proves nothing");
    assert!(check.verify(&answer()));
    // Sealed under another key, or plain, or the speaker's own keepalive
    // reflected back (the uplink SSRC), or a zone's packet: no answer.
    let other = MasterKey::generate(Suite::AesCm128HmacSha1_80, &mut rand::rng());
    assert!(!check.verify(&answerer(&other)()));
    let mut plain = Vec::new();
    crate::rtp::rtcp::write_receiver_report(&mut plain, ANSWER_SSRC, &[], "loa");
    assert!(!check.verify(&plain));
    let mut reflected = Vec::new();
    crate::rtp::rtcp::write_receiver_report(&mut reflected, UPLINK_SSRC, &[], "loa-speaker@x");
    SrtpSender::new(UPLINK_SSRC, key.clone(), None).unwrap().protect_rtcp(&mut reflected).unwrap();
    assert!(!check.verify(&reflected));
    let (mut tx, _) = zone();
    assert!(!check.verify(&sealed(&mut tx, 1)));
}

#[test]
fn an_answer_framed_inside_tls_is_dropped_it_proves_nothing_of_udp() {
    let key = MasterKey::generate(Suite::AesCm128HmacSha1_80, &mut rand::rng());
    let inside = answerer(&key)();
    assert!(route(Frame::Media(inside), &mut suites(), daemon(), ANSWER_SSRC, Instant::now()).is_none());
}
