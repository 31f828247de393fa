//! Fuzzes the nginx error-log line parser and the per-proxy dispatch (bytes
//! with invalid UTF-8, control characters, long lines).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gw502_agent::proxy_log::parse_error_line("nginx", data);
    let _ = gw502_agent::proxy_log::parse_error_line("apache", data);
    let _ = gw502_agent::proxy_log::parse_error_line("caddy", data);
    let _ = gw502_agent::proxy_log::sanitize(data);
});
