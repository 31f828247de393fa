//! The per-host stage of the pipeline: gather a host's triggers, let the
//! layer rules confirm their candidate causes (plus the host-state rules for
//! a stopped proxy, a broken config and a crash loop), keep the best finding,
//! and record what weakens it (a stale agent, unavailable sources, an assumed
//! host) for the confidence formula in [`super::precedence`].

use gw502_vocab::{Outcome, Source};

use super::evidence::clean;
use super::finding::{self, Finding, Trigger};
use super::host::HostView;
use super::host::Serves;
use super::precedence::Tier;
use super::verdict::{Cause, Layer};
use super::wire::Observed;
use super::{
    Cx, cache, container, dependency, edge, handoff, health, proxy, response, signal, upstream,
};

impl<'a> Cx<'a> {
    /// Whether `h` answers for the site right now: the collector's latest
    /// probe of it, sent under the site's name, got a response below 500, and
    /// not by luck between failures ([`signal::intermittent`]). (An agent's
    /// probe of another host carries no site name, so a healthy default vhost
    /// would answer it: that says nothing about the site.)
    fn answers_for_site(&self, h: &HostView<'a>) -> bool {
        let probed: Vec<&Observed<'a>> = self
            .edge
            .iter()
            .filter(|o| o.target.strip_prefix("origin/") == Some(h.id()))
            .filter(|o| !o.is(Outcome::Blocked))
            .collect();
        probed
            .iter()
            .max_by_key(|o| o.at_ms)
            .is_some_and(|o| o.is(Outcome::Ok) && o.status < 500)
            && signal::intermittent(&probed).is_none()
    }

    /// The best finding on one host, or `None` when the host shows no failure,
    /// with the other hosts its failing upstream targets live on.
    pub(crate) fn host_finding(&self, h: &HostView<'a>) -> Option<(Finding, Vec<String>)> {
        let origin: Vec<&Observed<'a>> = self
            .origin_probes()
            .into_iter()
            .filter(|o| o.target.strip_prefix("origin/") == Some(h.id()))
            .collect();
        let mut triggers = finding::triggers(h, &origin);
        if self.answers_for_site(h) {
            // The host serves the site right now: a failing probe of its own
            // upstream (a probe in the wrong protocol, a spare backend) is no
            // evidence against it.
            triggers.retain(|t| t.source != Source::DirectProbe);
        }
        super::protocol::mark(self, h, &mut triggers);
        if self.hosts.len() == 1
            && let Some(t) = edge::public_trigger(self, h)
        {
            triggers.push(t);
        }
        let mut findings = proxy::state(self, h, &triggers);
        findings.extend(cache::behind(self, h, &triggers));
        findings.extend(health::behind_down_servers(self, h, &triggers));
        findings.extend(upstream::state(self, h, &triggers));
        findings.extend(container::state(self, h, &triggers));
        let mut unresolved = Vec::new();
        for t in &triggers {
            let confirmed: Vec<Finding> = t
                .candidates
                .iter()
                .filter_map(|c| self.confirm(*c, h, t))
                .collect();
            match (confirmed.is_empty(), t.candidates.as_slice()) {
                (false, _) => findings.extend(confirmed),
                (true, [only]) => findings.push(
                    Finding::new(*only, Tier::Circumstantial, t, Vec::new()).say(
                        format!("confirm {} on {}: {}", only, h.id(), t.evidence.detail),
                        format!(
                            "{} on {} says {}, not confirmed by other sources",
                            t.source.as_str(),
                            h.id(),
                            only
                        ),
                    ),
                ),
                (true, []) => {}
                (true, many) => unresolved.push(format!(
                    "{} on {} fits {} but sockets/systemd did not decide",
                    t.source.as_str(),
                    h.id(),
                    many.iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join("|")
                )),
            }
        }
        if findings.is_empty() && triggers.is_empty() {
            return None;
        }
        let mut f = finding::best(findings).unwrap_or_else(|| {
            let mut f = self.insufficient();
            f.evidence = triggers
                .iter()
                .map(|t| t.evidence.clone())
                .take(8)
                .collect();
            f
        });
        f.missing.extend(unresolved);
        if f.cause == Cause::InsufficientEvidence {
            f.missing.extend(upstream::untied_candidates(self, h));
        }
        self.discount(h, &mut f);
        let mut next: Vec<String> = triggers
            .iter()
            .filter_map(|t| t.target.as_ref().and_then(|x| self.host_of(h, x)))
            .map(|th| th.id().to_string())
            .filter(|id| id != h.id())
            .collect();
        next.dedup();
        Some((f, next))
    }

    fn confirm(&self, cause: Cause, h: &HostView<'a>, t: &Trigger) -> Option<Finding> {
        match cause.layer() {
            Layer::Proxy => proxy::confirm(self, h, t, cause),
            Layer::Handoff => handoff::confirm(self, h, t, cause),
            Layer::Upstream => upstream::confirm(self, h, t, cause),
            Layer::Response => response::confirm(self, h, t, cause),
            Layer::Dependency => dependency::confirm(self, h, t),
            Layer::Client | Layer::Edge | Layer::Unknown => None,
        }
    }

    /// Records stale hosts, unavailable sources and assumed hosts in the
    /// finding's support and in `missing`.
    fn discount(&self, h: &HostView<'a>, f: &mut Finding) {
        if h.ev.is_stale(self.ev.now_ms) {
            f.support.stale = true;
            let age = self.ev.now_ms.saturating_sub(h.ev.last_seen_ms) / 1000;
            f.missing.push(format!(
                "agent on {} last reported {age}s ago (stale)",
                h.id()
            ));
        }
        for (section, reason) in h.unavailable() {
            f.support.unavailable = f.support.unavailable.saturating_add(1);
            f.missing.push(format!(
                "{section} unavailable on {}: {}",
                h.id(),
                clean(reason, 160)
            ));
        }
        if h.serves == Serves::OnlyHost {
            f.support.assumed_host = true;
            f.missing.push(format!(
                "no config names the hosts serving {}; assumed {}",
                self.site.host,
                h.id()
            ));
        }
    }
}
