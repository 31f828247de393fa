//! The [`Verdict`] the engine returns, in the words of `gw502-vocab`, and its
//! conversion into the `gw502.v1.Verdict` message without any renaming.

pub use gw502_vocab::{Cause, Hop, Layer, Owner, UnknownWord};

use super::evidence::Evidence;

/// The "last deploy" answer: a change on the affected host shortly before the failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentChange {
    /// Host the change happened on.
    pub host: String,
    /// unit_start, unit_stop, unit_restart, unit_reload or config_change.
    pub kind: String,
    /// The unit name or the proxy config that changed.
    pub subject: String,
    /// When it happened (epoch ms).
    pub at_ms: i64,
}

/// One attribution of a site's failure to a layer and cause.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The host at fault, when the fault is on one origin host.
    pub host: Option<String>,
    /// The hop that produced the status the visitor saw.
    pub emitted_by: Hop,
    /// The hop at fault; always `cause.layer()`.
    pub layer: Layer,
    /// The cause in TAXONOMY words.
    pub cause: Cause,
    /// The status that was observed; 0 when no HTTP answer came at all.
    pub status: u16,
    /// 0.0 to 1.0.
    pub confidence: f64,
    /// The one thing an operator should look at next.
    pub next_check: String,
    /// Escalation target (layer default).
    pub owner: Owner,
    /// A unit or config change shortly before the failure.
    pub recent_change: Option<RecentChange>,
    /// The items the rules used.
    pub evidence: Vec<Evidence>,
    /// One sentence for people.
    pub summary: String,
    /// What evidence was missing or unavailable.
    pub missing: Vec<String>,
}

impl From<&RecentChange> for gw502_proto::v1::RecentChange {
    fn from(c: &RecentChange) -> Self {
        Self {
            host: c.host.clone(),
            kind: c.kind.clone(),
            subject: c.subject.clone(),
            at_ms: c.at_ms,
        }
    }
}

impl From<&Verdict> for gw502_proto::v1::Verdict {
    fn from(v: &Verdict) -> Self {
        Self {
            emitted_by: v.emitted_by.as_str().to_string(),
            layer: v.layer.as_str().to_string(),
            cause: v.cause.as_str().to_string(),
            status: u32::from(v.status),
            confidence: v.confidence,
            next_check: v.next_check.clone(),
            owner: v.owner.as_str().to_string(),
            recent_change: v.recent_change.as_ref().map(Into::into),
            evidence: v.evidence.iter().map(Into::into).collect(),
            summary: v.summary.clone(),
            missing: v.missing.clone(),
        }
    }
}
