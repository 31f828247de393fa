//! Varnish Cache: a caching hop in front of the proxy or the app. Its unit
//! (`varnish.service`), VCL discovery (`/etc/varnish/default.vcl`, or the
//! `-f` of the unit's `ExecStart`, [`unit`]), the backends the VCL declares
//! as upstream targets ([`vcl`]), the `FetchError` records of `varnishlog`
//! classified into TAXONOMY causes ([`log`]), backend health from
//! `varnishadm backend.list` ([`admin`]), the counters that say whether
//! either is worth reading again (`varnishstat`, [`stat`]) and its error page (`Error 503
//! Backend fetch failed`, `Guru Meditation`, `Server: Varnish`).
//!
//! Varnish writes no error log file: the agent reads `varnishlog` and
//! `varnishadm` instead (`agent/src/varnish.rs`), and its log times are
//! epoch seconds. No config test is run: `varnishd -C` prints the whole
//! compiled C program, and a VCL that does not compile shows as a failed
//! start or reload of the unit in the journal.

pub mod admin;
pub mod log;
pub mod stat;
pub mod unit;
pub mod vcl;

use std::path::PathBuf;

use gw502_vocab::Hop;

pub use admin::{parse_backend_list, parse_backend_list_json};
pub use log::{FetchFailure, classify, fetch_failures, parse_line};
pub use stat::{VarnishCounters, parse_counters_json};
pub use unit::{Invocation, exec_start, invocation};
pub use vcl::parse_vcl;

use crate::{
    AccessFormat, ConfigLocation, ConfigSource, Discovered, ErrorLine, Page, PageMark, Proxy,
    ProxyKind,
};

/// Debian's VCL.
pub const DEFAULT_VCL: &str = "/etc/varnish/default.vcl";

/// The Varnish model.
#[derive(Debug, Clone, Copy)]
pub struct Varnish;

impl Proxy for Varnish {
    fn kind(&self) -> ProxyKind {
        ProxyKind::Varnish
    }

    fn units(&self) -> &'static [&'static str] {
        &["varnish.service"]
    }

    fn hop(&self) -> Hop {
        Hop::Cache
    }

    fn reads_unit(&self) -> bool {
        true
    }

    /// `FetchError backend ...: fail errno 111`: its own `503 Backend fetch failed`.
    fn refused_status(&self) -> u16 {
        503
    }

    /// `connect_timeout`: `503 Backend fetch failed` as well.
    fn connect_timeout_status(&self) -> u16 {
        503
    }

    /// `first_byte_timeout`: `503 Backend fetch failed` as well.
    fn read_timeout_status(&self, _protocol: &str) -> u16 {
        503
    }

    fn default_location(&self) -> ConfigLocation {
        ConfigLocation {
            bin: PathBuf::from("varnishd"),
            config: Some(PathBuf::from(DEFAULT_VCL)),
            prefix: None,
        }
    }

    fn locate(&self, unit_files: &[String], at: &ConfigLocation) -> Option<ConfigLocation> {
        let vcl = invocation(&exec_start(unit_files)?).vcl?;
        Some(ConfigLocation {
            config: Some(vcl),
            ..at.clone()
        })
    }

    fn config_source(&self, at: &ConfigLocation) -> ConfigSource {
        ConfigSource::File(
            at.config
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_VCL)),
        )
    }

    fn parse_config(&self, text: &str, _at: &ConfigLocation) -> Discovered {
        Discovered {
            config: parse_vcl(text),
            access_formats: Vec::new(),
        }
    }

    fn parse_error_line(&self, raw: &[u8]) -> Option<ErrorLine> {
        parse_line(&crate::line::text(raw))
    }

    fn local_time(&self) -> bool {
        false
    }

    fn default_access_format(&self) -> Option<AccessFormat> {
        None
    }

    fn page(&self, page: &Page<'_>) -> Option<PageMark> {
        let body = page.body;
        if body.contains("guru meditation")
            && (body.contains("varnish cache server") || body.contains("backend fetch failed"))
        {
            return Some(PageMark::Body);
        }
        (page.server.split(", ").any(|s| s.starts_with("varnish")) && page.status >= 500)
            .then_some(PageMark::Header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = include_str!("../fixtures/varnish/503.http");
    const DEBIAN_UNIT: &str = include_str!("../fixtures/varnish/varnish.service");

    fn page(status: u16, server: &str, body: &str) -> Option<PageMark> {
        let body = body.to_ascii_lowercase();
        Varnish.page(&Page {
            status,
            server,
            body: &body,
            empty: body.is_empty(),
        })
    }

    #[test]
    fn its_own_503_page_is_recognised() {
        let (head, body) = PAGE.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503"));
        assert!(head.contains("Via: 1.1 varnish (Varnish/7.1)"));
        assert!(head.contains("X-Varnish: "));
        assert!(body.contains("Error 503 Backend fetch failed"));
        assert_eq!(page(503, "varnish", body), Some(PageMark::Body));
        // Behind another server name (a CDN rewriting `Server`), the body still says Varnish.
        assert_eq!(page(503, "", body), Some(PageMark::Body));
        // A custom synthetic page only carries Varnish's `Server`: a weak mark.
        assert_eq!(page(503, "varnish", "maintenance"), Some(PageMark::Header));
        assert_eq!(page(200, "varnish", ""), None);
        assert_eq!(page(503, "nginx", "<h1>503 Service Unavailable</h1>"), None);
    }

    #[test]
    fn the_unit_moves_the_vcl() {
        let at = Varnish.default_location();
        assert_eq!(
            Varnish.locate(&[DEBIAN_UNIT.to_string()], &at),
            Some(at.clone())
        );
        let drop_in =
            "[Service]\nExecStart=\nExecStart=/usr/sbin/varnishd -a :80 -f /etc/varnish/site.vcl\n";
        let moved = Varnish
            .locate(&[DEBIAN_UNIT.to_string(), drop_in.to_string()], &at)
            .unwrap();
        assert_eq!(moved.config, Some(PathBuf::from("/etc/varnish/site.vcl")));
        assert_eq!(Varnish.locate(&[], &at), None);
    }
}
