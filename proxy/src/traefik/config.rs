//! Reads Traefik's config files into a [`Discovered`]: the static config
//! (`traefik.yml`/`.toml`: entry points, `log.filePath`, `accessLog`, the
//! file provider's `filename`/`directory`) and the file provider's dynamic
//! files (`http.routers` and `http.services`, TOML or YAML), whose
//! `loadBalancer.servers[].url` are the upstream targets, named by the Host
//! rules of the routers that reach them (through weighted, mirroring and
//! failover services too). The API's answers go through the same walker
//! ([`super::api`]).

use std::collections::BTreeMap;

use gw502_proto::v1::{ProxyConfig, UpstreamTarget, VirtualServer};
use serde_json::Value;

use crate::access::AccessFormat;
use crate::target::{default_port, split_url, target};
use crate::{Discovered, ProxyKind};

/// The line that starts each file in the text [`join`] makes.
const MARK: &str = "# gw502: file ";
/// Where Traefik's stdout goes under systemd (the agent's name for a unit's
/// journal).
pub const JOURNAL: &str = "journal:traefik.service";
/// How deep service references are followed.
const MAX_HOPS: usize = 8;

/// Traefik's `common` (CLF) access-log format; the router, server URL and
/// duration that follow the agent are not counted.
pub fn clf() -> AccessFormat {
    AccessFormat::apache("%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\" %X")
}

/// Joins files read by the agent (path, text) into one text, each file
/// after a marker line naming it, so [`parse`] knows each file's syntax.
pub fn join(files: &[(String, String)]) -> String {
    let mut out = String::new();
    for (path, text) in files {
        out.push_str(MARK);
        out.push_str(path);
        out.push('\n');
        out.push_str(text);
        out.push('\n');
    }
    out
}

/// Parses one file by its name: TOML for `.toml`, else YAML (JSON is YAML).
pub fn parse_file(path: &str, text: &str) -> Value {
    if path.ends_with(".toml") {
        toml::from_str::<Value>(text).unwrap_or(Value::Null)
    } else {
        crate::yaml::parse(text)
    }
}

/// The file provider's files a static config names: `filename`, and every
/// file of `directory`; relative paths are read beside the config file.
pub fn includes(file: &str, text: &str) -> Vec<String> {
    let v = parse_file(file, text);
    let dir = file.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let abs = |p: &str| {
        if p.starts_with('/') {
            p.to_string()
        } else {
            format!("{dir}/{p}")
        }
    };
    let mut out = Vec::new();
    let provider = v.pointer("/providers/file");
    if let Some(f) = provider
        .and_then(|p| p.get("filename"))
        .and_then(Value::as_str)
    {
        out.push(abs(f));
    }
    if let Some(d) = provider
        .and_then(|p| p.get("directory"))
        .and_then(Value::as_str)
    {
        out.push(format!("{}/*", abs(d).trim_end_matches('/')));
    }
    out
}

/// Parses the text [`join`] made (or one unmarked file, read by `main`'s
/// syntax) (pure).
pub fn parse(text: &str, main: &str) -> Discovered {
    let mut files: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(path) = line.strip_prefix(MARK) {
            files.push((path.to_string(), String::new()));
        } else if let Some((_, body)) = files.last_mut() {
            body.push_str(line);
            body.push('\n');
        } else {
            files.push((main.to_string(), format!("{line}\n")));
        }
    }
    let mut d = Discovered {
        config: ProxyConfig {
            kind: ProxyKind::Traefik.as_str().to_string(),
            ..ProxyConfig::default()
        },
        access_formats: Vec::new(),
    };
    let mut entry_points = BTreeMap::new();
    let mut dynamic = Vec::new();
    for (path, body) in &files {
        let v = parse_file(path, body);
        if v.get("entryPoints").is_some() || v.get("providers").is_some() {
            read_static(&v, &mut d, &mut entry_points);
        }
        if v.get("http").is_some() {
            dynamic.push(v);
        }
    }
    for v in &dynamic {
        let (servers, targets) = walk(v, &entry_points);
        d.config.servers.extend(servers);
        d.config.targets.extend(targets);
    }
    d
}

fn read_static(v: &Value, d: &mut Discovered, entry_points: &mut BTreeMap<String, String>) {
    if let Some(eps) = v.get("entryPoints").and_then(Value::as_object) {
        for (name, ep) in eps {
            if let Some(addr) = ep.get("address").and_then(Value::as_str) {
                entry_points.insert(name.clone(), addr.to_string());
            }
        }
    }
    // Without `filePath` Traefik writes to stdout, which systemd sends to
    // the unit's journal: the agent reads `journal:<unit>` there.
    let mut push = |path: &str| {
        if !d.config.error_logs.iter().any(|p| p == path) {
            d.config.error_logs.push(path.to_string());
        }
    };
    match v.pointer("/log/filePath").and_then(Value::as_str) {
        Some(path) => push(path),
        None => push(JOURNAL),
    }
    if let Some(access) = v.get("accessLog") {
        let json = access.get("format").and_then(Value::as_str) == Some("json");
        match access.get("filePath").and_then(Value::as_str) {
            // JSON access lines carry the router and server: they are read
            // as log lines; CLF lines are counted.
            Some(path) if json => push(path),
            Some(path) => {
                d.config.access_logs.push(path.to_string());
                d.access_formats.push((path.to_string(), clf()));
            }
            None => push(JOURNAL),
        }
    }
}

/// Routers and services of one dynamic config (or the API's, shaped as
/// one): a virtual server per router with Host rules, and a target per
/// (router, server URL); servers no router reaches are listed unnamed.
pub fn walk(
    v: &Value,
    entry_points: &BTreeMap<String, String>,
) -> (Vec<VirtualServer>, Vec<UpstreamTarget>) {
    let empty = serde_json::Map::new();
    let routers = v
        .pointer("/http/routers")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let services = v
        .pointer("/http/services")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut servers = Vec::new();
    let mut targets: Vec<UpstreamTarget> = Vec::new();
    let mut reached = Vec::new();
    for (name, router) in routers {
        let rule = router.get("rule").and_then(Value::as_str).unwrap_or("");
        let names = rule_args(rule, &["Host"]);
        let location = rule_args(rule, &["PathPrefix", "Path"])
            .into_iter()
            .next()
            .unwrap_or_default();
        let listens: Vec<String> = router
            .get("entryPoints")
            .and_then(Value::as_array)
            .map(|eps| {
                eps.iter()
                    .filter_map(Value::as_str)
                    .map(|ep| {
                        entry_points
                            .get(ep)
                            .cloned()
                            .unwrap_or_else(|| ep.to_string())
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !names.is_empty() {
            servers.push(VirtualServer {
                names: names.clone(),
                listens,
                ..VirtualServer::default()
            });
        }
        let Some(service) = router.get("service").and_then(Value::as_str) else {
            continue;
        };
        for (group, url) in leaves(services, service, 0) {
            let mut t = server_target(&url, &group);
            t.server_names = names.clone();
            t.location = location.clone();
            t.directive = format!("router {name}");
            reached.push(group);
            if !targets.contains(&t) {
                targets.push(t);
            }
        }
    }
    for (name, _) in services {
        if reached.iter().any(|r| r == name) {
            continue;
        }
        for (group, url) in leaves(services, name, MAX_HOPS) {
            targets.push(server_target(&url, &group));
        }
    }
    (servers, targets)
}

/// The load balancers' (service name, server URL) a service reaches.
fn leaves(
    services: &serde_json::Map<String, Value>,
    name: &str,
    hops: usize,
) -> Vec<(String, String)> {
    let Some((key, service)) = lookup(services, name) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(servers) = service
        .pointer("/loadBalancer/servers")
        .and_then(Value::as_array)
    {
        for s in servers {
            if let Some(url) = s.get("url").and_then(Value::as_str) {
                out.push((key.clone(), url.to_string()));
            }
        }
    }
    if hops >= MAX_HOPS {
        return out;
    }
    let mut children: Vec<&str> = Vec::new();
    for list in ["/weighted/services", "/mirroring/mirrors"] {
        if let Some(items) = service.pointer(list).and_then(Value::as_array) {
            children.extend(
                items
                    .iter()
                    .filter_map(|i| i.get("name").and_then(Value::as_str)),
            );
        }
    }
    for one in [
        "/mirroring/service",
        "/failover/service",
        "/failover/fallback",
    ] {
        if let Some(n) = service.pointer(one).and_then(Value::as_str) {
            children.push(n);
        }
    }
    for child in children {
        out.extend(leaves(services, child, hops + 1));
    }
    out
}

/// A service by name as a router writes it (`shop`, `shop@file`).
fn lookup<'a>(
    services: &'a serde_json::Map<String, Value>,
    name: &str,
) -> Option<(&'a String, &'a Value)> {
    let bare = name.split('@').next().unwrap_or(name);
    services.iter().find(|(k, _)| *k == name).or_else(|| {
        services
            .iter()
            .find(|(k, _)| k.split('@').next() == Some(bare))
    })
}

fn server_target(url: &str, group: &str) -> UpstreamTarget {
    let (scheme, authority) = split_url(url);
    let protocol = match scheme {
        "https" => "https",
        "h2c" => "grpc",
        _ => "http",
    };
    let mut t = target(
        protocol,
        authority,
        default_port(protocol),
        "loadBalancer.servers",
    );
    t.address = url.to_string();
    t.group = group.to_string();
    t
}

/// The backquoted or quoted arguments of the named matchers in a rule:
/// `Host(`a`) || Host(`b`, `c`)` gives a, b, c.
fn rule_args(rule: &str, matchers: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for m in matchers {
        let open = format!("{m}(");
        let mut from = 0;
        while let Some(i) = rule[from..].find(&open) {
            let start = from + i + open.len();
            // `HostRegexp(` and `HostSNI(` are not `Host(`.
            let before = rule[..from + i].chars().next_back();
            let end = rule[start..]
                .find(')')
                .map(|e| start + e)
                .unwrap_or(rule.len());
            if !before.is_some_and(|c| c.is_ascii_alphanumeric()) {
                for arg in rule[start..end].split(',') {
                    let a = arg
                        .trim()
                        .trim_matches(|c| c == '`' || c == '"' || c == '\'');
                    if !a.is_empty() && !out.iter().any(|o| o == a) {
                        out.push(a.to_string());
                    }
                }
            }
            from = end.max(start);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_give_hosts_and_paths() {
        assert_eq!(
            rule_args(
                "Host(`a.test`) || Host(`b.test`, `c.test`) && PathPrefix(`/api`)",
                &["Host"]
            ),
            ["a.test", "b.test", "c.test"]
        );
        assert_eq!(
            rule_args("HostRegexp(`.+`)", &["Host"]),
            Vec::<String>::new()
        );
        assert_eq!(
            rule_args("Host(`a`) && PathPrefix(`/api`)", &["PathPrefix", "Path"]),
            ["/api"]
        );
    }

    #[test]
    fn static_config_names_provider_files_logs_and_entry_points() {
        let yml = "entryPoints:\n  web:\n    address: \":80\"\nproviders:\n  file:\n    directory: dynamic/\nlog:\n  filePath: /var/log/traefik/traefik.log\naccessLog:\n  filePath: /var/log/traefik/access.log\n  format: json\n";
        assert_eq!(
            includes("/etc/traefik/traefik.yml", yml),
            ["/etc/traefik/dynamic/*"]
        );
        let toml = "[entryPoints.web]\naddress = \":80\"\n[providers.file]\nfilename = \"/etc/traefik/dynamic.toml\"\n[accessLog]\nfilePath = \"/var/log/traefik/access.log\"\n";
        assert_eq!(
            includes("/etc/traefik/traefik.toml", toml),
            ["/etc/traefik/dynamic.toml"]
        );
        let d = parse(
            &join(&[("/etc/traefik/traefik.toml".into(), toml.into())]),
            "x",
        );
        assert_eq!(d.config.access_logs, ["/var/log/traefik/access.log"]);
        let d = parse(yml, "/etc/traefik/traefik.yml");
        assert_eq!(
            d.config.error_logs,
            [
                "/var/log/traefik/traefik.log",
                "/var/log/traefik/access.log"
            ]
        );
    }
}
