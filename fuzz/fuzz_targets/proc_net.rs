//! Fuzzes the /proc/net/{tcp,tcp6,unix} parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = gw502_agent::sockets::parse_proc_net_tcp(&text, false);
    let _ = gw502_agent::sockets::parse_proc_net_tcp(&text, true);
    let _ = gw502_agent::sockets::parse_proc_net_unix(&text);
});
