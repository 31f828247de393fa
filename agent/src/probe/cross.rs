//! [`CrossProbeSource`]: the agent fetches configured public site URLs as an
//! extra vantage point, so the collector can tell "only one place sees
//! errors" (`client_path`) from an outage seen everywhere.
//!
//! Also holds [`observation`], the one conversion of a [`Fetched`] into an
//! `EdgeObservation`, shared with the collector's edge prober.

use futures::StreamExt;
use gw502_proto::v1::{CrossProbeSection, EdgeObservation, Header, Timing as WireTiming};
use gw502_vocab::clock::now_ms;
use serde::Deserialize;

use super::fetch::{FetchRequest, Fetched, fetch};
use super::fingerprint::fingerprint;
use crate::source::{Scope, Source, Unavailable};

/// Headers kept per observation at most.
pub const MAX_HEADERS: usize = 64;
/// Bytes kept per header value at most.
pub const MAX_HEADER_VALUE: usize = 512;

/// One public site the agent probes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossProbeSite {
    /// The site name the collector knows it by.
    pub site: String,
    /// Its public URL.
    pub url: String,
}

impl From<&(String, String)> for CrossProbeSite {
    /// From a `(site, url)` pair.
    fn from((site, url): &(String, String)) -> Self {
        Self {
            site: site.clone(),
            url: url.clone(),
        }
    }
}

impl From<&CrossProbeSite> for CrossProbeSite {
    fn from(site: &CrossProbeSite) -> Self {
        site.clone()
    }
}

/// Where an observation was made from and of what.
#[derive(Debug, Clone, Copy)]
pub struct ObservationLabels<'a> {
    /// Site name.
    pub site: &'a str,
    /// URL fetched.
    pub url: &'a str,
    /// `collector/<id>` or `agent/<host>`.
    pub vantage: &'a str,
    /// `public` or `origin/<host>`.
    pub target: &'a str,
    /// When the fetch started.
    pub at_ms: i64,
}

/// Converts a fetch into an `EdgeObservation`, capping headers and
/// fingerprinting the body.
pub fn observation(labels: ObservationLabels<'_>, fetched: &Fetched) -> EdgeObservation {
    let fp = if fetched.status > 0 {
        fingerprint(fetched.status, &fetched.headers, &fetched.body)
    } else {
        Default::default()
    };
    EdgeObservation {
        site: labels.site.to_string(),
        url: labels.url.to_string(),
        vantage: labels.vantage.to_string(),
        target: labels.target.to_string(),
        at_ms: labels.at_ms,
        outcome: fetched.outcome.as_str().to_string(),
        status: u32::from(fetched.status),
        headers: fetched
            .headers
            .iter()
            .take(MAX_HEADERS)
            .map(|(name, value)| Header {
                name: name.to_ascii_lowercase(),
                value: value.chars().take(MAX_HEADER_VALUE).collect(),
            })
            .collect(),
        fingerprint: fp.maker.to_string(),
        edge: fp.edge.to_string(),
        timing: Some(WireTiming {
            dns_ms: fetched.timing.dns_ms,
            connect_ms: fetched.timing.connect_ms,
            tls_ms: fetched.timing.tls_ms,
            ttfb_ms: fetched.timing.ttfb_ms,
            total_ms: fetched.timing.total_ms,
        }),
        detail: fetched.detail.clone(),
        peer: fetched.peer.clone(),
        edge_error: fp.edge_error,
    }
}

/// The cross-probe evidence source.
#[derive(Debug, Clone)]
pub struct CrossProbeSource {
    host_id: String,
    sites: Vec<CrossProbeSite>,
    template: FetchRequest,
    concurrency: usize,
}

impl CrossProbeSource {
    /// Probes `sites` (`CrossProbeSite`s or `(site, url)` pairs) as
    /// `agent/<host_id>` with the default fetch bounds.
    pub fn new<S: Into<CrossProbeSite>>(
        host_id: impl Into<String>,
        sites: impl IntoIterator<Item = S>,
    ) -> Self {
        Self {
            host_id: host_id.into(),
            sites: sites.into_iter().map(Into::into).collect(),
            template: FetchRequest::new(""),
            concurrency: 4,
        }
    }

    /// The sites this source probes.
    pub fn sites(&self) -> &[CrossProbeSite] {
        &self.sites
    }

    /// Uses `template` for bounds and TLS policy (its URL is replaced per site).
    pub fn with_template(mut self, template: FetchRequest) -> Self {
        self.template = template;
        self
    }
}

impl Source for CrossProbeSource {
    type Section = CrossProbeSection;

    fn name(&self) -> &'static str {
        "cross_probes"
    }

    async fn collect(&mut self, _scope: &Scope) -> Result<CrossProbeSection, Unavailable> {
        let vantage = format!("agent/{}", self.host_id);
        let template = self.template.clone();
        let probes = self.sites.clone().into_iter().map(move |site| {
            let request = FetchRequest {
                url: site.url.clone(),
                ..template.clone()
            };
            let vantage = vantage.clone();
            async move {
                let at_ms = now_ms();
                let fetched = fetch(&request).await;
                let labels = ObservationLabels {
                    site: &site.site,
                    url: &site.url,
                    vantage: &vantage,
                    target: "public",
                    at_ms,
                };
                observation(labels, &fetched)
            }
        });
        let mut observations: Vec<EdgeObservation> = futures::stream::iter(probes)
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;
        observations.sort_by(|a, b| a.site.cmp(&b.site));
        Ok(CrossProbeSection {
            unavailable: String::new(),
            observations,
        })
    }
}
