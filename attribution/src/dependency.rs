//! Dependency-layer rule: the app answered the 5xx itself and its own journal
//! says why, a database, cache or API it needs is failing.
//!
//! Only relayed 5xx (or a direct probe getting the app's 5xx) are candidates,
//! and only error-level lines of non-proxy units count, so a proxy's own
//! "connection refused" never reads as the app's dependency.

use super::Cx;
use super::evidence::{Evidence, Source};
use super::finding::{Finding, Trigger};
use super::host::HostView;
use super::precedence::Tier;
use super::verdict::Cause;

/// Phrases apps and drivers log when a dependency fails (lowercase).
const PATTERNS: &[&str] = &[
    "sqlstate",
    "could not connect to server",
    "connection to server at",
    "econnrefused",
    "etimedout",
    "redis",
    "memcache",
    "database is locked",
    "too many connections",
    "connection pool",
    "operationalerror",
    "pg::connectionbad",
    "getaddrinfo",
    "upstream api",
    "bad gateway from",
];

/// Ports of common dependencies, for "connection refused ...:5432" style lines.
const PORTS: &[&str] = &[
    ":5432", ":3306", ":6379", ":11211", ":27017", ":9200", ":5672",
];

/// Whether a journal line names a failing dependency.
pub(crate) fn names_dependency(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    PATTERNS.iter().any(|p| m.contains(p))
        || ((m.contains("refused") || m.contains("timed out") || m.contains("timeout"))
            && PORTS.iter().any(|p| m.contains(p)))
}

/// Confirms dependency_failure for a relayed 5xx.
pub(crate) fn confirm(_cx: &Cx<'_>, h: &HostView<'_>, t: &Trigger) -> Option<Finding> {
    let proxies: Vec<String> = h.proxy_units().iter().map(|u| u.name.clone()).collect();
    let lines: Vec<_> = h
        .journal("")
        .into_iter()
        .filter(|e| !proxies.contains(&e.unit) && e.priority <= 4 && names_dependency(&e.message))
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
