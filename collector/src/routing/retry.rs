//! Retries of one delivery: exponential backoff with jitter, capped, up to a
//! maximum number of attempts, with every attempt written to the delivery log.
//! The sending itself is a closure, so the loop is tested with a paused clock
//! and no network.

use gw502_vocab::clock::now_ms;
use std::future::Future;
use std::time::Duration;

use super::log::{DeliveryAttempt, DeliveryLog, DeliveryState};

/// How often and how patiently a delivery is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, at least 1.
    pub max_attempts: u32,
    /// The base delay after the first failed try; doubled after each further one.
    pub backoff: Duration,
    /// The longest base delay.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// The delay after failed try number `attempt` (1-based). `jitter` in
    /// [0, 1) picks a point in the upper half of the base delay ("equal
    /// jitter"): the delay is between base/2 and base.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        let base = self
            .backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff);
        let half = base / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// The result of one try, as the sender classifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Accepted (2xx).
    Delivered { status: u16 },
    /// Failed in a way that may pass on a later try.
    Retry { status: Option<u16>, error: String },
    /// Failed in a way no retry will fix (4xx other than 408/429).
    Permanent { status: Option<u16>, error: String },
}

impl Outcome {
    /// Classifies an HTTP status: 2xx delivered; 4xx except 408 and 429
    /// permanent; everything else retried.
    pub(crate) fn from_status(status: u16) -> Self {
        match status {
            200..=299 => Outcome::Delivered { status },
            408 | 429 => Outcome::Retry {
                status: Some(status),
                error: format!("receiver answered {status}"),
            },
            400..=499 => Outcome::Permanent {
                status: Some(status),
                error: format!("receiver answered {status}"),
            },
            _ => Outcome::Retry {
                status: Some(status),
                error: format!("receiver answered {status}"),
            },
        }
    }
}

/// Tries `send` until it delivers, fails permanently or runs out of attempts,
/// sleeping the policy's backoff between tries. Each try is recorded under
/// `delivery_id` when there is one. Returns the final state.
pub(crate) async fn deliver<F, Fut>(
    policy: &RetryPolicy,
    log: &dyn DeliveryLog,
    delivery_id: Option<i64>,
    mut send: F,
) -> DeliveryState
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let max_attempts = policy.max_attempts.max(1);
    let mut attempt = 1;
    loop {
        let outcome = send(attempt).await;
        let (state, http_status, error) = match outcome {
            Outcome::Delivered { status } => (DeliveryState::Delivered, Some(status), None),
            Outcome::Permanent { status, error } => (DeliveryState::Failed, status, Some(error)),
            Outcome::Retry { status, error } if attempt >= max_attempts => {
                (DeliveryState::Failed, status, Some(error))
            }
            Outcome::Retry { status, error } => (DeliveryState::Pending, status, Some(error)),
        };
        if let Some(id) = delivery_id {
            let record = DeliveryAttempt {
                attempt,
                state,
                http_status,
                error: error.clone(),
                at_ms: now_ms(),
            };
            if let Err(e) = log.attempt(id, record).await {
                tracing::warn!(delivery_id = id, error = %e, "cannot record delivery attempt");
            }
        }
        if state != DeliveryState::Pending {
            return state;
        }
        let delay = policy.delay(attempt, rand::random::<f64>());
        tracing::debug!(
            delivery_id,
            attempt,
            delay_ms = delay.as_millis() as u64,
            error = error.as_deref().unwrap_or(""),
            "delivery attempt failed, retrying"
        );
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::time::Instant;

    use super::*;
    use crate::routing::log::{DeliveryLog, Event, MemoryDeliveryLog};

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(3),
        }
    }

    #[test]
    fn delay_doubles_within_jitter_and_is_capped() {
        let p = policy();
        assert_eq!(p.delay(1, 0.0), Duration::from_millis(500));
        assert_eq!(p.delay(1, 1.0), Duration::from_secs(1));
        assert_eq!(p.delay(2, 0.0), Duration::from_secs(1));
        assert_eq!(p.delay(2, 0.5), Duration::from_millis(1500));
        // 4s is capped at 3s.
        assert_eq!(p.delay(3, 1.0), Duration::from_secs(3));
        assert_eq!(p.delay(40, 0.0), Duration::from_millis(1500));
    }

    #[test]
    fn statuses_are_classified() {
        assert!(matches!(
            Outcome::from_status(204),
            Outcome::Delivered { .. }
        ));
        assert!(matches!(
            Outcome::from_status(400),
            Outcome::Permanent { .. }
        ));
        assert!(matches!(
            Outcome::from_status(404),
            Outcome::Permanent { .. }
        ));
        assert!(matches!(Outcome::from_status(408), Outcome::Retry { .. }));
        assert!(matches!(Outcome::from_status(429), Outcome::Retry { .. }));
        assert!(matches!(Outcome::from_status(500), Outcome::Retry { .. }));
        assert!(matches!(Outcome::from_status(302), Outcome::Retry { .. }));
    }

    /// Runs `deliver` with a sender that answers `statuses` in turn and
    /// returns the final state, the log's attempts and the paused-clock
    /// offsets at which each try happened.
    async fn run(statuses: &[u16]) -> (DeliveryState, Vec<DeliveryAttempt>, Vec<Duration>) {
        let log = MemoryDeliveryLog::new();
        let id = log.begin(7, "hook", Event::Firing).await.unwrap();
        let start = Instant::now();
        let times = Arc::new(Mutex::new(Vec::new()));
        let statuses = statuses.to_vec();
        let state = deliver(&policy(), &log, Some(id), |attempt| {
            let times = times.clone();
            let status = statuses[(attempt - 1) as usize];
            async move {
                times.lock().unwrap().push(start.elapsed());
                Outcome::from_status(status)
            }
        })
        .await;
        let attempts = log.deliveries()[0].attempts.clone();
        let times = times.lock().unwrap().clone();
        (state, attempts, times)
    }

    #[tokio::test(start_paused = true)]
    async fn retries_back_off_exponentially_until_delivered() {
        let (state, attempts, times) = run(&[500, 503, 429, 200]).await;
        assert_eq!(state, DeliveryState::Delivered);
        let states: Vec<_> = attempts.iter().map(|a| a.state).collect();
        assert_eq!(
            states,
            [
                DeliveryState::Pending,
                DeliveryState::Pending,
                DeliveryState::Pending,
                DeliveryState::Delivered
            ]
        );
        assert_eq!(attempts[3].http_status, Some(200));
        assert_eq!(attempts[0].error.as_deref(), Some("receiver answered 500"));
        // Gaps: [0.5, 1] s, then [1, 2] s, then [1.5, 3] s (4 s capped at 3).
        let gaps: Vec<_> = times.windows(2).map(|w| w[1] - w[0]).collect();
        let bounds = [(500, 1000), (1000, 2000), (1500, 3000)];
        for (gap, (lo, hi)) in gaps.iter().zip(bounds) {
            assert!(
                *gap >= Duration::from_millis(lo) && *gap <= Duration::from_millis(hi),
                "gap {gap:?} outside [{lo}, {hi}] ms"
            );
        }
        assert_eq!(times[0], Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_attempts() {
        let (state, attempts, times) = run(&[500; 5]).await;
        assert_eq!(state, DeliveryState::Failed);
        assert_eq!(attempts.len(), 5);
        assert_eq!(attempts[4].state, DeliveryState::Failed);
        assert!(
            attempts[..4]
                .iter()
                .all(|a| a.state == DeliveryState::Pending)
        );
        assert_eq!(times.len(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn client_errors_are_not_retried() {
        let (state, attempts, times) = run(&[400]).await;
        assert_eq!(state, DeliveryState::Failed);
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].http_status, Some(400));
        assert_eq!(times.len(), 1);
    }
}
