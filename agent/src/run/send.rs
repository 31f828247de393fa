//! The sending half of the report loop: one task that sends the spool's
//! reports oldest first to whichever collector answers (see
//! [`crate::failover`]), retrying with backoff when none does.
//!
//! There is exactly one sender, and it sends the front of the spool and
//! waits for its answer before taking the next one, so a report is never
//! in flight twice at once and never overtakes an older one. It runs beside
//! the gathering half, so a collector that holds a connection for the
//! client's whole timeout (a firewall that drops packets) delays delivery
//! but never the gathering of the next report.
//!
//! Only the newest report is sent as live; everything older that had to
//! wait is marked `replayed`, which the collector treats as history that
//! never opens fresh alerts. Permanent refusals (a report too large or
//! malformed) are dropped and counted rather than blocking the queue
//! forever.

use std::time::Duration;

use tokio::sync::watch;
use tonic::Code;

use super::RunError;
use super::queue::Queue;
use crate::client::{Backoff, ClientError};
use crate::failover::Collectors;

/// The collectors and the retry pacing of one agent.
pub(super) struct Sender {
    pub(super) collectors: Collectors,
    backoff: Backoff,
}

impl Sender {
    /// Sends through `collectors`, retrying at most every `max_backoff`.
    pub(super) fn new(collectors: Collectors, max_backoff: Duration) -> Self {
        Self {
            collectors,
            backoff: Backoff::new(Duration::from_millis(500), max_backoff),
        }
    }

    /// Sends until `stop` turns true, then goes on while sends succeed
    /// until the gathering half has stopped and nothing waits, or until
    /// `grace` after the stop (the report in flight then stays at the front
    /// of the spool). A collector that cannot be reached after the stop
    /// ends it at once: what waits stays in the spool for the next start.
    pub(super) async fn run(
        &mut self,
        queue: &Queue,
        mut stop: watch::Receiver<bool>,
        grace: Duration,
    ) -> Result<(), RunError> {
        let mut stopped = stop.clone();
        let give_up = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
            tokio::time::sleep(grace).await;
        };
        tokio::pin!(give_up);
        loop {
            let drained = tokio::select! {
                biased;
                () = &mut give_up => break,
                drained = self.drain(queue) => drained?,
            };
            let stopping = *stop.borrow();
            if drained {
                if queue.len() > 0 {
                    continue;
                }
                if stopping && queue.gathered() {
                    return Ok(());
                }
                tokio::select! {
                    biased;
                    () = &mut give_up => break,
                    () = queue.more() => {}
                }
            } else {
                if stopping {
                    return Ok(());
                }
                let delay = self.backoff.next_delay();
                tracing::debug!(
                    delay_ms = delay.as_millis() as u64,
                    waiting = queue.len(),
                    "collector unreachable, retrying"
                );
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|stop| *stop) => return Ok(()),
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
        tracing::warn!(
            waiting = queue.len(),
            "shutdown grace over, the rest stays in the spool"
        );
        Ok(())
    }

    /// Sends waiting reports oldest first. Returns false when no collector
    /// could be reached and a retry is due.
    pub(super) async fn drain(&mut self, queue: &Queue) -> Result<bool, RunError> {
        while let Some(spooled) = queue.front() {
            match self.collectors.send(spooled.report).await {
                Ok(_) => {
                    queue.ack(spooled.id);
                    self.backoff.reset();
                    metrics::counter!("gw502_agent_reports_sent_total").increment(1);
                }
                Err(ClientError::Status(status)) if is_permanent(status.code()) => {
                    tracing::error!(code = ?status.code(), message = status.message(), "collector refused a report for good, dropping it");
                    queue.refuse(spooled.id);
                }
                Err(error) => {
                    metrics::counter!("gw502_agent_send_errors_total").increment(1);
                    tracing::warn!(%error, waiting = queue.len(), "cannot deliver report");
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

/// Refusals that retrying cannot fix.
fn is_permanent(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition
    )
}
