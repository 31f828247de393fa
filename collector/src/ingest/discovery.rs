//! Site discovery from the agents' proxy configs: every `server_name` a host
//! serves makes it one of that site's hosts. The memberships this collector
//! has stored are remembered, so a steady fleet costs no database work here;
//! a new one is stored by the report writer with the report
//! ([`crate::store::Store::add_site_hosts`], idempotent and safe against other
//! collectors).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use gw502_proto::v1::HostReport;

/// Memberships remembered at most; past this the memory starts over (a
/// forgotten membership is stored again, which changes nothing).
const MAX_REMEMBERED: usize = 1_000_000;

/// The memberships known to be stored: host → its sites.
#[derive(Default)]
pub struct Discovered {
    known: Mutex<Known>,
}

#[derive(Default)]
struct Known {
    sites_of: HashMap<String, HashSet<String>>,
    memberships: usize,
}

impl Discovered {
    /// The site names `report` serves that are not yet known to list its host.
    pub fn unknown(&self, report: &HostReport) -> Vec<String> {
        let Some(section) = &report.proxy_config else {
            return Vec::new();
        };
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let stored = known.sites_of.get(&report.host_id);
        let mut names: Vec<String> = section
            .proxies
            .iter()
            .flat_map(|p| &p.servers)
            .flat_map(|s| &s.names)
            .filter(|name| is_site_name(name))
            .filter(|name| !stored.is_some_and(|sites| sites.contains(*name)))
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Records that `host` is stored as serving `sites`.
    pub fn remember(&self, host: &str, sites: Vec<String>) {
        if sites.is_empty() {
            return;
        }
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.memberships + sites.len() > MAX_REMEMBERED {
            *known = Known::default();
        }
        let Known {
            sites_of,
            memberships,
        } = &mut *known;
        let stored = sites_of.entry(host.to_owned()).or_default();
        for site in sites {
            *memberships += usize::from(stored.insert(site));
        }
    }
}

/// Names that identify a site: no catch-alls, wildcards or regexes.
fn is_site_name(name: &str) -> bool {
    !name.is_empty()
        && name != "_"
        && name != "localhost"
        && !name.starts_with('~')
        && !name.contains('*')
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use gw502_proto::v1::{ProxyConfig, ProxyConfigSection, VirtualServer};

    use super::*;

    fn serving(host: &str, names: &[&str]) -> HostReport {
        HostReport {
            host_id: host.into(),
            proxy_config: Some(ProxyConfigSection {
                proxies: vec![ProxyConfig {
                    servers: vec![VirtualServer {
                        names: names.iter().map(|n| (*n).to_owned()).collect(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn site_names_exclude_catch_alls() {
        for name in ["shop.example", "api-2.example.org"] {
            assert!(is_site_name(name), "{name}");
        }
        for name in ["_", "", "*.example", ".example", "~^www\\.", "localhost"] {
            assert!(!is_site_name(name), "{name}");
        }
    }

    #[test]
    fn remembered_memberships_are_not_asked_again() {
        let discovered = Discovered::default();
        let report = serving("web1", &["b.example", "_", "a.example", "b.example"]);
        assert_eq!(discovered.unknown(&report), ["a.example", "b.example"]);
        discovered.remember("web1", vec!["a.example".into()]);
        assert_eq!(discovered.unknown(&report), ["b.example"]);
        // Another host serving the same site is a new membership.
        assert_eq!(
            discovered.unknown(&serving("web2", &["a.example"])),
            ["a.example"]
        );
        assert!(discovered.unknown(&HostReport::default()).is_empty());
    }
}
