//! Fuzzes the readers of the proxies' API answers the agent fetches on
//! loopback: Traefik's `/api/http/routers` + `/api/http/services` (the
//! input split at its first NUL byte), Envoy's `/config_dump`,
//! `/clusters?format=json` and text `/clusters`, and Traefik's static
//! config `includes`.
#![no_main]

use gw502_proxy::{envoy, traefik};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (routers, services) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[..0]),
    };
    let _ = traefik::api::parse(routers, services);
    let _ = envoy::config::parse_config_dump(data);
    if let Some(hosts) = envoy::admin::parse_clusters_json(data) {
        let mut targets = Vec::new();
        envoy::admin::apply(&mut targets, &hosts);
    }
    let text = String::from_utf8_lossy(data);
    let _ = envoy::admin::parse_clusters_text(&text);
    let _ = traefik::config::includes("/etc/traefik/traefik.yml", &text);
    let _ = traefik::config::includes("/etc/traefik/traefik.toml", &text);
});
