//! Builders for the table's rows: the row itself, expectations, nginx log
//! lines, and a site with public, edge and origin probe observations.

use gw502_proto::v1::*;

use super::super::{Cause, Hop, Layer, SiteEvidence, SiteRef};
use super::host_builder::Host;

/// "Now" for every row.
pub(super) const NOW: i64 = 1_714_557_600_000;
/// When failures started in failing rows.
pub(super) const T0: i64 = NOW - 120_000;

/// One scenario.
pub(super) struct Row {
    pub name: &'static str,
    pub ev: SiteEvidence,
    pub expect: Option<(Layer, Cause, u16, Hop)>,
    /// The cause this row must NOT be mistaken for (near-miss rows).
    pub near: Option<Cause>,
}

pub(super) fn row(name: &'static str, ev: Case, expect: Option<(Layer, Cause, u16, Hop)>) -> Row {
    Row {
        name,
        ev: ev.0,
        expect,
        near: None,
    }
}

pub(super) fn near(
    name: &'static str,
    of: Cause,
    ev: Case,
    expect: Option<(Layer, Cause, u16, Hop)>,
) -> Row {
    Row {
        name,
        ev: ev.0,
        expect,
        near: Some(of),
    }
}

/// Shorthand for an expectation.
pub(super) fn is(cause: Cause, status: u16, by: Hop) -> Option<(Layer, Cause, u16, Hop)> {
    Some((cause.layer(), cause, status, by))
}

/// An nginx error.log line as the agent samples it.
pub(super) fn ngx(level: &str, msg: &str, upstream: &str) -> String {
    format!(
        "2024/05/01 10:00:00 [{level}] 811#811: *7 {msg}, client: 10.77.0.1, server: shop.example, request: \"GET / HTTP/1.1\", upstream: \"{upstream}\", host: \"shop.example\""
    )
}

pub(super) struct Case(pub SiteEvidence);

pub(super) fn site(name: &str) -> Case {
    Case(SiteEvidence {
        site: SiteRef {
            name: name.into(),
            url: format!("https://{name}/"),
            origin_hosts: Vec::new(),
        },
        now_ms: NOW,
        ..SiteEvidence::default()
    })
}

impl Case {
    pub fn host(mut self, h: Host) -> Self {
        self.0.hosts.push(h.0);
        self
    }
    pub fn origins(mut self, ids: &[&str]) -> Self {
        self.0.site.origin_hosts = ids.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn obs(mut self, o: EdgeObservation) -> Self {
        self.0.edge.push(o);
        self.0.edge.sort_by_key(|o| o.at_ms);
        self
    }
    /// A public probe from the collector.
    pub fn public(self, outcome: &str, status: u32, fingerprint: &str) -> Self {
        self.public_from("collector/c1", NOW - 10_000, outcome, status, fingerprint)
    }
    pub fn public_from(
        self,
        vantage: &str,
        at: i64,
        outcome: &str,
        status: u32,
        fingerprint: &str,
    ) -> Self {
        let url = self.0.site.url.clone();
        self.obs(obs(
            &url,
            vantage,
            "public",
            at,
            outcome,
            status,
            fingerprint,
        ))
    }
    /// A public probe through an edge vendor.
    pub fn edge(
        self,
        edge: &str,
        status: u32,
        fingerprint: &str,
        edge_error: &str,
        headers: &[(&str, &str)],
    ) -> Self {
        let url = self.0.site.url.clone();
        let mut o = obs(
            &url,
            "collector/c1",
            "public",
            NOW - 10_000,
            "ok",
            status,
            fingerprint,
        );
        o.edge = edge.into();
        o.edge_error = edge_error.into();
        o.headers = headers
            .iter()
            .map(|(n, v)| Header {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect();
        self.obs(o)
    }
    /// A direct probe of one origin host.
    pub fn origin(self, host: &str, outcome: &str, status: u32) -> Self {
        let url = self.0.site.url.clone();
        self.obs(obs(
            &url,
            "collector/c1",
            &format!("origin/{host}"),
            NOW - 9_000,
            outcome,
            status,
            "",
        ))
    }
}

pub(super) fn obs(
    url: &str,
    vantage: &str,
    target: &str,
    at: i64,
    outcome: &str,
    status: u32,
    fp: &str,
) -> EdgeObservation {
    EdgeObservation {
        site: "shop.example".into(),
        url: url.into(),
        vantage: vantage.into(),
        target: target.into(),
        at_ms: at,
        outcome: outcome.into(),
        status,
        fingerprint: fp.into(),
        ..EdgeObservation::default()
    }
}
