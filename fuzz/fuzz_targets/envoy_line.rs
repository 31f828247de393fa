//! Fuzzes the Envoy log-line parser of the proxy model.
#![no_main]

use gw502_proxy::{ProxyKind, proxy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = proxy(ProxyKind::Envoy).parse_error_line(data);
});
