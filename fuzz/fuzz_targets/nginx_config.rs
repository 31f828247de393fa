//! Fuzzes the `nginx -T` dump parser and the other proxy config parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = gw502_agent::proxy_config::nginx::parse_dump(&text);
    let _ = gw502_agent::proxy_config::haproxy::parse_cfg(&text);
    let _ = gw502_agent::proxy_config::apache::parse_conf(&text);
    let _ = gw502_agent::proxy_config::caddy::parse_caddyfile(&text);
});
