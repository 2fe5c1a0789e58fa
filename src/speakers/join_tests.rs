use super::*;

fn grant() -> ZoneGrant {
    ZoneGrant {
        name: "thon-1".into(),
        ssrc: 0x1234_5678,
        pt: 96,
        channels: 1,
        suite: "AES_CM_128_HMAC_SHA1_80".into(),
        group: None,
        transport: SpeakerTransport::Unicast,
        keys: vec![KeyGrant { mki: 1, key: "a2V5".into(), current: true }, KeyGrant { mki: 2, key: "bmV4dA==".into(), current: false }],
        uplink: Uplink { ssrc: 7, key: "dXA=".into() },
    }
}

fn welcome() -> Message {
    Message::Welcome(Welcome { speaker: "xa-dong".into(), keepalive_ms: 15_000, udp_port: 5300, zones: vec![grant()] })
}

#[test]
fn every_message_round_trips_through_a_frame() {
    let messages = [
        Message::Hello { version: VERSION, multicast: false, udp: true },
        welcome(),
        Message::Keys { zone: "thon-1".into(), keys: vec![KeyGrant { mki: 3, key: "eA==".into(), current: false }] },
        Message::Transport { zone: "thon-1".into(), transport: SpeakerTransport::Tls },
        Message::Zone(ZoneGrant { group: Some("239.255.0.1:5004".parse().unwrap()), transport: SpeakerTransport::Multicast, ..grant() }),
        Message::ZoneGone { zone: "thon-1".into(), reason: "removed from the config".into() },
        Message::KeysAck { zone: "thon-1".into(), mkis: vec![1, 3] },
        Message::Downstream { udp: false },
        Message::Refused { reason: "revoked".into() },
        Message::Bye { reason: "shutting down".into() },
    ];
    for message in messages {
        let framed = frame_message(&message);
        assert_eq!(usize::from(u16::from_be_bytes([framed[0], framed[1]])), framed.len() - 2);
        assert_eq!(parse(&framed[2..]).unwrap(), Payload::Control(message));
    }
}

#[test]
fn hello_reads_as_the_speaker_writes_it() {
    let payload = br#"{"type":"hello","version":1,"multicast":true,"udp":false}"#;
    assert_eq!(parse(payload).unwrap(), Payload::Control(Message::Hello { version: 1, multicast: true, udp: false }));
}

#[test]
fn a_keys_acknowledgement_reads_as_the_speaker_writes_it_and_a_bad_one_is_refused() {
    let payload = br#"{"type":"keys_ack","zone":"thon-1","mkis":[1,3]}"#;
    assert_eq!(parse(payload).unwrap(), Payload::Control(Message::KeysAck { zone: "thon-1".into(), mkis: vec![1, 3] }));
    let bad = br#"{"type":"keys_ack","zone":"thon-1","mkis":[-1]}"#;
    assert!(matches!(parse(bad), Err(JoinError::BadControl(reason)) if reason.contains("invalid value")), "{:?}", parse(bad));
}

#[test]
fn downstream_reads_as_the_speaker_writes_it_and_a_bad_one_is_refused() {
    let down = br#"{"type":"downstream","udp":false}"#;
    assert_eq!(parse(down).unwrap(), Payload::Control(Message::Downstream { udp: false }));
    assert_eq!(frame_message(&Message::Downstream { udp: true })[2..], br#"{"type":"downstream","udp":true}"#[..]);
    for (payload, words) in [
        (&br#"{"type":"downstream"}"#[..], "missing field `udp`"),
        (br#"{"type":"downstream","udp":"no"}"#, "invalid type"),
        (br#"{"type":"downstream","udp":false,"since":3}"#, "unknown field `since`"),
    ] {
        let JoinError::BadControl(why) = parse(payload).unwrap_err() else { panic!() };
        assert!(why.contains(words), "{why}");
    }
}

#[test]
fn the_answer_ssrc_is_never_the_uplinks() {
    for uplink in [0, 1, 7, 0x8000_0000, u32::MAX] {
        assert_ne!(answer_ssrc(uplink), uplink);
        assert_eq!(answer_ssrc(answer_ssrc(uplink)), uplink, "one answer SSRC per uplink");
    }
}

#[test]
fn a_zone_change_reads_as_loa_writes_it() {
    let payload = br#"{"type":"zone","name":"thon-1","ssrc":305419896,"pt":96,"channels":1,"suite":"AES_CM_128_HMAC_SHA1_80","group":"239.255.0.1:5004","transport":"multicast","keys":[{"mki":1,"key":"a2V5","current":true},{"mki":2,"key":"bmV4dA==","current":false}],"uplink":{"ssrc":7,"key":"dXA="}}"#;
    let expected = ZoneGrant { group: Some("239.255.0.1:5004".parse().unwrap()), transport: SpeakerTransport::Multicast, ..grant() };
    assert_eq!(parse(payload).unwrap(), Payload::Control(Message::Zone(expected)));
    let gone = br#"{"type":"zone_gone","zone":"thon-1","reason":"removed from the config"}"#;
    assert_eq!(
        parse(gone).unwrap(),
        Payload::Control(Message::ZoneGone { zone: "thon-1".into(), reason: "removed from the config".into() })
    );
}

#[test]
fn a_bad_zone_change_is_refused_with_the_reason() {
    for (payload, words) in [
        (&br#"{"type":"zone","name":"thon-1"}"#[..], "missing field `ssrc`"),
        (
            br#"{"type":"zone","name":"a","ssrc":1,"pt":96,"channels":1,"suite":"s","group":"239.255.0.1","transport":"multicast","keys":[],"uplink":{"ssrc":7,"key":"dXA="}}"#,
            "invalid IPv4 socket address",
        ),
        (
            br#"{"type":"zone","name":"a","ssrc":1,"pt":96,"channels":1,"suite":"s","transport":"carrier-pigeon","keys":[],"uplink":{"ssrc":7,"key":"dXA="}}"#,
            "carrier-pigeon",
        ),
        (br#"{"type":"zone_gone","zone":"a"}"#, "missing field `reason`"),
        (br#"{"type":"zone_gone","zone":7,"reason":"x"}"#, "invalid type"),
    ] {
        let JoinError::BadControl(why) = parse(payload).unwrap_err() else { panic!() };
        assert!(why.contains(words), "{why}");
    }
}

#[test]
fn rtp_version_2_bytes_are_media_and_other_bytes_are_refused() {
    let packet = [0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7];
    assert_eq!(parse(&packet).unwrap(), Payload::Media(&packet));
    assert_eq!(parse(&[0x40, 0]).unwrap_err(), JoinError::UnknownPayload(0x40));
    assert_eq!(parse(&[]).unwrap_err(), JoinError::EmptyFrame);
}

#[test]
fn bad_control_messages_are_refused_with_the_reason() {
    for (payload, words) in [
        (&br#"{"type":"hello","version":1}"#[..], "missing field `multicast`"),
        (br#"{"type":"launch"}"#, "unknown variant `launch`"),
        (br#"{"type":"bye","reason":"x","extra":1}"#, "unknown field `extra`"),
        (br#"{"type":"bye""#, "EOF"),
    ] {
        let JoinError::BadControl(why) = parse(payload).unwrap_err() else { panic!() };
        assert!(why.contains(words), "{why}");
    }
    let big = format!("{{\"type\":\"bye\",\"reason\":\"{}\"}}", "x".repeat(MAX_CONTROL));
    assert_eq!(parse(big.as_bytes()).unwrap_err(), JoinError::ControlTooLong(big.len()));
}

#[test]
fn deframer_finds_frames_across_any_split_of_the_stream() {
    let mut stream = frame_message(&Message::Bye { reason: "a".into() });
    stream.extend(frame(&[0x80, 1, 2, 3]).unwrap());
    for split in 0..=stream.len() {
        let mut d = Deframer::default();
        let mut frames = Vec::new();
        for part in [&stream[..split], &stream[split..]] {
            d.push(part);
            while let Some(f) = d.next_frame() {
                frames.push(f.unwrap());
            }
        }
        assert_eq!(frames.len(), 2, "split at {split}");
        assert_eq!(frames[1], vec![0x80, 1, 2, 3]);
        assert_eq!(d.pending(), 0);
    }
}

#[test]
fn zero_length_frame_is_an_error_and_too_long_cannot_be_framed() {
    let mut d = Deframer::default();
    d.push(&[0, 0]);
    assert_eq!(d.next_frame(), Some(Err(JoinError::EmptyFrame)));
    assert_eq!(frame(&vec![0x80; 65_536]).unwrap_err(), JoinError::TooLong(65_536));
}

#[test]
fn only_a_live_enrolment_is_admitted_and_refusals_say_why() {
    assert_eq!(admit(&Enrolment::Live { name: "a".into() }), Ok("a"));
    let unknown = admit(&Enrolment::Unknown).unwrap_err();
    assert!(unknown.contains("not enrolled"), "{unknown}");
    let at = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let revoked = admit(&Enrolment::Revoked { name: "a".into(), at }).unwrap_err();
    assert_eq!(revoked, "speaker \"a\" was revoked at 2027-01-15T08:00:00Z; ask the operator to enrol it again");
}
