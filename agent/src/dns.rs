//! The DNS evidence source: do the names the proxies depend on resolve?
//!
//! nginx resolves upstream host names once, at load, through the system
//! resolver (getaddrinfo), so this source does the same with
//! `tokio::net::lookup_host`: every distinct upstream host that is not an IP
//! literal (purpose `upstream`) and every literal site name (purpose `site`).
//! Each lookup has its own timeout and only a few run at once, so one dead
//! resolver costs at most `timeout` per batch, never the whole report.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use gw502_proto::v1::{DnsAnswer, DnsSection};

use crate::source::{Scope, Source, Unavailable};

/// Knobs of the DNS source.
#[derive(Debug, Clone)]
pub struct DnsSettings {
    /// Bound on one lookup.
    pub timeout: Duration,
    /// Lookups in flight at once.
    pub concurrency: usize,
    /// Most names looked up per report.
    pub max_names: usize,
}

impl Default for DnsSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(3),
            concurrency: 8,
            max_names: 256,
        }
    }
}

/// Resolves upstream and site names through the system resolver.
#[derive(Debug, Default)]
pub struct DnsSource {
    settings: DnsSettings,
}

impl DnsSource {
    /// A source with the given settings.
    pub fn new(settings: DnsSettings) -> Self {
        Self { settings }
    }
}

/// The names to resolve and why, deduplicated; `upstream` wins over `site`
/// when a name is both.
pub fn names_to_resolve(scope: &Scope) -> BTreeMap<String, &'static str> {
    let mut names = BTreeMap::new();
    for name in &scope.site_names {
        if let Some(name) = literal_name(name) {
            names.insert(name, "site");
        }
    }
    for target in scope.proxies.iter().flat_map(|p| &p.targets) {
        if target.host.parse::<IpAddr>().is_ok() || target.host.starts_with('[') {
            continue;
        }
        if let Some(name) = literal_name(&target.host) {
            names.insert(name, "upstream");
        }
    }
    names
}

/// A lowercased name without trailing dot, or `None` for what is not a plain
/// host name: empty, `_`, wildcards (`*.x`, `x.*`, `.x`), regexes (`~^`),
/// variables (`$host`) and IP literals.
fn literal_name(name: &str) -> Option<String> {
    let name = name.trim().trim_end_matches('.');
    let plain = !name.is_empty()
        && name != "_"
        && !name.starts_with('.')
        && name.parse::<IpAddr>().is_err()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    plain.then(|| name.to_ascii_lowercase())
}

/// Resolves one name with a timeout.
pub async fn resolve(name: &str, purpose: &str, timeout: Duration) -> DnsAnswer {
    let started = Instant::now();
    let outcome = tokio::time::timeout(timeout, tokio::net::lookup_host((name, 0))).await;
    let mut answer = DnsAnswer {
        name: name.to_string(),
        purpose: purpose.to_string(),
        ..DnsAnswer::default()
    };
    match outcome {
        Ok(Ok(addrs)) => {
            let mut ips: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
            ips.sort();
            ips.dedup();
            answer.addresses = ips.iter().map(IpAddr::to_string).collect();
            if answer.addresses.is_empty() {
                answer.error = "no addresses".to_string();
            }
        }
        Ok(Err(error)) => answer.error = error.to_string(),
        Err(_) => answer.error = format!("timed out after {} ms", timeout.as_millis()),
    }
    answer.elapsed_ms = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
    answer
}

impl Source for DnsSource {
    type Section = DnsSection;

    fn name(&self) -> &'static str {
        "dns"
    }

    async fn collect(&mut self, scope: &Scope) -> Result<DnsSection, Unavailable> {
        let timeout = self.settings.timeout;
        let names = names_to_resolve(scope);
        let names: Vec<(String, String)> = names
            .into_iter()
            .take(self.settings.max_names)
            .map(|(name, purpose)| (name, purpose.to_string()))
            .collect();
        let answers = futures::stream::iter(names)
            .map(|(name, purpose)| async move { resolve(&name, &purpose, timeout).await })
            .buffered(self.settings.concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        Ok(DnsSection {
            unavailable: String::new(),
            answers,
        })
    }
}

#[cfg(test)]
mod tests {
    use gw502_proto::v1::{ProxyConfig, UpstreamTarget};

    use super::*;

    fn target(host: &str) -> UpstreamTarget {
        UpstreamTarget {
            host: host.to_string(),
            ..UpstreamTarget::default()
        }
    }

    #[test]
    fn only_plain_names_are_looked_up() {
        let scope = Scope {
            proxies: vec![ProxyConfig {
                targets: vec![
                    target("127.0.0.1"),
                    target("::1"),
                    target("[::1]"),
                    target(""),
                    target("App.Internal."),
                    target("app.internal"),
                    target("$backend"),
                ],
                ..ProxyConfig::default()
            }],
            site_names: [
                "*.example.test",
                "~^www\\d+",
                "_",
                "",
                "shop.test",
                "app.internal",
                ".wild.test",
            ]
            .map(String::from)
            .to_vec(),
            ..Scope::default()
        };
        let names = names_to_resolve(&scope);
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            vec![
                ("app.internal".to_string(), "upstream"),
                ("shop.test".to_string(), "site")
            ]
        );
    }

    /// A name under `.invalid` whose first label is longer than the 63 bytes
    /// DNS allows: glibc rejects it before sending a query, so the test sends
    /// nothing off the machine (checked with strace in an empty netns).
    fn invalid_name() -> String {
        format!("{}.gw502.invalid", "x".repeat(64))
    }

    #[tokio::test]
    async fn localhost_resolves_and_invalid_fails() {
        let invalid_name = invalid_name();
        let scope = Scope {
            proxies: vec![ProxyConfig {
                targets: vec![target("localhost"), target(&invalid_name)],
                ..ProxyConfig::default()
            }],
            site_names: vec!["*.example.test".to_string()],
            ..Scope::default()
        };
        let section = DnsSource::new(DnsSettings::default())
            .collect(&scope)
            .await
            .unwrap();
        assert_eq!(section.answers.len(), 2, "the wildcard is skipped");
        let local = section
            .answers
            .iter()
            .find(|a| a.name == "localhost")
            .unwrap();
        assert_eq!(local.purpose, "upstream");
        assert!(local.error.is_empty(), "{}", local.error);
        assert!(!local.addresses.is_empty());
        for address in &local.addresses {
            assert!(
                address.parse::<IpAddr>().unwrap().is_loopback(),
                "{address}"
            );
        }
        let mut sorted = local.addresses.clone();
        sorted.sort_by_key(|a| a.parse::<IpAddr>().unwrap());
        sorted.dedup();
        assert_eq!(sorted, local.addresses);
        let invalid = section
            .answers
            .iter()
            .find(|a| a.name == invalid_name)
            .unwrap();
        assert!(invalid.addresses.is_empty());
        assert!(!invalid.error.is_empty());
    }
}
