//! The agent's main loop: gather a report every interval, put it in the
//! spool, and drain the spool in order to whichever collector answers.
//!
//! Every report goes through the spool, so a collector outage or an agent
//! restart only delays delivery. Only the newest report of a drain is sent as
//! live; everything older that had to wait is marked `replayed`, which the
//! collector treats as history that never opens fresh alerts. Permanent
//! refusals (a report too large or malformed) are dropped and counted rather
//! than blocking the queue forever.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::FusedFuture;
use gw502_proto::v1::HostReport;
use gw502_supervise::{Ended, Policy, Supervisor};
use tokio::sync::watch;
use tonic::Code;

use crate::client::{Backoff, ClientError};
use crate::config::Config;
use crate::failover::{Collectors, Resolve, SystemResolver, Target};
use crate::pipeline::Sources;
use crate::report::Deltas;
use crate::spool::Spool;

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The collector client could not be set up.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The report loop kept failing and its supervisor gave up.
    #[error("the report loop kept failing")]
    GaveUp,
}

/// The counter of report loop restarts, labelled `loop`.
pub const LOOP_RESTARTS: &str = "gw502_agent_loop_restarts_total";

/// One agent: its sources, its spool and its connection.
pub struct Agent {
    config: Config,
    sources: Sources,
    deltas: Deltas,
    spool: Spool,
    collectors: Collectors,
    resolver: Arc<dyn Resolve>,
    instance: String,
    seq: u64,
    backoff: Backoff,
    refused: u64,
}

impl Agent {
    /// Prepares the agent; nothing is contacted yet.
    pub fn new(config: Config) -> Result<Self, RunError> {
        Self::with_resolver(config, Arc::new(SystemResolver))
    }

    /// Like [`Agent::new`], resolving collector names with `resolver`.
    pub fn with_resolver(config: Config, resolver: Arc<dyn Resolve>) -> Result<Self, RunError> {
        let spool = Spool::open(
            &config.state_dir.join("spool"),
            config.spool_max,
            config.spool_memory_max,
        );
        let collectors = Collectors::new(&config.collectors, &config.transport, resolver.clone())?;
        let sources = Sources::new(&config);
        Ok(Self {
            deltas: Deltas::new(config.full_snapshot_every),
            backoff: Backoff::new(
                Duration::from_millis(500),
                config.interval.max(Duration::from_secs(1)),
            ),
            instance: format!("{:016x}", rand::random::<u64>()),
            seq: 0,
            refused: 0,
            config,
            sources,
            spool,
            collectors,
            resolver,
        })
    }

    /// Reports every interval until `shutdown` resolves. The report loop runs
    /// under a supervisor: when it panics or fails it is logged, counted in
    /// `gw502_agent_loop_restarts_total{loop="report"}` and restarted with
    /// backoff from a fresh agent (the spool keeps what was waiting). When it
    /// keeps failing the agent gives up with [`RunError::GaveUp`], a non-zero
    /// exit, and systemd restarts the process.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
        let supervisor = Supervisor::new(LOOP_RESTARTS, Policy::default());
        let (stop_tx, stop) = watch::channel(false);
        let config = self.config.clone();
        let resolver = self.resolver.clone();
        let mut first = Some(self);
        let supervised = supervisor.run("report", move || {
            let agent = first.take().map_or_else(
                || Agent::with_resolver(config.clone(), resolver.clone()),
                Ok,
            );
            let stop = stop.clone();
            async move { agent?.report_loop(stop).await }
        });
        tokio::pin!(shutdown, supervised);
        let ended = tokio::select! {
            ended = &mut supervised => ended,
            () = &mut shutdown => {
                let _ = stop_tx.send(true);
                supervised.await
            }
        };
        match ended {
            Ended::Finished => Ok(()),
            Ended::GaveUp => Err(RunError::GaveUp),
        }
    }

    /// Reports every interval until `stop` turns true. Then the report
    /// being gathered still goes to the spool, and sending what waits gets
    /// until `shutdown_grace` after the stop; what is not acknowledged by
    /// then stays in the spool for the next start (the collector stores a
    /// report sent twice once).
    async fn report_loop(mut self, stop: watch::Receiver<bool>) -> Result<(), RunError> {
        let mut stopped = stop.clone();
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        tokio::pin!(shutdown);
        let grace = self.config.shutdown_grace;
        let give_up = async move {
            let mut stop = stop;
            let _ = stop.wait_for(|stop| *stop).await;
            tokio::time::sleep(grace).await;
        };
        tokio::pin!(give_up);
        let mut give_up = give_up.fuse();
        let mut tick = tokio::time::interval(self.config.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let retry = tokio::time::sleep(Duration::MAX / 4);
        tokio::pin!(retry);
        let mut retrying = false;
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                _ = tick.tick() => {
                    // Gathering is bounded by the sources' timeouts; a stop
                    // meanwhile still spools the report.
                    self.enqueue().await?;
                    retrying = !self.drain_until(&mut give_up).await?;
                }
                _ = &mut retry, if retrying => {
                    retrying = !self.drain_until(&mut give_up).await?;
                }
            }
            if retrying {
                let delay = self.backoff.next_delay();
                tracing::debug!(
                    delay_ms = delay.as_millis() as u64,
                    waiting = self.spool.len(),
                    "collector unreachable, retrying"
                );
                retry.as_mut().reset(tokio::time::Instant::now() + delay);
            }
        }
        if !self.spool.is_empty() && !retrying {
            // Reports spooled just before the stop get the rest of the grace.
            self.drain_until(&mut give_up).await?;
        }
        // What memory still holds goes to disk, or is counted lost.
        self.spool.close();
        tracing::info!(waiting = self.spool.len(), "agent stopped");
        Ok(())
    }

    /// [`Agent::drain`], abandoned when `give_up` resolves (the report being
    /// sent then stays at the front of the spool). False when it did not
    /// finish.
    async fn drain_until(
        &mut self,
        give_up: &mut futures::future::Fuse<std::pin::Pin<&mut impl Future<Output = ()>>>,
    ) -> Result<bool, RunError> {
        if give_up.is_terminated() {
            return Ok(false);
        }
        tokio::select! {
            drained = self.drain() => drained,
            () = give_up => {
                tracing::warn!(waiting = self.spool.len(), "shutdown grace over, the rest stays in the spool");
                Ok(false)
            }
        }
    }

    /// Gathers one report and puts it in the spool.
    pub async fn enqueue(&mut self) -> Result<(), RunError> {
        let dropped_before = self.spool.dropped();
        let mut report = self.sources.gather(&self.config).await;
        self.seq += 1;
        report.agent_instance.clone_from(&self.instance);
        report.seq = self.seq;
        report.spool_dropped = self.spool.dropped() + self.refused;
        self.deltas.apply(&mut report);
        let cut = crate::bound::bound(&mut report, crate::bound::MAX_REPORT_BYTES);
        if cut > 0 {
            tracing::warn!(cut, "report exceeded its size bound; oldest entries cut");
        }
        // A report neither the disk nor the memory overflow can take is
        // dropped and counted by the spool; the next one goes out as a full
        // snapshot.
        let _ = self.spool.push(&report);
        if self.spool.dropped() > dropped_before {
            // What was dropped may have carried changes: resend everything next time.
            self.deltas.force_full();
        }
        Ok(())
    }

    /// Sends waiting reports oldest first, to whichever collector answers
    /// (see [`crate::failover`]). Returns false when no collector could be
    /// reached and a retry is due.
    pub async fn drain(&mut self) -> Result<bool, RunError> {
        while let Some(spooled) = self.spool.front() {
            let mut report = spooled.report;
            report.replayed = !self.is_newest(&report);
            match self.collectors.send(report).await {
                Ok(_) => {
                    self.spool.ack(spooled.id);
                    self.backoff.reset();
                    metrics::counter!("gw502_agent_reports_sent_total").increment(1);
                }
                Err(ClientError::Status(status)) if is_permanent(status.code()) => {
                    tracing::error!(code = ?status.code(), message = status.message(), "collector refused a report for good, dropping it");
                    self.spool.ack(spooled.id);
                    self.refused += 1;
                    self.deltas.force_full();
                }
                Err(error) => {
                    metrics::counter!("gw502_agent_send_errors_total").increment(1);
                    tracing::warn!(%error, waiting = self.spool.len(), "cannot deliver report");
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Reports waiting in the spool.
    pub fn waiting(&self) -> usize {
        self.spool.len()
    }

    /// The collector the agent currently reports to (none before the first
    /// delivery attempt).
    pub fn collector(&self) -> Option<&Target> {
        self.collectors.current()
    }

    fn is_newest(&self, report: &HostReport) -> bool {
        report.agent_instance == self.instance && report.seq == self.seq
    }
}

/// Refusals that retrying cannot fix.
fn is_permanent(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition
    )
}
