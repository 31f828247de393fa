//! The time base of a scenario. Builders write every time as an offset from
//! [`Clock::now`] or from [`Clock::t0`], the moment the failure started, so
//! the same scenario can be judged at a fixed instant (the attribution table)
//! or sent to a collector at the wall clock (the integration tests).

/// "Now" and the start of the failure, in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// The moment the evidence is judged or the report is built.
    pub now: i64,
    /// When the failure started: the first log line of a failing signal.
    pub t0: i64,
}

/// The attribution table's fixed "now": 2024-05-01 10:00:00 UTC.
pub const FIXED_NOW: i64 = 1_714_557_600_000;

impl Clock {
    /// The table's fixed instant, with a failure two minutes old.
    pub const fn fixed() -> Clock {
        Clock {
            now: FIXED_NOW,
            t0: FIXED_NOW - 120_000,
        }
    }

    /// The wall clock, with a failure one minute old, so a collector's
    /// evidence window always holds the report's times.
    pub fn live() -> Clock {
        let now = gw502_vocab::clock::now_ms();
        Clock {
            now,
            t0: now - 60_000,
        }
    }

    /// `ms` milliseconds before now.
    pub fn ago(&self, ms: i64) -> i64 {
        self.now - ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_starts_before_now() {
        for c in [Clock::fixed(), Clock::live()] {
            assert!(c.t0 < c.now);
            assert_eq!(c.ago(1_000), c.now - 1_000);
        }
        assert_ne!(Clock::live().now, FIXED_NOW);
    }
}
