//! Fuzzes `loa speaker`'s receive path: RTP parse, Opus TOC check, jitter
//! buffer (reorder, late, duplicates, SSRC changes) and the decoder's
//! packet/FEC/PLC calls, with made-up arrival times.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    loa::speaker::fuzzing::receive(data);
});
