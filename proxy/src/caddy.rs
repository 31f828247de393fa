//! Caddy 2: its unit, Caddyfile discovery, the JSON `http.log.error` lines
//! (epoch times, not local), and its error responses: an empty 5xx body
//! with `Server: Caddy`. No config test is run (`caddy validate` provisions
//! certificates); Caddy is not packaged for the build host, so its line
//! shapes are documented rather than captured (`proxy/fixtures/caddy/`).

pub mod config;
pub mod log;

use std::path::PathBuf;

pub use config::parse_caddyfile;
pub use log::parse_line;

use crate::{
    AccessFormat, ConfigLocation, ConfigSource, Discovered, ErrorLine, Page, PageMark, Proxy,
    ProxyKind,
};

/// The Caddy model.
#[derive(Debug, Clone, Copy)]
pub struct Caddy;

impl Proxy for Caddy {
    fn kind(&self) -> ProxyKind {
        ProxyKind::Caddy
    }

    fn units(&self) -> &'static [&'static str] {
        &["caddy.service"]
    }

    /// `dial tcp ...: connect: connection refused`: 502.
    fn refused_status(&self) -> u16 {
        502
    }

    /// `dial tcp ...: i/o timeout`: 502 too, as the lab's `firewall_blocked`
    /// cells saw (the dial error is not reported as a timeout).
    fn connect_timeout_status(&self) -> u16 {
        502
    }

    fn default_location(&self) -> ConfigLocation {
        ConfigLocation {
            bin: PathBuf::from("caddy"),
            config: Some(PathBuf::from("/etc/caddy/Caddyfile")),
            prefix: None,
        }
    }

    fn config_source(&self, at: &ConfigLocation) -> ConfigSource {
        ConfigSource::File(
            at.config
                .clone()
                .unwrap_or_else(|| PathBuf::from("/etc/caddy/Caddyfile")),
        )
    }

    fn parse_config(&self, text: &str, _at: &ConfigLocation) -> Discovered {
        Discovered {
            config: parse_caddyfile(text),
            access_formats: Vec::new(),
        }
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
        (page.server.starts_with("caddy") && page.empty && page.status >= 500)
            .then_some(PageMark::Header)
    }
}
