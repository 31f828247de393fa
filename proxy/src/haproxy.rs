//! HAProxy: its unit, haproxy.cfg discovery, `haproxy -c -f` as config test,
//! its log lines (request lines with termination states and server events,
//! local times) and its built-in error pages.

pub mod config;
pub mod log;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub use config::{DEFAULT_LOG, parse_cfg};
pub use log::parse_line;

use crate::test::{TestReading, is_environment_error, read_plain};
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

/// Reads `haproxy -c`: a failure whose every `[ALERT]` (but the closing
/// "Error(s) found"/"Fatal errors found" summaries) is about the environment
/// could not judge the config; any other alert makes it invalid.
fn read_test(success: bool, stderr: &str) -> TestReading {
    if success {
        return TestReading::Valid;
    }
    let alerts: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("[ALERT]"))
        .filter(|l| {
            !l.contains("Error(s) found in configuration") && !l.contains("Fatal errors found")
        })
        .map(str::trim)
        .collect();
    match (
        alerts.iter().find(|l| !is_environment_error(l)),
        alerts.first(),
    ) {
        (Some(config), _) => TestReading::Invalid((*config).to_string()),
        (None, Some(environment)) => TestReading::Indeterminate((*environment).to_string()),
        (None, None) => read_plain(false, stderr),
    }
}

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

    /// Termination state `SC`: 503.
    fn refused_status(&self) -> u16 {
        503
    }

    /// Termination state `sC` (the connect timed out): 503 as well.
    fn connect_timeout_status(&self) -> u16 {
        503
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

    fn read_test(&self, success: bool, stderr: &str) -> TestReading {
        read_test(success, stderr)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regex_the_sandbox_cannot_jit_leaves_the_config_untested() {
        let jit = include_str!("../fixtures/haproxy/config-test-jit.txt");
        assert!(
            matches!(read_test(false, jit), TestReading::Indeterminate(l) if l.contains("jit compilation failed")),
            "{jit}"
        );
        let both = format!(
            "{jit}\n[ALERT]    (347) : config : parsing [/etc/haproxy/haproxy.cfg:7] : unknown keyword 'severr' in 'backend' section"
        );
        assert!(matches!(read_test(false, &both), TestReading::Invalid(l) if l.contains("severr")));
        assert_eq!(read_test(true, ""), TestReading::Valid);
    }
}
