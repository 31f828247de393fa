//! The engine's input (the evidence of one site, built by the caller from
//! stored reports and edge probes) and the evidence items a verdict cites.
//!
//! Evidence details come from hosts and the outside world, so they are
//! sanitised here once: control characters are escaped and lines capped, so a
//! hostile log line can neither forge extra lines in a terminal nor bloat an
//! incident.

use gw502_proto::v1::{EdgeObservation, HostReport};
pub use gw502_vocab::Source;

/// Everything known about one site, as one value: the engine's only input.
#[derive(Debug, Clone, Default)]
pub struct SiteEvidence {
    /// The site being judged.
    pub site: SiteRef,
    /// "Now" for staleness and windows (epoch ms).
    pub now_ms: i64,
    /// Recent HTTP probe observations of the site and its origins, oldest first.
    pub edge: Vec<EdgeObservation>,
    /// Merged current state of the hosts that may serve the site.
    pub hosts: Vec<HostEvidence>,
}

/// The site's identity as configured or discovered.
#[derive(Debug, Clone, Default)]
pub struct SiteRef {
    /// Site name (usually its host name).
    pub name: String,
    /// Public URL probed from the outside.
    pub url: String,
    /// Host ids expected to serve it (config); may be empty.
    pub origin_hosts: Vec<String>,
}

/// One agent's merged picture of its host.
#[derive(Debug, Clone, Default)]
pub struct HostEvidence {
    /// The agent's host id.
    pub host_id: String,
    /// When its last report arrived (epoch ms).
    pub last_seen_ms: i64,
    /// Its reporting interval.
    pub interval_ms: u32,
    /// Latest sections, with journal/log sections concatenated over the window.
    pub state: HostReport,
}

impl HostEvidence {
    /// No report for three intervals.
    pub fn is_stale(&self, now_ms: i64) -> bool {
        let interval = i64::from(self.interval_ms.max(1000));
        now_ms.saturating_sub(self.last_seen_ms) > 3 * interval
    }
}

/// One fact a rule used, in a form people can check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// Which source it came from.
    pub source: Source,
    /// The host it was observed on or from ("" for collector probes).
    pub host: String,
    /// When it was observed (epoch ms).
    pub observed_at_ms: i64,
    /// One sanitised line.
    pub detail: String,
}

/// Longest evidence detail kept, in characters.
pub const MAX_DETAIL_CHARS: usize = 240;

impl Evidence {
    /// Builds an item, escaping control characters and capping the detail.
    pub fn new(source: Source, host: &str, observed_at_ms: i64, detail: impl AsRef<str>) -> Self {
        Self {
            source,
            host: clean(host, 64),
            observed_at_ms,
            detail: clean(detail.as_ref(), MAX_DETAIL_CHARS),
        }
    }
}

impl From<&Evidence> for gw502_proto::v1::Evidence {
    fn from(e: &Evidence) -> Self {
        Self {
            source: e.source.as_str().to_string(),
            host: e.host.clone(),
            observed_at_ms: e.observed_at_ms,
            detail: e.detail.clone(),
        }
    }
}

/// Escapes control characters (`\n`, `\x00`, ESC ...) and caps at `max` characters.
pub fn clean(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 8));
    for (count, c) in text.chars().enumerate() {
        if count >= max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_escape_control_characters_and_are_capped() {
        let e = Evidence::new(Source::ProxyLog, "web1", 1, "X-Name: ab\u{0}\n\u{1b}[31m");
        assert_eq!(e.detail, "X-Name: ab\\u{0}\\n\\u{1b}[31m");
        let long = "a".repeat(1000);
        let e = Evidence::new(Source::Journal, "web1", 1, &long);
        assert_eq!(e.detail.chars().count(), MAX_DETAIL_CHARS + 1);
        assert!(e.detail.ends_with('…'));
    }

    #[test]
    fn staleness_is_three_intervals() {
        let h = HostEvidence {
            last_seen_ms: 0,
            interval_ms: 10_000,
            ..Default::default()
        };
        assert!(!h.is_stale(30_000));
        assert!(h.is_stale(30_001));
    }
}
