//! What the two halves of the report loop share: the spool, and the few
//! facts each half must tell the other. The gathering half pushes a report
//! every interval; the sending half takes the oldest one, sends it, and
//! acknowledges it by id. Neither ever waits for the other, so a collector
//! that does not answer never delays the next report.
//!
//! The lock is held only for spool operations (small file reads and writes),
//! never across an await.

use std::sync::{Mutex, MutexGuard, PoisonError};

use gw502_proto::v1::HostReport;
use tokio::sync::Notify;

use crate::spool::{Spool, Spooled};

/// The spool between the gathering and the sending half.
#[derive(Debug)]
pub(super) struct Queue {
    state: Mutex<State>,
    more: Notify,
    instance: String,
}

#[derive(Debug)]
struct State {
    spool: Spool,
    /// Reports the collector refused for good.
    refused: u64,
    /// The next report must be a full snapshot (one was refused).
    force_full: bool,
    /// The seq of the newest report gathered by this instance.
    newest: u64,
    /// The gathering half has stopped: nothing more will come.
    gathered: bool,
}

impl Queue {
    /// A queue over `spool` for agent run `instance`.
    pub(super) fn new(spool: Spool, instance: String) -> Self {
        Self {
            state: Mutex::new(State {
                spool,
                refused: 0,
                force_full: false,
                newest: 0,
                gathered: false,
            }),
            more: Notify::new(),
            instance,
        }
    }

    /// This agent run's instance id.
    pub(super) fn instance(&self) -> &str {
        &self.instance
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held left the spool consistent (every
        // spool operation updates its state after the file operation).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What `spool_dropped` of the next report says: reports dropped by the
    /// spool plus those the collector refused for good.
    pub(super) fn lost(&self) -> u64 {
        let state = self.lock();
        state.spool.dropped() + state.refused
    }

    /// True once when a refusal asked for the next report to be full.
    pub(super) fn take_force_full(&self) -> bool {
        std::mem::take(&mut self.lock().force_full)
    }

    /// Puts a freshly gathered report in the spool and wakes the sender.
    /// True when the spool dropped anything meanwhile (this report or an
    /// older one), so the next report must be a full snapshot.
    pub(super) fn push(&self, report: &HostReport) -> bool {
        let dropped = {
            let mut state = self.lock();
            state.newest = report.seq;
            let before = state.spool.dropped();
            // A report the spool cannot keep is counted (and logged) there.
            let _ = state.spool.push(report);
            state.spool.dropped() > before
        };
        self.more.notify_one();
        dropped
    }

    /// The oldest waiting report, marked `replayed` unless it is the newest
    /// one this run gathered.
    pub(super) fn front(&self) -> Option<Spooled> {
        let mut state = self.lock();
        let mut spooled = state.spool.front()?;
        let report = &mut spooled.report;
        report.replayed = !(report.agent_instance == self.instance && report.seq == state.newest);
        Some(spooled)
    }

    /// Report `id` was acknowledged.
    pub(super) fn ack(&self, id: u64) {
        self.lock().spool.ack(id);
    }

    /// Report `id` was refused for good: it leaves the spool, is counted,
    /// and the next report is a full snapshot.
    pub(super) fn refuse(&self, id: u64) {
        let mut state = self.lock();
        state.spool.ack(id);
        state.refused += 1;
        state.force_full = true;
    }

    /// Reports waiting.
    pub(super) fn len(&self) -> usize {
        self.lock().spool.len()
    }

    /// The gathering half stopped; wakes the sender to finish.
    pub(super) fn finish_gathering(&self) {
        self.lock().gathered = true;
        self.more.notify_one();
    }

    /// True once the gathering half stopped.
    pub(super) fn gathered(&self) -> bool {
        self.lock().gathered
    }

    /// Waits until a report was pushed or gathering stopped since the last
    /// wait (returns at once if that happened while nobody waited).
    pub(super) async fn more(&self) {
        self.more.notified().await;
    }

    /// Closes the spool (see [`Spool::close`]); returns the reports lost.
    pub(super) fn close(&self) -> u64 {
        self.lock().spool.close()
    }
}
