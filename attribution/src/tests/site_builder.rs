//! Builders for the table's rows: the row itself, expectations, and a site
//! with public, edge and origin probe observations. Hosts are
//! `gw502-testkit`'s, at its fixed clock and serving [`SITE`]; the functions
//! here only fix those two arguments.

use gw502_proto::v1::*;
pub(super) use gw502_testkit::Host;
use gw502_testkit::{Clock, observation};

use super::super::{Cause, Hop, HostEvidence, Layer, SiteEvidence, SiteRef};

/// The table's clock.
const CLOCK: Clock = Clock::fixed();
/// "Now" for every row.
pub(super) const NOW: i64 = CLOCK.now;
/// When failures started in failing rows.
pub(super) const T0: i64 = CLOCK.t0;
/// The site every row's hosts serve.
const SITE: &str = "shop.example";

/// A host with every section present and empty.
pub(super) fn host(id: &str) -> Host {
    gw502_testkit::host(id, SITE, CLOCK)
}

/// nginx fronting the site, proxying to `upstream`.
pub(super) fn nginx(id: &str, upstream: &str) -> Host {
    gw502_testkit::nginx(id, SITE, upstream, CLOCK)
}

/// The usual web host: nginx to app.service on 127.0.0.1:3000.
pub(super) fn web(id: &str) -> Host {
    gw502_testkit::web(id, SITE, CLOCK)
}

/// nginx to php8.2-fpm on its default socket.
pub(super) fn php(id: &str) -> Host {
    gw502_testkit::php(id, SITE, CLOCK)
}

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
    gw502_testkit::ngx_line(SITE, level, msg, upstream)
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
        self.0.hosts.push(HostEvidence {
            host_id: h.report.host_id.clone(),
            last_seen_ms: h.received_ms,
            interval_ms: h.report.interval_ms,
            state: h.report,
        });
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
    observation(SITE, url, vantage, target, at, outcome, status, fp)
}
