//! recent_change: the "last deploy" question. The latest unit start, stop,
//! restart or reload, unit state change, or proxy config change on the
//! affected host within 15 minutes before the failure started (plus a minute
//! of slack for report timing).

use super::host::HostView;
use super::verdict::RecentChange;

/// How far before the first failure a change still counts.
const LOOKBACK_MS: i64 = 15 * 60_000;
/// Slack after the first failure, for clock and reporting skew.
const SLACK_MS: i64 = 60_000;

/// The latest change on the host shortly before `first_failure_ms`.
pub(crate) fn recent(h: &HostView<'_>, first_failure_ms: i64) -> Option<RecentChange> {
    let window = |at: i64| {
        at > 0 && at >= first_failure_ms - LOOKBACK_MS && at <= first_failure_ms + SLACK_MS
    };
    let mut changes: Vec<RecentChange> = Vec::new();
    let change = |kind: &str, subject: &str, at_ms: i64| RecentChange {
        host: h.id().to_string(),
        kind: kind.to_string(),
        subject: subject.to_string(),
        at_ms,
    };
    for e in h.events("") {
        let kind = match e.kind.as_str() {
            "start" => "unit_start",
            "stop" => "unit_stop",
            "restart" => "unit_restart",
            "reload" => "unit_reload",
            _ => continue,
        };
        if window(e.at_ms) {
            changes.push(change(kind, &e.unit, e.at_ms));
        }
    }
    let watched = |roles: &[String]| roles.iter().any(|r| r == "proxy" || r == "upstream");
    for u in h.units().iter().filter(|u| watched(&u.roles)) {
        let kind = match u.active_state.as_str() {
            "active" if u.active_enter_ms > 0 => ("unit_start", u.active_enter_ms),
            "inactive" | "failed" if u.inactive_enter_ms > 0 => ("unit_stop", u.inactive_enter_ms),
            _ => continue,
        };
        if window(kind.1) && !changes.iter().any(|c| c.subject == u.name) {
            changes.push(change(kind.0, &u.name, kind.1));
        }
    }
    for p in h.proxies() {
        if window(p.changed_at_ms) {
            let subject = if p.unit.is_empty() { &p.kind } else { &p.unit };
            changes.push(change("config_change", subject, p.changed_at_ms));
        }
    }
    changes.into_iter().max_by_key(|c| c.at_ms)
}
