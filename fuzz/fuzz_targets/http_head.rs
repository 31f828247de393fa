//! Fuzzes the probe's HTTP response head parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gw502_probe::parse_response_head(data);
});
