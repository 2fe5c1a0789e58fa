//! Fuzzes the join protocol's reader (what a speaker or anyone who
//! completes a TLS handshake can send): the RFC 4571 deframer over a byte
//! stream cut at fuzzer-chosen points, and each frame's payload parsed as
//! a control message or media. Never a panic; a control message that
//! parses writes back to a frame that parses to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loa::speakers::join::{frame_message, parse, Deframer, Payload};

fuzz_target!(|data: &[u8]| {
    let (cuts, stream) = data.split_at(data.len().min(4));
    let mut deframer = Deframer::default();
    let mut rest = stream;
    for &cut in cuts {
        let (part, tail) = rest.split_at((cut as usize).min(rest.len()));
        deframer.push(part);
        rest = tail;
        drain(&mut deframer);
    }
    deframer.push(rest);
    drain(&mut deframer);
    assert!(deframer.pending() < 2 + 65_535);
});

fn drain(deframer: &mut Deframer) {
    while let Some(frame) = deframer.next_frame() {
        let Ok(payload) = frame else { continue };
        if let Ok(Payload::Control(message)) = parse(&payload) {
            let again = frame_message(&message);
            assert_eq!(parse(&again[2..]).unwrap(), Payload::Control(message));
        }
    }
}
