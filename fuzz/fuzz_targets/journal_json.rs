//! Fuzzes the `journalctl -o json` line parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gw502_agent::journal::parse_json_line(data);
});
