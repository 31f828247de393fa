//! Reads the answers of Traefik's API, `GET /api/http/routers` and
//! `GET /api/http/services` (JSON arrays), into upstream targets with the
//! health Traefik's own checks give each server (`serverStatus`: `UP` or
//! `DOWN`). The agent fetches them on loopback; this is the pure half,
//! tested on the captured answers (`proxy/fixtures/traefik/api-*.json`).

use std::collections::BTreeMap;

use gw502_proto::v1::{UpstreamTarget, VirtualServer};
use serde_json::{Map, Value};

/// The API paths read, in order.
pub const PATHS: [&str; 2] = ["/api/http/routers", "/api/http/services"];

/// Routers and services from the two API answers: virtual servers per
/// router with Host rules, and targets with `health` set from
/// `serverStatus`. `None` when either body is not a JSON array.
pub fn parse(routers: &[u8], services: &[u8]) -> Option<(Vec<VirtualServer>, Vec<UpstreamTarget>)> {
    let routers: Vec<Value> = serde_json::from_slice(routers).ok()?;
    let services: Vec<Value> = serde_json::from_slice(services).ok()?;
    let by_name = |items: &[Value]| -> Map<String, Value> {
        items
            .iter()
            .filter(|i| i.get("provider").and_then(Value::as_str) != Some("internal"))
            .filter_map(|i| Some((i.get("name")?.as_str()?.to_string(), i.clone())))
            .collect()
    };
    // (service, server URL) to its state: two services may share a URL.
    let mut status: BTreeMap<(String, String), String> = BTreeMap::new();
    for s in &services {
        let name = s.get("name").and_then(Value::as_str).unwrap_or("");
        if let Some(map) = s.get("serverStatus").and_then(Value::as_object) {
            for (url, state) in map {
                if let Some(state) = state.as_str() {
                    status.insert((name.to_string(), url.clone()), state.to_string());
                }
            }
        }
    }
    let shaped =
        serde_json::json!({"http": {"routers": by_name(&routers), "services": by_name(&services)}});
    let (servers, mut targets) = super::config::walk(&shaped, &BTreeMap::new());
    for t in &mut targets {
        if let Some(state) = status.get(&(t.group.clone(), t.address.clone())) {
            t.health = if state == "UP" { "up" } else { "down" }.to_string();
            t.health_detail = state.clone();
        }
    }
    Some((servers, targets))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTERS: &str = include_str!("../../fixtures/traefik/api-routers.json");
    const SERVICES: &str = include_str!("../../fixtures/traefik/api-services.json");

    #[test]
    fn captured_answers_give_targets_with_server_status() {
        let (servers, targets) = parse(ROUTERS.as_bytes(), SERVICES.as_bytes()).unwrap();
        assert_eq!(servers.len(), 10, "{servers:?}");
        assert_eq!(targets.len(), 10, "{targets:?}");
        let down = targets.iter().find(|t| t.group == "down@file").unwrap();
        assert_eq!(
            (down.health.as_str(), down.health_detail.as_str()),
            ("down", "DOWN")
        );
        assert_eq!(down.server_names, ["down.test"]);
        assert_eq!(down.host, "127.0.0.1");
        let up = targets.iter().filter(|t| t.health == "up").count();
        assert_eq!(up, 9);
        let tls = targets.iter().find(|t| t.group == "badcert@file").unwrap();
        assert_eq!(tls.protocol, "https");
        assert!(parse(b"{}", SERVICES.as_bytes()).is_none());
    }
}
