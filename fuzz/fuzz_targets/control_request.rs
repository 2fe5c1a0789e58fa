//! Fuzzes what every control-socket line goes through first: JSON-RPC
//! request parsing. Any bytes give a request or a JSON-RPC error whose
//! response serialises to one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loa::proto::rpc::{parse_request, response_err};

fuzz_target!(|data: &[u8]| {
    if let Err(err) = parse_request(data) {
        let line = response_err(None, &err);
        assert!(!line.contains('\n'));
    }
});
