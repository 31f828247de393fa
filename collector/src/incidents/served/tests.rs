//! `learn` and `apply` on report sections shaped like the lab's: a proxy host probing
//! an app on a second host, next to an unrelated exporter.

use gw502_proto::v1::{
    DirectProbe, HostReport, Listener, ProbesSection, SocketsSection, SystemdSection, UnitState,
    UpstreamTarget,
};

use super::*;
use crate::attribution::SiteRef;

fn unit(name: &str, roles: &[&str]) -> UnitState {
    UnitState {
        name: name.into(),
        active_state: "active".into(),
        sub_state: "running".into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        ..Default::default()
    }
}

fn listener(address: &str, port: u32, unit: &str) -> Listener {
    Listener {
        family: "tcp4".into(),
        address: address.into(),
        port,
        unit: unit.into(),
        ..Default::default()
    }
}

fn probe(host: &str, port: u32, outcome: &str) -> DirectProbe {
    DirectProbe {
        target: Some(UpstreamTarget {
            protocol: "http".into(),
            address: format!("{host}:{port}"),
            host: host.into(),
            port,
            ..Default::default()
        }),
        at_ms: 1_000,
        outcome: outcome.into(),
        ..Default::default()
    }
}

fn host(id: &str, address: &str, units: Vec<UnitState>, listeners: Vec<Listener>) -> HostEvidence {
    HostEvidence {
        host_id: id.into(),
        last_seen_ms: 1_000,
        interval_ms: 2_000,
        state: HostReport {
            addresses: vec![format!("{address}/24")],
            systemd: Some(SystemdSection {
                units,
                ..Default::default()
            }),
            sockets: Some(SocketsSection {
                listeners,
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}

/// The origin `web1` (nginx) probing `10.0.0.13:<port>`, and `app1` running the app
/// on 8080 beside an exporter on 9100.
fn site(port: u32, outcome: &str) -> SiteEvidence {
    let mut web = host(
        "web1",
        "10.0.0.12",
        vec![unit("nginx.service", &["proxy", "listener"])],
        vec![listener("0.0.0.0", 80, "nginx.service")],
    );
    web.state.probes = Some(ProbesSection {
        probes: vec![probe("10.0.0.13", port, outcome)],
        ..Default::default()
    });
    let app = host(
        "app1",
        "10.0.0.13",
        vec![
            unit("app.service", &["listener"]),
            unit("node-exporter.service", &["listener"]),
        ],
        vec![
            listener("0.0.0.0", 8080, "app.service"),
            listener("0.0.0.0", 9100, "node-exporter.service"),
        ],
    );
    SiteEvidence {
        site: SiteRef {
            name: "shop.example".into(),
            url: "http://10.0.0.12/".into(),
            origin_hosts: vec!["web1".into()],
        },
        now_ms: 1_000,
        edge: Vec::new(),
        hosts: vec![web, app],
    }
}

fn roles(ev: &SiteEvidence, host: &str, unit: &str) -> Vec<String> {
    ev.hosts
        .iter()
        .filter(|h| h.host_id == host)
        .flat_map(|h| h.state.systemd.iter().flat_map(|s| &s.units))
        .filter(|u| u.name == unit)
        .flat_map(|u| u.roles.clone())
        .collect()
}

#[test]
fn an_answered_probe_ties_the_unit_behind_the_address_and_nothing_else() {
    let learned = learn(&site(8080, "ok"));
    assert_eq!(
        learned,
        [ServedRow {
            host_id: "app1".into(),
            unit: "app.service".into(),
            target: "10.0.0.13:8080".into(),
            proxy_host: "web1".into(),
            seen_ms: 1_000,
        }]
    );
    assert!(learn(&site(8080, "refused")).is_empty());
    assert!(learn(&site(9101, "ok")).is_empty(), "nothing listens there");
}

#[test]
fn a_proxy_answering_an_edge_is_not_an_upstream() {
    let mut ev = site(8080, "refused");
    let mut edge = host(
        "edge1",
        "10.0.0.11",
        vec![unit("haproxy.service", &["proxy", "listener"])],
        vec![listener("0.0.0.0", 80, "haproxy.service")],
    );
    edge.state.probes = Some(ProbesSection {
        probes: vec![probe("10.0.0.12", 80, "ok")],
        ..Default::default()
    });
    ev.hosts.push(edge);
    assert!(learn(&ev).is_empty(), "{:?}", learn(&ev));
}

#[test]
fn the_memory_marks_the_unit_only_while_its_proxy_host_is_in_the_chain() {
    let memory = learn(&site(8080, "ok"));
    // After the fault the proxy targets 8081; the memory still ties app.service.
    let mut after = site(8081, "refused");
    apply(&mut after.hosts, &memory);
    assert_eq!(
        roles(&after, "app1", "app.service"),
        ["listener", "upstream"]
    );
    assert_eq!(roles(&after, "app1", "node-exporter.service"), ["listener"]);
    // Applying twice adds nothing.
    apply(&mut after.hosts, &memory);
    assert_eq!(
        roles(&after, "app1", "app.service"),
        ["listener", "upstream"]
    );
    // Another site whose chain does not hold web1 gets nothing from it.
    let mut other = site(8081, "refused");
    other.hosts.retain(|h| h.host_id == "app1");
    apply(&mut other.hosts, &memory);
    assert_eq!(roles(&other, "app1", "app.service"), ["listener"]);
}
