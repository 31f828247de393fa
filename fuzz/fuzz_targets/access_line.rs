//! Fuzzes access-log formats and lines: the first line of the input is a
//! `log_format` template, the rest a log line.
#![no_main]

use gw502_proxy::access::{AccessFormat, parse_line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (template, line) = text.split_once('\n').unwrap_or(("", &text));
    let _ = parse_line(line, &AccessFormat::combined());
    let _ = parse_line(line, &AccessFormat::vhost_combined());
    let _ = parse_line(line, &AccessFormat::nginx(template));
    let _ = parse_line(line, &AccessFormat::apache(template));
});
