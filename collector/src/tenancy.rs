//! Tenants: which sites, hosts and incidents one operator may see.
//!
//! Labels come from the collector's config only: `[[sites]] labels` for
//! configured sites, `[[hosts]] labels` for hosts, and a discovered site takes
//! the labels every one of its hosts shares ([`crate::sites::shared_labels`]).
//! Agents send no labels: an agent certificate proves a host's name, not its
//! tenant, so a self-claim would let one host (or whoever holds its key)
//! place itself and its reports in another tenant's view. An incident
//! carries its site's labels.
//!
//! A scoped operator certificate (`gw502:scope:customer=acme`, see
//! `gw502_pki::Scope`) sees what carries every pair of its scope: a host by
//! its own labels, a site, incident or delivery by the site's labels. Every
//! `Query` RPC passes one gate, [`Visibility::resolve`], and asks it; list
//! queries hand the visible sites to the store as a filter, so limits count
//! only rows the caller may see. Reading a host or incident outside the scope
//! answers exactly what a missing one answers (NOT_FOUND), and the refusal is
//! logged with the caller.

use std::collections::{BTreeMap, HashMap};

use gw502_pki::Scope;
use gw502_proto::v1::Incident;
use tonic::Status;

use crate::auth::Reader;
use crate::config::HostConfig;
use crate::hub::Hub;
use crate::sites::site_views;
use crate::store::StoreError;

/// Label pairs by key.
pub type Labels = BTreeMap<String, String>;

/// What one caller may see, resolved once per RPC.
#[derive(Debug, Clone)]
pub struct Visibility {
    reader: Reader,
    sites: HashMap<String, Labels>,
    hosts: HashMap<String, Labels>,
}

impl Visibility {
    /// The gate of every query: the caller's scope with the current labels
    /// of every site (configured and discovered) and host.
    pub async fn resolve(hub: &Hub, reader: Reader) -> Result<Visibility, StoreError> {
        let sites = site_views(hub)
            .await?
            .into_iter()
            .map(|view| (view.name, view.labels))
            .collect();
        Ok(Visibility {
            reader,
            sites,
            hosts: host_labels(&hub.config.hosts),
        })
    }

    /// A visibility over fixed labels (for tests of the rules).
    pub fn new(reader: Reader, sites: HashMap<String, Labels>, hosts: &[HostConfig]) -> Self {
        Visibility {
            reader,
            sites,
            hosts: host_labels(hosts),
        }
    }

    /// The caller.
    pub fn reader(&self) -> &Reader {
        &self.reader
    }

    /// The caller's scope.
    pub fn scope(&self) -> &Scope {
        &self.reader.scope
    }

    /// Whether `site` was known when this was resolved.
    pub fn knows_site(&self, site: &str) -> bool {
        self.sites.contains_key(site)
    }

    /// Labels of `site` (none for an unknown site).
    pub fn site_labels(&self, site: &str) -> Labels {
        self.sites.get(site).cloned().unwrap_or_default()
    }

    /// Labels of `host` (none unless the config gives some).
    pub fn host_labels(&self, host: &str) -> Labels {
        self.hosts.get(host).cloned().unwrap_or_default()
    }

    /// Whether the caller may see `site`.
    pub fn sees_site(&self, site: &str) -> bool {
        self.reader.scope.is_unscoped()
            || self
                .sites
                .get(site)
                .is_some_and(|labels| self.reader.scope.admits(labels))
    }

    /// Whether the caller may see `host` (by the host's own labels).
    pub fn sees_host(&self, host: &str) -> bool {
        self.reader.scope.is_unscoped()
            || self
                .hosts
                .get(host)
                .is_some_and(|labels| self.reader.scope.admits(labels))
    }

    /// Whether the caller may see `incident` (by its site).
    pub fn sees_incident(&self, incident: &Incident) -> bool {
        self.sees_site(&incident.site)
    }

    /// The sites a list query may return for a caller who also asked for
    /// `wanted` labels: `None` when nothing restricts it, else the site
    /// names (possibly none) that pass both the scope and `wanted`.
    pub fn sites_for(&self, wanted: &Labels) -> Option<Vec<String>> {
        if self.reader.scope.is_unscoped() && wanted.is_empty() {
            return None;
        }
        let mut names: Vec<String> = self
            .sites
            .iter()
            .filter(|(_, labels)| self.reader.scope.admits(labels) && matches(wanted, labels))
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        Some(names)
    }

    /// Sets `incident`'s labels to its site's.
    pub fn label(&self, incident: &mut Incident) {
        incident.labels = self.site_labels(&incident.site).into_iter().collect();
    }

    /// The answer to reading `what` outside the caller's scope: the same
    /// NOT_FOUND (`message`) a missing one gets, and a log line naming the caller.
    pub fn refuse(&self, what: &'static str, id: &str, message: String) -> Status {
        tracing::warn!(
            caller = %self.reader.who,
            scope = %self.reader.scope,
            what,
            id,
            "refused a read outside the caller's scope"
        );
        Status::not_found(message)
    }
}

/// True when `labels` carry every pair of `wanted`.
pub fn matches(wanted: &Labels, labels: &Labels) -> bool {
    wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn host_labels(config: &[HostConfig]) -> HashMap<String, Labels> {
    config
        .iter()
        .map(|h| (h.id.clone(), h.labels.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn host(id: &str, pairs: &[(&str, &str)]) -> HostConfig {
        HostConfig {
            id: id.into(),
            labels: labels(pairs),
        }
    }

    fn visibility(scope: &[&str]) -> Visibility {
        let sites = [
            (
                "shop.acme",
                labels(&[("customer", "acme"), ("env", "prod")]),
            ),
            ("blog.acme", labels(&[("customer", "acme")])),
            ("shop.globex", labels(&[("customer", "globex")])),
            ("discovered", labels(&[])),
        ]
        .into_iter()
        .map(|(n, l)| (n.to_string(), l))
        .collect();
        let reader = Reader {
            who: "operator/alice".into(),
            scope: Scope::parse(scope).unwrap(),
        };
        Visibility::new(
            reader,
            sites,
            &[
                host("web-acme", &[("customer", "acme")]),
                host("web-globex", &[("customer", "globex")]),
            ],
        )
    }

    #[test]
    fn scoped_callers_see_their_tenant_only() {
        let acme = visibility(&["customer=acme"]);
        assert!(acme.sees_site("shop.acme") && acme.sees_site("blog.acme"));
        assert!(!acme.sees_site("shop.globex"));
        assert!(!acme.sees_site("discovered"), "unlabelled is not anyone's");
        assert!(!acme.sees_site("unknown"));
        assert!(acme.sees_host("web-acme"));
        assert!(!acme.sees_host("web-globex"));
        assert!(!acme.sees_host("web-shared"), "a host without labels");
        let incident = Incident {
            site: "shop.globex".into(),
            host: "web-acme".into(),
            ..Default::default()
        };
        assert!(
            !acme.sees_incident(&incident),
            "the site decides, not the host"
        );
        assert_eq!(
            acme.sites_for(&Labels::new()).unwrap(),
            ["blog.acme", "shop.acme"]
        );
        assert_eq!(
            acme.sites_for(&labels(&[("env", "prod")])).unwrap(),
            ["shop.acme"]
        );
        assert_eq!(
            acme.sites_for(&labels(&[("customer", "globex")])).unwrap(),
            Vec::<String>::new(),
            "a label filter cannot widen the scope"
        );
    }

    #[test]
    fn unscoped_callers_see_everything() {
        let admin = visibility(&[]);
        for site in ["shop.acme", "shop.globex", "discovered", "unknown"] {
            assert!(admin.sees_site(site), "{site}");
        }
        assert!(admin.sees_host("web-shared"));
        assert_eq!(admin.sites_for(&Labels::new()), None);
        assert_eq!(
            admin.sites_for(&labels(&[("customer", "globex")])).unwrap(),
            ["shop.globex"]
        );
        let mut incident = Incident {
            site: "shop.acme".into(),
            ..Default::default()
        };
        admin.label(&mut incident);
        assert_eq!(incident.labels["customer"], "acme");
        let status = admin.refuse("incident", "7", "no incident 7".into());
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert_eq!(status.message(), "no incident 7");
    }
}
