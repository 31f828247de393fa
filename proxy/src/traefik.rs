//! Traefik v2/v3: its unit, its static config and the file provider's
//! dynamic files (TOML or YAML, [`config`]), its API's routers and services
//! with server health ([`api`], fetched by the agent on loopback), its log
//! lines in both formats and its JSON access log ([`log`]), and its error
//! responses (the bare status text, `Bad Gateway`, with no `Server`
//! header). Traefik is in no Debian release: everything here is tested on
//! output of the real Traefik 3.7.15 captured on loopback
//! (`proxy/fixtures/traefik/`), not in the lab.

pub mod api;
pub mod config;
pub mod log;

use std::path::PathBuf;

pub use log::parse_line;

use crate::{
    AccessFormat, ConfigLocation, ConfigSource, Discovered, ErrorLine, Page, PageMark, Proxy,
    ProxyKind,
};

/// The bodies of Traefik's own error responses (`http.StatusText`), as the
/// probe lowercases them.
const PAGE_BODIES: [&str; 3] = ["bad gateway", "gateway timeout", "no available server"];

/// The Traefik model.
#[derive(Debug, Clone, Copy)]
pub struct Traefik;

impl Proxy for Traefik {
    fn kind(&self) -> ProxyKind {
        ProxyKind::Traefik
    }

    fn units(&self) -> &'static [&'static str] {
        &["traefik.service"]
    }

    /// `dial tcp ...: connect: connection refused`: 502 Bad Gateway.
    fn refused_status(&self) -> u16 {
        502
    }

    fn default_location(&self) -> ConfigLocation {
        ConfigLocation {
            bin: PathBuf::from("traefik"),
            config: Some(PathBuf::from("/etc/traefik/traefik.yml")),
            prefix: None,
        }
    }

    fn config_source(&self, at: &ConfigLocation) -> ConfigSource {
        ConfigSource::Includes(
            at.config
                .clone()
                .unwrap_or_else(|| PathBuf::from("/etc/traefik/traefik.yml")),
        )
    }

    fn parse_config(&self, text: &str, at: &ConfigLocation) -> Discovered {
        let main = at
            .config
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        config::parse(text, &main)
    }

    fn includes(&self, file: &str, text: &str) -> Vec<String> {
        config::includes(file, text)
    }

    fn join_files(&self, files: &[(String, String)]) -> String {
        config::join(files)
    }

    fn parse_error_line(&self, raw: &[u8]) -> Option<ErrorLine> {
        parse_line(raw)
    }

    fn local_time(&self) -> bool {
        false
    }

    fn default_access_format(&self) -> Option<AccessFormat> {
        Some(config::clf())
    }

    fn page(&self, page: &Page<'_>) -> Option<PageMark> {
        // Traefik sends the bare status text with no `Server` header; only
        // an exact body counts, and only after the edges' own markers.
        (page.status >= 500 && page.server.is_empty() && PAGE_BODIES.contains(&page.body.trim()))
            .then_some(PageMark::Header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access;

    const CLF: &str = include_str!("../fixtures/traefik/access.clf.log");
    const TOML: &str = include_str!("../fixtures/traefik/dynamic.toml");
    const YAML: &str = include_str!("../fixtures/traefik/dynamic.yaml");

    #[test]
    fn clf_access_lines_are_counted() {
        let fmt = Traefik.default_access_format().unwrap();
        let statuses: Vec<u16> = CLF
            .lines()
            .map(|l| access::parse_line(l, &fmt).unwrap().status)
            .collect();
        // 404s: requests before the file provider loaded, and the one no
        // router matches.
        let routed: Vec<u16> = statuses.iter().copied().filter(|s| *s != 404).collect();
        assert_eq!(
            routed,
            [200, 200, 502, 504, 502, 502, 500, 503, 500, 500, 503]
        );
        assert!(statuses.ends_with(&[404]));
        let l = access::parse_line(CLF.lines().last().unwrap(), &fmt).unwrap();
        assert!(l.at_ms.is_some());
    }

    #[test]
    fn toml_and_yaml_file_providers_agree() {
        let at = |p: &str| ConfigLocation {
            config: Some(PathBuf::from(p)),
            ..Traefik.default_location()
        };
        let t = Traefik
            .parse_config(TOML, &at("/etc/traefik/dynamic.toml"))
            .config;
        let y = Traefik
            .parse_config(YAML, &at("/etc/traefik/dynamic.yml"))
            .config;
        assert_eq!(t.targets.len(), 10, "{:?}", t.targets);
        let strip = |c: &gw502_proto::v1::ProxyConfig| {
            let mut v: Vec<_> = c
                .targets
                .iter()
                .map(|t| {
                    (
                        t.group.clone(),
                        t.address.clone(),
                        t.server_names.clone(),
                        t.port,
                    )
                })
                .collect();
            v.sort();
            v
        };
        assert_eq!(strip(&t), strip(&y));
        let refused = t.targets.iter().find(|x| x.group == "refused").unwrap();
        assert_eq!(refused.server_names, ["refused.test"]);
        assert_eq!(refused.protocol, "http");
        assert_eq!(refused.host, "127.0.0.1");
        assert!(t.targets.iter().any(|x| x.protocol == "https"));
        assert_eq!(t.servers.len(), 10);
    }

    #[test]
    fn own_pages_are_the_bare_status_text() {
        let page = |status, body: &'static str| Page {
            status,
            server: "",
            body,
            empty: body.is_empty(),
        };
        assert_eq!(
            Traefik.page(&page(502, "bad gateway")),
            Some(PageMark::Header)
        );
        assert_eq!(Traefik.page(&page(502, "{\"error\":\"db\"}")), None);
        assert_eq!(Traefik.page(&page(200, "bad gateway")), None);
    }
}
