//! Envoy: its unit, its bootstrap file and the admin API's `/config_dump`
//! (listeners, routes, clusters: [`config`]), the admin API's `/clusters`
//! with each host's health flags ([`admin`], fetched by the agent on
//! loopback), its access log with response flags and details ([`log`]; the
//! access log is Envoy's only per-request failure record, so it is read as
//! the error log), and its own error bodies (`upstream connect error or
//! disconnect/reset before headers`, `no healthy upstream`, `upstream
//! request timeout`, with `server: envoy`). Envoy is in no Debian release:
//! everything here is tested on output of the real Envoy 1.40.0 captured
//! on loopback (`proxy/fixtures/envoy/`), not in the lab.

pub mod admin;
pub mod config;
pub mod log;

use std::path::PathBuf;

pub use log::parse_line;

use crate::{
    AccessFormat, ConfigLocation, ConfigSource, Discovered, ErrorLine, Page, PageMark, Proxy,
    ProxyKind,
};

/// Envoy's own error bodies, lowercased.
const PAGE_STARTS: [&str; 4] = [
    "upstream connect error or disconnect/reset before headers",
    "no healthy upstream",
    "upstream request timeout",
    "upstream_reset_before_response_started",
];

/// The Envoy model.
#[derive(Debug, Clone, Copy)]
pub struct Envoy;

impl Proxy for Envoy {
    fn kind(&self) -> ProxyKind {
        ProxyKind::Envoy
    }

    fn units(&self) -> &'static [&'static str] {
        &["envoy.service"]
    }

    fn default_location(&self) -> ConfigLocation {
        ConfigLocation {
            bin: PathBuf::from("envoy"),
            config: Some(PathBuf::from("/etc/envoy/envoy.yaml")),
            prefix: None,
        }
    }

    fn config_source(&self, at: &ConfigLocation) -> ConfigSource {
        ConfigSource::File(
            at.config
                .clone()
                .unwrap_or_else(|| PathBuf::from("/etc/envoy/envoy.yaml")),
        )
    }

    fn parse_config(&self, text: &str, _at: &ConfigLocation) -> Discovered {
        config::parse_bootstrap(text)
    }

    fn parse_error_line(&self, raw: &[u8]) -> Option<ErrorLine> {
        parse_line(raw)
    }

    fn local_time(&self) -> bool {
        false
    }

    fn default_access_format(&self) -> Option<AccessFormat> {
        None
    }

    fn page(&self, page: &Page<'_>) -> Option<PageMark> {
        let body = page.body.trim_start();
        (page.status >= 500 && PAGE_STARTS.iter().any(|s| body.starts_with(s)))
            .then_some(PageMark::Body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_bodies_mark_the_page() {
        let page = |status, body: &'static str| Page {
            status,
            server: "envoy",
            body,
            empty: body.is_empty(),
        };
        assert_eq!(
            Envoy.page(&page(503, "no healthy upstream")),
            Some(PageMark::Body)
        );
        assert_eq!(Envoy.page(&page(503, "busy")), None);
        assert_eq!(Envoy.page(&page(200, "no healthy upstream")), None);
    }
}
