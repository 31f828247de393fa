//! Fuzzes the HAProxy log line parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gw502_agent::proxy_log::parse_error_line("haproxy", data);
});
