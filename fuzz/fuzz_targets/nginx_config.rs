//! Fuzzes the `nginx -T` dump parser and the include walk the agent uses
//! when the dump cannot run (`includes`, `join_dump`).
#![no_main]

use gw502_proxy::nginx::config::{includes, join_dump, parse_dump};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_dump(&text);
    let _ = includes("/etc/nginx/nginx.conf", &text);
    let joined = join_dump(&[("/etc/nginx/nginx.conf".to_string(), text.into_owned())]);
    let _ = parse_dump(&joined);
});
