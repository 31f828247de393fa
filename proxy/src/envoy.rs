//! Envoy: its unit, its bootstrap file and the admin API's `/config_dump`
//! (listeners, routes, clusters: [`config`]), the admin API's `/clusters`
//! with each host's health flags ([`admin`], fetched by the agent on
//! loopback), its access log with response flags and details ([`log`]; the
//! access log is Envoy's only per-request failure record, so it is read as
//! the error log), and its own error bodies (`upstream connect error or
//! disconnect/reset before headers`, `no healthy upstream`, `upstream
//! request timeout`, with `server: envoy`); `envoy --mode validate -c` is its
//! config test. Envoy is in no Debian release:
//! everything here is tested on output of the real Envoy 1.40.0 captured
//! on loopback (`proxy/fixtures/envoy/`), not in the lab.

pub mod admin;
pub mod config;
pub mod log;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub use log::parse_line;

use crate::{
    AccessFormat, ConfigLocation, ConfigSource, Discovered, ErrorLine, Page, PageMark, Proxy,
    ProxyKind, TestReading,
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

    /// `UF` (upstream connection failure): 503.
    fn refused_status(&self) -> u16 {
        503
    }

    /// `UF` with `connect_timeout` exceeded: 503 as well.
    fn connect_timeout_status(&self) -> u16 {
        503
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

    fn config_test(&self, _at: &ConfigLocation, config: &Path) -> Option<Vec<OsString>> {
        Some(vec![
            "--mode".into(),
            "validate".into(),
            "-c".into(),
            config.as_os_str().to_owned(),
        ])
    }

    /// `envoy --mode validate` exits 1 both for an invalid config and for a
    /// file the agent's user may not read (a key, a CA bundle): the second
    /// is no verdict on the config. The reason is its `[critical]` line,
    /// after the `[info]` lines of what it loaded.
    fn read_test(&self, success: bool, stderr: &str) -> TestReading {
        if success {
            return TestReading::Valid;
        }
        let line = stderr
            .lines()
            .find(|l| l.contains("][critical][") || l.contains("][error]["))
            .or_else(|| stderr.lines().find(|l| !l.trim().is_empty()))
            .unwrap_or("config test failed")
            .trim()
            .to_string();
        if line.contains("unable to read file") || crate::test::is_access_error(&line) {
            TestReading::Indeterminate(line)
        } else {
            TestReading::Invalid(line)
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
        let body = page.body.trim_start();
        (page.status >= 500 && PAGE_STARTS.iter().any(|s| body.starts_with(s)))
            .then_some(PageMark::Body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_mode_is_the_config_test() {
        let ok = include_str!("../fixtures/envoy/validate-ok.stderr");
        let invalid = include_str!("../fixtures/envoy/validate-invalid.stderr");
        let unreadable = include_str!("../fixtures/envoy/validate-unreadable.stderr");
        assert_eq!(Envoy.read_test(true, ok), TestReading::Valid);
        assert!(
            matches!(Envoy.read_test(false, invalid), TestReading::Invalid(ref l) if l.contains("no such field")),
            "{:?}",
            Envoy.read_test(false, invalid)
        );
        assert!(matches!(
            Envoy.read_test(false, unreadable),
            TestReading::Indeterminate(_)
        ));
        let args = Envoy
            .config_test(
                &Envoy.default_location(),
                Path::new("/etc/envoy/envoy.yaml"),
            )
            .unwrap();
        assert_eq!(args, ["--mode", "validate", "-c", "/etc/envoy/envoy.yaml"]);
    }

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
