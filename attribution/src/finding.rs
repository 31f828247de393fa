//! The engine's middle: triggers (one failure indication on a host: a log
//! signal, a failed direct probe, a failed origin probe, relayed 5xx access
//! counts) carry candidate causes; layer rules confirm candidates into
//! findings; findings of the same cause merge, and the best one wins by the
//! precedence in [`super::precedence`].
//!
//! A trigger whose candidate set no rule confirms still counts: a single
//! explicit cause (the line alone decides, e.g. `upstream sent too big
//! header`) is kept as circumstantial, while an unresolved set only adds to
//! `missing`.

use gw502_vocab::Outcome;

use super::evidence::{Evidence, Source};
use super::host::HostView;
use super::lines;
use super::precedence::{self, Support, Tier};
use super::target::Target;
use super::verdict::{Cause, Hop};
use super::wire::{self, Observed};

/// One failure indication on a host, with the causes it could mean.
#[derive(Debug, Clone)]
pub(crate) struct Trigger {
    /// What could explain it, most likely first.
    pub candidates: Vec<Cause>,
    /// The upstream it concerns, when known.
    pub target: Option<Target>,
    /// Status the proxy answered or the probe got (0 unknown).
    pub status: u16,
    /// First time seen.
    pub first_ms: i64,
    /// Where it came from.
    pub source: Source,
    /// The evidence item it contributes.
    pub evidence: Evidence,
    /// A line of text rules may read further (log sample, probe detail).
    pub text: String,
    /// The probe's outcome, for probe triggers.
    pub outcome: Option<Outcome>,
}

/// A confirmed cause on one host (or site-wide), with what confirmed it.
#[derive(Debug, Clone)]
pub(crate) struct Finding {
    /// The cause.
    pub cause: Cause,
    /// How it was established; decides precedence and the base confidence.
    pub tier: Tier,
    /// The quality of the evidence behind it (corroboration, gaps).
    pub support: Support,
    /// Status implied by the cause, used when nothing was observed.
    pub status: Option<u16>,
    /// Who emitted the status, when the rule knows better than the signal.
    pub emitted_by: Option<Hop>,
    /// Items used.
    pub evidence: Vec<Evidence>,
    /// One concrete thing to check.
    pub next_check: String,
    /// One sentence.
    pub summary: String,
    /// Missing sources noticed along the way.
    pub missing: Vec<String>,
    /// When the underlying failure was first seen.
    pub first_ms: i64,
}

impl Finding {
    /// A finding built from a trigger plus extra evidence.
    pub fn new(cause: Cause, tier: Tier, t: &Trigger, extra: Vec<Evidence>) -> Finding {
        let mut evidence = vec![t.evidence.clone()];
        evidence.extend(extra);
        Finding::seeded(cause, tier, evidence, t.first_ms)
    }

    /// A finding without a trigger, from host state alone, dated `first_ms`.
    pub fn seeded(cause: Cause, tier: Tier, evidence: Vec<Evidence>, first_ms: i64) -> Finding {
        Finding {
            cause,
            tier,
            support: Support::default(),
            status: None,
            emitted_by: None,
            evidence,
            next_check: String::new(),
            summary: String::new(),
            missing: Vec::new(),
            first_ms,
        }
    }

    /// Sets next check and summary.
    pub fn say(mut self, next_check: impl Into<String>, summary: impl Into<String>) -> Finding {
        self.next_check = next_check.into();
        self.summary = summary.into();
        self
    }

    /// Sets the implied status.
    pub fn status(mut self, status: u16) -> Finding {
        self.status = Some(status);
        self
    }
}

/// The failure indications on one host for the site.
pub(crate) fn triggers(h: &HostView<'_>, origin_obs: &[&Observed<'_>]) -> Vec<Trigger> {
    let id = h.id();
    let mut out = Vec::new();
    for s in h.signals() {
        // Unknown words stay visible: the detail below quotes the raw field and
        // the verdict lists them in `missing`.
        let mut candidates = s.causes.clone();
        if candidates.is_empty() {
            candidates = lines::sample_candidates(&s.proxy, &s.sample);
        }
        let detail = format!(
            "{} x{} {}: {}",
            s.proxy,
            s.count,
            if s.cause.is_empty() {
                "unlabelled"
            } else {
                &s.cause
            },
            if s.sample.is_empty() {
                &s.upstream
            } else {
                &s.sample
            }
        );
        out.push(Trigger {
            candidates,
            target: Target::parse(&s.upstream),
            status: s.status,
            first_ms: s.first_at_ms,
            source: Source::ProxyLog,
            evidence: Evidence::new(Source::ProxyLog, id, s.last_at_ms, detail),
            text: s.sample.clone(),
            outcome: None,
        });
    }
    for p in h.probes() {
        let status = u16::try_from(p.status).unwrap_or(0);
        let failed = !p.is(Outcome::Ok) || status >= 500;
        if !failed {
            continue;
        }
        let target = p.target.as_ref().and_then(Target::from_config);
        let candidates = match p.outcome {
            Some(Outcome::Ok) => vec![Cause::DependencyFailure, Cause::UpstreamReturnedError],
            Some(o) => lines::probe_candidates(o, p.phase, &p.detail),
            None => Vec::new(),
        };
        let shown = target.as_ref().map(Target::display).unwrap_or_default();
        let detail = format!(
            "probe {shown}: {} {} {} {}",
            p.raw.outcome, p.raw.phase, p.status, p.detail
        );
        out.push(Trigger {
            candidates,
            target,
            status,
            first_ms: p.at_ms,
            source: Source::DirectProbe,
            evidence: Evidence::new(Source::DirectProbe, id, p.at_ms, detail.trim_end()),
            text: p.detail.clone(),
            outcome: p.outcome,
        });
    }
    for c in h.access_5xx() {
        let status = u16::try_from(c.status).unwrap_or(0);
        let candidates = if h.relayed(c) == Some(true) {
            vec![Cause::DependencyFailure, Cause::UpstreamReturnedError]
        } else {
            Vec::new()
        };
        let detail = format!(
            "{} x{} status {} upstream_status {:?}",
            c.vhost, c.count, c.status, c.upstream_status
        );
        out.push(Trigger {
            candidates,
            target: None,
            status,
            first_ms: c.last_at_ms,
            source: Source::AccessLog,
            evidence: Evidence::new(Source::AccessLog, id, c.last_at_ms, detail),
            text: c.upstream_status.clone(),
            outcome: None,
        });
    }
    for o in origin_obs.iter().filter(|o| super::signal::is_failure(o)) {
        // A hop on the origin that says why in RFC 9209 words decides the candidates.
        let reported = o.proxy_error();
        let candidates = match o.outcome {
            _ if reported.is_some() => reported
                .as_ref()
                .map(wire::proxy_status_causes)
                .unwrap_or_default(),
            Some(Outcome::Refused) => vec![Cause::ProxyDown],
            Some(Outcome::Ok) | None => Vec::new(),
            Some(other) => lines::probe_candidates(other, None, &o.detail)
                .into_iter()
                .filter(|c| matches!(c, Cause::FirewallBlocked | Cause::Timeout))
                .collect(),
        };
        let mut detail = format!(
            "origin probe from {}: {} {} {}",
            o.vantage, o.raw.outcome, o.status, o.detail
        );
        if let Some(m) = &reported {
            detail = format!("{} {}", detail.trim_end(), wire::proxy_status_text(m));
        }
        out.push(Trigger {
            candidates,
            target: reported
                .as_ref()
                .and_then(|m| m.next_hop.as_deref())
                .and_then(Target::parse),
            status: u16::try_from(o.status).unwrap_or(0),
            first_ms: o.at_ms,
            source: Source::EdgeProbe,
            evidence: Evidence::new(Source::EdgeProbe, id, o.at_ms, detail.trim_end()),
            text: reported
                .and_then(|m| m.details)
                .unwrap_or_else(|| o.detail.clone()),
            outcome: o.outcome,
        });
    }
    out
}

/// Merges findings of the same cause (a new independent source counts as a
/// corroboration) and returns the best one by tier, then precedence; the
/// winner is contested when a rival cause of the same layer was found at the
/// same tier (across layers one cause usually explains the other, which the
/// precedence order already says).
pub(crate) fn best(findings: Vec<Finding>) -> Option<Finding> {
    let mut merged: Vec<Finding> = Vec::new();
    for f in findings {
        match merged.iter_mut().find(|m| m.cause == f.cause) {
            Some(m) => {
                let new_sources = f
                    .evidence
                    .iter()
                    .any(|e| !m.evidence.iter().any(|x| x.source == e.source));
                for e in f.evidence {
                    if !m.evidence.contains(&e) {
                        m.evidence.push(e);
                    }
                }
                if new_sources {
                    m.support.corroborations = m.support.corroborations.saturating_add(1);
                }
                let stronger = f.tier > m.tier;
                m.tier = m.tier.max(f.tier);
                m.first_ms = m.first_ms.min(f.first_ms);
                if (stronger || m.next_check.is_empty()) && !f.next_check.is_empty() {
                    m.next_check = f.next_check;
                    m.summary = f.summary;
                }
                for x in f.missing {
                    if !m.missing.contains(&x) {
                        m.missing.push(x);
                    }
                }
                m.status = m.status.or(f.status);
                m.emitted_by = m.emitted_by.or(f.emitted_by);
            }
            None => merged.push(f),
        }
    }
    let contested = |w: &Finding| {
        merged
            .iter()
            .any(|o| o.cause != w.cause && o.tier == w.tier && o.cause.layer() == w.cause.layer())
    };
    let mut best = merged
        .iter()
        .reduce(|a, b| {
            if precedence::compare((b.tier, b.cause), (a.tier, a.cause)).is_gt() {
                b
            } else {
                a
            }
        })?
        .clone();
    best.support.contested = contested(&best);
    Some(best)
}
