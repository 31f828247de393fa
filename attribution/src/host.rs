//! A read-only view of one host's evidence, scoped to the site being judged:
//! its units, listeners, log signals (merged over
//! the window), access counts, targets and probes, and which sources failed.
//!
//! Rules ask questions of this view instead of walking the proto, so "which
//! signals belong to this site" and "which units are upstreams" are decided
//! once and the same way for every layer.

use std::collections::BTreeMap;

use gw502_proto::v1::{
    DirectProbe, Listener, LogSignal, StatusCount, UnitState, UpstreamTarget, VirtualServer,
};
use gw502_vocab::{Cause, Source, UnknownWord};

use super::evidence::HostEvidence;
use super::target::{SiteAddr, Target, caddy_catch_all, listen_on, name_matches};
use super::wire::Probed;

/// Why a host is believed to serve the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Serves {
    /// Named in the site's configured origin hosts.
    Configured,
    /// Its proxy config or access log names the site.
    Discovered,
    /// It is the only host known; an assumption.
    OnlyHost,
}

/// One host's evidence as seen from one site.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostView<'a> {
    /// The host's evidence.
    pub ev: &'a HostEvidence,
    /// The site address.
    pub site: &'a SiteAddr,
    /// How the host was matched to the site.
    pub serves: Serves,
}

/// A log signal merged over the window (same proxy, upstream and cause).
#[derive(Debug, Clone, Default)]
pub(crate) struct Signal {
    /// nginx, haproxy, apache, caddy.
    pub proxy: String,
    /// The upstream as logged.
    pub upstream: String,
    /// The cause field as the agent set it (for evidence text).
    pub cause: String,
    /// That field parsed: one cause or a candidate set, most likely first.
    pub causes: Vec<Cause>,
    /// Words of that field this collector does not know.
    pub unknown: Vec<UnknownWord>,
    /// Lines in the window.
    pub count: u64,
    /// First and last line time.
    pub first_at_ms: i64,
    /// Last line time.
    pub last_at_ms: i64,
    /// Status the proxy answered, 0 if unknown.
    pub status: u16,
    /// A sample line.
    pub sample: String,
}

impl<'a> HostView<'a> {
    /// The host id.
    pub fn id(&self) -> &'a str {
        &self.ev.host_id
    }

    /// Units, empty when systemd is missing.
    pub fn units(&self) -> &'a [UnitState] {
        self.ev.state.systemd.as_ref().map_or(&[], |s| &s.units)
    }

    /// The model of the proxy whose config routes to `target`, with the target as it
    /// names it.
    pub fn proxy_routing_to(
        &self,
        target: &Target,
    ) -> Option<(&'static dyn gw502_proxy::Proxy, &'a UpstreamTarget)> {
        self.proxies().iter().find_map(|p| {
            let routed = p.targets.iter().find(|t| {
                Target::from_config(t).is_some_and(|configured| configured.same(target))
            })?;
            Some((gw502_proxy::by_word(&p.kind)?, routed))
        })
    }

    /// Parsed proxy configs.
    pub fn proxies(&self) -> &'a [gw502_proto::v1::ProxyConfig] {
        self.ev
            .state
            .proxy_config
            .as_ref()
            .map_or(&[], |s| &s.proxies)
    }

    /// Whether a unit fronts requests (role `proxy` or named by a proxy config).
    pub fn is_proxy_unit(&self, u: &UnitState) -> bool {
        u.roles.iter().any(|r| r == "proxy") || self.proxies().iter().any(|p| p.unit == u.name)
    }

    /// Proxy units.
    pub fn proxy_units(&self) -> Vec<&'a UnitState> {
        self.units()
            .iter()
            .filter(|u| self.is_proxy_unit(u))
            .collect()
    }

    /// Listeners, empty when sockets are missing.
    pub fn listeners(&self) -> &'a [Listener] {
        self.ev.state.sockets.as_ref().map_or(&[], |s| &s.listeners)
    }

    /// Listeners owned by a unit.
    pub fn listeners_of(&self, unit: &str) -> Vec<&'a Listener> {
        self.listeners().iter().filter(|l| l.unit == unit).collect()
    }

    /// Whether a source's section is present and readable.
    pub fn has(&self, source: Source) -> bool {
        matches!(self.section(source), Some(reason) if reason.is_empty())
    }

    /// A source's section: `None` when absent, else its `unavailable`
    /// reason ("" when readable). Edge probes are the collector's, not a section.
    fn section(&self, source: Source) -> Option<&'a str> {
        let s = &self.ev.state;
        match source {
            Source::Systemd => s.systemd.as_ref().map(|x| x.unavailable.as_str()),
            Source::Sockets => s.sockets.as_ref().map(|x| x.unavailable.as_str()),
            Source::Journal => s.journal.as_ref().map(|x| x.unavailable.as_str()),
            Source::ProxyConfig => s.proxy_config.as_ref().map(|x| x.unavailable.as_str()),
            Source::DirectProbe => s.probes.as_ref().map(|x| x.unavailable.as_str()),
            Source::Dns => s.dns.as_ref().map(|x| x.unavailable.as_str()),
            Source::ProxyLog => s.proxy_log.as_ref().map(|x| x.unavailable.as_str()),
            Source::AccessLog => s.access_log.as_ref().map(|x| x.unavailable.as_str()),
            Source::Containers => s.containers.as_ref().map(|x| x.unavailable.as_str()),
            Source::EdgeProbe => None,
        }
    }

    /// Sections that reported `unavailable`, with the reason.
    pub fn unavailable(&self) -> Vec<(Source, &'a str)> {
        Source::ALL
            .iter()
            .filter_map(|s| self.section(*s).filter(|r| !r.is_empty()).map(|r| (*s, r)))
            .collect()
    }

    /// Whether a vhost/server field belongs to this site: it names the site,
    /// or is empty, or names no other virtual server on this host. HAProxy's
    /// "virtual servers" are its frontends, named in its log lines by frontend
    /// name (`site`, `fe_shop`), which is no host name: a frontend takes every
    /// Host that reaches its bind, so its name never makes a line another site's.
    fn ours(&self, server: &str) -> bool {
        let server = server.trim().to_ascii_lowercase();
        if server.is_empty()
            || server == "_"
            || server == "-"
            || name_matches(&server, &self.site.host)
            || self.answers_address(std::slice::from_ref(&server))
        {
            return true;
        }
        !self
            .proxies()
            .iter()
            .filter(|p| p.kind != "haproxy")
            .any(|p| {
                p.servers
                    .iter()
                    .any(|s| s.names.iter().any(|n| name_matches(n, &server)))
            })
    }

    /// Whether a virtual server of these `names` serves the site: one of them is
    /// the site's name, or the site is an address and they name the server that
    /// answers it ([`HostView::default_servers`]).
    pub fn names_site(&self, names: &[String]) -> bool {
        names.iter().any(|n| name_matches(n, &self.site.host)) || self.answers_address(names)
    }

    fn answers_address(&self, names: &[String]) -> bool {
        self.default_servers().iter().any(|d| {
            d.names
                .iter()
                .any(|d| names.iter().any(|n| n.eq_ignore_ascii_case(d)))
        })
    }

    /// The virtual servers that answer the site when the site is an address
    /// (`http://10.0.0.5/`, no name), one per nginx or Apache config: no server
    /// name can match a request for an address, so nginx takes the server marked
    /// `default_server` on the site's port, else the first one listening there,
    /// Apache its first virtual host on the port, and Caddy a site block with
    /// no host on the port (`http://:80`). Only a proxy whose unit listens on
    /// the port answers: an installed but stopped or masked one answers
    /// nothing. Empty for a named site.
    fn default_servers(&self) -> Vec<&'a VirtualServer> {
        if self.site.host.parse::<std::net::IpAddr>().is_err() {
            return Vec::new();
        }
        let port = self.site.port;
        let listens = |unit: &str| {
            self.listeners()
                .iter()
                .any(|l| l.unit == unit && l.port == u32::from(port))
        };
        self.proxies()
            .iter()
            .filter(|p| listens(&p.unit))
            .filter_map(|p| {
                if p.kind == "caddy" {
                    return p
                        .servers
                        .iter()
                        .find(|s| s.listens.iter().any(|l| caddy_catch_all(l, port)));
                }
                if !matches!(p.kind.as_str(), "nginx" | "apache") {
                    return None;
                }
                // nginx without a `listen` listens on :80.
                let on = |s: &VirtualServer| -> Option<bool> {
                    if s.listens.is_empty() && p.kind == "nginx" {
                        return (port == 80).then_some(false);
                    }
                    s.listens
                        .iter()
                        .filter_map(|l| listen_on(l, port))
                        .reduce(|a, b| a || b)
                };
                let on_port: Vec<(&VirtualServer, bool)> = p
                    .servers
                    .iter()
                    .filter_map(|s| on(s).map(|marked| (s, marked)))
                    .collect();
                on_port
                    .iter()
                    .find(|(_, marked)| *marked)
                    .or(on_port.first())
                    .map(|(s, _)| *s)
            })
            .collect()
    }

    /// Error-log signals of this site, merged by (proxy, upstream, cause).
    pub fn signals(&self) -> Vec<Signal> {
        let raw: &[LogSignal] = self.ev.state.proxy_log.as_ref().map_or(&[], |s| &s.signals);
        let mut merged: BTreeMap<(String, String, String), Signal> = BTreeMap::new();
        for s in raw.iter().filter(|s| self.ours(&s.server)) {
            let key = (s.proxy.clone(), s.upstream.clone(), s.cause.clone());
            let m = merged.entry(key).or_insert_with(|| {
                let (causes, unknown) = Cause::parse_set(&s.cause);
                Signal {
                    proxy: s.proxy.clone(),
                    upstream: s.upstream.clone(),
                    cause: s.cause.clone(),
                    causes,
                    unknown,
                    first_at_ms: s.first_at_ms,
                    ..Signal::default()
                }
            });
            m.count += u64::from(s.count.max(1));
            m.first_at_ms = m.first_at_ms.min(s.first_at_ms);
            if s.last_at_ms >= m.last_at_ms {
                m.last_at_ms = s.last_at_ms;
                if s.status != 0 {
                    m.status = u16::try_from(s.status).unwrap_or(0);
                }
                if let Some(sample) = s.samples.first() {
                    m.sample = sample.clone();
                }
            }
        }
        merged.into_values().collect()
    }

    /// Access-log counts of this site with a 5xx status.
    pub fn access_5xx(&self) -> Vec<&'a StatusCount> {
        let counts: &[StatusCount] = self.ev.state.access_log.as_ref().map_or(&[], |a| &a.counts);
        counts
            .iter()
            .filter(|c| c.status >= 500 && c.status < 600 && self.ours(&c.vhost))
            .collect()
    }

    /// Whether a 5xx count was relayed from the upstream: the last
    /// `upstream_status` equals the status and the proxy logged no error of
    /// its own for the site (nginx also logs 502/504 as `upstream_status` for
    /// the errors it makes itself). `None` when the log format records no
    /// upstream status (Apache's `combined`): the count cannot tell.
    pub fn relayed(&self, c: &StatusCount) -> Option<bool> {
        let last = c.upstream_status.rsplit(',').next()?.trim();
        (!last.is_empty()).then(|| last == c.status.to_string() && self.signals().is_empty())
    }

    /// Upstream targets routed from this site (all targets if none names it).
    pub fn targets(&self) -> Vec<&'a UpstreamTarget> {
        let all: Vec<&UpstreamTarget> = self
            .proxies()
            .iter()
            .flat_map(|p| p.targets.iter())
            .collect();
        let named: Vec<_> = all
            .iter()
            .copied()
            .filter(|t| self.names_site(&t.server_names))
            .collect();
        if named.is_empty() { all } else { named }
    }

    /// Direct probes of this site's targets, latest per target address.
    pub fn probes(&self) -> Vec<Probed<'a>> {
        let raw: &[DirectProbe] = self.ev.state.probes.as_ref().map_or(&[], |p| &p.probes);
        let targets: Vec<Target> = self
            .targets()
            .iter()
            .filter_map(|t| Target::from_config(t))
            .collect();
        let mut latest: BTreeMap<String, &DirectProbe> = BTreeMap::new();
        for p in raw {
            let Some(t) = p.target.as_ref().and_then(Target::from_config) else {
                continue;
            };
            if !targets.is_empty() && !targets.iter().any(|x| x.same(&t)) {
                continue;
            }
            let slot = latest.entry(t.display()).or_insert(p);
            if p.at_ms >= slot.at_ms {
                *slot = p;
            }
        }
        latest.into_values().map(Probed::parse).collect()
    }

    /// Journal entries of one unit (all units when `unit` is empty).
    pub fn journal(&self, unit: &str) -> Vec<&'a gw502_proto::v1::JournalEntry> {
        let j = self.ev.state.journal.as_ref();
        j.map_or(&[][..], |j| &j.entries)
            .iter()
            .filter(|e| unit.is_empty() || e.unit == unit)
            .collect()
    }

    /// Unit events (start, stop, restart, reload, exit, fail) of one unit, or all.
    pub fn events(&self, unit: &str) -> Vec<&'a gw502_proto::v1::UnitEvent> {
        let j = self.ev.state.journal.as_ref();
        j.map_or(&[][..], |j| &j.events)
            .iter()
            .filter(|e| unit.is_empty() || e.unit == unit)
            .collect()
    }
}
