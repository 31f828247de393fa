//! Fuzzes the config parser of every proxy in the registry (HAProxy cfg,
//! Apache conf, Caddyfile, nginx dump), so a newly registered proxy's
//! config parser is fuzzed without a new target.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for proxy in gw502_proxy::all() {
        let _ = proxy.parse_config(&text, &proxy.default_location());
    }
});
