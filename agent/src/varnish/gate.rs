//! When the Varnish source reads what. `varnishlog -d` walks the whole
//! shared-memory ring, so its cost grows with the ring's fill (measured on
//! Varnish 7.1: 2-4 ms CPU with a few thousand requests in it, 40-70 ms with
//! the default 80 MB full); `varnishstat` reads a few counters at a constant
//! 1-2 ms. So each report reads the counters first and the log only when a
//! fetch failed since the last log read (or the counters cannot be read, or
//! [`GateSettings::log_recheck`] passed). The first failures after a quiet
//! report are read at once; while fetches keep failing report after report,
//! the ring is read again at most every [`GateSettings::log_busy_every`]
//! (each read still brings every failure since the last). And
//! `varnishadm backend.list` only
//! when a probe result, the backend set or a failure moved, or its last
//! answer is older than [`GateSettings::backends_refresh`]; otherwise the
//! last list is reported again.

use std::time::Duration;

use gw502_proto::v1::BackendHealth;
use gw502_proxy::varnish::VarnishCounters;

/// How long a skipped read may be put off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateSettings {
    /// Read the log at least this often even when no counter moved.
    pub log_recheck: Duration,
    /// While fetches keep failing, read the log at most this often.
    pub log_busy_every: Duration,
    /// Read `backend.list` at least this often.
    pub backends_refresh: Duration,
}

impl Default for GateSettings {
    fn default() -> Self {
        Self {
            log_recheck: Duration::from_secs(300),
            log_busy_every: Duration::from_secs(30),
            backends_refresh: Duration::from_secs(60),
        }
    }
}

/// What to read this report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Dump the log ring.
    pub log: bool,
    /// Ask `varnishadm backend.list -j`.
    pub backends: bool,
}

/// What was read last, and the counters at that moment.
#[derive(Debug, Default)]
pub struct Gate {
    settings: GateSettings,
    /// Counters and time (epoch ms) of the last successful log read.
    log: Option<(Option<VarnishCounters>, i64)>,
    /// Counters, time and answer of the last successful `backend.list`.
    backends: Option<(Option<VarnishCounters>, i64, Vec<BackendHealth>)>,
    /// The counters of the previous report, read or not.
    previous: Option<VarnishCounters>,
    /// Whether a fetch failed between the two reports before this one.
    failing: bool,
    /// How many times the log and the backend list were read (for tests and logs).
    pub(super) reads: (u64, u64),
}

impl Gate {
    /// A gate with these bounds.
    pub fn new(settings: GateSettings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    /// What to read now, given the counters just read (`None`: unreadable,
    /// so everything is read as before there was a gate).
    pub fn plan(&mut self, now: Option<&VarnishCounters>, now_ms: i64) -> Plan {
        let older = |at: i64, bound: Duration| {
            now_ms.saturating_sub(at) >= i64::try_from(bound.as_millis()).unwrap_or(i64::MAX)
        };
        // Failing in the previous report too: an ongoing failure.
        let ongoing = self.failing;
        self.failing = match (&self.previous, now) {
            (Some(previous), Some(now)) => now.failed_since(previous),
            _ => false,
        };
        let log = match (&self.log, now) {
            (Some((Some(then), at)), Some(now)) => {
                now.failed_since(then) && (!ongoing || older(*at, self.settings.log_busy_every))
                    || older(*at, self.settings.log_recheck)
            }
            _ => true,
        };
        self.previous = now.cloned();
        let backends = match (&self.backends, now) {
            (Some((Some(then), at, _)), Some(now)) => {
                now.health_changed_since(then) || older(*at, self.settings.backends_refresh)
            }
            _ => true,
        };
        Plan { log, backends }
    }

    /// The log was read successfully at `at_ms`, with `counters` read before it.
    pub fn log_read(&mut self, counters: Option<VarnishCounters>, at_ms: i64) {
        self.log = Some((counters, at_ms));
        self.reads.0 += 1;
    }

    /// `backend.list` answered `list` at `at_ms`, with `counters` read before it.
    pub fn backends_read(
        &mut self,
        counters: Option<VarnishCounters>,
        at_ms: i64,
        list: Vec<BackendHealth>,
    ) {
        self.backends = Some((counters, at_ms, list));
        self.reads.1 += 1;
    }

    /// The last `backend.list` answer, if any.
    pub fn last_backends(&self) -> Option<&[BackendHealth]> {
        self.backends.as_ref().map(|(_, _, list)| list.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(failures: u64, live: u64) -> VarnishCounters {
        VarnishCounters {
            failures,
            backends: 1,
            happy: [("boot.live".to_string(), live)].into(),
        }
    }

    #[test]
    fn everything_is_read_first_and_when_the_counters_are_unreadable() {
        let mut gate = Gate::default();
        let all = Plan {
            log: true,
            backends: true,
        };
        assert_eq!(gate.plan(Some(&counters(0, 1)), 0), all);
        gate.log_read(None, 0);
        gate.backends_read(None, 0, Vec::new());
        // Read without counters: the next report cannot tell, so it reads.
        assert_eq!(gate.plan(Some(&counters(0, 1)), 1_000), all);
        gate.log_read(Some(counters(0, 1)), 1_000);
        gate.backends_read(Some(counters(0, 1)), 1_000, Vec::new());
        assert_eq!(gate.plan(None, 2_000), all);
        assert_eq!(gate.reads, (2, 2));
    }

    #[test]
    fn quiet_counters_skip_both_until_their_bounds() {
        let mut gate = Gate::new(GateSettings::default());
        let quiet = counters(5, u64::MAX);
        gate.log_read(Some(quiet.clone()), 0);
        gate.backends_read(Some(quiet.clone()), 0, vec![BackendHealth::default()]);
        let none = Plan {
            log: false,
            backends: false,
        };
        assert_eq!(gate.plan(Some(&quiet), 10_000), none);
        assert_eq!(gate.last_backends().map(<[_]>::len), Some(1));
        assert_eq!(
            gate.plan(Some(&quiet), 60_000),
            Plan {
                log: false,
                backends: true
            }
        );
        assert_eq!(
            gate.plan(Some(&quiet), 300_000),
            Plan {
                log: true,
                backends: true
            }
        );
    }

    #[test]
    fn failures_that_go_on_are_read_at_most_every_busy_bound() {
        let mut gate = Gate::default();
        gate.plan(Some(&counters(5, 3)), 0);
        gate.log_read(Some(counters(5, 3)), 0);
        // The first failure after a quiet report: read at once.
        assert!(gate.plan(Some(&counters(6, 3)), 10_000).log);
        gate.log_read(Some(counters(6, 3)), 10_000);
        // Quiet again, then failing: at once again.
        assert!(!gate.plan(Some(&counters(6, 3)), 20_000).log);
        assert!(gate.plan(Some(&counters(7, 3)), 30_000).log);
        gate.log_read(Some(counters(7, 3)), 30_000);
        // Failing report after report: every 30 s, not every report.
        assert!(!gate.plan(Some(&counters(8, 3)), 40_000).log);
        assert!(!gate.plan(Some(&counters(9, 3)), 50_000).log);
        assert!(gate.plan(Some(&counters(10, 3)), 60_000).log);
    }

    #[test]
    fn a_failure_reads_both_and_a_probe_only_the_backends() {
        let mut gate = Gate::default();
        gate.log_read(Some(counters(5, 3)), 0);
        gate.backends_read(Some(counters(5, 3)), 0, Vec::new());
        assert_eq!(
            gate.plan(Some(&counters(6, 3)), 10_000),
            Plan {
                log: true,
                backends: true
            }
        );
        assert_eq!(
            gate.plan(Some(&counters(5, 7)), 10_000),
            Plan {
                log: false,
                backends: true
            }
        );
        // Counters that start again after a varnishd restart count as moved.
        let mut restarted = Gate::default();
        restarted.log_read(Some(counters(5, 3)), 0);
        assert!(restarted.plan(Some(&counters(0, 3)), 10_000).log);
    }
}
