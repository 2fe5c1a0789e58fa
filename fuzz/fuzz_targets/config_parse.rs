//! Fuzzes config parsing and validation: any text gives a Config or
//! FILE:LINE:COL errors, never a panic (spans land on char boundaries).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(errors) = loa::config::Config::parse(text, "fuzz.toml") {
            assert!(!errors.0.is_empty());
            for e in &errors.0 {
                assert!(e.line >= 1 && e.col >= 1);
            }
        }
    }
});
