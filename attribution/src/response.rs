//! Response-layer rules: the upstream answered, but its bytes broke the
//! proxy's parser (header_too_big, invalid_header, premature_close,
//! connection_reset, invalid_body).
//!
//! These causes are named outright by the proxy's log line or the direct
//! probe's outcome, so confirmation is about agreement: a log line and a probe
//! with the same outcome outrank either alone. An upstream that restarts
//! constantly also closes and resets connections; that case is left to the
//! crash-loop rule, which outranks these when the unit's restarts show it.

use super::Cx;
use super::finding::{Finding, Trigger};
use super::host::HostView;
use super::precedence::Tier;
use super::target::Target;
use super::verdict::Cause;
use gw502_vocab::Outcome;

/// Confirms a response-layer candidate of a trigger.
pub(crate) fn confirm(
    _cx: &Cx<'_>,
    h: &HostView<'_>,
    t: &Trigger,
    cause: Cause,
) -> Option<Finding> {
    let shown = t
        .target
        .as_ref()
        .map(Target::display)
        .unwrap_or_else(|| "the upstream".into());
    let (what, check) = match cause {
        Cause::HeaderTooBig => (
            "sends response headers larger than the proxy's buffers",
            format!(
                "curl -sI {shown} on {} | wc -c; shrink the headers (cookies) or raise proxy_buffer_size",
                h.id()
            ),
        ),
        Cause::InvalidHeader => (
            "sends a malformed or forbidden response header",
            format!(
                "curl -sv {shown} on {} and look for NUL bytes, duplicate or conflicting headers",
                h.id()
            ),
        ),
        Cause::PrematureClose => (
            "closes the connection before a complete response header",
            format!(
                "check the app log of {shown} on {} for requests that die before answering",
                h.id()
            ),
        ),
        Cause::ConnectionReset => (
            "resets the connection",
            format!(
                "check what resets connections at {shown} on {} (app crash, keepalive limits)",
                h.id()
            ),
        ),
        Cause::InvalidBody => (
            "sends a broken body (chunked encoding or length mismatch)",
            format!(
                "curl -sv --raw {shown} on {} and compare Content-Length with the body",
                h.id()
            ),
        ),
        _ => return None,
    };
    if cause == Cause::PrematureClose && probe_saw_reset(h, t) {
        // The probe's reset explains the close: over TLS nginx logs an upstream's
        // RST as "prematurely closed", and a FIN never reads as a reset.
        return None;
    }
    let tier = if t.candidates.len() == 1 {
        Tier::Confirmed
    } else {
        Tier::Circumstantial
    };
    Some(
        Finding::new(cause, tier, t, Vec::new())
            .say(check, format!("{shown} on {} {what}", h.id())),
    )
}

/// Whether the agent's direct probe of the trigger's target was reset.
fn probe_saw_reset(h: &HostView<'_>, t: &Trigger) -> bool {
    let Some(target) = t.target.as_ref() else {
        return false;
    };
    h.probes().iter().any(|p| {
        p.is(Outcome::Reset)
            && p.target
                .as_ref()
                .and_then(Target::from_config)
                .is_some_and(|x| x.same(target))
    })
}
