//! [`observation`]: the one conversion of a [`Fetched`] into an
//! `EdgeObservation`, shared by the agent's cross-probes and the collector's
//! edge prober, so both vantages describe a response in the same words.

use gw502_proto::v1::{EdgeObservation, Header, Timing as WireTiming};

use crate::fetch::Fetched;
use crate::fingerprint::fingerprint;

/// Headers kept per observation at most.
pub const MAX_HEADERS: usize = 64;
/// Bytes kept per header value at most.
pub const MAX_HEADER_VALUE: usize = 512;

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
