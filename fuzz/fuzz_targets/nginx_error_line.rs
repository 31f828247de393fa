//! Fuzzes the nginx error-log line parser of the proxy model (bytes with
//! invalid UTF-8, control characters, long lines) and the agent's sample
//! sanitiser.
#![no_main]

use gw502_proxy::{ProxyKind, proxy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = proxy(ProxyKind::Nginx).parse_error_line(data);
    let _ = gw502_agent::proxy_log::sanitize(data);
});
