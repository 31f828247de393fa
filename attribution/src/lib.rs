//! The attribution engine: a pure function from the evidence of one site
//! ([`SiteEvidence`]) to verdicts in TAXONOMY.md words ([`Verdict`]).
//!
//! It is a small pipeline. [`signal`] decides whether visitors see a failure
//! now and which status and hop they see; no failure, no verdict. Site-wide
//! rules go first: [`client`] (only one vantage fails) and [`edge`] (the edge
//! made the error while the origin answers direct probes). Then, per host that
//! serves the site, [`finding`] turns log signals, probes and access counts
//! into triggers with candidate causes, and the layer rules ([`proxy`],
//! [`cache`] for a proxy behind a cache on the same host, [`health`] for the
//! proxy's own view of its servers' health behind `no_live_upstreams`,
//! [`handoff`], [`upstream`], [`response`], [`dependency`]) confirm candidates
//! with sockets, systemd and the journal into findings that carry their
//! evidence; [`container`] does the same for containerised upstreams. The best finding per failing host becomes a verdict: which cause
//! wins and how confident the verdict is are decided in one place,
//! [`precedence`] (named tiers, one cause order, one confidence formula).
//! When nothing confirms a cause the verdict is
//! `unknown/insufficient_evidence` naming what is missing.

mod cache;
mod chain;
mod change;
mod client;
mod container;
mod dependency;
mod edge;
mod evidence;
mod facts;
mod finding;
mod handoff;
mod health;
mod host;
mod lines;
mod origin;
mod per_host;
mod precedence;
mod protocol;
mod proxy;
mod response;
mod serving;
mod signal;
mod target;
#[cfg(test)]
mod taxonomy;
#[cfg(test)]
mod tests;
mod upstream;
mod verdict;
mod wire;

pub use evidence::{Evidence, HostEvidence, SiteEvidence, SiteRef, Source, clean};
pub use verdict::{Cause, Hop, Layer, Owner, RecentChange, UnknownWord, Verdict};

use finding::Finding;
use host::HostView;
use host::Serves;
use precedence::{Support, Tier};
use signal::SiteSignal;
use target::{SiteAddr, Target};
use wire::Observed;

use gw502_vocab::{Outcome, Phase};

/// Attributes the site's current failure; empty when visitors see no 5xx.
pub fn attribute(evidence: &SiteEvidence) -> Vec<Verdict> {
    let url = if evidence.site.url.is_empty() {
        &evidence.site.name
    } else {
        &evidence.site.url
    };
    let mut site = SiteAddr::parse(url);
    // A site configured by address (`url = "http://10.0.0.5/"`, `name =
    // "shop.example"`) is served, logged and probed under its name: match
    // vhosts and log lines by the name, keep the URL's port. A name that is no
    // host name (`site3`) leaves it an address, answered by the default server.
    let name = SiteAddr::parse(&evidence.site.name);
    if site.host.parse::<std::net::IpAddr>().is_ok() && gw502_vocab::name::is_host_name(&name.host)
    {
        site.host = name.host;
    }
    let edge: Vec<Observed<'_>> = evidence.edge.iter().map(Observed::parse).collect();
    let hosts = serving::serving(evidence, &site);
    let front = serving::front(evidence, &site, &edge, &hosts);
    let Some(signal) = SiteSignal::observe(&edge, &hosts, front) else {
        return Vec::new();
    };
    let cx = Cx {
        ev: evidence,
        edge: &edge,
        site: &site,
        hosts,
        signal,
    };
    if let Some(f) = client::rule(&cx) {
        return vec![cx.verdict(None, f)];
    }
    if let Some(f) = edge::rule(&cx, true) {
        return vec![cx.verdict(None, f)];
    }
    let found: Vec<(&HostView<'_>, Finding, Vec<String>)> = cx
        .hosts
        .iter()
        .filter_map(|h| cx.host_finding(h).map(|(f, next)| (h, f, next)))
        .collect();
    // A host whose failures all point at another failing host is the messenger, not the fault.
    let failing: Vec<&str> = found.iter().map(|(h, _, _)| h.id()).collect();
    let messenger =
        |next: &[String]| !next.is_empty() && next.iter().all(|n| failing.contains(&n.as_str()));
    let mut out: Vec<Verdict> = found
        .iter()
        .filter(|(_, _, next)| found.len() < 2 || !messenger(next))
        .map(|(h, f, _)| cx.verdict(Some(h), f.clone()))
        .collect();
    if out.is_empty() {
        let f = edge::rule(&cx, false).unwrap_or_else(|| cx.insufficient());
        out.push(cx.verdict(None, f));
    }
    out
}

/// Everything a rule may consult: the site, its serving hosts and its signal.
pub(crate) struct Cx<'a> {
    /// The raw input.
    pub ev: &'a SiteEvidence,
    /// Its probe observations, outcomes parsed.
    pub edge: &'a [Observed<'a>],
    /// The site's public address.
    pub site: &'a SiteAddr,
    /// Hosts serving the site.
    pub hosts: Vec<HostView<'a>>,
    /// What visitors see.
    pub signal: SiteSignal<'a>,
}

impl<'a> Cx<'a> {
    /// Latest direct origin probe per origin host (`origin/<host>`).
    pub fn origin_probes(&self) -> Vec<&'a Observed<'a>> {
        let mut latest: std::collections::BTreeMap<&str, &Observed<'a>> = Default::default();
        for o in self
            .edge
            .iter()
            .filter(|o| o.target.starts_with("origin/") && !o.is(Outcome::Blocked))
        {
            let slot = latest.entry(o.target.as_str()).or_insert(o);
            if o.at_ms >= slot.at_ms {
                *slot = o;
            }
        }
        latest.into_values().collect()
    }

    /// The host a target lives on: loopback and unknown hosts are the proxy's
    /// own host; IP literals (directly or via the host's DNS answers) are
    /// matched against every agent's addresses.
    pub fn host_of(&self, from: &HostView<'a>, t: &Target) -> Option<HostView<'a>> {
        if t.unix.is_some() || t.is_loopback() || t.host.is_empty() {
            return Some(*from);
        }
        let mut addrs = vec![t.host.clone()];
        if !t.is_ip() {
            let answers = from.ev.state.dns.as_ref().map_or(&[][..], |d| &d.answers);
            addrs.extend(
                answers
                    .iter()
                    .filter(|a| a.name.eq_ignore_ascii_case(&t.host))
                    .flat_map(|a| a.addresses.clone()),
            );
        }
        let owner = self.ev.hosts.iter().find(|h| {
            h.state
                .addresses
                .iter()
                .any(|a| addrs.iter().any(|x| x == a.split('/').next().unwrap_or(a)))
        })?;
        Some(HostView {
            ev: owner,
            site: self.site,
            serves: Serves::Discovered,
        })
    }

    /// The honest answer when nothing confirms a cause.
    fn insufficient(&self) -> Finding {
        let mut missing = Vec::new();
        if self.hosts.is_empty() {
            missing.push(format!(
                "no agent reports from hosts serving {}",
                self.site.host
            ));
        }
        for h in &self.hosts {
            for (section, reason) in h.unavailable() {
                missing.push(format!(
                    "{section} unavailable on {}: {}",
                    h.id(),
                    clean(reason, 160)
                ));
            }
            if h.signals().is_empty() && h.access_5xx().is_empty() {
                missing.push(format!(
                    "no proxy log or access log errors for {} on {}",
                    self.site.host,
                    h.id()
                ));
            }
        }
        if self.origin_probes().is_empty() {
            missing.push(format!(
                "no direct probe of the origin of {}",
                self.site.host
            ));
        }
        let evidence = self
            .signal
            .public_fail
            .map(edge::evidence)
            .into_iter()
            .collect();
        Finding {
            cause: Cause::InsufficientEvidence,
            tier: Tier::Unattributed,
            support: Support::default(),
            status: None,
            emitted_by: None,
            evidence,
            next_check: format!(
                "curl -sv {} from the failing vantage and check the origin's proxy error log",
                self.ev.site.url
            ),
            summary: format!(
                "{} fails but the evidence does not point at a layer",
                self.site.host
            ),
            missing,
            first_ms: self.signal.first_failure_ms,
        }
    }

    /// Words from a newer agent or prober that this engine cannot read, on
    /// the site's observations and on `h`: listed in `missing`, never dropped.
    fn unknown_words(&self, h: Option<&HostView<'a>>) -> Vec<String> {
        let mut out: Vec<String> = self
            .edge
            .iter()
            .filter_map(|o| {
                let w = wire::unknown::<Outcome>(&o.raw.outcome)?;
                Some(wire::unknown_line(&w, &format!("probe from {}", o.vantage)))
            })
            .collect();
        out.extend(self.edge.iter().filter_map(|o| {
            let m = o.proxy_error()?;
            let w = wire::proxy_status_unknown(&m)?;
            Some(wire::unknown_line(
                w,
                &format!("proxy-status of {} seen from {}", m.proxy, o.vantage),
            ))
        }));
        let Some(h) = h else { return out };
        for s in h.signals() {
            for w in &s.unknown {
                out.push(wire::unknown_line(
                    w,
                    &format!("{} log signal on {}", s.proxy, h.id()),
                ));
            }
        }
        for p in h.probes() {
            let words = [
                wire::unknown::<Outcome>(&p.raw.outcome),
                wire::unknown::<Phase>(&p.raw.phase),
            ];
            for w in words.iter().flatten() {
                out.push(wire::unknown_line(
                    w,
                    &format!("direct probe on {}", h.id()),
                ));
            }
        }
        out
    }

    /// Turns a finding into the public verdict.
    fn verdict(&self, h: Option<&HostView<'a>>, f: Finding) -> Verdict {
        let (status, hop) = self.signal.visitor(h, f.status.unwrap_or(502));
        // A finding's own hop stands when no answer to a visitor was seen: no public
        // failure, and no edge in front logged one (the only way to `Hop::Edge` then).
        let emitted_by = match f.emitted_by {
            Some(e) if self.signal.public_fail.is_none() && hop != Hop::Edge => e,
            _ => hop,
        };
        let recent_change = h.and_then(|h| change::recent(h, self.signal.first_failure_ms));
        let layer = f.cause.layer();
        let mut missing: Vec<String> = Vec::new();
        for m in f.missing.into_iter().chain(self.unknown_words(h)) {
            if !missing.contains(&m) {
                missing.push(m);
            }
        }
        Verdict {
            host: h.map(|h| h.id().to_string()),
            emitted_by,
            layer,
            cause: f.cause,
            status,
            confidence: (precedence::confidence(f.tier, &f.support) * 100.0).round() / 100.0,
            next_check: clean(&f.next_check, 300),
            owner: Owner::for_layer(layer),
            recent_change,
            evidence: f.evidence,
            summary: clean(&f.summary, 300),
            missing,
        }
    }
}
