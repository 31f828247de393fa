//! Dependency-layer rule: the app answered the 5xx itself and its own journal
//! says why, a database, cache or API it needs is failing.
//!
//! Only relayed 5xx (or a direct probe getting the app's 5xx) are candidates,
//! and only lines of non-proxy units (the site's upstream units when known)
//! count, at any priority, so a proxy's own "connection refused" never reads
//! as the app's dependency. The phrases are `gw502_vocab::dependency`'s.
//!
//! The app's journal is where the app runs: the proxy's own host first, then
//! the hosts that run the proxy's upstream targets (an app on another host,
//! found by address as the other layers find it), never any other host.

use super::Cx;
use super::evidence::{Evidence, Source};
use super::finding::{Finding, Trigger};
use super::host::HostView;
use super::precedence::Tier;
use super::target::Target;
use super::verdict::Cause;

/// Whether a journal line names a failing dependency (the shared matcher).
pub(crate) fn names_dependency(message: &str) -> bool {
    gw502_vocab::dependency::names_failing_dependency(message)
}

/// Confirms dependency_failure for a relayed 5xx: from the journal of the
/// relaying host, else of a host that runs one of its upstream targets.
pub(crate) fn confirm(cx: &Cx<'_>, h: &HostView<'_>, t: &Trigger) -> Option<Finding> {
    if let Some(found) = confirm_on(h, t) {
        return Some(found);
    }
    let mut seen = vec![h.id().to_string()];
    for target in h.targets().into_iter().filter_map(Target::from_config) {
        let Some(th) = cx.host_of(h, &target) else {
            continue;
        };
        if seen.iter().any(|id| id == th.id()) {
            continue;
        }
        seen.push(th.id().to_string());
        if let Some(found) = confirm_on(&th, t) {
            return Some(found);
        }
    }
    None
}

/// Confirms dependency_failure from the journal of host `h`.
fn confirm_on(h: &HostView<'_>, t: &Trigger) -> Option<Finding> {
    let proxies: Vec<String> = h.proxy_units().iter().map(|u| u.name.clone()).collect();
    // Any priority: apps write tracebacks to stderr, which journald records at
    // info. Lines of the site's upstream units first; other units only when
    // none of those is known.
    let upstream: Vec<String> = super::chain::upstream_units(h)
        .iter()
        .map(|u| u.name.clone())
        .collect();
    let lines: Vec<_> = h
        .journal("")
        .into_iter()
        .filter(|e| !proxies.contains(&e.unit) && names_dependency(&e.message))
        .filter(|e| upstream.is_empty() || upstream.contains(&e.unit))
        .collect();
    let last = lines.last()?;
    let mut extra = vec![Evidence::new(
        Source::Journal,
        h.id(),
        last.at_ms,
        format!("{}: {}", last.unit, last.message),
    )];
    if lines.len() > 1 {
        extra.push(Evidence::new(
            Source::Journal,
            h.id(),
            last.at_ms,
            format!("{} similar dependency errors in the window", lines.len()),
        ));
    }
    let unit = last.unit.clone();
    Some(
        Finding::new(Cause::DependencyFailure, Tier::Confirmed, t, extra).say(
            format!(
                "journalctl -u {unit} on {}: {}",
                h.id(),
                super::evidence::clean(&last.message, 120)
            ),
            format!(
                "{unit} on {} is up but a dependency it needs is failing",
                h.id()
            ),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_phrases() {
        assert!(names_dependency(
            "psycopg2.OperationalError: could not connect to server: Connection refused"
        ));
        assert!(names_dependency(
            "Error: connect ECONNREFUSED 127.0.0.1:5432"
        ));
        assert!(names_dependency(
            "dial tcp 10.0.0.9:6379: connect: connection refused"
        ));
        assert!(!names_dependency("GET /health 200 3ms"));
        assert!(!names_dependency(
            "connect() failed (111: Connection refused) while connecting to upstream"
        ));
    }
}
