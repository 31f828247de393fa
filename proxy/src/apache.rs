//! Apache httpd with mod_proxy: its units, the Debian config tree
//! (`apache2.conf`, `conf-enabled/`, `sites-enabled/`), `CustomLog`
//! formats, mod_proxy error_log lines (local times) and its `Proxy Error`
//! pages. No config test is run: `apache2 -t` needs Debian's envvars and
//! root-owned paths.

pub mod config;
pub mod log;

use std::path::PathBuf;

pub use config::{ApacheConfig, CustomLog, LOG_DIR, parse_conf};
pub use log::parse_error_line;

use crate::{
    AccessFormat, ConfigLocation, ConfigSource, Discovered, ErrorLine, Page, PageMark, Proxy,
    ProxyKind,
};

/// The Apache model.
#[derive(Debug, Clone, Copy)]
pub struct Apache;

impl Proxy for Apache {
    fn kind(&self) -> ProxyKind {
        ProxyKind::Apache
    }

    fn units(&self) -> &'static [&'static str] {
        &["apache2.service", "httpd.service"]
    }

    /// `AH00957 ... (111)Connection refused` with `AH01114`: 503.
    fn refused_status(&self) -> u16 {
        503
    }

    /// `(70007)The timeout specified has expired: AH00957` with `AH01114`: 503,
    /// as for a refused connect.
    fn connect_timeout_status(&self) -> u16 {
        503
    }

    /// `AH00898: Error during SSL Handshake with remote server`: `500 Proxy
    /// Error` (captured: `probe/fixtures/pages/apache-500-proxy-error-tls.http`).
    fn handshake_status(&self) -> u16 {
        500
    }

    /// mod_proxy_fcgi answers a read timeout 504 (`AH01075`); mod_proxy_http
    /// answers any failure to read the status line, a timeout included
    /// (`(70007)... AH01102`), with `502 Proxy Error` ("Error reading from
    /// remote server"; httpd's `ap_proxy_http_process_response`).
    fn read_timeout_status(&self, protocol: &str) -> u16 {
        if protocol == "fastcgi" { 504 } else { 502 }
    }

    fn default_location(&self) -> ConfigLocation {
        ConfigLocation {
            bin: PathBuf::from("apache2"),
            config: Some(PathBuf::from("/etc/apache2")),
            prefix: None,
        }
    }

    fn config_source(&self, at: &ConfigLocation) -> ConfigSource {
        let dir = at
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from("/etc/apache2"));
        ConfigSource::Tree {
            main: dir.join("apache2.conf"),
            dirs: vec![dir.join("conf-enabled"), dir.join("sites-enabled")],
        }
    }

    fn parse_config(&self, text: &str, _at: &ConfigLocation) -> Discovered {
        let parsed = parse_conf(text);
        Discovered {
            config: parsed.config,
            access_formats: parsed
                .custom_logs
                .into_iter()
                .map(|c| (c.path, AccessFormat::apache_named(&c.format)))
                .collect(),
        }
    }

    fn parse_error_line(&self, raw: &[u8]) -> Option<ErrorLine> {
        parse_error_line(&crate::line::text(raw))
    }

    fn local_time(&self) -> bool {
        true
    }

    fn default_access_format(&self) -> Option<AccessFormat> {
        Some(AccessFormat::apache_named("combined"))
    }

    /// mod_proxy's own error document (`<h1>Proxy Error</h1>`, any status:
    /// 502 for an invalid response, 500 for a failed TLS handshake with the
    /// backend) and Apache's default 5xx documents, which end in its
    /// `<address>Apache/...` signature (Debian's default).
    fn page(&self, page: &Page<'_>) -> Option<PageMark> {
        let b = page.body;
        (b.contains("<h1>proxy error</h1>")
            || b.contains("the proxy server could not handle the request")
            || b.contains("the proxy server received an invalid")
            || b.contains("<title>5") && b.contains("<address>apache/"))
        .then_some(PageMark::Body)
    }
}
