//! The failure signal: is the site failing now, what status did visitors see,
//! and which hop emitted it.
//!
//! Public probes decide first: the latest observation per vantage. When every
//! vantage is fine, host-side errors count only if they are newer than the
//! latest good probe (an intermittent failure); older ones are a recovery.
//! Without public probes, host-side signals alone decide. A host in front of the
//! site's hosts (an edge the public probes connect to) whose own probe of one of them
//! fails counts as host-side: round-robin can keep one failing origin from the public
//! probes for many seconds. Who emitted the
//! status comes from fingerprints and headers (an edge's own error page), from
//! whether the proxy that a body names is actually running on the origin, and
//! from access logs (`upstream_status` equal to the status means relayed),
//! and from an RFC 9209 `proxy-status` member that reports the error: when
//! that member is an edge (a CDN vendor's name, or the edge the response came
//! through), the edge emitted the status.

use std::collections::BTreeMap;

use gw502_vocab::Outcome;

use super::host::HostView;
use super::serving::Front;
use super::verdict::Hop;
use super::wire::{Observed, Probed};

/// Fingerprints of bodies an edge made itself.
const EDGE_BODIES: &[&str] = &[
    "cloudflare_unbranded",
    "cloudfront",
    "aws_alb",
    "gcp",
    "azure_front_door",
    "vercel",
    "fastly",
    "akamai",
    "bunny",
];

/// Words in a `proxy-status` member's name that make it an edge.
const EDGE_MEMBER_WORDS: &[&str] = &[
    "cdn",
    "cloudflare",
    "cloudfront",
    "fastly",
    "akamai",
    "bunny",
    "azure",
    "vercel",
    "google",
    "awselb",
];

/// Whether the `proxy-status` member that reports the error is an edge: named
/// like a CDN, or after the edge in front, and not one of the proxies gw502
/// models (nginx, HAProxy, ...), which run on the origin.
fn edge_reported(o: &Observed<'_>) -> bool {
    let Some(m) = o.proxy_error() else {
        return false;
    };
    let name = m.proxy.to_ascii_lowercase();
    if gw502_proxy::by_word(&name).is_some() {
        return false;
    }
    EDGE_MEMBER_WORDS.iter().any(|w| name.contains(w))
        || (!o.edge.is_empty() && name.contains(o.edge.as_str()))
}

/// Whether an observation is a failure (5xx or no HTTP answer). Probes the
/// SSRF guard refused were never sent and say nothing.
pub(crate) fn is_failure(o: &Observed<'_>) -> bool {
    Outcome::fails(o.outcome, o.status)
}

/// What the site's visitors see now.
#[derive(Debug, Clone)]
pub(crate) struct SiteSignal<'a> {
    /// Latest public observation per vantage.
    pub vantages: BTreeMap<&'a str, &'a Observed<'a>>,
    /// The latest failing public observation, if the public view fails.
    pub public_fail: Option<&'a Observed<'a>>,
    /// When the current failure started (epoch ms).
    pub first_failure_ms: i64,
    /// The status a host in front logged answering visitors through the failing
    /// hosts, for when no public probe failed yet.
    pub front_status: Option<u16>,
}

fn header<'a>(o: &'a Observed<'_>, name: &str) -> Option<&'a str> {
    o.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// Whether an edge made this error itself (its fingerprints or headers).
pub(crate) fn edge_made(o: &Observed<'_>) -> bool {
    EDGE_BODIES.contains(&o.fingerprint.as_str())
        || header(o, "cf-error-type").is_some()
        || header(o, "x-vercel-error").is_some()
        || header(o, "x-cache")
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("error from cloudfront"))
            && o.fingerprint != "app"
            && gw502_proxy::by_word(&o.fingerprint).is_none()
        || (o.edge == "cloudflare" && (520..=530).contains(&o.status))
        || (!o.edge.is_empty() && !o.edge_error.is_empty())
        || edge_reported(o)
}

impl<'a> SiteSignal<'a> {
    /// Decides whether the site is failing; `None` means healthy or recovered.
    /// While a host in front of `hosts` sees them fail (`front`), the site fails.
    pub fn observe(
        edge: &'a [Observed<'a>],
        hosts: &[HostView<'_>],
        front: Front,
    ) -> Option<SiteSignal<'a>> {
        let public: Vec<&Observed<'a>> = edge.iter().filter(|o| o.is_public()).collect();
        let mut vantages: BTreeMap<&str, &Observed<'a>> = BTreeMap::new();
        for o in &public {
            let slot = vantages.entry(o.vantage.as_str()).or_insert(o);
            if o.at_ms >= slot.at_ms {
                *slot = o;
            }
        }
        let times: Vec<(i64, i64)> = hosts
            .iter()
            .flat_map(host_failure_times)
            .chain(front.failed_at.iter().map(|at| (*at, *at)))
            .collect();
        let host_first = times.iter().map(|(first, _)| *first).min();
        let host_last = times.iter().map(|(_, last)| *last).max();
        // A front host's failing probe is from its latest report: a failure going on.
        let ongoing = !front.failed_at.is_empty() || hosts.iter().any(still_failing);
        let failing: Vec<&&Observed<'a>> = vantages.values().filter(|o| is_failure(o)).collect();
        if vantages.is_empty() {
            let first = host_first?;
            return Some(SiteSignal {
                vantages,
                public_fail: None,
                first_failure_ms: first,
                front_status: front.status,
            });
        }
        if failing.is_empty()
            && let Some((first, last)) =
                intermittent(&public).or_else(|| partial(&public, edge, ongoing))
        {
            return Some(SiteSignal {
                vantages,
                public_fail: Some(last),
                first_failure_ms: host_first.map_or(first, |h| h.min(first)),
                front_status: front.status,
            });
        }
        if failing.is_empty() {
            let latest_ok = vantages.values().map(|o| o.at_ms).max().unwrap_or(0);
            let last = host_last.filter(|l| *l > latest_ok || ongoing)?;
            return Some(SiteSignal {
                vantages,
                public_fail: None,
                first_failure_ms: host_first.unwrap_or(last),
                front_status: front.status,
            });
        }
        let latest_fail = failing.iter().max_by_key(|o| o.at_ms).map(|o| **o);
        // The current streak of each failing vantage starts after its last good answer.
        let mut first = i64::MAX;
        for o in &failing {
            let last_ok = public
                .iter()
                .filter(|p| p.vantage == o.vantage && !is_failure(p))
                .map(|p| p.at_ms)
                .max();
            let streak = public
                .iter()
                .filter(|p| {
                    p.vantage == o.vantage && is_failure(p) && last_ok.is_none_or(|ok| p.at_ms > ok)
                })
                .map(|p| p.at_ms)
                .min();
            first = first.min(streak.unwrap_or(o.at_ms));
        }
        let first = host_first.map_or(first, |h| {
            h.min(first).max(first.saturating_sub(15 * 60_000))
        });
        Some(SiteSignal {
            vantages,
            public_fail: latest_fail,
            first_failure_ms: first,
            front_status: front.status,
        })
    }

    /// Vantages whose latest answer is good.
    pub fn good_vantages(&self) -> Vec<&'a Observed<'a>> {
        self.vantages
            .values()
            .filter(|o| !is_failure(o))
            .copied()
            .collect()
    }

    /// Vantages whose latest answer fails.
    pub fn bad_vantages(&self) -> Vec<&'a Observed<'a>> {
        self.vantages
            .values()
            .filter(|o| is_failure(o))
            .copied()
            .collect()
    }

    /// Status the visitor saw and the hop that emitted it, as seen on `host`.
    /// `fallback` is the status the cause implies when nothing was observed.
    pub fn visitor(&self, host: Option<&HostView<'_>>, fallback: u16) -> (u16, Hop) {
        if let Some(o) = self.public_fail {
            let status = u16::try_from(o.status).unwrap_or(0);
            // A probe that gave up waiting left before the proxy answered (HAProxy's
            // `sC` 503 comes after all its connect retries): what the proxy logged
            // answering is what visitors who wait get.
            let logged = host
                .filter(|_| o.is(Outcome::Timeout) && status == 0)
                .and_then(|h| {
                    let signals = h.signals();
                    let last = signals
                        .iter()
                        .filter(|s| s.status != 0)
                        .max_by_key(|s| s.last_at_ms);
                    last.map(|s| (s.status, logged_hop(s)))
                });
            if let Some(logged) = logged {
                return logged;
            }
            if !o.is(Outcome::Ok) && status == 0 {
                return (0, Hop::Unknown);
            }
            return (status, emitted_by(o, host));
        }
        if let Some(h) = host {
            if let Some((c, relayed)) = h
                .access_5xx()
                .into_iter()
                .filter_map(|c| Some((c, h.relayed(c)?)))
                .max_by_key(|(c, _)| (c.last_at_ms, c.count))
            {
                let hop = if relayed { Hop::Upstream } else { Hop::Proxy };
                return (u16::try_from(c.status).unwrap_or(fallback), hop);
            }
            if let Some(s) = h
                .signals()
                .iter()
                .filter(|s| s.status != 0)
                .max_by_key(|s| s.last_at_ms)
            {
                return (s.status, logged_hop(s));
            }
            if let Some(p) = h
                .probes()
                .iter()
                .find(|p| p.is(Outcome::Ok) && p.status >= 500)
            {
                return (u16::try_from(p.status).unwrap_or(fallback), Hop::Upstream);
            }
        }
        // What the edge in front answered visitors it could not serve through them.
        if let Some(status) = self.front_status {
            return (status, Hop::Edge);
        }
        (
            fallback,
            if fallback == 0 {
                Hop::Unknown
            } else {
                Hop::Proxy
            },
        )
    }
}

/// Public observations looked at for a partial failure rate.
const RECENT_PROBES: usize = 6;

/// A partial failure (one origin of three down behind a round-robin edge, a
/// proxy whose kept-alive upstream connections still work while new ones
/// fail): among the latest [`RECENT_PROBES`] observations, a good answer
/// stands between two failures, so the latest answer being good is luck,
/// not a recovery. An outage that ended (failures followed only by good
/// answers, however many good ones came before it) is not one. Returns the
/// first failure's time and the latest failure.
pub(crate) fn intermittent<'a>(public: &[&'a Observed<'a>]) -> Option<(i64, &'a Observed<'a>)> {
    let mut recent: Vec<&Observed<'a>> = public.to_vec();
    recent.sort_by_key(|o| o.at_ms);
    let recent = &recent[recent.len().saturating_sub(RECENT_PROBES)..];
    let first = recent.iter().position(|o| is_failure(o))?;
    let last = recent.iter().rposition(|o| is_failure(o))?;
    let good_between = recent[first..last].iter().any(|o| !is_failure(o));
    good_between.then(|| (recent[first].at_ms, recent[last]))
}

/// A partial failure whose latest public answers happen to be good: a public
/// failure among the latest [`RECENT_PROBES`], and the failure is still there
/// behind the edge (the collector's latest direct probe of one of the site's
/// origins fails, or a host still saw failures in its latest report period:
/// `ongoing`). Round-robin over three origins with one down fails one request in
/// three; the probes of a few seconds can miss it while that origin keeps
/// failing. Returns the first recent public failure's time and the latest.
fn partial<'a>(
    public: &[&'a Observed<'a>],
    edge: &'a [Observed<'a>],
    ongoing: bool,
) -> Option<(i64, &'a Observed<'a>)> {
    let mut recent: Vec<&Observed<'a>> = public.to_vec();
    recent.sort_by_key(|o| o.at_ms);
    let recent = &recent[recent.len().saturating_sub(RECENT_PROBES)..];
    let first = recent.iter().find(|o| is_failure(o))?;
    let last = recent.iter().rev().find(|o| is_failure(o))?;
    let mut origins: BTreeMap<&str, &Observed<'a>> = BTreeMap::new();
    for o in edge.iter().filter(|o| o.target.starts_with("origin/")) {
        let slot = origins.entry(o.target.as_str()).or_insert(o);
        if o.at_ms >= slot.at_ms {
            *slot = o;
        }
    }
    let origin_fails = origins
        .values()
        .any(|o| is_failure(o) && o.at_ms >= last.at_ms);
    (origin_fails || ongoing).then_some((first.at_ms, *last))
}

/// Whether the host still saw failures for the site in its latest report
/// period (a failure going on, not one that ended). A failing direct probe is
/// the target's newest finished one (the latest report carries it); a logged
/// failure counts only when it is newer than the host's latest good direct
/// probe, so the log lines of a failure that ended before the app answered
/// again are history, not an ongoing failure.
fn still_failing(h: &HostView<'_>) -> bool {
    let period = i64::from(if h.ev.interval_ms == 0 {
        2_000
    } else {
        h.ev.interval_ms
    });
    let probes = h.probes();
    let failed = |p: &Probed<'_>| !p.is(Outcome::Ok) || p.status >= 500;
    if probes.iter().any(failed) {
        return true;
    }
    let healthy_at = probes.iter().map(|p| p.at_ms).max().unwrap_or(i64::MIN);
    host_failure_times(h)
        .iter()
        .any(|(_, last)| *last >= h.ev.last_seen_ms - period && *last > healthy_at)
}

/// (first, last) times of the host's failure signals for the site.
fn host_failure_times(h: &HostView<'_>) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = h
        .signals()
        .iter()
        .map(|s| (s.first_at_ms, s.last_at_ms))
        .collect();
    out.extend(h.access_5xx().iter().map(|c| (c.last_at_ms, c.last_at_ms)));
    out.extend(
        h.probes()
            .iter()
            .filter(|p| !p.is(Outcome::Ok) || p.status >= 500)
            .map(|p| (p.at_ms, p.at_ms)),
    );
    out
}

/// Who produced a failing public answer.
fn emitted_by(o: &Observed<'_>, host: Option<&HostView<'_>>) -> Hop {
    if edge_made(o) {
        return Hop::Edge;
    }
    // A hop that reports the error in RFC 9209 words made the answer; not an edge, so a proxy.
    if o.proxy_error().is_some() {
        return Hop::Proxy;
    }
    let fp = o.fingerprint.as_str();
    // A page one of the registry's proxies made.
    if let Some(proxy) = gw502_proxy::by_word(fp) {
        // A proxy page while the origin's proxy of that kind is not running: a proxy in front made it.
        if let Some(h) = host
            && !h.proxy_units().is_empty()
        {
            let running = h.proxy_units().iter().any(|u| {
                let kind = h
                    .proxies()
                    .iter()
                    .find(|p| p.unit == u.name)
                    .map(|p| p.kind.as_str());
                (kind == Some(fp) || proxy.units().contains(&u.name.as_str()))
                    && u.active_state == "active"
            });
            if !running {
                return Hop::Edge;
            }
        }
        return proxy.hop();
    }
    if fp == "app" {
        return Hop::Upstream;
    }
    if let Some(h) = host
        && let Some(relayed) = h
            .access_5xx()
            .into_iter()
            .filter(|c| c.status == o.status)
            .find_map(|c| h.relayed(c))
    {
        return if relayed { Hop::Upstream } else { Hop::Proxy };
    }
    // A Cloudflare-branded page passes the origin's own status through.
    if fp == "cloudflare_branded" {
        return Hop::Proxy;
    }
    if !o.edge.is_empty() {
        Hop::Edge
    } else {
        Hop::Unknown
    }
}

/// Who emitted the status of a proxy's log line: the upstream when the proxy
/// relayed its answer (HAProxy's `----` 503 is the app's own), else the hop
/// the logging proxy is (a cache's own 503 is the cache's).
fn logged_hop(s: &crate::host::Signal) -> Hop {
    if s.causes
        .contains(&gw502_vocab::Cause::UpstreamReturnedError)
    {
        Hop::Upstream
    } else {
        gw502_proxy::by_word(&s.proxy).map_or(Hop::Proxy, |p| p.hop())
    }
}
