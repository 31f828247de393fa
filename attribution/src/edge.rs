//! Edge-layer rules and the public probe as evidence.
//!
//! An error the edge made itself (Cloudflare 52x/530 or `cf-error-type`,
//! CloudFront `Error from cloudfront` result types, ALB, GCP `statusDetails`,
//! Vercel `x-vercel-error`, Azure) is the edge's fault only when the origin
//! answers direct probes fine: then 525/526 and TLS result types are
//! edge_tls_to_origin, 530/1016 and DNS result types edge_origin_dns, the
//! rest edge_generated. When the origin probe fails too, the fault is behind
//! the edge and the host rules decide (the verdict keeps `emitted_by: edge`).
//! Without any origin probe, the edge verdict is only a low-confidence
//! fallback after the host rules found nothing, except for origin DNS (1016),
//! and TLS to the origin (525/526), which the edge reports unambiguously.
//!
//! When the origin's agent reports, the edge's own words become a trigger on
//! the serving host ([`public_trigger`]) whose candidates the layer rules
//! confirm like any other: Cloudflare 521 names the proxy, 522 and 523 the
//! path to the origin (firewall_blocked), 524 a read timeout, 520 an empty or
//! oversized response; an RFC 9209 `proxy-status` error names its type's
//! causes.

use gw502_vocab::Outcome;

use super::Cx;
use super::evidence::{Evidence, Source};
use super::finding::{Finding, Trigger};
use super::host::HostView;
use super::precedence::{Support, Tier};
use super::signal::{edge_made, is_failure};
use super::target::Target;
use super::verdict::Cause;
use super::wire::{self, Observed};

/// An evidence item for a probe observation.
pub(crate) fn evidence(o: &Observed<'_>) -> Evidence {
    let host = o.vantage.strip_prefix("agent/").unwrap_or("");
    let mut detail = format!(
        "{} {} from {}: {} {}",
        o.target, o.url, o.vantage, o.raw.outcome, o.status
    );
    for (label, value) in [
        ("fingerprint", &o.fingerprint),
        ("edge", &o.edge),
        ("edge_error", &o.edge_error),
        ("detail", &o.detail),
    ] {
        if !value.is_empty() {
            detail.push_str(&format!(" {label}={value}"));
        }
    }
    if let Some(m) = o.proxy_error() {
        detail.push_str(&format!(" {}", wire::proxy_status_text(&m)));
    }
    Evidence::new(Source::EdgeProbe, host, o.at_ms, detail)
}

fn edge_cause(o: &Observed<'_>) -> Cause {
    let code = o.edge_error.to_ascii_lowercase();
    if o.status == 525
        || o.status == 526
        || code.contains("ssl")
        || code.contains("tls")
        || code.contains("certificate")
    {
        Cause::EdgeTlsToOrigin
    } else if o.status == 530 && code.contains("1016")
        || code.contains("dns")
        || code.contains("1016")
    {
        Cause::EdgeOriginDns
    } else {
        Cause::EdgeGenerated
    }
}

/// The edge finding. `strict`: only when origin probes show a healthy origin
/// (or the edge names origin DNS); otherwise a fallback when nothing else fits.
pub(crate) fn rule(cx: &Cx<'_>, strict: bool) -> Option<Finding> {
    let o = cx.signal.public_fail.filter(|o| edge_made(o))?;
    let cause = edge_cause(o);
    let origins = cx.origin_probes();
    let healthy = !origins.is_empty() && origins.iter().all(|p| !is_failure(p));
    let mut ev = vec![evidence(o)];
    ev.extend(origins.iter().take(3).map(|p| evidence(p)));
    let mut missing = Vec::new();
    let tier = if healthy {
        Tier::Confirmed
    } else if !origins.is_empty() {
        return None;
    } else if matches!(cause, Cause::EdgeOriginDns | Cause::EdgeTlsToOrigin) {
        missing.push(format!("no direct probe of the origin of {}", cx.site.host));
        Tier::Inferred
    } else if strict {
        return None;
    } else {
        missing.push(format!(
            "no direct probe of the origin of {}; origin hosts show no errors",
            cx.site.host
        ));
        Tier::Circumstantial
    };
    let vendor = if o.edge.is_empty() {
        o.fingerprint.as_str()
    } else {
        o.edge.as_str()
    };
    let (check, what) = match cause {
        Cause::EdgeTlsToOrigin => (
            "check the edge's origin TLS settings (SSL mode, origin certificate, SNI)",
            "cannot complete TLS to the origin",
        ),
        Cause::EdgeOriginDns => (
            "check the origin host name configured at the edge and its DNS record",
            "cannot resolve the origin name",
        ),
        _ => (
            "open a ticket with the edge provider with the ray/request id; the origin answers direct probes",
            "made the error itself",
        ),
    };
    Some(Finding {
        cause,
        tier,
        support: Support::default(),
        status: None,
        emitted_by: None,
        evidence: ev,
        next_check: format!("{check} ({vendor} {} {})", o.status, o.edge_error)
            .trim_end()
            .replace(" )", ")"),
        summary: format!("the edge ({vendor}) in front of {} {what}", cx.site.host),
        missing,
        first_ms: cx.signal.first_failure_ms,
    })
}

/// What an edge's own error code says about the origin, as candidates for
/// the host rules: Cloudflare's 52x codes and CloudFront's result types.
/// 525/526 and origin DNS are the edge's own layer and stay with [`rule`].
fn origin_candidates(o: &Observed<'_>) -> Vec<Cause> {
    if !edge_made(o) {
        return Vec::new();
    }
    match (o.edge.as_str(), o.status, o.edge_error.as_str()) {
        // Web server is down: nothing accepts on the origin's port.
        ("cloudflare", 521, _) => vec![Cause::ProxyDown],
        // Refused or timed out: a stopped proxy, else the path drops it.
        ("cloudfront", _, "OriginConnectError") => vec![Cause::ProxyDown, Cause::FirewallBlocked],
        // Connection timed out (522), origin unreachable (523).
        ("cloudflare", 522 | 523, _) => vec![Cause::FirewallBlocked],
        // Connected, but no HTTP response before the edge's read timeout.
        ("cloudflare", 524, _) => vec![Cause::Timeout],
        // Empty, reset or oversized (headers over the edge's limit) response.
        ("cloudflare", 520, _) | ("cloudfront", _, "OriginReadError") => {
            vec![Cause::PrematureClose, Cause::HeaderTooBig]
        }
        ("cloudfront", _, "OriginHeaderTooBigError") => vec![Cause::HeaderTooBig],
        ("cloudfront", _, "OriginInvalidResponseError") => {
            vec![Cause::InvalidHeader, Cause::ProtocolMismatch]
        }
        // Fastly's reasons (`503 first byte timeout`, ...), Akamai's headings.
        ("fastly" | "akamai", _, reason) => {
            let r = reason.to_ascii_lowercase();
            if r.contains("first byte timeout") || r.contains("gateway timeout") {
                vec![Cause::Timeout]
            } else if r.contains("connection refused") {
                vec![Cause::ProxyDown]
            } else if r.contains("connection timed out") || r.contains("connect timeout") {
                vec![Cause::FirewallBlocked]
            } else if r.contains("zero size object") || r.contains("backend read error") {
                vec![Cause::PrematureClose]
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    }
}

/// The origin's front on `h` as a target (its first address, else loopback,
/// at the site's port): where an edge's connection to the origin goes.
fn front_of(cx: &Cx<'_>, h: &HostView<'_>) -> Option<Target> {
    let addr =
        h.ev.state
            .addresses
            .iter()
            .map(|a| a.split('/').next().unwrap_or(a))
            .find(|a| {
                a.parse::<std::net::Ipv4Addr>()
                    .is_ok_and(|ip| !ip.is_loopback())
            })
            .unwrap_or("127.0.0.1");
    Target::parse(&format!("{addr}:{}", cx.site.port))
}

/// The public failure as a trigger on the only serving host: refused at the
/// public address points at the proxy; an app-made 5xx at the app; a
/// `proxy-status` error at its type's causes; an edge's own code at what it
/// says about the origin.
pub(crate) fn public_trigger(cx: &Cx<'_>, h: &HostView<'_>) -> Option<Trigger> {
    let o = cx.signal.public_fail?;
    let reported = o.proxy_error();
    let mut target = None;
    let mut text = o.detail.clone();
    let candidates = match o.outcome {
        _ if reported.is_some() => {
            let m = reported.as_ref()?;
            target = m.next_hop.as_deref().and_then(Target::parse);
            text = m.details.clone().unwrap_or_default();
            wire::proxy_status_causes(m)
        }
        Some(Outcome::Refused) => vec![Cause::ProxyDown],
        Some(Outcome::Ok) if o.fingerprint == "app" => {
            vec![Cause::DependencyFailure, Cause::UpstreamReturnedError]
        }
        Some(Outcome::Ok) => {
            let c = origin_candidates(o);
            if c.contains(&Cause::FirewallBlocked) {
                target = front_of(cx, h);
            }
            c
        }
        _ => Vec::new(),
    };
    if candidates.is_empty() && (!h.signals().is_empty() || !h.access_5xx().is_empty()) {
        return None;
    }
    Some(Trigger {
        candidates,
        target,
        status: u16::try_from(o.status).unwrap_or(0),
        first_ms: cx.signal.first_failure_ms,
        source: Source::EdgeProbe,
        evidence: evidence(o),
        text,
        outcome: o.outcome,
    })
}
