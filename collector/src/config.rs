//! The collector's config: the raw TOML shape, its validation, and the typed
//! [`Config`] the rest of the collector uses.
//!
//! Every key is documented in `deploy/collector.toml`. Validation reports all
//! problems at once with their keys; `main` prints them and exits with 64.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use gw502_daemon::settings::{ConfigError, HumanDuration, Problems, load_toml};
pub use gw502_daemon::settings::{RawTls, Tls};
use serde::Deserialize;

use crate::edge::EdgeSettings;
use crate::routing::{Router, RoutingSettings};

/// The raw file, as written.
#[derive(Debug, Default, Deserialize)]
pub struct RawConfig {
    /// Address of the gRPC listener.
    pub listen: Option<String>,
    /// `sqlite:///var/lib/gw502/collector.db` or `postgres://...`.
    pub database: Option<String>,
    /// This collector's name (unique when several share a database).
    pub id: Option<String>,
    /// TLS material.
    #[serde(default)]
    pub tls: RawTls,
    /// How incidents are decided.
    #[serde(default)]
    pub evaluation: RawEvaluation,
    /// How long history is kept.
    pub retention: Option<HumanDuration>,
    /// Edge prober settings.
    #[serde(default)]
    pub edge: Option<EdgeSettings>,
    /// How often each site is probed from the outside.
    pub probe_interval: Option<HumanDuration>,
    /// Sites to watch.
    #[serde(default)]
    pub sites: Vec<RawSite>,
    /// Labels of hosts (the collector's word on a host's tenant, not the agent's).
    #[serde(default)]
    pub hosts: Vec<RawHost>,
    /// Escalation routing.
    #[serde(default)]
    pub routing: Option<RoutingSettings>,
    /// Address for Prometheus metrics (off when absent).
    pub metrics_listen: Option<String>,
    /// How long a site lease lasts unrenewed (several collectors, one database).
    pub lease_ttl: Option<HumanDuration>,
    /// How long SIGTERM waits for reports and deliveries in flight.
    pub shutdown_grace: Option<HumanDuration>,
}

/// The `[evaluation]` table.
#[derive(Debug, Default, Deserialize)]
pub struct RawEvaluation {
    /// How often every site is re-evaluated even without new evidence.
    pub interval: Option<HumanDuration>,
    /// How far back journal, log and probe evidence counts.
    pub window: Option<HumanDuration>,
    /// Good observations in a row that resolve an incident.
    pub resolve_after: Option<u32>,
}

/// One `[[sites]]` entry.
#[derive(Debug, Deserialize)]
pub struct RawSite {
    /// Short name; defaults to the URL's host.
    pub name: Option<String>,
    /// The public URL to probe.
    pub url: String,
    /// Host ids of the agents expected to serve it.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Labels for routing rules.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// One `[[hosts]]` entry.
#[derive(Debug, Deserialize)]
pub struct RawHost {
    /// The host id (the name in its agent certificate).
    pub id: String,
    /// Labels such as `customer = "acme"`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A host's labels from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// The host id.
    pub id: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

/// A site from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteConfig {
    /// Name used in incidents.
    pub name: String,
    /// Public URL.
    pub url: String,
    /// Expected origin hosts.
    pub hosts: Vec<String>,
    /// Routing labels.
    pub labels: BTreeMap<String, String>,
}

/// The validated config.
#[derive(Debug, Clone)]
pub struct Config {
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// Database URL.
    pub database: String,
    /// Collector name.
    pub id: String,
    /// Listener security.
    pub tls: Tls,
    /// The revocation list set by `tls.crl` (default: `crl.pem` beside the CA).
    pub crl: Option<std::path::PathBuf>,
    /// Re-evaluation period.
    pub evaluation_interval: Duration,
    /// Evidence window.
    pub window: Duration,
    /// Good observations that resolve an incident.
    pub resolve_after: u32,
    /// Retention of reports and resolved incidents.
    pub retention: Duration,
    /// Edge prober settings.
    pub edge: EdgeSettings,
    /// Probe period per site.
    pub probe_interval: Duration,
    /// Configured sites.
    pub sites: Vec<SiteConfig>,
    /// Configured host labels, by host id.
    pub hosts: Vec<HostConfig>,
    /// Escalation routing.
    pub router: Router,
    /// Metrics listener.
    pub metrics_listen: Option<SocketAddr>,
    /// Site lease lifetime.
    pub lease_ttl: Duration,
    /// The bound on draining at shutdown.
    pub shutdown_grace: Duration,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let (raw, problems) = load_toml::<RawConfig>(path)?;
        raw.validate(path, problems)
    }
}

impl RawConfig {
    /// Checks every key, returning all problems at once.
    pub fn validate(self, path: &Path, mut problems: Problems) -> Result<Config, ConfigError> {
        let listen = self.listen.as_deref().unwrap_or("0.0.0.0:7502");
        let listen = problems.check(
            "listen",
            listen
                .parse::<SocketAddr>()
                .map_err(|e| format!("{listen:?}: {e}")),
        );
        let metrics_listen = self.metrics_listen.as_deref().and_then(|text| {
            problems.check(
                "metrics_listen",
                text.parse::<SocketAddr>()
                    .map_err(|e| format!("{text:?}: {e}")),
            )
        });
        let database = self
            .database
            .unwrap_or_else(|| "sqlite:///var/lib/gw502/collector.db".to_string());
        if !(database.starts_with("sqlite:")
            || database.starts_with("postgres://")
            || database.starts_with("postgresql://"))
        {
            problems.push("database", "must start with sqlite: or postgres://");
        }
        let crl = self.tls.crl.clone();
        if let Some(crl) = &crl
            && !crl.exists()
        {
            problems.push(
                "tls.crl",
                format!("{} does not exist (leave tls.crl unset to use crl.pem beside the CA when present)", crl.display()),
            );
        }
        let tls = self.tls.validate(&mut problems);
        if tls == Some(Tls::Plaintext) && listen.is_some_and(|addr| !addr.ip().is_loopback()) {
            problems.push(
                "tls.plaintext",
                "plaintext is only allowed on a loopback listen address",
            );
        }
        let resolve_after = self.evaluation.resolve_after.unwrap_or(3);
        if resolve_after == 0 {
            problems.push("evaluation.resolve_after", "must be at least 1");
        }
        let lease_ttl = self.lease_ttl.map_or(Duration::from_secs(15), |d| d.0);
        if lease_ttl < Duration::from_millis(300) {
            problems.push("lease_ttl", "must be at least 300ms");
        }
        let mut sites = Vec::new();
        for (i, site) in self.sites.into_iter().enumerate() {
            let key = format!("sites[{i}]");
            match site_name(&site) {
                Ok(name) => sites.push(SiteConfig {
                    name,
                    url: site.url,
                    hosts: site.hosts,
                    labels: site.labels,
                }),
                Err(e) => problems.push(format!("{key}.url"), e),
            }
        }
        let hosts = validate_hosts(self.hosts, &mut problems);
        let router = match self.routing.unwrap_or_default().validate() {
            Ok(router) => Some(router),
            Err(errors) => {
                for error in errors {
                    problems.push(error.key, error.problem.to_string());
                }
                None
            }
        };
        let (Some(listen), Some(tls), Some(router)) = (listen, tls, router) else {
            return Err(problems
                .finish(path, ())
                .expect_err("a missing value always records a problem"));
        };
        let config = Config {
            listen,
            database,
            id: self.id.unwrap_or_else(default_id),
            tls,
            crl,
            evaluation_interval: self
                .evaluation
                .interval
                .map_or(Duration::from_secs(5), |d| d.0),
            window: self
                .evaluation
                .window
                .map_or(Duration::from_secs(300), |d| d.0),
            resolve_after,
            retention: self
                .retention
                .map_or(Duration::from_secs(7 * 86_400), |d| d.0),
            edge: self.edge.unwrap_or_default(),
            probe_interval: self.probe_interval.map_or(Duration::from_secs(10), |d| d.0),
            sites,
            hosts,
            router,
            metrics_listen,
            lease_ttl,
            shutdown_grace: self.shutdown_grace.map_or(Duration::from_secs(10), |d| d.0),
        };
        problems.finish(path, config)
    }
}

fn site_name(site: &RawSite) -> Result<String, String> {
    let rest = site
        .url
        .strip_prefix("http://")
        .or_else(|| site.url.strip_prefix("https://"))
        .ok_or_else(|| format!("{:?} must start with http:// or https://", site.url))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(format!("{:?} has no host", site.url));
    }
    Ok(site.name.clone().unwrap_or_else(|| authority.to_string()))
}

/// Checks `[[hosts]]`: valid, unique ids.
fn validate_hosts(raw: Vec<RawHost>, problems: &mut Problems) -> Vec<HostConfig> {
    let mut hosts: Vec<HostConfig> = Vec::new();
    for (i, host) in raw.into_iter().enumerate() {
        if let Err(reason) = gw502_vocab::name::check_name(&host.id) {
            problems.push(format!("hosts[{i}].id"), format!("{:?}: {reason}", host.id));
        } else if hosts.iter().any(|h| h.id == host.id) {
            problems.push(
                format!("hosts[{i}].id"),
                format!("{:?} is listed more than once", host.id),
            );
        } else {
            hosts.push(HostConfig {
                id: host.id,
                labels: host.labels,
            });
        }
    }
    hosts
}

/// The machine's host name, the default collector id.
pub fn default_id() -> String {
    nix_hostname().unwrap_or_else(|| "collector".to_string())
}

fn nix_hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gw502_daemon::settings::parse_toml;

    fn validate(text: &str) -> Result<Config, ConfigError> {
        let path = Path::new("collector.toml");
        let (raw, problems) = parse_toml::<RawConfig>(path, text)?;
        raw.validate(path, problems)
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let err = validate(
            "listen = \"nowhere\"\ndatabase = \"mysql://x\"\nbogus = 1\n[evaluation]\nresolve_after = 0\n[[sites]]\nurl = \"ftp://x\"\n",
        )
        .unwrap_err();
        let keys: Vec<_> = err.problems.iter().map(|p| p.key.as_str()).collect();
        for key in [
            "bogus",
            "listen",
            "database",
            "tls.ca",
            "tls.cert",
            "tls.key",
            "evaluation.resolve_after",
            "sites[0].url",
        ] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
    }

    #[test]
    fn plaintext_only_on_loopback() {
        let err = validate("listen = \"0.0.0.0:7502\"\n[tls]\nplaintext = true\n").unwrap_err();
        assert_eq!(err.problems[0].key, "tls.plaintext");
        let ok = validate("listen = \"127.0.0.1:7502\"\n[tls]\nplaintext = true\n").unwrap();
        assert_eq!(ok.tls, Tls::Plaintext);
    }

    #[test]
    fn defaults_and_site_names() {
        let config = validate(
            "[tls]\nca = \"/p/ca.crt\"\ncert = \"/p/c.crt\"\nkey = \"/p/c.key\"\n[[sites]]\nurl = \"https://shop.example/health\"\n",
        )
        .unwrap();
        assert_eq!(config.listen, "0.0.0.0:7502".parse().unwrap());
        assert_eq!(config.resolve_after, 3);
        assert_eq!(config.sites[0].name, "shop.example");
        assert!(config.hosts.is_empty());
    }

    #[test]
    fn host_labels_need_valid_unique_ids() {
        let tls = "[tls]\nca = \"/p/ca.crt\"\ncert = \"/p/c.crt\"\nkey = \"/p/c.key\"\n";
        let config = validate(&format!(
            "{tls}[[hosts]]\nid = \"web1\"\nlabels = {{ customer = \"acme\" }}\n"
        ))
        .unwrap();
        assert_eq!(config.hosts[0].id, "web1");
        assert_eq!(config.hosts[0].labels["customer"], "acme");
        let err = validate(&format!(
            "{tls}[[hosts]]\nid = \"web1\"\n[[hosts]]\nid = \"web1\"\n[[hosts]]\nid = \"a b\"\n[[hosts]]\nid = \"x\"\nlabel = {{}}\n"
        ))
        .unwrap_err();
        let keys: Vec<_> = err.problems.iter().map(|p| p.key.as_str()).collect();
        for key in ["hosts[1].id", "hosts[2].id"] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
        assert!(keys.iter().any(|k| k.contains("label")), "{keys:?}");
    }
}
