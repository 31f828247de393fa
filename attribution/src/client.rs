//! Client-layer rule: exactly one vantage point sees errors while at least
//! two others get good answers, and the origin logs nothing for the site.
//! Then the failure lives on that vantage's network path, not in the chain.

use gw502_vocab::Outcome;

use super::Cx;
use super::edge::evidence;
use super::finding::Finding;
use super::precedence::{Support, Tier};
use super::verdict::{Cause, Hop};

/// A client_path finding, when the vantages disagree and the origin is quiet.
pub(crate) fn rule(cx: &Cx<'_>) -> Option<Finding> {
    let bad = cx.signal.bad_vantages();
    let good = cx.signal.good_vantages();
    let [only] = bad.as_slice() else { return None };
    if good.len() < 2 {
        return None;
    }
    let origin_errors = cx
        .hosts
        .iter()
        .any(|h| !h.signals().is_empty() || !h.access_5xx().is_empty());
    if origin_errors {
        return None;
    }
    let mut ev = vec![evidence(only)];
    ev.extend(good.iter().take(3).map(|o| evidence(o)));
    let emitted = if only.is(Outcome::Ok) {
        None
    } else {
        Some(Hop::Unknown)
    };
    Some(Finding {
        cause: Cause::ClientPath,
        tier: Tier::Inferred,
        support: Support::default(),
        status: None,
        emitted_by: emitted,
        evidence: ev,
        next_check: format!(
            "traceroute/curl -v {} from {}; {} other vantages get good answers",
            cx.ev.site.url,
            only.vantage,
            good.len()
        ),
        summary: format!("only {} sees errors from {}", only.vantage, cx.site.host),
        missing: Vec::new(),
        first_ms: only.at_ms,
    })
}
