//! Rate-limited warnings for failures that repeat: a broken source or a full
//! disk would otherwise log the same line every interval.
//!
//! A [`LogLimit`] lets the first failure through, then at most one line per
//! period carrying how many were suppressed in between, and reports the
//! recovery once so the caller can log it at `info`. The clock is passed in,
//! so the type is tested without waiting and callers use
//! `tokio::time::Instant` (which `tokio::time::pause()` controls).

use std::time::Duration;

use tokio::time::Instant;

/// What the caller should log for one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Log it; `suppressed` failures were not logged since the last line.
    Log {
        /// Failures swallowed since the last logged one.
        suppressed: u64,
    },
    /// Stay quiet; it is counted for the next line.
    Quiet,
}

/// The logging state of one repeating failure.
#[derive(Debug, Clone)]
pub struct LogLimit {
    period: Duration,
    last_logged: Option<Instant>,
    suppressed: u64,
    failing: bool,
}

impl LogLimit {
    /// At most one line per `period` while failing.
    pub fn new(period: Duration) -> Self {
        LogLimit {
            period,
            last_logged: None,
            suppressed: 0,
            failing: false,
        }
    }

    /// A failure at `now`.
    pub fn failure(&mut self, now: Instant) -> Failure {
        let due = self
            .last_logged
            .is_none_or(|last| !self.failing || now.duration_since(last) >= self.period);
        self.failing = true;
        if due {
            self.last_logged = Some(now);
            Failure::Log {
                suppressed: std::mem::take(&mut self.suppressed),
            }
        } else {
            self.suppressed += 1;
            Failure::Quiet
        }
    }

    /// A success. True when it ends a run of failures (log the recovery);
    /// the next failure is then logged at once.
    pub fn success(&mut self) -> bool {
        self.suppressed = 0;
        std::mem::replace(&mut self.failing, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn first_failure_then_one_line_per_period_with_the_suppressed_count() {
        let start = Instant::now();
        let mut limit = LogLimit::new(5 * MIN);
        assert_eq!(limit.failure(start), Failure::Log { suppressed: 0 });
        for minute in 1..5 {
            assert_eq!(limit.failure(start + minute * MIN), Failure::Quiet);
        }
        assert_eq!(
            limit.failure(start + 5 * MIN),
            Failure::Log { suppressed: 4 }
        );
        assert_eq!(limit.failure(start + 6 * MIN), Failure::Quiet);
    }

    #[test]
    fn recovery_is_reported_once_and_resets_the_limit() {
        let start = Instant::now();
        let mut limit = LogLimit::new(5 * MIN);
        assert!(!limit.success(), "never failed: nothing recovered");
        limit.failure(start);
        limit.failure(start + MIN);
        assert!(limit.success());
        assert!(!limit.success());
        // A new failure right after recovering is news again.
        assert_eq!(
            limit.failure(start + 2 * MIN),
            Failure::Log { suppressed: 0 }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn works_on_the_paused_tokio_clock() {
        let mut limit = LogLimit::new(5 * MIN);
        assert!(matches!(limit.failure(Instant::now()), Failure::Log { .. }));
        tokio::time::advance(4 * MIN).await;
        assert_eq!(limit.failure(Instant::now()), Failure::Quiet);
        tokio::time::advance(MIN).await;
        assert_eq!(
            limit.failure(Instant::now()),
            Failure::Log { suppressed: 1 }
        );
    }
}
