//! Sites: the configured ones (public URL, labels, expected hosts) merged with
//! those discovered from the agents' proxy configs (`server_name` → hosts),
//! and which hosts serve each. A discovered site takes the labels all its
//! hosts share in the config (see `crate::tenancy`).

use std::collections::{BTreeMap, HashMap};

use crate::config::HostConfig;
use crate::edge::{OriginTarget, SiteTarget};
use crate::hub::Hub;
use crate::store::{HostRow, SiteRow, StoreError};

/// One site as the evaluator sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteView {
    /// Site name.
    pub name: String,
    /// Public URL; empty for discovered sites that are not configured.
    pub url: String,
    /// Hosts known to serve it (config and discovery).
    pub hosts: Vec<String>,
    /// Routing labels.
    pub labels: BTreeMap<String, String>,
    /// `config` or `discovered`.
    pub origin: String,
}

impl SiteView {
    /// What to probe for this site: its URL, and the first address of each
    /// host in `serving` (from [`HostIndex::serving`]).
    pub fn probe_target(&self, serving: &[&HostRow]) -> SiteTarget {
        let origins = serving
            .iter()
            .flat_map(|h| {
                h.addresses
                    .iter()
                    .filter_map(|a| a.parse().ok())
                    .take(1)
                    .map(|address| OriginTarget {
                        host_id: h.host_id.clone(),
                        address,
                        port: None,
                    })
            })
            .collect();
        SiteTarget {
            name: self.name.clone(),
            url: self.url.clone(),
            origins,
        }
    }
}

/// Writes the configured sites to the store, keeping discovered hosts.
pub async fn publish_configured(hub: &Hub) -> Result<(), StoreError> {
    let stored = hub.store.list_sites().await?;
    for site in &hub.live().sites {
        let mut hosts = site.hosts.clone();
        if let Some(known) = stored.iter().find(|s| s.name == site.name) {
            hosts.extend(known.hosts.iter().cloned());
        }
        hosts.sort();
        hosts.dedup();
        hub.store
            .upsert_site(&SiteRow {
                name: site.name.clone(),
                url: site.url.clone(),
                origin: "config".into(),
                hosts,
                labels: site.labels.clone(),
            })
            .await?;
    }
    Ok(())
}

/// Every site, configured ones first taking their URL and labels from the
/// config (the file wins over what another collector stored); a discovered
/// site without labels takes those every one of its hosts carries.
pub async fn site_views(hub: &Hub) -> Result<Vec<SiteView>, StoreError> {
    let mut views: Vec<SiteView> = hub
        .store
        .list_sites()
        .await?
        .into_iter()
        .map(|s| SiteView {
            name: s.name,
            url: s.url,
            hosts: s.hosts,
            labels: s.labels,
            origin: s.origin,
        })
        .collect();
    for site in &hub.live().sites {
        match views.iter_mut().find(|v| v.name == site.name) {
            Some(view) => {
                view.url.clone_from(&site.url);
                view.labels.clone_from(&site.labels);
                view.origin = "config".into();
                for host in &site.hosts {
                    if !view.hosts.contains(host) {
                        view.hosts.push(host.clone());
                    }
                }
            }
            None => views.push(SiteView {
                name: site.name.clone(),
                url: site.url.clone(),
                hosts: site.hosts.clone(),
                labels: site.labels.clone(),
                origin: "config".into(),
            }),
        }
    }
    for view in views
        .iter_mut()
        .filter(|v| v.origin != "config" && v.labels.is_empty())
    {
        view.labels = shared_labels(&view.hosts, &hub.config.hosts);
    }
    Ok(views)
}

/// The labels every one of `hosts` carries in `config` (none for no hosts,
/// or when a host has no configured labels): what a discovered site inherits.
pub fn shared_labels(hosts: &[String], config: &[HostConfig]) -> BTreeMap<String, String> {
    let labels: HashMap<&str, &BTreeMap<String, String>> =
        config.iter().map(|h| (h.id.as_str(), &h.labels)).collect();
    let mut each = hosts.iter().map(|h| labels.get(h.as_str()).copied());
    let Some(Some(first)) = each.next() else {
        return BTreeMap::new();
    };
    let mut shared = first.clone();
    for other in each {
        match other {
            Some(other) => shared.retain(|k, v| other.get(k) == Some(v)),
            None => return BTreeMap::new(),
        }
    }
    shared
}

/// The host part of a URL, without port or brackets.
pub fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    authority.split(':').next().unwrap_or_default()
}

/// Every host by id and by interface address, built once per evaluation
/// pass: finding a site's hosts is then a few lookups, not a scan of the
/// fleet (a scan per site made passes quadratic in fleet size).
pub struct HostIndex<'h> {
    by_id: HashMap<&'h str, &'h HostRow>,
    by_address: HashMap<&'h str, Vec<&'h HostRow>>,
}

impl<'h> HostIndex<'h> {
    /// Indexes `hosts`.
    pub fn new(hosts: &'h [HostRow]) -> Self {
        let mut by_address: HashMap<&str, Vec<&HostRow>> = HashMap::new();
        for host in hosts {
            for address in &host.addresses {
                by_address.entry(address).or_default().push(host);
            }
        }
        HostIndex {
            by_id: hosts.iter().map(|h| (h.host_id.as_str(), h)).collect(),
            by_address,
        }
    }

    /// The host with this id.
    pub fn get(&self, host_id: &str) -> Option<&'h HostRow> {
        self.by_id.get(host_id).copied()
    }

    /// Hosts owning `address`.
    pub fn at(&self, address: &str) -> &[&'h HostRow] {
        self.by_address.get(address).map_or(&[], Vec::as_slice)
    }

    /// Hosts that serve `site`, by id: named by config or discovery, or
    /// owning the address the site's URL points at.
    pub fn serving(&self, site: &SiteView) -> Vec<&'h HostRow> {
        let url_host = url_host(&site.url);
        let mut out: Vec<&HostRow> = site.hosts.iter().filter_map(|h| self.get(h)).collect();
        if !url_host.is_empty() {
            out.extend(self.at(url_host));
        }
        out.sort_by(|a, b| a.host_id.cmp(&b.host_id));
        out.dedup_by(|a, b| a.host_id == b.host_id);
        out
    }
}

/// Hands the incidents open in the store, of the sites whose lease this
/// collector holds, to the dispatcher, so Alertmanager keeps hearing about
/// them after a reload of routing; re-sent at once.
pub async fn refresh_open(hub: &Hub) -> Result<(), StoreError> {
    refresh_held(hub, &hub.leases.held()).await
}

/// [`refresh_open`] for the sites `held`: only the lease holder of a site
/// keeps its alerts alive (see [`crate::leases`]).
pub async fn refresh_held(
    hub: &Hub,
    held: &std::collections::BTreeSet<String>,
) -> Result<(), StoreError> {
    let views = site_views(hub).await?;
    let open = hub.store.open_incidents(None).await?;
    let open = open.iter().filter(|row| held.contains(&row.site));
    hub.live().dispatcher.refresh(open.map(|row| {
        let labels = views
            .iter()
            .find(|v| v.name == row.site)
            .map(|v| v.labels.clone())
            .unwrap_or_default();
        (row.to_proto(), labels)
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(id: &str, addresses: &[&str]) -> HostRow {
        HostRow {
            host_id: id.into(),
            first_seen_ms: 0,
            last_seen_ms: 0,
            last_generated_at_ms: 0,
            agent_version: String::new(),
            agent_instance: String::new(),
            interval_ms: 0,
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
            spool_dropped: 0,
            report_count: 0,
        }
    }

    #[test]
    fn url_hosts() {
        assert_eq!(url_host("https://shop.example:8443/x?y"), "shop.example");
        assert_eq!(url_host("http://[::1]:80/"), "::1");
        assert_eq!(url_host("http://user@10.77.0.11"), "10.77.0.11");
    }

    #[test]
    fn hosts_are_matched_by_name_or_address() {
        let hosts = [
            host("web2", &["10.77.0.12"]),
            host("web1", &["10.77.0.11"]),
            host("db", &["10.77.0.13"]),
        ];
        let site = SiteView {
            url: "http://10.77.0.11/".into(),
            hosts: vec!["web2".into(), "web1".into(), "gone".into()],
            ..SiteView::default()
        };
        let ids: Vec<_> = HostIndex::new(&hosts)
            .serving(&site)
            .iter()
            .map(|h| h.host_id.as_str())
            .collect();
        assert_eq!(ids, ["web1", "web2"]);
    }

    fn host_config(id: &str, pairs: &[(&str, &str)]) -> HostConfig {
        HostConfig {
            id: id.into(),
            labels: labels(pairs),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn discovered_sites_inherit_what_all_their_hosts_share() {
        let config = [
            host_config("a", &[("customer", "acme"), ("env", "prod")]),
            host_config("b", &[("customer", "acme"), ("env", "test")]),
            host_config("c", &[("customer", "globex")]),
        ];
        let ids = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            shared_labels(&ids(&["a"]), &config),
            labels(&[("customer", "acme"), ("env", "prod")])
        );
        assert_eq!(
            shared_labels(&ids(&["a", "b"]), &config),
            labels(&[("customer", "acme")])
        );
        assert!(shared_labels(&ids(&["a", "c"]), &config).is_empty());
        assert!(shared_labels(&ids(&["a", "unlabelled"]), &config).is_empty());
        assert!(shared_labels(&ids(&["unlabelled", "a"]), &config).is_empty());
        assert!(shared_labels(&[], &config).is_empty());
    }
}
