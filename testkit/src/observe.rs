//! Probe observations of a site (public, through an edge, or of one origin)
//! and the nginx error-log line shape the agent samples.

use gw502_proto::v1::EdgeObservation;

/// An nginx error.log line as the agent samples it.
pub fn ngx_line(site: &str, level: &str, msg: &str, upstream: &str) -> String {
    format!(
        "2024/05/01 10:00:00 [{level}] 811#811: *7 {msg}, client: 10.77.0.1, server: {site}, request: \"GET / HTTP/1.1\", upstream: \"{upstream}\", host: \"{site}\""
    )
}

/// One probe observation of `site` at `url` from `vantage` (`collector/c1`,
/// `agent/web2`) of `target` (`public` or `origin/<host>`).
#[allow(clippy::too_many_arguments)]
pub fn observation(
    site: &str,
    url: &str,
    vantage: &str,
    target: &str,
    at_ms: i64,
    outcome: &str,
    status: u32,
    fingerprint: &str,
) -> EdgeObservation {
    EdgeObservation {
        site: site.into(),
        url: url.into(),
        vantage: vantage.into(),
        target: target.into(),
        at_ms,
        outcome: outcome.into(),
        status,
        fingerprint: fingerprint.into(),
        ..EdgeObservation::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ngx_line_names_site_and_upstream() {
        let l = ngx_line("shop.example", "error", "boom", "http://127.0.0.1:3000/");
        assert!(l.contains("[error]") && l.contains("server: shop.example"));
        assert!(l.ends_with("upstream: \"http://127.0.0.1:3000/\", host: \"shop.example\""));
    }
}
