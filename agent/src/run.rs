//! The agent's main loop, in two halves that share only the spool
//! ([`queue`]): one gathers a report every interval and puts it in the
//! spool; the other ([`send`]) drains the spool in order to whichever
//! collector answers.
//!
//! Every report goes through the spool, so a collector outage or an agent
//! restart only delays delivery. Because the halves never wait for each
//! other, a collector that does not answer (a partition that drops packets
//! holds each send for the client's timeouts) never costs a report: one is
//! gathered and spooled on every tick whatever the collectors do.
//!
//! A collector that sees a site of this host start failing nudges the agent
//! ([`nudge`]), and the next report is gathered at once instead of at the tick.

mod nudge;
mod queue;
mod send;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use gw502_supervise::{Ended, Policy, Supervisor};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::client::ClientError;
use crate::config::Config;
use crate::failover::{Collectors, Resolve, SystemResolver, Target};
use crate::pipeline::Sources;
use crate::report::Deltas;
use crate::spool::Spool;
use queue::Queue;
use send::Sender;

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

/// The least time from one report's start to the next a nudge brings: a nudge
/// sooner than that waits for it (several sites failing together nudge at once,
/// and a collector cannot make the agent report more than a few times a second).
/// It waits rather than being dropped: the failure it tells of may have started
/// after the report that just went out.
const NUDGE_GAP: Duration = Duration::from_millis(250);

/// The counter of report loop restarts, labelled `loop`.
pub const LOOP_RESTARTS: &str = "gw502_agent_loop_restarts_total";

/// One agent: its sources, its spool and its connection.
pub struct Agent {
    config: Config,
    gatherer: Gatherer,
    sender: Sender,
    queue: Queue,
    resolver: Arc<dyn Resolve>,
}

/// The gathering half: the sources and what the next report is relative to.
struct Gatherer {
    sources: Sources,
    deltas: Deltas,
    seq: u64,
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
        let instance = format!("{:016x}", rand::random::<u64>());
        Ok(Self {
            gatherer: Gatherer {
                sources: Sources::new(&config),
                deltas: Deltas::new(config.full_snapshot_every),
                seq: 0,
            },
            sender: Sender::new(collectors, config.interval.max(Duration::from_secs(1))),
            queue: Queue::new(spool, instance),
            config,
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

    /// Gathers every interval and sends beside it until `stop` turns true.
    /// Then the report being gathered still goes to the spool, and sending
    /// what waits gets until `shutdown_grace` after the stop; what is not
    /// acknowledged by then stays in the spool for the next start (the
    /// collector stores a report sent twice once).
    async fn report_loop(mut self, stop: watch::Receiver<bool>) -> Result<(), RunError> {
        let Agent {
            ref config,
            ref mut gatherer,
            ref mut sender,
            ref queue,
            ..
        } = self;
        let nudged = Notify::new();
        let gathering = gatherer.run(config, queue, &nudged, stop.clone());
        let sending = sender.run(queue, stop.clone(), config.shutdown_grace);
        let listening = async {
            nudge::listen(config, &nudged, stop).await;
            Ok(())
        };
        tokio::try_join!(gathering, sending, listening)?;
        // What memory still holds goes to disk, or is counted lost.
        self.queue.close();
        tracing::info!(waiting = self.queue.len(), "agent stopped");
        Ok(())
    }

    /// Gathers one report and puts it in the spool.
    pub async fn enqueue(&mut self) -> Result<(), RunError> {
        self.gatherer.enqueue(&self.config, &self.queue).await
    }

    /// Sends waiting reports oldest first, to whichever collector answers
    /// (see [`crate::failover`]). Returns false when no collector could be
    /// reached and a retry is due.
    pub async fn drain(&mut self) -> Result<bool, RunError> {
        self.sender.drain(&self.queue).await
    }

    /// Reports waiting in the spool.
    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    /// The collector the agent currently reports to (none before the first
    /// delivery attempt).
    pub fn collector(&self) -> Option<&Target> {
        self.sender.collectors.current()
    }
}

impl Gatherer {
    /// A report every interval until `stop` turns true; a stop while a
    /// report is gathered still spools it. Gathering is bounded by the
    /// sources' timeouts, never by the collectors. Halfway between reports the
    /// upstreams are probed again. A nudge, or a direct probe that outlived its
    /// report (or started halfway) and finished with news, gathers at once (or
    /// [`NUDGE_GAP`] after the last report's start, if that is later) and
    /// starts the next interval from there.
    async fn run(
        &mut self,
        config: &Config,
        queue: &Queue,
        nudged: &Notify,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), RunError> {
        let mut tick = tokio::time::interval(config.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<Instant> = None;
        // When the upstreams are probed again: halfway from the end of the last
        // gathering to the next tick (a hanging probe can hold a gathering for
        // half an interval), once per interval.
        let mut halfway: Option<Instant> = None;
        let result = loop {
            let early = tokio::select! {
                biased;
                _ = stop.wait_for(|stop| *stop) => break Ok(()),
                _ = tick.tick() => false,
                () = nudged.notified() => true,
                () = self.sources.late_news() => {
                    tracing::debug!("a late probe brought news: reporting now");
                    true
                }
                () = sleep_until_some(halfway) => {
                    halfway = None;
                    self.sources.probe_again();
                    continue;
                }
            };
            if early {
                if let Some(at) = last {
                    tokio::select! {
                        biased;
                        _ = stop.wait_for(|stop| *stop) => break Ok(()),
                        () = tokio::time::sleep_until(at + NUDGE_GAP) => {}
                    }
                }
                tick.reset();
            }
            let started = Instant::now();
            last = Some(started);
            if let Err(error) = self.enqueue(config, queue).await {
                break Err(error);
            }
            let done = Instant::now();
            halfway = Some(done + (started + config.interval).saturating_duration_since(done) / 2);
        };
        queue.finish_gathering();
        result
    }

    /// Gathers one report and puts it in the spool.
    async fn enqueue(&mut self, config: &Config, queue: &Queue) -> Result<(), RunError> {
        let mut report = self.sources.gather(config).await;
        self.seq += 1;
        report.agent_instance = queue.instance().to_string();
        report.seq = self.seq;
        report.spool_dropped = queue.lost();
        if queue.take_force_full() {
            // The collector refused one for good: resend everything.
            self.deltas.force_full();
        }
        self.deltas.apply(&mut report);
        let cut = crate::bound::bound(&mut report, crate::bound::MAX_REPORT_BYTES);
        if cut > 0 {
            tracing::warn!(cut, "report exceeded its size bound; oldest entries cut");
        }
        if queue.push(&report) {
            // What was dropped may have carried changes: resend everything next time.
            self.deltas.force_full();
        }
        Ok(())
    }
}

/// Sleeps until `at`; never returns for `None`.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
