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
//! which the edge reports unambiguously.

use gw502_vocab::Outcome;

use super::Cx;
use super::evidence::{Evidence, Source};
use super::finding::{Finding, Trigger};
use super::host::HostView;
use super::precedence::{Support, Tier};
use super::signal::{edge_made, is_failure};
use super::verdict::Cause;
use super::wire::Observed;

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
    } else if cause == Cause::EdgeOriginDns {
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

/// The public failure as a trigger on the only serving host: refused at the
/// public address points at the proxy; an app-made 5xx at the app.
pub(crate) fn public_trigger(cx: &Cx<'_>, h: &HostView<'_>) -> Option<Trigger> {
    let o = cx.signal.public_fail?;
    let candidates = match o.outcome {
        Some(Outcome::Refused) => vec![Cause::ProxyDown],
        Some(Outcome::Ok) if o.fingerprint == "app" => {
            vec![Cause::DependencyFailure, Cause::UpstreamReturnedError]
        }
        Some(Outcome::Ok) if o.edge == "cloudflare" && o.status == 521 => vec![Cause::ProxyDown],
        _ => Vec::new(),
    };
    if candidates.is_empty() && (!h.signals().is_empty() || !h.access_5xx().is_empty()) {
        return None;
    }
    Some(Trigger {
        candidates,
        target: None,
        status: u16::try_from(o.status).unwrap_or(0),
        first_ms: cx.signal.first_failure_ms,
        source: Source::EdgeProbe,
        evidence: evidence(o),
        text: o.detail.clone(),
        outcome: o.outcome,
    })
}
