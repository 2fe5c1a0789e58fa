//! Fuzzes the M3U/M3U8 and PLS parsers with operator-supplied playlist text.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let base = Path::new("/srv/loa/media");
        let origin = Path::new("/srv/loa/media/list.m3u");
        let _ = loa::broadcast::playlist::parse_m3u(text, base, origin);
        let _ = loa::broadcast::playlist::parse_pls(text, base, origin);
    }
});
