//! The collector's cross-host memory of which unit served a proxy's upstream target.
//!
//! An agent remembers the units it saw serve a target of its own host's proxy (role
//! `upstream`). An app on a second host is out of its sight: that host's agent sees no
//! proxy targeting it, and the proxy host's agent sees no unit behind the address. The
//! collector sees both. [`learn`] reads a site's evidence for facts of the form "the
//! proxy on host P probed target `address:port` and got an answer while host H had
//! unit U listening on that port"; the evaluator stores them (`served_units`).
//! [`apply`] gives U the role `upstream` in H's state whenever P is among the site's
//! hosts again, so that after the target changes (a wrong port) or the unit stops, the
//! attribution engine's chain rule (`attribution::chain`, tie `served`) still knows
//! that U is the site's app, and an unrelated listener on H still is not.
//!
//! Only services count, never a proxy unit (an origin proxy behind an edge is the
//! proxy layer, not an upstream) nor pid 1.

use std::net::IpAddr;

use gw502_proto::v1::{HostReport, Listener};

use crate::attribution::{HostEvidence, SiteEvidence};
use crate::store::ServedRow;

/// The role the agent gives a unit it saw serve a proxy target.
const UPSTREAM: &str = "upstream";

/// Facts in `evidence`: units that answered a serving proxy's probe of its target.
pub fn learn(evidence: &SiteEvidence) -> Vec<ServedRow> {
    let mut out = Vec::new();
    for proxy_host in &evidence.hosts {
        let probes = proxy_host.state.probes.iter().flat_map(|p| &p.probes);
        for probe in probes.filter(|p| p.outcome == "ok") {
            let Some(target) = &probe.target else {
                continue;
            };
            let host = target.host.trim_start_matches('[').trim_end_matches(']');
            if target.port == 0 || host.is_empty() || !target.unix_path.is_empty() {
                continue;
            }
            let behind = if is_loopback(host) {
                Some(proxy_host)
            } else {
                evidence.hosts.iter().find(|h| owns(&h.state, host))
            };
            let Some(behind) = behind else {
                continue;
            };
            let listeners = behind.state.sockets.iter().flat_map(|s| &s.listeners);
            for l in listeners.filter(|l| answers(l, host, target.port)) {
                if !is_service(&behind.state, &l.unit) {
                    continue;
                }
                out.push(ServedRow {
                    host_id: behind.host_id.clone(),
                    unit: l.unit.clone(),
                    target: format!("{host}:{}", target.port),
                    proxy_host: proxy_host.host_id.clone(),
                    seen_ms: probe.at_ms,
                });
            }
        }
    }
    out.sort();
    out.dedup_by(|a, b| {
        (&a.host_id, &a.unit, &a.target, &a.proxy_host)
            == (&b.host_id, &b.unit, &b.target, &b.proxy_host)
    });
    out
}

/// Gives the remembered units the role `upstream` in their host's state, where the
/// proxy host that saw them serve is among `hosts` (the site's chain).
pub fn apply(hosts: &mut [HostEvidence], remembered: &[ServedRow]) {
    let present: Vec<String> = hosts.iter().map(|h| h.host_id.clone()).collect();
    for h in hosts.iter_mut() {
        let Some(systemd) = h.state.systemd.as_mut() else {
            continue;
        };
        for row in remembered
            .iter()
            .filter(|r| r.host_id == h.host_id && present.contains(&r.proxy_host))
        {
            for unit in systemd.units.iter_mut().filter(|u| u.name == row.unit) {
                let proxy = unit.roles.iter().any(|r| r == "proxy");
                if !proxy && !unit.roles.iter().any(|r| r == UPSTREAM) {
                    unit.roles.push(UPSTREAM.to_owned());
                }
            }
        }
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|a| a.is_loopback())
}

/// Whether the host's interfaces carry `address` (reported as `10.0.0.5` or `10.0.0.5/24`).
fn owns(state: &HostReport, address: &str) -> bool {
    state
        .addresses
        .iter()
        .any(|a| a.split('/').next() == Some(address))
}

/// Whether TCP listener `l` answers `host:port`.
fn answers(l: &Listener, host: &str, port: u32) -> bool {
    let wildcard = matches!(l.address.as_str(), "0.0.0.0" | "::" | "*" | "");
    l.family.starts_with("tcp")
        && l.port == port
        && !l.unit.is_empty()
        && (wildcard || l.address == host || is_loopback(host) && is_loopback(&l.address))
}

/// Whether `unit` is a service of the host that is not one of its proxies.
fn is_service(state: &HostReport, unit: &str) -> bool {
    let proxy = state
        .systemd
        .iter()
        .flat_map(|s| &s.units)
        .any(|u| u.name == unit && u.roles.iter().any(|r| r == "proxy"));
    unit.ends_with(".service") && !proxy
}

#[cfg(test)]
mod tests;
