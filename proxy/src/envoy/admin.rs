//! Reads the answers of Envoy's admin API about its upstream hosts:
//! `GET /clusters` (text, `cluster::host:port::health_flags::/failed_active_hc`)
//! and `GET /clusters?format=json` (`cluster_statuses[].host_statuses[]`
//! with `failed_active_health_check`, `failed_outlier_check`, ...), and
//! marks the targets of [`super::config`] with the health they give. The
//! agent fetches them on loopback; this is the pure half, tested on the
//! captured answers (`proxy/fixtures/envoy/`).

use gw502_proto::v1::UpstreamTarget;
use serde_json::Value;

use crate::target::target;

/// The admin paths read.
pub const CONFIG_DUMP: &str = "/config_dump";
/// The hosts and their health, as JSON.
pub const CLUSTERS_JSON: &str = "/clusters?format=json";

/// One upstream host as the admin API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostHealth {
    /// The cluster's name.
    pub cluster: String,
    /// `host:port` (IPv6 bracketed) or `unix:path`.
    pub address: String,
    /// Envoy's health flags, `/`-joined as the text format writes them
    /// (`/failed_active_hc/failed_outlier_check`); empty when healthy.
    pub flags: String,
}

/// The JSON flags and the words the text format uses for them.
const JSON_FLAGS: [(&str, &str); 8] = [
    ("failed_active_health_check", "/failed_active_hc"),
    ("failed_outlier_check", "/failed_outlier_check"),
    ("failed_eds_health", "/failed_eds_health"),
    ("pending_dynamic_removal", "/pending_dynamic_removal"),
    ("pending_active_hc", "/pending_active_hc"),
    (
        "excluded_via_immediate_hc_fail",
        "/excluded_via_immediate_hc_fail",
    ),
    ("active_hc_timeout", "/active_hc_timeout"),
    ("failed_active_degraded_check", "/degraded_active_hc"),
];

/// Reads `/clusters?format=json`; `None` when it is not that answer.
pub fn parse_clusters_json(body: &[u8]) -> Option<Vec<HostHealth>> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let mut out = Vec::new();
    for c in v.get("cluster_statuses")?.as_array()? {
        let cluster = c
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        for h in c
            .get("host_statuses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(address) = super::config::socket(h.get("address")) else {
                continue;
            };
            let status = h.get("health_status");
            let mut flags = String::new();
            for (key, word) in JSON_FLAGS {
                if status.and_then(|s| s.get(key)).and_then(Value::as_bool) == Some(true) {
                    flags.push_str(word);
                }
            }
            if let Some(eds) = status
                .and_then(|s| s.get("eds_health_status"))
                .and_then(Value::as_str)
                && eds != "HEALTHY"
                && eds != "UNKNOWN"
            {
                flags.push_str("/failed_eds_health");
            }
            out.push(HostHealth {
                cluster: cluster.clone(),
                address,
                flags,
            });
        }
    }
    Some(out)
}

/// Reads the text `/clusters` answer: its `health_flags` lines.
pub fn parse_clusters_text(body: &str) -> Vec<HostHealth> {
    body.lines()
        .filter_map(|line| {
            let (cluster, rest) = line.split_once("::")?;
            let (address, rest) = rest.split_once("::")?;
            let flags = rest.strip_prefix("health_flags::")?;
            Some(HostHealth {
                cluster: cluster.to_string(),
                address: address.to_string(),
                flags: if flags == "healthy" {
                    String::new()
                } else {
                    flags.to_string()
                },
            })
        })
        .collect()
}

/// Sets `health` on the targets the hosts match (same cluster and address);
/// hosts no target names (endpoints from EDS or DNS) are added as targets.
pub fn apply(targets: &mut Vec<UpstreamTarget>, hosts: &[HostHealth]) {
    for h in hosts {
        let health = if h.flags.is_empty() { "up" } else { "down" };
        let mut matched = false;
        for t in targets.iter_mut() {
            let address = if t.unix_path.is_empty() {
                if t.host.contains(':') {
                    format!("[{}]:{}", t.host, t.port)
                } else {
                    format!("{}:{}", t.host, t.port)
                }
            } else {
                format!("unix:{}", t.unix_path)
            };
            if t.group == h.cluster && address == h.address {
                t.health = health.to_string();
                t.health_detail = h.flags.clone();
                matched = true;
            }
        }
        if !matched {
            let like = targets.iter().find(|t| t.group == h.cluster).cloned();
            let protocol = like
                .as_ref()
                .map_or("http", |t| t.protocol.as_str())
                .to_string();
            let mut t = target(&protocol, &h.address, 0, "cluster");
            t.group = h.cluster.clone();
            if let Some(like) = like {
                t.server_names = like.server_names;
                t.location = like.location;
            }
            t.health = health.to_string();
            t.health_detail = h.flags.clone();
            targets.push(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = include_str!("../../fixtures/envoy/clusters.txt");
    const JSON: &str = include_str!("../../fixtures/envoy/clusters.json");
    const DUMP: &str = include_str!("../../fixtures/envoy/config_dump.json");

    #[test]
    fn text_and_json_answers_agree_on_health() {
        let mut text = parse_clusters_text(TEXT);
        let mut json = parse_clusters_json(JSON.as_bytes()).unwrap();
        text.sort_by(|a, b| a.cluster.cmp(&b.cluster));
        json.sort_by(|a, b| a.cluster.cmp(&b.cluster));
        assert_eq!(text, json);
        let flags = |c: &str| {
            text.iter()
                .find(|h| h.cluster == c)
                .map(|h| h.flags.as_str())
        };
        assert_eq!(flags("down"), Some("/failed_active_hc"));
        assert_eq!(flags("ejected"), Some("/failed_outlier_check"));
        assert_eq!(flags("shop"), Some(""));
        // The NXDOMAIN cluster resolved to no host.
        assert_eq!(flags("nxdomain"), None);
        assert!(parse_clusters_json(b"{}").is_none());
    }

    #[test]
    fn health_lands_on_the_dumped_targets() {
        let mut targets = super::super::config::parse_config_dump(DUMP.as_bytes())
            .unwrap()
            .config
            .targets;
        let before = targets.len();
        apply(&mut targets, &parse_clusters_json(JSON.as_bytes()).unwrap());
        assert_eq!(targets.len(), before);
        let down = targets.iter().find(|t| t.group == "down").unwrap();
        assert_eq!(
            (down.health.as_str(), down.health_detail.as_str()),
            ("down", "/failed_active_hc")
        );
        assert_eq!(down.server_names, ["down.test"]);
        let unasked = targets.iter().find(|t| t.group == "nxdomain").unwrap();
        assert_eq!(unasked.health, "");
        assert_eq!(targets.iter().filter(|t| t.health == "up").count(), 12);
    }
}
