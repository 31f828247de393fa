//! HAProxy: its unit, haproxy.cfg discovery, `haproxy -c -f` as config test,
//! its log lines (request lines with termination states and server events,
//! local times) and its built-in error pages.

pub mod config;
pub mod log;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub use config::{DEFAULT_LOG, parse_cfg};
pub use log::parse_line;

use crate::{
    AccessFormat, ConfigLocation, ConfigSource, Discovered, ErrorLine, Page, PageMark, Proxy,
    ProxyKind,
};

/// Sentences of HAProxy's built-in 502, 503 and 504 pages.
const PAGE_SENTENCES: [&str; 3] = [
    "the server returned an invalid or incomplete response.",
    "no server is available to handle this request.",
    "the server didn't respond in time.",
];

/// The HAProxy model.
#[derive(Debug, Clone, Copy)]
pub struct Haproxy;

impl Proxy for Haproxy {
    fn kind(&self) -> ProxyKind {
        ProxyKind::Haproxy
    }

    fn units(&self) -> &'static [&'static str] {
        &["haproxy.service"]
    }

    fn default_location(&self) -> ConfigLocation {
        ConfigLocation {
            bin: PathBuf::from("haproxy"),
            config: Some(PathBuf::from("/etc/haproxy/haproxy.cfg")),
            prefix: None,
        }
    }

    fn config_source(&self, at: &ConfigLocation) -> ConfigSource {
        let default = self.default_location();
        ConfigSource::File(at.config.clone().or(default.config).unwrap_or_default())
    }

    fn parse_config(&self, text: &str, _at: &ConfigLocation) -> Discovered {
        Discovered {
            config: parse_cfg(text),
            access_formats: Vec::new(),
        }
    }

    fn config_test(&self, _at: &ConfigLocation, config: &Path) -> Option<Vec<OsString>> {
        Some(vec![
            "-c".into(),
            "-f".into(),
            config.as_os_str().to_owned(),
        ])
    }

    fn parse_error_line(&self, raw: &[u8]) -> Option<ErrorLine> {
        parse_line(&crate::line::text(raw))
    }

    fn local_time(&self) -> bool {
        true
    }

    fn default_access_format(&self) -> Option<AccessFormat> {
        None
    }

    fn page(&self, page: &Page<'_>) -> Option<PageMark> {
        PAGE_SENTENCES
            .iter()
            .any(|s| page.body.contains(s))
            .then_some(PageMark::Body)
    }
}
