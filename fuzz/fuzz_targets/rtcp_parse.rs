//! Fuzzes the path every RTCP datagram from the network takes: the
//! bounds-checked compound parser. It must return Ok or a structured error
//! for any bytes, never panic, loop or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(packets) = loa::rtp::rtcp::parse_compound(data) {
        // Everything parsed must fit in what arrived.
        assert!(packets.len() <= data.len() / 4 + 1);
    }
});
