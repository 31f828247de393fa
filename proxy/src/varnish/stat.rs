//! `varnishstat -1 -j`: the few counters that tell the agent whether
//! Varnish's log and backend list are worth reading this report. Reading the
//! shared-memory log (`varnishlog -d`) walks the whole ring, so its cost grows
//! with the ring's fill (up to `vsl_space`, 80 MB by default); the counters
//! are a constant-cost read. A fetch that failed for any reason moves
//! `MAIN.fetch_failed` or one of the `MAIN.backend_*` connection counters; a
//! probe result moves the backend's `VBE.<vcl>.<name>.happy` bitmap.

use std::collections::BTreeMap;

/// The counters whose sum rises with every failed fetch.
pub const FAILURE_COUNTERS: [&str; 4] = [
    "MAIN.fetch_failed",
    "MAIN.backend_fail",
    "MAIN.backend_unhealthy",
    "MAIN.backend_busy",
];

/// The `-f` field globs the agent asks for (failures, backend count, probes).
pub const FIELDS: [&str; 6] = [
    "MAIN.fetch_failed",
    "MAIN.backend_fail",
    "MAIN.backend_unhealthy",
    "MAIN.backend_busy",
    "MAIN.n_backend",
    "VBE.*.happy",
];

/// What one `varnishstat -1 -j` read says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VarnishCounters {
    /// The sum of [`FAILURE_COUNTERS`].
    pub failures: u64,
    /// `MAIN.n_backend`.
    pub backends: u64,
    /// Per backend (`boot.app`), its probe bitmap (`happy`), newest probe in bit 0.
    pub happy: BTreeMap<String, u64>,
}

impl VarnishCounters {
    /// Whether a fetch failed between `earlier` and `self`; a drop counts
    /// too (varnishd restarted and its counters began again).
    pub fn failed_since(&self, earlier: &Self) -> bool {
        self.failures != earlier.failures
    }

    /// Whether a probe result, the backend set or a failure changed what
    /// `backend.list` would say since `earlier`.
    pub fn health_changed_since(&self, earlier: &Self) -> bool {
        self.failed_since(earlier)
            || self.backends != earlier.backends
            || self.happy != earlier.happy
    }
}

/// Reads `varnishstat -1 -j` (7.x: `{"version": 1, "counters": {NAME:
/// {"value": N}}}`; 6.x puts the counters at the top level). `None` when the
/// text is not that shape or names none of the failure counters.
pub fn parse_counters_json(text: &str) -> Option<VarnishCounters> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let table = value
        .get("counters")
        .and_then(serde_json::Value::as_object)
        .or_else(|| value.as_object())?;
    let number = |name: &str| {
        table
            .get(name)
            .and_then(|c| c.get("value"))
            .and_then(serde_json::Value::as_u64)
    };
    let mut out = VarnishCounters::default();
    let mut seen = false;
    for name in FAILURE_COUNTERS {
        if let Some(n) = number(name) {
            out.failures = out.failures.wrapping_add(n);
            seen = true;
        }
    }
    if !seen {
        return None;
    }
    out.backends = number("MAIN.n_backend").unwrap_or(0);
    for name in table.keys() {
        if let Some(backend) = name
            .strip_prefix("VBE.")
            .and_then(|n| n.strip_suffix(".happy"))
            && let Some(bits) = number(name)
        {
            out.happy.insert(backend.to_string(), bits);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = include_str!("../../fixtures/varnish/varnishstat-before.json");
    const AFTER: &str = include_str!("../../fixtures/varnish/varnishstat-after.json");

    #[test]
    fn three_failed_fetches_and_the_probes_are_read() {
        let before = parse_counters_json(BEFORE).unwrap();
        let after = parse_counters_json(AFTER).unwrap();
        assert_eq!(before.failures, 0);
        // One fetch not attempted (sick backend), two refused connections:
        // backend_unhealthy 1 + backend_fail 2 + fetch_failed 3.
        assert_eq!(after.failures, 6);
        assert_eq!(after.backends, 3);
        assert_eq!(
            after.happy.keys().collect::<Vec<_>>(),
            ["boot.dead", "boot.live", "boot.refused"]
        );
        assert_eq!(after.happy["boot.live"], 255);
        assert!(after.failed_since(&before));
        assert!(!after.failed_since(&after));
        assert!(after.health_changed_since(&before));
        assert!(!after.health_changed_since(&after.clone()));
    }

    #[test]
    fn a_probe_alone_changes_health_not_failures() {
        let before = parse_counters_json(BEFORE).unwrap();
        let mut probed = before.clone();
        probed.happy.insert("boot.live".into(), 255);
        assert!(!probed.failed_since(&before));
        assert!(probed.health_changed_since(&before));
        let mut restarted = before.clone();
        restarted.failures = 0;
        let mut earlier = before;
        earlier.failures = 9;
        assert!(restarted.failed_since(&earlier));
    }

    #[test]
    fn other_shapes_are_none() {
        for junk in [
            "",
            "{",
            "[]",
            "{\"counters\": {}}",
            "{\"MAIN.uptime\": {\"value\": 3}}",
        ] {
            assert!(parse_counters_json(junk).is_none(), "{junk}");
        }
        let old = "{\"timestamp\": \"x\", \"MAIN.fetch_failed\": {\"value\": 4}}";
        assert_eq!(parse_counters_json(old).unwrap().failures, 4);
    }
}
