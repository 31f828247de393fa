//! Reads Envoy's config into a [`Discovered`], from the bootstrap file
//! (`envoy.yaml`, YAML or JSON: `static_resources`) or from the admin
//! API's `/config_dump` (static and dynamic listeners, route configs and
//! clusters alike): listeners with HTTP connection managers, their virtual
//! hosts (domains, route prefixes) and the clusters the routes name, whose
//! endpoints are the upstream targets; file access logs are the logs read.

use gw502_proto::v1::{ProxyConfig, UpstreamTarget, VirtualServer};
use serde_json::Value;

use crate::target::target;
use crate::{Discovered, ProxyKind};

/// Where Envoy's stdout and stderr go under systemd (the agent's name for a
/// unit's journal).
pub const JOURNAL: &str = "journal:envoy.service";

/// The three lists the walker reads.
#[derive(Debug, Default)]
struct Resources<'a> {
    listeners: Vec<&'a Value>,
    routes: Vec<&'a Value>,
    clusters: Vec<&'a Value>,
}

/// Parses a bootstrap file's text (pure).
pub fn parse_bootstrap(text: &str) -> Discovered {
    let v = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).unwrap_or(Value::Null)
    } else {
        crate::yaml::parse(text)
    };
    let mut r = Resources::default();
    let list = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_array)
            .map(|a| a.iter().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    r.listeners = list("/static_resources/listeners");
    r.clusters = list("/static_resources/clusters");
    walk(&r)
}

/// Parses the admin API's `/config_dump` answer (pure); `None` when it is
/// not a config dump.
pub fn parse_config_dump(body: &[u8]) -> Option<Discovered> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let mut r = Resources::default();
    for config in v.get("configs")?.as_array()? {
        let kind = config.get("@type").and_then(Value::as_str).unwrap_or("");
        let each = |list: &str, inner: &str| -> Vec<&Value> {
            config
                .get(list)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.pointer(inner)).collect())
                .unwrap_or_default()
        };
        if kind.ends_with("ListenersConfigDump") {
            r.listeners.extend(each("static_listeners", "/listener"));
            r.listeners
                .extend(each("dynamic_listeners", "/active_state/listener"));
        } else if kind.ends_with(".RoutesConfigDump") {
            r.routes
                .extend(each("static_route_configs", "/route_config"));
            r.routes
                .extend(each("dynamic_route_configs", "/route_config"));
        } else if kind.ends_with("ClustersConfigDump") {
            r.clusters.extend(each("static_clusters", "/cluster"));
            r.clusters
                .extend(each("dynamic_active_clusters", "/cluster"));
        }
    }
    Some(walk(&r))
}

fn walk(r: &Resources<'_>) -> Discovered {
    let mut d = Discovered {
        config: ProxyConfig {
            kind: ProxyKind::Envoy.as_str().to_string(),
            ..ProxyConfig::default()
        },
        access_formats: Vec::new(),
    };
    let str_at = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
    let mut routed: Vec<String> = Vec::new();
    for listener in &r.listeners {
        let listen = socket(listener.pointer("/address")).unwrap_or_default();
        let chains = listener.get("filter_chains").and_then(Value::as_array);
        for filter in chains.into_iter().flatten().flat_map(|c| {
            c.get("filters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        }) {
            let Some(hcm) = filter.get("typed_config") else {
                continue;
            };
            for log in hcm
                .get("access_log")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                // stdout and stderr go to the unit's journal under systemd.
                let path = match str_at(log, "/typed_config/path").as_deref() {
                    Some("/dev/stdout" | "/dev/stderr") => Some(JOURNAL.to_string()),
                    Some(path) => Some(path.to_string()),
                    None if str_at(log, "/name")
                        .is_some_and(|n| n.contains("stdout") || n.contains("stderr")) =>
                    {
                        Some(JOURNAL.to_string())
                    }
                    None => None,
                };
                if let Some(path) = path
                    && !d.config.error_logs.contains(&path)
                {
                    d.config.error_logs.push(path);
                }
            }
            let route_config = hcm.get("route_config").or_else(|| {
                let name = str_at(hcm, "/rds/route_config_name")?;
                r.routes
                    .iter()
                    .find(|rc| rc.get("name").and_then(Value::as_str) == Some(name.as_str()))
                    .copied()
            });
            let Some(rc) = route_config else { continue };
            for vh in rc
                .get("virtual_hosts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let names: Vec<String> = vh
                    .get("domains")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect();
                d.config.servers.push(VirtualServer {
                    names: names.clone(),
                    listens: vec![listen.clone()],
                    ..VirtualServer::default()
                });
                for route in vh
                    .get("routes")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let location = ["/match/prefix", "/match/path", "/match/safe_regex/regex"]
                        .iter()
                        .find_map(|p| str_at(route, p))
                        .unwrap_or_default();
                    let mut clusters: Vec<String> =
                        str_at(route, "/route/cluster").into_iter().collect();
                    for w in route
                        .pointer("/route/weighted_clusters/clusters")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        clusters.extend(str_at(w, "/name"));
                    }
                    for name in clusters {
                        for mut t in endpoints(r, &name) {
                            t.server_names = names.clone();
                            t.location = location.clone();
                            d.config.targets.push(t);
                        }
                        routed.push(name);
                    }
                }
            }
        }
    }
    for cluster in &r.clusters {
        let name = str_at(cluster, "/name").unwrap_or_default();
        if !routed.contains(&name) {
            d.config.targets.extend(endpoints(r, &name));
        }
    }
    d
}

/// The endpoints of the named cluster, as targets.
fn endpoints(r: &Resources<'_>, name: &str) -> Vec<UpstreamTarget> {
    let Some(cluster) = r
        .clusters
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
    else {
        return Vec::new();
    };
    let tls = cluster
        .pointer("/transport_socket/name")
        .and_then(Value::as_str)
        .is_some_and(|n| n.contains("tls"));
    let protocol = if tls { "https" } else { "http" };
    let dns = matches!(
        cluster.get("type").and_then(Value::as_str),
        Some("STRICT_DNS" | "LOGICAL_DNS")
    );
    let mut out = Vec::new();
    let groups = cluster
        .pointer("/load_assignment/endpoints")
        .and_then(Value::as_array);
    for lb in groups.into_iter().flatten().flat_map(|g| {
        g.get("lb_endpoints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    }) {
        let Some(addr) = socket(lb.pointer("/endpoint/address")) else {
            continue;
        };
        let mut t = target(protocol, &addr, 0, "cluster");
        t.group = name.to_string();
        t.runtime_resolve = dns;
        out.push(t);
    }
    out
}

/// `address.socket_address` as `host:port` (IPv6 bracketed), or
/// `address.pipe.path` as `unix:path`.
pub fn socket(address: Option<&Value>) -> Option<String> {
    let a = address?;
    if let Some(path) = a.pointer("/pipe/path").and_then(Value::as_str) {
        return Some(format!("unix:{path}"));
    }
    let host = a.pointer("/socket_address/address")?.as_str()?;
    let port = match a.pointer("/socket_address/port_value") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => "0".to_string(),
    };
    Some(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOTSTRAP: &str = include_str!("../../fixtures/envoy/envoy.yaml");
    const DUMP: &str = include_str!("../../fixtures/envoy/config_dump.json");

    #[test]
    fn bootstrap_and_config_dump_agree() {
        let b = parse_bootstrap(BOOTSTRAP).config;
        let d = parse_config_dump(DUMP.as_bytes()).unwrap().config;
        assert_eq!(b.targets.len(), 15, "{:?}", b.targets);
        let key = |c: &ProxyConfig| {
            let mut v: Vec<_> = c
                .targets
                .iter()
                .map(|t| {
                    (
                        t.group.clone(),
                        t.host.clone(),
                        t.port,
                        t.server_names.clone(),
                        t.protocol.clone(),
                    )
                })
                .collect();
            v.sort();
            v
        };
        assert_eq!(key(&b), key(&d));
        assert_eq!(b.servers.len(), 15);
        assert_eq!(
            b.error_logs,
            [
                "/tmp/gw502-envoy/access.log",
                "/tmp/gw502-envoy/access.json.log"
            ]
        );
        assert_eq!(b.error_logs, d.error_logs);
        let tls = b.targets.iter().find(|t| t.group == "badcert").unwrap();
        assert_eq!(
            (tls.protocol.as_str(), tls.server_names.as_slice()),
            ("https", &["badcert.test".to_string()][..])
        );
        let dns = b.targets.iter().find(|t| t.group == "nxdomain").unwrap();
        assert!(dns.runtime_resolve);
        assert_eq!((dns.host.as_str(), dns.port), ("app.invalid", 80));
        assert!(parse_config_dump(b"[]").is_none());
        let stdout = BOOTSTRAP.replace("/tmp/gw502-envoy/access.log", "/dev/stdout");
        assert_eq!(parse_bootstrap(&stdout).config.error_logs[0], JOURNAL);
    }
}
