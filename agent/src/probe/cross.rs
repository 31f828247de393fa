//! [`CrossProbeSource`]: the agent fetches configured public site URLs as an
//! extra vantage point, so the collector can tell "only one place sees
//! errors" (`client_path`) from an outage seen everywhere.

use futures::StreamExt;
use gw502_proto::v1::{CrossProbeSection, EdgeObservation};
use serde::Deserialize;

use crate::source::{Scope, Source, Unavailable};
use gw502_probe::observation::{ObservationLabels, observation};
use gw502_probe::{FetchRequest, fetch};
use gw502_vocab::clock::now_ms;

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
