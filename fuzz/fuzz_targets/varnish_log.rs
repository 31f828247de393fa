//! Fuzzes the Varnish parsers of the proxy model: a `FetchError` record line,
//! a `varnishlog -g request` dump, a VCL, a unit's `ExecStart` and the
//! `backend.list` outputs.
#![no_main]

use gw502_proxy::varnish::{self, admin};
use gw502_proxy::{ProxyKind, proxy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = proxy(ProxyKind::Varnish).parse_error_line(data);
    let text = String::from_utf8_lossy(data);
    for f in varnish::fetch_failures(&text) {
        let _ = f.line();
    }
    let _ = varnish::parse_vcl(&text);
    if let Some(argv) = varnish::exec_start(&[text.to_string()]) {
        let _ = varnish::invocation(&argv);
    }
    let _ = admin::parse_backend_list(&text);
    let _ = admin::parse_backend_list_json(&text);
});
