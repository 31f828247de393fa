//! Probes of public sites from the collector (the operator's `curl -I
//! https://site` from outside), and direct probes of each origin host under
//! the site's name when the public answer shows an edge in front or fails.
//!
//! Every URL goes through the SSRF guard ([`guard`]) first: the host is
//! resolved once, internal addresses are refused with outcome `blocked`
//! (nothing is sent), and the fetch connects to the vetted address. The
//! fetch, fingerprints and observation shape are shared with the agent's
//! cross-probes (`gw502_probe`).

pub mod guard;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use gw502_probe::fetch::Target;
use gw502_probe::observation::{ObservationLabels, observation};
use gw502_probe::{Failure, FetchRequest, Fetched, Outcome, Phase, fetch};
use gw502_proto::v1::EdgeObservation;
use gw502_vocab::clock::now_ms;
use serde::{Deserialize, Deserializer};

pub use guard::{Cidr, Guard, Refusal, Vetted};

/// Edge prober settings (`[edge]` in the collector config).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeSettings {
    /// Time allowed for one fetch, body included (`"5s"`).
    #[serde(deserialize_with = "human_duration")]
    pub timeout: Duration,
    /// Allow probes of loopback, private and other internal addresses.
    pub allow_private: bool,
    /// Internal networks allowed anyway (`["10.77.0.0/24"]`).
    pub allow_cidrs: Vec<Cidr>,
    /// `User-Agent` of the probes.
    pub user_agent: String,
}

impl Default for EdgeSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            allow_private: false,
            allow_cidrs: Vec::new(),
            user_agent: concat!("gw502-collector/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

fn human_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text)
        .map_err(|e| serde::de::Error::custom(format!("invalid duration {text:?}: {e}")))
}

/// One origin host of a site, probed directly under the site's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginTarget {
    /// The agent's host id (`origin/<host_id>` in the observation).
    pub host_id: String,
    /// Address to connect to.
    pub address: IpAddr,
    /// Port; defaults to the site URL's port.
    pub port: Option<u16>,
}

/// A site to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteTarget {
    /// Site name.
    pub name: String,
    /// Public URL.
    pub url: String,
    /// Hosts that serve it.
    pub origins: Vec<OriginTarget>,
}

impl SiteTarget {
    /// The Host header and TLS server name to send for `url`: the URL's own,
    /// unless the URL names an address and the site a host name. Then the
    /// name is sent, the way `curl --resolve name:port:address` does, so the
    /// vhost that serves the site answers, and its logs name the site.
    fn virtual_host(&self, url: &Target) -> (String, String) {
        let by_address = url.host.parse::<IpAddr>().is_ok();
        let name = self.name.trim();
        if by_address && gw502_vocab::name::is_host_name(name) {
            let default_port = if url.tls { 443 } else { 80 };
            let authority = if url.port == default_port {
                name.to_string()
            } else {
                format!("{name}:{}", url.port)
            };
            (authority, name.to_string())
        } else {
            (url.authority.clone(), url.host.clone())
        }
    }
}

/// Probes sites from this collector.
#[derive(Debug, Clone)]
pub struct EdgeProber {
    settings: EdgeSettings,
    vantage: String,
    guard: Guard,
    extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
}

impl EdgeProber {
    /// A prober reporting as `vantage` (`collector/<id>`).
    pub fn new(settings: EdgeSettings, vantage: impl Into<String>) -> Self {
        let guard = Guard {
            allow_private: settings.allow_private,
            allow_cidrs: settings.allow_cidrs.clone(),
        };
        Self {
            settings,
            vantage: vantage.into(),
            guard,
            extra_roots: Vec::new(),
        }
    }

    /// Trusts `roots` in addition to the Mozilla roots (a private CA).
    pub fn with_extra_roots(
        mut self,
        roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    ) -> Self {
        self.extra_roots = roots;
        self
    }

    fn request(&self, url: &str, peer: SocketAddr) -> FetchRequest {
        let mut request = FetchRequest::new(url);
        request.peer = Some(peer);
        request.total_timeout = self.settings.timeout;
        request.connect_timeout = self.settings.timeout.min(Duration::from_secs(3));
        request.user_agent = self.settings.user_agent.clone();
        request.tls.extra_roots = self.extra_roots.clone();
        request
    }

    fn labels<'a>(
        &'a self,
        site: &'a SiteTarget,
        target: &'a str,
        at_ms: i64,
    ) -> ObservationLabels<'a> {
        ObservationLabels {
            site: &site.name,
            url: &site.url,
            vantage: &self.vantage,
            target,
            at_ms,
        }
    }

    /// Probes the public URL and, when it shows an edge or fails, every origin.
    pub async fn probe_site(&self, site: &SiteTarget) -> Vec<EdgeObservation> {
        let public = self.probe_public(site).await;
        let origins = self.probe_origins(site, &public).await;
        std::iter::once(public.observation).chain(origins).collect()
    }

    /// Probes the public URL only. Its observation can be stored at once:
    /// the origin probes that may follow ([`EdgeProber::probe_origins`])
    /// can take as long again (an edge retrying a dead origin).
    pub async fn probe_public(&self, site: &SiteTarget) -> PublicProbe {
        let at_ms = now_ms();
        let (public, vetted) = match self.guard.vet(&site.url).await {
            Ok(vetted) => {
                let mut request = self.request(&site.url, vetted.peer);
                let (host, sni) = site.virtual_host(&vetted.target);
                request.host_header = Some(host);
                request.tls_name = Some(sni);
                (fetch(&request).await, Some(vetted))
            }
            Err(refusal) => (refused(&refusal), None),
        };
        let observation = observation(self.labels(site, "public", at_ms), &public);
        tracing::debug!(site = %site.name, outcome = %observation.outcome, status = observation.status, "edge probe");
        let failed = public.outcome != Outcome::Ok || public.status >= 500;
        let behind_edge = !observation.edge.is_empty();
        let origins_due = behind_edge || (failed && !site.origins.is_empty());
        PublicProbe {
            observation,
            vetted: vetted.filter(|_| origins_due),
        }
    }

    /// Probes every origin directly (with the site's Host header and SNI)
    /// when the public probe showed an edge or failed; nothing otherwise.
    pub async fn probe_origins(
        &self,
        site: &SiteTarget,
        public: &PublicProbe,
    ) -> Vec<EdgeObservation> {
        let Some(vetted) = &public.vetted else {
            return Vec::new();
        };
        let probes = site.origins.iter().map(|origin| {
            let target = format!("origin/{}", origin.host_id);
            let peer = SocketAddr::new(origin.address, origin.port.unwrap_or(vetted.target.port));
            let url = site.url.clone();
            let (host, sni) = site.virtual_host(&vetted.target);
            async move {
                let at_ms = now_ms();
                let fetched = match self.guard.check(peer.ip()) {
                    Ok(()) => {
                        let mut request = self.request(&url, peer);
                        request.host_header = Some(host);
                        request.tls_name = Some(sni);
                        fetch(&request).await
                    }
                    Err(refusal) => refused(&refusal),
                };
                observation(self.labels(site, &target, at_ms), &fetched)
            }
        });
        futures::future::join_all(probes).await
    }
}

/// The public probe of a site, and whether its origins are to be probed.
pub struct PublicProbe {
    /// What the public URL answered.
    pub observation: EdgeObservation,
    /// The vetted public target, kept when the origins are due.
    vetted: Option<Vetted>,
}

/// The fetch result of a probe the guard stopped.
fn refused(refusal: &Refusal) -> Fetched {
    let outcome = match refusal {
        Refusal::Blocked(_) => Outcome::Blocked,
        Refusal::Dns(_) => Outcome::DnsError,
    };
    Fetched::failed(Failure::new(outcome, Phase::Connect, refusal.to_string()))
}
